//! The model spec: the JSON that the page and the CLI both speak. A model is data: a list
//! of layers, each optionally named and reading the outputs of earlier layers by name, so a
//! spec is a DAG (inception blocks, U-Net skips, residual adds) as well as a chain. It is
//! validated (shapes inferred layer by layer) before anything runs, and every error names
//! the layer (index and name), the problem and the shapes.

use std::collections::HashMap;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::backend::{out_len, transposed_out_len, ConvTransposeParams, UpsampleMode};
use crate::error::{Error, Result};
use crate::tasks::data::DataConfig;

pub mod kinds;

/// Models larger than this many parameters are refused before any memory is allocated.
pub const MAX_PARAMS: usize = 20_000_000;
/// Activation floats per example summed over layers, refused above this.
pub const MAX_ACTIVATIONS: usize = 20_000_000;

/// The size limits a spec is validated against (the CLI can raise or lower them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_params: usize,
    pub max_activations: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_params: MAX_PARAMS,
            max_activations: MAX_ACTIVATIONS,
        }
    }
}

/// The reserved name of the model's input in `inputs` lists.
pub const INPUT: &str = "input";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// (C, H, W) of one example.
    pub input: [usize; 3],
    pub classes: usize,
    /// What the model is trained for; it fixes the shape the output must have.
    #[serde(default, skip_serializing_if = "Task::is_classify")]
    pub task: Task,
    /// The examples it trains on (default: all MNIST digits); see tasks/data.rs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataConfig>,
    pub layers: Vec<Layer>,
}

/// The task a spec's head is built for (the course's last chapters). The model's output
/// must be [`Task::output_shape`]:
/// - `classify`: (classes) class scores;
/// - `localize`: (classes + 4): class scores, then the box (cx/W, cy/H, w/W, h/H);
/// - `detect`: (5 + classes, S, S), a YOLO-v1 grid of S×S cells (any S): objectness logit,
///   (tx, ty, tw, th) and class scores per cell (tasks/grid.rs);
/// - `segment`: (classes + 1, H, W) per-pixel scores, channel 0 the background.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Classify,
    Localize,
    Detect,
    Segment,
}

impl Task {
    pub fn is_classify(&self) -> bool {
        *self == Task::Classify
    }
    pub fn name(&self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Localize => "localize",
            Task::Detect => "detect",
            Task::Segment => "segment",
        }
    }
    /// Whether `out` (one example's output shape) fits this task for `classes` classes and
    /// an input of (C, H, W); the error names what was expected.
    pub fn check_output(&self, out: &[usize], classes: usize, input: [usize; 3]) -> std::result::Result<(), String> {
        let ok = match self {
            Task::Classify => out == [classes],
            Task::Localize => out == [classes + 4],
            Task::Detect => out.len() == 3 && out[0] == 5 + classes && out[1] == out[2] && out[1] > 0,
            Task::Segment => out == [classes + 1, input[1], input[2]],
        };
        if ok {
            return Ok(());
        }
        let want = match self {
            Task::Classify => format!("{classes} class scores"),
            Task::Localize => format!("[{}] ({classes} class scores, then the box cx, cy, w, h)", classes + 4),
            Task::Detect => format!(
                "a detection grid [{}, S, S] (objectness, 4 box values and {classes} class scores per cell)",
                5 + classes
            ),
            Task::Segment => format!(
                "per-pixel scores [{}, {}, {}] (background and {classes} classes at the input's size)",
                classes + 1,
                input[1],
                input[2]
            ),
        };
        Err(format!(
            "a {} model must end in {want}, but outputs {out:?}",
            self.name()
        ))
    }
}

/// One entry of `layers`: the op, plus an optional name (default: its index, "3") and the
/// names of the layers it reads (default: the layer before it, or the model input).
/// In JSON the two extra keys sit beside `type`: `{"type": "add", "name": "res1",
/// "inputs": ["conv2", "pool1"]}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: Option<String>,
    pub inputs: Option<Vec<String>>,
    pub op: LayerSpec,
}

impl Layer {
    /// A chain layer: unnamed, reading the layer before it.
    pub fn new(op: LayerSpec) -> Layer {
        Layer {
            name: None,
            inputs: None,
            op,
        }
    }
}

impl<'de> Deserialize<'de> for Layer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(d)?;
        let name = match map.remove("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => return Err(D::Error::custom(format!("a layer name must be a string, got {other}"))),
        };
        let inputs = match map.remove("inputs") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                Vec::<String>::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("inputs must be a list of layer names ({e})")))?,
            ),
        };
        let op = LayerSpec::deserialize(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Layer { name, inputs, op })
    }
}

impl Serialize for Layer {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.op).map_err(S::Error::custom)?;
        if let Value::Object(m) = &mut v {
            if let Some(name) = &self.name {
                m.insert("name".into(), Value::String(name.clone()));
            }
            if let Some(inputs) = &self.inputs {
                m.insert("inputs".into(), inputs.clone().into());
            }
        }
        v.serialize(s)
    }
}

/// Zero padding: a number of pixels, or "same" (output size = input size at stride 1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Padding {
    Pixels(usize),
    Named(String),
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Pixels(0)
    }
}

/// How dropout keeps the expected activation: `inverted` scales kept units by 1/(1-p)
/// while training and is the identity at evaluation (PyTorch); `classic` leaves training
/// unscaled and multiplies by 1-p at evaluation (the original paper).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DropoutScaling {
    #[default]
    Inverted,
    Classic,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
