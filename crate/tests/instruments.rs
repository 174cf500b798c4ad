//! The chapters' probes (`Trainer::instrument`) on the GPU backend against the CPU
//! reference: the same spec, seed and data on both, the headers and arrays compared number
//! by number within a tolerance. Without an adapter the tests print "skipped: no GPU
//! adapter" and pass (natively, Mesa's lavapipe provides one).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::Device;
use cnn_playground::probe::Instrument;
use cnn_playground::{ModelSpec, TrainConfig, Trainer};
use serde_json::{json, Value};

/// As readback.rs's PROBED: dropout, batch norm, switches and an unpool, a transposed conv.
const PROBED: &str = r#"{"input":[1,28,28],"classes":10,"layers":[
    {"type":"conv2d","out":4,"kernel":3,"padding":1},{"type":"batch_norm"},{"type":"relu"},
    {"type":"dropout","p":0.3},{"type":"max_pool","size":2,"name":"p"},{"type":"conv2d","out":4,"kernel":3,"padding":1},
    {"type":"max_unpool","pool":"p"},{"type":"conv_transpose2d","out":2,"kernel":2,"stride":2,"name":"up"},
    {"type":"max_pool","size":8},{"type":"flatten"},{"type":"linear","out":10}]}"#;

fn twins() -> Option<(Trainer, Trainer)> {
    let gpu = match pollster::block_on(GpuBackend::request()) {
        Ok(g) => g,
        Err(e) => {
            println!("skipped: no GPU adapter ({e})");
            return None;
        }
    };
    let mut spec = ModelSpec::from_json(PROBED).unwrap();
    let mut data = spec.data_config();
    data.val = 16;
    spec.data = Some(data);
    let config = TrainConfig {
        batch: 4,
        lr: 0.05,
        ..TrainConfig::default()
    };
    let make = |device| {
        Trainer::with_data(
            spec.clone(),
            config.clone(),
            Some(common::bars(200)),
            device,
            "test".into(),
        )
    };
    let cpu = make(Device::Cpu(CpuBackend::new())).unwrap();
    let gpu = make(Device::Gpu(gpu)).unwrap();
    Some((cpu, gpu))
}

/// Numbers within `tol` (absolute, or relative to the larger), everything else equal;
/// `{"$": i}` slots compare the arrays they stand for.
fn assert_close(path: &str, a: &Value, b: &Value, ia: &Instrument, ib: &Instrument, tol: f64) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let scale = x.abs().max(y.abs()).max(1.0);
            assert!((x - y).abs() <= tol * scale, "{path}: cpu {x} vs gpu {y}");
        }
        (Value::Object(x), Value::Object(y)) if x.contains_key("$") => {
            let (xa, ya) = (ia.array(a).unwrap(), ib.array(b).unwrap());
            assert_eq!(xa.len(), ya.len(), "{path}: array lengths");
            for (i, (p, q)) in xa.iter().zip(ya).enumerate() {
                let scale = p.abs().max(q.abs()).max(1.0) as f64;
                assert!(((p - q) as f64).abs() <= tol * scale, "{path}[{i}]: cpu {p} vs gpu {q}");
            }
            assert_eq!(x.len(), y.len());
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{path}");
            for (k, v) in x {
                assert_close(&format!("{path}.{k}"), v, &y[k], ia, ib, tol);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_close(&format!("{path}[{i}]"), p, q, ia, ib, tol);
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn instrument_headers_match_the_cpu_reference() {
    let Some((mut cpu, mut gpu)) = twins() else { return };
    for step in 0..2 {
        if step > 0 {
            // trained weights (and running statistics), the same on both: probe parity, not
            // training parity (gpu_parity.rs has that)
            pollster::block_on(cpu.step(3)).unwrap();
            let weights = pollster::block_on(cpu.save_weights()).unwrap();
            gpu.load_weights(&weights).unwrap();
        }
        // (probe, options, tolerance): accuracies over 16 examples may flip one argmax at
        // float noise, so they get a 1/16 tolerance; the rest is float noise only
        let cases = [
            ("kernels", Value::Null, 1e-5),
            ("activations", Value::Null, 1e-3),
            ("checkerboard", Value::Null, 1e-3),
            ("switches", json!({"example": 3}), 1e-3),
            ("dropout-mask", json!({"example": 1}), 1e-3),
            ("test-time", Value::Null, 1.0 / 16.0 + 1e-6),
            ("mc-dropout", json!({"k": 10}), 1.0 / 16.0 + 1e-6),
            ("landscape", Value::Null, 2e-2),
        ];
        for (name, options, tol) in cases {
            let a = pollster::block_on(cpu.instrument(name, &options)).unwrap_or_else(|e| panic!("cpu {name}: {e}"));
            let b = pollster::block_on(gpu.instrument(name, &options)).unwrap_or_else(|e| panic!("gpu {name}: {e}"));
            assert_eq!(a.arrays.len(), b.arrays.len(), "{name}");
            assert_close(&format!("step {step} {name}"), &a.header, &b.header, &a, &b, tol);
        }
    }
}
