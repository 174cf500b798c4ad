//! The native CLI. Errors are printed as one line naming the problem; the exit code is 1.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, Subcommand};
use cnn_playground::backend::{self, BackendChoice, Device};
use cnn_playground::data::Mnist;
use cnn_playground::nn::regularize::{first_conv, group, Group};
use cnn_playground::nn::{L1Mode, OptimizerKind, RegTarget};
use cnn_playground::probe::{weight_stats, WeightStats, NEAR_ZERO};
use cnn_playground::{Error, ModelSpec, Result, TrainConfig, Trainer};

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
    /// Train a model spec on MNIST; prints progress and writes DIR/metrics.json.
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
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value = "auto")]
        backend: Choice,
        /// Output folder for metrics.json.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// The MNIST asset written by `npm run build` (scripts/build-mnist.mjs).
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
                ..TrainConfig::default()
            };
            pollster::block_on(train(
                &spec,
                config,
                Limits {
                    steps,
                    max_seconds,
                    eval_every,
                },
                &out,
                data.as_deref(),
            ))
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
}

async fn train(spec_path: &Path, config: TrainConfig, limits: Limits, out: &Path, data: Option<&Path>) -> Result<()> {
    let Limits {
        steps,
        max_seconds,
        eval_every,
    } = limits;
    let text = std::fs::read_to_string(spec_path).map_err(|e| io_err(spec_path, e))?;
    let spec = ModelSpec::from_json(&text)?;
    let mut trainer = Trainer::new(spec, config.clone(), load_mnist(data)?).await?;
    println!("backend {} ({})", trainer.backend_name(), trainer.backend_reason());
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
            println!(
                "step {:>6}  loss {:.4}  penalty {:.4}  acc {:5.1}%  {:7.1} steps/s",
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
            println!(
                "  validation at step {}: accuracy {:.2}%, loss {:.4} ({:.1} s since start, evaluation included)",
                r.step,
                100.0 * v.val_accuracy,
                v.val_loss,
                start.elapsed().as_secs_f64()
            );
        }
        if max_seconds > 0.0 && start.elapsed().as_secs_f64() >= max_seconds {
            println!("time limit of {max_seconds} s reached at step {}", r.step);
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let val = trainer.evaluate(0).await?;
    let tr = trainer.evaluate_train(2000).await?;
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
        "penalty": penalty,
        "weights": { "first_conv": sparsity(&first), "conv": sparsity(&conv) },
        "steps": trainer.steps_done(), "backend": trainer.backend_name(), "backend_reason": trainer.backend_reason(),
        "seconds": seconds, "config": config, "spec": trainer.spec(),
    });
    let path = out.join("metrics.json");
    let text = serde_json::to_string_pretty(&metrics).map_err(|e| Error::Data(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| io_err(&path, e))?;
    println!("wrote {}", path.display());
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
