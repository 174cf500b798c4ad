//! conv2d on the GPU (shaders/conv2d.wgsl): direct convolution, one thread per output
//! element; the gradients gather, so no two threads write one element. The weight and
//! bias gradients sum over the batch: they run one thread per (batch slice, weight) and
//! then add the slices, so that a small first-layer kernel still fills the GPU.
//!
//! The transposed convolution is conv2d's adjoint, so it reuses these kernels with the
//! roles swapped, plus `conv2d_add_bias`.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::{ConvGeom, ConvTransposeGeom};
use crate::backend::{Backend, Conv2dParams, ConvTransposeParams};
use crate::error::Result;
use crate::tensor::{Shape, Tensor};

use Access::{Read, ReadWrite};

pub(super) static FAMILY: Family = Family {
    name: "conv2d",
    source: include_str!("../../../../shaders/conv2d.wgsl"),
    kernels: &[
        &FORWARD,
        &BACKWARD_INPUT,
        &BACKWARD_WEIGHT,
        &BACKWARD_BIAS,
        &ADD_BIAS,
        &REDUCE_GROUPS,
    ],
};

// Bindings: 1 x, 2 w, 3 b, 4 dy, 5 out.
static FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "conv2d_forward",
    storage: &[(1, Read), (2, Read), (3, Read), (5, ReadWrite)],
};
static BACKWARD_INPUT: Kernel = Kernel {
    family: &FAMILY,
    entry: "conv2d_backward_input",
    storage: &[(2, Read), (4, Read), (5, ReadWrite)],
};
static BACKWARD_WEIGHT: Kernel = Kernel {
    family: &FAMILY,
    entry: "conv2d_backward_weight",
    storage: &[(1, Read), (4, Read), (5, ReadWrite)],
};
static BACKWARD_BIAS: Kernel = Kernel {
    family: &FAMILY,
    entry: "conv2d_backward_bias",
    storage: &[(4, Read), (5, ReadWrite)],
};
static ADD_BIAS: Kernel = Kernel {
    family: &FAMILY,
    entry: "conv2d_add_bias",
    storage: &[(3, Read), (5, ReadWrite)],
};
static REDUCE_GROUPS: Kernel = Kernel {
    family: &FAMILY,
    entry: "conv2d_reduce_groups",
    storage: &[(6, Read), (5, ReadWrite)],
};

/// Aim for this many threads in the gradient kernels when choosing batch slices.
const TARGET_THREADS: usize = 1 << 16;

/// Mirrors `Conv2dParams` in conv2d.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    k: u32,
    oh: u32,
    ow: u32,
    stride: u32,
    padding: u32,
    count: u32,
    groups: u32,
}

/// Every dimension fits in u32: each is at most a tensor's element count, and
/// `GpuBackend::storage` keeps those below 2^32.
fn params(g: &ConvGeom, count: usize, groups: usize) -> Params {
    Params {
        n: g.n as u32,
        c: g.c as u32,
        h: g.h as u32,
        w: g.w as u32,
        o: g.o as u32,
        k: g.k as u32,
        oh: g.oh as u32,
        ow: g.ow as u32,
        stride: g.p.stride as u32,
        padding: g.p.padding as u32,
        count: count as u32,
        groups: groups as u32,
    }
}

/// Only the output planes y (N,O,OH,OW), for the bias kernels.
fn planes(n: usize, o: usize, oh: usize, ow: usize) -> ConvGeom {
    ConvGeom {
        n,
        c: 0,
        h: 0,
        w: 0,
        o,
        k: 0,
        oh,
        ow,
        p: Conv2dParams { stride: 1, padding: 0 },
    }
}

/// x (N,C,H,W), w (O,C,K,K), b (O) -> y (N,O,OH,OW)
pub(super) fn forward(gpu: &GpuBackend, x: &Tensor, w: &Tensor, b: &Tensor, p: Conv2dParams) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let g = ConvGeom::forward(OP, &x.shape, &w.shape, &b.shape, p)?;
    let y = gpu.output(OP, &g.y_dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, w)?,
        gpu.tensor_buffer(OP, b)?,
        gpu.tensor_buffer(OP, &y)?,
    ];
    gpu.dispatch(&FORWARD, &params(&g, y.numel(), 1), &buffers, y.numel())?;
    Ok(y)
}

/// dy (N,O,OH,OW), w (O,C,K,K) -> dx (N,C,H,W), H and W from `x_shape`
pub(super) fn backward_input(
    gpu: &GpuBackend,
    dy: &Tensor,
    w: &Tensor,
    x_shape: &Shape,
    p: Conv2dParams,
) -> Result<Tensor> {
    const OP: &str = "conv2d_backward_input";
    let g = ConvGeom::backward(OP, &dy.shape, x_shape, &w.shape, p)?;
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, w)?,
        gpu.tensor_buffer(OP, dy)?,
        gpu.tensor_buffer(OP, &dx)?,
    ];
    gpu.dispatch(&BACKWARD_INPUT, &params(&g, dx.numel(), 1), &buffers, dx.numel())?;
    Ok(dx)
}

