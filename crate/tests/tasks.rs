//! The course's last chapters as tasks, natively: every task preset validates, trains on the
//! CPU and on the GPU backend (lavapipe) with the same losses, learns (its validation
//! metric rises well above where it started), decodes outputs for the page, and bad data
//! settings get named errors. Transfer: a backbone loads into every layer but the head,
//! and frozen layers stay put.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::Device;
use cnn_playground::nn::OptimizerKind;
use cnn_playground::spec::Task;
use cnn_playground::{ModelSpec, TrainConfig, Trainer};
use common::bars;

fn preset(name: &str) -> ModelSpec {
    let path = format!("{}/../presets/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    ModelSpec::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The preset with a smaller validation set (keeps evaluation quick in tests).
fn small_val(mut spec: ModelSpec, val: usize) -> ModelSpec {
    let mut data = spec.data_config();
    data.val = val;
    spec.data = Some(data);
    spec
}

fn cpu() -> Device {
    Device::Cpu(CpuBackend::new())
}

fn gpu() -> Option<Device> {
    match pollster::block_on(GpuBackend::request()) {
        Ok(g) => Some(Device::Gpu(g)),
        Err(e) => {
            println!("GPU: skipped, no adapter: {e}");
            None
        }
    }
}

fn trainer(spec: ModelSpec, config: TrainConfig, device: Device) -> Trainer {
    let mnist = matches!(
        spec.data_config().source,
        cnn_playground::spec::DataSource::Mnist | cnn_playground::spec::DataSource::Clutter
    )
    .then(|| bars(300));
    Trainer::with_data(spec, config, mnist, device, "test".into()).unwrap()
}

fn cfg(batch: usize, lr: f32, optimizer: OptimizerKind) -> TrainConfig {
    TrainConfig {
        batch,
        lr,
        optimizer,
        ..TrainConfig::default()
    }
}

const TASK_PRESETS: [&str; 8] = [
    "shapes-localize",
    "shapes-detect",
    "shapes-segment-transposed",
    "shapes-segment-unpool",
    "shapes-segment-resize",
    "shapes-segment-transposed-unet",
    "shapes-segment-unpool-unet",
    "shapes-segment-resize-unet",
];

#[test]
fn every_preset_validates_for_its_task() {
    let dir = format!("{}/../presets", env!("CARGO_MANIFEST_DIR"));
    let mut tasks = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let spec = preset(&name);
        spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(spec.name, name, "a preset's name is its file name");
        tasks.push(spec.task);
    }
    for task in [Task::Classify, Task::Localize, Task::Detect, Task::Segment] {
        assert!(tasks.contains(&task), "no preset for {task:?}");
    }
}

#[test]
fn task_presets_train_on_the_gpu_with_the_cpu_losses() {
    let Some(_) = gpu() else { return };
    for name in TASK_PRESETS {
        let spec = small_val(preset(name), 4);
        let config = cfg(4, 0.01, OptimizerKind::Sgd);
        let mut on_gpu = trainer(spec.clone(), config.clone(), gpu().unwrap());
        let mut on_cpu = trainer(spec, config, cpu());
        for _ in 0..3 {
            let g = pollster::block_on(on_gpu.step(1)).unwrap();
            let c = pollster::block_on(on_cpu.step(1)).unwrap();
            assert!(c.loss.is_finite() && c.loss > 0.0, "{name}: cpu loss {}", c.loss);
            assert!(
                (g.loss - c.loss).abs() <= 2e-3 * c.loss.abs().max(1.0),
                "{name} step {}: gpu loss {} vs cpu {}",
                c.step,
                g.loss,
                c.loss
            );
            assert_eq!(g.parts.keys().collect::<Vec<_>>(), c.parts.keys().collect::<Vec<_>>());
            for (k, v) in &c.parts {
                let w = g.parts[k];
                assert!(
                    (w - v).abs() <= 2e-3 * v.abs().max(1.0),
                    "{name} {k}: gpu {w} vs cpu {v}"
                );
            }
        }
        let ge = pollster::block_on(on_gpu.evaluate(0)).unwrap();
        let ce = pollster::block_on(on_cpu.evaluate(0)).unwrap();
        assert!(
            (ge.val_loss - ce.val_loss).abs() <= 2e-3 * ce.val_loss.abs().max(1.0),
            "{name}: gpu val loss {} vs cpu {}",
            ge.val_loss,
            ce.val_loss
        );
    }
}

/// Trains `steps` steps; returns (metric before, metric after).
fn learns(spec: ModelSpec, config: TrainConfig, steps: usize, metric: &str) -> (f32, f32) {
    let mut t = trainer(spec, config, cpu());
    let before = pollster::block_on(t.evaluate(0)).unwrap().metrics[metric];
    for _ in 0..steps / 10 {
        let r = pollster::block_on(t.step(10)).unwrap();
        assert!(r.loss.is_finite(), "diverged at step {}", r.step);
    }
    let after = pollster::block_on(t.evaluate(0)).unwrap().metrics[metric];
    println!("{metric}: {before:.3} -> {after:.3} after {steps} steps");
    (before, after)
}

#[test]
fn localization_learns_boxes() {
    let spec = small_val(preset("shapes-localize"), 64);
    let (before, after) = learns(spec, cfg(16, 0.003, OptimizerKind::Adam), 200, "mean_iou");
    assert!(after > before + 0.25 && after > 0.45, "mean IoU {before} -> {after}");
}

#[test]
fn detection_learns_objects() {
    let spec = small_val(preset("shapes-detect"), 32);
    let (before, after) = learns(spec, cfg(16, 0.003, OptimizerKind::Adam), 150, "map50");
    assert!(after > before + 0.2, "mAP@0.5 {before} -> {after}");
}

#[test]
fn segmentation_learns_masks_with_and_without_dice() {
    for dice in [0.0, 1.0] {
        let spec = small_val(preset("shapes-segment-unpool"), 16);
        let config = TrainConfig {
            dice,
            ..cfg(8, 0.003, OptimizerKind::Adam)
        };
        let (before, after) = learns(spec, config, 60, "mean_iou");
        assert!(after > before + 0.15, "dice {dice}: mean IoU {before} -> {after}");
    }
}

#[test]
fn outputs_carry_truth_and_decoded_predictions_for_each_task() {
    for name in ["shapes-localize", "shapes-detect", "shapes-segment-resize"] {
        let spec = small_val(preset(name), 8);
        let [c, h, w] = spec.input;
        let t = trainer(spec.clone(), cfg(4, 0.01, OptimizerKind::Adam), cpu());
        let out = pollster::block_on(t.outputs(3)).unwrap();
        assert_eq!(out.examples.len(), 3);
        assert_eq!(out.class_names.len(), spec.classes);
        for e in &out.examples {
            assert_eq!(e.image.len(), c * h * w);
            assert!(!e.truth.boxes.is_empty(), "{name}: scenes have objects");
            match spec.task {
                Task::Localize => {
                    assert_eq!(e.pred.boxes.len(), 1);
                    let b = e.pred.boxes[0].bbox;
                    assert!(
                        b.iter().all(|v| (0.0..=h as f32).contains(v)),
                        "{name}: box {b:?} inside"
                    );
                    assert!(e.pred.label.unwrap() < spec.classes as u32);
                }
                Task::Detect => {
                    // untrained: any number of boxes, each above the score threshold, after NMS
                    assert!(e.pred.boxes.iter().all(|d| d.score >= t.config().score_threshold));
                }
                Task::Segment => {
                    let mask = e.pred.mask.as_ref().unwrap();
                    assert_eq!(mask.len(), h * w);
                    assert!(mask.iter().all(|&m| m <= spec.classes as u32));
                    let fg = e.pred.fg.as_ref().unwrap();
                    assert!(fg.iter().all(|p| (0.0..=1.0).contains(p)));
                    assert_eq!(e.truth.mask.as_ref().unwrap().len(), h * w);
                }
                Task::Classify => unreachable!(),
            }
        }
    }
}

#[test]
fn nms_threshold_changes_live_the_boxes_drawn() {
    let spec = small_val(preset("shapes-detect"), 8);
    let mut t = trainer(spec, cfg(8, 0.003, OptimizerKind::Adam), cpu());
    pollster::block_on(t.step(30)).unwrap();
    let count = |t: &Trainer| -> usize {
        let out = pollster::block_on(t.outputs(8)).unwrap();
        out.examples.iter().map(|e| e.pred.boxes.len()).sum()
    };
    let mut c = t.config().clone();
    c.score_threshold = 0.0;
    c.nms_iou = 1.0; // keeps everything: one box per cell
    t.set_config(c.clone()).unwrap();
    let all = count(&t);
    assert_eq!(
        all,
        8 * 8 * 8,
        "with no threshold and no suppression every cell gives a box"
    );
    c.nms_iou = 0.1;
    t.set_config(c).unwrap();
    let kept = count(&t);
    assert!(
        kept < all,
        "a low NMS threshold suppresses overlapping boxes ({kept} of {all})"
    );
}

#[test]
fn a_backbone_loads_into_all_but_the_head_and_frozen_layers_stay_put() {
    let pre = preset("digits-pretrain");
    let mut source = trainer(pre, cfg(16, 0.01, OptimizerKind::Adam), cpu());
    pollster::block_on(source.step(5)).unwrap();
    let bytes = pollster::block_on(source.save_weights()).unwrap();

    let target = preset("digits-transfer");
    let head = target.layer_name(target.layers.len() - 1);
    let mut t = trainer(target, cfg(16, 0.01, OptimizerKind::Adam), cpu());
    let fresh_head = host(&t, &format!("{head}.weight"));
    let load = t.load_backbone(&bytes).unwrap();
    assert_eq!(load.loaded, ["0.weight", "0.bias", "3.weight", "3.bias"]);
    assert_eq!(load.skipped, [format!("{head}.weight"), format!("{head}.bias")]);
    assert_eq!(host(&t, "0.weight"), host(&source, "0.weight"));
    assert_eq!(
        host(&t, &format!("{head}.weight")),
        fresh_head,
        "the head keeps its fresh init"
    );

    let mut c = t.config().clone();
    c.freeze = vec!["0".into(), "3".into()];
    t.set_config(c).unwrap();
    let conv = (host(&t, "0.weight"), host(&t, "3.weight"));
    pollster::block_on(t.step(5)).unwrap();
    assert_eq!(
        (host(&t, "0.weight"), host(&t, "3.weight")),
        conv,
        "frozen layers do not move"
    );
    assert_ne!(host(&t, &format!("{head}.weight")), fresh_head, "the head trains");

    let err = t.load_backbone(b"not safetensors").unwrap_err().to_string();
    assert!(err.contains("safetensors"), "{err}");
}

fn host(t: &Trainer, name: &str) -> Vec<f32> {
    let p = t.params().params.iter().find(|p| p.name == name).unwrap();
    p.value.cpu().unwrap().to_vec()
}

#[test]
fn per_class_limits_the_labelled_examples() {
    let t = trainer(preset("digits-transfer"), cfg(8, 0.01, OptimizerKind::Adam), cpu());
    // bars(300) has 30 of each digit, 27 in training; 5 digits × 10 labels
    assert_eq!(t.data().train_pool.len(), 50);
    assert_eq!(t.class_names(), ["5", "6", "7", "8", "9"]);
    let val = &t.data().val;
    assert!(!val.is_empty() && val.iter().all(|e| e.label < 5));
}

#[test]
fn bad_data_settings_get_named_errors() {
    let cases = [
        (
            r#"{"task":"detect","input":[1,28,28],"classes":10,"layers":[{"type":"conv2d","out":15,"kernel":1}]}"#,
            "mnist digits are for the classify task",
        ),
        (
            r#"{"input":[1,28,28],"classes":5,"data":{"digits":[1,1,2,3,4]},"layers":[{"type":"flatten"},{"type":"linear","out":5}]}"#,
            "data.digits: 1 is listed twice",
        ),
        (
            r#"{"input":[1,28,28],"classes":10,"data":{"digits":[3,12]},"layers":[{"type":"flatten"},{"type":"linear","out":10}]}"#,
            "data.digits: 12 is not a digit",
        ),
        (
            r#"{"task":"localize","input":[3,32,32],"classes":5,"data":{"source":"shapes","size":32,"max_objects":3},"layers":[{"type":"flatten"},{"type":"linear","out":9}]}"#,
            "needs exactly one object per scene",
        ),
        (
            r#"{"task":"segment","input":[3,32,32],"classes":5,"data":{"source":"shapes","size":64,"max_objects":3},"layers":[{"type":"conv2d","out":6,"kernel":1}]}"#,
            "needs input [3, 64, 64]",
        ),
        (
            r#"{"task":"segment","input":[3,32,32],"classes":5,"data":{"source":"shapes","size":32,"max_objects":3},"layers":[{"type":"conv2d","out":5,"kernel":1}]}"#,
            "a segment model must end in per-pixel scores [6, 32, 32]",
        ),
        (
            r#"{"task":"detect","input":[3,32,32],"classes":5,"data":{"source":"shapes","size":32,"max_objects":3},"layers":[{"type":"flatten"},{"type":"linear","out":10}]}"#,
            "a detection grid [10, S, S]",
        ),
        (
            r#"{"task":"find","input":[3,32,32],"classes":5,"layers":[{"type":"flatten"}]}"#,
            "unknown variant `find`",
        ),
    ];
    for (json, want) in cases {
        let err = match ModelSpec::from_json(json) {
            Ok(spec) => spec.validate().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want), "{json}\n  got: {err}\n  want: {want}");
    }
}
