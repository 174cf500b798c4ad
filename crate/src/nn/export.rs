//! Export to PyTorch: `model_py(spec)` writes a `model.py` that builds the same network as
//! an `nn.Module`. Each layer is registered under its spec name (its index when unnamed),
//! so the module's state-dict keys are the engine's parameter names and a
//! `weights.safetensors` written by `nn::io` loads with `load_state_dict(strict=True)`.
//! The forward walks the layers in spec order, keeping each output by name (the DAG).

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::spec::{DropoutScaling, LayerPlan, LayerSpec, ModelSpec, Plan, TrainConfig};

/// Small modules for layers PyTorch has no class for; each is written only when used.
const CLASSIC_DROPOUT: &str = r#"
class ClassicDropout(nn.Module):
    """Dropout as first published: training multiplies by a 0/1 mask without rescaling;
    evaluation multiplies by the keep probability 1 - p instead."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.training:
            return x * (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * (1.0 - self.p)
"#;

const INCEPTION: &str = r#"
class Inception(nn.Module):
    """GoogLeNet v1's block: four branches on the same input, joined on channels.
    1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool (stride 1) -> 1x1; every conv + ReLU.
    reduce=False is the naive block (Szegedy et al. 2015, Fig. 2a): no 1x1 reductions, the
    3x3 and 5x5 read the c_in input channels (b3_reduce and b5_reduce are ignored)."""

    def __init__(self, c_in, b1, b3_reduce, b3, b5_reduce, b5, pool_proj, reduce=True):
        super().__init__()
        self.reduce = reduce
        self.b1 = nn.Conv2d(c_in, b1, 1)
        if reduce:
            self.b3_reduce = nn.Conv2d(c_in, b3_reduce, 1)
        self.b3 = nn.Conv2d(b3_reduce if reduce else c_in, b3, 3, padding=1)
        if reduce:
            self.b5_reduce = nn.Conv2d(c_in, b5_reduce, 1)
        self.b5 = nn.Conv2d(b5_reduce if reduce else c_in, b5, 5, padding=2)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.pool_proj = nn.Conv2d(c_in, pool_proj, 1)

    def forward(self, x):
        y1 = torch.relu(self.b1(x))
        r3 = torch.relu(self.b3_reduce(x)) if self.reduce else x
        r5 = torch.relu(self.b5_reduce(x)) if self.reduce else x
        y3 = torch.relu(self.b3(r3))
        y5 = torch.relu(self.b5(r5))
        yp = torch.relu(self.pool_proj(self.pool(x)))
        return torch.cat([y1, y3, y5, yp], 1)
"#;

const GLOBAL_AVG_POOL: &str = r#"
class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C): the mean of each map."""

    def forward(self, x):
        return x.mean(dim=(2, 3))
"#;

const CONCAT: &str = r#"
class Concat(nn.Module):
    """Joins its inputs on the channel axis."""

    def forward(self, *xs):
        return torch.cat(xs, 1)
"#;

const ADD: &str = r#"
class Add(nn.Module):
    """Sums two inputs of the same shape (a residual connection)."""

    def forward(self, a, b):
        return a + b
"#;

const BUILD_AND_MAIN: &str = r#"

def build(weights_path=None):
    """The model; with `weights_path`, its weights loaded from a safetensors file."""
    model = Model()
    if weights_path is not None:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(weights_path), strict=True)
    return model


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    model = build(os.path.join(here, "weights.safetensors")).eval()
    with torch.no_grad():
        y = model(torch.zeros(1, *INPUT_SHAPE))
    print("output shape", tuple(y.shape))
"#;

