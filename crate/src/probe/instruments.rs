//! The chapters' instruments behind one entry point (docs/chapters.md, "Probes"):
//! `Trainer::instrument(name, options)` runs a named probe on the fixed probe batch (the
//! first `examples` validation examples, default `PROBE_EXAMPLES`) and returns an
//! `Instrument`: a JSON header whose `{"$": i}` stands for `arrays[i]` (the wasm edge's
//! convention). Each call reads what it shows in one round trip (`Backend::read_many`),
//! except `landscape`, which needs two (θ and g, then the moved samples). A probe changes
//! nothing of the trainer: forward passes run on tapes over its parameters, dropout masks
//! come from a probe-owned seeded RNG, and batch norm runs in eval mode unless said otherwise.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::nn::ParamKind;
use crate::probe::{inception_counts, weight_stats};
use crate::tensor::Tensor;
use crate::trainer::Trainer;

/// Validation examples in the fixed probe batch unless a probe's `examples` option says otherwise.
pub const PROBE_EXAMPLES: usize = 64;

/// Every probe name with the options it accepts, in the order of docs/chapters.md.
pub const PROBES: &[(&str, &[&str])] = &[
    ("kernels", &[]),
    ("landscape", &["etas"]),
    ("activations", &[]),
    ("dropout-mask", &["example"]),
    ("test-time", &["examples"]),
    ("mc-dropout", &["k", "examples"]),
    ("inception-counts", &[]),
    ("branch-maps", &["example"]),
    ("class-maps", &["example"]),
    ("checkerboard", &["layer", "examples"]),
    ("overlap", &["layer"]),
    ("switches", &["example"]),
    ("decoder-stages", &["example"]),
];

/// What a probe returns: a JSON header and the float arrays it refers to as `{"$": i}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Instrument {
    pub header: Value,
    pub arrays: Vec<Vec<f32>>,
}

impl Instrument {
    /// Moves `data` beside the header; returns the `{"$": i}` that stands for it.
    pub fn slot(&mut self, data: Vec<f32>) -> Value {
        self.arrays.push(data);
        json!({ "$": self.arrays.len() - 1 })
    }

    /// The array a header value `{"$": i}` stands for (tests and the CLI read them).
    pub fn array(&self, slot: &Value) -> Option<&[f32]> {
        let i = slot.get("$")?.as_u64()? as usize;
        self.arrays.get(i).map(Vec::as_slice)
    }
}

fn err(problem: impl Into<String>) -> Error {
    Error::Config {
        field: "instrument",
        problem: problem.into(),
    }
}

/// A probe's options, checked against the names it accepts.
pub(crate) struct Options<'a> {
    probe: &'a str,
    map: Map<String, Value>,
}

impl<'a> Options<'a> {
    fn new(probe: &'a str, allowed: &[&str], options: &Value) -> Result<Options<'a>> {
        let map = match options {
            Value::Null => Map::new(),
            Value::Object(m) => m.clone(),
            other => return Err(err(format!("{probe}: options must be a JSON object, got {other}"))),
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(err(format!("{probe}: unknown option {key:?}; it accepts {allowed:?}")));
            }
        }
        Ok(Options { probe, map })
    }

    fn usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                err(format!(
                    "{}: option {key:?} must be a whole number ≥ 0, got {v}",
                    self.probe
                ))
            }),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(err(format!(
                "{}: option {key:?} must be a layer name, got {v}",
                self.probe
            ))),
        }
    }

    fn floats(&self, key: &str) -> Result<Option<Vec<f32>>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<f32>>>()
                .map(Some)
                .ok_or_else(|| err(format!("{}: option {key:?} must be an array of numbers", self.probe))),
            Some(v) => Err(err(format!(
                "{}: option {key:?} must be an array of numbers, got {v}",
                self.probe
            ))),
        }
    }
}