/// PyTorch's default negative slope for `nn.LeakyReLU`.
fn leaky_slope() -> f32 {
    0.01
}
fn half() -> f32 {
    0.5
}
/// PyTorch's BatchNorm defaults.
fn bn_momentum() -> f32 {
    0.1
}
fn bn_eps() -> f32 {
    1e-5
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    Conv2d {
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
    },
    /// PyTorch's `ConvTranspose2d`: OH = (H-1)·stride - 2·padding + kernel + output_padding.
    ConvTranspose2d {
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default)]
        output_padding: usize,
    },
    Linear {
        out: usize,
    },
    Relu {},
    /// y = x for x > 0, slope·x otherwise; slope in [0, 1).
    LeakyRelu {
        #[serde(default = "leaky_slope")]
        slope: f32,
    },
    Tanh {},
    Sigmoid {},
    /// PyTorch's MaxPool2d(size, stride, padding): pads with -inf, floor mode.
    MaxPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// PyTorch's AvgPool2d(size, stride, padding), count_include_pad=True.
    AvgPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// (C,H,W) -> (C): the mean of each map (network in network's head).
    GlobalAvgPool {},
    /// PyTorch's MaxUnpool2d with the switches of the named max_pool layer (SegNet): puts
    /// each value back where that pool found its maximum; output = that pool's input shape.
    MaxUnpool {
        pool: String,
    },
    /// PyTorch's `nn.Upsample(scale_factor=scale, mode=mode)`, align_corners=False.
    Upsample {
        #[serde(default = "two")]
        scale: usize,
        #[serde(default)]
        mode: UpsampleMode,
    },
    /// BatchNorm2d on (C,H,W), BatchNorm1d on (K): batch statistics while training (and an
    /// update of the running ones), running statistics at evaluation.
    BatchNorm {
        #[serde(default = "bn_momentum")]
        momentum: f32,
        #[serde(default = "bn_eps")]
        eps: f32,
    },
    /// Zeroes each unit with probability p while training (seeded mask).
    Dropout {
        #[serde(default = "half")]
        p: f32,
        #[serde(default)]
        scaling: DropoutScaling,
    },
    /// GoogLeNet v1's block: four branches on the same input, concatenated on channels:
    /// 1×1 | 1×1 -> 3×3 | 1×1 -> 5×5 | 3×3 max-pool (stride 1) -> 1×1; each conv + ReLU.
    Inception {
        b1: usize,
        b3_reduce: usize,
        b3: usize,
        b5_reduce: usize,
        b5: usize,
        pool_proj: usize,
    },
    /// Joins its inputs on the channel axis ((Ci,H,W) or flat (Ki)).
    Concat {},
    /// Sums two inputs of the same shape (residual connections).
    Add {},
    Flatten {},
}

impl LayerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::ConvTranspose2d { .. } => "conv_transpose2d",
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::Relu {} => "relu",
            LayerSpec::LeakyRelu { .. } => "leaky_relu",
            LayerSpec::Tanh {} => "tanh",
            LayerSpec::Sigmoid {} => "sigmoid",
            LayerSpec::MaxPool { .. } => "max_pool",
            LayerSpec::AvgPool { .. } => "avg_pool",
            LayerSpec::GlobalAvgPool {} => "global_avg_pool",
            LayerSpec::MaxUnpool { .. } => "max_unpool",
            LayerSpec::Upsample { .. } => "upsample",
            LayerSpec::BatchNorm { .. } => "batch_norm",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Inception { .. } => "inception",
            LayerSpec::Concat {} => "concat",
            LayerSpec::Add {} => "add",
            LayerSpec::Flatten {} => "flatten",
        }
    }

    /// How many inputs the layer reads: (at least, at most).
    fn arity(&self) -> (usize, usize) {
        match self {
            LayerSpec::Concat {} => (2, usize::MAX),
            LayerSpec::Add {} => (2, 2),
            _ => (1, 1),
        }
    }

    /// Padding in pixels for a conv layer; "same" resolves to kernel/2 (odd kernels, stride 1).
    pub fn padding_px(&self) -> Option<usize> {
        match self {
            LayerSpec::Conv2d { kernel, padding, .. } => match padding {
                Padding::Pixels(p) => Some(*p),
                Padding::Named(s) if s == "same" => Some(kernel / 2),
                Padding::Named(s) if s == "valid" => Some(0),
                Padding::Named(_) => None,
            },
            _ => None,
        }
    }
}

/// Where a layer reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Input,
    Layer(usize),
}

/// What validation learns about one layer (shapes are of one example, no batch axis).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerPlan {
    pub name: String,
    pub kind: &'static str,
    #[serde(skip)]
    pub sources: Vec<Source>,
    /// The names of the inputs (`"input"` for the model input).
    pub inputs: Vec<String>,
    pub in_shapes: Vec<Vec<usize>>,
    pub out: Vec<usize>,
    pub params: usize,
    pub flops: usize,
}

/// What validation learns: every layer's plan, and totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub layers: Vec<LayerPlan>,
    pub params: usize,
    /// Multiply-adds of one forward pass of one example, times two.
    pub flops: usize,
    /// Activation floats of one example, summed over layers.
    pub activations: usize,
}

