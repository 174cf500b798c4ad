//! The Trainer owns a model, its parameters, the optimizer and the data. `step(n)` runs n
//! mini-batches and returns a small Report; probes (`evaluate`, `predict`, `filters`) read
//! the model without changing it. On the GPU, a call's steps are encoded and submitted
//! together and only the Report's few floats are read back, asynchronously.

use serde::Serialize;

use crate::autograd::Tape;
use crate::backend::{select, Backend, Device};
use crate::data::{Mnist, Rng};
use crate::error::{Error, Result};
use crate::nn::{Model, Optimizer, ParamStore, Pass, Regularizer};
use crate::spec::{ModelSpec, Plan, Task, ValidSpec};
use crate::tasks::data::{stack, Example, Source, TaskData};
use crate::tasks::heads::{self, Prediction, Scorer};
use crate::tasks::metrics::Truth;
use crate::tensor::{Shape, Tensor};
use std::collections::BTreeMap;

/// The run's config is part of the spec's JSON vocabulary (spec/train.rs); its old path.
pub use crate::spec::{TrainConfig, MAX_BATCH};

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
    /// The data loss (the sum of the task's terms), without the regularization term.
    pub loss: f32,
    /// The task's loss terms by name (e.g. "class", "box", "objectness", "pixel_ce", "dice").
    pub parts: BTreeMap<String, f32>,
    /// The regularization term l1·Σ|w| + (l2/2)·Σw² of the weights each step's forward pass
    /// used, averaged over the steps like the loss; 0 when no regularizer is on.
    pub penalty: f32,
    /// Share of correct classes (classify, localize), object cells' classes (detect) or
    /// pixels (segment) on the training batches.
    pub accuracy: f32,
    pub phase: Phase,
    pub diverged_at: Option<u64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    pub val_loss: f32,
    /// As the report's accuracy, on the validation examples.
    pub val_accuracy: f32,
    pub examples: usize,
    /// The task's metrics: classify {accuracy}; localize {accuracy, mean_iou, iou50};
    /// detect {map50, ap50_<class>}; segment {pixel_accuracy, mean_iou}.
    pub metrics: BTreeMap<String, f32>,
}

