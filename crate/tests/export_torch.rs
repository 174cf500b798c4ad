//! Round trip to real PyTorch: a model built by the engine, its weights saved as
//! safetensors and its spec exported as model.py must give, in PyTorch, the engine's output
//! (within 1e-4 relative). Runs only where a Python with torch and safetensors is found
//! (`CNNP_TORCH_PYTHON`, else /tmp/torchenv/bin/python, else python3); elsewhere it prints
//! "skipped: torch not installed" and passes.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::Command;

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::Backend;
use cnn_playground::data::Rng;
use cnn_playground::nn::export::model_py;
use cnn_playground::nn::io::{load_safetensors, save_safetensors};
use cnn_playground::nn::{infer, Mode, Model};
use cnn_playground::spec::LayerSpec;
use cnn_playground::ModelSpec;
use serde_json::{json, Value};

/// Specs checked end to end: engine forward vs PyTorch forward with the same weights.
/// Add a case here when a layer kind becomes buildable (batch norm, dropout, inception,
/// max_unpool, concat, add, global_avg_pool).
const ROUND_TRIPS: &[(&str, &str)] = &[
    (
        "chain",
        r#"{"input": [1, 12, 12], "classes": 5, "layers": [
            {"type": "conv2d", "out": 4, "kernel": 3, "padding": "same", "name": "conv1"},
            {"type": "relu"},
            {"type": "max_pool", "size": 2},
            {"type": "conv_transpose2d", "out": 3, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
            {"type": "upsample", "scale": 2},
            {"type": "avg_pool", "size": 3, "stride": 2},
            {"type": "flatten"},
            {"type": "linear", "out": 5, "name": "head"}]}"#,
    ),
    (
        "activations",
        r#"{"input": [2, 9, 9], "classes": 3, "layers": [
            {"type": "conv2d", "out": 3, "kernel": 3, "stride": 2, "padding": 1, "name": "down"},
            {"type": "leaky_relu", "slope": 0.1},
            {"type": "conv_transpose2d", "out": 2, "kernel": 2, "stride": 2, "name": "up"},
            {"type": "tanh"},
            {"type": "upsample", "scale": 3, "mode": "bilinear"},
            {"type": "sigmoid"},
            {"type": "max_pool", "size": 3, "stride": 2},
            {"type": "avg_pool", "size": 2},
            {"type": "conv2d", "out": 4, "kernel": 1, "padding": "valid"},
            {"type": "flatten", "name": "flat"},
            {"type": "linear", "out": 6},
            {"type": "relu"},
            {"type": "linear", "out": 3}]}"#,
    ),
    (
        "naive_inception",
        r#"{"input": [3, 8, 8], "classes": 4, "layers": [
            {"type": "inception", "b1": 2, "b3_reduce": 5, "b3": 3, "b5_reduce": 7, "b5": 2, "pool_proj": 1, "reduce": false, "name": "naive"},
            {"type": "inception", "b1": 1, "b3_reduce": 2, "b3": 2, "b5_reduce": 1, "b5": 1, "pool_proj": 1},
            {"type": "global_avg_pool"},
            {"type": "linear", "out": 4}]}"#,
    ),
    ("every_kind", EVERY_KIND),
];

/// A DAG with every layer kind, not all buildable by the engine yet: PyTorch builds it from
/// model.py, and its state dict and parameter count must be the engine's.
const EVERY_KIND: &str = r#"{"input": [1, 12, 12], "classes": 3, "layers": [
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
    {"type": "max_pool", "size": 3, "stride": 2, "padding": 1},
    {"type": "relu", "name": "maps"},
    {"type": "global_avg_pool", "name": "gap"},
    {"type": "flatten", "inputs": ["maps"]},
    {"type": "linear", "out": 6},
    {"type": "batch_norm", "momentum": 0.2, "eps": 0.001},
    {"type": "dropout", "p": 0.25, "scaling": "classic"},
    {"type": "concat", "inputs": ["21", "gap"]},
    {"type": "dropout", "p": 0.1},
    {"type": "linear", "out": 3, "name": "head"}
]}"#;

/// Builds model.py, loads the weights when the case has them, runs the input through it
/// in eval mode (and once in train mode, which must run too), and writes what it saw.
/// Then the other way: a model initialised by PyTorch, saved by safetensors, and its output.
const TORCH_SCRIPT: &str = r#"
import importlib.util
import json
import os
import sys

import torch
from safetensors.torch import save_file