/// The spec as it runs under `config`: every dropout layer's p and scaling replaced by the
/// config's live overrides (`dropout_p`, `dropout_scaling`) where they are set, as the
/// training forward does (nn/model.rs). Everything else is the spec's.
pub fn spec_as_run(spec: &ModelSpec, config: &TrainConfig) -> ModelSpec {
    let mut run = spec.clone();
    for layer in &mut run.layers {
        if let LayerSpec::Dropout { p, scaling } = &mut layer.op {
            if let Some(live) = config.dropout_p {
                *p = live;
            }
            if let Some(live) = config.dropout_scaling {
                *scaling = live;
            }
        }
    }
    run
}

/// The `model.py` of what ran: `spec` under the run's dropout overrides (`spec_as_run`), so
/// the exported `nn.Dropout(p=…)` is the p that trained, not the spec file's. The header
/// says when an override replaced the spec's value.
pub fn model_py_for_run(spec: &ModelSpec, config: &TrainConfig) -> Result<String> {
    let run = spec_as_run(spec, config);
    let mut py = model_py(&run)?;
    let has_dropout = spec.layers.iter().any(|l| matches!(l.op, LayerSpec::Dropout { .. }));
    if has_dropout && (config.dropout_p.is_some() || config.dropout_scaling.is_some()) {
        let mut note = String::from("# dropout: the run's override of the spec's");
        if let Some(p) = config.dropout_p {
            let _ = write!(note, " p = {}", py_float(p));
        }
        if let Some(s) = config.dropout_scaling {
            let name = match s {
                DropoutScaling::Inverted => "inverted",
                DropoutScaling::Classic => "classic",
            };
            let _ = write!(note, " scaling = {name}");
        }
        note.push_str(" (every dropout layer)\n");
        if let Some(at) = py.find("import os\n") {
            py.insert_str(at, &note);
        }
    }
    Ok(py)
}

/// The text of a `model.py` for `spec` (validated first).
pub fn model_py(spec: &ModelSpec) -> Result<String> {
    let plan = spec.validate()?;
    let mut py = String::new();
    header(&mut py, spec);
    for (kind, text) in [
        ("dropout_classic", CLASSIC_DROPOUT),
        ("inception", INCEPTION),
        ("global_avg_pool", GLOBAL_AVG_POOL),
        ("concat", CONCAT),
        ("add", ADD),
    ] {
        let used = spec.layers.iter().any(|l| match &l.op {
            LayerSpec::Dropout { scaling, .. } => kind == "dropout_classic" && *scaling == DropoutScaling::Classic,
            op => op.kind() == kind,
        });
        if used {
            py.push('\n');
            py.push_str(text);
        }
    }
    model_class(&mut py, spec, &plan)?;
    py.push_str(BUILD_AND_MAIN);
    Ok(py)
}

fn header(py: &mut String, spec: &ModelSpec) {
    py.push_str("\"\"\"A CNN Playground model as a PyTorch module, written by `cnnp export`.\n\n");
    py.push_str("Every layer is registered under its name in the spec (its index when unnamed), so the\n");
    py.push_str("state-dict keys (\"0.weight\", \"conv1.bias\", ...) are the names in weights.safetensors,\n");
    py.push_str("in PyTorch's layouts. Run this file to load weights.safetensors from beside it and\n");
    py.push_str("print the output shape for a zero input.\n\"\"\"\n");
    for (label, text) in [("model", &spec.name), ("description", &spec.description)] {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            // a comment holds any text but line breaks
            let clean: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            let _ = writeln!(py, "# {label}: {clean}");
        }
    }
    py.push_str("import os\n\nimport torch\nfrom torch import nn\n\n");
    let [c, h, w] = spec.input;
    let _ = writeln!(py, "INPUT_SHAPE = ({c}, {h}, {w})  # (C, H, W) of one example");
    let _ = writeln!(py, "CLASSES = {}", spec.classes);
}

