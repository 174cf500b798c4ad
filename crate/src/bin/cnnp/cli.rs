//! The native CLI. Errors are printed as one line naming the problem; the exit code is 1.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, Subcommand};
use cnn_playground::backend::{self, BackendChoice, Device};
use cnn_playground::chapters::{self, run_experiment, ExperimentOptions};
use cnn_playground::data::{Mnist, Rng};
use cnn_playground::nn::regularize::{first_conv, group, Group};
use cnn_playground::nn::{self, export::model_py, io::load_safetensors, Mode, Model};
use cnn_playground::nn::{L1Mode, OptimizerKind, RegTarget};
use cnn_playground::probe::{weight_stats, WeightStats, NEAR_ZERO};
use cnn_playground::spec::{DataSource, ValidSpec};
use cnn_playground::{Error, ModelSpec, Result, TrainConfig, Trainer};

use crate::{figures, npy};

const STANDARD_NET: &str = include_str!("../../../../presets/mnist-small.json");

#[derive(Parser)]
#[command(
    name = "cnnp",
    version,
    about = "CNN Playground's core: train and benchmark small CNNs on the CPU or a GPU (wgpu)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model spec for its task (classify, localize, detect, segment) on its data (the
    /// spec's `data`: MNIST digits, shapes scenes or cluttered digits); prints progress and
    /// writes DIR/metrics.json, the trained weights (DIR/weights.safetensors) and the PyTorch
    /// module (DIR/model.py).
    Train {
        /// Model spec (JSON), e.g. presets/mnist-small.json
        spec: PathBuf,
        #[arg(long, default_value_t = 3000)]
        steps: u64,
        /// Stop early after this many seconds of training (0 = no limit).
        #[arg(long, default_value_t = 0.0)]
        max_seconds: f64,
        /// Measure validation accuracy every N steps (0 = only at the end).
        #[arg(long, default_value_t = 0)]
        eval_every: u64,
        /// Stop once validation metrics reach their values, e.g. mean_iou=0.85 or
        /// accuracy=0.95,mean_iou=0.8 (all of them; checked every --eval-every steps).
        #[arg(long, value_parser = parse_stop_at)]
        stop_at: Option<StopAt>,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 0.001)]
        lr: f32,
        #[arg(long, value_enum, default_value = "adam")]
        optimizer: Opt,
        #[arg(long, default_value_t = 0.9)]
        momentum: f32,
        /// L1 strength: adds l1·Σ|w| to the mean loss (see --l1-target, --l1-mode).
        #[arg(long, default_value_t = 0.0)]
        l1: f32,
        /// L2 strength: adds (l2/2)·Σw² to the mean loss (PyTorch's coupled weight_decay).
        #[arg(long, default_value_t = 0.0)]
        l2: f32,
        /// Parameters L1 applies to: weights | conv | linear | first_conv | all.
        #[arg(long, default_value = "weights", value_parser = parse_target)]
        l1_target: RegTarget,
        /// Parameters L2 applies to: weights | conv | linear | first_conv | all.
        #[arg(long, default_value = "weights", value_parser = parse_target)]
        l2_target: RegTarget,
        /// penalty (subgradient in the gradient) or proximal (soft threshold by lr·l1 after
        /// each update: exact zeros).
        #[arg(long, default_value = "penalty", value_parser = parse_l1_mode)]
        l1_mode: L1Mode,
        /// AdamW's decoupled weight decay (used with --optimizer adamw only).
        #[arg(long, default_value_t = 0.01)]
        weight_decay: f32,
        /// Weight of the box loss (localize, detect).
        #[arg(long, default_value_t = 5.0)]
        box_weight: f32,
        /// Weight of a soft Dice term added to the per-pixel cross-entropy (segment; 0 = off).
        #[arg(long, default_value_t = 0.0)]
        dice: f32,
        /// Detection: NMS IoU threshold (mAP is computed after NMS).
        #[arg(long, default_value_t = 0.5)]
        nms_iou: f32,
        /// Transfer learning: start from the matching parameters of this safetensors file
        /// (every layer but the output layer), e.g. a backbone from `cnnp train --out`.
        #[arg(long)]
        backbone: Option<PathBuf>,
        /// Layers (names, comma separated) whose parameters stay frozen, e.g. 0,3.
        #[arg(long, value_delimiter = ',')]
        freeze: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value = "auto")]
        backend: Choice,
        /// Output folder for metrics.json, weights.safetensors and model.py.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// The MNIST asset written by `npm run build` (scripts/build-mnist.mjs).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Write DIR/model.py (the spec as a PyTorch module) and DIR/weights.safetensors, after
    /// checking that the weights load into the spec's model.
    Export {
        /// Model spec (JSON)
        spec: PathBuf,
        /// Weights (safetensors) for this spec, e.g. from `cnnp train --out`
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a model on a batch: reads an (N, C, H, W) float32 .npy whose C, H, W are the
    /// spec's input, writes the output (N, classes) as float32 .npy.
    Infer {
        /// Model spec (JSON)
        spec: PathBuf,
        /// Weights (safetensors) for this spec
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// eval: running statistics, no dropout; train: batch statistics and dropout
        #[arg(long, value_enum, default_value = "eval")]
        mode: ModeArg,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: InferOn,
    },
    /// Run a chapter's experiment (chapters/<slug>.json): train its runs from the same seed,
    /// read its probes, judge its finding; prints the finding with its numbers and the
    /// chapter's answer, writes DIR/result.json and the figures (SVG).
    Experiment {
        /// l1-l2, batch-norm, dropout, network-in-network, deconvolution or up-pooling
        slug: String,
        /// Output folder (default: out/experiment-<slug>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The smaller version (quick_steps), for tests: well under a minute.
        #[arg(long)]
        quick: bool,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Choice,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The MNIST asset (scripts/build-mnist.mjs).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Time one training step of the standard small net (batch 64) on each available backend.
    Bench {
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Opt {
    Sgd,
    Adam,
    Adamw,
}

/// Regularizer targets and modes are spelled as in the JSON config (serde is the one source).
fn parse_target(s: &str) -> std::result::Result<RegTarget, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| "expected weights, conv, linear, first_conv or all".into())
}

fn parse_l1_mode(s: &str) -> std::result::Result<L1Mode, String> {
    serde_json::from_value(serde_json::Value::String(s.into())).map_err(|_| "expected penalty or proximal".into())
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Eval,
    Train,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InferOn {
    Cpu,
    Gpu,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Choice {
    Auto,
    Cpu,
    Gpu,
}

pub fn run() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train {
            spec,
            steps,
            max_seconds,
            eval_every,
            stop_at,
            batch,
            lr,
            optimizer,
            momentum,
            l1,
            l2,
            l1_target,
            l2_target,
            l1_mode,
            weight_decay,
            box_weight,
            dice,
            nms_iou,
            backbone,
            freeze,
            seed,
            backend,
            out,
            data,
        } => {
            let config = TrainConfig {
                batch,
                lr,
                optimizer: match optimizer {
                    Opt::Sgd => OptimizerKind::Sgd,
                    Opt::Adam => OptimizerKind::Adam,
                    Opt::Adamw => OptimizerKind::AdamW,
                },
                momentum,
                seed,
                backend: match backend {
                    Choice::Auto => BackendChoice::Auto,
                    Choice::Cpu => BackendChoice::Cpu,
                    Choice::Gpu => BackendChoice::Webgpu,
                },
                l1,
                l2,
                l1_target,
                l2_target,
                l1_mode,
                weight_decay,
                box_weight,
                dice,
                nms_iou,
                freeze,
                ..TrainConfig::default()
            };
            pollster::block_on(train(
                &spec,
                config,
                Limits {
                    steps,
                    max_seconds,
                    eval_every,
                    stop_at,
                },
                &out,
                data.as_deref(),
                backbone.as_deref(),
            ))
        }
        Command::Export { spec, weights, out } => export(&spec, &weights, &out),
        Command::Infer {
            spec,
            weights,
            input,
            output,
            mode,
            backend,
        } => {
            let mode = match mode {
                ModeArg::Eval => Mode::Eval,
                ModeArg::Train => Mode::Train,
            };
            let files = InferFiles {
                spec: &spec,
                weights: &weights,
                input: &input,
                output: &output,
            };
            pollster::block_on(infer(files, mode, backend))
        }
        Command::Experiment {
            slug,
            out,
            quick,
            backend,
            seed,
            data,
        } => {
            let out = out.unwrap_or_else(|| PathBuf::from(format!("out/experiment-{slug}")));
            let backend = match backend {
                Choice::Auto => BackendChoice::Auto,
                Choice::Cpu => BackendChoice::Cpu,
                Choice::Gpu => BackendChoice::Webgpu,
            };
            pollster::block_on(experiment(&slug, &out, quick, backend, seed, data.as_deref()))
        }
        Command::Bench { steps, batch, data } => pollster::block_on(bench(steps, batch, data.as_deref())),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cnnp: {e}");
            1
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn load_mnist(path: Option<&Path>) -> Result<Mnist> {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/assets/mnist.bin");
    let path = path.map(Path::to_path_buf).unwrap_or(default);
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::Data(format!(
            "cannot read {} ({e}); build it with `npm run build:data`",
            path.display()
        ))
    })?;
    Mnist::parse(&bytes)
}

/// When to stop and how often to measure validation accuracy.
struct Limits {
    steps: u64,
    max_seconds: f64,
    eval_every: u64,
    stop_at: Option<StopAt>,
}

/// Metric targets that end a run once all of them are reached.
#[derive(Clone, Debug)]
struct StopAt(Vec<(String, f32)>);

/// "accuracy=0.95,mean_iou=0.8" -> [("accuracy", 0.95), ("mean_iou", 0.8)]
fn parse_stop_at(s: &str) -> std::result::Result<StopAt, String> {
    s.split(',')
        .map(|part| {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected METRIC=VALUE[,METRIC=VALUE...] such as mean_iou=0.85, got {s:?}"))?;
            let value: f32 = value
                .parse()
                .map_err(|_| format!("{value:?} is not a number (in {s:?})"))?;
            Ok((name.to_string(), value))
        })
        .collect::<std::result::Result<_, _>>()
        .map(StopAt)
}

/// "accuracy 97.10%, mean_iou 0.8123": a task's metrics for one line of output.
fn metrics_line(m: &std::collections::BTreeMap<String, f32>) -> String {
    let shown = m.iter().filter(|(k, _)| !k.starts_with("ap50_"));
    let parts: Vec<String> = shown
        .map(|(k, v)| match k.as_str() {
            "accuracy" | "pixel_accuracy" => format!("{k} {:.2}%", 100.0 * v),
            _ => format!("{k} {v:.4}"),
        })
        .collect();
    parts.join(", ")
}

async fn train(
    spec_path: &Path,
    config: TrainConfig,
    limits: Limits,
    out: &Path,
    data: Option<&Path>,
    backbone: Option<&Path>,
) -> Result<()> {
    let Limits {
        steps,
        max_seconds,
        eval_every,
        stop_at,
    } = limits;
    if stop_at.is_some() && eval_every == 0 {
        return Err(Error::Config {
            field: "stop_at",
            problem: "needs --eval-every N: it is checked at each validation".into(),
        });
    }
    let spec = ValidSpec::new(parse_spec(spec_path)?)?;
    let mnist = match spec.spec().data_config().source {
        DataSource::Shapes => None,
        DataSource::Mnist | DataSource::Clutter => Some(load_mnist(data)?),
    };
    let mut trainer = Trainer::create_valid(spec, config.clone(), mnist).await?;
    println!("backend {} ({})", trainer.backend_name(), trainer.backend_reason());
    if let Some(path) = backbone {
        let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
        let load = trainer.load_backbone(&bytes).map_err(|e| match e {
            Error::Weights(problem) => Error::Weights(format!("{}: {problem}", path.display())),
            other => other,
        })?;
        println!(
            "backbone {}: loaded {}; kept fresh: {}",
            path.display(),
            load.loaded.join(", "),
            load.skipped.join(", ")
        );
    }
    let mut history = Vec::new();
    let start = Instant::now();
    let (mut last_print, mut last_step) = (Instant::now(), 0u64);
    let mut penalty = 0.0f32;
    let chunk = 10u64;
    while trainer.steps_done() < steps {
        let n = chunk.min(steps - trainer.steps_done()) as usize;
        let r = trainer.step(n).await?;
        if r.diverged_at.is_some() {
            println!("diverged at step {} (loss is not finite); stopping", r.step);
            break;
        }
        penalty = r.penalty;
        let elapsed = last_print.elapsed().as_secs_f64();
        if elapsed >= 2.0 || trainer.steps_done() >= steps {
            let parts: Vec<String> = r.parts.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            let parts = if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            };
            println!(
                "step {:>6}  loss {:.4}{parts}  penalty {:.4}  acc {:5.1}%  {:7.1} steps/s",
                r.step,
                r.loss,
                r.penalty,
                100.0 * r.accuracy,
                (r.step - last_step) as f64 / elapsed
            );
            last_print = Instant::now();
            last_step = r.step;
        }
        if eval_every > 0 && r.step % eval_every < n as u64 {
            let v = trainer.evaluate(0).await?;
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "  validation at step {}: {}, loss {:.4} ({seconds:.1} s since start, evaluation included)",
                r.step,
                metrics_line(&v.metrics),
                v.val_loss,
            );
            history.push(serde_json::json!({
                "step": r.step, "seconds": seconds, "val_loss": v.val_loss, "metrics": v.metrics,
            }));
            if let Some(targets) = &stop_at {
                let mut reached = Vec::new();
                for (name, target) in &targets.0 {
                    let Some(&got) = v.metrics.get(name) else {
                        let known: Vec<&String> = v.metrics.keys().collect();
                        return Err(Error::Config {
                            field: "stop_at",
                            problem: format!(
                                "the {} task has no metric {name:?}; it has {known:?}",
                                trainer.spec().task.name()
                            ),
                        });
                    };
                    reached.push((got >= *target).then(|| format!("{name} {got:.4} reached {target}")));
                }
                if reached.iter().all(Option::is_some) {
                    let said: Vec<String> = reached.into_iter().flatten().collect();
                    println!("{} at step {} ({seconds:.1} s); stopping", said.join(", "), r.step);
                    break;
                }
            }
        }
        if max_seconds > 0.0 && start.elapsed().as_secs_f64() >= max_seconds {
            println!("time limit of {max_seconds} s reached at step {}", r.step);
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let val = trainer.evaluate(0).await?;
    let train_examples = if trainer.data().config().source == DataSource::Mnist {
        2000
    } else {
        256
    };
    let tr = trainer.evaluate_train(train_examples).await?;
    println!(
        "final: train loss {:.4} acc {:.2}%  validation loss {:.4} acc {:.2}% ({} examples)  {} steps in {:.1} s",
        tr.val_loss,
        100.0 * tr.val_accuracy,
        val.val_loss,
        100.0 * val.val_accuracy,
        val.examples,
        trainer.steps_done(),
        seconds
    );
    println!(
        "final validation {}: {}",
        trainer.spec().task.name(),
        metrics_line(&val.metrics)
    );
    let (first, conv) = conv_weight_stats(&trainer).await?;
    for (name, s) in [("first conv", &first), ("all conv", &conv)] {
        println!(
            "{name} kernels: {} weights, {:.1}% exactly 0, {:.1}% with |w| < {NEAR_ZERO:e}, L2 norm {:.4}",
            s.count,
            100.0 * s.zero_share(),
            100.0 * s.near_zero_share(),
            s.l2_norm
        );
    }
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let sparsity = |s: &WeightStats| {
        serde_json::json!({
            "count": s.count, "zero_share": s.zero_share(), "near_zero_share": s.near_zero_share(),
            "near_zero_below": NEAR_ZERO, "l2_norm": s.l2_norm, "min": s.min, "max": s.max,
        })
    };
    let metrics = serde_json::json!({
        "train_loss": tr.val_loss, "train_accuracy": tr.val_accuracy, "train_examples": tr.examples,
        "val_loss": val.val_loss, "val_accuracy": val.val_accuracy, "val_examples": val.examples,
        "task": trainer.spec().task, "val_metrics": val.metrics, "train_metrics": tr.metrics, "history": history,
        "penalty": penalty,
        "weights": { "first_conv": sparsity(&first), "conv": sparsity(&conv) },
        "steps": trainer.steps_done(), "backend": trainer.backend_name(), "backend_reason": trainer.backend_reason(),
        "seconds": seconds, "config": config, "spec": trainer.spec(),
    });
    let path = out.join("metrics.json");
    let text = serde_json::to_string_pretty(&metrics).map_err(|e| Error::Data(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| io_err(&path, e))?;
    println!("wrote {}", path.display());
    // the model.py of what ran (its config's dropout overrides), as the page exports it
    write_export(out, &trainer.model_py()?, &trainer.save_weights().await?)
}

fn read_spec(path: &Path) -> Result<ModelSpec> {
    let spec = parse_spec(path)?;
    spec.validate()?;
    Ok(spec)
}

/// The spec in a file, parsed but not validated.
fn parse_spec(path: &Path) -> Result<ModelSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    ModelSpec::parse(&text)
}

/// Writes DIR/model.py (the text `model_py` gives) and DIR/weights.safetensors.
fn write_export(dir: &Path, py_text: &str, weights: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let py = dir.join("model.py");
    std::fs::write(&py, py_text).map_err(|e| io_err(&py, e))?;
    let w = dir.join("weights.safetensors");
    std::fs::write(&w, weights).map_err(|e| io_err(&w, e))?;
    println!("wrote {} and {}", py.display(), w.display());
    Ok(())
}

/// The spec's model on `device` with the weights of a safetensors file (checked to fit).
fn model_with_weights(
    spec: &ModelSpec,
    weights: &[u8],
    device: &Device,
    path: &Path,
) -> Result<(Model, nn::ParamStore)> {
    let (model, mut store) = Model::build(spec, device.backend(), &mut Rng::new(0))?;
    load_safetensors(weights, &mut store, device.backend()).map_err(|e| match e {
        Error::Weights(problem) => Error::Weights(format!("{}: {problem}", path.display())),
        other => other,
    })?;
    Ok((model, store))
}

fn export(spec_path: &Path, weights_path: &Path, out: &Path) -> Result<()> {
    let spec = read_spec(spec_path)?;
    let weights = std::fs::read(weights_path).map_err(|e| io_err(weights_path, e))?;
    let cpu = Device::Cpu(backend::cpu::CpuBackend::new());
    model_with_weights(&spec, &weights, &cpu, weights_path)?;
    write_export(out, &model_py(&spec)?, &weights)
}

struct InferFiles<'a> {
    spec: &'a Path,
    weights: &'a Path,
    input: &'a Path,
    output: &'a Path,
}

