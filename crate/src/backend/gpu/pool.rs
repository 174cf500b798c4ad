//! Pooling ops (shaders/pool.wgsl): square window, no padding. Max pooling records the
//! argmax as a flat index within each H·W plane; its backward scatters through those
//! indices, avg pooling's backward gathers over the windows that cover each input.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Kernel, Shader};
use super::GpuBackend;
use crate::backend::cpu::pool_geometry;
use crate::backend::PoolParams;
use crate::error::{shape_err, Result};
use crate::tensor::{Indices, Shape, Tensor};

use Access::{Read, ReadWrite};

// Bindings: 1 x, 2 dy, 3 idx_in, 4 out, 5 idx_out.
const MAX_FORWARD: Kernel = Kernel {
    shader: Shader::Pool,
    entry: "pool_max_forward",
    storage: &[(1, Read), (4, ReadWrite), (5, ReadWrite)],
};
const MAX_BACKWARD: Kernel = Kernel {
    shader: Shader::Pool,
    entry: "pool_max_backward",
    storage: &[(2, Read), (3, Read), (4, ReadWrite)],
};
const AVG_FORWARD: Kernel = Kernel {
    shader: Shader::Pool,
    entry: "pool_avg_forward",
    storage: &[(1, Read), (4, ReadWrite)],
};
const AVG_BACKWARD: Kernel = Kernel {
    shader: Shader::Pool,
    entry: "pool_avg_backward",
    storage: &[(2, Read), (4, ReadWrite)],
};

/// Every kernel of this family, for `GpuBackend::warm_up`.
pub(super) const KERNELS: &[&Kernel] = &[&MAX_FORWARD, &MAX_BACKWARD, &AVG_FORWARD, &AVG_BACKWARD];

/// Mirrors `PoolParams` in pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    stride: u32,
    count: u32,
}

/// x (N,C,H,W) with window `p` -> [N, C, H, W, OH, OW], checked like the CPU backend
/// (plus a non-empty window, which the shaders divide by).
fn geometry(op: &'static str, x: &Shape, p: PoolParams) -> Result<[usize; 6]> {
    if p.kernel == 0 {
        return Err(shape_err(op, "window must be at least 1", &[x.dims()]));
    }
    pool_geometry(op, x, p)
}

/// Sizes fit in u32 (see `GpuBackend::storage`).
fn params(planes: usize, h: usize, w: usize, oh: usize, ow: usize, p: PoolParams, count: usize) -> Params {
    Params {
        planes: planes as u32,
        h: h as u32,
        w: w as u32,
        oh: oh as u32,
        ow: ow as u32,
        k: p.kernel as u32,
        stride: p.stride as u32,
        count: count as u32,
    }
}

/// x (N,C,H,W) -> (y (N,C,OH,OW), argmax indices (N,C,OH,OW) into each H·W plane)
pub(super) fn max_forward(gpu: &GpuBackend, x: &Tensor, p: PoolParams) -> Result<(Tensor, Indices)> {
    const OP: &str = "max_pool2d";
    let [n, c, h, w, oh, ow] = geometry(OP, &x.shape, p)?;
    let y = gpu.output(OP, &[n, c, oh, ow])?;
    let idx = gpu.output_indices(OP, &[n, c, oh, ow])?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, &y)?,
        gpu.indices_buffer(OP, &idx)?,
    ];
    let count = y.numel();
    gpu.dispatch(&MAX_FORWARD, &params(n * c, h, w, oh, ow, p, count), &buffers, count)?;
    Ok((y, idx))
}

/// dy (N,C,OH,OW), indices (N,C,OH,OW) -> dx (N,C,H,W): each dy routed to its argmax.
/// One thread per input row (N·C·H threads); indices outside the plane are dropped.
pub(super) fn max_backward(gpu: &GpuBackend, dy: &Tensor, idx: &Indices, x_shape: &Shape) -> Result<Tensor> {
    const OP: &str = "max_pool2d_backward";
    let (n, c, h, w) = x_shape.nchw(OP)?;
    let (dn, dc, oh, ow) = dy.shape.nchw(OP)?;
    if (dn, dc) != (n, c) || idx.dims() != dy.dims() {
        return Err(shape_err(
            OP,
            "dy, indices and input do not fit",
            &[dy.dims(), idx.dims(), x_shape.dims()],
        ));
    }
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, dy)?,
        gpu.indices_buffer(OP, idx)?,
        gpu.tensor_buffer(OP, &dx)?,
    ];
    let rows = n * c * h;
    let window = PoolParams { kernel: 0, stride: 0 }; // unused by this kernel
    gpu.dispatch(
        &MAX_BACKWARD,
        &params(n * c, h, w, oh, ow, window, rows),
        &buffers,
        rows,
    )?;
    Ok(dx)
}

/// x (N,C,H,W) -> y (N,C,OH,OW), mean of each window
pub(super) fn avg_forward(gpu: &GpuBackend, x: &Tensor, p: PoolParams) -> Result<Tensor> {
    const OP: &str = "avg_pool2d";
    let [n, c, h, w, oh, ow] = geometry(OP, &x.shape, p)?;
    let y = gpu.output(OP, &[n, c, oh, ow])?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, &y)?];
    let count = y.numel();
    gpu.dispatch(&AVG_FORWARD, &params(n * c, h, w, oh, ow, p, count), &buffers, count)?;
    Ok(y)
}

/// dy (N,C,OH,OW) -> dx (N,C,H,W): each dy spread evenly over its window
pub(super) fn avg_backward(gpu: &GpuBackend, dy: &Tensor, x_shape: &Shape, p: PoolParams) -> Result<Tensor> {
    const OP: &str = "avg_pool2d_backward";
    let [n, c, h, w, oh, ow] = geometry(OP, x_shape, p)?;
    if dy.dims() != [n, c, oh, ow] {
        return Err(shape_err(
            OP,
            "dy does not match the pooled shape",
            &[dy.dims(), x_shape.dims()],
        ));
    }
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [gpu.tensor_buffer(OP, dy)?, gpu.tensor_buffer(OP, &dx)?];
    let count = dx.numel();
    gpu.dispatch(&AVG_BACKWARD, &params(n * c, h, w, oh, ow, p, count), &buffers, count)?;
    Ok(dx)
}
