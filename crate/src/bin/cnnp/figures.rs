//! The figures of `cnnp experiment`: SVG drawings (plotters' SVG backend) of what the page's
//! instruments show, from the experiment's result — each with a title, labelled axes with
//! units and a legend naming the runs.

use std::path::{Path, PathBuf};

use cnn_playground::chapters::{Chapter, ExperimentResult, RunResult};
use cnn_playground::{Error, Result};
use plotters::prelude::*;

/// One curve: a legend label and its (x, y) points.
type Series = (String, Vec<(f64, f64)>);

struct Figure<'a> {
    file: &'a str,
    title: String,
    x: &'a str,
    y: &'a str,
    series: Vec<Series>,
    /// Axis ticks show 10^x (the points' x are log10 of the values).
    log_x: bool,
}

fn draw_err(file: &str, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: file.to_string(),
        message: format!("drawing the figure failed: {e}"),
    }
}

/// Draws `fig` into `dir/fig.file`; returns its path. Figures with no points are skipped.
fn draw(dir: &Path, fig: &Figure) -> Result<Option<PathBuf>> {
    let points: Vec<(f64, f64)> = (fig.series.iter())
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if points.is_empty() {
        return Ok(None);
    }
    let (mut x0, mut x1, mut y0, mut y1) = points.iter().fold(
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if x1 - x0 < 1e-12 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    let pad = ((y1 - y0) * 0.08).max(1e-6);
    (y0, y1) = (y0 - pad, y1 + pad);
    let path = dir.join(fig.file);
    let err = |e: &dyn std::fmt::Display| draw_err(&path.display().to_string(), e);
    {
        let root = SVGBackend::new(&path, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&fig.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        // 10^x with three significant digits: 0.0251, 0.100, 0.398
        let log_fmt = |x: &f64| {
            let v = 10f64.powf(*x);
            let decimals = (2.0 - v.log10().floor()).max(0.0) as usize;
            format!("{v:.decimals$}")
        };
        let lin_fmt = |x: &f64| format!("{x}");
        chart
            .configure_mesh()
            .x_labels(if fig.log_x { 6 } else { 10 })
            .x_desc(fig.x)
            .y_desc(fig.y)
            .x_label_formatter(if fig.log_x { &log_fmt } else { &lin_fmt })
            .draw()
            .map_err(|e| err(&e))?;
        for (i, (label, pts)) in fig.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> = pts
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(Some(path))
}

fn steps(pts: Vec<(u64, f64)>) -> Vec<(f64, f64)> {
    pts.into_iter().map(|(s, v)| (s as f64, v)).collect()
}

/// One series per run of `chapter`, in the chapter's order.
fn per_run(chapter: &Chapter, result: &ExperimentResult, f: impl Fn(&RunResult) -> Vec<(f64, f64)>) -> Vec<Series> {
    (chapter.runs.iter())
        .filter_map(|r| result.runs.get(&r.id))
        .map(|r| (r.label.clone(), f(r)))
        .collect()
}

/// Draws the chapter's figures into `dir`; returns their paths.
pub fn write(dir: &Path, chapter: &Chapter, result: &ExperimentResult) -> Result<Vec<PathBuf>> {
    let segment = result.runs.values().any(|r| r.final_eval.contains_key("mean_iou"));
    let (metric, metric_desc) = if segment {
        ("mean_iou", "validation mean IoU (0–1)")
    } else {
        ("accuracy", "validation accuracy (share, 0–1)")
    };
    let title = &chapter.title;
    let mut figs = vec![
        Figure {
            file: "val-metrics.svg",
            title: format!("{title}: validation {metric} over training (eval mode)"),
            x: "training step",
            y: metric_desc,
            series: per_run(chapter, result, |r| steps(r.val_series(metric))),
            log_x: false,
        },
        Figure {
            file: "loss.svg",
            title: format!("{title}: training loss (mean over each {} steps)", chapter.probe_every),
            x: "training step",
            y: "training data loss (cross-entropy, nats)",
            series: per_run(chapter, result, |r| {
                (r.series.iter())
                    .filter_map(|p| Some((p.step as f64, f64::from(p.train_loss?))))
                    .collect()
            }),
            log_x: false,
        },
    ];
    let probe = |name: &'static str, key: &'static str| move |r: &RunResult| steps(r.probe_series(name, key));
    match chapter.slug.as_str() {
        "l1-l2" => {
            figs.push(Figure {
                file: "zero-share.svg",
                title: "Conv-kernel weights that are exactly 0".into(),
                x: "training step",
                y: "share of conv-kernel weights = 0 (0–1)",
                series: per_run(chapter, result, probe("kernels", "zero_share")),
                log_x: false,
            });
            figs.push(Figure {
                file: "kernel-norm.svg",
                title: "L2 norm of all conv kernels".into(),
                x: "training step",
                y: "‖w‖₂ of the conv kernels",
                series: per_run(chapter, result, probe("kernels", "norm")),
                log_x: false,
            });
        }
        "batch-norm" => {
            figs.push(Figure {
                file: "landscape-loss-range.svg",
                title: "Loss landscape: loss range along the gradient (Santurkar et al. Fig. 4a)".into(),
                x: "training step",
                y: "max − min of L(θ − η·g) over η (nats)",
                series: per_run(chapter, result, probe("landscape", "loss_range")),
                log_x: false,
            });
            figs.push(Figure {
                file: "landscape-grad-change.svg",
                title: "Gradient predictiveness: gradient change along the gradient (Fig. 4b)".into(),
                x: "training step",
                y: "max over η of ‖∇L(θ − η·g) − g‖₂",
                series: per_run(chapter, result, probe("landscape", "grad_change")),
                log_x: false,
            });
            figs.push(Figure {
                file: "landscape-beta.svg",
                title: "Effective β-smoothness (Fig. 4c)".into(),
                x: "training step",
                y: "max over η of ‖Δ∇L‖₂ / ‖η·g‖₂",
                series: per_run(chapter, result, probe("landscape", "beta")),
                log_x: false,
            });
            if let Some(sweep) = &result.sweep {
                let series = (chapter.twins.iter())
                    .filter_map(|id| {
                        let label = result.runs.get(id)?.label.clone();
                        let pts = (sweep.points.iter())
                            .filter_map(|p| Some((p.value.as_f64()?.log10(), *p.runs.get(id)?.get("accuracy")?)))
                            .collect();
                        Some((label, pts))
                    })
                    .collect();
                figs.push(Figure {
                    file: "lr-sweep.svg",
                    title: format!(
                        "Final validation accuracy after {} steps by {}",
                        sweep.steps, sweep.field
                    ),
                    x: "learning rate (log scale)",
                    y: "validation accuracy (share, 0–1)",
                    series,
                    log_x: true,
                });
            }
        }
        "dropout" => {
            let mut series = Vec::new();
            if let Some(r) = result.runs.get("dropout") {
                let header = r.final_probes.get("mc-dropout");
                let by_k: Vec<f64> = (header.and_then(|h| h.get("accuracy_by_k")).and_then(|a| a.as_array()))
                    .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
                    .unwrap_or_default();
                let ws = header
                    .and_then(|h| h.get("weight_scaling_accuracy"))
                    .and_then(|v| v.as_f64());
                series.push((
                    "MC dropout, mean of K passes".to_string(),
                    by_k.iter().enumerate().map(|(k, &a)| ((k + 1) as f64, a)).collect(),
                ));
                if let Some(ws) = ws {
                    series.push((
                        "weight scaling (model.eval())".to_string(),
                        vec![(1.0, ws), (by_k.len().max(2) as f64, ws)],
                    ));
                }
            }
            figs.push(Figure {
                file: "mc-dropout.svg",
                title: "Monte-Carlo dropout vs weight scaling (Srivastava et al. 2014, Fig. 11)".into(),
                x: "K, stochastic passes averaged",
                y: "validation accuracy (share, 0–1)",
                series,
                log_x: false,
            });
            let mut series = Vec::new();
            for r in (chapter.runs.iter()).filter_map(|run| result.runs.get(&run.id)) {
                let train = (r.series.iter())
                    .filter_map(|p| Some((p.step as f64, f64::from(p.train_loss?))))
                    .collect();
                series.push((format!("{}: train loss, with dropout", r.label), train));
                series.push((
                    format!("{}: validation loss, without", r.label),
                    steps(r.val_series("loss")),
                ));
            }
            figs.push(Figure {
                file: "train-vs-val.svg",
                title: "Training loss (masks on) vs validation loss (eval mode)".into(),
                x: "training step",
                y: "cross-entropy (nats)",
                series,
                log_x: false,
            });
        }
        "deconvolution" => figs.push(Figure {
            file: "checkerboard.svg",
            title: "Checkerboard score of the last upsampling stage (Odena et al. 2016)".into(),
            x: "training step (0 = initialisation)",
            y: "share of output energy at the stride frequency (0–1)",
            series: per_run(chapter, result, probe("checkerboard", "score")),
            log_x: false,
        }),
        _ => {}
    }
    let mut written = Vec::new();
    for fig in &figs {
        written.extend(draw(dir, fig)?);
    }
    Ok(written)
}
