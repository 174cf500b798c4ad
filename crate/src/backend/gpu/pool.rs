//! pool on the GPU (shaders/pool.wgsl): square window with padding, global average pooling,
//! and max-unpooling. Max pooling records the argmax as a flat index within each unpadded
//! H·W plane; its backward and max-unpooling scatter through those indices (one thread per
//! row, no atomics), unpooling's backward gathers through them, and avg pooling's backward
//! gathers over the windows that cover each input.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::{GlobalPoolGeom, PoolGeom, UnpoolGeom};
use crate::backend::PoolParams;
use crate::error::Result;
use crate::tensor::{Indices, Shape, Tensor};

use Access::{Read, ReadWrite};

pub(super) static FAMILY: Family = Family {
    name: "pool",
    source: include_str!("../../../../shaders/pool.wgsl"),
    kernels: &[
        &MAX_FORWARD,
        &MAX_BACKWARD,
        &AVG_FORWARD,
        &AVG_BACKWARD,
        &GLOBAL_AVG_FORWARD,
        &GLOBAL_AVG_BACKWARD,
        &MAX_UNPOOL_FORWARD,
        &MAX_UNPOOL_BACKWARD,
    ],
};

// Bindings: 1 x, 2 dy, 3 idx_in, 4 out, 5 idx_out.
static MAX_FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_max_forward",
    storage: &[(1, Read), (4, ReadWrite), (5, ReadWrite)],
};
static MAX_BACKWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_max_backward",
    storage: &[(2, Read), (3, Read), (4, ReadWrite)],
};
static AVG_FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_avg_forward",
    storage: &[(1, Read), (4, ReadWrite)],
};
static AVG_BACKWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_avg_backward",
    storage: &[(2, Read), (4, ReadWrite)],
};

static GLOBAL_AVG_FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_global_avg_forward",
    storage: &[(1, Read), (4, ReadWrite)],
};
static GLOBAL_AVG_BACKWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_global_avg_backward",
    storage: &[(2, Read), (4, ReadWrite)],
};
// The pooled values x are bound as `dy` (2), the switches as `idx_in` (3).
static MAX_UNPOOL_FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_max_unpool_forward",
    storage: &[(2, Read), (3, Read), (4, ReadWrite)],
};
// dy (N,C,H,W) is bound as `x` (1).
static MAX_UNPOOL_BACKWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "pool_max_unpool_backward",
    storage: &[(1, Read), (3, Read), (4, ReadWrite)],
};

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
    pad: u32,
    count: u32,
    _pad: [u32; 3],
}

/// Sizes fit in u32 (see `GpuBackend::storage`).
fn params(planes: usize, (h, w): (usize, usize), (oh, ow): (usize, usize), p: PoolParams, count: usize) -> Params {
    Params {
        planes: planes as u32,
        h: h as u32,
        w: w as u32,
        oh: oh as u32,
        ow: ow as u32,
        k: p.kernel as u32,
        stride: p.stride as u32,
        pad: p.padding as u32,
        count: count as u32,
        _pad: [0; 3],
    }
}

/// The params of a windowed pooling.
fn window_params(g: &PoolGeom, count: usize) -> Params {
    params(g.n * g.c, (g.h, g.w), (g.oh, g.ow), g.p, count)
}

/// The window of kernels that do not read one.
const NO_WINDOW: PoolParams = PoolParams {
    kernel: 0,
    stride: 0,
    padding: 0,
};

/// The params of the kernels that route through max-pool switches, which read only the
/// switches per plane (OH·OW, passed as OH with OW = 1).
fn switch_params(g: &UnpoolGeom, count: usize) -> Params {
    params(g.planes(), (g.h, g.w), (g.switches, 1), NO_WINDOW, count)
}

/// x (N,C,H,W) -> (y (N,C,OH,OW), argmax indices (N,C,OH,OW) into each H·W plane)
pub(super) fn max_forward(gpu: &GpuBackend, x: &Tensor, p: PoolParams) -> Result<(Tensor, Indices)> {
    const OP: &str = "max_pool2d";
    let g = PoolGeom::new(OP, &x.shape, p)?;
    let y = gpu.output(OP, &g.y_dims())?;
    let idx = gpu.output_indices(OP, &g.y_dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, &y)?,
        gpu.indices_buffer(OP, &idx)?,
    ];
    let count = y.numel();
    gpu.dispatch(&MAX_FORWARD, &window_params(&g, count), &buffers, count)?;
    Ok((y, idx))
}