impl Trainer {
    /// Runs the probe `name` with `options` (a JSON object, or null for the defaults) on the
    /// fixed probe batch; see docs/chapters.md for each probe's header. Unknown names and
    /// options, and probes that do not apply to this model, are errors naming them.
    pub async fn instrument(&self, name: &str, options: &Value) -> Result<Instrument> {
        let Some((_, allowed)) = PROBES.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = PROBES.iter().map(|(n, _)| *n).collect();
            return Err(err(format!("no probe named {name:?}; the probes are {names:?}")));
        };
        let o = Options::new(name, allowed, options)?;
        match name {
            "kernels" => self.probe_kernels().await,
            "inception-counts" => self.probe_inception_counts(),
            "overlap" => self.probe_overlap(&o),
            _ => Err(err(format!("{name}: not built yet"))),
        }
    }

    /// kernels: every conv kernel (conv2d, conv_transpose2d and inception convs' weights;
    /// not biases) in one read: exact and near zeros, L2 norm, histogram; and the first
    /// conv2d's kernels with their per-output-filter L2 norms.
    async fn probe_kernels(&self) -> Result<Instrument> {
        let params = &self.params().params;
        let ids: Vec<usize> = (0..params.len())
            .filter(|&id| params[id].kind == ParamKind::ConvWeight)
            .collect();
        if ids.is_empty() {
            return Err(err("kernels: the model has no convolution kernels to measure"));
        }
        let refs: Vec<&Tensor> = ids.iter().map(|&id| &params[id].value).collect();
        let read = self.backend().read_many(&refs).await?;
        let all: Vec<f32> = read.iter().flatten().copied().collect();
        let stats = weight_stats(&all);
        let mut out = Instrument::default();
        let counts = out.slot(stats.histogram.counts.iter().map(|&c| c as f32).collect());
        let first = self.model().first_conv_weight().and_then(|w| {
            let at = ids.iter().position(|&id| id == w)?;
            Some((w, read.get(at)?.clone()))
        });
        let (filter_norms, first) = match first {
            Some((w, data)) => {
                let shape = params[w].value.dims().to_vec();
                let per = shape.iter().skip(1).product::<usize>().max(1);
                let norms: Vec<f32> = data
                    .chunks(per)
                    .map(|f| f.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt() as f32)
                    .collect();
                let max_abs = data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let layer = params[w]
                    .name
                    .strip_suffix(".weight")
                    .unwrap_or(&params[w].name)
                    .to_string();
                let norms = out.slot(norms);
                let data = out.slot(data);
                (
                    norms,
                    json!({ "layer": layer, "shape": shape, "max_abs": max_abs, "data": data }),
                )
            }
            None => (out.slot(Vec::new()), Value::Null),
        };
        out.header = json!({
            "zero_share": stats.zero_share(),
            "near_zero_share": stats.near_zero_share(),
            "norm": stats.l2_norm,
            "count": stats.count,
            "hist": { "lo": stats.histogram.lo, "hi": stats.histogram.hi, "counts": counts },
            "filter_norms": filter_norms,
            "first": first,
        });
        Ok(out)
    }

    /// inception-counts: counts.rs over the spec's plan (no device work), summed over blocks.
    fn probe_inception_counts(&self) -> Result<Instrument> {
        let blocks = inception_counts(self.spec(), self.plan())?;
        if blocks.is_empty() {
            return Err(err("inception-counts: the model has no inception layer"));
        }
        let sum = |f: fn(&crate::probe::InceptionCounts) -> usize| blocks.iter().map(f).sum::<usize>();
        Ok(Instrument {
            header: json!({
                "params_naive": sum(|b| b.naive.params),
                "params_reduced": sum(|b| b.reduced.params),
                "flops_naive": sum(|b| b.naive.flops),
                "flops_reduced": sum(|b| b.reduced.flops),
                "blocks": blocks,
            }),
            arrays: Vec::new(),
        })
    }

    /// overlap: for the named (or first) conv_transpose2d layer, its kernel and stride, and
    /// how many kernel taps land on each output pixel of one axis (`overlap_counts`).
    fn probe_overlap(&self, o: &Options<'_>) -> Result<Instrument> {
        let layer = o.string("layer")?;
        let spec = self.spec();
        let plan = self.plan();
        let found = spec.layers.iter().zip(&plan.layers).find(|(l, lp)| {
            matches!(l.op, crate::spec::LayerSpec::ConvTranspose2d { .. })
                && layer.as_ref().is_none_or(|name| *name == lp.name)
        });
        let Some((l, lp)) = found else {
            return Err(err(match layer {
                Some(name) => format!("overlap: {name:?} is not a conv_transpose2d layer of the model"),
                None => "overlap: the model has no conv_transpose2d layer".to_string(),
            }));
        };
        let crate::spec::LayerSpec::ConvTranspose2d {
            kernel,
            stride,
            padding,
            output_padding,
            ..
        } = l.op
        else {
            return Err(err("overlap: not a conv_transpose2d layer"));
        };
        let input = lp.in_shapes.first().and_then(|s| s.last()).copied().unwrap_or(0);
        let counts = overlap_counts(input, kernel, stride, padding, output_padding);
        Ok(Instrument {
            header: json!({ "layer": lp.name, "kernel": kernel, "stride": stride, "counts": counts }),
            arrays: Vec::new(),
        })
    }
}

