//! The probe headers the experiments record, by the probe names of docs/chapters.md. The
//! contract's one entry point is `Trainer::instrument(name, options)` (probe/instruments.rs,
//! helper "probes"); until it is in this branch, this file builds the headers the chapters'
//! findings read from the probes that exist (`weight_stats`, `Trainer::landscape`,
//! `McDropout`, `inception_counts`, `checkerboard_score`), with the same names and units.
//! Probes the findings do not read are refused naming the ones that are here.
//!
//! Every probe runs on the fixed probe batch: the first `examples` validation examples
//! (default 64), never changing the trainer.

use serde_json::{json, Map, Value};

use crate::autograd::Tape;
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::nn::regularize::{group, Group};
use crate::nn::{Mode, Pass};
use crate::probe::{checkerboard_score, inception_counts, weight_stats, McDropout};
use crate::tasks::data::{stack, Example};
use crate::tensor::Tensor;
use crate::trainer::Trainer;

/// The probes this file can read.
pub const MEASURED: [&str; 5] = ["kernels", "landscape", "mc-dropout", "inception-counts", "checkerboard"];

/// Default size of the probe batch.
const PROBE_EXAMPLES: usize = 64;
/// Default step sizes of the landscape probe (Santurkar et al. move up to a few learning rates).
const DEFAULT_ETAS: [f32; 5] = [0.025, 0.05, 0.1, 0.2, 0.4];
/// Seed of the MC-dropout masks: the same K passes every time the probe runs.
const MC_SEED: u64 = 0x6d63_d70f;
/// Examples per forward pass of the MC-dropout passes.
const CHUNK: usize = 100;

fn option_err(probe: &str, problem: String) -> Error {
    Error::Config {
        field: "probe",
        problem: format!("{probe}: {problem}"),
    }
}

/// The options object of `probe`, refusing names outside `known`.
fn options<'a>(probe: &str, options: &'a Value, known: &[&str]) -> Result<&'a Map<String, Value>> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let map = match options {
        Value::Null => EMPTY.get_or_init(Map::new),
        Value::Object(m) => m,
        other => return Err(option_err(probe, format!("options must be a JSON object, got {other}"))),
    };
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            return Err(option_err(
                probe,
                format!("unknown option {key:?}; its options are {known:?}"),
            ));
        }
    }
    Ok(map)
}

fn usize_option(probe: &str, map: &Map<String, Value>, key: &str, default: usize) -> Result<usize> {
    match map.get(key) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(n as usize),
            _ => Err(option_err(
                probe,
                format!("{key} must be a whole number above 0, got {v}"),
            )),
        },
    }
}

/// The first `n` validation examples (fewer when the split is smaller).
fn probe_batch(trainer: &Trainer, n: usize) -> Vec<&Example> {
    trainer.data().val.iter().take(n).collect()
}

/// The header of probe `name` on `trainer`'s current parameters.
pub async fn probe(trainer: &Trainer, name: &str, opts: &Value) -> Result<Value> {
    match name {
        "kernels" => {
            options(name, opts, &[])?;
            kernels(trainer).await
        }
        "landscape" => {
            let map = options(name, opts, &["etas", "examples"])?;
            let etas: Vec<f32> = match map.get("etas") {
                None => DEFAULT_ETAS.to_vec(),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|e| option_err(name, format!("etas must be a list of numbers ({e})")))?,
            };
            let n = usize_option(name, map, "examples", PROBE_EXAMPLES)?;
            let l = trainer.landscape(&probe_batch(trainer, n), &etas).await?;
            Ok(json!({
                "loss_range": l.loss_range, "grad_change": l.gradient_change, "beta": l.beta_smoothness,
                "etas": l.etas, "losses": l.losses, "grad_norm": l.grad_norm,
            }))
        }
        "mc-dropout" => {
            let map = options(name, opts, &["k", "examples"])?;
            let k = usize_option(name, map, "k", 50)?;
            let n = usize_option(name, map, "examples", PROBE_EXAMPLES)?;
            mc_dropout(trainer, k, n).await
        }
        "inception-counts" => {
            options(name, opts, &[])?;
            let blocks = inception_counts(trainer.spec(), trainer.plan())?;
            let sum = |f: &dyn Fn(&crate::probe::InceptionCounts) -> usize| blocks.iter().map(f).sum::<usize>();
            Ok(json!({
                "params_naive": sum(&|b| b.naive.params), "params_reduced": sum(&|b| b.reduced.params),
                "flops_naive": sum(&|b| b.naive.flops), "flops_reduced": sum(&|b| b.reduced.flops),
                "blocks": blocks,
            }))
        }
        "checkerboard" => {
            let map = options(name, opts, &["layer", "examples"])?;
            let layer = match map.get("layer") {
                None => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(v) => return Err(option_err(name, format!("layer must be a layer name, got {v}"))),
            };
            let n = usize_option(name, map, "examples", 8)?;
            checkerboard(trainer, layer, n).await
        }
        other => Err(Error::Config {
            field: "probe",
            problem: format!(
                "{other:?} is not measured natively yet (it comes with Trainer::instrument); the CLI measures {MEASURED:?}"
            ),
        }),
    }
}

