//! A chapter's experiment: each run trained from the same seed, its probes read at step 0
//! and every `probe_every` steps on the fixed probe batch, an evaluation at each of those
//! points, the final probes after the last step, the sweep (if any) over the twins; then
//! the chapter's finding judged (findings.rs) and its answer filled (template.rs).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::findings::judge;
use super::measure::probe;
use super::template::{fill, TwinValues};
use super::Chapter;
use crate::backend::BackendChoice;
use crate::data::Mnist;
use crate::error::Result;
use crate::probe::Evaluation;
use crate::spec::{DataSource, TrainConfig};
use crate::trainer::Trainer;

pub struct ExperimentOptions {
    /// The smaller version (`quick_steps`, `quick_eval_examples`, `quick_final_probes`).
    pub quick: bool,
    pub seed: u64,
    pub backend: BackendChoice,
    /// The MNIST asset's bytes (parsed for each run that needs the digits).
    pub mnist: Option<Vec<u8>>,
}

/// One reading: after `step` steps.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub step: u64,
    /// Means over the steps since the previous point, as the Report gives them (train mode:
    /// with dropout masks); absent at step 0.
    pub train_loss: Option<f32>,
    pub penalty: Option<f32>,
    pub train_accuracy: Option<f32>,
    /// The evaluation (eval mode) on `eval_examples` validation examples: `accuracy`, `loss`
    /// and the task's metrics.
    pub val: BTreeMap<String, f64>,
    /// Each probe's header.
    pub probes: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub label: String,
    pub preset: String,
    pub config: TrainConfig,
    pub params: usize,
    pub flops: usize,
    pub steps: u64,
    pub diverged_at: Option<u64>,
    pub seconds: f64,
    pub backend: String,
    pub series: Vec<Point>,
    /// The last evaluation.
    #[serde(rename = "final")]
    pub final_eval: BTreeMap<String, f64>,
    /// The final probes' headers (read once, after the last step).
    pub final_probes: BTreeMap<String, Value>,
}

impl RunResult {
    /// The latest header of each probe (the final probes included) and the last evaluation.
    pub fn latest(&self) -> TwinValues {
        let mut probes = BTreeMap::new();
        for point in &self.series {
            probes.extend(point.probes.clone());
        }
        probes.extend(self.final_probes.clone());
        TwinValues {
            label: self.label.clone(),
            probes,
            val: self.final_eval.clone(),
        }
    }

    /// `key` of probe `name` at every point where it was read: (step, value).
    pub fn probe_series(&self, name: &str, key: &str) -> Vec<(u64, f64)> {
        (self.series.iter())
            .filter_map(|p| Some((p.step, p.probes.get(name)?.get(key)?.as_f64()?)))
            .collect()
    }

    /// Validation `metric` at every point: (step, value).
    pub fn val_series(&self, metric: &str) -> Vec<(u64, f64)> {
        (self.series.iter())
            .filter_map(|p| Some((p.step, *p.val.get(metric)?)))
            .collect()
    }
}

/// One value of the sweep: each twin's final evaluation at that value.
#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    pub value: Value,
    /// By run id: the final evaluation, with `diverged` (1 or 0).
    pub runs: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub claim: String,
    pub source: String,
    pub holds: bool,
    /// The numbers the claim is judged on (shares and accuracies in [0, 1]).
    pub values: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExperimentResult {
    pub chapter: String,
    pub quick: bool,
    pub seed: u64,
    pub findings: Vec<Finding>,
    /// The live answer filled from the twins' final values.
    pub answer: String,
    pub runs: BTreeMap<String, RunResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepResult>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
    pub field: String,
    pub steps: u64,
    pub points: Vec<SweepPoint>,
}

/// The evaluation as the template reads it: `accuracy`, `loss`, then the task's metrics.
fn eval_values(e: &Evaluation) -> BTreeMap<String, f64> {
    let mut v: BTreeMap<String, f64> = e.metrics.iter().map(|(k, &m)| (k.clone(), f64::from(m))).collect();
    v.insert("accuracy".into(), f64::from(e.val_accuracy));
    v.insert("loss".into(), f64::from(e.val_loss));
    v
}

async fn trainer_for(
    chapter: &Chapter,
    run: &super::RunSpec,
    config: TrainConfig,
    opts: &ExperimentOptions,
) -> Result<Trainer> {
    let spec = chapter.spec(run)?;
    let mnist = match spec.spec().data_config().source {
        DataSource::Shapes => None,
        DataSource::Mnist | DataSource::Clutter => match &opts.mnist {
            Some(bytes) => Some(Mnist::parse(bytes)?),
            None => {
                return Err(crate::error::Error::Data(format!(
                    "chapter {:?}, run {:?}: the {} preset trains on MNIST digits; pass the asset (--data)",
                    chapter.slug, run.id, run.preset
                )))
            }
        },
    };
    Trainer::create_valid(spec, config, mnist).await
}

