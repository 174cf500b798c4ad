//! DESIGN's GPU rule, pinned: a `step(n)` call reads its Report back in one round trip, and
//! a probe reads what it shows in one round trip too (`GpuBackend::round_trips` counts the
//! staging maps). Before `read_many`, a step made 2-5 maps and a per-layer view refresh
//! 15 (MNIST) to 73 (U-Net). Also: `read_many` returns what `read` would, and `layer_view`
//! shows exactly what the whole-model probes it replaced at the wasm edge would have.
//!
//! Without an adapter the GPU tests print "skipped: no GPU adapter" and pass; natively on
//! a machine without a GPU, Mesa's lavapipe (`mesa-vulkan-drivers`) provides one.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::{Backend, BackendChoice, Device};
use cnn_playground::spec::DataSource;
use cnn_playground::tensor::Shape;
use cnn_playground::{ModelSpec, TrainConfig, Trainer};

fn gpu_backend() -> Option<GpuBackend> {
    match pollster::block_on(GpuBackend::request()) {
        Ok(g) => Some(g),
        Err(e) => {
            println!("skipped: no GPU adapter ({e})");
            None
        }
    }
}

/// A preset with `val` validation examples (keeps software GPUs quick).
fn preset(name: &str, val: usize) -> ModelSpec {
    let path = format!("{}/../presets/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut spec = ModelSpec::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut data = spec.data_config();
    data.val = val;
    spec.data = Some(data);
    spec
}

fn trainer(spec: ModelSpec, config: TrainConfig, device: Device) -> Trainer {
    let mnist = matches!(spec.data_config().source, DataSource::Mnist | DataSource::Clutter).then(|| common::bars(300));
    Trainer::with_data(spec, config, mnist, device, "test".into()).unwrap()
}

fn config(l2: f32) -> TrainConfig {
    TrainConfig {
        batch: 2,
        lr: 0.01,
        l2,
        backend: BackendChoice::Webgpu,
        ..TrainConfig::default()
    }
}

/// Round trips so far on the trainer's GPU backend.
fn trips(t: &Trainer) -> u64 {
    match t.device() {
        Device::Gpu(g) => g.round_trips(),
        Device::Cpu(_) => panic!("the trainer runs on the CPU"),
    }
}

/// Round trips made by `f`, and what it returned.
fn round_trips<T>(t: &Trainer, f: impl FnOnce(&Trainer) -> T) -> (u64, T) {
    let before = trips(t);
    let out = f(t);
    (trips(t) - before, out)
}

#[test]
fn read_many_is_one_round_trip_with_what_read_gives() {
    let Some(gpu) = gpu_backend() else { return };
    let dims: [&[usize]; 4] = [&[1], &[3, 5], &[0], &[2, 3, 4, 5]];
    let tensors: Vec<_> = (dims.iter())
        .map(|d| {
            let n = Shape::new(d).numel();
            gpu.upload(Shape::new(d), &(0..n).map(|i| i as f32 * 0.5 - 3.0).collect::<Vec<_>>())
                .unwrap()
        })
        .collect();
    let refs: Vec<_> = tensors.iter().collect();
    let before = gpu.round_trips();
    let many = pollster::block_on(gpu.read_many(&refs)).unwrap();
    assert_eq!(gpu.round_trips() - before, 1, "one map for all four tensors");
    for (t, got) in tensors.iter().zip(&many) {
        assert_eq!(got, &pollster::block_on(gpu.read(t)).unwrap());
    }
    assert_eq!(gpu.round_trips() - before, 4, "read maps once per tensor of any size");
    assert!(pollster::block_on(gpu.read_many(&[])).unwrap().is_empty());
    let cpu = CpuBackend::new();
    let c = cpu.upload(Shape::new(&[2]), &[1.0, -2.0]).unwrap();
    assert_eq!(
        pollster::block_on(cpu.read_many(&[&c, &c])).unwrap(),
        [[1.0, -2.0], [1.0, -2.0]]
    );
}

#[test]
fn a_step_call_reads_its_report_back_in_one_round_trip() {
    // plain classification, with a penalty to report, and a task with several loss terms
    let cases = [
        (ModelSpec::from_json(common::TINY).unwrap(), 0.0),
        (ModelSpec::from_json(common::TINY).unwrap(), 1e-3),
        (preset("shapes-localize", 4), 1e-3),
    ];
    for (spec, l2) in cases {
        let Some(gpu) = gpu_backend() else { return };
        let name = spec.name.clone();
        let mut t = trainer(spec, config(l2), Device::Gpu(gpu));
        for n in [1, 3] {
            let before = trips(&t);
            let report = pollster::block_on(t.step(n)).unwrap();
            assert_eq!(trips(&t) - before, 1, "{name:?} l2 {l2}: step({n})");
            assert!(
                report.loss.is_finite() && (l2 == 0.0) == (report.penalty == 0.0),
                "{report:?}"
            );
        }
    }
}

#[test]
fn each_probe_reads_what_it_shows_in_one_round_trip() {
    let Some(gpu) = gpu_backend() else { return };
    let t = trainer(preset("shapes-segment-unpool-unet", 3), config(0.0), Device::Gpu(gpu));
    let plan = t.spec().validate().unwrap();
    // a conv (kernels), a batch norm (running statistics) and a layer without parameters
    for kind in ["conv2d", "batch_norm", "max_unpool"] {
        let layer = &plan.layers.iter().find(|l| l.kind == kind).unwrap().name;
        let (trips, view) = round_trips(&t, |t| pollster::block_on(t.layer_view(layer, 1)).unwrap());
        assert_eq!(trips, 1, "layer_view({layer:?}) of a {kind}");
        assert_eq!(view.filters.is_some(), kind == "conv2d");
        assert_eq!(view.bn.is_some(), kind == "batch_norm");
    }
    let (trips, _) = round_trips(&t, |t| pollster::block_on(t.evaluate(0)).unwrap());
    assert_eq!(trips, 1, "evaluate");
    let (trips, _) = round_trips(&t, |t| pollster::block_on(t.outputs(3)).unwrap());
    assert_eq!(trips, 1, "outputs");
    let (trips, _) = round_trips(&t, |t| pollster::block_on(t.filters()).unwrap());
    assert_eq!(trips, 1, "filters");
    let (trips, _) = round_trips(&t, |t| pollster::block_on(t.activations(0)).unwrap());
    assert_eq!(trips, 1, "activations");
    let (trips, _) = round_trips(&t, |t| pollster::block_on(t.weights()).unwrap());
    assert_eq!(trips, 1, "weights");

    let Some(gpu) = gpu_backend() else { return };
    let t = trainer(preset("mnist-small", 20), config(0.0), Device::Gpu(gpu));
    let (trips, _) = round_trips(&t, |t| pollster::block_on(t.predict(12)).unwrap());
    assert_eq!(trips, 1, "predict");
}

/// Dropout, batch norm, max-pool switches with an unpool, and a transposed conv: the
/// chapters' dropout, batch-norm, deconvolution and up-pooling probes all apply.
const PROBED: &str = r#"{"input":[1,28,28],"classes":10,"layers":[
    {"type":"conv2d","out":4,"kernel":3,"padding":1},{"type":"batch_norm"},{"type":"relu"},
    {"type":"dropout","p":0.3},{"type":"max_pool","size":2,"name":"p"},{"type":"conv2d","out":4,"kernel":3,"padding":1},
    {"type":"max_unpool","pool":"p"},{"type":"conv_transpose2d","out":2,"kernel":2,"stride":2,"name":"up"},
    {"type":"max_pool","size":8},{"type":"flatten"},{"type":"linear","out":10}]}"#;