fn model_class(py: &mut String, spec: &ModelSpec, plan: &Plan) -> Result<()> {
    // max_pool layers whose switches a max_unpool reads: they return their indices too
    let unpooled: Vec<&str> = spec
        .layers
        .iter()
        .filter_map(|l| match &l.op {
            LayerSpec::MaxUnpool { pool } => Some(pool.as_str()),
            _ => None,
        })
        .collect();
    py.push_str("\n\nclass Model(nn.Module):\n");
    py.push_str("    def __init__(self):\n");
    py.push_str("        super().__init__()\n");
    for (index, lp) in plan.layers.iter().enumerate() {
        let module = module_expr(spec, index, lp, &unpooled)?;
        let shapes: Vec<String> = lp.in_shapes.iter().map(|s| py_tuple(s)).collect();
        let _ = writeln!(
            py,
            "        self.add_module(\"{}\", {module})  # {} -> {}",
            lp.name,
            shapes.join(", "),
            py_tuple(&lp.out)
        );
    }
    py.push_str("\n    def forward(self, x):\n");
    py.push_str("        layer = self.get_submodule\n");
    py.push_str("        h = {\"input\": x}  # every layer's output, by name\n");
    if !unpooled.is_empty() {
        py.push_str("        switches = {}  # where each max_pool read by a max_unpool found its maxima\n");
    }
    for (layer, lp) in spec.layers.iter().zip(&plan.layers) {
        let args: Vec<String> = lp.inputs.iter().map(|i| format!("h[\"{i}\"]")).collect();
        let name = &lp.name;
        let call = format!("layer(\"{name}\")({})", args.join(", "));
        let _ = match &layer.op {
            LayerSpec::MaxPool { .. } if unpooled.contains(&name.as_str()) => {
                writeln!(py, "        h[\"{name}\"], switches[\"{name}\"] = {call}")
            }
            LayerSpec::MaxUnpool { pool } => {
                // the unpooled size is the pool's input size
                let size = plan
                    .layers
                    .iter()
                    .find(|p| &p.name == pool)
                    .map(|p| p.in_shapes[0].clone())
                    .unwrap_or_default();
                let (height, width) = (size.get(1).copied().unwrap_or(0), size.get(2).copied().unwrap_or(0));
                writeln!(
                    py,
                    "        h[\"{name}\"] = layer(\"{name}\")({}, switches[\"{pool}\"], output_size=({height}, {width}))",
                    args.join(", ")
                )
            }
            _ => writeln!(py, "        h[\"{name}\"] = {call}"),
        };
    }
    let last = plan.layers.last().map(|l| l.name.as_str()).unwrap_or("input");
    let _ = writeln!(py, "        return h[\"{last}\"]");
    Ok(())
}

