//! Layers, parameters and optimizers. Pure: no browser APIs here.

pub mod model;
pub mod optim;
pub mod regularize;

pub use model::{Layer, Model};
pub use optim::{Optimizer, OptimizerKind};
pub use regularize::{L1Mode, RegTarget, Regularizer};

use crate::tensor::Tensor;

/// Which group a parameter belongs to (regularizers and the page's views pick by group;
/// `regularize::group` maps kinds to the groups regularizers know, new kinds to "other").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    ConvWeight,
    LinearWeight,
    Bias,
}

/// A persistent leaf: named as PyTorch would name it in an `nn.Sequential`
/// (`"0.weight"`, `"3.bias"`), in PyTorch's layout (OIHW kernels, (out, in) matrices).
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub value: Tensor,
}

#[derive(Default)]
pub struct ParamStore {
    pub params: Vec<Param>,
}

impl ParamStore {
    pub fn add(&mut self, name: String, kind: ParamKind, value: Tensor) -> usize {
        self.params.push(Param { name, kind, value });
        self.params.len() - 1
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.params.iter().map(|p| p.value.numel()).sum()
    }
}