/// Decoded outputs for the first validation examples, for the page's views.
#[derive(Clone, Debug, Serialize)]
pub struct Outputs {
    pub task: Task,
    pub input: [usize; 3],
    pub class_names: Vec<String>,
    pub examples: Vec<OutputExample>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputExample {
    /// (C, H, W) in [0, 1].
    pub image: Vec<f32>,
    pub truth: OutputTruth,
    pub pred: Prediction,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputTruth {
    pub label: u32,
    pub boxes: Vec<Truth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<u32>>,
}

/// What `load_backbone` took from a weights file.
#[derive(Clone, Debug, Serialize)]
pub struct BackboneLoad {
    pub loaded: Vec<String>,
    pub skipped: Vec<String>,
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
    /// What validating the spec found (shapes, counts): kept for `plan()`, never recomputed.
    plan: Plan,
    model: Model,
    params: ParamStore,
    optimizer: Optimizer,
    config: TrainConfig,
    data: TaskData,
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
        Self::create(spec, config, Some(data)).await
    }

    /// As `new`, for any task; `mnist` is needed by MNIST and cluttered-digit data only.
    pub async fn create(spec: ModelSpec, config: TrainConfig, mnist: Option<Mnist>) -> Result<Trainer> {
        config.validate()?;
        Self::create_valid(ValidSpec::new(spec)?, config, mnist).await
    }

    /// As `create`, for a spec validated already (the page and the CLI validate it once, first).
    pub async fn create_valid(spec: ValidSpec, config: TrainConfig, mnist: Option<Mnist>) -> Result<Trainer> {
        config.validate()?;
        let selected = select(config.backend).await;
        Self::from_valid(spec, config, mnist, selected.device, selected.reason)
    }

    /// Same as `new` with a device chosen by the caller (tests inject one).
    pub fn with_device(
        spec: ModelSpec,
        config: TrainConfig,
        data: Mnist,
        device: Device,
        backend_reason: String,
    ) -> Result<Trainer> {
        Self::with_data(spec, config, Some(data), device, backend_reason)
    }

    /// Same as `create` with a device chosen by the caller.
    pub fn with_data(
        spec: ModelSpec,
        config: TrainConfig,
        mnist: Option<Mnist>,
        device: Device,
        backend_reason: String,
    ) -> Result<Trainer> {
        config.validate()?;
        Self::from_valid(ValidSpec::new(spec)?, config, mnist, device, backend_reason)
    }

    /// Builds the data and the model of a validated spec on `device`; the spec's plan is
    /// used, not recomputed.
    pub fn from_valid(
        spec: ValidSpec,
        config: TrainConfig,
        mnist: Option<Mnist>,
        device: Device,
        backend_reason: String,
    ) -> Result<Trainer> {
        config.validate()?;
        let seed = config.seed;
        let data = TaskData::new(&spec.spec().data_config(), spec.spec(), mnist, seed)?;
        let mut rng = Rng::new(seed);
        let (model, params) = Model::build_valid(&spec, device.backend(), &mut rng)?;
        let (spec, plan) = spec.into_parts();
        Ok(Trainer {
            device,
            backend_reason,
            spec,
            plan,
            model,
            params,
            optimizer: Optimizer::new(config.optimizer),
            config,
            data,
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
    /// The spec's validated plan: every layer's shapes, parameters and FLOPs, and totals.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    pub fn params(&self) -> &ParamStore {
        &self.params
    }
    pub fn data(&self) -> &TaskData {
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
            return Ok(self.report(f32::NAN, BTreeMap::new(), f32::NAN, f32::NAN));
        }
        let be = self.device.backend();
        let reg = self.config.regularizer();
        let opts = self.config.heads();
        let frozen = self.frozen_params();
        let mut loss_sum = be.zeros(Shape::new(&[1]))?;
        let mut penalty_sum = be.zeros(Shape::new(&[1]))?;
        let mut correct_sum = be.zeros(Shape::new(&[1]))?;
        let mut part_sums: Vec<(&'static str, Tensor)> = Vec::new();
        let mut counted = 0usize;
        for _ in 0..n {
            let examples = self.data.next_train(self.config.batch)?;
            let refs: Vec<&Example> = examples.iter().collect();
            let x = be.upload(self.input_shape(refs.len()), &stack(&refs))?;
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
                let head = heads::loss(&mut tape, fwd.output(), &self.spec, &refs, &opts)?;
                for (name, v) in &head.parts {
                    match part_sums.iter_mut().find(|(n, _)| n == name) {
                        Some((_, acc)) => be.add_assign(acc, tape.value(*v))?,
                        None => {
                            let mut acc = be.zeros(Shape::new(&[1]))?;
                            be.add_assign(&mut acc, tape.value(*v))?;
                            part_sums.push((name, acc));
                        }
                    }
                    be.add_assign(&mut loss_sum, tape.value(*v))?;
                }
                be.add_assign(&mut correct_sum, &head.correct)?;
                counted += head.count;
                (tape.backward_sum(&head.terms)?, fwd.bn)
            };
            Model::update_running_stats(be, &mut self.params, bn)?;
            for &id in &frozen {
                grads[id] = None;
            }
            // regularization: penalty and gradient terms before the update, proximal L1 after
            let proximal = reg.before_update(be, &self.params, &mut grads, &mut penalty_sum)?;
            let c = &self.config;
            self.optimizer
                .step(be, &mut self.params, grads, c.lr, c.momentum, c.weight_decay)?;
            Regularizer::after_update(be, &mut self.params, &proximal, c.lr)?;
            self.step += 1;
        }
        be.flush()?;
        let first = |v: Vec<f32>| v.first().copied().unwrap_or(f32::NAN);
        let loss = first(be.read(&loss_sum).await?) / n as f32;
        let correct = be.read(&correct_sum).await?.first().copied().unwrap_or(0.0);
        let mut parts = BTreeMap::new();
        if part_sums.len() > 1 {
            for (name, acc) in &part_sums {
                parts.insert(name.to_string(), first(be.read(acc).await?) / n as f32);
            }
        }
        // Read only when a regularizer is on: an unregularized run reads back nothing more.
        let penalty = if reg.is_active() {
            first(be.read(&penalty_sum).await?) / n as f32
        } else {
            0.0
        };
        if !(loss.is_finite() && penalty.is_finite()) {
            self.phase = Phase::Diverged;
            self.diverged_at = Some(self.step);
        } else {
            self.phase = Phase::Running;
        }
        let accuracy = if counted == 0 {
            f32::NAN
        } else {
            correct / counted as f32
        };
        Ok(self.report(loss, parts, penalty, accuracy))
    }

    fn report(&self, loss: f32, parts: BTreeMap<String, f32>, penalty: f32, accuracy: f32) -> Report {
        Report {
            step: self.step,
            loss,
            parts,
            penalty,
            accuracy,
            phase: self.phase,
            diverged_at: self.diverged_at,
        }
    }

    /// (N, C, H, W) of a batch of n examples.
    fn input_shape(&self, n: usize) -> Shape {
        let [c, h, w] = self.spec.input;
        Shape::new(&[n, c, h, w])
    }

    /// Store ids of the parameters of the layers named in `config.freeze`.
    fn frozen_params(&self) -> Vec<usize> {
        let layer_of = |name: &str| name.split('.').next().unwrap_or("").to_string();
        (self.params.params.iter().enumerate())
            .filter(|(_, p)| self.config.freeze.contains(&layer_of(&p.name)))
            .map(|(id, _)| id)
            .collect()
    }

    /// Eval-mode forward over examples, in chunks: the summed loss, correct count and count
    /// of the task's head, and each example's decoded prediction (detections scored at least
    /// `score_threshold`) when `decode` is set.
    async fn forward_examples(
        &self,
        examples: &[&Example],
        decode: bool,
        score_threshold: f32,
    ) -> Result<(f32, f32, usize, Vec<Prediction>)> {
        let be = self.device.backend();
        let opts = self.config.heads();
        let (mut loss, mut correct, mut count, mut preds) = (0.0f32, 0.0f32, 0usize, Vec::new());
        for chunk in examples.chunks(EVAL_CHUNK) {
            let x = be.upload(self.input_shape(chunk.len()), &stack(chunk))?;
            let mut tape = Tape::new(be, &self.params);
            let xv = tape.input(x);
            let z = self.model.forward(&mut tape, xv, &mut Pass::eval())?.output();
            let head = heads::loss(&mut tape, z, &self.spec, chunk, &opts)?;
            be.flush()?;
            for (_, v) in &head.parts {
                loss += be.read(tape.value(*v)).await?.first().copied().unwrap_or(f32::NAN) * chunk.len() as f32;
            }
            correct += be.read(&head.correct).await?.first().copied().unwrap_or(0.0);
            count += head.count;
            if decode {
                let out = tape.value(z);
                let dims = out.dims()[1..].to_vec();
                let per: usize = dims.iter().product();
                let values = be.read(out).await?;
                for row in values.chunks(per) {
                    preds.push(heads::decode(
                        &self.spec,
                        &dims,
                        row,
                        score_threshold,
                        self.config.nms_iou,
                    ));
                }
            }
        }
        Ok((loss, correct, count, preds))
    }

    /// Loss, accuracy and the task's metrics on the first `max` validation examples (all
    /// when `max` is 0).
    pub async fn evaluate(&self, max: usize) -> Result<Evaluation> {
        let val: Vec<&Example> = self.data.val.iter().collect();
        self.evaluate_examples(&val, max).await
    }

    /// Loss, accuracy and metrics on the first `max` training examples (what the CLI
    /// reports as final train metrics).
    pub async fn evaluate_train(&self, max: usize) -> Result<Evaluation> {
        let examples = self.data.train_examples(max.max(1))?;
        let refs: Vec<&Example> = examples.iter().collect();
        self.evaluate_examples(&refs, 0).await
    }

    async fn evaluate_examples(&self, examples: &[&Example], max: usize) -> Result<Evaluation> {
        let n = if max == 0 {
            examples.len()
        } else {
            max.min(examples.len())
        };
        let decode = self.spec.task != Task::Classify;
        // mAP ranks every detection, so evaluation keeps all above a low floor (not the
        // drawing threshold)
        let floor = heads::MAP_SCORE_FLOOR;
        let (loss, correct, count, preds) = self.forward_examples(&examples[..n], decode, floor).await?;
        let mut metrics = BTreeMap::new();
        if decode {
            let mut scorer = Scorer::new(&self.spec);
            for (p, e) in preds.into_iter().zip(&examples[..n]) {
                scorer.add(p, e);
            }
            metrics.extend(scorer.metrics());
        } else {
            metrics.insert("accuracy".to_string(), correct / n.max(1) as f32);
        }
        Ok(Evaluation {
            val_loss: loss / n.max(1) as f32,
            val_accuracy: correct / count.max(1) as f32,
            examples: n,
            metrics,
        })
    }

    /// The first `k` validation examples with their truth and the model's decoded prediction
    /// (detections after NMS with the live thresholds), for the page's views.
    pub async fn outputs(&self, k: usize) -> Result<Outputs> {
        let val: Vec<&Example> = self.data.val.iter().take(k).collect();
        let (_, _, _, preds) = self.forward_examples(&val, true, self.config.score_threshold).await?;
        let examples = val
            .iter()
            .zip(preds)
            .map(|(e, pred)| OutputExample {
                image: e.image.clone(),
                truth: OutputTruth {
                    label: e.label,
                    boxes: e.truths.clone(),
                    mask: (!e.mask.is_empty()).then(|| e.mask.clone()),
                },
                pred,
            })
            .collect();
        Ok(Outputs {
            task: self.spec.task,
            input: self.spec.input,
            class_names: self.class_names(),
            examples,
        })
    }

    /// Names of the classes, in label order.
    pub fn class_names(&self) -> Vec<String> {
        let c = self.data.config();
        match c.source {
            Source::Shapes => crate::data::shapes::ShapeKind::ALL
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
            Source::Mnist | Source::Clutter if !c.digits.is_empty() => c.digits.iter().map(|d| d.to_string()).collect(),
            _ => (0..10).map(|d| d.to_string()).collect(),
        }
    }

    /// Predicted class and confidence for `k` validation examples spread over the split
    /// (MNIST classification: the page's digit grid).
    pub async fn predict(&self, k: usize) -> Result<Predictions> {
        if self.data.config().source != Source::Mnist {
            return Err(Error::Config {
                field: "predict",
                problem: "the digit grid needs MNIST data; use outputs() for scenes".into(),
            });
        }
        let val = &self.data.val;
        let k = k.min(val.len());
        let stride = (val.len() / k.max(1)).max(1);
        let picked: Vec<&Example> = (0..k).map(|i| &val[i * stride]).collect();
        let (_, _, _, preds) = self.forward_examples(&picked, true, 0.0).await?;
        Ok(Predictions {
            indices: (0..k).map(|i| self.data.val_ids[i * stride]).collect(),
            labels: picked.iter().map(|e| e.label).collect(),
            preds: preds.iter().map(|p| p.label.unwrap_or(0)).collect(),
            confidence: preds.iter().map(|p| p.score.unwrap_or(0.0)).collect(),
        })
    }

    /// Loads every parameter and buffer of a weights file whose name and shape match this
    /// model, except those of the output layer (which stays freshly initialised, as a new
    /// head for the new task); the rest are listed as skipped. Nothing changes on an error.
    pub fn load_backbone(&mut self, bytes: &[u8]) -> Result<BackboneLoad> {
        let head = self.model.nodes.last().map(|n| n.name.clone()).unwrap_or_default();
        let (loaded, skipped) = crate::nn::io::load_matching(bytes, &mut self.params, self.device.backend(), |name| {
            name.split('.').next() != Some(head.as_str())
        })?;
        Ok(BackboneLoad { loaded, skipped })
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
        let Some(example_data) = val.get(example) else {
            return Err(Error::Config {
                field: "example",
                problem: format!(
                    "{example} is out of range: the validation split has {} examples",
                    val.len()
                ),
            });
        };
        let be = self.device.backend();
        let x = be.upload(self.input_shape(1), &example_data.image)?;
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
            label: example_data.label,
            image: example_data.image.clone(),
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
