//! loss on the GPU (shaders/loss.wgsl): a pass with one thread per row, element or pixel writes the
//! gradient and per-thread partial values; one workgroup (one per class for Dice) reduces
//! them, so the loss, the correct count and the gradient never leave the GPU.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::{ClassMapGeom, PointLossGeom};
use crate::backend::{CrossEntropy, LossGrad, PointLoss};
use crate::error::{shape_err, Result};
use crate::tensor::{Indices, Tensor};

use Access::{Read, ReadWrite};

/// Threads of a reduction's workgroup (`@workgroup_size(256)`).
const REDUCE_THREADS: usize = 256;

pub(super) static FAMILY: Family = Family {
    name: "loss",
    source: include_str!("../../../../shaders/loss.wgsl"),
    kernels: &[
        &ROWS,
        &REDUCE_PAIRS,
        &POINT,
        &REDUCE_SUM,
        &CE_MAP,
        &DICE_SOFTMAX,
        &DICE_SUMS,
        &DICE_GRAD,
    ],
};

// Bindings: 1 logits, 2 labels, 3 dlogits, 4 (loss, correct) pairs, 5 loss, 6 correct,
// 7 pred, 8 target, 9 weight, 10 dpred, 11 per-element terms, 12 Dice class sums.
static ROWS: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_softmax_cross_entropy",
    storage: &[(1, Read), (2, Read), (3, ReadWrite), (4, ReadWrite)],
};
static REDUCE_PAIRS: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_reduce_pairs",
    storage: &[(4, ReadWrite), (5, ReadWrite), (6, ReadWrite)],
};
static POINT: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_point",
    storage: &[(7, Read), (8, Read), (9, Read), (10, ReadWrite), (11, ReadWrite)],
};
static REDUCE_SUM: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_reduce_sum",
    storage: &[(11, ReadWrite), (5, ReadWrite)],
};
static CE_MAP: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_ce_map",
    storage: &[(1, Read), (2, Read), (9, Read), (3, ReadWrite), (4, ReadWrite)],
};
static DICE_SOFTMAX: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_dice_softmax",
    storage: &[(1, Read), (3, ReadWrite)],
};
static DICE_SUMS: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_dice_sums",
    storage: &[(2, Read), (3, ReadWrite), (12, ReadWrite)],
};
static DICE_GRAD: Kernel = Kernel {
    family: &FAMILY,
    entry: "loss_dice_grad",
    storage: &[(2, Read), (3, ReadWrite), (12, ReadWrite), (5, ReadWrite)],
};

/// Mirrors `LossParams` in loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    k: u32,
    hw: u32,
    kind: u32,
    scale: f32,
    beta: f32,
    divisor: f32,
    _pad: u32,
}

/// The single reduction workgroup.
const ONE_GROUP: [u32; 3] = [1, 1, 1];

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
        scale: 1.0,
        divisor: n as f32,
        ..Params::default()
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
    gpu.dispatch_groups(&REDUCE_PAIRS, &params, &buffers, ONE_GROUP, REDUCE_THREADS)?;
    Ok(CrossEntropy { loss, dlogits, correct })
}

/// pred, target, weight (same shape) -> loss (1) = scale·Σ w·ℓ, dpred (like pred)
pub(super) fn point_loss(
    gpu: &GpuBackend,
    pred: &Tensor,
    target: &Tensor,
    weight: &Tensor,
    kind: PointLoss,
    scale: f32,
) -> Result<LossGrad> {
    const OP: &str = "point_loss";
    let n = PointLossGeom::new(OP, &pred.shape, &target.shape, &weight.shape, kind, scale)?.count;
    let dpred = gpu.output(OP, pred.dims())?;
    let parts = gpu.output(OP, &[n])?;
    let loss = gpu.output(OP, &[1])?;
    let (kind, beta) = match kind {
        PointLoss::SmoothL1 { beta } => (0, beta),
        PointLoss::BceWithLogits => (1, 0.0),
        PointLoss::Mse => (2, 0.0),
    };
    let params = Params {
        n: n as u32,
        kind,
        scale,
        beta,
        ..Params::default()
    };
    let buffers = [
        gpu.tensor_buffer(OP, pred)?,
        gpu.tensor_buffer(OP, target)?,
        gpu.tensor_buffer(OP, weight)?,
        gpu.tensor_buffer(OP, &dpred)?,
        gpu.tensor_buffer(OP, &parts)?,
    ];
    gpu.dispatch(&POINT, &params, &buffers, n)?;
    let buffers = [gpu.tensor_buffer(OP, &parts)?, gpu.tensor_buffer(OP, &loss)?];
    // always dispatched, so that an empty pred gives loss 0
    gpu.dispatch_groups(&REDUCE_SUM, &params, &buffers, ONE_GROUP, REDUCE_THREADS)?;
    Ok(LossGrad { loss, dpred })
}

