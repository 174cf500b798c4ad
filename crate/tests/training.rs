//! Training behaviour natively: seeded runs match across backends, the loss falls, settings
//! change mid-run without a reset, divergence is reported, bad settings are refused, and
//! L1 / L2 / AdamW do what nn/regularize.rs and nn/optim.rs say.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::Device;
use cnn_playground::nn::{L1Mode, OptimizerKind, ParamKind, RegTarget};
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
// ---- regularization ---------------------------------------------------------------------

/// Host copies of the parameters a CPU trainer holds, with their kinds.
fn host_params(t: &Trainer) -> Vec<(ParamKind, Vec<f32>)> {
    t.params()
        .params
        .iter()
        .map(|p| (p.kind, p.value.cpu().expect("cpu tensor").to_vec()))
        .collect()
}

/// Σ|w| and Σw² over conv kernels and linear weights (the default target), in f64.
fn weight_sums(t: &Trainer) -> (f64, f64) {
    let mut sums = (0.0, 0.0);
    for (kind, data) in host_params(t) {
        if matches!(kind, ParamKind::ConvWeight | ParamKind::LinearWeight) {
            sums.0 += data.iter().map(|v| f64::from(v.abs())).sum::<f64>();
            sums.1 += data.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>();
        }
    }
    sums
}

fn exact_zeros(t: &Trainer) -> usize {
    host_params(t)
        .iter()
        .map(|(_, d)| d.iter().filter(|v| **v == 0.0).count())
        .sum()
}

