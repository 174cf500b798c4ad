//! In-browser tests (`wasm-pack test --headless --chrome crate`): the CPU backend and the
//! WebGPU backend (SwiftShader in headless Chromium) inside real Chromium.
#![cfg(target_arch = "wasm32")]

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::{Backend, Conv2dParams, Device, PoolParams};
use cnn_playground::data::Rng;
use cnn_playground::nn::OptimizerKind;
use cnn_playground::spec::Task;
use cnn_playground::tensor::Shape;
use cnn_playground::{BackendChoice, ModelSpec, TrainConfig, Trainer};
use wasm_bindgen_test::*;

mod common;
use common::{bars, TINY};

wasm_bindgen_test_configure!(run_in_browser);

fn config(batch: usize) -> TrainConfig {
    TrainConfig {
        batch,
        lr: 0.01,
        optimizer: OptimizerKind::Adam,
        ..TrainConfig::default()
    }
}

#[wasm_bindgen_test]
async fn cpu_training_lowers_the_loss_in_the_browser() {
    let spec = ModelSpec::from_json(TINY).unwrap();
    let mut t = Trainer::with_device(
        spec,
        config(16),
        bars(200),
        Device::Cpu(CpuBackend::new()),
        "test".into(),
    )
    .unwrap();
    let first = t.step(5).await.unwrap().loss;
    for _ in 0..6 {
        t.step(10).await.unwrap();
    }
    let last = t.step(5).await.unwrap().loss;
    assert!(last < 0.5 * first, "loss went from {first} to {last}");
}

#[wasm_bindgen_test]
async fn auto_choice_reports_a_backend_and_why() {
    let selected = cnn_playground::backend::select(BackendChoice::Auto).await;
    let name = selected.device.backend().name();
    assert!(name == "cpu" || name == "webgpu");
    assert!(!selected.reason.is_empty());
    if let Device::Gpu(g) = &selected.device {
        assert!(
            !g.is_software(),
            "auto must not pick a software adapter: {}",
            selected.reason
        );
    }
}

fn close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * y.abs().max(1.0),
            "{what}[{i}]: webgpu {x} vs cpu {y}"
        );
    }
}