/// logits (N,K,H,W), labels (N,H,W), weight (N,H,W) -> loss (1), dlogits, correct (1);
/// also (N,K) with (N)
pub(super) fn softmax_ce_map(
    gpu: &GpuBackend,
    logits: &Tensor,
    labels: &Indices,
    weight: &Tensor,
    scale: f32,
) -> Result<CrossEntropy> {
    const OP: &str = "softmax_ce_map";
    let ClassMapGeom { n, k, hw } = ClassMapGeom::new(OP, &logits.shape, &labels.shape, Some(&weight.shape))?;
    let pixels = n * hw;
    let dlogits = gpu.output(OP, logits.dims())?;
    let rows = gpu.output(OP, &[pixels, 2])?;
    let loss = gpu.output(OP, &[1])?;
    let correct = gpu.output(OP, &[1])?;
    let params = Params {
        n: pixels as u32,
        k: k as u32,
        hw: hw as u32,
        scale,
        divisor: 1.0,
        ..Params::default()
    };
    let buffers = [
        gpu.tensor_buffer(OP, logits)?,
        gpu.indices_buffer(OP, labels)?,
        gpu.tensor_buffer(OP, weight)?,
        gpu.tensor_buffer(OP, &dlogits)?,
        gpu.tensor_buffer(OP, &rows)?,
    ];
    gpu.dispatch(&CE_MAP, &params, &buffers, pixels)?;
    let buffers = [
        gpu.tensor_buffer(OP, &rows)?,
        gpu.tensor_buffer(OP, &loss)?,
        gpu.tensor_buffer(OP, &correct)?,
    ];
    gpu.dispatch_groups(&REDUCE_PAIRS, &params, &buffers, ONE_GROUP, REDUCE_THREADS)?;
    Ok(CrossEntropy { loss, dlogits, correct })
}

/// logits (N,K,H,W), labels (N,H,W) -> soft Dice loss (1) and dlogits; also (N,K) with (N)
pub(super) fn softmax_dice(gpu: &GpuBackend, logits: &Tensor, labels: &Indices, scale: f32) -> Result<LossGrad> {
    const OP: &str = "softmax_dice";
    let ClassMapGeom { n, k, hw } = ClassMapGeom::new(OP, &logits.shape, &labels.shape, None)?;
    if k > gpu.rec.max_groups() as usize {
        return Err(shape_err(
            OP,
            format!(
                "{k} classes exceed the device's {} workgroups per dispatch",
                gpu.rec.max_groups()
            ),
            &[logits.dims()],
        ));
    }
    let pixels = n * hw;
    let dlogits = gpu.output(OP, logits.dims())?;
    let sums = gpu.output(OP, &[k, 3])?; // I, P, Y per class
    let loss = gpu.output(OP, &[1])?;
    let params = Params {
        n: pixels as u32,
        k: k as u32,
        hw: hw as u32,
        scale,
        ..Params::default()
    };
    let (z, y) = (gpu.tensor_buffer(OP, logits)?, gpu.indices_buffer(OP, labels)?);
    let (dz, s) = (gpu.tensor_buffer(OP, &dlogits)?, gpu.tensor_buffer(OP, &sums)?);
    gpu.dispatch(&DICE_SOFTMAX, &params, &[z, dz], pixels)?;
    gpu.dispatch_groups(&DICE_SUMS, &params, &[y, dz, s], [k as u32, 1, 1], REDUCE_THREADS)?;
    // the gradient pass's first thread writes the loss, so it runs for an empty batch too
    let l = gpu.tensor_buffer(OP, &loss)?;
    gpu.dispatch(&DICE_GRAD, &params, &[y, dz, s, l], pixels.max(1))?;
    Ok(LossGrad { loss, dpred: dlogits })
}
