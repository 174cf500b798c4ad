//! Each chapter's finding, judged from its runs: the numbers the claim names (issue #10) and
//! whether the claim's thresholds hold. Shares and accuracies are fractions in [0, 1]; a
//! value that was not measured (a diverged run) is NaN in the code, null in JSON, and the
//! claim does not hold on it. "Within n points" is one-sided: the cheaper variant may be at
//! most n points (n/100) below the reference.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::experiment::{Finding, RunResult, SweepResult};
use super::Chapter;
use crate::error::{Error, Result};

fn run<'a>(chapter: &Chapter, runs: &'a BTreeMap<String, RunResult>, id: &str) -> Result<&'a RunResult> {
    runs.get(id).ok_or_else(|| Error::Config {
        field: "chapter",
        problem: format!(
            "{:?}: the finding needs a run {id:?}, which the experiment did not train",
            chapter.slug
        ),
    })
}

/// The final value of `key` of probe `name` (final probes first, then the last reading).
fn last(r: &RunResult, name: &str, key: &str) -> f64 {
    (r.latest().probes.get(name))
        .and_then(|h| h.get(key))
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// The first reading (step 0) of `key` of probe `name`.
fn first(r: &RunResult, name: &str, key: &str) -> f64 {
    r.probe_series(name, key)
        .first()
        .map(|&(step, v)| if step == 0 { v } else { f64::NAN })
        .unwrap_or(f64::NAN)
}

fn val(r: &RunResult, metric: &str) -> f64 {
    r.final_eval.get(metric).copied().unwrap_or(f64::NAN)
}

/// The median of the finite values (NaN when there are none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// NaN as JSON null, other numbers as they are.
fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// The chapter's findings from its runs and sweep.
pub fn judge(
    chapter: &Chapter,
    runs: &BTreeMap<String, RunResult>,
    sweep: Option<&SweepResult>,
) -> Result<Vec<Finding>> {
    let get = |id: &str| run(chapter, runs, id);
    let (holds, values) = match chapter.slug.as_str() {
        "l1-l2" => {
            let (l1, l2, none) = (get("l1")?, get("l2")?, get("none")?);
            let v = [
                ("l1_zero_share", last(l1, "kernels", "zero_share")),
                ("l2_zero_share", last(l2, "kernels", "zero_share")),
                ("none_zero_share", last(none, "kernels", "zero_share")),
                ("l1_norm", last(l1, "kernels", "norm")),
                ("l2_norm", last(l2, "kernels", "norm")),
                ("none_norm", last(none, "kernels", "norm")),
                ("l1_val_accuracy", val(l1, "accuracy")),
                ("l2_val_accuracy", val(l2, "accuracy")),
                ("none_val_accuracy", val(none, "accuracy")),
            ];
            let m: BTreeMap<&str, f64> = v.into_iter().collect();
            let holds = m["l1_zero_share"] >= 0.5
                && m["l1_val_accuracy"] >= m["none_val_accuracy"] - 0.02
                && m["l2_zero_share"] == 0.0
                && m["l2_norm"] < m["none_norm"];
            (holds, m.into_iter().map(|(k, x)| (k.to_string(), num(x))).collect())
        }
        "batch-norm" => {
            let (bn, no) = (get("bn")?, get("no-bn")?);
            let med = |r: &RunResult, key: &str| {
                median(
                    &r.probe_series("landscape", key)
                        .iter()
                        .map(|&(_, v)| v)
                        .collect::<Vec<_>>(),
                )
            };
            let mut m: serde_json::Map<String, Value> = [
                ("bn_loss_range", med(bn, "loss_range")),
                ("no_bn_loss_range", med(no, "loss_range")),
                ("bn_grad_change", med(bn, "grad_change")),
                ("no_bn_grad_change", med(no, "grad_change")),
                ("bn_beta", med(bn, "beta")),
                ("no_bn_beta", med(no, "beta")),
                ("bn_val_accuracy", val(bn, "accuracy")),
                ("no_bn_val_accuracy", val(no, "accuracy")),
            ]
            .into_iter()
            .map(|(k, x)| (k.to_string(), num(x)))
            .collect();
            let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
            let holds = f("bn_loss_range") < f("no_bn_loss_range") && f("bn_grad_change") < f("no_bn_grad_change");
            m.insert("probes".into(), json!(bn.probe_series("landscape", "loss_range").len()));
            if let Some(s) = sweep {
                let rows: Vec<Value> = (s.points.iter())
                    .map(|p| {
                        let acc = |id: &str| p.runs.get(id).and_then(|v| v.get("accuracy")).copied().unwrap_or(f64::NAN);
                        let div = |id: &str| p.runs.get(id).and_then(|v| v.get("diverged")).copied() == Some(1.0);
                        json!({ s.field.clone(): p.value, "bn_accuracy": num(acc("bn")), "no_bn_accuracy": num(acc("no-bn")),
                                "bn_diverged": div("bn"), "no_bn_diverged": div("no-bn") })
                    })
                    .collect();
                m.insert("sweep".into(), Value::Array(rows));
            }
            (holds, m)
        }
        "dropout" => {
            let d = get("dropout")?;
            let mc = last(d, "mc-dropout", "mc_accuracy");
            let ws = last(d, "mc-dropout", "weight_scaling_accuracy");
            let train_loss = (d.series.iter().rev())
                .find_map(|p| p.train_loss)
                .map(f64::from)
                .unwrap_or(f64::NAN);
            let m: serde_json::Map<String, Value> = [
                ("mc_accuracy", mc),
                ("weight_scaling_accuracy", ws),
                ("train_loss_with_dropout", train_loss),
                ("val_loss_without", val(d, "loss")),
                ("agreement", last(d, "mc-dropout", "agreement")),
                ("k", last(d, "mc-dropout", "k")),
                ("examples", last(d, "mc-dropout", "examples")),
            ]
            .into_iter()
            .map(|(k, x)| (k.to_string(), num(x)))
            .collect();
            ((mc - ws).abs() <= 0.01, m)
        }
        "network-in-network" => {
            let (reduced, naive) = (get("reduced")?, get("naive")?);
            let c = |k: &str| last(reduced, "inception-counts", k);
            // the naive twin's own block as its plan counts it (built, not derived)
            let naive_block: Option<usize> = crate::chapters::presets::valid(&naive.preset).ok().map(|s| {
                (s.plan().layers.iter())
                    .filter(|l| l.kind == "inception")
                    .map(|l| l.params)
                    .sum()
            });
            let mut m: serde_json::Map<String, Value> = [
                ("params_naive", c("params_naive")),
                ("params_reduced", c("params_reduced")),
                ("flops_naive", c("flops_naive")),
                ("flops_reduced", c("flops_reduced")),
                ("params_ratio", c("params_naive") / c("params_reduced")),
                ("flops_ratio", c("flops_naive") / c("flops_reduced")),
                ("reduced_val_accuracy", val(reduced, "accuracy")),
                ("naive_val_accuracy", val(naive, "accuracy")),
                ("net_params_reduced", reduced.params as f64),
                ("net_params_naive", naive.params as f64),
                ("net_flops_reduced", reduced.flops as f64),
                ("net_flops_naive", naive.flops as f64),
            ]
            .into_iter()
            .map(|(k, x)| (k.to_string(), num(x)))
            .collect();
            m.insert("naive_twin_block_params".into(), json!(naive_block));
            if let Some(nin) = runs.get("nin") {
                m.insert("nin_val_accuracy".into(), num(val(nin, "accuracy")));
                m.insert("nin_params".into(), json!(nin.params));
            }
            let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
            let holds = f("params_ratio") >= 2.0
                && f("flops_ratio") >= 2.0
                && f("reduced_val_accuracy") >= f("naive_val_accuracy") - 0.01;
            (holds, m)
        }
        "deconvolution" => {
            let (t, k4, r) = (get("transposed")?, get("transposed-k4")?, get("resize")?);
            let m: BTreeMap<&str, f64> = [
                ("score_transposed_init", first(t, "checkerboard", "score")),
                ("score_resize_init", first(r, "checkerboard", "score")),
                ("score_transposed_final", last(t, "checkerboard", "score")),
                ("score_resize_final", last(r, "checkerboard", "score")),
                ("score_transposed_k4_init", first(k4, "checkerboard", "score")),
                ("score_transposed_k4_final", last(k4, "checkerboard", "score")),
                ("transposed_mean_iou", val(t, "mean_iou")),
                ("transposed_k4_mean_iou", val(k4, "mean_iou")),
                ("resize_mean_iou", val(r, "mean_iou")),
            ]
            .into_iter()
            .collect();
            let holds = m["score_transposed_init"] > m["score_resize_init"]
                && m["score_transposed_final"] > m["score_resize_final"];
            (holds, m.into_iter().map(|(k, x)| (k.to_string(), num(x))).collect())
        }
        "up-pooling" => {
            let (u, n, t) = (get("unpool")?, get("nearest")?, get("transposed")?);
            let m: BTreeMap<&str, f64> = [
                ("unpool_mean_iou", val(u, "mean_iou")),
                ("nearest_mean_iou", val(n, "mean_iou")),
                ("transposed_mean_iou", val(t, "mean_iou")),
                ("unpool_pixel_accuracy", val(u, "pixel_accuracy")),
                ("nearest_pixel_accuracy", val(n, "pixel_accuracy")),
                ("transposed_pixel_accuracy", val(t, "pixel_accuracy")),
            ]
            .into_iter()
            .collect();
            let holds =
                m["unpool_mean_iou"] >= m["nearest_mean_iou"] && m["unpool_mean_iou"] >= m["transposed_mean_iou"];
            (holds, m.into_iter().map(|(k, x)| (k.to_string(), num(x))).collect())
        }
        other => {
            return Err(Error::Config {
                field: "chapter",
                problem: format!("{other:?} has no finding code in chapters/findings.rs"),
            })
        }
    };
    Ok(vec![Finding {
        claim: chapter.finding.claim.clone(),
        source: chapter.finding.source.clone(),
        holds,
        values: Value::Object(values),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::chapters::experiment::Point;
    use crate::chapters::get;

    /// A run whose series reads `probe` headers at steps 0, 50, 100 and ends with `val`.
    fn run_with(probe: &str, headers: [Value; 3], val: &[(&str, f64)]) -> RunResult {
        let val: BTreeMap<String, f64> = val.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        let series = (headers.into_iter().enumerate())
            .map(|(i, h)| Point {
                step: 50 * i as u64,
                train_loss: (i > 0).then_some(0.5),
                penalty: None,
                train_accuracy: None,
                val: val.clone(),
                probes: [(probe.to_string(), h)].into(),
            })
            .collect();
        RunResult {
            label: "x".into(),
            preset: "mnist-small".into(),
            config: Default::default(),
            params: 0,
            flops: 0,
            steps: 100,
            diverged_at: None,
            seconds: 0.0,
            backend: "cpu".into(),
            series,
            final_eval: val,
            final_probes: BTreeMap::new(),
        }
    }

    fn kernels(zero: f64, norm: f64, acc: f64) -> RunResult {
        let h = json!({"zero_share": zero, "norm": norm});
        run_with(
            "kernels",
            [json!({"zero_share": 0.0, "norm": 9.0}), json!({}), h],
            &[("accuracy", acc)],
        )
    }

    #[test]
    fn l1_l2_holds_at_the_thresholds_and_not_past_them() {
        let c = get("l1-l2").unwrap();
        let judge_with = |l1: RunResult| {
            let runs: BTreeMap<String, RunResult> = [
                ("l1".to_string(), l1),
                ("l2".to_string(), kernels(0.0, 2.0, 0.97)),
                ("none".to_string(), kernels(0.0, 3.0, 0.975)),
            ]
            .into();
            judge(&c, &runs, None).unwrap().remove(0)
        };
        // the final readings count, not step 0's
        let f = judge_with(kernels(0.5, 1.0, 0.955));
        assert!(f.holds, "{}", f.values);
        assert_eq!(f.values["l1_zero_share"], 0.5);
        assert_eq!(f.values["l2_norm"], 2.0);
        assert_eq!(f.values["none_val_accuracy"], 0.975);
        assert!(!judge_with(kernels(0.49, 1.0, 0.97)).holds, "under half zero");
        assert!(!judge_with(kernels(0.9, 1.0, 0.95)).holds, "2.5 points below");
        // a run that never measured its kernels: null, and the claim does not hold
        let mut blank = kernels(0.9, 1.0, 0.97);
        blank.series.iter_mut().for_each(|p| p.probes.clear());
        let f = judge_with(blank);
        assert!(!f.holds && f.values["l1_zero_share"].is_null());
    }

    #[test]
    fn deconvolution_compares_step_0_and_the_last_reading() {
        let c = get("deconvolution").unwrap();
        let scores = |a: f64, b: f64| {
            run_with(
                "checkerboard",
                [json!({"score": a}), json!({"score": 0.5}), json!({"score": b})],
                &[("mean_iou", 0.3)],
            )
        };
        let runs = |t: RunResult| -> BTreeMap<String, RunResult> {
            [
                ("transposed".to_string(), t),
                ("transposed-k4".to_string(), scores(0.6, 0.2)),
                ("resize".to_string(), scores(0.1, 0.05)),
            ]
            .into()
        };
        let f = judge(&c, &runs(scores(0.9, 0.3)), None).unwrap().remove(0);
        assert!(f.holds);
        assert_eq!(f.values["score_transposed_init"], 0.9);
        assert_eq!(f.values["score_transposed_final"], 0.3);
        assert_eq!(f.values["score_resize_final"], 0.05);
        assert!(!judge(&c, &runs(scores(0.9, 0.04)), None).unwrap()[0].holds);
        let e = judge(&c, &BTreeMap::new(), None).unwrap_err().to_string();
        assert!(e.contains("needs a run \"transposed\""), "{e}");
    }

    #[test]
    fn median_of_finite_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0, f64::INFINITY]), 5.0);
        assert!(median(&[]).is_nan());
    }
}
