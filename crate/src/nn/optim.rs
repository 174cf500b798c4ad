//! Optimizers: the update rule lives in the backend (`sgd_step`, `adam_step`); this keeps the
//! per-parameter state and the step count. Switching kind mid-run starts fresh state.

use serde::{Deserialize, Serialize};

use super::ParamStore;
use crate::backend::{AdamHyper, Backend, SgdHyper};
use crate::error::Result;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Adam,
}

pub struct Optimizer {
    kind: OptimizerKind,
    /// Per parameter: SGD's velocity, or Adam's (m, v).
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

    /// Applies one update to every parameter that has a gradient.
    pub fn step(
        &mut self,
        be: &dyn Backend,
        params: &mut ParamStore,
        grads: Vec<Option<Tensor>>,
        lr: f32,
        momentum: f32,
    ) -> Result<()> {
        if self.state.is_empty() {
            for p in &params.params {
                let first = be.zeros(p.value.shape.clone())?;
                let second = match self.kind {
                    OptimizerKind::Adam => Some(be.zeros(p.value.shape.clone())?),
                    OptimizerKind::Sgd => None,
                };
                self.state.push((first, second));
            }
        }
        self.t += 1;
        for ((p, g), (m, v)) in params.params.iter_mut().zip(grads).zip(self.state.iter_mut()) {
            let Some(g) = g else { continue };
            match (self.kind, v) {
                (OptimizerKind::Adam, Some(v)) => be.adam_step(
                    &mut p.value,
                    &g,
                    m,
                    v,
                    AdamHyper {
                        lr,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        t: self.t,
                    },
                )?,
                _ => be.sgd_step(&mut p.value, &g, m, SgdHyper { lr, momentum })?,
            }
        }
        Ok(())
    }
}