#[wasm_bindgen_test]
async fn webgpu_ops_match_cpu_in_the_browser() {
    let gpu = GpuBackend::request()
        .await
        .expect("headless Chromium with SwiftShader exposes WebGPU");
    let cpu = CpuBackend::new();
    let mut rng = Rng::new(2);
    let mut r = |n: usize| (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect::<Vec<f32>>();
    let (x, w, b) = (r(2 * 3 * 7 * 6), r(4 * 3 * 3 * 3), r(4));
    let p = Conv2dParams { stride: 2, padding: 1 };
    let (xs, ws) = (Shape::new(&[2, 3, 7, 6]), Shape::new(&[4, 3, 3, 3]));
    let mut outs = Vec::new();
    for be in [&gpu as &dyn Backend, &cpu] {
        let xt = be.upload(xs.clone(), &x).unwrap();
        let wt = be.upload(ws.clone(), &w).unwrap();
        let y = be
            .conv2d(&xt, &wt, &be.upload(Shape::new(&[4]), &b).unwrap(), p)
            .unwrap();
        let dx = be.conv2d_backward_input(&y, &wt, &xs, p).unwrap();
        let (dw, db) = be.conv2d_backward_weight(&y, &xt, &ws, p).unwrap();
        let (pooled, idx) = be
            .max_pool2d(
                &xt,
                PoolParams {
                    kernel: 2,
                    stride: 2,
                    padding: 0,
                },
            )
            .unwrap();
        let dpool = be.max_pool2d_backward(&pooled, &idx, &xs).unwrap();
        be.flush().unwrap();
        let mut got = Vec::new();
        for t in [&y, &dx, &dw, &db, &pooled, &dpool] {
            got.push(be.read(t).await.unwrap());
        }
        outs.push(got);
    }
    for (i, name) in [
        "conv2d",
        "conv2d dx",
        "conv2d dw",
        "conv2d db",
        "max_pool2d",
        "max_pool2d dx",
    ]
    .iter()
    .enumerate()
    {
        close(name, &outs[0][i], &outs[1][i]);
    }
}

#[wasm_bindgen_test]
async fn webgpu_training_matches_cpu_losses_in_the_browser() {
    let spec = ModelSpec::from_json(TINY).unwrap();
    let gpu = GpuBackend::request().await.expect("WebGPU adapter");
    let mut on_gpu = Trainer::with_device(spec.clone(), config(8), bars(100), Device::Gpu(gpu), "test".into()).unwrap();
    let mut on_cpu = Trainer::with_device(
        spec,
        config(8),
        bars(100),
        Device::Cpu(CpuBackend::new()),
        "test".into(),
    )
    .unwrap();
    for _ in 0..4 {
        let (g, c) = (on_gpu.step(2).await.unwrap(), on_cpu.step(2).await.unwrap());
        assert_eq!(g.step, c.step);
        assert!(
            (g.loss - c.loss).abs() <= 1e-3 * c.loss.abs().max(1.0),
            "step {}: webgpu loss {} vs cpu {}",
            c.step,
            g.loss,
            c.loss
        );
    }
}

/// The course's layers on WebGPU in the browser: batch norm (train mode, running update),
/// seeded dropout, an inception block, a residual add, max-unpool, concat and a global
/// average pool head train with the CPU's losses, and evaluate alike in eval mode.
#[wasm_bindgen_test]
async fn webgpu_course_layers_match_cpu_in_the_browser() {
    let spec = ModelSpec::from_json(
        r#"{"input":[1,28,28],"classes":10,"layers":[
        {"type":"conv2d","out":4,"kernel":3,"padding":1,"name":"stem"},{"type":"batch_norm"},{"type":"relu"},
        {"type":"max_pool","name":"pool"},
        {"type":"inception","b1":2,"b3_reduce":2,"b3":2,"b5_reduce":1,"b5":2,"pool_proj":2,"name":"inc"},
        {"type":"conv2d","out":8,"kernel":1,"inputs":["pool"],"name":"proj"},
        {"type":"add","inputs":["inc","proj"]},{"type":"conv2d","out":4,"kernel":1},
        {"type":"max_unpool","pool":"pool"},{"type":"concat","inputs":["8","stem"]},
        {"type":"dropout","p":0.3},{"type":"global_avg_pool"},{"type":"linear","out":10}]}"#,
    )
    .unwrap();
    let sgd = TrainConfig {
        optimizer: OptimizerKind::Sgd,
        lr: 0.05,
        ..config(8)
    };
    let gpu = GpuBackend::request().await.expect("WebGPU adapter");
    let mut on_gpu =
        Trainer::with_device(spec.clone(), sgd.clone(), bars(100), Device::Gpu(gpu), "test".into()).unwrap();
    let mut on_cpu = Trainer::with_device(spec, sgd, bars(100), Device::Cpu(CpuBackend::new()), "test".into()).unwrap();
    for _ in 0..3 {
        let (g, c) = (on_gpu.step(2).await.unwrap(), on_cpu.step(2).await.unwrap());
        assert!(
            (g.loss - c.loss).abs() <= 2e-3 * c.loss.abs().max(1.0),
            "step {}: webgpu loss {} vs cpu {}",
            c.step,
            g.loss,
            c.loss
        );
    }
    let (g, c) = (on_gpu.evaluate(20).await.unwrap(), on_cpu.evaluate(20).await.unwrap());
    assert!(
        (g.val_loss - c.val_loss).abs() <= 2e-3 * c.val_loss.max(1.0),
        "eval: webgpu {} vs cpu {}",
        g.val_loss,
        c.val_loss
    );
}