/// Runs a chapter's experiment; `progress` is told what happens (one line each).
pub async fn run_experiment(
    chapter: &Chapter,
    opts: &ExperimentOptions,
    mut progress: impl FnMut(&str),
) -> Result<ExperimentResult> {
    let e = &chapter.experiment;
    let (steps, eval_n) = if opts.quick {
        (e.quick_steps, e.quick_eval_examples)
    } else {
        (e.steps, e.eval_examples)
    };
    let base = TrainConfig {
        seed: opts.seed,
        backend: opts.backend,
        ..TrainConfig::default()
    };
    let mut runs = BTreeMap::new();
    for run in &chapter.runs {
        let config = chapter.config(run, &base)?;
        let mut trainer = trainer_for(chapter, run, config.clone(), opts).await?;
        progress(&format!(
            "run {} ({}, preset {}): {steps} steps on {}",
            run.id,
            run.label,
            run.preset,
            trainer.backend_name()
        ));
        let start = instant::now();
        let mut series = vec![read_point(&trainer, chapter, run, 0, None, eval_n).await?];
        let mut diverged_at = None;
        while trainer.steps_done() < steps {
            let n = chapter.probe_every.min(steps - trainer.steps_done());
            let r = trainer.step(n as usize).await?;
            if let Some(at) = r.diverged_at {
                diverged_at = Some(at);
                progress(&format!("  diverged at step {at} (loss not finite)"));
                break;
            }
            let point = read_point(&trainer, chapter, run, r.step, Some(&r), eval_n).await?;
            progress(&format!(
                "  step {:>5}  train loss {:.4}  val {}",
                r.step,
                r.loss,
                short(&point.val)
            ));
            series.push(point);
        }
        let mut final_probes = BTreeMap::new();
        if diverged_at.is_none() {
            for (name, options) in chapter.final_probes(opts.quick).iter().filter(|(n, _)| run.reads(n)) {
                final_probes.insert(name.clone(), probe(&trainer, name, options).await?);
            }
        }
        let final_eval = series.last().map(|p| p.val.clone()).unwrap_or_default();
        runs.insert(
            run.id.clone(),
            RunResult {
                label: run.label.clone(),
                preset: run.preset.clone(),
                config,
                params: trainer.plan().params,
                flops: trainer.plan().flops,
                steps: trainer.steps_done(),
                diverged_at,
                seconds: instant::since(start),
                backend: trainer.backend_name().to_string(),
                series,
                final_eval,
                final_probes,
            },
        );
    }
    let sweep = match &e.sweep {
        None => None,
        Some(sweep) => {
            let mut points = Vec::new();
            for value in &sweep.values {
                let mut at = BTreeMap::new();
                for id in &chapter.twins {
                    let run = chapter.run(id)?;
                    let patch = serde_json::json!({ sweep.field.clone(): value }).to_string();
                    let config = chapter.config(run, &base)?.merged_with_json(&patch)?;
                    let trained = (runs.get(id))
                        .filter(|r: &&RunResult| r.config == config && r.steps == steps && r.diverged_at.is_none());
                    let v = match trained {
                        // the run above trained this very configuration (same seed, same
                        // steps, same evaluation): its numbers are the ones a rerun would give
                        Some(done) => {
                            let mut v = done.final_eval.clone();
                            v.insert("diverged".into(), 0.0);
                            v
                        }
                        None => {
                            let mut trainer = trainer_for(chapter, run, config, opts).await?;
                            let r = trainer.step(steps as usize).await?;
                            let mut v = eval_values(&trainer.evaluate(eval_n).await?);
                            v.insert("diverged".into(), if r.diverged_at.is_some() { 1.0 } else { 0.0 });
                            v
                        }
                    };
                    progress(&format!("sweep {}={value} {id}: val {}", sweep.field, short(&v)));
                    at.insert(id.clone(), v);
                }
                points.push(SweepPoint {
                    value: value.clone(),
                    runs: at,
                });
            }
            Some(SweepResult {
                field: sweep.field.clone(),
                steps,
                points,
            })
        }
    };
    let findings = judge(chapter, &runs, sweep.as_ref())?;
    let twin = |i: usize| runs.get(&chapter.twins[i]).map(RunResult::latest).unwrap_or_default();
    let answer = fill(&chapter.answer, &twin(0), &twin(1))?;
    Ok(ExperimentResult {
        chapter: chapter.slug.clone(),
        quick: opts.quick,
        seed: opts.seed,
        findings,
        answer,
        runs,
        sweep,
    })
}

/// "accuracy 0.9712, loss 0.0921": an evaluation for one progress line.
fn short(v: &BTreeMap<String, f64>) -> String {
    let parts: Vec<String> = (v.iter())
        .filter(|(k, _)| matches!(k.as_str(), "accuracy" | "loss" | "mean_iou"))
        .map(|(k, x)| format!("{k} {x:.4}"))
        .collect();
    parts.join(", ")
}

async fn read_point(
    trainer: &Trainer,
    chapter: &Chapter,
    run: &super::RunSpec,
    step: u64,
    report: Option<&crate::trainer::Report>,
    eval_n: usize,
) -> Result<Point> {
    let mut probes = BTreeMap::new();
    for (name, options) in chapter.experiment.probes.iter().filter(|(n, _)| run.reads(n)) {
        probes.insert(name.clone(), probe(trainer, name, options).await?);
    }
    Ok(Point {
        step,
        train_loss: report.map(|r| r.loss),
        penalty: report.map(|r| r.penalty),
        train_accuracy: report.map(|r| r.accuracy),
        val: eval_values(&trainer.evaluate(eval_n).await?),
        probes,
    })
}

/// Wall-clock seconds where there is a clock (natively; 0 in wasm, where the page times runs).
mod instant {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn now() -> Option<std::time::Instant> {
        Some(std::time::Instant::now())
    }
    #[cfg(target_arch = "wasm32")]
    pub fn now() -> Option<()> {
        None
    }
    #[cfg(not(target_arch = "wasm32"))]
    pub fn since(start: Option<std::time::Instant>) -> f64 {
        start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0)
    }
    #[cfg(target_arch = "wasm32")]
    pub fn since(_: Option<()>) -> f64 {
        0.0
    }
}
