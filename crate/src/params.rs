//! Parameters and buffers: the persistent leaves of the tape. The tape (autograd.rs) reads
//! them, layers (nn/) create them, optimizers and regularizers update them, probes read
//! them; none of those needs another to name them.

use crate::tensor::Tensor;

/// Which group a parameter belongs to (regularizers and the page's views pick by group;
/// `nn::regularize::group` maps kinds to the groups regularizers know, new kinds to "other").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    ConvWeight,
    LinearWeight,
    Bias,
    /// Batch normalization's scale gamma (PyTorch's `weight`), one per channel, init 1.
    BnWeight,
    /// Batch normalization's shift beta (PyTorch's `bias`), one per channel, init 0.
    BnBias,
}

/// A persistent leaf: named as PyTorch would name it in an `nn.Sequential`
/// (`"0.weight"`, `"3.bias"`), in PyTorch's layout (OIHW kernels, (out, in) matrices).
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub value: Tensor,
}

/// Persistent state that is not trained by gradients: batch normalization's running
/// statistics, named as PyTorch names them (`"1.running_mean"`, `"1.running_var"`).
pub struct Buffer {
    pub name: String,
    pub value: Tensor,
}

#[derive(Default)]
pub struct ParamStore {
    pub params: Vec<Param>,
    /// Non-trainable buffers; no gradient or optimizer state belongs to them.
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

    /// Total number of scalar parameters (buffers excluded, as in PyTorch's `parameters()`).
    pub fn count(&self) -> usize {
        self.params.iter().map(|p| p.value.numel()).sum()
    }
}
