//! Softmax cross-entropy (shaders/loss.wgsl): one thread per row writes dlogits and the
//! row's (loss, correct) pair; one workgroup reduces the pairs to the mean loss and the
//! correct count, so the report needs no host-side reduction.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Kernel, Shader};
use super::GpuBackend;
use crate::backend::{CrossEntropy, LossGrad, PointLoss};
use crate::error::{shape_err, Result};
use crate::tensor::{Indices, Tensor};

use Access::{Read, ReadWrite};

/// Threads of the reduction's single workgroup (`@workgroup_size(256)`).
const REDUCE_THREADS: usize = 256;

// Bindings: 1 logits, 2 labels, 3 dlogits, 4 per-row stats, 5 loss, 6 correct.
const ROWS: Kernel = Kernel {
    shader: Shader::Loss,
    entry: "loss_softmax_cross_entropy",
    storage: &[(1, Read), (2, Read), (3, ReadWrite), (4, ReadWrite)],
};
const REDUCE: Kernel = Kernel {
    shader: Shader::Loss,
    entry: "loss_reduce_mean",
    storage: &[(4, ReadWrite), (5, ReadWrite), (6, ReadWrite)],
};

/// Every kernel of this family, for `GpuBackend::warm_up`.
pub(super) const KERNELS: &[&Kernel] = &[&ROWS, &REDUCE];

/// Mirrors `LossParams` in loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    k: u32,
    _pad: [u32; 2],
}

/// logits (N,K), labels (N) -> loss (1), dlogits (N,K), correct (1)
pub(super) fn softmax_cross_entropy(gpu: &GpuBackend, logits: &Tensor, labels: &Indices) -> Result<CrossEntropy> {
    const OP: &str = "softmax_cross_entropy";
    let (n, k) = logits.shape.matrix(OP)?;
    if n == 0 || k == 0 {
        return Err(shape_err(OP, "needs at least one row and one class", &[logits.dims()]));
    }
    if labels.dims() != [n] {
        return Err(shape_err(OP, "need one label per row", &[logits.dims(), labels.dims()]));
    }
    let dlogits = gpu.output(OP, &[n, k])?;
    let rows = gpu.output(OP, &[n, 2])?;
    let loss = gpu.output(OP, &[1])?;
    let correct = gpu.output(OP, &[1])?;
    let params = Params {
        n: n as u32, // fits: see `GpuBackend::storage`
        k: k as u32,
        _pad: [0; 2],
    };
    let buffers = [
        gpu.tensor_buffer(OP, logits)?,
        gpu.indices_buffer(OP, labels)?,
        gpu.tensor_buffer(OP, &dlogits)?,
        gpu.tensor_buffer(OP, &rows)?,
    ];
    gpu.dispatch(&ROWS, &params, &buffers, n)?;
    let buffers = [
        gpu.tensor_buffer(OP, &rows)?,
        gpu.tensor_buffer(OP, &loss)?,
        gpu.tensor_buffer(OP, &correct)?,
    ];
    gpu.dispatch_groups(&REDUCE, &params, &buffers, [1, 1, 1], REDUCE_THREADS)?;
    Ok(CrossEntropy { loss, dlogits, correct })
}

pub(super) fn point_loss(
    _gpu: &GpuBackend,
    pred: &Tensor,
    _target: &Tensor,
    _weight: &Tensor,
    _kind: PointLoss,
    _scale: f32,
) -> Result<LossGrad> {
    Err(shape_err("point_loss", "not on the GPU yet", &[pred.dims()]))
}

pub(super) fn softmax_ce_map(
    _gpu: &GpuBackend,
    logits: &Tensor,
    _labels: &Indices,
    _weight: &Tensor,
    _scale: f32,
) -> Result<CrossEntropy> {
    Err(shape_err("softmax_ce_map", "not on the GPU yet", &[logits.dims()]))
}

pub(super) fn softmax_dice(_gpu: &GpuBackend, logits: &Tensor, _labels: &Indices, _scale: f32) -> Result<LossGrad> {
    Err(shape_err("softmax_dice", "not on the GPU yet", &[logits.dims()]))
}