/// Exact and near zeros and the L2 norm of every conv kernel (transposed ones included).
async fn kernels(trainer: &Trainer) -> Result<Value> {
    let params = &trainer.params().params;
    let refs: Vec<&Tensor> = (params.iter())
        .filter(|p| group(p.kind) == Group::ConvWeight)
        .map(|p| &p.value)
        .collect();
    let all: Vec<f32> = trainer.backend().read_many(&refs).await?.concat();
    let s = weight_stats(&all);
    Ok(json!({
        "zero_share": s.zero_share(), "near_zero_share": s.near_zero_share(), "norm": s.l2_norm, "count": s.count,
    }))
}

fn softmax_rows(logits: &[f32], c: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(c.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|&z| f64::from(z - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| (e / sum) as f32));
    }
    out
}

/// Monte-Carlo dropout: K passes with dropout on (seeded masks) over the first `n`
/// validation examples against the eval-mode (weight-scaling) prediction; classify only.
async fn mc_dropout(trainer: &Trainer, k: usize, n: usize) -> Result<Value> {
    let examples = probe_batch(trainer, n);
    let be = trainer.backend();
    let config = trainer.config();
    let mut rng = Rng::new(MC_SEED);
    let mut kept: Vec<Tensor> = Vec::new();
    // pass 0 in eval mode (weight scaling), then K stochastic passes, each over every chunk
    for pass in 0..=k {
        for chunk in examples.chunks(CHUNK) {
            let x = be.upload(trainer.input_shape(chunk.len()), &stack(chunk))?;
            let mut tape = Tape::new(be, trainer.params());
            let xv = tape.input(x);
            let mut p = if pass == 0 {
                Pass::eval()
            } else {
                Pass {
                    mode: Mode::Train,
                    rng: Some(&mut rng),
                    dropout_p: config.dropout_p,
                    dropout_scaling: config.dropout_scaling,
                }
            };
            let z = trainer.model().forward(&mut tape, xv, &mut p)?.output();
            kept.extend(tape.into_values(&[z])?);
            be.flush()?;
        }
    }
    let refs: Vec<&Tensor> = kept.iter().collect();
    let read = be.read_many(&refs).await?;
    let per_pass: Vec<f32> = read.concat();
    let count = examples.len();
    let c = if count == 0 {
        0
    } else {
        per_pass.len() / ((k + 1) * count)
    };
    if c == 0 || per_pass.len() != (k + 1) * count * c {
        return Err(crate::error::shape_err(
            "mc-dropout",
            "the passes did not come back as (K+1, N, C)",
            &[&[k + 1, count], &[per_pass.len()]],
        ));
    }
    let (scaled, passes) = per_pass.split_at(count * c);
    let scaled = softmax_rows(scaled, c);
    let passes = softmax_rows(passes, c);
    let labels: Vec<usize> = examples.iter().map(|e| e.label as usize).collect();
    let mc = McDropout::new(&passes, [k, count, c], &labels, &scaled)?;
    let argmax = |row: &[f32]| (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best });
    let right = (scaled.chunks(c).zip(&labels))
        .filter(|(row, &y)| argmax(row) == y)
        .count();
    let mean_entropy = mc.entropy.iter().map(|&h| f64::from(h)).sum::<f64>() / count as f64;
    Ok(json!({
        "accuracy_by_k": mc.accuracy, "mc_accuracy": mc.accuracy.last().copied().unwrap_or(f32::NAN),
        "weight_scaling_accuracy": right as f64 / count as f64, "agreement": mc.agreement,
        "mean_entropy": mean_entropy, "k": k, "examples": count,
    }))
}

/// The checkerboard score (stride 2) of a layer's output over the first `n` validation
/// examples in eval mode: the mean over examples of the mean over channels. The default
/// layer is the last upsampling layer (transposed conv, upsample, max-unpool).
async fn checkerboard(trainer: &Trainer, layer: Option<&str>, n: usize) -> Result<Value> {
    let nodes = &trainer.model().nodes;
    let kinds: Vec<&str> = trainer.spec().layers.iter().map(|l| l.op.kind()).collect();
    let index = match layer {
        Some(name) => nodes.iter().position(|node| node.name == name),
        None => (0..nodes.len())
            .rev()
            .find(|&i| matches!(kinds[i], "conv_transpose2d" | "upsample" | "max_unpool")),
    };
    let Some(index) = index else {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(option_err(
            "checkerboard",
            format!("no layer {layer:?} (or no upsampling layer); the model has {names:?}"),
        ));
    };
    let examples = probe_batch(trainer, n);
    let be = trainer.backend();
    let x = be.upload(trainer.input_shape(examples.len()), &stack(&examples))?;
    let mut tape = Tape::new(be, trainer.params());
    let xv = tape.input(x);
    let outs = trainer.model().forward(&mut tape, xv, &mut Pass::eval())?.outputs;
    let out = tape.into_values(&outs[index..=index])?;
    let dims = out.first().map(|t| t.dims().to_vec()).unwrap_or_default();
    let data = be.read_many(&out.iter().collect::<Vec<_>>()).await?.concat();
    let [_, c, h, w] = dims[..] else {
        return Err(crate::error::shape_err(
            "checkerboard",
            format!("layer {} has no (N,C,H,W) output", nodes[index].name),
            &[&dims],
        ));
    };
    let per = c * h * w;
    let mut sum = 0.0f64;
    for e in 0..examples.len() {
        let map = data.get(e * per..(e + 1) * per).unwrap_or_default();
        sum += f64::from(checkerboard_score(map, &[c, h, w], 2)?);
    }
    Ok(json!({
        "score": sum / examples.len().max(1) as f64, "stride": 2, "layer": nodes[index].name, "shape": [c, h, w],
    }))
}
