//! optim on the GPU (shaders/optim.wgsl): optimizer steps, in place, one thread per
//! parameter.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::check_same_shapes;
use crate::backend::{AdamHyper, SgdHyper};
use crate::error::Result;
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

pub(super) static FAMILY: Family = Family {
    name: "optim",
    source: include_str!("../../../../shaders/optim.wgsl"),
    kernels: &[&SGD, &ADAM],
};

// Bindings: 1 grad, 2 param, 3 m (SGD: velocity), 4 v.
static SGD: Kernel = Kernel {
    family: &FAMILY,
    entry: "optim_sgd",
    storage: &[(1, Read), (2, ReadWrite), (3, ReadWrite)],
};
static ADAM: Kernel = Kernel {
    family: &FAMILY,
    entry: "optim_adam",
    storage: &[(1, Read), (2, ReadWrite), (3, ReadWrite), (4, ReadWrite)],
};

/// Mirrors `OptimParams` in optim.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    lr: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bc1: f32,
    bc2: f32,
    /// AdamW's decoupled decay (0 for SGD and plain Adam).
    weight_decay: f32,
    _pad: [u32; 3],
}

/// p, g, v same shape: v = momentum·v + g; p -= lr·v
pub(super) fn sgd(gpu: &GpuBackend, p: &mut Tensor, g: &Tensor, v: &mut Tensor, h: SgdHyper) -> Result<()> {
    const OP: &str = "sgd_step";
    check_same_shapes(OP, &p.shape, &[&g.shape, &v.shape])?;
    let params = Params {
        count: p.numel() as u32, // fits: see `GpuBackend::storage`
        lr: h.lr,
        momentum: h.momentum,
        beta1: 0.0,
        beta2: 0.0,
        eps: 0.0,
        bc1: 1.0,
        bc2: 1.0,
        weight_decay: 0.0,
        _pad: [0; 3],
    };
    let buffers = [
        gpu.tensor_buffer(OP, g)?,
        gpu.tensor_buffer(OP, p)?,
        gpu.tensor_buffer(OP, v)?,
    ];
    gpu.dispatch(&SGD, &params, &buffers, p.numel())
}

/// p, g, m, v same shape; Adam (AdamW when h.weight_decay > 0) with bias corrections 1 - β^t
/// computed here (t ≥ 1)
pub(super) fn adam(
    gpu: &GpuBackend,
    p: &mut Tensor,
    g: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    h: AdamHyper,
) -> Result<()> {
    const OP: &str = "adam_step";
    check_same_shapes(OP, &p.shape, &[&g.shape, &m.shape, &v.shape])?;
    let (bc1, bc2) = h.bias_corrections()?;
    let params = Params {
        count: p.numel() as u32, // fits: see `GpuBackend::storage`
        lr: h.lr,
        momentum: 0.0,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        bc1,
        bc2,
        weight_decay: h.weight_decay,
        _pad: [0; 3],
    };
    let buffers = [
        gpu.tensor_buffer(OP, g)?,
        gpu.tensor_buffer(OP, p)?,
        gpu.tensor_buffer(OP, m)?,
        gpu.tensor_buffer(OP, v)?,
    ];
    gpu.dispatch(&ADAM, &params, &buffers, p.numel())
}