async fn infer(files: InferFiles<'_>, mode: Mode, on: InferOn) -> Result<()> {
    let spec = read_spec(files.spec)?;
    let x = npy::read_f32(files.input)?;
    let [c, h, w] = spec.input;
    if x.shape.len() != 4 || x.shape[1..] != spec.input || x.shape[0] == 0 {
        return Err(Error::Data(format!(
            "{}: shape {:?} does not fit the spec's input: expected (N, {c}, {h}, {w}) with N >= 1",
            files.input.display(),
            x.shape
        )));
    }
    let device = match on {
        InferOn::Cpu => Device::Cpu(backend::cpu::CpuBackend::new()),
        InferOn::Gpu => Device::Gpu(backend::gpu::GpuBackend::request().await?),
    };
    let weights = std::fs::read(files.weights).map_err(|e| io_err(files.weights, e))?;
    let (model, store) = model_with_weights(&spec, &weights, &device, files.weights)?;
    let (shape, y) = nn::infer(&model, &store, device.backend(), &x.data, x.shape[0], mode).await?;
    npy::write_f32(files.output, &shape, &y)?;
    println!(
        "wrote {} {shape:?} ({} backend, {mode:?} mode)",
        files.output.display(),
        device.backend().name()
    );
    Ok(())
}

/// Statistics of the first conv kernel and of all conv kernels together.
async fn conv_weight_stats(trainer: &Trainer) -> Result<(WeightStats, WeightStats)> {
    let be = trainer.backend();
    be.flush()?;
    let params = trainer.params();
    let first = first_conv(params);
    let (mut first_data, mut all) = (Vec::new(), Vec::new());
    for (i, p) in params.params.iter().enumerate() {
        if group(p.kind) != Group::ConvWeight {
            continue;
        }
        let data = be.read(&p.value).await?;
        if Some(i) == first {
            first_data = data.clone();
        }
        all.extend(data);
    }
    Ok((weight_stats(&first_data), weight_stats(&all)))
}