impl ModelSpec {
    /// The data section, or the default (all MNIST digits).
    pub fn data_config(&self) -> DataConfig {
        self.data.clone().unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<ModelSpec> {
        let spec = Self::parse(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses without validating (the layer editor shows validation errors per layer).
    pub fn parse(text: &str) -> Result<ModelSpec> {
        serde_json::from_str(text).map_err(|e| Error::Parse {
            what: "model spec",
            message: e.to_string(),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The name of layer `i`: its own, or its index.
    pub fn layer_name(&self, i: usize) -> String {
        self.layers
            .get(i)
            .and_then(|l| l.name.clone())
            .unwrap_or_else(|| i.to_string())
    }

    /// Infers every layer's shapes within the default budget; refuses anything that cannot run.
    pub fn validate(&self) -> Result<Plan> {
        self.validate_with(&Budget::default())
    }

    /// Like `validate`, reporting every problem at once: one error as itself, several as
    /// `Error::Specs`.
    pub fn validate_with(&self, budget: &Budget) -> Result<Plan> {
        let (plan, mut errors) = self.check(budget);
        match errors.len() {
            0 => Ok(plan),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Specs(errors)),
        }
    }

    /// Shape inference over the whole DAG, collecting every problem. A layer with a problem
    /// has no output shape; the layers that read it are skipped rather than blamed. The plan
    /// is complete only when the list of problems is empty.
    pub fn check(&self, budget: &Budget) -> (Plan, Vec<Error>) {
        let mut plan = Plan {
            layers: Vec::new(),
            params: 0,
            flops: 0,
            activations: 0,
        };
        let mut errors = Vec::new();
        let top = |problem: String| Error::Spec {
            index: 0,
            name: None,
            kind: "input".into(),
            problem,
            input_shapes: Vec::new(),
        };
        if self.input.contains(&0) {
            errors.push(top(format!("input shape {:?} has a zero dimension", self.input)));
        }
        if self.classes < 2 {
            errors.push(top(format!("classes must be at least 2, got {}", self.classes)));
        }
        if self.layers.is_empty() {
            errors.push(top("the model has no layers".into()));
        }
        // An explicit data section must fit the model. Without one, a classifier can still be
        // exported or run on any input (training checks it against MNIST, TaskData::new); the
        // other tasks have no default data, which the check names.
        let data = match (&self.data, self.task) {
            (Some(d), _) => Some(d.clone()),
            (None, Task::Classify) => None,
            (None, _) => Some(self.data_config()),
        };
        if let (true, Some(data)) = (errors.is_empty(), data) {
            match data.validate_for(self) {
                Ok(()) => {}
                Err(Error::Config { field, problem }) => errors.push(top(format!("{field}: {problem}"))),
                Err(e @ Error::Spec { .. }) => errors.push(e),
                Err(e) => errors.push(top(e.to_string())),
            }
        }
        if !errors.is_empty() {
            return (plan, errors);
        }

        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut outs: Vec<Option<Vec<usize>>> = Vec::with_capacity(self.layers.len());
        let mut used = vec![false; self.layers.len()];
        let mut over_budget = false;
        for (index, layer) in self.layers.iter().enumerate() {
            let name = self.layer_name(index);
            let kind = layer.op.kind();
            let mut err = |problem: String, shapes: &[Vec<usize>]| {
                errors.push(Error::Spec {
                    index,
                    name: layer.name.clone(),
                    kind: kind.into(),
                    problem,
                    input_shapes: shapes.to_vec(),
                })
            };
            if let Some(n) = &layer.name {
                if let Some(problem) = name_problem(n) {
                    err(problem, &[]);
                } else if index_of.contains_key(n) {
                    err(
                        format!("the name \"{n}\" is already used by layer {}", index_of[n]),
                        &[],
                    );
                }
            }

            // Resolve the inputs: named ones must come earlier in the list (so there are no cycles).
            let wanted: Vec<String> = match &layer.inputs {
                Some(list) => list.clone(),
                None if index == 0 => vec![INPUT.into()],
                None => vec![self.layer_name(index - 1)],
            };
            let mut sources = Vec::with_capacity(wanted.len());
            let mut resolved = true;
            for w in &wanted {
                if layer.inputs.is_none() && index > 0 {
                    // the default: the layer before, by position (even if names clash)
                    sources.push(Source::Layer(index - 1));
                    used[index - 1] = true;
                } else if w == INPUT {
                    sources.push(Source::Input);
                } else if let Some(&j) = index_of.get(w) {
                    sources.push(Source::Layer(j));
                    used[j] = true;
                } else if self
                    .layers
                    .iter()
                    .enumerate()
                    .any(|(j, _)| j >= index && self.layer_name(j) == *w)
                {
                    err(
                        format!("reads \"{w}\", which comes at or after it (a layer may only read earlier layers)"),
                        &[],
                    );
                    resolved = false;
                } else {
                    err(format!("reads \"{w}\", but no layer has that name"), &[]);
                    resolved = false;
                }
            }
            index_of.entry(name.clone()).or_insert(index);
            let (min, max) = layer.op.arity();
            if resolved && (sources.len() < min || sources.len() > max) {
                let want = if min == max {
                    format!("exactly {min}")
                } else {
                    format!("at least {min}")
                };
                err(format!("takes {want} input(s), got {}", sources.len()), &[]);
                resolved = false;
            }
            let in_shapes: Option<Vec<Vec<usize>>> = sources
                .iter()
                .map(|s| match s {
                    Source::Input => Some(self.input.to_vec()),
                    Source::Layer(j) => outs[*j].clone(),
                })
                .collect();
            let Some(in_shapes) = in_shapes.filter(|_| resolved) else {
                outs.push(None);
                continue;
            };

            let pool_of = |pool: &str| -> std::result::Result<(Vec<usize>, Vec<usize>), String> {
                let j = *index_of
                    .get(pool)
                    .filter(|&&j| j < index)
                    .ok_or_else(|| format!("pool \"{pool}\" is not an earlier layer"))?;
                if !matches!(self.layers[j].op, LayerSpec::MaxPool { .. }) {
                    return Err(format!(
                        "pool \"{pool}\" is a {} layer, not a max_pool",
                        self.layers[j].op.kind()
                    ));
                }
                let p = plan
                    .layers
                    .iter()
                    .find(|p| p.name == pool)
                    .ok_or_else(|| format!("pool \"{pool}\" has no valid shapes"))?;
                Ok((p.in_shapes[0].clone(), p.out.clone()))
            };
            match infer(&layer.op, &in_shapes, self.classes, pool_of) {
                Ok((out, params, flops)) => {
                    plan.params = plan.params.saturating_add(params);
                    plan.flops = plan.flops.saturating_add(flops);
                    plan.activations = plan.activations.saturating_add(out.iter().product());
                    if !over_budget && plan.params > budget.max_params {
                        over_budget = true;
                        err(
                            format!(
                                "the model needs {} parameters so far, over the budget of {}",
                                plan.params, budget.max_params
                            ),
                            &in_shapes,
                        );
                    } else if !over_budget && plan.activations > budget.max_activations {
                        over_budget = true;
                        err(
                            format!(
                                "activations reach {} values per example, over the budget of {}",
                                plan.activations, budget.max_activations
                            ),
                            &in_shapes,
                        );
                    }
                    outs.push(Some(out.clone()));
                    plan.layers.push(LayerPlan {
                        name,
                        kind,
                        sources,
                        inputs: wanted,
                        in_shapes,
                        out,
                        params,
                        flops,
                    });
                }
                Err(problem) => {
                    err(problem, &in_shapes);
                    outs.push(None);
                }
            }
        }

        let last = self.layers.len() - 1;
        for (j, u) in used.iter().enumerate().take(last) {
            if !u
                && !self
                    .layers
                    .iter()
                    .any(|l| matches!(&l.op, LayerSpec::MaxUnpool { pool } if *pool == self.layer_name(j)))
            {
                errors.push(Error::Spec {
                    index: j,
                    name: self.layers[j].name.clone(),
                    kind: self.layers[j].op.kind().into(),
                    problem: "its output is not read by any later layer (the last layer is the model's output)".into(),
                    input_shapes: Vec::new(),
                });
            }
        }
        if let Some(Some(out)) = outs.last() {
            if let Err(problem) = self.task.check_output(out, self.classes, self.input) {
                errors.push(Error::Spec {
                    index: last,
                    name: self.layers[last].name.clone(),
                    kind: self.layers[last].op.kind().into(),
                    problem,
                    input_shapes: plan.layers.last().map(|p| p.in_shapes.clone()).unwrap_or_default(),
                });
            }
        }
        errors.sort_by_key(|e| match e {
            Error::Spec { index, .. } => *index,
            _ => 0,
        });
        (plan, errors)
    }
}

/// The layer editor's view of a spec text: every problem (with its layer index) and the
/// plan of the layers that could be inferred, as JSON. Never fails: bad JSON is a problem too.
pub fn check_json(text: &str) -> String {
    let (plan, errors) = match ModelSpec::parse(text) {
        Ok(spec) => spec.check(&Budget::default()),
        Err(e) => (
            Plan {
                layers: Vec::new(),
                params: 0,
                flops: 0,
                activations: 0,
            },
            vec![e],
        ),
    };
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            let index = match e {
                Error::Spec { index, kind, .. } if kind != "input" => Some(*index),
                _ => None,
            };
            serde_json::json!({ "index": index, "message": e.to_string() })
        })
        .collect();
    serde_json::json!({
        "ok": errors.is_empty(),
        "params": plan.params,
        "flops": plan.flops,
        "activations": plan.activations,
        "layers": plan.layers,
        "errors": errors,
    })
    .to_string()
}

/// A layer name must be a Python identifier (the export writes it as a module name), not
/// the reserved "input", and without dots (PyTorch's parameter names join with dots).
fn name_problem(n: &str) -> Option<String> {
    let mut chars = n.chars();
    let ok_start = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(format!(
            "the name \"{n}\" must start with a letter or _ and hold only letters, digits and _"
        ));
    }
    if n == INPUT {
        return Some("the name \"input\" is reserved for the model input".into());
    }
    None
}

fn chw(shape: &[usize], what: &str) -> std::result::Result<[usize; 3], String> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(format!("needs a (C,H,W) input{what}")),
    }
}

