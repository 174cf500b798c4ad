//! Optimizer steps (shaders/optim.wgsl), in place, one thread per parameter.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Kernel, Shader};
use super::GpuBackend;
use crate::backend::{AdamHyper, SgdHyper};
use crate::error::{shape_err, Error, Result};
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

// Bindings: 1 grad, 2 param, 3 m (SGD: velocity), 4 v.
const SGD: Kernel = Kernel {
    shader: Shader::Optim,
    entry: "optim_sgd",
    storage: &[(1, Read), (2, ReadWrite), (3, ReadWrite)],
};
const ADAM: Kernel = Kernel {
    shader: Shader::Optim,
    entry: "optim_adam",
    storage: &[(1, Read), (2, ReadWrite), (3, ReadWrite), (4, ReadWrite)],
};

/// Every kernel of this family, for `GpuBackend::warm_up`.
pub(super) const KERNELS: &[&Kernel] = &[&SGD, &ADAM];

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

/// The CPU backend's check: each of `others` has p's shape.
fn same_shapes(op: &'static str, p: &Tensor, others: &[&Tensor]) -> Result<()> {
    match others.iter().find(|t| t.dims() != p.dims()) {
        Some(t) => Err(shape_err(op, "shapes differ", &[p.dims(), t.dims()])),
        None => Ok(()),
    }
}

/// p, g, v same shape: v = momentum·v + g; p -= lr·v
pub(super) fn sgd(gpu: &GpuBackend, p: &mut Tensor, g: &Tensor, v: &mut Tensor, h: SgdHyper) -> Result<()> {
    const OP: &str = "sgd_step";
    same_shapes(OP, p, &[g, v])?;
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
    same_shapes(OP, p, &[g, m, v])?;
    if h.t == 0 {
        return Err(Error::Config {
            field: "adam.t",
            problem: "step count starts at 1".into(),
        });
    }
    let t = h.t as i32;
    let params = Params {
        count: p.numel() as u32, // fits: see `GpuBackend::storage`
        lr: h.lr,
        momentum: 0.0,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        bc1: 1.0 - h.beta1.powi(t),
        bc2: 1.0 - h.beta2.powi(t),
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