/// Every task preset trains on WebGPU (SwiftShader) with the CPU's losses, loss terms and
/// validation loss: localization, detection and each segmentation decoder.
#[wasm_bindgen_test]
async fn webgpu_task_presets_match_cpu_in_the_browser() {
    let presets = [
        include_str!("../../presets/shapes-localize.json"),
        include_str!("../../presets/shapes-detect.json"),
        include_str!("../../presets/shapes-segment-transposed.json"),
        include_str!("../../presets/shapes-segment-unpool.json"),
        include_str!("../../presets/shapes-segment-resize.json"),
        include_str!("../../presets/shapes-segment-transposed-unet.json"),
    ];
    let sgd = TrainConfig {
        batch: 2,
        lr: 0.01,
        optimizer: OptimizerKind::Sgd,
        dice: 0.5,
        ..TrainConfig::default()
    };
    for text in presets {
        let mut spec = ModelSpec::from_json(text).unwrap();
        let mut data = spec.data_config();
        data.val = 2;
        // the fully convolutional presets at 32×32 (a quarter of the work under SwiftShader)
        if spec.task != Task::Localize {
            data.size = 32;
            spec.input = [3, 32, 32];
        }
        spec.data = Some(data);
        let gpu = GpuBackend::request().await.expect("WebGPU adapter");
        let mut on_gpu = Trainer::with_data(spec.clone(), sgd.clone(), None, Device::Gpu(gpu), "test".into()).unwrap();
        let mut on_cpu = Trainer::with_data(
            spec.clone(),
            sgd.clone(),
            None,
            Device::Cpu(CpuBackend::new()),
            "test".into(),
        )
        .unwrap();
        for _ in 0..2 {
            let (g, c) = (on_gpu.step(1).await.unwrap(), on_cpu.step(1).await.unwrap());
            assert!(
                (g.loss - c.loss).abs() <= 2e-3 * c.loss.abs().max(1.0),
                "{} step {}: webgpu loss {} vs cpu {}",
                spec.name,
                c.step,
                g.loss,
                c.loss
            );
            for (k, v) in &c.parts {
                let w = g.parts[k];
                assert!(
                    (w - v).abs() <= 2e-3 * v.abs().max(1.0),
                    "{} {k}: webgpu {w} vs cpu {v}",
                    spec.name
                );
            }
        }
        let (ge, ce) = (on_gpu.evaluate(0).await.unwrap(), on_cpu.evaluate(0).await.unwrap());
        assert!(
            (ge.val_loss - ce.val_loss).abs() <= 2e-3 * ce.val_loss.abs().max(1.0),
            "{}: webgpu val loss {} vs cpu {}",
            spec.name,
            ge.val_loss,
            ce.val_loss
        );
    }
}

/// The chapters' probes in the browser (the page's path): on WebGPU with the CPU's weights,
/// the same headers as on the CPU, within float noise.
#[wasm_bindgen_test]
async fn webgpu_instruments_match_cpu_in_the_browser() {
    let spec = ModelSpec::from_json(
        r#"{"input":[1,28,28],"classes":10,"layers":[
        {"type":"conv2d","out":4,"kernel":3,"padding":1},{"type":"batch_norm"},{"type":"relu"},
        {"type":"dropout","p":0.3},{"type":"max_pool","size":2,"name":"p"},{"type":"conv2d","out":4,"kernel":3,"padding":1},
        {"type":"max_unpool","pool":"p"},{"type":"conv_transpose2d","out":2,"kernel":2,"stride":2},
        {"type":"max_pool","size":8},{"type":"flatten"},{"type":"linear","out":10}]}"#,
    )
    .unwrap();
    let gpu = GpuBackend::request().await.expect("WebGPU adapter");
    let mut on_cpu = Trainer::with_device(
        spec.clone(),
        config(4),
        bars(200),
        Device::Cpu(CpuBackend::new()),
        "test".into(),
    )
    .unwrap();
    let mut on_gpu = Trainer::with_device(spec, config(4), bars(200), Device::Gpu(gpu), "test".into()).unwrap();
    on_cpu.step(2).await.unwrap();
    on_gpu.load_weights(&on_cpu.save_weights().await.unwrap()).unwrap();
    for name in ["kernels", "activations", "checkerboard"] {
        let c = on_cpu.instrument(name, &serde_json::Value::Null).await.unwrap();
        let g = on_gpu.instrument(name, &serde_json::Value::Null).await.unwrap();
        let num = |i: &cnn_playground::probe::Instrument, key: &str| i.header[key].as_f64();
        match name {
            "kernels" => {
                assert_eq!(num(&c, "norm").map(|v| v as f32), num(&g, "norm").map(|v| v as f32));
                close(
                    "kernels hist",
                    c.array(&c.header["hist"]["counts"]).unwrap(),
                    g.array(&g.header["hist"]["counts"]).unwrap(),
                );
            }
            "activations" => {
                let (lc, lg) = (&c.header["layers"], &g.header["layers"]);
                for (a, b) in lc.as_array().unwrap().iter().zip(lg.as_array().unwrap()) {
                    for k in ["p15", "p50", "p85"] {
                        let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
                        assert!(
                            (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                            "{} {k}: cpu {x} vs webgpu {y}",
                            a["name"]
                        );
                    }
                }
            }
            _ => {
                let (x, y) = (num(&c, "score").unwrap(), num(&g, "score").unwrap());
                assert!((x - y).abs() <= 1e-3, "checkerboard: cpu {x} vs webgpu {y}");
            }
        }
    }
}