/// `Trainer::instrument`: one round trip per call, except landscape (two: θ and g, then the
/// moved samples) and the pure ones (overlap, inception-counts: none).
#[test]
fn each_instrument_reads_what_it_shows_in_one_round_trip() {
    let mut spec = ModelSpec::from_json(PROBED).unwrap();
    let mut data = spec.data_config();
    data.val = 8;
    spec.data = Some(data);
    let cases = [
        (
            spec,
            &[
                "kernels",
                "landscape",
                "activations",
                "dropout-mask",
                "test-time",
                "mc-dropout",
                "checkerboard",
                "overlap",
                "switches",
            ][..],
        ),
        (preset("mnist-inception", 4), &["inception-counts", "branch-maps"][..]),
        (preset("mnist-nin", 4), &["class-maps"][..]),
        (preset("shapes-segment-unpool", 2), &["decoder-stages"][..]),
    ];
    for (spec, probes) in cases {
        let Some(gpu) = gpu_backend() else { return };
        let t = trainer(spec, config(0.0), Device::Gpu(gpu));
        for &name in probes {
            let (trips, out) = round_trips(&t, |t| pollster::block_on(t.instrument(name, &serde_json::Value::Null)));
            let out = out.unwrap_or_else(|e| panic!("{name}: {e}"));
            let want = match name {
                "landscape" => 2,
                "overlap" | "inception-counts" => 0,
                _ => 1,
            };
            assert_eq!(trips, want, "{name}: {}", out.header);
        }
    }
}