/// The PyTorch module for one layer, given its plan (input shapes) and the pools that
/// must return indices.
fn module_expr(spec: &ModelSpec, index: usize, lp: &LayerPlan, unpooled: &[&str]) -> Result<String> {
    let op = &spec.layers[index].op;
    let input = &lp.in_shapes[0];
    let c_in = input.first().copied().unwrap_or(0);
    let stride_of = |size: usize, stride: Option<usize>| stride.unwrap_or(size);
    Ok(match op {
        LayerSpec::Conv2d {
            out, kernel, stride, ..
        } => {
            let padding = op.padding_px().unwrap_or(0);
            format!("nn.Conv2d({c_in}, {out}, {kernel}, stride={stride}, padding={padding})")
        }
        LayerSpec::ConvTranspose2d {
            out,
            kernel,
            stride,
            padding,
            output_padding,
        } => format!(
            "nn.ConvTranspose2d({c_in}, {out}, {kernel}, stride={stride}, padding={padding}, output_padding={output_padding})"
        ),
        LayerSpec::Linear { out } => format!("nn.Linear({c_in}, {out})"),
        LayerSpec::Relu {} => "nn.ReLU()".into(),
        LayerSpec::LeakyRelu { slope } => format!("nn.LeakyReLU(negative_slope={})", py_float(*slope)),
        LayerSpec::Tanh {} => "nn.Tanh()".into(),
        LayerSpec::Sigmoid {} => "nn.Sigmoid()".into(),
        LayerSpec::MaxPool { size, stride, padding } => {
            let indices = if unpooled.contains(&lp.name.as_str()) {
                ", return_indices=True"
            } else {
                ""
            };
            let stride = stride_of(*size, *stride);
            format!("nn.MaxPool2d({size}, stride={stride}, padding={padding}{indices})")
        }
        LayerSpec::AvgPool { size, stride, padding } => {
            let stride = stride_of(*size, *stride);
            format!("nn.AvgPool2d({size}, stride={stride}, padding={padding}, count_include_pad=True)")
        }
        LayerSpec::GlobalAvgPool {} => "GlobalAvgPool()".into(),
        LayerSpec::MaxUnpool { pool } => {
            // the geometry of the pool whose switches it reads (validation checked it is one)
            let geometry = (0..spec.layers.len()).find(|&j| spec.layer_name(j) == *pool).and_then(|j| {
                match spec.layers[j].op {
                    LayerSpec::MaxPool { size, stride, padding } => Some((size, stride_of(size, stride), padding)),
                    _ => None,
                }
            });
            let Some((size, stride, padding)) = geometry else {
                return Err(Error::Spec {
                    index,
                    name: Some(lp.name.clone()),
                    kind: op.kind().into(),
                    problem: format!("pool \"{pool}\" is not an earlier max_pool layer"),
                    input_shapes: lp.in_shapes.clone(),
                });
            };
            format!("nn.MaxUnpool2d({size}, stride={stride}, padding={padding})")
        }
        LayerSpec::Upsample { scale, mode } => match mode {
            crate::backend::UpsampleMode::Nearest => format!("nn.Upsample(scale_factor={scale}, mode=\"nearest\")"),
            crate::backend::UpsampleMode::Bilinear => {
                format!("nn.Upsample(scale_factor={scale}, mode=\"bilinear\", align_corners=False)")
            }
        },
        LayerSpec::BatchNorm { momentum, eps } => {
            let class = if input.len() == 3 { "BatchNorm2d" } else { "BatchNorm1d" };
            format!(
                "nn.{class}({c_in}, eps={}, momentum={})",
                py_float(*eps),
                py_float(*momentum)
            )
        }
        LayerSpec::Dropout { p, scaling } => match scaling {
            DropoutScaling::Inverted => format!("nn.Dropout(p={})", py_float(*p)),
            DropoutScaling::Classic => format!("ClassicDropout(p={})", py_float(*p)),
        },
        LayerSpec::Inception {
            b1,
            b3_reduce,
            b3,
            b5_reduce,
            b5,
            pool_proj,
            reduce,
        } => {
            // the naive block (Szegedy et al. Fig. 2a) says so; the reduced one is the default
            let naive = if *reduce { "" } else { ", reduce=False" };
            format!("Inception({c_in}, {b1}, {b3_reduce}, {b3}, {b5_reduce}, {b5}, {pool_proj}{naive})")
        }
        LayerSpec::Concat {} => "Concat()".into(),
        LayerSpec::Add {} => "Add()".into(),
        LayerSpec::Flatten {} => "nn.Flatten()".into(),
    })
}