/// dy (N,O,OH,OW), x (N,C,H,W) -> (dw (O,C,K,K), db (O)), K from `w_shape`
pub(super) fn backward_weight(
    gpu: &GpuBackend,
    dy: &Tensor,
    x: &Tensor,
    w_shape: &Shape,
    p: Conv2dParams,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "conv2d_backward_weight";
    let g = ConvGeom::backward(OP, &dy.shape, &x.shape, w_shape, p)?;
    let dw = gpu.output(OP, w_shape.dims())?;
    let db = gpu.output(OP, &[g.o])?;
    let (x_b, dy_b) = (gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, dy)?);
    sum_over_batch(gpu, &g, &BACKWARD_WEIGHT, &[x_b, dy_b], &dw)?;
    sum_over_batch(gpu, &g, &BACKWARD_BIAS, &[dy_b], &db)?;
    Ok((dw, db))
}

/// x (N,C,H,W), w (C,O,K,K), b (O) -> y (N,O,OH,OW): conv2d's input gradient with x in
/// the place of dy, then the bias
pub(super) fn transpose_forward(
    gpu: &GpuBackend,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    p: ConvTransposeParams,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    let g = ConvTransposeGeom::new(OP, &x.shape, &w.shape, &b.shape, p)?;
    let y = backward_input(gpu, x, w, &Shape::new(&g.y_dims()), p.conv())?;
    let buffers = [gpu.tensor_buffer(OP, b)?, gpu.tensor_buffer(OP, &y)?];
    let params = params(&planes(g.n, g.o, g.oh, g.ow), y.numel(), 1);
    gpu.dispatch(&ADD_BIAS, &params, &buffers, y.numel())?;
    Ok(y)
}

/// dy (N,O,OH,OW), x (N,C,H,W), w (C,O,K,K) -> dx (N,C,H,W) = conv2d(dy, w),
/// dw (C,O,K,K) = conv2d's weight gradient with dy as its input and x as its output
/// gradient, db (O) = Σ dy over n, oh, ow
pub(super) fn transpose_backward(
    gpu: &GpuBackend,
    dy: &Tensor,
    x: &Tensor,
    w: &Tensor,
    p: ConvTransposeParams,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "conv_transpose2d_backward";
    let g = ConvTransposeGeom::backward(OP, &dy.shape, &x.shape, &w.shape, p)?;
    let no_bias = gpu.zeros(Shape::new(&[g.c]))?;
    let dx = forward(gpu, dy, w, &no_bias, p.conv())?;
    // the convolution dy (N,O,OH,OW) -> (N,C,H,W) whose weight is w
    let dw = gpu.output(OP, w.dims())?;
    let (dy_b, x_b) = (gpu.tensor_buffer(OP, dy)?, gpu.tensor_buffer(OP, x)?);
    sum_over_batch(gpu, &g.adjoint(), &BACKWARD_WEIGHT, &[dy_b, x_b], &dw)?;
    let db = gpu.output(OP, &[g.o])?;
    sum_over_batch(gpu, &planes(g.n, g.o, g.oh, g.ow), &BACKWARD_BIAS, &[dy_b], &db)?;
    Ok((dx, dw, db))
}

/// Runs a batch-summing gradient kernel into `out`: directly when the batch is one
/// slice, else into (groups, out) partial sums that `conv2d_reduce_groups` adds up.
fn sum_over_batch(
    gpu: &GpuBackend,
    g: &ConvGeom,
    kernel: &Kernel,
    inputs: &[&wgpu::Buffer],
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "conv2d_backward_weight";
    let count = out.numel();
    let groups = batch_groups(gpu, g.n, count);
    let params = params(g, count, groups);
    if groups <= 1 {
        let buffers: Vec<&wgpu::Buffer> = inputs.iter().copied().chain([gpu.tensor_buffer(OP, out)?]).collect();
        return gpu.dispatch(kernel, &params, &buffers, count);
    }
    let partial = gpu.output(OP, &[groups, count])?;
    let buffers: Vec<&wgpu::Buffer> = inputs
        .iter()
        .copied()
        .chain([gpu.tensor_buffer(OP, &partial)?])
        .collect();
    gpu.dispatch(kernel, &params, &buffers, groups * count)?;
    let buffers = [gpu.tensor_buffer(OP, &partial)?, gpu.tensor_buffer(OP, out)?];
    gpu.dispatch(&REDUCE_GROUPS, &params, &buffers, count)
}

/// Batch slices for a gradient of `count` elements: enough for about `TARGET_THREADS`
/// threads, at most one per image, and small enough for one storage binding.
fn batch_groups(gpu: &GpuBackend, n: usize, count: usize) -> usize {
    let fits = (gpu.max_binding / 4) as usize / count.max(1);
    let wanted = TARGET_THREADS.div_ceil(count.max(1)).min(n).min(fits).max(1);
    // equal slices of ceil(n / wanted) images, none of them empty
    n.max(1).div_ceil(n.max(1).div_ceil(wanted))
}
