//! L1 and L2 regularization: which parameters a term applies to, and where it acts in a
//! training step. The arithmetic lives in the backend (`l1_l2_penalty`, `l1_l2_grad`,
//! `soft_threshold`); this file only picks parameters and ops.
//!
//! Semantics (kept stable: the page, the CLI and the tests rely on them):
//! - The penalty is l1·Σ|w| + (l2/2)·Σw² over the chosen parameters, added to the MEAN data
//!   loss of the mini-batch, so its strength does not depend on the batch size. The trainer
//!   reports it separately (`Report::penalty`); `Report::loss` stays the data loss.
//! - Its gradient is l1·sign(w) + l2·w, with sign(0) = 0 (torch.sign). l2·w is exactly what
//!   PyTorch's `SGD(weight_decay=l2)` and `Adam(weight_decay=l2)` add to the gradient, so
//!   L2 here is PyTorch's coupled weight decay. (AdamW's decoupled decay is the optimizer's
//!   business: `OptimizerKind::AdamW` in nn/optim.rs.)
//! - L1 mode `penalty`: l1·sign(w) is added to the gradient (subgradient descent; weights
//!   hover around zero but rarely land on it). Mode `proximal`: no gradient term; after the
//!   optimizer update, w ← sign(w)·max(|w| - lr·l1, 0), the proximal step of lr·l1·|w|
//!   (ISTA), so weights reach exactly zero. The threshold is lr·l1 whatever the optimizer;
//!   with plain SGD (no momentum) this is exact proximal gradient descent.
//! - The penalty reported for a step is computed from the weights the step's forward pass
//!   used (before the update), in both modes.
//! - Targets (`RegTarget`): `weights` (conv kernels and linear weights, the default),
//!   `conv`, `linear`, `first_conv` (the first conv kernel in the parameter store, for the
//!   question "what does L1 do to first-layer filters?") and `all` (also biases and every
//!   other parameter kind, such as batch norm's scale and shift).
//! - Parameters without a gradient (frozen) get neither a gradient term nor a proximal step,
//!   but still count in the penalty when targeted.

use super::{ParamKind, ParamStore};
use crate::backend::Backend;
use crate::error::Result;
use crate::spec::TrainConfig;
use crate::tensor::Tensor;

pub use crate::spec::train::{L1Mode, RegTarget};

/// Parameter groups as regularizers see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    ConvWeight,
    LinearWeight,
    /// Biases and every other kind (batch norm's scale and shift, ...).
    Other,
}

/// The group of a parameter kind. Kinds added later fall in `Other`, like biases.
pub fn group(kind: ParamKind) -> Group {
    match kind {
        ParamKind::ConvWeight => Group::ConvWeight,
        ParamKind::LinearWeight => Group::LinearWeight,
        _ => Group::Other,
    }
}

impl RegTarget {
    /// Whether a parameter of `kind` is targeted; `first_conv` says whether it is the first
    /// conv kernel of the store.
    pub fn selects(self, kind: ParamKind, first_conv: bool) -> bool {
        match (self, group(kind)) {
            (RegTarget::All, _) => true,
            (RegTarget::Weights, Group::ConvWeight | Group::LinearWeight) => true,
            (RegTarget::Conv, Group::ConvWeight) => true,
            (RegTarget::Linear, Group::LinearWeight) => true,
            (RegTarget::FirstConv, _) => first_conv,
            _ => false,
        }
    }
}

/// Index of the first conv kernel in the store, if any.
pub fn first_conv(params: &ParamStore) -> Option<usize> {
    params.params.iter().position(|p| group(p.kind) == Group::ConvWeight)
}

/// The regularization of one training step (taken from the `TrainConfig` at each step, so
/// changes apply at the next step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularizer {
    pub l1: f32,
    pub l2: f32,
    pub l1_target: RegTarget,
    pub l2_target: RegTarget,
    pub l1_mode: L1Mode,
}

impl Regularizer {
    /// Whether any term is switched on.
    pub fn is_active(&self) -> bool {
        self.l1 > 0.0 || self.l2 > 0.0
    }

    /// The (l1, l2) strengths that apply to every parameter of the store, in store order.
    pub fn strengths(&self, params: &ParamStore) -> Vec<(f32, f32)> {
        let first = first_conv(params);
        params
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let is_first = first == Some(i);
                let l1 = if self.l1_target.selects(p.kind, is_first) {
                    self.l1
                } else {
                    0.0
                };
                let l2 = if self.l2_target.selects(p.kind, is_first) {
                    self.l2
                } else {
                    0.0
                };
                (l1, l2)
            })
            .collect()
    }

    /// Between backward and the optimizer: adds the penalty of the current weights to `acc`
    /// (shape [1], on the device) and the gradient terms to `grads` (one per parameter, in
    /// store order). Returns the proximal steps that `after_update` must take:
    /// (parameter index, l1).
    pub fn before_update(
        &self,
        be: &dyn Backend,
        params: &ParamStore,
        grads: &mut [Option<Tensor>],
        acc: &mut Tensor,
    ) -> Result<Vec<(usize, f32)>> {
        let mut proximal = Vec::new();
        if !self.is_active() {
            return Ok(proximal);
        }
        for (i, ((l1, l2), p)) in self.strengths(params).into_iter().zip(&params.params).enumerate() {
            if l1 == 0.0 && l2 == 0.0 {
                continue;
            }
            be.l1_l2_penalty(&p.value, l1, l2, acc)?;
            let Some(Some(g)) = grads.get_mut(i) else {
                continue; // frozen: no gradient, no update
            };
            let l1_grad = match self.l1_mode {
                L1Mode::Penalty => l1,
                L1Mode::Proximal => 0.0,
            };
            if l1_grad != 0.0 || l2 != 0.0 {
                be.l1_l2_grad(g, &p.value, l1_grad, l2)?;
            }
            if self.l1_mode == L1Mode::Proximal && l1 > 0.0 {
                proximal.push((i, l1));
            }
        }
        Ok(proximal)
    }

    /// After the optimizer: w ← sign(w)·max(|w| - lr·l1, 0) for each step `before_update`
    /// returned.
    pub fn after_update(be: &dyn Backend, params: &mut ParamStore, proximal: &[(usize, f32)], lr: f32) -> Result<()> {
        for &(i, l1) in proximal {
            if let Some(p) = params.params.get_mut(i) {
                be.soft_threshold(&mut p.value, lr * l1)?;
            }
        }
        Ok(())
    }
}

impl TrainConfig {
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