/// A shape as a Python tuple: (8, 28, 28), (10,).
fn py_tuple(dims: &[usize]) -> String {
    match dims {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The shortest decimal that reads back as the same f32 (Rust's `{:?}`: 0.1, 1e-5).
fn py_float(v: f32) -> String {
    format!("{v:?}")
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// A DAG with every layer kind (BN on maps and on a flat vector, both dropouts).
    const EVERY_KIND: &str = r#"{"name": "every kind", "description": "a \"test\"\nspec", "input": [1, 12, 12], "classes": 3, "layers": [
        {"type": "conv2d", "out": 4, "kernel": 3, "padding": "same", "name": "stem"},
        {"type": "batch_norm"},
        {"type": "leaky_relu", "slope": 0.2},
        {"type": "max_pool", "name": "pool1"},
        {"type": "inception", "b1": 2, "b3_reduce": 2, "b3": 3, "b5_reduce": 1, "b5": 2, "pool_proj": 1, "name": "inc"},
        {"type": "conv2d", "out": 8, "kernel": 1, "inputs": ["pool1"], "name": "proj"},
        {"type": "add", "inputs": ["inc", "proj"], "name": "res"},
        {"type": "tanh"},
        {"type": "conv2d", "out": 4, "kernel": 1},
        {"type": "max_unpool", "pool": "pool1", "name": "up"},
        {"type": "concat", "inputs": ["up", "stem"], "name": "cat"},
        {"type": "sigmoid"},
        {"type": "conv_transpose2d", "out": 2, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
        {"type": "avg_pool", "size": 3, "stride": 2, "padding": 1},
        {"type": "upsample", "scale": 2, "mode": "bilinear"},
        {"type": "max_pool", "size": 3, "stride": 2},
        {"type": "upsample", "mode": "nearest"},
        {"type": "relu", "name": "maps"},
        {"type": "global_avg_pool", "name": "gap"},
        {"type": "flatten", "inputs": ["maps"]},
        {"type": "linear", "out": 6},
        {"type": "batch_norm", "momentum": 0.2, "eps": 0.001},
        {"type": "dropout", "p": 0.25, "scaling": "classic"},
        {"type": "concat", "inputs": ["22", "gap"]},
        {"type": "dropout", "p": 0.1},
        {"type": "linear", "out": 3, "name": "head"}
    ]}"#;

    fn every_kind() -> String {
        model_py(&ModelSpec::from_json(EVERY_KIND).unwrap()).unwrap()
    }

    fn has(py: &str, line: &str) {
        assert!(py.lines().any(|l| l.trim() == line), "missing line {line:?} in:\n{py}");
    }

    #[test]
    fn every_layer_kind_becomes_its_pytorch_module() {
        let py = every_kind();
        for line in [
            "INPUT_SHAPE = (1, 12, 12)  # (C, H, W) of one example",
            "CLASSES = 3",
            r#"self.add_module("stem", nn.Conv2d(1, 4, 3, stride=1, padding=1))  # (1, 12, 12) -> (4, 12, 12)"#,
            r#"self.add_module("1", nn.BatchNorm2d(4, eps=1e-5, momentum=0.1))  # (4, 12, 12) -> (4, 12, 12)"#,
            r#"self.add_module("2", nn.LeakyReLU(negative_slope=0.2))  # (4, 12, 12) -> (4, 12, 12)"#,
            r#"self.add_module("pool1", nn.MaxPool2d(2, stride=2, padding=0, return_indices=True))  # (4, 12, 12) -> (4, 6, 6)"#,
            r#"self.add_module("inc", Inception(4, 2, 2, 3, 1, 2, 1))  # (4, 6, 6) -> (8, 6, 6)"#,
            r#"self.add_module("res", Add())  # (8, 6, 6), (8, 6, 6) -> (8, 6, 6)"#,
            r#"self.add_module("7", nn.Tanh())  # (8, 6, 6) -> (8, 6, 6)"#,
            r#"self.add_module("up", nn.MaxUnpool2d(2, stride=2, padding=0))  # (4, 6, 6) -> (4, 12, 12)"#,
            r#"self.add_module("cat", Concat())  # (4, 12, 12), (4, 12, 12) -> (8, 12, 12)"#,
            r#"self.add_module("11", nn.Sigmoid())  # (8, 12, 12) -> (8, 12, 12)"#,
            r#"self.add_module("12", nn.ConvTranspose2d(8, 2, 3, stride=2, padding=1, output_padding=1))  # (8, 12, 12) -> (2, 24, 24)"#,
            r#"self.add_module("13", nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True))  # (2, 24, 24) -> (2, 12, 12)"#,
            r#"self.add_module("14", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))  # (2, 12, 12) -> (2, 24, 24)"#,
            r#"self.add_module("15", nn.MaxPool2d(3, stride=2, padding=0))  # (2, 24, 24) -> (2, 11, 11)"#,
            r#"self.add_module("16", nn.Upsample(scale_factor=2, mode="nearest"))  # (2, 11, 11) -> (2, 22, 22)"#,
            r#"self.add_module("gap", GlobalAvgPool())  # (2, 22, 22) -> (2,)"#,
            r#"self.add_module("19", nn.Flatten())  # (2, 22, 22) -> (968,)"#,
            r#"self.add_module("20", nn.Linear(968, 6))  # (968,) -> (6,)"#,
            r#"self.add_module("21", nn.BatchNorm1d(6, eps=0.001, momentum=0.2))  # (6,) -> (6,)"#,
            r#"self.add_module("22", ClassicDropout(p=0.25))  # (6,) -> (6,)"#,
            r#"self.add_module("24", nn.Dropout(p=0.1))  # (8,) -> (8,)"#,
            r#"self.add_module("head", nn.Linear(8, 3))  # (8,) -> (3,)"#,
            // the forward: the DAG, each output kept by name
            r#"h = {"input": x}  # every layer's output, by name"#,
            r#"h["stem"] = layer("stem")(h["input"])"#,
            r#"h["pool1"], switches["pool1"] = layer("pool1")(h["2"])"#,
            r#"h["proj"] = layer("proj")(h["pool1"])"#,
            r#"h["res"] = layer("res")(h["inc"], h["proj"])"#,
            r#"h["up"] = layer("up")(h["8"], switches["pool1"], output_size=(12, 12))"#,
            r#"h["cat"] = layer("cat")(h["up"], h["stem"])"#,
            r#"h["15"] = layer("15")(h["14"])"#,
            r#"h["19"] = layer("19")(h["maps"])"#,
            r#"return h["head"]"#,
            "class ClassicDropout(nn.Module):",
            "class Inception(nn.Module):",
            "class GlobalAvgPool(nn.Module):",
            "class Concat(nn.Module):",
            "class Add(nn.Module):",
            "def build(weights_path=None):",
            "model.load_state_dict(load_file(weights_path), strict=True)",
            r#"if __name__ == "__main__":"#,
            // the spec's name and description, as comments that cannot break the file
            "# model: every kind",
            "# description: a \"test\"",
            "# description: spec",
        ] {
            has(&py, line);
        }
        assert_eq!(py.matches("self.add_module(").count(), 26);
        // the inception block's submodules carry the names its parameters have in the engine
        for sub in ["b1", "b3_reduce", "b3", "b5_reduce", "b5", "pool_proj"] {
            assert!(py.contains(&format!("self.{sub} = nn.Conv2d(")), "{sub}");
        }
        assert!(!py.contains('\t'), "indentation is spaces");
    }

    #[test]
    fn the_naive_inception_block_exports_with_reduce_false() {
        let spec = r#"{"input": [4, 6, 6], "classes": 2, "layers": [
            {"type": "inception", "b1": 2, "b3_reduce": 2, "b3": 3, "b5_reduce": 1, "b5": 2, "pool_proj": 1, "reduce": false, "name": "inc"},
            {"type": "flatten"}, {"type": "linear", "out": 2}]}"#;
        let py = model_py(&ModelSpec::from_json(spec).unwrap()).unwrap();
        has(
            &py,
            r#"self.add_module("inc", Inception(4, 2, 2, 3, 1, 2, 1, reduce=False))  # (4, 6, 6) -> (8, 6, 6)"#,
        );
        has(
            &py,
            "self.b3 = nn.Conv2d(b3_reduce if reduce else c_in, b3, 3, padding=1)",
        );
    }

    #[test]
    fn helpers_are_written_only_when_used() {
        let chain = r#"{"input": [1, 8, 8], "classes": 2, "layers": [
            {"type": "conv2d", "out": 2, "kernel": 3}, {"type": "max_pool"}, {"type": "dropout"},
            {"type": "flatten"}, {"type": "linear", "out": 2}]}"#;
        let py = model_py(&ModelSpec::from_json(chain).unwrap()).unwrap();
        for absent in [
            "class ClassicDropout",
            "class Inception",
            "class Concat",
            "class Add",
            "GlobalAvgPool",
            "switches",
        ] {
            assert!(!py.contains(absent), "{absent} in:\n{py}");
        }
        has(
            &py,
            r#"self.add_module("1", nn.MaxPool2d(2, stride=2, padding=0))  # (2, 6, 6) -> (2, 3, 3)"#,
        );
        has(
            &py,
            r#"self.add_module("2", nn.Dropout(p=0.5))  # (2, 3, 3) -> (2, 3, 3)"#,
        );
        has(&py, r#"return h["4"]"#);
    }

    /// The live dropout override is what the export writes (p and scaling), for every
    /// dropout layer; without an override the spec's values stay.
    #[test]
    fn export_of_a_run_writes_the_live_dropout_override() {
        let spec = ModelSpec::from_json(EVERY_KIND).unwrap();
        let plain = model_py_for_run(&spec, &TrainConfig::default()).unwrap();
        assert_eq!(plain, model_py(&spec).unwrap(), "no override: the spec's file");
        has(
            &plain,
            r#"self.add_module("22", ClassicDropout(p=0.25))  # (6,) -> (6,)"#,
        );

        let config = TrainConfig {
            dropout_p: Some(0.3),
            ..TrainConfig::default()
        };
        let py = model_py_for_run(&spec, &config).unwrap();
        has(&py, r#"self.add_module("22", ClassicDropout(p=0.3))  # (6,) -> (6,)"#);
        has(&py, r#"self.add_module("24", nn.Dropout(p=0.3))  # (8,) -> (8,)"#);
        assert!(!py.contains("p=0.25") && !py.contains("p=0.1)"), "{py}");
        has(
            &py,
            "# dropout: the run's override of the spec's p = 0.3 (every dropout layer)",
        );

        let config = TrainConfig {
            dropout_p: Some(0.0),
            dropout_scaling: Some(DropoutScaling::Inverted),
            ..TrainConfig::default()
        };
        let py = model_py_for_run(&spec, &config).unwrap();
        has(&py, r#"self.add_module("22", nn.Dropout(p=0.0))  # (6,) -> (6,)"#);
        assert!(
            !py.contains("class ClassicDropout"),
            "no classic dropout left to define"
        );

        // a spec without dropout: an override changes nothing, and says nothing
        let chain = ModelSpec::from_json(
            r#"{"input": [1, 8, 8], "classes": 2, "layers": [{"type": "flatten"}, {"type": "linear", "out": 2}]}"#,
        )
        .unwrap();
        let config = TrainConfig {
            dropout_p: Some(0.3),
            ..TrainConfig::default()
        };
        assert_eq!(model_py_for_run(&chain, &config).unwrap(), model_py(&chain).unwrap());
    }

    #[test]
    fn invalid_specs_are_refused_with_their_validation_error() {
        let bad = r#"{"input": [1, 8, 8], "classes": 2, "layers": [{"type": "linear", "out": 2}]}"#;
        let e = model_py(&ModelSpec::parse(bad).unwrap()).unwrap_err().to_string();
        assert!(e.contains("layer 0 (linear): needs a flat input"), "{e}");
    }

    /// Python parses the generated file (when a python3 is installed).
    #[test]
    fn generated_file_compiles_as_python() {
        let Ok(status) = std::process::Command::new("python3").arg("--version").output() else {
            println!("skipped: python3 not installed");
            return;
        };
        assert!(status.status.success());
        let dir = std::env::temp_dir().join(format!("cnnp-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.py");
        std::fs::write(&path, every_kind()).unwrap();
        let out = std::process::Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