folder = sys.argv[1]
loader = importlib.util.spec_from_file_location("model", os.path.join(folder, "model.py"))
module = importlib.util.module_from_spec(loader)
loader.loader.exec_module(module)
with open(os.path.join(folder, "case.json")) as f:
    case = json.load(f)
weights = os.path.join(folder, "weights.safetensors") if case["weights"] else None
model = module.build(weights).eval()
x = torch.tensor(case["x"], dtype=torch.float32).reshape(case["x_shape"])
with torch.no_grad():
    y = model(x)
    y_train = model.train()(x)
result = {
    "shape": list(y.shape),
    "train_shape": list(y_train.shape),
    "y": y.flatten().tolist(),
    "state": {k: list(v.shape) for k, v in model.state_dict().items()},
    "params": sum(p.numel() for p in model.parameters()),
    "input_shape": list(module.INPUT_SHAPE),
    "classes": module.CLASSES,
}
torch.manual_seed(0)
fresh = module.build().eval()
save_file(fresh.state_dict(), os.path.join(folder, "torch_weights.safetensors"))
with torch.no_grad():
    result["y_fresh"] = fresh(x).flatten().tolist()
with open(os.path.join(folder, "torch.json"), "w") as f:
    json.dump(result, f)
"#;

/// A Python that imports torch and safetensors, if there is one.
fn torch_python() -> Option<String> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("CNNP_TORCH_PYTHON") {
        candidates.push(p);
    }
    candidates.extend(["/tmp/torchenv/bin/python".to_string(), "python3".to_string()]);
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import torch, safetensors"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn scratch(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cnnp-torch-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs TORCH_SCRIPT on the folder; returns what PyTorch saw.
fn run_torch(python: &str, dir: &Path, case: Value) -> Value {
    std::fs::write(dir.join("case.json"), case.to_string()).unwrap();
    std::fs::write(dir.join("check.py"), TORCH_SCRIPT).unwrap();
    let out = Command::new(python)
        .arg(dir.join("check.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyTorch failed on {}:\n{}\nmodel.py:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("model.py")).unwrap_or_default()
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("torch.json")).unwrap()).unwrap()
}

fn seeded_input(n: usize, spec: &ModelSpec, seed: u64) -> (Vec<usize>, Vec<f32>) {
    let [c, h, w] = spec.input;
    let mut rng = Rng::new(seed);
    let x = (0..n * c * h * w).map(|_| rng.uniform(-1.0, 1.0)).collect();
    (vec![n, c, h, w], x)
}

/// Engine output vs PyTorch's, within 1e-4·max(1, |PyTorch|).
fn assert_close(case: &str, engine: &[f32], torch: &Value) {
    let torch: Vec<f32> = serde_json::from_value(torch.clone()).unwrap();
    assert_eq!(torch.len(), engine.len(), "{case}");
    for (j, (a, b)) in engine.iter().zip(&torch).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{case}: output {j}: engine {a}, PyTorch {b}"
        );
    }
}