/// The 1-D transposed convolution's overlap (Odena et al. 2016): input pixel i spreads its
/// k taps over output pixels i·s − padding + t, t = 0..k; counts[o] is how many taps land on
/// output pixel o, for an input of `input` pixels and an output of
/// (input − 1)·s − 2·padding + k + output_padding pixels. Away from the borders: k3 s2 gives
/// 1, 2, 1, 2, …; k4 s2 gives 2, 2, …; k = s gives 1 everywhere.
pub fn overlap_counts(input: usize, kernel: usize, stride: usize, padding: usize, output_padding: usize) -> Vec<u32> {
    let full = input.saturating_sub(1) * stride + kernel + output_padding;
    let out = full.saturating_sub(2 * padding);
    let mut counts = vec![0u32; out];
    for i in 0..input {
        for t in 0..kernel {
            let o = (i * stride + t) as isize - padding as isize;
            if o >= 0 && (o as usize) < out {
                counts[o as usize] += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_by_hand() {
        // k3 s2 over 4 inputs: outputs 0..9; input i covers 2i, 2i+1, 2i+2
        assert_eq!(overlap_counts(4, 3, 2, 0, 0), vec![1, 1, 2, 1, 2, 1, 2, 1, 1]);
        // k4 s2 p1 over 3 inputs: full 0..8 = [1,1,2,2,2,2,1,1], cropped by 1 each side
        assert_eq!(overlap_counts(3, 4, 2, 1, 0), vec![1, 2, 2, 2, 2, 1]);
        // k2 s2: no overlap
        assert_eq!(overlap_counts(3, 2, 2, 0, 0), vec![1; 6]);
        // k3 s2 p1 op1 over 2 inputs: full 0..6 = [1,1,2,1,1,0]; cropped 1 left, 0 right (p − op)
        assert_eq!(overlap_counts(2, 3, 2, 1, 1), vec![1, 2, 1, 1]);
    }
}

// native only: the tests block on the probes with pollster
#[cfg(all(test, not(target_arch = "wasm32")))]
mod trainer_tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::{Device, ModelSpec, TrainConfig};

    /// A 100-example MNIST-format asset: digit d is a bright bar at row 3 + 2d over a faint
    /// ramp (as landscape_trainer.rs's tests).
    pub(crate) fn bars() -> crate::data::Mnist {
        let count = 100u32;
        let mut bytes = b"MNST".to_vec();
        for v in [count, 28, 28] {
            bytes.extend(v.to_le_bytes());
        }
        bytes.extend((0..count).map(|i| (i % 10) as u8));
        for i in 0..count as usize {
            let row = 3 + 2 * (i % 10);
            bytes.extend((0..784).map(|p| {
                if p / 28 == row && (4..24).contains(&(p % 28)) {
                    230
                } else {
                    (p * 7 % 40) as u8
                }
            }));
        }
        crate::data::Mnist::parse(&bytes).unwrap()
    }

    pub(crate) fn trainer_with(layers: &str, config: TrainConfig) -> Trainer {
        let spec = ModelSpec::from_json(&format!(r#"{{"input":[1,28,28],"classes":10,"layers":[{layers}]}}"#)).unwrap();
        let cpu = Device::Cpu(CpuBackend::new());
        Trainer::with_device(spec, config, bars(), cpu, "test".into()).unwrap()
    }

    pub(crate) fn trainer(layers: &str) -> Trainer {
        trainer_with(
            layers,
            TrainConfig {
                batch: 8,
                ..Default::default()
            },
        )
    }

    pub(crate) fn run(t: &Trainer, name: &str, options: Value) -> Result<Instrument> {
        pollster::block_on(t.instrument(name, &options))
    }

    #[test]
    fn kernels_by_hand_over_every_conv_kernel_and_not_the_biases() {
        let mut t = trainer(
            r#"{"type":"conv2d","out":2,"kernel":2},{"type":"relu"},{"type":"conv2d","out":1,"kernel":1},
            {"type":"max_pool","size":9},{"type":"flatten"},{"type":"linear","out":10}"#,
        );
        t.load_param("0.weight", &[0.0, 0.0, 0.0005, -0.5, 1.0, 2.0, -2.0, 0.0])
            .unwrap();
        t.load_param("2.weight", &[3.0, 0.0]).unwrap();
        t.load_param("0.bias", &[0.0, 0.0]).unwrap();
        let k = run(&t, "kernels", Value::Null).unwrap();
        let h = &k.header;
        // 10 kernel weights: 4 exact zeros, 5 below 1e-3 (0.0005 too); the biases' zeros do not count
        assert_eq!(h["count"], 10);
        assert!((h["zero_share"].as_f64().unwrap() - 0.4).abs() < 1e-6, "{h}");
        assert!((h["near_zero_share"].as_f64().unwrap() - 0.5).abs() < 1e-6, "{h}");
        // ‖w‖² = 0.25 + 1 + 4 + 4 + 9 (+ 0.0005²)
        assert!((h["norm"].as_f64().unwrap() - 18.25f64.sqrt()).abs() < 1e-5, "{h}");
        // 32 bins of width 5/32 over [-2, 3]: -2 → 0, -0.5 → 9, 0 and 0.0005 → 12, 1 → 19, 2 → 25, 3 → 31
        assert_eq!(
            (h["hist"]["lo"].as_f64(), h["hist"]["hi"].as_f64()),
            (Some(-2.0), Some(3.0))
        );
        let mut want = vec![0.0f32; 32];
        for (bin, n) in [(0, 1.0), (9, 1.0), (12, 5.0), (19, 1.0), (25, 1.0), (31, 1.0)] {
            want[bin] = n;
        }
        assert_eq!(k.array(&h["hist"]["counts"]).unwrap(), want.as_slice());
        // the first conv's filters: ‖(0, 0, 0.0005, -0.5)‖ and ‖(1, 2, -2, 0)‖ = 3
        let norms = k.array(&h["filter_norms"]).unwrap();
        assert_eq!(norms.len(), 2);
        assert!(
            (norms[0] - 0.25000025f32.sqrt()).abs() < 1e-6 && (norms[1] - 3.0).abs() < 1e-6,
            "{norms:?}"
        );
        assert_eq!(h["first"]["layer"], "0");
        assert_eq!(h["first"]["shape"], json!([2, 1, 2, 2]));
        assert_eq!(h["first"]["max_abs"].as_f64(), Some(2.0));
        assert_eq!(
            k.array(&h["first"]["data"]).unwrap(),
            &[0.0, 0.0, 0.0005, -0.5, 1.0, 2.0, -2.0, 0.0]
        );
    }

    #[test]
    fn unknown_probes_and_options_are_named_and_inapplicable_probes_say_why() {
        let t = trainer(r#"{"type":"flatten"},{"type":"linear","out":10}"#);
        let e = run(&t, "kernel", Value::Null).unwrap_err().to_string();
        assert!(
            e.contains("\"kernel\"") && e.contains("\"kernels\"") && e.contains("\"decoder-stages\""),
            "{e}"
        );
        let e = run(&t, "mc-dropout", json!({"K": 5})).unwrap_err().to_string();
        assert!(
            e.contains("mc-dropout") && e.contains("\"K\"") && e.contains("\"k\""),
            "{e}"
        );
        let e = run(&t, "mc-dropout", json!([1])).unwrap_err().to_string();
        assert!(e.contains("JSON object"), "{e}");
        let e = run(&t, "kernels", Value::Null).unwrap_err().to_string();
        assert!(e.contains("kernels") && e.contains("no convolution"), "{e}");
        let e = run(&t, "inception-counts", json!({})).unwrap_err().to_string();
        assert!(e.contains("inception-counts") && e.contains("no inception"), "{e}");
        let e = run(&t, "overlap", json!({})).unwrap_err().to_string();
        assert!(e.contains("overlap") && e.contains("no conv_transpose2d"), "{e}");
    }

    #[test]
    fn inception_counts_sum_the_blocks_by_hand() {
        // two blocks on 1×28×28 → 6 channels → (2+4+2+2 = 10 channels): hand counts below
        let t = trainer(
            r#"{"type":"inception","b1":2,"b3_reduce":1,"b3":2,"b5_reduce":1,"b5":1,"pool_proj":1},
            {"type":"inception","b1":2,"b3_reduce":3,"b3":4,"b5_reduce":1,"b5":2,"pool_proj":2},
            {"type":"global_avg_pool"},{"type":"linear","out":10}"#,
        );
        let h = run(&t, "inception-counts", Value::Null).unwrap().header;
        // block 1 (C=1): reduced 1→2 (4) + 1→1 (2) + 1→2 3×3 (20) + 1→1 (2) + 1→1 5×5 (26) + 1→1 (2) = 56
        //   naive 1→2 (4) + 1→2 3×3 (20) + 1→1 5×5 (26) + 1→1 (2) = 52
        // block 2 (C=6): reduced 6→2 (14) + 6→3 (21) + 3→4 3×3 (112) + 6→1 (7) + 1→2 5×5 (52) + 6→2 (14) = 220
        //   naive 6→2 (14) + 6→4 3×3 (220) + 6→2 5×5 (302) + 6→2 (14) = 550
        assert_eq!(h["params_reduced"], 56 + 220, "{h}");
        assert_eq!(h["params_naive"], 52 + 550, "{h}");
        // FLOPs: 2·784·(multiply-adds per pixel): block 1 reduced 2+1+18+1+25+1 = 48, naive 2+18+25+1 = 46;
        //   block 2 reduced 12+18+108+6+50+12 = 206, naive 12+216+300+12 = 540
        assert_eq!(h["flops_reduced"], 2 * 784 * (48 + 206), "{h}");
        assert_eq!(h["flops_naive"], 2 * 784 * (46 + 540), "{h}");
        assert_eq!(h["blocks"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn overlap_reads_the_layer_geometry() {
        let t = trainer(
            r#"{"type":"conv2d","out":2,"kernel":4,"stride":4},{"type":"conv_transpose2d","out":1,"kernel":3,"stride":2,"name":"up"},
            {"type":"flatten"},{"type":"linear","out":10}"#,
        );
        let h = run(&t, "overlap", json!({"layer": "up"})).unwrap().header;
        assert_eq!((h["kernel"].as_u64(), h["stride"].as_u64()), (Some(3), Some(2)));
        // 7 inputs → 15 outputs: 1, 1, 2, 1, 2, …, 2, 1, 1
        let counts: Vec<u64> = h["counts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert_eq!(counts.len(), 15);
        assert_eq!(&counts[..5], &[1, 1, 2, 1, 2]);
        assert_eq!(&counts[12..], &[2, 1, 1]);
        let e = run(&t, "overlap", json!({"layer": "0"})).unwrap_err().to_string();
        assert!(e.contains("\"0\" is not a conv_transpose2d"), "{e}");
    }
}
