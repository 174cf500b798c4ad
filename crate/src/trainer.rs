//! The Trainer owns a model, its parameters, the optimizer and the data. `step(n)` runs n
//! mini-batches and returns a small Report; probes (`evaluate`, `predict`, `filters`) read
//! the model without changing it. On the GPU, a call's steps are encoded and submitted
//! together and only the Report's few floats are read back, asynchronously.

use serde::{Deserialize, Serialize};

use crate::autograd::Tape;
use crate::backend::{select, Backend, BackendChoice, Device};
use crate::data::mnist::Sampler;
use crate::data::{Mnist, Rng};
use crate::error::{Error, Result};
use crate::nn::{L1Mode, Mode, Model, Optimizer, OptimizerKind, ParamStore, Pass, RegTarget, Regularizer};
use crate::spec::{DropoutScaling, ModelSpec};
use crate::tensor::Shape;

/// Hyperparameters and run settings. Every field is optional in JSON; unknown fields are
/// refused. Rates, batch size, optimizer and regularization apply from the next step; seed
/// and backend need a rebuild.
///
/// Regularization (semantics in nn/regularize.rs): `l1`·Σ|w| and (`l2`/2)·Σw² over the
/// parameters picked by `l1_target` / `l2_target`, added to the mean data loss; `l1_mode`
/// says whether L1 acts through the gradient or as a proximal soft threshold after the
/// update. `weight_decay` is AdamW's decoupled decay (PyTorch's default 0.01), used only
/// when `optimizer` is "adamw".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub batch: usize,
    pub lr: f32,
    pub optimizer: OptimizerKind,
    pub momentum: f32,
    pub seed: u64,
    pub backend: BackendChoice,
    /// What the training forward uses: `train` (dropout masks, batch-norm batch statistics)
    /// or `eval` (no dropout, running statistics) — the course's train/eval switch.
    pub train_mode: Mode,
    /// Overrides every dropout layer's p while set (the page's slider); None keeps the spec's.
    pub dropout_p: Option<f32>,
    /// Overrides every dropout layer's scaling while set.
    pub dropout_scaling: Option<DropoutScaling>,
    pub l1: f32,
    pub l2: f32,
    pub l1_target: RegTarget,
    pub l2_target: RegTarget,
    pub l1_mode: L1Mode,
    pub weight_decay: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch: 64,
            lr: 0.001,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            seed: 1,
            backend: BackendChoice::Auto,
            train_mode: Mode::Train,
            dropout_p: None,
            dropout_scaling: None,
            l1: 0.0,
            l2: 0.0,
            l1_target: RegTarget::Weights,
            l2_target: RegTarget::Weights,
            l1_mode: L1Mode::Penalty,
            weight_decay: 0.01,
        }
    }
}

pub const MAX_BATCH: usize = 1024;

impl TrainConfig {
    pub fn from_json(text: &str) -> Result<TrainConfig> {
        let c: TrainConfig = serde_json::from_str(text).map_err(|e| Error::Parse {
            what: "train config",
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// This config with the fields present in `text` (a JSON object) replaced; fields left
    /// out keep their current values. Unknown fields and bad values are refused.
    pub fn merged_with_json(&self, text: &str) -> Result<TrainConfig> {
        let parse = |e: serde_json::Error| Error::Parse {
            what: "train config",
            message: e.to_string(),
        };
        let serde_json::Value::Object(changes) = serde_json::from_str(text).map_err(parse)? else {
            return Err(Error::Parse {
                what: "train config",
                message: "expected a JSON object".into(),
            });
        };
        let mut merged = serde_json::to_value(self).map_err(parse)?;
        if let serde_json::Value::Object(fields) = &mut merged {
            fields.extend(changes);
        }
        let c: TrainConfig = serde_json::from_value(merged).map_err(parse)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.batch > MAX_BATCH {
            return Err(Error::Config {
                field: "batch",
                problem: format!("must be between 1 and {MAX_BATCH}, got {}", self.batch),
            });
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return Err(Error::Config {
                field: "lr",
                problem: format!("must be in (0, 10], got {}", self.lr),
            });
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::Config {
                field: "momentum",
                problem: format!("must be in [0, 1), got {}", self.momentum),
            });
        }
        if let Some(p) = self.dropout_p {
            if !(p.is_finite() && (0.0..1.0).contains(&p)) {
                return Err(Error::Config {
                    field: "dropout_p",
                    problem: format!("must be in [0, 1) or null, got {p}"),
                });
            }
        }
        for (field, value) in [("l1", self.l1), ("l2", self.l2), ("weight_decay", self.weight_decay)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::Config {
                    field,
                    problem: format!("must be finite and at least 0, got {value}"),
                });
            }
        }
        Ok(())
    }