/// What the page's views showed before, from the whole-model probes (the worker combined
/// activations, layer_filters and weights), against what layer_view gives in one call.
#[test]
fn layer_view_shows_what_the_whole_model_probes_showed() {
    let mut t = trainer(
        preset("shapes-segment-unpool-unet", 3),
        TrainConfig {
            backend: BackendChoice::Cpu,
            ..config(0.0)
        },
        Device::Cpu(CpuBackend::new()),
    );
    pollster::block_on(t.step(2)).unwrap();
    let activations = pollster::block_on(t.activations(2)).unwrap();
    let weights = pollster::block_on(t.weights()).unwrap();
    let conv_and_linear = weights
        .params
        .iter()
        .filter(|p| p.group == "conv" || p.group == "linear");
    let all = conv_and_linear.fold((0, 0, 0), |(c, z, n), p| {
        (c + p.stats.count, z + p.stats.zeros, n + p.stats.near_zeros)
    });
    for layer in &activations.layers {
        let view = pollster::block_on(t.layer_view(&layer.name, 2)).unwrap();
        assert_eq!((view.example, view.label), (activations.example, activations.label));
        assert_eq!(view.image, activations.image);
        assert_eq!(view.activation.name, layer.name);
        assert_eq!(view.activation.kind, layer.kind);
        assert_eq!(view.activation.shape, layer.shape);
        assert_eq!(view.activation.data, layer.data, "{}", layer.name);
        match view.filters {
            Some(f) => assert_eq!(f, pollster::block_on(t.layer_filters(&layer.name)).unwrap()),
            None => assert_ne!(layer.kind, "conv2d"),
        }
        let own: Vec<_> = (weights.params.iter())
            .filter(|p| p.name.starts_with(&format!("{}.", layer.name)))
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        let got: Vec<_> = view.params.iter().map(|p| serde_json::to_string(p).unwrap()).collect();
        assert_eq!(got, own, "{}", layer.name);
        assert_eq!((view.all.count, view.all.zeros, view.all.near_zeros), all);
        let bn = weights.batch_norm.iter().find(|b| b.layer == layer.name);
        assert_eq!(
            view.bn.map(|b| (b.mean, b.var)),
            bn.map(|b| (b.mean.clone(), b.var.clone()))
        );
    }
    let e = pollster::block_on(t.layer_view("nope", 0)).unwrap_err().to_string();
    assert!(e.contains("no layer named \"nope\""), "{e}");
    let e = pollster::block_on(t.layer_view(&activations.layers[0].name, 100))
        .unwrap_err()
        .to_string();
    assert!(e.contains("100 is out of range"), "{e}");
}