/// dy (N,C,OH,OW), indices (N,C,OH,OW) -> dx (N,C,H,W): each dy routed to its argmax.
/// One thread per input row (N·C·H threads); indices outside the plane are dropped.
pub(super) fn max_backward(gpu: &GpuBackend, dy: &Tensor, idx: &Indices, x_shape: &Shape) -> Result<Tensor> {
    const OP: &str = "max_pool2d_backward";
    let g = UnpoolGeom::max_pool_backward(OP, &dy.shape, &idx.shape, x_shape)?;
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, dy)?,
        gpu.indices_buffer(OP, idx)?,
        gpu.tensor_buffer(OP, &dx)?,
    ];
    let rows = g.planes() * g.h;
    gpu.dispatch(&MAX_BACKWARD, &switch_params(&g, rows), &buffers, rows)?;
    Ok(dx)
}

/// x (N,C,H,W) -> y (N,C,OH,OW), sum of each window / K²
pub(super) fn avg_forward(gpu: &GpuBackend, x: &Tensor, p: PoolParams) -> Result<Tensor> {
    const OP: &str = "avg_pool2d";
    let g = PoolGeom::new(OP, &x.shape, p)?;
    let y = gpu.output(OP, &g.y_dims())?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, &y)?];
    let count = y.numel();
    gpu.dispatch(&AVG_FORWARD, &window_params(&g, count), &buffers, count)?;
    Ok(y)
}

/// dy (N,C,OH,OW) -> dx (N,C,H,W): each dy spread evenly over its window
pub(super) fn avg_backward(gpu: &GpuBackend, dy: &Tensor, x_shape: &Shape, p: PoolParams) -> Result<Tensor> {
    const OP: &str = "avg_pool2d_backward";
    let g = PoolGeom::backward(OP, &dy.shape, x_shape, p)?;
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [gpu.tensor_buffer(OP, dy)?, gpu.tensor_buffer(OP, &dx)?];
    let count = dx.numel();
    gpu.dispatch(&AVG_BACKWARD, &window_params(&g, count), &buffers, count)?;
    Ok(dx)
}

/// x (N,C,H,W) -> y (N,C), the mean of each plane
pub(super) fn global_avg_forward(gpu: &GpuBackend, x: &Tensor) -> Result<Tensor> {
    const OP: &str = "global_avg_pool";
    let GlobalPoolGeom { n, c, h, w } = GlobalPoolGeom::new(OP, &x.shape)?;
    let y = gpu.output(OP, &[n, c])?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, &y)?];
    let planes = n * c;
    let p = params(planes, (h, w), (1, 1), NO_WINDOW, planes);
    gpu.dispatch(&GLOBAL_AVG_FORWARD, &p, &buffers, planes)?;
    Ok(y)
}

/// dy (N,C) -> dx (N,C,H,W) = dy / (H·W) on every cell of the plane
pub(super) fn global_avg_backward(gpu: &GpuBackend, dy: &Tensor, x_shape: &Shape) -> Result<Tensor> {
    const OP: &str = "global_avg_pool_backward";
    let GlobalPoolGeom { n, c, h, w } = GlobalPoolGeom::backward(OP, &dy.shape, x_shape)?;
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [gpu.tensor_buffer(OP, dy)?, gpu.tensor_buffer(OP, &dx)?];
    let count = dx.numel();
    let p = params(n * c, (h, w), (1, 1), NO_WINDOW, count);
    gpu.dispatch(&GLOBAL_AVG_BACKWARD, &p, &buffers, count)?;
    Ok(dx)
}

/// x (N,C,OH,OW), idx (N,C,OH,OW) -> y (N,C,H,W) = `out_shape`: zeros except y[idx] = x,
/// the last of colliding switches winning. One thread per output row (N·C·H threads).
pub(super) fn max_unpool_forward(gpu: &GpuBackend, x: &Tensor, idx: &Indices, out_shape: &Shape) -> Result<Tensor> {
    const OP: &str = "max_unpool2d";
    let g = UnpoolGeom::new(OP, &x.shape, &idx.shape, out_shape)?;
    let y = gpu.output(OP, out_shape.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.indices_buffer(OP, idx)?,
        gpu.tensor_buffer(OP, &y)?,
    ];
    let rows = g.planes() * g.h;
    gpu.dispatch(&MAX_UNPOOL_FORWARD, &switch_params(&g, rows), &buffers, rows)?;
    Ok(y)
}

/// dy (N,C,H,W), idx (N,C,OH,OW) -> dx (N,C,OH,OW) = dy[plane, idx], one thread per switch
pub(super) fn max_unpool_backward(gpu: &GpuBackend, dy: &Tensor, idx: &Indices) -> Result<Tensor> {
    const OP: &str = "max_unpool2d_backward";
    let g = UnpoolGeom::backward(OP, &dy.shape, &idx.shape)?;
    let dx = gpu.output(OP, idx.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, dy)?,
        gpu.indices_buffer(OP, idx)?,
        gpu.tensor_buffer(OP, &dx)?,
    ];
    let count = dx.numel();
    gpu.dispatch(&MAX_UNPOOL_BACKWARD, &switch_params(&g, count), &buffers, count)?;
    Ok(dx)
}
