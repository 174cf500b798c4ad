//! batch_norm on the GPU (shaders/batch_norm.wgsl) on (N,C,H,W) or (N,C). Statistics and
//! gradient sums are per-channel reductions, one workgroup per channel; normalizing and
//! the input gradient are element-wise passes. Nothing is read back: the statistics stay
//! in GPU tensors for the backward pass and the running update.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::{BatchNormGeom, BatchNormRunningGeom};
use crate::backend::BatchNormOut;
use crate::error::{shape_err, Result};
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

/// Threads of a reduction workgroup (`@workgroup_size(256)`), one workgroup per channel.
const REDUCE_THREADS: usize = 256;

pub(super) static FAMILY: Family = Family {
    name: "batch_norm",
    source: include_str!("../../../../shaders/batch_norm.wgsl"),
    kernels: &[
        &BATCH_STATS,
        &RUNNING_STATS,
        &NORMALIZE,
        &BACKWARD_REDUCE,
        &BACKWARD_INPUT,
        &UPDATE_RUNNING,
    ],
};

// Bindings: 1 x, 2 dy, 3 gamma, 4 beta, 5 mean, 6 variance, 7 invstd, 8 out (y or dx),
// 9 mean_out, 10 var_out, 11 invstd_out, 12 dgamma, 13 dbeta, 14 sum_dy_xhat (dgamma read),
// 15 sum_dy (dbeta read), 16 running_mean, 17 running_var.
static BATCH_STATS: Kernel = Kernel {
    family: &FAMILY,
    entry: "batch_norm_batch_stats",
    storage: &[(1, Read), (9, ReadWrite), (10, ReadWrite), (11, ReadWrite)],
};
static RUNNING_STATS: Kernel = Kernel {
    family: &FAMILY,
    entry: "batch_norm_running_stats",
    storage: &[(5, Read), (6, Read), (9, ReadWrite), (10, ReadWrite), (11, ReadWrite)],
};
static NORMALIZE: Kernel = Kernel {
    family: &FAMILY,
    entry: "batch_norm_normalize",
    storage: &[(1, Read), (3, Read), (4, Read), (5, Read), (7, Read), (8, ReadWrite)],
};
static BACKWARD_REDUCE: Kernel = Kernel {
    family: &FAMILY,
    entry: "batch_norm_backward_reduce",
    storage: &[
        (1, Read),
        (2, Read),
        (5, Read),
        (7, Read),
        (12, ReadWrite),
        (13, ReadWrite),
    ],
};
static BACKWARD_INPUT: Kernel = Kernel {
    family: &FAMILY,
    entry: "batch_norm_backward_input",
    storage: &[
        (1, Read),
        (2, Read),
        (3, Read),
        (5, Read),
        (7, Read),
        (14, Read),
        (15, Read),
        (8, ReadWrite),
    ],
};
static UPDATE_RUNNING: Kernel = Kernel {
    family: &FAMILY,
    entry: "batch_norm_update_running",
    storage: &[(5, Read), (6, Read), (16, ReadWrite), (17, ReadWrite)],
};

/// Mirrors `BatchNormParams` in batch_norm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    c: u32,
    hw: u32,
    count: u32,
    eps: f32,
    momentum: f32,
    unbiased: f32,
    train: u32,
}

/// Sizes fit in u32 (see `GpuBackend::storage`); `count` is the dispatch's thread count.
fn params(g: BatchNormGeom, count: usize) -> Params {
    Params {
        n: g.n as u32,
        c: g.c as u32,
        hw: g.hw as u32,
        count: count as u32,
        ..Params::default()
    }
}

/// Reductions run one workgroup per channel along x, so C may not pass the device's limit.
fn channel_groups(gpu: &GpuBackend, op: &'static str, x: &Tensor, c: usize) -> Result<[u32; 3]> {
    let max = gpu.rec.max_groups() as usize;
    if c > max {
        return Err(shape_err(
            op,
            format!("{c} channels exceed the device's {max} workgroups per dispatch"),
            &[x.dims()],
        ));
    }
    Ok([c as u32, 1, 1])
}

/// Three new (C) tensors for mean, var and invstd.
fn stats_outputs(gpu: &GpuBackend, op: &'static str, c: usize) -> Result<[Tensor; 3]> {
    Ok([gpu.output(op, &[c])?, gpu.output(op, &[c])?, gpu.output(op, &[c])?])
}