const NOT_FLAT: &str = "; it cannot follow flatten, linear or global_avg_pool";

/// One layer's output shape, parameter count and FLOPs from its input shapes, or the problem.
/// `pool_of(name)` gives a named max_pool layer's (input, output) shapes.
fn infer(
    op: &LayerSpec,
    ins: &[Vec<usize>],
    classes: usize,
    pool_of: impl Fn(&str) -> std::result::Result<(Vec<usize>, Vec<usize>), String>,
) -> std::result::Result<(Vec<usize>, usize, usize), String> {
    let _ = classes;
    let x = &ins[0];
    Ok(match op {
        LayerSpec::Conv2d {
            out,
            kernel,
            stride,
            padding,
        } => {
            let [c, h, w] = chw(x, NOT_FLAT)?;
            if *out == 0 || *kernel == 0 || *stride == 0 {
                return Err(format!(
                    "out ({out}), kernel ({kernel}) and stride ({stride}) must be at least 1"
                ));
            }
            let pad = op
                .padding_px()
                .ok_or("padding must be a number of pixels, \"same\" or \"valid\"")?;
            if matches!(padding, Padding::Named(s) if s == "same") && (kernel % 2 == 0 || *stride != 1) {
                return Err(format!(
                    "\"same\" padding needs an odd kernel and stride 1 (kernel {kernel}, stride {stride})"
                ));
            }
            if pad >= *kernel {
                return Err(format!("padding {pad} must be smaller than the kernel {kernel}"));
            }
            let (Some(oh), Some(ow)) = (out_len(h, *kernel, *stride, pad), out_len(w, *kernel, *stride, pad)) else {
                return Err(format!(
                    "kernel {kernel} (padding {pad}) is larger than the {h}×{w} input"
                ));
            };
            (
                vec![*out, oh, ow],
                out * c * kernel * kernel + out,
                2 * out * oh * ow * c * kernel * kernel,
            )
        }
        LayerSpec::ConvTranspose2d {
            out,
            kernel,
            stride,
            padding,
            output_padding,
        } => {
            let [c, h, w] = chw(x, NOT_FLAT)?;
            if *out == 0 || *kernel == 0 || *stride == 0 {
                return Err(format!(
                    "out ({out}), kernel ({kernel}) and stride ({stride}) must be at least 1"
                ));
            }
            if output_padding >= stride {
                return Err(format!(
                    "output_padding {output_padding} must be smaller than stride {stride}"
                ));
            }
            let p = ConvTransposeParams {
                stride: *stride,
                padding: *padding,
                output_padding: *output_padding,
            };
            let (Some(oh), Some(ow)) = (transposed_out_len(h, *kernel, p), transposed_out_len(w, *kernel, p)) else {
                return Err(format!(
                    "padding {padding} leaves no output for the {h}×{w} input (kernel {kernel}, stride {stride})"
                ));
            };
            (
                vec![*out, oh, ow],
                c * out * kernel * kernel + out,
                2 * c * h * w * out * kernel * kernel,
            )
        }
        LayerSpec::Linear { out } => {
            let &[k] = x.as_slice() else {
                return Err("needs a flat input: add a flatten or global_avg_pool layer before it".into());
            };
            if *out == 0 {
                return Err("out must be at least 1".into());
            }
            (vec![*out], out * k + out, 2 * out * k)
        }
        LayerSpec::Relu {} | LayerSpec::Tanh {} | LayerSpec::Sigmoid {} => (x.clone(), 0, 0),
        LayerSpec::LeakyRelu { slope } => {
            if !slope.is_finite() || !(0.0..1.0).contains(slope) {
                return Err(format!("slope {slope} must be a finite number in [0, 1)"));
            }
            (x.clone(), 0, 0)
        }
        LayerSpec::MaxPool { size, stride, padding } | LayerSpec::AvgPool { size, stride, padding } => {
            let [c, h, w] = chw(x, "")?;
            let s = stride.unwrap_or(*size);
            if *size == 0 || s == 0 {
                return Err(format!("size ({size}) and stride ({s}) must be at least 1"));
            }
            if 2 * padding > *size {
                return Err(format!("padding {padding} must be at most half the window {size}"));
            }
            let (Some(oh), Some(ow)) = (out_len(h, *size, s, *padding), out_len(w, *size, s, *padding)) else {
                return Err(format!("window {size} is larger than the {h}×{w} input"));
            };
            (vec![c, oh, ow], 0, 0)
        }
        LayerSpec::GlobalAvgPool {} => {
            let [c, h, w] = chw(x, "")?;
            (vec![c], 0, c * h * w)
        }
        LayerSpec::MaxUnpool { pool } => {
            let (pool_in, pool_out) = pool_of(pool)?;
            if *x != pool_out {
                return Err(format!(
                    "its input {x:?} must have the shape of pool \"{pool}\"'s output {pool_out:?}"
                ));
            }
            (pool_in, 0, 0)
        }
        LayerSpec::Upsample { scale, .. } => {
            let [c, h, w] = chw(x, "")?;
            if *scale == 0 {
                return Err(format!("scale ({scale}) must be at least 1"));
            }
            (vec![c, h * scale, w * scale], 0, 0)
        }
        LayerSpec::BatchNorm { momentum, eps } => {
            if !(momentum.is_finite() && *momentum > 0.0 && *momentum <= 1.0) {
                return Err(format!("momentum {momentum} must be in (0, 1]"));
            }
            if !(eps.is_finite() && *eps > 0.0) {
                return Err(format!("eps {eps} must be a positive number"));
            }
            if x.len() != 3 && x.len() != 1 {
                return Err("needs a (C,H,W) or flat input".into());
            }
            let n: usize = x.iter().product();
            (x.clone(), 2 * x[0], 4 * n)
        }
        LayerSpec::Dropout { p, .. } => {
            if !(p.is_finite() && (0.0..1.0).contains(p)) {
                return Err(format!("p {p} must be in [0, 1)"));
            }
            (x.clone(), 0, 0)
        }
        LayerSpec::Inception {
            b1,
            b3_reduce,
            b3,
            b5_reduce,
            b5,
            pool_proj,
        } => {
            let [c, h, w] = chw(x, NOT_FLAT)?;
            let widths = [b1, b3_reduce, b3, b5_reduce, b5, pool_proj];
            if widths.iter().any(|&&v| v == 0) {
                return Err(format!(
                    "every branch width must be at least 1 (b1 {b1}, b3_reduce {b3_reduce}, b3 {b3}, b5_reduce {b5_reduce}, b5 {b5}, pool_proj {pool_proj})"
                ));
            }
            // multiply-adds per pixel of each conv, and its parameters
            let convs = [
                (c, *b1, 1),
                (c, *b3_reduce, 1),
                (*b3_reduce, *b3, 3),
                (c, *b5_reduce, 1),
                (*b5_reduce, *b5, 5),
                (c, *pool_proj, 1),
            ];
            let params = convs.iter().map(|&(i, o, k)| o * i * k * k + o).sum();
            let macs: usize = convs.iter().map(|&(i, o, k)| o * i * k * k).sum();
            (vec![b1 + b3 + b5 + pool_proj, h, w], params, 2 * macs * h * w)
        }
        LayerSpec::Concat {} => {
            let rest = |s: &Vec<usize>| s[1..].to_vec();
            if ins.iter().any(|s| s.len() != x.len() || rest(s) != rest(x)) {
                return Err(format!(
                    "inputs must agree on every axis but channels, got {}",
                    ins.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                ));
            }
            let mut out = x.clone();
            out[0] = ins.iter().map(|s| s[0]).sum();
            (out, 0, 0)
        }
        LayerSpec::Add {} => {
            if ins.iter().any(|s| s != x) {
                return Err(format!(
                    "inputs must have the same shape, got {}",
                    ins.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                ));
            }
            let n: usize = x.iter().product();
            (x.clone(), 0, n)
        }
        LayerSpec::Flatten {} => (vec![x.iter().product()], 0, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layers: &str) -> std::result::Result<ModelSpec, Error> {
        ModelSpec::from_json(&format!(r#"{{"input":[1,28,28],"classes":10,"layers":{layers}}}"#))
    }

    #[test]
    fn standard_net_validates_with_shapes_and_counts() {
        let s = spec(
            r#"[{"type":"conv2d","out":8,"kernel":5,"padding":"same"},{"type":"relu"},{"type":"max_pool"},
            {"type":"conv2d","out":16,"kernel":5,"padding":"same"},{"type":"relu"},{"type":"max_pool"},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        let plan = s.validate().unwrap();
        assert_eq!(plan.layers[5].out, vec![16, 7, 7]);
        assert_eq!(plan.params, (8 * 25 + 8) + (16 * 8 * 25 + 16) + (784 * 10 + 10));
    }

    #[test]
    fn activation_layers_validate_and_leaky_slope_defaults() {
        let s = spec(
            r#"[{"type":"tanh"},{"type":"sigmoid"},{"type":"leaky_relu"},{"type":"leaky_relu","slope":0.2},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        assert_eq!(s.layers[2].op, LayerSpec::LeakyRelu { slope: 0.01 });
        assert_eq!(s.layers[3].op, LayerSpec::LeakyRelu { slope: 0.2 });
        assert_eq!(s.validate().unwrap().layers[3].out, vec![1, 28, 28]);
        assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn conv_transpose_layer_validates_with_pytorch_shapes() {
        let s = spec(
            r#"[{"type":"conv_transpose2d","out":8,"kernel":3,"stride":2,"padding":1,"output_padding":1},
            {"type":"conv_transpose2d","out":2,"kernel":2},{"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        let plan = s.validate().unwrap();
        // (28-1)·2 - 2 + 3 + 1 = 56, then (56-1)·1 + 2 = 57
        assert_eq!(plan.layers[0].out, vec![8, 56, 56]);
        assert_eq!(plan.layers[1].out, vec![2, 57, 57]);
        assert_eq!(plan.params, (8 * 9 + 8) + (8 * 2 * 4 + 2) + (2 * 57 * 57 * 10 + 10));
        assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn upsample_layer_validates_and_defaults_to_nearest() {
        let s = spec(
            r#"[{"type":"upsample"},{"type":"upsample","scale":3,"mode":"bilinear"},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        assert_eq!(
            s.layers[0].op,
            LayerSpec::Upsample {
                scale: 2,
                mode: UpsampleMode::Nearest
            }
        );
        assert_eq!(s.validate().unwrap().layers[1].out, vec![1, 168, 168]);
        assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn dag_with_inception_concat_add_and_unpool_validates() {
        let s = spec(
            r#"[{"type":"conv2d","out":8,"kernel":3,"padding":1,"name":"stem"},{"type":"batch_norm"},{"type":"relu"},
            {"type":"max_pool","name":"pool1"},
            {"type":"inception","b1":4,"b3_reduce":4,"b3":8,"b5_reduce":2,"b5":4,"pool_proj":4,"name":"inc"},
            {"type":"conv2d","out":20,"kernel":1,"inputs":["pool1"],"name":"proj"},
            {"type":"add","inputs":["inc","proj"],"name":"res"},
            {"type":"conv2d","out":8,"kernel":1},
            {"type":"max_unpool","pool":"pool1","name":"up"},
            {"type":"concat","inputs":["up","stem"]},
            {"type":"global_avg_pool"},{"type":"dropout","p":0.25,"scaling":"classic"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        let plan = s.validate().unwrap();
        let out = |i: usize| plan.layers[i].out.clone();
        assert_eq!(out(3), vec![8, 14, 14]);
        assert_eq!(out(4), vec![20, 14, 14]);
        assert_eq!(out(6), vec![20, 14, 14]);
        assert_eq!(out(8), vec![8, 28, 28]);
        assert_eq!(out(9), vec![16, 28, 28]);
        assert_eq!(out(10), vec![16]);
        assert_eq!(plan.layers[6].inputs, vec!["inc".to_string(), "proj".to_string()]);
        assert_eq!(plan.layers[1].inputs, vec!["stem".to_string()]);
        assert_eq!(plan.layers[0].inputs, vec![INPUT.to_string()]);
        assert_eq!(plan.layers[1].name, "1");
        let inception = 4 * 8 + 4 + (4 * 8 + 4) + (8 * 4 * 9 + 8) + (2 * 8 + 2) + (4 * 2 * 25 + 4) + (4 * 8 + 4);
        assert_eq!(plan.layers[4].params, inception);
        assert_eq!(plan.layers[1].params, 16);
        let total = (8 * 9 + 8) + 16 + inception + (20 * 8 + 20) + (8 * 20 + 8) + (16 * 10 + 10);
        assert_eq!(plan.params, total);
        // names, inputs and every new field survive a JSON round trip
        assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = spec(
            r#"[{"type":"conv2d","out":0,"kernel":3},{"type":"relu"},{"type":"dropout","p":2,"inputs":["input"]},
            {"type":"relu","inputs":["ghost"]},{"type":"flatten","inputs":["2"]},{"type":"linear","out":10}]"#,
        )
        .unwrap_err();
        let Error::Specs(list) = &e else {
            panic!("several problems expected, got {e}")
        };
        let text = e.to_string();
        // layer 1 reads the broken layer 0: skipped, not blamed for its shapes, but nothing
        // reads it (nor layer 3); layer 4 reads the broken layer 2: skipped
        assert_eq!(list.len(), 5, "{text}");
        assert!(text.starts_with("5 problems: layer 0 (conv2d): out (0)"), "{text}");
        assert!(text.contains("layer 1 (relu): its output is not read"), "{text}");
        assert!(text.contains("layer 2 (dropout): p 2 must be in [0, 1)"), "{text}");
        assert!(text.contains("layer 3 (relu): reads \"ghost\""), "{text}");
    }

    #[test]
    fn check_json_lists_problems_by_layer_and_never_fails() {
        let v: Value = serde_json::from_str(&check_json("{oops")).unwrap();
        assert_eq!(v["ok"], false);
        assert!(v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid model spec"));
        assert!(v["errors"][0]["index"].is_null());
        let text = r#"{"input":[1,28,28],"classes":10,"layers":[{"type":"conv2d","out":4,"kernel":3},
            {"type":"linear","out":10}]}"#;
        let v: Value = serde_json::from_str(&check_json(text)).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["errors"][0]["index"], 1);
        assert_eq!(v["layers"][0]["out"], serde_json::json!([4, 26, 26]));
        let fixed = text.replace(r#"{"type":"linear""#, r#"{"type":"flatten"},{"type":"linear""#);
        let v: Value = serde_json::from_str(&check_json(&fixed)).unwrap();
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["params"], 4 * 9 + 4 + 4 * 26 * 26 * 10 + 10);
    }

    #[test]
    fn budgets_are_configurable() {
        let s = spec(r#"[{"type":"flatten"},{"type":"linear","out":10}]"#).unwrap();
        let tight = Budget {
            max_params: 1000,
            max_activations: MAX_ACTIVATIONS,
        };
        let e = s.validate_with(&tight).unwrap_err().to_string();
        assert!(e.contains("7850 parameters so far, over the budget of 1000"), "{e}");
        let tight = Budget {
            max_params: MAX_PARAMS,
            max_activations: 100,
        };
        let e = s.validate_with(&tight).unwrap_err().to_string();
        assert!(
            e.contains("activations reach 784 values per example, over the budget of 100"),
            "{e}"
        );
    }

    #[test]
    fn every_error_names_the_layer_and_problem() {
        let cases = [
            (
                r#"[{"type":"linear","out":10}]"#,
                "layer 0 (linear): needs a flat input",
            ),
            (
                r#"[{"type":"conv2d","out":4,"kernel":40}, {"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (conv2d): kernel 40",
            ),
            (
                r#"[{"type":"conv2d","out":4,"kernel":4,"padding":"same"}]"#,
                "odd kernel",
            ),
            (
                r#"[{"type":"conv2d","out":4,"kernel":3,"padding":"wide"}]"#,
                "padding must be",
            ),
            (r#"[{"type":"conv2d","out":0,"kernel":3}]"#, "must be at least 1"),
            (
                r#"[{"type":"flatten"},{"type":"max_pool"}]"#,
                "layer 1 (max_pool): needs a (C,H,W)",
            ),
            (
                r#"[{"type":"flatten"},{"type":"conv2d","out":2,"kernel":3}]"#,
                "layer 1 (conv2d): needs a (C,H,W)",
            ),
            (r#"[{"type":"max_pool","size":30}]"#, "window 30"),
            (
                r#"[{"type":"flatten"},{"type":"linear","out":7}]"#,
                "must end in 10 class scores",
            ),
            (
                r#"[{"type":"flatten"},{"type":"linear","out":100000},{"type":"linear","out":10}]"#,
                "over the budget",
            ),
            (r#"[{"type":"dense","out":3}]"#, "unknown variant `dense`"),
            (r#"[{"type":"relu","alpha":3}]"#, "unknown field `alpha`"),
            (r#"[{"type":"tanh","alpha":3}]"#, "unknown field `alpha`"),
            (r#"[{"type":"sigmoid","slope":0.1}]"#, "unknown field `slope`"),
            (r#"[{"type":"leaky_relu","alpha":3}]"#, "unknown field `alpha`"),
            (
                r#"[{"type":"leaky_relu","slope":1.5},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (leaky_relu): slope 1.5 must be",
            ),
            (
                r#"[{"type":"flatten"},{"type":"leaky_relu","slope":-0.1},{"type":"linear","out":10}]"#,
                "layer 1 (leaky_relu): slope -0.1 must be",
            ),
            (
                r#"[{"type":"conv_transpose2d","out":2,"kernel":3,"stride":2,"output_padding":2}]"#,
                "layer 0 (conv_transpose2d): output_padding 2 must be smaller than stride 2",
            ),
            (
                r#"[{"type":"conv_transpose2d","out":2,"kernel":3,"padding":20}]"#,
                "layer 0 (conv_transpose2d): padding 20 leaves no output for the 28×28 input",
            ),
            (
                r#"[{"type":"conv_transpose2d","out":0,"kernel":3}]"#,
                "layer 0 (conv_transpose2d): out (0), kernel (3) and stride (1) must be at least 1",
            ),
            (
                r#"[{"type":"flatten"},{"type":"conv_transpose2d","out":2,"kernel":3}]"#,
                "layer 1 (conv_transpose2d): needs a (C,H,W)",
            ),
            (
                r#"[{"type":"upsample","scale":0}]"#,
                "layer 0 (upsample): scale (0) must be at least 1",
            ),
            (r#"[{"type":"upsample","mode":"bicubic"}]"#, "unknown variant `bicubic`"),
            (
                r#"[{"type":"flatten"},{"type":"upsample"}]"#,
                "layer 1 (upsample): needs a (C,H,W)",
            ),
            (r#"[]"#, "no layers"),
            (
                r#"[{"type":"max_pool","size":2,"padding":2},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (max_pool): padding 2 must be at most half the window 2",
            ),
            (
                r#"[{"type":"batch_norm","momentum":0},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (batch_norm): momentum 0 must be in (0, 1]",
            ),
            (
                r#"[{"type":"batch_norm","eps":-1},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (batch_norm): eps -1 must be a positive number",
            ),
            (
                r#"[{"type":"dropout","p":1},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (dropout): p 1 must be in [0, 1)",
            ),
            (r#"[{"type":"dropout","scaling":"weird"}]"#, "unknown variant `weird`"),
            (
                r#"[{"type":"flatten"},{"type":"global_avg_pool"},{"type":"linear","out":10}]"#,
                "layer 1 (global_avg_pool): needs a (C,H,W) input (input shape [784])",
            ),
            (
                r#"[{"type":"inception","b1":0,"b3_reduce":1,"b3":1,"b5_reduce":1,"b5":1,"pool_proj":1},
                {"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (inception): every branch width must be at least 1",
            ),
            (r#"[{"type":"inception","b1":2}]"#, "missing field `b3_reduce`"),
            (
                r#"[{"type":"flatten"},{"type":"inception","b1":1,"b3_reduce":1,"b3":1,"b5_reduce":1,"b5":1,"pool_proj":1}]"#,
                "layer 1 (inception): needs a (C,H,W) input",
            ),
            (
                r#"[{"type":"conv2d","out":2,"kernel":3,"name":"a"},{"type":"conv2d","out":3,"kernel":1,"name":"b","inputs":["input"]},
                {"type":"add","inputs":["a","b"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 2 (add): inputs must have the same shape, got [2, 26, 26], [3, 28, 28]",
            ),
            (
                r#"[{"type":"conv2d","out":2,"kernel":3,"name":"a"},{"type":"conv2d","out":3,"kernel":1,"name":"b","inputs":["input"]},
                {"type":"concat","inputs":["a","b"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 2 (concat): inputs must agree on every axis but channels, got [2, 26, 26], [3, 28, 28]",
            ),
            (
                r#"[{"type":"concat"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (concat): takes at least 2 input(s), got 1",
            ),
            (
                r#"[{"type":"add","inputs":["input","input","input"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (add): takes exactly 2 input(s), got 3",
            ),
            (
                r#"[{"type":"relu","inputs":["nowhere"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (relu): reads \"nowhere\", but no layer has that name",
            ),
            (
                r#"[{"type":"relu","inputs":["later"]},{"type":"relu","name":"later"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (relu): reads \"later\", which comes at or after it",
            ),
            (
                r#"[{"type":"relu","name":"x"},{"type":"relu","name":"x"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 1 \"x\" (relu): the name \"x\" is already used by layer 0",
            ),
            (
                r#"[{"type":"relu","name":"1st"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "the name \"1st\" must start with a letter",
            ),
            (
                r#"[{"type":"relu","name":"a.b"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "the name \"a.b\" must start with a letter",
            ),
            (
                r#"[{"type":"relu","name":"input"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "reserved for the model input",
            ),
            (r#"[{"type":"relu","name":7}]"#, "a layer name must be a string"),
            (
                r#"[{"type":"relu","inputs":"a"}]"#,
                "inputs must be a list of layer names",
            ),
            (
                r#"[{"type":"relu","name":"dead"},{"type":"flatten","inputs":["input"]},{"type":"linear","out":10}]"#,
                "layer 0 \"dead\" (relu): its output is not read by any later layer",
            ),
            (
                r#"[{"type":"max_pool","name":"p"},{"type":"max_unpool","pool":"q"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 1 (max_unpool): pool \"q\" is not an earlier layer",
            ),
            (
                r#"[{"type":"relu","name":"p"},{"type":"max_unpool","pool":"p"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 1 (max_unpool): pool \"p\" is a relu layer, not a max_pool",
            ),
            (
                r#"[{"type":"max_pool","name":"p"},{"type":"max_pool"},{"type":"max_unpool","pool":"p"},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 2 (max_unpool): its input [1, 7, 7] must have the shape of pool \"p\"'s output [1, 14, 14]",
            ),
        ];
        for (layers, want) in cases {
            let e = spec(layers).expect_err(layers).to_string();
            assert!(!e.contains("problems:"), "{layers}: one problem expected, got {e:?}");
            assert!(e.contains(want), "{layers}: got {e:?}, want {want:?}");
        }
        let e = ModelSpec::from_json("{not json").unwrap_err().to_string();
        assert!(e.starts_with("invalid model spec"), "{e}");
        let e = ModelSpec::from_json(r#"{"input":[0,28,28],"classes":10,"layers":[{"type":"flatten"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero dimension"), "{e}");
    }
}
