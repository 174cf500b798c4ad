//! The chapters' instruments behind one entry point (docs/chapters.md, "Probes"):
//! `Trainer::instrument(name, options)` runs a named probe on the fixed probe batch (the
//! first `examples` validation examples, default `PROBE_EXAMPLES`) and returns an
//! `Instrument`: a JSON header whose `{"$": i}` stands for `arrays[i]` (the wasm edge's
//! convention). Each call reads what it shows in one round trip (`Backend::read_many`),
//! except `landscape`, which needs two (θ and g, then the moved samples), and the pure
//! `overlap` and `inception-counts`, which read nothing. A probe changes nothing of the
//! trainer: forward passes run on tapes over its parameters, dropout masks come from a
//! probe-owned seeded RNG (`MASK_SEED`), running statistics are never updated, and the live
//! dropout overrides of the config (`dropout_p`, `dropout_scaling`) apply.
//!
//! Headers (`$` = an array slot; shares and accuracies in [0, 1]):
//! - `kernels` {zero_share, near_zero_share, norm, count, hist: {lo, hi, counts: $},
//!   filter_norms: $, first: {layer, shape, max_abs, data: $} | null}: every conv kernel
//!   (conv2d, conv_transpose2d, inception convs; no biases), histogram of 32 bins over
//!   [min, max]; `first` and `filter_norms` are the first conv2d's.
//! - `landscape` {loss_range, grad_change, beta, etas, losses, gradient_changes, grad_norm}:
//!   default etas 6 log-spaced over [lr/4, 4·lr].
//! - `activations` {layers: [{name, kind, p15, p50, p85}], examples}: eval mode.
//! - `dropout-mask` {layer, p, scaling, shape, kept_share, mean_in, mean_train, mean_eval,
//!   input: $, mask: $, output: $}: the first dropout layer; batch norm in eval mode.
//! - `test-time` {eval, forgot_eval, classic_no_rescale, examples}.
//! - `mc-dropout` {k, examples, accuracy_by_k: [K], mc_accuracy, weight_scaling_accuracy,
//!   agreement, mean_entropy, entropy: $ (per example, nats)}.
//! - `inception-counts` {params_naive, params_reduced, flops_naive, flops_reduced, blocks:
//!   [{layer, reduced: {params, flops}, naive: {params, flops}, built_reduced}]}.
//! - `branch-maps` {layer, branches: [{name, start, end}], shape: [C,H,W], maps: $}.
//! - `class-maps` {layer, classes: [names], shape: [C,H,W], scores: [C], maps: $}.
//! - `checkerboard` {score, stride, layer, shape: [C,H,W], examples, output: $ (example 0's
//!   channel mean, H·W)}.
//! - `overlap` {layer, kernel, stride, counts: [output width]}: the named or first
//!   conv_transpose2d, one axis.
//! - `switches` {layer, shape: [C,H,W] (pool input), pooled: [C,OH,OW], input: $ (channel
//!   0, H·W), switches: $ (OH·OW positions into H·W, −1 when overwritten)}.
//! - `decoder-stages` {stages: [{layer, kind, shape, map: $ (channel mean)}]}.

use serde_json::{json, Map, Value};

use crate::autograd::{Tape, Var};
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::nn::{Layer, Mode, ParamKind, Pass, TestDropout};
use crate::probe::{checkerboard_score, inception_counts, weight_stats, McDropout};
use crate::spec::{DropoutScaling, LayerSpec, Source, Task};
use crate::tasks::data::{stack, Example};
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
            "landscape" => self.probe_landscape(&o).await,
            "activations" => self.probe_activations().await,
            "dropout-mask" => self.probe_dropout_mask(&o).await,
            "test-time" => self.probe_test_time(&o).await,
            "mc-dropout" => self.probe_mc_dropout(&o).await,
            "branch-maps" => self.probe_branch_maps(&o).await,
            "class-maps" => self.probe_class_maps(&o).await,
            "checkerboard" => self.probe_checkerboard(&o).await,
            "switches" => self.probe_switches(&o).await,
            "decoder-stages" => self.probe_decoder_stages(&o).await,
            _ => Err(err(format!("{name}: listed in PROBES but not dispatched"))),
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

/// Seed of the dropout masks the probes draw (test-time, mc-dropout, dropout-mask): probes
/// repeat exactly and never touch the trainer's own mask RNG.
const MASK_SEED: u64 = 0x5eed_d209;

/// Examples per forward pass of the Monte-Carlo passes (K passes × N examples run stacked).
const MC_CHUNK: usize = 512;

/// Percentiles of the `activations` probe.
const PERCENTILES: [f32; 3] = [0.15, 0.5, 0.85];

/// A layer that makes its input larger (the decoders' up layers).
fn is_upsampling(op: &LayerSpec) -> bool {
    matches!(
        op,
        LayerSpec::ConvTranspose2d { .. } | LayerSpec::Upsample { .. } | LayerSpec::MaxUnpool { .. }
    )
}

/// The q-quantile (q in [0, 1]) of `data` by linear interpolation between the closest ranks
/// (NumPy's default): the sorted value at q·(n−1). Non-finite values are left out; NaN for
/// no values.
pub fn percentile(data: &[f32], q: f32) -> f32 {
    let mut v: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    let pos = q.clamp(0.0, 1.0) as f64 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let t = (pos - lo as f64) as f32;
    v[lo] + t * (v[hi] - v[lo])
}

/// Index of the largest value of `row` (ties: the lowest index).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Share of rows of `logits` (N rows) whose argmax is the label.
fn accuracy(logits: &[f32], labels: &[usize]) -> f32 {
    let n = labels.len().max(1);
    let c = logits.len() / n;
    let correct = (logits.chunks(c.max(1)).zip(labels))
        .filter(|(row, &l)| argmax(row) == l)
        .count();
    correct as f32 / n as f32
}

/// Row-wise softmax of `logits` (rows of `c`), in f64.
fn softmax_rows(logits: &[f32], c: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(c.max(1)) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let e: Vec<f64> = row.iter().map(|&z| f64::from(z - m).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| (v / s) as f32));
    }
    out
}

fn mean(data: &[f32]) -> f32 {
    (data.iter().map(|&v| f64::from(v)).sum::<f64>() / data.len().max(1) as f64) as f32
}

/// Channel mean of a (C, H·W) map: H·W values.
fn channel_mean(data: &[f32], c: usize) -> Vec<f32> {
    let plane = data.len() / c.max(1);
    (0..plane)
        .map(|p| (0..c).map(|ch| data[ch * plane + p]).sum::<f32>() / c.max(1) as f32)
        .collect()
}