/// y = gamma·(x - mean)·invstd + beta, one thread per value.
#[allow(clippy::too_many_arguments)]
fn normalize(
    gpu: &GpuBackend,
    op: &'static str,
    g: BatchNormGeom,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<Tensor> {
    let y = gpu.output(op, x.dims())?;
    let buffers = [
        gpu.tensor_buffer(op, x)?,
        gpu.tensor_buffer(op, gamma)?,
        gpu.tensor_buffer(op, beta)?,
        gpu.tensor_buffer(op, mean)?,
        gpu.tensor_buffer(op, invstd)?,
        gpu.tensor_buffer(op, &y)?,
    ];
    gpu.dispatch(&NORMALIZE, &params(g, y.numel()), &buffers, y.numel())?;
    Ok(y)
}

/// x (N,C,H,W) or (N,C), gamma (C), beta (C) -> y and the batch's mean, biased var, invstd
pub(super) fn train(gpu: &GpuBackend, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<BatchNormOut> {
    const OP: &str = "batch_norm_train";
    let g = BatchNormGeom::train(OP, &x.shape, &[&gamma.shape, &beta.shape])?;
    let groups = channel_groups(gpu, OP, x, g.c)?;
    let [mean, var, invstd] = stats_outputs(gpu, OP, g.c)?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, &mean)?,
        gpu.tensor_buffer(OP, &var)?,
        gpu.tensor_buffer(OP, &invstd)?,
    ];
    let p = Params { eps, ..params(g, g.c) };
    gpu.dispatch_groups(&BATCH_STATS, &p, &buffers, groups, g.c * REDUCE_THREADS)?;
    let y = normalize(gpu, OP, g, x, gamma, beta, &mean, &invstd)?;
    Ok(BatchNormOut { y, mean, var, invstd })
}

/// x (N,C,H,W) or (N,C), gamma, beta, running_mean, running_var (C) -> y and copies of the
/// running statistics with their invstd
pub(super) fn eval(
    gpu: &GpuBackend,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f32,
) -> Result<BatchNormOut> {
    const OP: &str = "batch_norm_eval";
    let per_channel = [&gamma.shape, &beta.shape, &running_mean.shape, &running_var.shape];
    let g = BatchNormGeom::new(OP, &x.shape, &per_channel)?;
    let [mean, var, invstd] = stats_outputs(gpu, OP, g.c)?;
    let buffers = [
        gpu.tensor_buffer(OP, running_mean)?,
        gpu.tensor_buffer(OP, running_var)?,
        gpu.tensor_buffer(OP, &mean)?,
        gpu.tensor_buffer(OP, &var)?,
        gpu.tensor_buffer(OP, &invstd)?,
    ];
    let p = Params { eps, ..params(g, g.c) };
    gpu.dispatch(&RUNNING_STATS, &p, &buffers, g.c)?;
    let y = normalize(gpu, OP, g, x, gamma, beta, &mean, &invstd)?;
    Ok(BatchNormOut { y, mean, var, invstd })
}

/// dy, x (N,C,H,W) or (N,C), gamma, mean, invstd (C) -> (dx, dgamma, dbeta); `train` says
/// whether the statistics were the batch's own (so dx flows through them too).
pub(super) fn backward(
    gpu: &GpuBackend,
    dy: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    train: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = if train {
        "batch_norm_train_backward"
    } else {
        "batch_norm_eval_backward"
    };
    let g = BatchNormGeom::backward(op, &dy.shape, &x.shape, &[&gamma.shape, &mean.shape, &invstd.shape])?;
    let groups = channel_groups(gpu, op, x, g.c)?;
    let dgamma = gpu.output(op, &[g.c])?;
    let dbeta = gpu.output(op, &[g.c])?;
    let buffers = [
        gpu.tensor_buffer(op, x)?,
        gpu.tensor_buffer(op, dy)?,
        gpu.tensor_buffer(op, mean)?,
        gpu.tensor_buffer(op, invstd)?,
        gpu.tensor_buffer(op, &dgamma)?,
        gpu.tensor_buffer(op, &dbeta)?,
    ];
    gpu.dispatch_groups(
        &BACKWARD_REDUCE,
        &params(g, g.c),
        &buffers,
        groups,
        g.c * REDUCE_THREADS,
    )?;
    let dx = gpu.output(op, x.dims())?;
    let buffers = [
        gpu.tensor_buffer(op, x)?,
        gpu.tensor_buffer(op, dy)?,
        gpu.tensor_buffer(op, gamma)?,
        gpu.tensor_buffer(op, mean)?,
        gpu.tensor_buffer(op, invstd)?,
        gpu.tensor_buffer(op, &dgamma)?,
        gpu.tensor_buffer(op, &dbeta)?,
        gpu.tensor_buffer(op, &dx)?,
    ];
    let p = Params {
        train: train as u32,
        ..params(g, dx.numel())
    };
    gpu.dispatch(&BACKWARD_INPUT, &p, &buffers, dx.numel())?;
    Ok((dx, dgamma, dbeta))
}

/// running_mean, running_var updated in place from the batch's mean and biased var (all
/// (C)), `count` values per channel behind them
pub(super) fn update_running(
    gpu: &GpuBackend,
    running_mean: &mut Tensor,
    running_var: &mut Tensor,
    mean: &Tensor,
    var: &Tensor,
    count: usize,
    momentum: f32,
) -> Result<()> {
    const OP: &str = "batch_norm_update_running";
    let stats = [&running_mean.shape, &running_var.shape, &mean.shape, &var.shape];
    let g = BatchNormRunningGeom::new(OP, &stats, count)?;
    let buffers = [
        gpu.tensor_buffer(OP, mean)?,
        gpu.tensor_buffer(OP, var)?,
        gpu.tensor_buffer(OP, running_mean)?,
        gpu.tensor_buffer(OP, running_var)?,
    ];
    let p = Params {
        count: g.c as u32,
        momentum,
        unbiased: g.unbiased(),
        ..Params::default()
    };
    gpu.dispatch(&UPDATE_RUNNING, &p, &buffers, g.c)
}
