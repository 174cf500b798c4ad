//! Optimizers: the update rule lives in the backend (`sgd_step`, `adam_step`); this keeps the
//! per-parameter state and the step count. Switching kind mid-run starts fresh state.
//!
//! AdamW is Adam with decoupled weight decay, as PyTorch's `torch.optim.AdamW`: each step
//! first scales every parameter it updates by (1 - lr·weight_decay), then takes the Adam
//! step. It decays every parameter with a gradient, biases included, as PyTorch does for a
//! single parameter group. `weight_decay` is ignored by SGD and Adam (their coupled decay
//! is the L2 regularizer, nn/regularize.rs).

use super::ParamStore;
use crate::backend::{AdamHyper, Backend, SgdHyper};
use crate::error::Result;
use crate::tensor::Tensor;

pub use crate::spec::train::OptimizerKind;

pub struct Optimizer {
    kind: OptimizerKind,
    /// Per parameter: SGD's velocity, or Adam's and AdamW's (m, v).
    state: Vec<(Tensor, Option<Tensor>)>,
    t: u32,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind) -> Self {
        Optimizer {
            kind,
            state: Vec::new(),
            t: 0,
        }
    }

    pub fn kind(&self) -> OptimizerKind {
        self.kind
    }

    /// Takes effect at the next step; moment buffers start from zero.
    pub fn set_kind(&mut self, kind: OptimizerKind) {
        if kind != self.kind {
            *self = Optimizer::new(kind);
        }
    }

    /// Applies one update to every parameter that has a gradient. `momentum` is SGD's,
    /// `weight_decay` AdamW's; each kind ignores the other's.
    pub fn step(
        &mut self,
        be: &dyn Backend,
        params: &mut ParamStore,
        grads: Vec<Option<Tensor>>,
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> Result<()> {
        if self.state.is_empty() {
            for p in &params.params {
                let first = be.zeros(p.value.shape.clone())?;
                let second = match self.kind {
                    OptimizerKind::Adam | OptimizerKind::AdamW => Some(be.zeros(p.value.shape.clone())?),
                    OptimizerKind::Sgd => None,
                };
                self.state.push((first, second));
            }
        }
        self.t += 1;
        let weight_decay = match self.kind {
            OptimizerKind::AdamW => weight_decay,
            OptimizerKind::Adam | OptimizerKind::Sgd => 0.0,
        };
        for ((p, g), (m, v)) in params.params.iter_mut().zip(grads).zip(self.state.iter_mut()) {
            let Some(g) = g else { continue };
            match (self.kind, v) {
                (OptimizerKind::Adam | OptimizerKind::AdamW, Some(v)) => be.adam_step(
                    &mut p.value,
                    &g,
                    m,
                    v,
                    AdamHyper {
                        lr,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay,
                        t: self.t,
                    },
                )?,
                _ => be.sgd_step(&mut p.value, &g, m, SgdHyper { lr, momentum })?,
            }
        }
        Ok(())
    }
}