fn close(got: f32, want: f64, what: &str) {
    assert!(
        (f64::from(got) - want).abs() <= 1e-4 * want.abs().max(1e-3),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn proximal_l1_produces_exact_zeros_and_the_penalty_falls() {
    let config = TrainConfig {
        l1: 0.05,
        l1_mode: L1Mode::Proximal,
        momentum: 0.0,
        ..cfg(16, 0.05, OptimizerKind::Sgd)
    };
    let mut t = cpu_trainer(config.clone());
    let mut plain = cpu_trainer(TrainConfig { l1: 0.0, ..config });
    let first = pollster::block_on(t.step(5)).unwrap();
    pollster::block_on(plain.step(5)).unwrap();
    let mut last = first.clone();
    for _ in 0..6 {
        let r = pollster::block_on(t.step(10)).unwrap();
        assert!(
            r.penalty < last.penalty,
            "penalty rose from {} to {}",
            last.penalty,
            r.penalty
        );
        last = r;
    }
    pollster::block_on(plain.step(60)).unwrap();
    let zeros = exact_zeros(&t);
    let weights: usize = host_params(&t)
        .iter()
        .filter(|(k, _)| *k != ParamKind::Bias)
        .map(|(_, d)| d.len())
        .sum();
    assert!(zeros * 4 > weights, "only {zeros} of {weights} weights are exactly 0");
    assert_eq!(exact_zeros(&plain), 0, "without L1 no weight is exactly 0");
    // biases are not targeted: none of them is zero
    for (kind, data) in host_params(&t) {
        if kind == ParamKind::Bias {
            assert!(data.iter().all(|v| *v != 0.0), "a bias was thresholded");
        }
    }
    // the reported penalty is l1·Σ|w| of the weights the step started from
    let (sum_abs, _) = weight_sums(&t);
    let r = pollster::block_on(t.step(1)).unwrap();
    close(r.penalty, 0.05 * sum_abs, "penalty");
}

#[test]
fn l2_shrinks_the_weight_norm_without_exact_zeros_and_the_loss_stays_the_data_loss() {
    let base = cfg(16, 0.01, OptimizerKind::Adam);
    let mut plain = cpu_trainer(base.clone());
    let mut l2 = cpu_trainer(TrainConfig { l2: 0.05, ..base });
    // Same seed, same weights: the first step's data loss is the same; the penalty is
    // (l2/2)·Σw² of the starting weights, reported apart from it.
    let (_, sum_sq) = weight_sums(&l2);
    let (a, b) = (
        pollster::block_on(plain.step(1)).unwrap(),
        pollster::block_on(l2.step(1)).unwrap(),
    );
    assert_eq!(a.loss, b.loss, "the reported loss is the data loss alone");
    assert_eq!(a.penalty, 0.0);
    close(b.penalty, 0.025 * sum_sq, "penalty");
    pollster::block_on(plain.step(60)).unwrap();
    pollster::block_on(l2.step(60)).unwrap();
    let (norm_plain, norm_l2) = (weight_sums(&plain).1.sqrt(), weight_sums(&l2).1.sqrt());
    assert!(
        norm_l2 < 0.8 * norm_plain,
        "L2 norm {norm_l2} vs unregularized {norm_plain}"
    );
    assert_eq!(exact_zeros(&l2), 0, "L2 shrinks but makes no exact zeros");
}

#[test]
fn l1_changed_mid_run_acts_from_the_next_step() {
    let mut t = cpu_trainer(cfg(8, 0.01, OptimizerKind::Adam));
    let r = pollster::block_on(t.step(3)).unwrap();
    assert_eq!(r.penalty, 0.0);
    let on = t
        .config()
        .merged_with_json(r#"{"l1":0.01,"l1_target":"first_conv"}"#)
        .unwrap();
    t.set_config(on).unwrap();
    let first_conv: f64 = host_params(&t)[0].1.iter().map(|v| f64::from(v.abs())).sum();
    let r = pollster::block_on(t.step(1)).unwrap();
    assert_eq!(r.step, 4, "no reset");
    close(r.penalty, 0.01 * first_conv, "first-conv L1 penalty");
    // proximal from the next step on: the first layer gets exact zeros, nothing else does
    let proximal = t
        .config()
        .merged_with_json(r#"{"l1":2.0,"l1_mode":"proximal"}"#)
        .unwrap();
    t.set_config(proximal).unwrap();
    pollster::block_on(t.step(5)).unwrap();
    let params = host_params(&t);
    assert!(params[0].1.contains(&0.0), "first conv has no exact zeros");
    let others: usize = params[1..]
        .iter()
        .map(|(_, d)| d.iter().filter(|v| **v == 0.0).count())
        .sum();
    assert_eq!(others, 0, "only the first conv is targeted");
    let off = t.config().merged_with_json(r#"{"l1":0}"#).unwrap();
    t.set_config(off).unwrap();
    assert_eq!(pollster::block_on(t.step(1)).unwrap().penalty, 0.0);
}

#[test]
fn adamw_decays_weights_more_than_adam() {
    let adam = cfg(16, 0.01, OptimizerKind::Adam);
    let mut a = cpu_trainer(adam.clone());
    let mut w = cpu_trainer(TrainConfig {
        optimizer: OptimizerKind::AdamW,
        weight_decay: 2.0,
        ..adam
    });
    let (ra, rw) = (
        pollster::block_on(a.step(40)).unwrap(),
        pollster::block_on(w.step(40)).unwrap(),
    );
    assert_eq!(rw.penalty, 0.0, "weight decay is not a penalty term");
    assert!(rw.loss.is_finite() && ra.loss.is_finite());
    let (na, nw) = (weight_sums(&a).1.sqrt(), weight_sums(&w).1.sqrt());
    assert!(nw < 0.8 * na, "AdamW norm {nw} vs Adam {na}");
}

#[test]
fn regularization_settings_are_validated_with_named_errors() {
    let c = TrainConfig::from_json(
        r#"{"optimizer":"adamw","l1":0.001,"l2":0.0005,"l1_target":"first_conv","l2_target":"all","l1_mode":"proximal"}"#,
    )
    .unwrap();
    assert_eq!(
        (c.optimizer, c.l1_target, c.l2_target, c.l1_mode, c.weight_decay),
        (
            OptimizerKind::AdamW,
            RegTarget::FirstConv,
            RegTarget::All,
            L1Mode::Proximal,
            0.01
        )
    );
    for (json, want) in [
        (r#"{"l1":-0.1}"#, "config: l1 must be finite and at least 0, got -0.1"),
        (r#"{"l2":-1}"#, "config: l2 must be finite and at least 0"),
        (
            r#"{"weight_decay":-0.01}"#,
            "config: weight_decay must be finite and at least 0",
        ),
        (r#"{"l1_target":"biases"}"#, "invalid train config"),
        (r#"{"l1_mode":"lasso"}"#, "invalid train config"),
        (r#"{"l2_target":"first-conv"}"#, "invalid train config"),
    ] {
        let e = TrainConfig::from_json(json).unwrap_err().to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
    let e = TrainConfig {
        l2: f32::INFINITY,
        ..TrainConfig::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("config: l2 must be finite"), "{e}");
    let e = TrainConfig::default()
        .merged_with_json(r#"{"l1":-1}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("config: l1"), "{e}");
    // a refused change leaves the running config as it was
    let mut t = cpu_trainer(cfg(8, 0.01, OptimizerKind::Adam));
    let bad = TrainConfig {
        l1: f32::NAN,
        ..t.config().clone()
    };
    assert!(t.set_config(bad).unwrap_err().to_string().contains("l1"));
    assert_eq!(t.config().l1, 0.0);
}

#[test]
fn gpu_regularized_training_matches_cpu() {
    let gpu = match pollster::block_on(GpuBackend::request()) {
        Ok(g) => g,
        Err(e) => {
            println!("GPU: skipped, no adapter: {e}");
            return;
        }
    };
    let config = TrainConfig {
        optimizer: OptimizerKind::AdamW,
        l1: 0.2,
        l1_mode: L1Mode::Proximal,
        l1_target: RegTarget::Conv,
        l2: 0.05,
        l2_target: RegTarget::All,
        ..cfg(8, 0.01, OptimizerKind::AdamW)
    };
    let mut on_gpu = trainer_on(Device::Gpu(gpu), config.clone());
    let mut on_cpu = trainer_on(Device::Cpu(CpuBackend::new()), config);
    for _ in 0..3 {
        let (g, c) = (
            pollster::block_on(on_gpu.step(2)).unwrap(),
            pollster::block_on(on_cpu.step(2)).unwrap(),
        );
        for (what, on_g, on_c) in [("loss", g.loss, c.loss), ("penalty", g.penalty, c.penalty)] {
            assert!(
                (on_g - on_c).abs() <= 1e-3 * on_c.abs().max(1.0),
                "step {}: gpu {what} {on_g} vs cpu {on_c}",
                c.step
            );
        }
        assert!(c.penalty > 0.0);
    }
}

// ---- batch norm, dropout, inception ---------------------------------------------------------

const COURSE_NET: &str = r#"{"input":[1,28,28],"classes":10,"layers":[
    {"type":"conv2d","out":4,"kernel":3,"padding":1},{"type":"batch_norm"},{"type":"relu"},
    {"type":"max_pool","size":2},
    {"type":"inception","b1":2,"b3_reduce":2,"b3":4,"b5_reduce":1,"b5":2,"pool_proj":2},
    {"type":"max_pool","size":2},{"type":"dropout","p":0.3},
    {"type":"flatten"},{"type":"linear","out":16},{"type":"batch_norm"},{"type":"relu"},
    {"type":"dropout","p":0.2,"scaling":"classic"},{"type":"linear","out":10}]}"#;

fn course_trainer(device: Device, config: TrainConfig) -> Trainer {
    let spec = ModelSpec::from_json(COURSE_NET).unwrap();
    Trainer::with_device(spec, config, bars(100), device, "test".into()).unwrap()
}

fn buffer(t: &Trainer, name: &str) -> Vec<f32> {
    let b = t.params().buffers.iter().find(|b| b.name == name).unwrap();
    pollster::block_on(t.backend().read(&b.value)).unwrap()
}

#[test]
fn seeded_50_steps_with_bn_dropout_and_inception_match_on_cpu_and_gpu() {
    let gpu = match pollster::block_on(GpuBackend::request()) {
        Ok(g) => g,
        Err(e) => {
            println!("GPU: skipped, no adapter: {e}");
            return;
        }
    };
    // SGD: Adam would turn the float noise in the gradients of the conv and linear biases
    // that feed a batch norm (exactly zero in exact arithmetic) into steps of ±lr, so the
    // two backends' running means would drift apart for no fault of either.
    let config = cfg(8, 0.05, OptimizerKind::Sgd);
    let mut on_gpu = course_trainer(Device::Gpu(gpu), config.clone());
    let mut on_cpu = course_trainer(Device::Cpu(CpuBackend::new()), config);
    for _ in 0..10 {
        let (g, c) = (
            pollster::block_on(on_gpu.step(5)).unwrap(),
            pollster::block_on(on_cpu.step(5)).unwrap(),
        );
        assert!(
            (g.loss - c.loss).abs() <= 2e-3 * c.loss.abs().max(1.0),
            "step {}: gpu loss {} vs cpu {}",
            c.step,
            g.loss,
            c.loss
        );
    }
    assert_eq!(on_cpu.steps_done(), 50);
    for name in ["1.running_mean", "1.running_var", "9.running_mean", "9.running_var"] {
        let (g, c) = (buffer(&on_gpu, name), buffer(&on_cpu, name));
        for (a, b) in g.iter().zip(&c) {
            assert!((a - b).abs() <= 2e-3 * b.abs().max(1.0), "{name}: gpu {a} vs cpu {b}");
        }
    }
    let (g, c) = (
        pollster::block_on(on_gpu.evaluate(0)).unwrap(),
        pollster::block_on(on_cpu.evaluate(0)).unwrap(),
    );
    assert!((g.val_loss - c.val_loss).abs() <= 2e-3 * c.val_loss.max(1.0));
}

#[test]
fn batch_norm_running_stats_follow_training_and_eval_mode_uses_them() {
    let mut t = course_trainer(Device::Cpu(CpuBackend::new()), cfg(16, 0.01, OptimizerKind::Adam));
    assert_eq!(buffer(&t, "1.running_mean"), vec![0.0; 4]);
    assert_eq!(buffer(&t, "1.running_var"), vec![1.0; 4]);
    pollster::block_on(t.step(20)).unwrap();
    let (mean, var) = (buffer(&t, "1.running_mean"), buffer(&t, "1.running_var"));
    assert!(
        mean.iter().any(|m| m.abs() > 1e-3),
        "running mean never moved: {mean:?}"
    );
    assert!(var.iter().all(|v| *v > 0.0) && var.iter().any(|v| (v - 1.0).abs() > 1e-3));
    // eval mode while training: no masks, running statistics, and they stop moving
    let eval = t.config().merged_with_json(r#"{"train_mode":"eval"}"#).unwrap();
    t.set_config(eval).unwrap();
    let r = pollster::block_on(t.step(3)).unwrap();
    assert_eq!(r.step, 23, "no reset");
    assert!(r.loss.is_finite());
    assert_eq!(
        buffer(&t, "1.running_mean"),
        mean,
        "eval mode must not update running stats"
    );
    // two eval-mode steps from the same state see the same batch the same way: no dropout
    // randomness; a dropout_p override changes nothing in eval mode with inverted scaling
    let back = t
        .config()
        .merged_with_json(r#"{"train_mode":"train","dropout_p":0.0}"#)
        .unwrap();
    t.set_config(back).unwrap();
    pollster::block_on(t.step(2)).unwrap();
    assert_ne!(buffer(&t, "1.running_mean"), mean, "train mode updates them again");
}

#[test]
fn dropout_masks_are_seeded_and_the_override_applies_live() {
    let run = |json: &str| {
        let config = TrainConfig::from_json(json).unwrap();
        let mut t = course_trainer(Device::Cpu(CpuBackend::new()), TrainConfig { batch: 8, ..config });
        (0..4)
            .map(|_| pollster::block_on(t.step(2)).unwrap().loss)
            .collect::<Vec<_>>()
    };
    let a = run(r#"{"seed":3}"#);
    assert_eq!(a, run(r#"{"seed":3}"#), "same seed, same masks, same losses");
    assert_ne!(a, run(r#"{"seed":3,"dropout_p":0.0}"#), "p overridden to 0: no masks");
    assert_ne!(a, run(r#"{"seed":3,"dropout_scaling":"classic"}"#), "scaling override");
}

#[test]
fn weights_probe_reports_every_tensor_and_the_running_stats() {
    let mut t = course_trainer(Device::Cpu(CpuBackend::new()), cfg(8, 0.01, OptimizerKind::Adam));
    pollster::block_on(t.step(3)).unwrap();
    let w = pollster::block_on(t.weights()).unwrap();
    assert_eq!(w.params.len(), t.params().params.len());
    for (s, p) in w.params.iter().zip(&t.params().params) {
        assert_eq!(s.name, p.name);
        assert_eq!(s.stats.count, p.value.numel());
        let data = p.value.cpu().unwrap();
        assert_eq!(s.stats.zeros, data.iter().filter(|v| **v == 0.0).count());
    }
    let groups = |g: &str| w.params.iter().filter(|p| p.group == g).count();
    // conv stem + 6 inception convs; 2 linears; 2 BN × (weight, bias); a bias per conv/linear
    assert_eq!(
        (groups("conv"), groups("linear"), groups("bn"), groups("bias")),
        (7, 2, 4, 9)
    );
    let layers: Vec<&str> = w.batch_norm.iter().map(|b| b.layer.as_str()).collect();
    assert_eq!(layers, ["1", "9"]);
    assert_eq!(w.batch_norm[0].mean, buffer(&t, "1.running_mean"));
    assert_eq!(w.batch_norm[1].var, buffer(&t, "9.running_var"));
}
