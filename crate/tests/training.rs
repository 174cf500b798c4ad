//! Training behaviour natively: seeded runs match across backends, the loss falls, settings
//! change mid-run without a reset, divergence is reported, bad settings are refused.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::Device;
use cnn_playground::nn::OptimizerKind;
use cnn_playground::trainer::Phase;
use cnn_playground::{BackendChoice, ModelSpec, TrainConfig, Trainer};
use common::{bars, TINY};

fn cpu_trainer(config: TrainConfig) -> Trainer {
    let spec = ModelSpec::from_json(TINY).unwrap();
    Trainer::with_device(spec, config, bars(200), Device::Cpu(CpuBackend::new()), "test".into()).unwrap()
}

fn trainer_on(device: Device, config: TrainConfig) -> Trainer {
    let spec = ModelSpec::from_json(TINY).unwrap();
    Trainer::with_device(spec, config, bars(100), device, "test".into()).unwrap()
}

fn cfg(batch: usize, lr: f32, optimizer: OptimizerKind) -> TrainConfig {
    TrainConfig {
        batch,
        lr,
        optimizer,
        ..TrainConfig::default()
    }
}

#[test]
fn cpu_training_lowers_the_loss_with_both_optimizers() {
    for (opt, lr) in [(OptimizerKind::Adam, 0.01), (OptimizerKind::Sgd, 0.05)] {
        let mut t = cpu_trainer(cfg(16, lr, opt));
        let first = pollster::block_on(t.step(5)).unwrap().loss;
        let last = pollster::block_on(t.step(60)).unwrap();
        assert!(
            last.loss < 0.5 * first,
            "{opt:?}: loss went from {first} to {}",
            last.loss
        );
        assert_eq!(last.step, 65);
        assert_eq!(last.phase, Phase::Running);
        let eval = pollster::block_on(t.evaluate(0)).unwrap();
        assert_eq!(eval.examples, 20);
        assert!(
            eval.val_accuracy > 0.5,
            "{opt:?}: validation accuracy {}",
            eval.val_accuracy
        );
    }
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let run = |seed| {
        let mut t = cpu_trainer(TrainConfig {
            seed,
            ..cfg(8, 0.01, OptimizerKind::Adam)
        });
        pollster::block_on(t.step(3)).unwrap().loss
    };
    assert_eq!(run(4), run(4));
    assert_ne!(run(4), run(5));
}