#[test]
fn engine_and_pytorch_agree_on_exported_models() {
    let Some(python) = torch_python() else {
        println!("skipped: torch not installed");
        return;
    };
    let cpu = CpuBackend::new();
    for (i, &(case, text)) in ROUND_TRIPS.iter().enumerate() {
        let spec = ModelSpec::from_json(text).unwrap();
        let (model, mut store) = Model::build(&spec, &cpu, &mut Rng::new(7 + i as u64)).unwrap();
        // running statistics as after some training (fresh ones are 0 and 1, too easy)
        let mut rng = Rng::new(50 + i as u64);
        for b in &mut store.buffers {
            let v: Vec<f32> = (0..b.value.numel()).map(|_| rng.uniform(0.2, 1.5)).collect();
            b.value = cpu.upload(b.value.shape.clone(), &v).unwrap();
        }
        let dir = scratch(case);
        let weights = pollster::block_on(save_safetensors(&store, &cpu)).unwrap();
        std::fs::write(dir.join("weights.safetensors"), weights).unwrap();
        std::fs::write(dir.join("model.py"), model_py(&spec).unwrap()).unwrap();
        let (x_shape, x) = seeded_input(3, &spec, 100 + i as u64);
        let (shape, y) = pollster::block_on(infer(&model, &store, &cpu, &x, 3, Mode::Eval)).unwrap();

        let torch = run_torch(&python, &dir, json!({"weights": true, "x": x, "x_shape": x_shape}));
        assert_eq!(torch["shape"], json!(shape), "{case}: output shape");
        assert_close(case, &y, &torch["y"]);
        // the state dict is exactly the store: same names, same shapes
        let mut want = serde_json::Map::new();
        for p in &store.params {
            want.insert(p.name.clone(), json!(p.value.dims()));
        }
        for b in &store.buffers {
            want.insert(b.name.clone(), json!(b.value.dims()));
            if let Some(layer) = b.name.strip_suffix(".running_mean") {
                want.insert(format!("{layer}.num_batches_tracked"), json!([]));
            }
        }
        assert_eq!(torch["state"], Value::Object(want), "{case}: state dict");

        // PyTorch's own initialisation, saved by safetensors.torch, loads into the engine
        let bytes = std::fs::read(dir.join("torch_weights.safetensors")).unwrap();
        load_safetensors(&bytes, &mut store, &cpu).unwrap();
        let (_, y) = pollster::block_on(infer(&model, &store, &cpu, &x, 3, Mode::Eval)).unwrap();
        assert_close(&format!("{case}, PyTorch's weights"), &y, &torch["y_fresh"]);

        // model.py run as a script loads the weights beside it
        let out = Command::new(&python).arg(dir.join("model.py")).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{case}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.trim(), format!("output shape (1, {})", spec.classes), "{case}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The names and shapes the engine gives (or will give) each layer's tensors, from the
/// spec's plan alone.
fn engine_state(spec: &ModelSpec) -> serde_json::Map<String, Value> {
    let plan = spec.validate().unwrap();
    let mut state = serde_json::Map::new();
    let mut add = |name: String, dims: Vec<usize>| {
        state.insert(name, json!(dims));
    };
    for (layer, lp) in spec.layers.iter().zip(&plan.layers) {
        let (name, c) = (&lp.name, lp.in_shapes[0][0]);
        let out = lp.out[0];
        match &layer.op {
            LayerSpec::Conv2d { kernel, .. } => {
                add(format!("{name}.weight"), vec![out, c, *kernel, *kernel]);
                add(format!("{name}.bias"), vec![out]);
            }
            LayerSpec::ConvTranspose2d { kernel, .. } => {
                add(format!("{name}.weight"), vec![c, out, *kernel, *kernel]);
                add(format!("{name}.bias"), vec![out]);
            }
            LayerSpec::Linear { .. } => {
                add(format!("{name}.weight"), vec![out, c]);
                add(format!("{name}.bias"), vec![out]);
            }
            LayerSpec::BatchNorm { .. } => {
                for t in ["weight", "bias", "running_mean", "running_var"] {
                    add(format!("{name}.{t}"), vec![c]);
                }
                add(format!("{name}.num_batches_tracked"), vec![]);
            }
            LayerSpec::Inception {
                b1,
                b3_reduce,
                b3,
                b5_reduce,
                b5,
                pool_proj,
                reduce,
            } => {
                let (r3, r5) = if *reduce { (*b3_reduce, *b5_reduce) } else { (c, c) };
                let convs = [
                    ("b1", *b1, c, 1),
                    ("b3_reduce", *b3_reduce, c, 1),
                    ("b3", *b3, r3, 3),
                    ("b5_reduce", *b5_reduce, c, 1),
                    ("b5", *b5, r5, 5),
                    ("pool_proj", *pool_proj, c, 1),
                ];
                // the naive block has no reductions
                let convs = convs
                    .into_iter()
                    .filter(|(sub, ..)| *reduce || !sub.ends_with("_reduce"));
                for (sub, o, i, k) in convs {
                    add(format!("{name}.{sub}.weight"), vec![o, i, k, k]);
                    add(format!("{name}.{sub}.bias"), vec![o]);
                }
            }
            _ => {}
        }
    }
    state
}

#[test]
fn pytorch_builds_every_layer_kind_with_the_engine_names() {
    let Some(python) = torch_python() else {
        println!("skipped: torch not installed");
        return;
    };
    let spec = ModelSpec::from_json(EVERY_KIND).unwrap();
    let dir = scratch("every-kind");
    std::fs::write(dir.join("model.py"), model_py(&spec).unwrap()).unwrap();
    let (x_shape, x) = seeded_input(4, &spec, 3);
    let torch = run_torch(&python, &dir, json!({"weights": false, "x": x, "x_shape": x_shape}));
    assert_eq!(torch["shape"], json!([4, 3]));
    assert_eq!(torch["train_shape"], json!([4, 3]));
    assert_eq!(torch["input_shape"], json!([1, 12, 12]));
    assert_eq!(torch["classes"], json!(3));
    assert_eq!(torch["params"], json!(spec.validate().unwrap().params));
    assert_eq!(torch["state"], Value::Object(engine_state(&spec)));
    let _ = std::fs::remove_dir_all(&dir);
}
