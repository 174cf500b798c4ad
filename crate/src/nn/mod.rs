//! Layers, parameters and optimizers. Pure: no browser APIs here.

pub mod export;
pub mod infer;
pub mod io;
pub mod model;
pub mod optim;

pub use infer::{infer, Mode};
pub use model::{Layer, Model};
pub use optim::{Optimizer, OptimizerKind};

use crate::tensor::Tensor;

/// Which group a parameter belongs to (regularizers and the page's views pick by group).
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

/// Persistent state that is not trained by gradients (batch norm's running statistics),
/// named as in PyTorch's state dict (`"3.running_mean"`).
pub struct Buffer {
    pub name: String,
    pub value: Tensor,
}

#[derive(Default)]
pub struct ParamStore {
    pub params: Vec<Param>,
    pub buffers: Vec<Buffer>,
}

impl ParamStore {
    pub fn add(&mut self, name: String, kind: ParamKind, value: Tensor) -> usize {
        self.params.push(Param { name, kind, value });
        self.params.len() - 1
    }

    pub fn add_buffer(&mut self, name: String, value: Tensor) -> usize {
        self.buffers.push(Buffer { name, value });
        self.buffers.len() - 1
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.params.iter().map(|p| p.value.numel()).sum()
    }
}