#[test]
fn settings_change_mid_run_without_reset_and_bad_ones_are_refused() {
    let mut t = cpu_trainer(cfg(8, 0.01, OptimizerKind::Adam));
    pollster::block_on(t.step(3)).unwrap();
    t.set_config(cfg(32, 0.05, OptimizerKind::Sgd)).unwrap();
    let r = pollster::block_on(t.step(2)).unwrap();
    assert_eq!(r.step, 5, "the run goes on from where it was");
    assert_eq!(t.config().batch, 32);
    let e = t
        .set_config(TrainConfig {
            seed: 99,
            ..cfg(8, 0.01, OptimizerKind::Adam)
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed") && e.contains("reset"), "{e}");
    let e = t
        .set_config(TrainConfig {
            backend: BackendChoice::Webgpu,
            ..cfg(8, 0.01, OptimizerKind::Adam)
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("backend"), "{e}");
    // A partial update keeps every field it does not name.
    let merged = t.config().merged_with_json(r#"{"lr":0.002}"#).unwrap();
    assert_eq!((merged.lr, merged.batch, merged.seed), (0.002, 32, t.config().seed));
    t.set_config(merged).unwrap();
    let e = t.config().merged_with_json(r#"{"batch":-1}"#).unwrap_err().to_string();
    assert!(e.contains("invalid train config"), "{e}");
    let e = t.config().merged_with_json("[1,2]").unwrap_err().to_string();
    assert!(e.contains("expected a JSON object"), "{e}");
    for (json, want) in [
        (r#"{"batch":0}"#, "config: batch must be between 1 and"),
        (r#"{"lr":-1}"#, "config: lr must be in"),
        (r#"{"momentum":1.5}"#, "config: momentum"),
        (r#"{"optimizer":"rmsprop"}"#, "invalid train config"),
        (r#"{"lrate":0.1}"#, "unknown field `lrate`"),
        (r#"{"backend":"tpu"}"#, "invalid train config"),
        (
            r#"{"dropout_p":1.0}"#,
            "config: dropout_p must be in [0, 1) or null, got 1",
        ),
        (r#"{"dropout_scaling":"half"}"#, "unknown variant `half`"),
        (r#"{"train_mode":"test"}"#, "unknown variant `test`"),
    ] {
        let e = TrainConfig::from_json(json).unwrap_err().to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
}

#[test]
fn a_non_finite_loss_is_reported_as_divergence_and_training_stops() {
    let mut t = cpu_trainer(cfg(16, 0.01, OptimizerKind::Adam));
    pollster::block_on(t.step(2)).unwrap();
    // Weights at the edge of f32 overflow the logits: the loss becomes inf or NaN.
    t.load_param("0.weight", &[3e38; 36]).unwrap();
    let r = pollster::block_on(t.step(3)).unwrap();
    assert_eq!(r.phase, Phase::Diverged);
    assert_eq!(r.diverged_at, Some(5));
    let again = pollster::block_on(t.step(5)).unwrap();
    assert_eq!(again.step, 5, "a diverged run trains no further until it is reset");
    let e = t.load_param("0.weight", &[0.0; 3]).unwrap_err().to_string();
    assert!(e.contains("needs 36 values, got 3"), "{e}");
    let e = t.load_param("9.weight", &[0.0; 3]).unwrap_err().to_string();
    assert!(e.contains("no parameter named"), "{e}");
}

#[test]
fn gpu_training_matches_cpu_losses() {
    let gpu = match pollster::block_on(GpuBackend::request()) {
        Ok(g) => g,
        Err(e) => {
            println!("GPU: skipped, no adapter: {e}");
            return;
        }
    };
    let config = cfg(8, 0.01, OptimizerKind::Adam);
    let mut on_gpu = trainer_on(Device::Gpu(gpu), config.clone());
    let mut on_cpu = trainer_on(Device::Cpu(CpuBackend::new()), config);
    for _ in 0..5 {
        let (g, c) = (
            pollster::block_on(on_gpu.step(2)).unwrap(),
            pollster::block_on(on_cpu.step(2)).unwrap(),
        );
        assert!(
            (g.loss - c.loss).abs() <= 1e-3 * c.loss.abs().max(1.0),
            "step {}: gpu loss {} vs cpu {}",
            c.step,
            g.loss,
            c.loss
        );
        assert!(
            (g.accuracy - c.accuracy).abs() < 1e-6,
            "step {}: gpu accuracy {} vs cpu {}",
            c.step,
            g.accuracy,
            c.accuracy
        );
    }
}

#[test]
fn activation_probe_returns_every_layer_output_for_one_example() {
    let t = cpu_trainer(cfg(16, 0.01, OptimizerKind::Adam));
    let a = pollster::block_on(t.activations(3)).unwrap();
    let plan = t.spec().validate().unwrap();
    assert_eq!(a.example, 3);
    assert_eq!(a.image.len(), 28 * 28);
    assert_eq!(a.layers.len(), plan.layers.len());
    for (got, want) in a.layers.iter().zip(&plan.layers) {
        assert_eq!(got.name, want.name);
        assert_eq!(got.kind, want.kind);
        assert_eq!(got.shape, want.out);
        assert_eq!(got.data.len(), want.out.iter().product::<usize>());
    }
    // the first conv's map is the conv of the image: recompute one pixel by hand
    let f = pollster::block_on(t.layer_filters("0")).unwrap();
    let (k, pad) = (f.shape[2], 1); // TINY starts with a 3×3 conv, padding 1
    let conv = &a.layers[0];
    let (oh, ow) = (conv.shape[1], conv.shape[2]);
    let (y, x) = (oh / 2, ow / 3);
    let mut want = 0.0f32;
    for i in 0..k {
        for j in 0..k {
            let (r, c) = ((y + i) as isize - pad as isize, (x + j) as isize - pad as isize);
            if r >= 0 && c >= 0 && (r as usize) < 28 && (c as usize) < 28 {
                want += f.data[i * k + j] * a.image[r as usize * 28 + c as usize];
            }
        }
    }
    let bias = t.params().params.iter().find(|p| p.name == "0.bias").unwrap();
    want += bias.value.cpu().unwrap()[0];
    assert!(
        (conv.data[y * ow + x] - want).abs() < 1e-4,
        "{} vs {want}",
        conv.data[y * ow + x]
    );
    let e = pollster::block_on(t.activations(100_000)).unwrap_err().to_string();
    assert!(e.contains("100000 is out of range"), "{e}");
    let e = pollster::block_on(t.layer_filters("1")).unwrap_err().to_string();
    assert!(e.contains("is not a conv2d layer"), "{e}");
    let e = pollster::block_on(t.layer_filters("nope")).unwrap_err().to_string();
    assert!(e.contains("no layer named \"nope\""), "{e}");
}