fn scaling_name(s: DropoutScaling) -> &'static str {
    match s {
        DropoutScaling::Inverted => "inverted",
        DropoutScaling::Classic => "classic",
    }
}

impl Trainer {
    /// The first `n` validation examples (the fixed probe batch).
    fn probe_batch(&self, probe: &str, n: usize) -> Result<Vec<&Example>> {
        if n == 0 {
            return Err(err(format!("{probe}: option \"examples\" must be at least 1")));
        }
        let val = &self.data().val;
        if val.is_empty() {
            return Err(err(format!("{probe}: the validation split is empty")));
        }
        Ok(val.iter().take(n).collect())
    }

    /// Validation example `i`, as a batch of one.
    fn probe_example(&self, probe: &str, i: usize) -> Result<Vec<&Example>> {
        let val = &self.data().val;
        val.get(i).map(|e| vec![e]).ok_or_else(|| {
            err(format!(
                "{probe}: example {i} is out of range: the validation split has {} examples",
                val.len()
            ))
        })
    }

    /// A pass with the config's live dropout overrides.
    fn probe_pass<'r>(&self, mode: Mode, rng: Option<&'r mut Rng>, test_dropout: TestDropout) -> Pass<'r> {
        Pass {
            mode,
            rng,
            dropout_p: self.config().dropout_p,
            dropout_scaling: self.config().dropout_scaling,
            test_dropout,
        }
    }

    /// `examples` stacked through the model: the tape, the input and every layer's output.
    fn probe_forward(&self, examples: &[&Example], pass: &mut Pass) -> Result<(Tape<'_>, Var, Vec<Var>)> {
        let be = self.backend();
        let x = be.upload(self.input_shape(examples.len()), &stack(examples))?;
        let mut tape = Tape::new(be, self.params());
        let xv = tape.input(x);
        let outs = self.model().forward(&mut tape, xv, pass)?.outputs;
        Ok((tape, xv, outs))
    }

    /// The output var of node `i`'s first source.
    fn source_of(&self, i: usize, x: Var, outs: &[Var]) -> Var {
        match self.model().nodes[i].sources.first() {
            Some(Source::Layer(j)) => outs[*j],
            _ => x,
        }
    }

    /// The position of the layer named `layer`, or an error listing the names.
    fn probe_layer(&self, probe: &str, layer: &str) -> Result<usize> {
        let nodes = &self.model().nodes;
        nodes.iter().position(|n| n.name == layer).ok_or_else(|| {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            err(format!("{probe}: no layer named {layer:?}; the model has {names:?}"))
        })
    }

    /// The first dropout layer: its position, effective p and scaling (live overrides applied).
    fn first_dropout(&self, probe: &str) -> Result<(usize, f32, DropoutScaling)> {
        self.model()
            .nodes
            .iter()
            .enumerate()
            .find_map(|(i, n)| match n.layer {
                Layer::Dropout { p, scaling } => Some((
                    i,
                    self.config().dropout_p.unwrap_or(p),
                    self.config().dropout_scaling.unwrap_or(scaling),
                )),
                _ => None,
            })
            .ok_or_else(|| err(format!("{probe}: the model has no dropout layer")))
    }

    /// The (N, classes) logits a classification probe needs.
    fn check_classify(&self, probe: &str) -> Result<usize> {
        let out = self.plan().layers.last().map(|l| l.out.clone()).unwrap_or_default();
        if self.spec().task != Task::Classify || out.len() != 1 {
            return Err(err(format!(
                "{probe}: needs a classification model with (classes) logits; this {:?} model outputs {out:?}",
                self.spec().task
            )));
        }
        Ok(out[0])
    }

    /// landscape: `Trainer::landscape` on the probe batch. Default step sizes: 6 log-spaced
    /// over [lr/4, 4·lr] (lr the config's), bracketing the step the optimizer takes. Two
    /// round trips (θ and g, then the samples at θ − η·g).
    async fn probe_landscape(&self, o: &Options<'_>) -> Result<Instrument> {
        let lr = self.config().lr;
        let etas = match o.floats("etas")? {
            Some(e) => e,
            None => (0..6).map(|i| lr * 4f32.powf(-1.0 + 2.0 * i as f32 / 5.0)).collect(),
        };
        let batch = self.probe_batch("landscape", PROBE_EXAMPLES)?;
        let l = self.landscape(&batch, &etas).await?;
        Ok(Instrument {
            header: json!({
                "loss_range": l.loss_range,
                "grad_change": l.gradient_change,
                "beta": l.beta_smoothness,
                "etas": l.etas,
                "losses": l.losses,
                "gradient_changes": l.gradient_changes,
                "grad_norm": l.grad_norm,
            }),
            arrays: Vec::new(),
        })
    }

    /// activations: the 15th, 50th and 85th percentiles of every conv2d, conv_transpose2d,
    /// linear and batch_norm layer's output (before its activation) over the probe batch,
    /// all elements of all examples pooled, in eval mode (running statistics, no dropout:
    /// the network as it predicts).
    async fn probe_activations(&self) -> Result<Instrument> {
        let batch = self.probe_batch("activations", PROBE_EXAMPLES)?;
        let kinds = ["conv2d", "conv_transpose2d", "linear", "batch_norm"];
        let picked: Vec<usize> = (0..self.spec().layers.len())
            .filter(|&i| kinds.contains(&self.spec().layers[i].op.kind()))
            .collect();
        if picked.is_empty() {
            return Err(err(
                "activations: the model has no conv2d, conv_transpose2d, linear or batch_norm layer",
            ));
        }
        let mut pass = self.probe_pass(Mode::Eval, None, TestDropout::Expected);
        let (tape, _, outs) = self.probe_forward(&batch, &mut pass)?;
        let refs: Vec<&Tensor> = picked.iter().map(|&i| tape.value(outs[i])).collect();
        let read = self.backend().read_many(&refs).await?;
        let layers: Vec<Value> = (picked.iter().zip(&read))
            .map(|(&i, data)| {
                let [p15, p50, p85] = PERCENTILES.map(|q| percentile(data, q));
                json!({
                    "name": self.model().nodes[i].name,
                    "kind": self.spec().layers[i].op.kind(),
                    "p15": p15, "p50": p50, "p85": p85,
                })
            })
            .collect();
        Ok(Instrument {
            header: json!({ "layers": layers, "examples": batch.len() }),
            arrays: Vec::new(),
        })
    }

    /// dropout-mask: the first dropout layer on validation example `example` (default 0):
    /// its input, the mask a training pass draws (seeded) and the masked output; means of
    /// the input, the masked output and the eval-mode output. Batch norm in eval mode.
    async fn probe_dropout_mask(&self, o: &Options<'_>) -> Result<Instrument> {
        let (d, p, scaling) = self.first_dropout("dropout-mask")?;
        let example = self.probe_example("dropout-mask", o.usize("example", 0)?)?;
        let be = self.backend();
        let mut rng = Rng::new(MASK_SEED);
        let mut masked = self.probe_pass(Mode::Eval, Some(&mut rng), TestDropout::Masks);
        let (tape, x, outs) = self.probe_forward(&example, &mut masked)?;
        let input = tape.value(self.source_of(d, x, &outs));
        let output = tape.value(outs[d]);
        let mut eval = self.probe_pass(Mode::Eval, None, TestDropout::Expected);
        let (eval_tape, _, eval_outs) = self.probe_forward(&example, &mut eval)?;
        let shape = input.dims()[1..].to_vec();
        let ones;
        let mask = match tape.dropout_mask(outs[d]) {
            Some(m) => m,
            // p = 0: no mask is drawn, every unit is kept
            None => {
                ones = be.upload(input.shape.clone(), &vec![1.0; input.numel()])?;
                &ones
            }
        };
        let read = be
            .read_many(&[input, mask, output, eval_tape.value(eval_outs[d])])
            .await?;
        let [input, mask, out, eval]: [Vec<f32>; 4] = read
            .try_into()
            .map_err(|_| err("dropout-mask: the maps did not come back"))?;
        let mut inst = Instrument::default();
        let header = json!({
            "layer": self.model().nodes[d].name,
            "p": p,
            "scaling": scaling_name(scaling),
            "shape": shape,
            "kept_share": mean(&mask),
            "mean_in": mean(&input),
            "mean_train": mean(&out),
            "mean_eval": mean(&eval),
            "input": inst.slot(input),
            "mask": inst.slot(mask),
            "output": inst.slot(out),
        });
        inst.header = header;
        Ok(inst)
    }

    /// test-time: accuracy on the first `examples` (64) validation examples in the dropout
    /// chapter's three test-time modes: `eval` (model.eval(): running statistics, dropout
    /// as its scaling expects), `forgot_eval` (model.eval() forgotten: the whole net in train
    /// mode, as PyTorch would run it: masks drawn (seeded) and batch statistics; the running
    /// statistics are not updated), `classic_no_rescale` (eval mode with
    /// `TestDropout::NoRescale`: classic dropout's ×(1−p) forgotten).
    async fn probe_test_time(&self, o: &Options<'_>) -> Result<Instrument> {
        self.first_dropout("test-time")?;
        self.check_classify("test-time")?;
        let batch = self.probe_batch("test-time", o.usize("examples", PROBE_EXAMPLES)?)?;
        let labels: Vec<usize> = batch.iter().map(|e| e.label as usize).collect();
        let mut rng = Rng::new(MASK_SEED);
        let mut logits = Vec::new();
        for (mode, test) in [
            (Mode::Eval, TestDropout::Expected),
            (Mode::Train, TestDropout::Expected),
            (Mode::Eval, TestDropout::NoRescale),
        ] {
            let mut pass = self.probe_pass(mode, Some(&mut rng), test);
            let (tape, _, outs) = self.probe_forward(&batch, &mut pass)?;
            let z = outs[outs.len() - 1];
            logits.extend(tape.into_values(&[z])?);
        }
        let refs: Vec<&Tensor> = logits.iter().collect();
        let read = self.backend().read_many(&refs).await?;
        let acc = |i: usize| read.get(i).map(|z| accuracy(z, &labels)).unwrap_or(f32::NAN);
        Ok(Instrument {
            header: json!({
                "eval": acc(0),
                "forgot_eval": acc(1),
                "classic_no_rescale": acc(2),
                "examples": batch.len(),
            }),
            arrays: Vec::new(),
        })
    }

    /// mc-dropout: K (`k`, default 50) eval-mode passes with dropout masks on (seeded;
    /// batch norm on its running statistics) over the first `examples` (64) validation
    /// examples, stacked so that one forward runs up to `MC_CHUNK` example-passes, and the
    /// deterministic eval pass (weight scaling), all read in one round trip; softmax on the host.
    async fn probe_mc_dropout(&self, o: &Options<'_>) -> Result<Instrument> {
        self.first_dropout("mc-dropout")?;
        let classes = self.check_classify("mc-dropout")?;
        let k = o.usize("k", 50)?;
        if k == 0 {
            return Err(err("mc-dropout: option \"k\" must be at least 1"));
        }
        let batch = self.probe_batch("mc-dropout", o.usize("examples", PROBE_EXAMPLES)?)?;
        let n = batch.len();
        let be = self.backend();
        let mut kept = Vec::new();
        let mut eval = self.probe_pass(Mode::Eval, None, TestDropout::Expected);
        let (tape, _, outs) = self.probe_forward(&batch, &mut eval)?;
        kept.extend(tape.into_values(&[outs[outs.len() - 1]])?);
        let mut rng = Rng::new(MASK_SEED);
        let per_chunk = (MC_CHUNK / n).max(1);
        let mut done = 0;
        while done < k {
            let passes = per_chunk.min(k - done);
            let stacked: Vec<&Example> = (0..passes).flat_map(|_| batch.iter().copied()).collect();
            let mut pass = self.probe_pass(Mode::Eval, Some(&mut rng), TestDropout::Masks);
            let (tape, _, outs) = self.probe_forward(&stacked, &mut pass)?;
            kept.extend(tape.into_values(&[outs[outs.len() - 1]])?);
            // submit each chunk's work, so that its buffers can serve the next chunk
            be.flush()?;
            done += passes;
        }
        let refs: Vec<&Tensor> = kept.iter().collect();
        let read = be.read_many(&refs).await?;
        let weight_scaled = read.first().map(|z| softmax_rows(z, classes)).unwrap_or_default();
        let passes: Vec<f32> = read.iter().skip(1).flat_map(|z| softmax_rows(z, classes)).collect();
        let labels: Vec<usize> = batch.iter().map(|e| e.label as usize).collect();
        let mc = McDropout::new(&passes, [k, n, classes], &labels, &weight_scaled)?;
        let mut inst = Instrument::default();
        let header = json!({
            "k": k,
            "examples": n,
            "accuracy_by_k": mc.accuracy,
            "mc_accuracy": mc.accuracy.last().copied().unwrap_or(f32::NAN),
            "weight_scaling_accuracy": accuracy(&weight_scaled, &labels),
            "agreement": mc.agreement,
            "mean_entropy": mean(&mc.entropy),
            "entropy": inst.slot(mc.entropy),
        });
        inst.header = header;
        Ok(inst)
    }

    /// One layer's eval-mode output for one validation example, read back: (dims without
    /// N, values), plus the outputs of `more` layers in the same read.
    async fn example_outputs(
        &self,
        probe: &str,
        example: usize,
        layers: &[usize],
    ) -> Result<Vec<(Vec<usize>, Vec<f32>)>> {
        let example = self.probe_example(probe, example)?;
        let mut pass = self.probe_pass(Mode::Eval, None, TestDropout::Expected);
        let (tape, _, outs) = self.probe_forward(&example, &mut pass)?;
        let refs: Vec<&Tensor> = layers.iter().map(|&i| tape.value(outs[i])).collect();
        let read = self.backend().read_many(&refs).await?;
        Ok(refs
            .iter()
            .zip(read)
            .map(|(t, d)| (t.dims()[1..].to_vec(), d))
            .collect())
    }

    /// branch-maps: the first inception block's output on validation example `example`
    /// (default 0), with each branch's channel range ([start, end) in the concatenation).
    async fn probe_branch_maps(&self, o: &Options<'_>) -> Result<Instrument> {
        let found = self.spec().layers.iter().enumerate().find_map(|(i, l)| match l.op {
            LayerSpec::Inception {
                b1, b3, b5, pool_proj, ..
            } => Some((i, [("b1", b1), ("b3", b3), ("b5", b5), ("pool_proj", pool_proj)])),
            _ => None,
        });
        let Some((i, widths)) = found else {
            return Err(err("branch-maps: the model has no inception layer"));
        };
        let mut out = self
            .example_outputs("branch-maps", o.usize("example", 0)?, &[i])
            .await?;
        let (shape, data) = out.pop().unwrap_or_default();
        let mut start = 0;
        let branches: Vec<Value> = widths
            .iter()
            .map(|&(name, w)| {
                start += w;
                json!({ "name": name, "start": start - w, "end": start })
            })
            .collect();
        let mut inst = Instrument::default();
        let maps = inst.slot(data);
        inst.header = json!({
            "layer": self.model().nodes[i].name,
            "branches": branches,
            "shape": shape,
            "maps": maps,
        });
        Ok(inst)
    }

    /// class-maps: the maps feeding the last global_avg_pool (one per class, network in
    /// network's head) on validation example `example` (default 0), and their means (the
    /// pooled scores, the logits when the pool is the last layer).
    async fn probe_class_maps(&self, o: &Options<'_>) -> Result<Instrument> {
        let Some(g) = (self.model().nodes.iter()).rposition(|n| matches!(n.layer, Layer::GlobalAvgPool)) else {
            return Err(err("class-maps: the model has no global_avg_pool layer"));
        };
        let Some(Source::Layer(src)) = self.model().nodes[g].sources.first().copied() else {
            return Err(err(
                "class-maps: global_avg_pool reads the model input, which has no class maps",
            ));
        };
        let classes = self.spec().classes;
        let channels = self.plan().layers[src].out.first().copied().unwrap_or(0);
        if channels != classes {
            return Err(err(format!(
                "class-maps: the maps before global_avg_pool ({}) have {channels} channels, not one per class ({classes})",
                self.model().nodes[src].name
            )));
        }
        let mut read = self
            .example_outputs("class-maps", o.usize("example", 0)?, &[src, g])
            .await?
            .into_iter();
        let (shape, maps) = read.next().unwrap_or_default();
        let (_, scores) = read.next().unwrap_or_default();
        let mut inst = Instrument::default();
        let maps = inst.slot(maps);
        inst.header = json!({
            "layer": self.model().nodes[src].name,
            "classes": self.class_names(),
            "shape": shape,
            "scores": scores,
            "maps": maps,
        });
        Ok(inst)
    }

    /// The stride of an upsampling layer: conv_transpose2d's stride, upsample's scale,
    /// max_unpool's pool's stride.
    fn up_stride(&self, i: usize) -> usize {
        match &self.spec().layers[i].op {
            LayerSpec::ConvTranspose2d { stride, .. } => *stride,
            LayerSpec::Upsample { scale, .. } => *scale,
            LayerSpec::MaxUnpool { .. } => match self.model().nodes[i].layer {
                Layer::MaxUnpool { pool } => match self.spec().layers[pool].op {
                    LayerSpec::MaxPool { size, stride, .. } => stride.unwrap_or(size),
                    _ => 1,
                },
                _ => 1,
            },
            _ => 1,
        }
    }

    /// checkerboard: `checkerboard_score` of layer `layer`'s output (default: the last
    /// upsampling layer) at the stride of the last upsampling layer at or before it, per
    /// example (the mean of its channels' scores), averaged over the first `examples` (64)
    /// validation examples, eval mode. Name the conv after a resize (upsample) to score a
    /// resize-conv decoder: nearest upsampling alone has no energy at the s = 2 frequency.
    async fn probe_checkerboard(&self, o: &Options<'_>) -> Result<Instrument> {
        let layers = &self.spec().layers;
        let target = match o.string("layer")? {
            Some(name) => self.probe_layer("checkerboard", &name)?,
            None => (0..layers.len())
                .rev()
                .find(|&i| is_upsampling(&layers[i].op))
                .ok_or_else(|| {
                    err("checkerboard: the model has no upsampling layer (conv_transpose2d, upsample, max_unpool)")
                })?,
        };
        let name = &self.model().nodes[target].name;
        let Some(up) = (0..=target).rev().find(|&i| is_upsampling(&layers[i].op)) else {
            return Err(err(format!("checkerboard: no upsampling layer at or before {name:?}")));
        };
        let stride = self.up_stride(up);
        if stride < 2 {
            return Err(err(format!(
                "checkerboard: {:?} upsamples by {stride}; the score needs a stride of at least 2",
                self.model().nodes[up].name
            )));
        }
        let dims = self.plan().layers[target].out.clone();
        if dims.len() != 3 {
            return Err(err(format!(
                "checkerboard: {name:?} outputs {dims:?}, not (C,H,W) maps"
            )));
        }
        let batch = self.probe_batch("checkerboard", o.usize("examples", PROBE_EXAMPLES)?)?;
        let mut pass = self.probe_pass(Mode::Eval, None, TestDropout::Expected);
        let (tape, _, outs) = self.probe_forward(&batch, &mut pass)?;
        let read = self.backend().read_many(&[tape.value(outs[target])]).await?;
        let data = read.into_iter().next().unwrap_or_default();
        let per: usize = dims.iter().product::<usize>().max(1);
        let mut scores = Vec::with_capacity(batch.len());
        for map in data.chunks(per) {
            scores.push(checkerboard_score(map, &dims, stride)?);
        }
        let mut inst = Instrument::default();
        let first = inst.slot(channel_mean(data.get(..per).unwrap_or_default(), dims[0]));
        inst.header = json!({
            "score": mean(&scores),
            "stride": stride,
            "layer": name,
            "shape": dims,
            "examples": scores.len(),
            "output": first,
        });
        Ok(inst)
    }

    /// switches: the max_pool paired with the first max_unpool (else the first max_pool) on
    /// validation example `example` (default 0): its input's channel 0 and, for each pooled
    /// cell of channel 0 (row-major), the position (row-major, in the H·W input plane) of its
    /// argmax, as the backend's own switches say (read by unpooling the cell numbers through
    /// them); −1 for a cell whose switch another cell's overwrote (overlapping windows).
    async fn probe_switches(&self, o: &Options<'_>) -> Result<Instrument> {
        let nodes = &self.model().nodes;
        let pool = nodes
            .iter()
            .find_map(|n| match n.layer {
                Layer::MaxUnpool { pool } => Some(pool),
                _ => None,
            })
            .or_else(|| nodes.iter().position(|n| matches!(n.layer, Layer::MaxPool(_))));
        let Some(pool) = pool else {
            return Err(err("switches: the model has no max_pool layer"));
        };
        let example = self.probe_example("switches", o.usize("example", 0)?)?;
        let be = self.backend();
        let mut pass = self.probe_pass(Mode::Eval, None, TestDropout::Expected);
        let (tape, x, outs) = self.probe_forward(&example, &mut pass)?;
        let input = tape.value(self.source_of(pool, x, &outs));
        let pooled = tape.value(outs[pool]);
        let idx = tape
            .pool_indices(outs[pool])
            .ok_or_else(|| err("switches: the max_pool kept no switches"))?;
        let cells: Vec<f32> = (0..pooled.numel()).map(|i| i as f32 + 1.0).collect();
        let numbered = be.upload(pooled.shape.clone(), &cells)?;
        let unpooled = be.max_unpool2d(&numbered, idx, &input.shape)?;
        let read = be.read_many(&[input, &unpooled]).await?;
        let (dims, pdims) = (input.dims().to_vec(), pooled.dims().to_vec());
        let (plane, cells0) = (dims[2] * dims[3], pdims[2] * pdims[3]);
        let map = read.first().and_then(|m| m.get(..plane)).unwrap_or_default().to_vec();
        let mut positions = vec![-1.0f32; cells0];
        for (p, &cell) in read
            .get(1)
            .and_then(|u| u.get(..plane))
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if cell >= 1.0 && (cell as usize) <= cells0 {
                positions[cell as usize - 1] = p as f32;
            }
        }
        let mut inst = Instrument::default();
        let (m, s) = (inst.slot(map), inst.slot(positions));
        inst.header = json!({
            "layer": nodes[pool].name,
            "shape": dims[1..].to_vec(),
            "pooled": pdims[1..].to_vec(),
            "input": m,
            "switches": s,
        });
        Ok(inst)
    }

    /// decoder-stages: on validation example `example` (default 0), the bottleneck (the last
    /// layer whose (C,H,W) output has the fewest pixels), then every upsampling layer after
    /// it and the last layer at each resolution after it, each as its channel-mean map.
    async fn probe_decoder_stages(&self, o: &Options<'_>) -> Result<Instrument> {
        let plan = &self.plan().layers;
        let pixels = |i: usize| match plan[i].out.as_slice() {
            &[_, h, w] => Some(h * w),
            _ => None,
        };
        let spatial: Vec<usize> = (0..plan.len()).filter(|&i| pixels(i).is_some()).collect();
        let least = spatial.iter().filter_map(|&i| pixels(i)).min();
        let Some(b) = spatial.iter().rev().copied().find(|&i| pixels(i) == least) else {
            return Err(err("decoder-stages: the model has no (C,H,W) layer outputs"));
        };
        let layers = &self.spec().layers;
        if !(b + 1..layers.len()).any(|i| is_upsampling(&layers[i].op)) {
            return Err(err(format!(
                "decoder-stages: the model has no decoder (no upsampling layer after its bottleneck {:?})",
                self.model().nodes[b].name
            )));
        }
        let mut stages = vec![b];
        let after: Vec<usize> = spatial.iter().copied().filter(|&i| i > b).collect();
        for (at, &i) in after.iter().enumerate() {
            let last_here = after.get(at + 1).is_none_or(|&next| pixels(next) != pixels(i));
            if is_upsampling(&layers[i].op) || last_here {
                stages.push(i);
            }
        }
        let read = self
            .example_outputs("decoder-stages", o.usize("example", 0)?, &stages)
            .await?;
        let mut inst = Instrument::default();
        let mut rows = Vec::new();
        for (&i, (shape, data)) in stages.iter().zip(read) {
            let c = shape.first().copied().unwrap_or(1);
            let map = inst.slot(channel_mean(&data, c));
            rows.push(json!({
                "layer": self.model().nodes[i].name,
                "kind": layers[i].op.kind(),
                "shape": shape,
                "map": map,
            }));
        }
        inst.header = json!({ "stages": rows });
        Ok(inst)
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
    fn percentiles_interpolate_between_ranks() {
        // sorted 1, 2, 3, 4: q·(n−1) = 1.5 → 2.5; 0.15·3 = 0.45 → 1.45; 0.85·3 = 2.55 → 3.55
        let data = [3.0, f32::NAN, 1.0, 4.0, 2.0];
        assert_eq!(percentile(&data, 0.5), 2.5);
        assert!((percentile(&data, 0.15) - 1.45).abs() < 1e-6);
        assert!((percentile(&data, 0.85) - 3.55).abs() < 1e-6);
        assert_eq!((percentile(&data, 0.0), percentile(&data, 1.0)), (1.0, 4.0));
        assert!(percentile(&[], 0.5).is_nan());
    }

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
pub(crate) mod trainer_tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::{Device, ModelSpec, TrainConfig};

    /// A 1000-example MNIST-format asset: digit d is a bright bar at row 3 + 2d over a faint
    /// ramp (landscape_trainer.rs's tests use it too).
    pub(crate) fn bars() -> crate::data::Mnist {
        bars_of(1000)
    }

    /// `count` examples of the bars asset.
    pub(crate) fn bars_of(count: u32) -> crate::data::Mnist {
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
        let mut spec =
            ModelSpec::from_json(&format!(r#"{{"input":[1,28,28],"classes":10,"layers":[{layers}]}}"#)).unwrap();
        let mut data = spec.data_config();
        data.val = 80;
        spec.data = Some(data);
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

    /// Every dropout layer of a pass's output, through the tape: [dropout] on input x.
    fn dropout_output(scaling: &str, test: TestDropout) -> (Vec<f32>, Vec<f32>) {
        let t = trainer(&format!(
            r#"{{"type":"dropout","p":0.75,"scaling":"{scaling}"}},{{"type":"flatten"}},{{"type":"linear","out":10}}"#
        ));
        let batch = t.probe_example("t", 0).unwrap();
        let mut pass = t.probe_pass(Mode::Eval, None, test);
        let (tape, x, outs) = t.probe_forward(&batch, &mut pass).unwrap();
        let read = pollster::block_on(t.backend().read_many(&[tape.value(x), tape.value(outs[0])])).unwrap();
        (read[0].clone(), read[1].clone())
    }

    #[test]
    fn no_rescale_is_the_eval_output_over_one_minus_p() {
        for (scaling, test, factor) in [
            ("inverted", TestDropout::Expected, 1.0),
            ("inverted", TestDropout::NoRescale, 4.0),
            ("classic", TestDropout::Expected, 0.25),
            ("classic", TestDropout::NoRescale, 1.0),
        ] {
            let (x, y) = dropout_output(scaling, test);
            assert!(x.iter().any(|&v| v > 0.0));
            for (xi, yi) in x.iter().zip(&y) {
                assert!(
                    (yi - factor * xi).abs() < 1e-6,
                    "{scaling} {test:?}: {yi} vs {factor}·{xi}"
                );
            }
        }
    }

    #[test]
    fn activation_percentiles_of_a_known_layer() {
        // linear with zero weights and bias 0..9: every example outputs 0..9, so the pooled values
        // are n copies of each digit: p50 sits between the 4s and the 5s, p15 among the 1s, p85 the 8s
        let mut t = trainer(r#"{"type":"flatten"},{"type":"linear","out":10,"name":"fc"}"#);
        t.load_param("fc.weight", &vec![0.0; 7840]).unwrap();
        t.load_param("fc.bias", &(0..10).map(|i| i as f32).collect::<Vec<_>>())
            .unwrap();
        let h = run(&t, "activations", Value::Null).unwrap().header;
        let layers = h["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{h}");
        assert_eq!(
            (layers[0]["name"].as_str(), layers[0]["kind"].as_str()),
            (Some("fc"), Some("linear"))
        );
        let got: Vec<f64> = ["p15", "p50", "p85"]
            .iter()
            .map(|k| layers[0][k].as_f64().unwrap())
            .collect();
        assert_eq!(got, vec![1.0, 4.5, 8.0], "{h}");
        assert_eq!(
            h["examples"].as_u64().unwrap() as usize,
            t.data().val.len().min(PROBE_EXAMPLES)
        );
    }

    const DROPOUT_NET: &str = r#"{"type":"conv2d","out":3,"kernel":3,"padding":1},{"type":"relu"},
        {"type":"dropout","p":0.5,"name":"drop"},{"type":"max_pool","size":4},{"type":"flatten"},{"type":"linear","out":10}"#;

    fn train(t: &mut Trainer, n: usize) {
        pollster::block_on(t.step(n)).unwrap();
    }

    #[test]
    fn test_time_modes_at_p_zero_agree_and_bias_free_no_rescale_keeps_the_argmax() {
        let config = TrainConfig {
            batch: 8,
            lr: 0.1,
            dropout_p: Some(0.0),
            ..Default::default()
        };
        let mut t = trainer_with(DROPOUT_NET, config.clone());
        train(&mut t, 20);
        let h = run(&t, "test-time", json!({"examples": 40})).unwrap().header;
        assert_eq!(h["examples"], 40);
        assert_eq!(h["eval"], h["forgot_eval"], "{h}");
        assert_eq!(h["eval"], h["classic_no_rescale"], "{h}");
        // p = 0.5: the last layer is linear after dropout (through a pool, which commutes with
        // a positive scale); with zero biases ×2 scales the logits and keeps every argmax
        let mut t = trainer_with(
            DROPOUT_NET,
            TrainConfig {
                dropout_p: None,
                ..config
            },
        );
        train(&mut t, 20);
        t.load_param("5.bias", &[0.0; 10]).unwrap();
        let h = run(&t, "test-time", Value::Null).unwrap().header;
        assert_eq!(h["eval"], h["classic_no_rescale"], "{h}");
        for k in ["eval", "forgot_eval", "classic_no_rescale"] {
            assert!((0.0..=1.0).contains(&h[k].as_f64().unwrap()), "{h}");
        }
        // seeded masks: the probe repeats
        assert_eq!(run(&t, "test-time", Value::Null).unwrap().header, h);
        let plain = trainer(r#"{"type":"flatten"},{"type":"linear","out":10}"#);
        let e = run(&plain, "test-time", Value::Null).unwrap_err().to_string();
        assert!(e.contains("test-time") && e.contains("no dropout"), "{e}");
    }

    #[test]
    fn mc_dropout_at_p_zero_is_weight_scaling_and_one_pass_is_the_forgotten_eval() {
        let mut t = trainer_with(
            DROPOUT_NET,
            TrainConfig {
                batch: 8,
                lr: 0.1,
                dropout_p: Some(0.0),
                ..Default::default()
            },
        );
        train(&mut t, 20);
        let m = run(&t, "mc-dropout", json!({"k": 5, "examples": 30})).unwrap();
        let h = &m.header;
        let by_k: Vec<f64> = h["accuracy_by_k"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(by_k.len(), 5);
        assert!(by_k.iter().all(|&a| a == by_k[0]), "{h}");
        assert_eq!(h["mc_accuracy"], h["weight_scaling_accuracy"], "{h}");
        assert_eq!(h["agreement"].as_f64(), Some(1.0));
        assert_eq!(m.array(&h["entropy"]).map(<[f32]>::len), Some(30));
        // p = 0.5 with K = 1 over 64 examples: one masked pass, the same masks (same seed, same
        // order) as test-time's forgotten eval, which on a net without batch norm is the same pass
        t.set_config(TrainConfig {
            dropout_p: None,
            ..t.config().clone()
        })
        .unwrap();
        let one = run(&t, "mc-dropout", json!({"k": 1})).unwrap().header;
        let tt = run(&t, "test-time", Value::Null).unwrap().header;
        assert_eq!(one["mc_accuracy"], tt["forgot_eval"], "{one} {tt}");
        assert_eq!(one["weight_scaling_accuracy"], tt["eval"], "{one} {tt}");
        // K passes chunked (64 examples: 8 passes per forward) give the accuracy of each prefix
        let many = run(&t, "mc-dropout", json!({"k": 20})).unwrap().header;
        assert_eq!(
            many["accuracy_by_k"][0], one["mc_accuracy"],
            "the first pass is the K = 1 pass"
        );
        assert_eq!(many["accuracy_by_k"].as_array().map(Vec::len), Some(20));
        let ent = many["mean_entropy"].as_f64().unwrap();
        assert!(ent > 0.0 && ent <= (10f64).ln() + 1e-6, "{many}");
    }

    #[test]
    fn dropout_mask_shows_the_mask_and_the_expected_means() {
        let mut t = trainer(DROPOUT_NET);
        train(&mut t, 3);
        let m = run(&t, "dropout-mask", json!({"example": 2})).unwrap();
        let h = &m.header;
        assert_eq!(
            (h["layer"].as_str(), h["scaling"].as_str()),
            (Some("drop"), Some("inverted"))
        );
        assert_eq!(h["shape"], json!([3, 28, 28]));
        let (x, mask, y) = (
            m.array(&h["input"]).unwrap(),
            m.array(&h["mask"]).unwrap(),
            m.array(&h["output"]).unwrap(),
        );
        assert_eq!((x.len(), mask.len(), y.len()), (3 * 784, 3 * 784, 3 * 784));
        assert!(mask.iter().all(|&v| v == 0.0 || v == 1.0));
        for ((xi, mi), yi) in x.iter().zip(mask).zip(y) {
            assert!((yi - xi * mi * 2.0).abs() < 1e-5, "inverted: y = x·mask/(1−p)");
        }
        let kept = h["kept_share"].as_f64().unwrap();
        assert!((kept - 0.5).abs() < 0.05, "{kept}");
        assert!((h["mean_eval"].as_f64().unwrap() - h["mean_in"].as_f64().unwrap()).abs() < 1e-6);
        // classic: no scale in training, ×(1−p) at test
        t.set_config(TrainConfig {
            dropout_scaling: Some(DropoutScaling::Classic),
            ..t.config().clone()
        })
        .unwrap();
        let c = run(&t, "dropout-mask", json!({"example": 2})).unwrap();
        let h = &c.header;
        assert_eq!(h["scaling"], "classic");
        assert_eq!(c.array(&h["mask"]), Some(mask), "the same seeded mask");
        for ((xi, mi), yi) in x.iter().zip(mask).zip(c.array(&h["output"]).unwrap()) {
            assert!((yi - xi * mi).abs() < 1e-6);
        }
        assert!((h["mean_eval"].as_f64().unwrap() - 0.5 * h["mean_in"].as_f64().unwrap()).abs() < 1e-6);
        let e = run(&t, "dropout-mask", json!({"example": 100000}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dropout-mask") && e.contains("out of range"), "{e}");
    }

    #[test]
    fn switches_are_the_backends_max_pool_indices() {
        let mut t = trainer(
            r#"{"type":"conv2d","out":2,"kernel":3},{"type":"max_pool","size":2,"name":"pool"},
            {"type":"flatten"},{"type":"linear","out":10}"#,
        );
        train(&mut t, 2);
        let s = run(&t, "switches", json!({"example": 1})).unwrap();
        let h = &s.header;
        assert_eq!(h["layer"], "pool");
        assert_eq!(
            (h["shape"].clone(), h["pooled"].clone()),
            (json!([2, 26, 26]), json!([2, 13, 13]))
        );
        let map = s.array(&h["input"]).unwrap();
        let got = s.array(&h["switches"]).unwrap();
        // the reference: the CPU backend's own max_pool on channel 0
        let cpu = CpuBackend::new();
        let x = crate::backend::Backend::upload(&cpu, crate::tensor::Shape::new(&[1, 1, 26, 26]), map).unwrap();
        let p = crate::backend::PoolParams {
            kernel: 2,
            stride: 2,
            padding: 0,
        };
        let (_, idx) = crate::backend::Backend::max_pool2d(&cpu, &x, p).unwrap();
        let want: Vec<f32> = idx.cpu().unwrap().iter().map(|&i| i as f32).collect();
        assert_eq!(got, want.as_slice());
        // and by hand: each switch is in its window and holds the window's max
        for (cell, &pos) in got.iter().enumerate() {
            let (r, c) = (cell / 13, cell % 13);
            let (pr, pc) = (pos as usize / 26, pos as usize % 26);
            assert!(pr / 2 == r && pc / 2 == c, "cell {cell} switch {pos}");
            let window = [0, 1, 26, 27].map(|d| map[2 * r * 26 + 2 * c + d]);
            assert_eq!(map[pos as usize], window.iter().fold(f32::MIN, |a, &b| a.max(b)));
        }
    }

    #[test]
    fn checkerboard_of_a_transposed_conv_on_a_constant_map() {
        // conv 1×1 with weight 0 and bias 1: a constant map; then a k2 s2 transposed conv
        let mut t = trainer(
            r#"{"type":"conv2d","out":1,"kernel":1,"name":"one"},{"type":"conv_transpose2d","out":1,"kernel":2,"stride":2,"name":"up"},
            {"type":"conv2d","out":1,"kernel":2,"name":"smooth"},{"type":"max_pool","size":5},{"type":"flatten"},{"type":"linear","out":10}"#,
        );
        t.load_param("one.weight", &[0.0]).unwrap();
        t.load_param("one.bias", &[1.0]).unwrap();
        t.load_param("up.bias", &[0.0]).unwrap();
        // ±1 kernel: a pure checkerboard, score 1
        t.load_param("up.weight", &[1.0, -1.0, -1.0, 1.0]).unwrap();
        let c = run(&t, "checkerboard", Value::Null).unwrap();
        let h = &c.header;
        assert_eq!((h["layer"].as_str(), h["stride"].as_u64()), (Some("up"), Some(2)));
        assert_eq!(h["shape"], json!([1, 56, 56]));
        assert!((h["score"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{h}");
        let out = c.array(&h["output"]).unwrap();
        assert_eq!((out.len(), out[0], out[1], out[56]), (56 * 56, 1.0, -1.0, -1.0));
        // averaging 2×2 of a ±1 checkerboard leaves a constant: 0 (the stride is the up layer's)
        t.load_param("smooth.weight", &[0.25; 4]).unwrap();
        let h = run(&t, "checkerboard", json!({"layer": "smooth", "examples": 3}))
            .unwrap()
            .header;
        assert_eq!((h["stride"].as_u64(), h["examples"].as_u64()), (Some(2), Some(3)));
        assert!(h["score"].as_f64().unwrap() < 1e-9, "{h}");
        // a flat kernel: the constant, score 0
        t.load_param("up.weight", &[1.0; 4]).unwrap();
        let h = run(&t, "checkerboard", Value::Null).unwrap().header;
        assert!(h["score"].as_f64().unwrap() < 1e-9, "{h}");
        let e = run(&t, "checkerboard", json!({"layer": "one"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no upsampling layer at or before \"one\""), "{e}");
        let e = run(&t, "checkerboard", json!({"layer": "nope"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no layer named \"nope\"") && e.contains("\"smooth\""), "{e}");
    }

    #[test]
    fn branch_class_and_decoder_maps_match_the_layer_views() {
        let mut t = trainer(
            r#"{"type":"inception","b1":2,"b3_reduce":1,"b3":3,"b5_reduce":1,"b5":1,"pool_proj":2,"name":"inc"},
            {"type":"max_pool","size":2,"name":"p"},{"type":"conv2d","out":10,"kernel":1,"name":"cls"},
            {"type":"global_avg_pool"}"#,
        );
        train(&mut t, 2);
        let b = run(&t, "branch-maps", json!({"example": 3})).unwrap();
        let h = &b.header;
        assert_eq!(h["layer"], "inc");
        assert_eq!(h["shape"], json!([8, 28, 28]));
        let ranges: Vec<(String, u64, u64)> = (h["branches"].as_array().unwrap().iter())
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["start"].as_u64().unwrap(),
                    r["end"].as_u64().unwrap(),
                )
            })
            .collect();
        let want = [("b1", 0, 2), ("b3", 2, 5), ("b5", 5, 6), ("pool_proj", 6, 8)];
        assert_eq!(ranges, want.map(|(n, s, e)| (n.to_string(), s, e)).to_vec());
        let view = pollster::block_on(t.layer_view("inc", 3)).unwrap();
        assert_eq!(b.array(&h["maps"]), Some(view.activation.data.as_slice()));

        let c = run(&t, "class-maps", json!({"example": 3})).unwrap();
        let h = &c.header;
        assert_eq!(
            (h["layer"].as_str(), h["shape"].clone()),
            (Some("cls"), json!([10, 14, 14]))
        );
        assert_eq!(h["classes"].as_array().map(Vec::len), Some(10));
        let maps = c.array(&h["maps"]).unwrap();
        for (k, score) in h["scores"].as_array().unwrap().iter().enumerate() {
            let m = mean(&maps[k * 196..(k + 1) * 196]);
            assert!(
                (score.as_f64().unwrap() as f32 - m).abs() < 1e-5,
                "class {k}: the score is its map's mean"
            );
        }
        let e = run(&t, "decoder-stages", Value::Null).unwrap_err().to_string();
        assert!(e.contains("decoder-stages") && e.contains("no decoder"), "{e}");

        // an encoder-decoder: the bottleneck, the unpool, the last layer at 28×28
        let mut t = trainer(
            r#"{"type":"conv2d","out":2,"kernel":3,"padding":1},{"type":"max_pool","size":2,"name":"p"},
            {"type":"conv2d","out":2,"kernel":3,"padding":1,"name":"mid"},{"type":"max_unpool","pool":"p","name":"unpool"},
            {"type":"conv2d","out":2,"kernel":3,"padding":1,"name":"dec"},{"type":"relu","name":"act"},
            {"type":"max_pool","size":4},{"type":"flatten"},{"type":"linear","out":10}"#,
        );
        let e = run(&t, "class-maps", Value::Null).unwrap_err().to_string();
        assert!(e.contains("class-maps") && e.contains("no global_avg_pool"), "{e}");
        train(&mut t, 2);
        // the max_pool 4 (7×7) is the bottleneck here: no decoder after it
        assert!(run(&t, "decoder-stages", Value::Null).is_err());
        let s = run(&t, "switches", Value::Null).unwrap();
        assert_eq!(s.header["layer"], "p", "the pool the unpool reads");
        let _ = &mut t;
    }

    #[test]
    fn decoder_stages_follow_the_decoder() {
        let t = trainer(
            r#"{"type":"conv2d","out":2,"kernel":3,"padding":1},{"type":"max_pool","size":2,"name":"p"},
            {"type":"conv2d","out":2,"kernel":3,"padding":1,"name":"mid"},{"type":"max_unpool","pool":"p","name":"unpool"},
            {"type":"conv2d","out":2,"kernel":3,"padding":1,"name":"dec"},{"type":"relu","name":"act"},
            {"type":"flatten"},{"type":"linear","out":10}"#,
        );
        let d = run(&t, "decoder-stages", json!({"example": 1})).unwrap();
        let stages = d.header["stages"].as_array().unwrap();
        let names: Vec<&str> = stages.iter().filter_map(|s| s["layer"].as_str()).collect();
        assert_eq!(names, ["mid", "unpool", "act"]);
        assert_eq!(stages[1]["kind"], "max_unpool");
        assert_eq!(stages[1]["shape"], json!([2, 28, 28]));
        for s in stages {
            let name = s["layer"].as_str().unwrap();
            let view = pollster::block_on(t.layer_view(name, 1)).unwrap();
            let c = view.activation.shape[0];
            let want = channel_mean(&view.activation.data, c);
            assert_eq!(d.array(&s["map"]), Some(want.as_slice()), "{name}");
        }
    }

    /// Every probe that applies to `t`, with default options.
    fn all_probes(t: &Trainer) -> usize {
        PROBES
            .iter()
            .filter(|(name, _)| run(t, name, Value::Null).is_ok())
            .count()
    }

    #[test]
    fn probing_changes_nothing_a_twin_that_did_not_probe_can_see() {
        let layers = r#"{"type":"conv2d","out":3,"kernel":3,"padding":1},{"type":"batch_norm"},{"type":"relu"},
            {"type":"dropout","p":0.3},{"type":"max_pool","size":2,"name":"p"},{"type":"conv2d","out":3,"kernel":3,"padding":1},
            {"type":"max_unpool","pool":"p"},{"type":"conv_transpose2d","out":2,"kernel":2,"stride":2},
            {"type":"max_pool","size":8},{"type":"flatten"},{"type":"linear","out":10}"#;
        let config = TrainConfig {
            batch: 8,
            lr: 0.05,
            ..Default::default()
        };
        let mut a = trainer_with(layers, config.clone());
        let mut b = trainer_with(layers, config);
        let mut reports = (Vec::new(), Vec::new());
        for _ in 0..3 {
            reports.0.push(pollster::block_on(a.step(2)).unwrap());
            reports.1.push(pollster::block_on(b.step(2)).unwrap());
            // kernels, landscape, activations, dropout-mask, test-time, mc-dropout,
            // checkerboard, overlap, switches (no inception, GAP or decoder after the bottleneck)
            assert_eq!(all_probes(&a), 9);
        }
        assert_eq!(reports.0, reports.1);
        let ea = pollster::block_on(a.evaluate(0)).unwrap();
        let eb = pollster::block_on(b.evaluate(0)).unwrap();
        assert_eq!(ea, eb);
    }
}
