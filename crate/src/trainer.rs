//! The Trainer owns a model, its parameters, the optimizer and the data. `step(n)` runs n
//! mini-batches and returns a small Report; the probes in probe/ (`evaluate`, `outputs`,
//! `layer_view`, ...) read the model without changing it. On the GPU, a call's steps are
//! encoded and submitted together and only the Report's few floats are read back,
//! asynchronously, in one round trip.

use serde::Serialize;

use crate::autograd::Tape;
use crate::backend::{select, Backend, Device};
use crate::data::{Mnist, Rng};
use crate::error::{Error, Result};
use crate::nn::{Model, Optimizer, ParamStore, Pass, Regularizer};
use crate::spec::{ModelSpec, Plan, ValidSpec};
use crate::tasks::data::{stack, Example, TaskData};
use crate::tasks::heads::{self, HeadOptions};
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

/// What `load_backbone` took from a weights file.
#[derive(Clone, Debug, Serialize)]
pub struct BackboneLoad {
    pub loaded: Vec<String>,
    pub skipped: Vec<String>,
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
    /// The device the model lives on (tests read the GPU backend's counters through it).
    pub fn device(&self) -> &Device {
        &self.device
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
                    test_dropout: Default::default(),
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
        // The Report's few floats, in one round trip: loss, correct, then the parts (when
        // there are several) and the penalty (when a regularizer is on).
        let named = part_sums.len() > 1;
        let mut sums = vec![&loss_sum, &correct_sum];
        if named {
            sums.extend(part_sums.iter().map(|(_, acc)| acc));
        }
        if reg.is_active() {
            sums.push(&penalty_sum);
        }
        let read = be.read_many(&sums).await?;
        let first = |i: usize, missing: f32| read.get(i).and_then(|v| v.first()).copied().unwrap_or(missing);
        let loss = first(0, f32::NAN) / n as f32;
        let correct = first(1, 0.0);
        let mut parts = BTreeMap::new();
        if named {
            for (i, (name, _)) in part_sums.iter().enumerate() {
                parts.insert(name.to_string(), first(2 + i, f32::NAN) / n as f32);
            }
        }
        let penalty = if reg.is_active() {
            first(sums.len() - 1, f32::NAN) / n as f32
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

    /// The model's graph (the probes walk its layers).
    pub(crate) fn model(&self) -> &Model {
        &self.model
    }

    /// Loss-head options from the config (the probes' forward uses them too).
    pub(crate) fn head_options(&self) -> HeadOptions {
        self.config.heads()
    }

    /// (N, C, H, W) of a batch of n examples.
    pub(crate) fn input_shape(&self, n: usize) -> Shape {
        let [c, h, w] = self.spec.input;
        Shape::new(&[n, c, h, w])
    }

    /// Store ids of the parameters of the layers named in `config.freeze`.
    pub(crate) fn frozen_params(&self) -> Vec<usize> {
        let layer_of = |name: &str| name.split('.').next().unwrap_or("").to_string();
        (self.params.params.iter().enumerate())
            .filter(|(_, p)| self.config.freeze.contains(&layer_of(&p.name)))
            .map(|(id, _)| id)
            .collect()
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
}