/// `cnnp experiment`: checks the slug and the folder before training anything.
async fn experiment(
    slug: &str,
    out: &Path,
    quick: bool,
    backend: BackendChoice,
    seed: u64,
    data: Option<&Path>,
) -> Result<()> {
    let chapter = chapters::get(slug)?;
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let probe_file = out.join("result.json");
    std::fs::write(&probe_file, b"{}").map_err(|e| io_err(&probe_file, e))?;
    let needs_digits = (chapter.runs.iter())
        .filter_map(|r| chapters::presets::valid(&r.preset).ok())
        .any(|s| s.spec().data_config().source != DataSource::Shapes);
    let mnist = if needs_digits {
        let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/assets/mnist.bin");
        let path = data.map(Path::to_path_buf).unwrap_or(default);
        Some(std::fs::read(&path).map_err(|e| {
            Error::Data(format!(
                "cannot read {} ({e}); build it with `npm run build:data`",
                path.display()
            ))
        })?)
    } else {
        None
    };
    let opts = ExperimentOptions {
        quick,
        seed,
        backend,
        mnist,
    };
    println!(
        "chapter {slug}: {}{}",
        chapter.question,
        if quick { " (quick)" } else { "" }
    );
    let start = Instant::now();
    let result = run_experiment(&chapter, &opts, |line| println!("{line}")).await?;
    for f in &result.findings {
        println!("finding: {}", f.claim);
        println!("  source: {}", f.source);
        println!("  holds: {}", if f.holds { "yes" } else { "NO" });
        println!("  values: {}", f.values);
    }
    println!("answer: {}", result.answer);
    let text = serde_json::to_string_pretty(&result).map_err(|e| Error::Data(e.to_string()))?;
    std::fs::write(&probe_file, text).map_err(|e| io_err(&probe_file, e))?;
    println!("wrote {}", probe_file.display());
    for path in figures::write(out, &chapter, &result)? {
        println!("wrote {}", path.display());
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

async fn bench(steps: usize, batch: usize, data: Option<&Path>) -> Result<()> {
    let spec = ModelSpec::from_json(STANDARD_NET)?;
    println!(
        "standard small net ({} params), batch {batch}, 28×28 MNIST",
        spec.validate()?.params
    );
    let mut devices: Vec<(Device, String)> = vec![(Device::Cpu(backend::cpu::CpuBackend::new()), "cpu".into())];
    match backend::gpu::GpuBackend::request().await {
        Ok(gpu) => {
            let info = gpu.adapter_summary();
            devices.push((Device::Gpu(gpu), info));
        }
        Err(e) => println!("gpu: not available ({e})"),
    }
    for (device, info) in devices {
        let name = device.backend().name();
        let software = matches!(&device, Device::Gpu(g) if g.is_software());
        let config = TrainConfig {
            batch,
            ..TrainConfig::default()
        };
        let mut t = Trainer::with_device(spec.clone(), config, load_mnist(data)?, device, info.clone())?;
        t.step(2).await?; // warm up: pipelines, buffer pool
        let n = if software { steps.min(3) } else { steps };
        let start = Instant::now();
        t.step(n).await?;
        let ms = start.elapsed().as_secs_f64() * 1000.0 / n as f64;
        println!(
            "{name:>7} [{info}]: {ms:8.2} ms/step  {:8.0} images/s  ({n} steps)",
            batch as f64 * 1000.0 / ms
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnn_playground::nn::io::save_safetensors;

    const LINEAR: &str = r#"{"input": [1, 2, 2], "classes": 3, "layers": [
        {"type": "flatten"}, {"type": "linear", "out": 3, "name": "fc"}]}"#;

    /// A fresh folder for one test.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cnnp-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes the spec and seeded weights for it; returns (spec path, weights path).
    fn spec_and_weights(dir: &Path, spec: &str, seed: u64) -> (PathBuf, PathBuf) {
        let (spec_path, weights_path) = (dir.join("spec.json"), dir.join("w.safetensors"));
        std::fs::write(&spec_path, spec).unwrap();
        let cpu = backend::cpu::CpuBackend::new();
        let (_, store) = Model::build(&ModelSpec::from_json(spec).unwrap(), &cpu, &mut Rng::new(seed)).unwrap();
        std::fs::write(
            &weights_path,
            pollster::block_on(save_safetensors(&store, &cpu)).unwrap(),
        )
        .unwrap();
        (spec_path, weights_path)
    }

    #[test]
    fn export_writes_model_py_and_the_weights() {
        let dir = scratch("export");
        let (spec, weights) = spec_and_weights(&dir, LINEAR, 3);
        let out = dir.join("out");
        export(&spec, &weights, &out).unwrap();
        let py = std::fs::read_to_string(out.join("model.py")).unwrap();
        assert_eq!(py, model_py(&ModelSpec::from_json(LINEAR).unwrap()).unwrap());
        assert!(py.contains(r#"self.add_module("fc", nn.Linear(4, 3))"#), "{py}");
        assert_eq!(
            std::fs::read(out.join("weights.safetensors")).unwrap(),
            std::fs::read(&weights).unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn export_refuses_weights_of_another_spec_naming_the_file_and_tensors() {
        let dir = scratch("export-bad");
        let (_, weights) = spec_and_weights(&dir, &LINEAR.replace("\"fc\"", "\"head\""), 3);
        let spec = dir.join("other.json");
        std::fs::write(&spec, LINEAR.replace("[1, 2, 2]", "[1, 3, 2]")).unwrap();
        let e = export(&spec, &weights, &dir.join("out")).unwrap_err().to_string();
        assert!(e.contains("w.safetensors: the file does not fit the model"), "{e}");
        assert!(e.contains("fc.weight [3, 6] is missing"), "{e}");
        assert!(e.contains("no tensors named head.bias, head.weight"), "{e}");
        assert!(!dir.join("out").exists(), "nothing is written");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn run_infer(dir: &Path, spec: &Path, weights: &Path, mode: Mode) -> Result<()> {
        let files = InferFiles {
            spec,
            weights,
            input: &dir.join("x.npy"),
            output: &dir.join("y.npy"),
        };
        pollster::block_on(infer(files, mode, InferOn::Cpu))
    }

    #[test]
    fn infer_writes_the_model_output_as_npy() {
        let dir = scratch("infer");
        let (spec, weights) = spec_and_weights(&dir, LINEAR, 4);
        let x: Vec<f32> = (0..8).map(|i| 0.5 * i as f32 - 1.0).collect();
        npy::write_f32(&dir.join("x.npy"), &[2, 1, 2, 2], &x).unwrap();
        run_infer(&dir, &spec, &weights, Mode::Eval).unwrap();
        let y = npy::read_f32(&dir.join("y.npy")).unwrap();
        assert_eq!(y.shape, vec![2, 3]);
        // y = x·Wᵀ + b by hand, with W (3, 4) and b (3) as the store holds them
        let cpu = backend::cpu::CpuBackend::new();
        let (_, store) = Model::build(&ModelSpec::from_json(LINEAR).unwrap(), &cpu, &mut Rng::new(4)).unwrap();
        let w = store.params[0].value.cpu().unwrap();
        let b = store.params[1].value.cpu().unwrap();
        for n in 0..2 {
            for o in 0..3 {
                let want: f32 = b[o] + (0..4).map(|k| x[n * 4 + k] * w[o * 4 + k]).sum::<f32>();
                assert!((y.data[n * 3 + o] - want).abs() < 1e-6, "y[{n},{o}]");
            }
        }
        // train mode is accepted (it differs only for batch norm and dropout, not built yet)
        run_infer(&dir, &spec, &weights, Mode::Train).unwrap();
        assert_eq!(npy::read_f32(&dir.join("y.npy")).unwrap(), y);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn infer_refuses_input_that_does_not_fit_the_spec_naming_the_file() {
        let dir = scratch("infer-bad");
        let (spec, weights) = spec_and_weights(&dir, LINEAR, 4);
        for shape in [vec![2, 1, 3, 2], vec![1, 2, 2], vec![0, 1, 2, 2]] {
            let n: usize = shape.iter().product();
            npy::write_f32(&dir.join("x.npy"), &shape, &vec![0.0; n]).unwrap();
            let e = run_infer(&dir, &spec, &weights, Mode::Eval).unwrap_err().to_string();
            let want = format!("x.npy: shape {shape:?} does not fit the spec's input: expected (N, 1, 2, 2)");
            assert!(e.contains(&want), "{e}");
        }
        assert!(!dir.join("y.npy").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn experiment_quick_writes_the_result_and_its_figures() {
        let dir = scratch("experiment");
        let out = dir.join("deconv");
        pollster::block_on(experiment("deconvolution", &out, true, BackendChoice::Cpu, 1, None)).unwrap();
        let text = std::fs::read_to_string(out.join("result.json")).unwrap();
        let result: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(result["chapter"], "deconvolution");
        let finding = &result["findings"][0];
        assert!(finding["claim"].as_str().unwrap().contains("checkerboard"));
        assert!(finding["source"].as_str().unwrap().contains("Odena"));
        assert!(finding["holds"].is_boolean());
        for key in [
            "score_transposed_init",
            "score_resize_init",
            "score_transposed_final",
            "score_resize_final",
        ] {
            let v = finding["values"][key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}: {}", finding["values"]));
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
        let chapter = chapters::get("deconvolution").unwrap();
        for run in &chapter.runs {
            let r = &result["runs"][&run.id];
            assert_eq!(r["label"], run.label.as_str());
            assert_eq!(r["steps"], chapter.experiment.quick_steps);
            let series = r["series"].as_array().unwrap();
            // step 0, then every probe_every steps up to quick_steps
            let want = 1 + chapter.experiment.quick_steps.div_ceil(chapter.probe_every);
            assert_eq!(series.len() as u64, want, "{}", run.id);
            assert_eq!(series[0]["step"], 0);
            assert!(series[0]["probes"]["checkerboard"]["score"].is_number());
            assert!(r["final"]["mean_iou"].is_number());
        }
        // the twins' values appear in the answer, nothing is left unfilled
        let answer = result["answer"].as_str().unwrap();
        assert!(answer.starts_with("Checkerboard score"), "{answer}");
        assert!(!answer.contains('…') && !answer.contains('{'), "{answer}");
        for fig in ["checkerboard.svg", "val-metrics.svg", "loss.svg"] {
            let svg = std::fs::read_to_string(out.join(fig)).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("training step"), "{fig}");
            assert!(
                svg.contains("transposed k3 s2") && svg.contains("resize + conv"),
                "{fig}: legend"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn experiment_refuses_a_bad_slug_or_folder_before_training() {
        let dir = scratch("experiment-bad");
        let e = pollster::block_on(experiment("l3", &dir, true, BackendChoice::Cpu, 1, None)).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("no chapter \"l3\"") && e.contains("deconvolution"), "{e}");
        let file = dir.join("a-file");
        std::fs::write(&file, "x").unwrap();
        let e = pollster::block_on(experiment(
            "deconvolution",
            &file.join("out"),
            true,
            BackendChoice::Cpu,
            1,
            None,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("a-file/out"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