    /// The regularization this config asks for.
    pub fn regularizer(&self) -> Regularizer {
        Regularizer {
            l1: self.l1,
            l2: self.l2,
            l1_target: self.l1_target,
            l2_target: self.l2_target,
            l1_mode: self.l1_mode,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Idle,
    Running,
    Paused,
    Diverged,
}

/// What one `step(n)` call reports: means over its n mini-batches.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub step: u64,
    /// The data loss (mean cross-entropy), without the regularization term.
    pub loss: f32,
    /// The regularization term l1·Σ|w| + (l2/2)·Σw² of the weights each step's forward pass
    /// used, averaged over the steps like the loss; 0 when no regularizer is on.
    pub penalty: f32,
    pub accuracy: f32,
    pub phase: Phase,
    pub diverged_at: Option<u64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    pub val_loss: f32,
    pub val_accuracy: f32,
    pub examples: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Predictions {
    /// Global indices into the MNIST asset.
    pub indices: Vec<u32>,
    pub labels: Vec<u32>,
    pub preds: Vec<u32>,
    pub confidence: Vec<f32>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Filters {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub struct Trainer {
    device: Device,
    backend_reason: String,
    spec: ModelSpec,
    model: Model,
    params: ParamStore,
    optimizer: Optimizer,
    config: TrainConfig,
    data: Mnist,
    sampler: Sampler,
    /// Draws dropout masks (seeded, so runs repeat).
    dropout_rng: Rng,
    step: u64,
    phase: Phase,
    diverged_at: Option<u64>,
}

/// Examples per forward pass while evaluating (bounds memory).
const EVAL_CHUNK: usize = 100;

impl Trainer {
    /// Validates everything, picks the backend, builds and initialises the model.
    pub async fn new(spec: ModelSpec, config: TrainConfig, data: Mnist) -> Result<Trainer> {
        config.validate()?;
        spec.validate()?;
        if spec.input != [1, data.rows, data.cols] || spec.classes != 10 {
            return Err(Error::Spec {
                index: 0,
                name: None,
                kind: "input".into(),
                problem: format!(
                    "MNIST needs input [1, {}, {}] and 10 classes; the spec has input {:?} and {} classes",
                    data.rows, data.cols, spec.input, spec.classes
                ),
                input_shapes: Vec::new(),
            });
        }
        let selected = select(config.backend).await;
        Self::with_device(spec, config, data, selected.device, selected.reason)
    }

    /// Same as `new` with a device chosen by the caller (tests inject one).
    pub fn with_device(
        spec: ModelSpec,
        config: TrainConfig,
        data: Mnist,
        device: Device,
        backend_reason: String,
    ) -> Result<Trainer> {
        config.validate()?;
        let seed = config.seed;
        let mut rng = Rng::new(seed);
        let (model, params) = Model::build(&spec, device.backend(), &mut rng)?;
        let sampler = Sampler::new(&data.train, config.seed.wrapping_add(1));
        Ok(Trainer {
            device,
            backend_reason,
            spec,
            model,
            params,
            optimizer: Optimizer::new(config.optimizer),
            config,
            data,
            sampler,
            dropout_rng: Rng::new(seed.wrapping_add(2)),
            step: 0,
            phase: Phase::Idle,
            diverged_at: None,
        })
    }

    pub fn backend(&self) -> &dyn Backend {
        self.device.backend()
    }
    pub fn backend_name(&self) -> &'static str {
        self.backend().name()
    }
    pub fn backend_reason(&self) -> &str {
        &self.backend_reason
    }
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    pub fn params(&self) -> &ParamStore {
        &self.params
    }
    pub fn data(&self) -> &Mnist {
        &self.data
    }
    pub fn steps_done(&self) -> u64 {
        self.step
    }
    /// Replaces one parameter's values (by its PyTorch-style name, e.g. "0.weight"); the
    /// length must match. Optimizer state is kept.
    pub fn load_param(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let Some(p) = self.params.params.iter_mut().find(|p| p.name == name) else {
            let names: Vec<&str> = self.params.params.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::Config {
                field: "param",
                problem: format!("no parameter named {name:?}; the model has {names:?}"),
            });
        };
        if data.len() != p.value.numel() {
            return Err(crate::error::shape_err(
                "load_param",
                format!("{name} needs {} values, got {}", p.value.numel(), data.len()),
                &[p.value.dims()],
            ));
        }
        p.value = self.device.backend().upload(p.value.shape.clone(), data)?;
        Ok(())
    }

    /// Every parameter and buffer as safetensors, with PyTorch's names and layouts.
    pub async fn save_weights(&self) -> Result<Vec<u8>> {
        crate::nn::io::save_safetensors(&self.params, self.device.backend()).await
    }

    /// Replaces every parameter and buffer from a safetensors file written for this spec;
    /// nothing changes if it does not fit. Optimizer state is kept.
    pub fn load_weights(&mut self, bytes: &[u8]) -> Result<()> {
        crate::nn::io::load_safetensors(bytes, &mut self.params, self.device.backend())
    }

    pub fn pause(&mut self) {
        if self.phase == Phase::Running {
            self.phase = Phase::Paused;
        }
    }

    /// Applies rates, batch size, optimizer and regularization from the next step without a
    /// reset. Seed and backend changes need a new Trainer and are refused here.
    pub fn set_config(&mut self, config: TrainConfig) -> Result<()> {
        config.validate()?;
        if config.seed != self.config.seed {
            return Err(Error::Config {
                field: "seed",
                problem: "changes need a reset (a new run)".into(),
            });
        }
        if config.backend != self.config.backend {
            return Err(Error::Config {
                field: "backend",
                problem: "changes need a reset (a new run)".into(),
            });
        }
        self.optimizer.set_kind(config.optimizer);
        self.config = config;
        Ok(())
    }

    /// Runs `n` mini-batches; returns their mean loss and accuracy. After a non-finite loss
    /// the run is marked diverged and further calls train no more.
    pub async fn step(&mut self, n: usize) -> Result<Report> {
        if self.phase == Phase::Diverged || n == 0 {
            return Ok(self.report(f32::NAN, f32::NAN, f32::NAN));
        }
        let be = self.device.backend();
        let reg = self.config.regularizer();
        let mut loss_sum = be.zeros(Shape::new(&[1]))?;
        let mut penalty_sum = be.zeros(Shape::new(&[1]))?;
        let mut correct_sum = be.zeros(Shape::new(&[1]))?;
        let mut seen = 0usize;
        for _ in 0..n {
            let idx = self.sampler.next_batch(self.config.batch);
            let batch = self.data.batch(&idx);
            let x = be.upload(Shape::new(&[batch.n, 1, self.data.rows, self.data.cols]), &batch.images)?;
            let y = be.upload_indices(Shape::new(&[batch.n]), &batch.labels)?;
            let (mut grads, bn) = {
                let mut tape = Tape::new(be, &self.params);
                let xv = tape.input(x);
                let mut pass = Pass {
                    mode: self.config.train_mode,
                    rng: Some(&mut self.dropout_rng),
                    dropout_p: self.config.dropout_p,
                    dropout_scaling: self.config.dropout_scaling,
                };
                let fwd = self.model.forward(&mut tape, xv, &mut pass)?;
                let out = tape.cross_entropy(fwd.output(), &y)?;
                be.add_assign(&mut loss_sum, tape.value(out.loss))?;
                be.add_assign(&mut correct_sum, &out.correct)?;
                (tape.backward(out.loss)?, fwd.bn)
            };
            Model::update_running_stats(be, &mut self.params, bn)?;
            // regularization: penalty and gradient terms before the update, proximal L1 after
            let proximal = reg.before_update(be, &self.params, &mut grads, &mut penalty_sum)?;
            let c = &self.config;
            self.optimizer
                .step(be, &mut self.params, grads, c.lr, c.momentum, c.weight_decay)?;
            Regularizer::after_update(be, &mut self.params, &proximal, c.lr)?;
            self.step += 1;
            seen += batch.n;
        }
        be.flush()?;
        let loss = be.read(&loss_sum).await?.first().copied().unwrap_or(f32::NAN) / n as f32;
        let correct = be.read(&correct_sum).await?.first().copied().unwrap_or(0.0);
        // Read only when a regularizer is on: an unregularized run reads back nothing more.
        let penalty = if reg.is_active() {
            be.read(&penalty_sum).await?.first().copied().unwrap_or(f32::NAN) / n as f32
        } else {
            0.0
        };
        if !(loss.is_finite() && penalty.is_finite()) {
            self.phase = Phase::Diverged;
            self.diverged_at = Some(self.step);
        } else {
            self.phase = Phase::Running;
        }
        Ok(self.report(loss, penalty, correct / seen.max(1) as f32))
    }

    fn report(&self, loss: f32, penalty: f32, accuracy: f32) -> Report {
        Report {
            step: self.step,
            loss,
            penalty,
            accuracy,
            phase: self.phase,
            diverged_at: self.diverged_at,
        }
    }

    /// Forward pass over examples, in chunks; returns (summed loss, correct count, logits).
    async fn forward_examples(&self, examples: &[u32], keep_logits: bool) -> Result<(f32, f32, Vec<f32>)> {
        let be = self.device.backend();
        let (mut loss, mut correct, mut logits) = (0.0f32, 0.0f32, Vec::new());
        for chunk in examples.chunks(EVAL_CHUNK) {
            let batch = self.data.batch(chunk);
            let x = be.upload(Shape::new(&[batch.n, 1, self.data.rows, self.data.cols]), &batch.images)?;
            let y = be.upload_indices(Shape::new(&[batch.n]), &batch.labels)?;
            let mut tape = Tape::new(be, &self.params);
            let xv = tape.input(x);
            let z = self.model.forward(&mut tape, xv, &mut Pass::eval())?.output();
            let out = tape.cross_entropy(z, &y)?;
            be.flush()?;
            loss += be
                .read(tape.value(out.loss))
                .await?
                .first()
                .copied()
                .unwrap_or(f32::NAN)
                * batch.n as f32;
            correct += be.read(&out.correct).await?.first().copied().unwrap_or(0.0);
            if keep_logits {
                logits.extend(be.read(tape.value(z)).await?);
            }
        }
        Ok((loss, correct, logits))
    }

    /// Loss and accuracy on the first `max` validation examples (all when `max` is 0).
    pub async fn evaluate(&self, max: usize) -> Result<Evaluation> {
        self.evaluate_examples(&self.data.val, max).await
    }

    /// The same on the training split (what the CLI reports as final train metrics).
    pub async fn evaluate_train(&self, max: usize) -> Result<Evaluation> {
        self.evaluate_examples(&self.data.train, max).await
    }

    async fn evaluate_examples(&self, examples: &[u32], max: usize) -> Result<Evaluation> {
        let n = if max == 0 {
            examples.len()
        } else {
            max.min(examples.len())
        };
        let (loss, correct, _) = self.forward_examples(&examples[..n], false).await?;
        Ok(Evaluation {
            val_loss: loss / n.max(1) as f32,
            val_accuracy: correct / n.max(1) as f32,
            examples: n,
        })
    }

    /// Predicted class and confidence for `k` validation examples spread over the split.
    pub async fn predict(&self, k: usize) -> Result<Predictions> {
        let val = &self.data.val;
        let k = k.min(val.len());
        let stride = (val.len() / k.max(1)).max(1);
        let indices: Vec<u32> = (0..k).map(|i| val[i * stride]).collect();
        let (_, _, logits) = self.forward_examples(&indices, true).await?;
        let classes = self.model.classes;
        let mut preds = Vec::with_capacity(k);
        let mut confidence = Vec::with_capacity(k);
        for row in logits.chunks(classes) {
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
            let arg = row.iter().position(|&v| v == max).unwrap_or(0);
            preds.push(arg as u32);
            confidence.push(1.0 / sum);
        }
        let labels = indices.iter().map(|&i| self.data.labels[i as usize] as u32).collect();
        Ok(Predictions {
            indices,
            labels,
            preds,
            confidence,
        })
    }

    /// The first convolution's kernels, (O, C, K, K).
    pub async fn filters(&self) -> Result<Filters> {
        let Some(id) = self.model.first_conv_weight() else {
            return Ok(Filters {
                shape: vec![],
                data: vec![],
            });
        };
        let w = &self.params.params[id].value;
        self.backend().flush()?;
        Ok(Filters {
            shape: w.dims().to_vec(),
            data: self.backend().read(w).await?,
        })
    }
}

/// One parameter tensor's statistics for the page's histogram and zero-share readouts.
#[derive(Clone, Debug, Serialize)]
pub struct ParamStats {
    pub name: String,
    /// "conv" | "linear" | "bias" | "bn"
    pub group: &'static str,
    pub shape: Vec<usize>,
    pub stats: crate::probe::WeightStats,
}

/// A batch norm layer's running statistics.
#[derive(Clone, Debug, Serialize)]
pub struct BnStats {
    pub layer: String,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Weights {
    pub params: Vec<ParamStats>,
    pub batch_norm: Vec<BnStats>,
}

/// Upper bound on the channels an activation probe returns per layer (the page shows a grid).
pub const MAX_PROBE_CHANNELS: usize = 64;

/// One layer's output for one example: (C,H,W) or (K), at most `MAX_PROBE_CHANNELS` channels.
#[derive(Clone, Debug, Serialize)]
pub struct LayerActivation {
    pub name: String,
    pub kind: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Every layer's output for one validation example (the page's activation maps).
#[derive(Clone, Debug, Serialize)]
pub struct Activations {
    /// Position in the validation split.
    pub example: usize,
    pub label: u32,
    /// The input image, H·W floats in [0, 1].
    pub image: Vec<f32>,
    pub layers: Vec<LayerActivation>,
}

impl Trainer {
    /// Runs validation example `example` through the model and returns every layer's output.
    pub async fn activations(&self, example: usize) -> Result<Activations> {
        let val = &self.data.val;
        let Some(&index) = val.get(example) else {
            return Err(Error::Config {
                field: "example",
                problem: format!(
                    "{example} is out of range: the validation split has {} examples",
                    val.len()
                ),
            });
        };
        let be = self.device.backend();
        let batch = self.data.batch(&[index]);
        let x = be.upload(Shape::new(&[1, 1, self.data.rows, self.data.cols]), &batch.images)?;
        let mut tape = Tape::new(be, &self.params);
        let xv = tape.input(x);
        let outs = self.model.forward(&mut tape, xv, &mut Pass::eval())?.outputs;
        be.flush()?;
        let mut layers = Vec::with_capacity(outs.len());
        for (i, v) in outs.iter().enumerate() {
            let t = tape.value(*v);
            let mut shape = t.dims()[1..].to_vec();
            let mut data = be.read(t).await?;
            if shape.len() == 3 && shape[0] > MAX_PROBE_CHANNELS {
                shape[0] = MAX_PROBE_CHANNELS;
                data.truncate(shape.iter().product());
            }
            layers.push(LayerActivation {
                name: self.model.nodes[i].name.clone(),
                kind: self.spec.layers[i].op.kind(),
                shape,
                data,
            });
        }
        Ok(Activations {
            example,
            label: batch.labels.first().copied().unwrap_or(0),
            image: batch.images,
            layers,
        })
    }

    /// Every parameter's statistics (histogram, exact and near zeros, norm) and every batch
    /// norm layer's running statistics.
    pub async fn weights(&self) -> Result<Weights> {
        use crate::nn::ParamKind;
        let be = self.backend();
        be.flush()?;
        let mut params = Vec::with_capacity(self.params.params.len());
        for p in &self.params.params {
            let data = be.read(&p.value).await?;
            params.push(ParamStats {
                name: p.name.clone(),
                group: match p.kind {
                    ParamKind::ConvWeight => "conv",
                    ParamKind::LinearWeight => "linear",
                    ParamKind::Bias => "bias",
                    ParamKind::BnWeight | ParamKind::BnBias => "bn",
                },
                shape: p.value.dims().to_vec(),
                stats: crate::probe::weight_stats(&data),
            });
        }
        let mut batch_norm = Vec::new();
        for pair in self.params.buffers.chunks(2) {
            let [m, v] = pair else { continue };
            let Some(layer) = m.name.strip_suffix(".running_mean") else {
                continue;
            };
            batch_norm.push(BnStats {
                layer: layer.to_string(),
                mean: be.read(&m.value).await?,
                var: be.read(&v.value).await?,
            });
        }
        Ok(Weights { params, batch_norm })
    }

    /// The kernels of the conv2d layer named `layer` (O, C, K, K); the first conv when empty.
    pub async fn layer_filters(&self, layer: &str) -> Result<Filters> {
        if layer.is_empty() {
            return self.filters().await;
        }
        let Some(node) = self.model.nodes.iter().find(|n| n.name == layer) else {
            let names: Vec<&str> = self.model.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(Error::Config {
                field: "layer",
                problem: format!("no layer named {layer:?}; the model has {names:?}"),
            });
        };
        let crate::nn::Layer::Conv2d { w, .. } = node.layer else {
            return Err(Error::Config {
                field: "layer",
                problem: format!("layer {layer:?} is not a conv2d layer, so it has no filters to draw"),
            });
        };
        let w = &self.params.params[w].value;
        self.backend().flush()?;
        Ok(Filters {
            shape: w.dims().to_vec(),
            data: self.backend().read(w).await?,
        })
    }
}
