//! linear on the GPU (shaders/linear.wgsl), PyTorch layout: w is (out, in).
//! The three products are 16×16-tiled matmuls; the bias gradient is a column sum.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::LinearGeom;
use crate::error::{shape_err, Result};
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

/// Side of the square tiles in linear.wgsl (`@workgroup_size(16, 16)`).
const TILE: usize = 16;

pub(super) static FAMILY: Family = Family {
    name: "linear",
    source: include_str!("../../../../shaders/linear.wgsl"),
    kernels: &[&FORWARD, &BACKWARD_INPUT, &BACKWARD_WEIGHT, &BACKWARD_BIAS],
};

// Bindings: 1 x, 2 w, 3 b, 4 dy, 5 out.
static FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "linear_forward",
    storage: &[(1, Read), (2, Read), (3, Read), (5, ReadWrite)],
};
static BACKWARD_INPUT: Kernel = Kernel {
    family: &FAMILY,
    entry: "linear_backward_input",
    storage: &[(2, Read), (4, Read), (5, ReadWrite)],
};
static BACKWARD_WEIGHT: Kernel = Kernel {
    family: &FAMILY,
    entry: "linear_backward_weight",
    storage: &[(1, Read), (4, Read), (5, ReadWrite)],
};
static BACKWARD_BIAS: Kernel = Kernel {
    family: &FAMILY,
    entry: "linear_backward_bias",
    storage: &[(4, Read), (5, ReadWrite)],
};

/// Mirrors `LinearParams` in linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    k: u32,
    o: u32,
    count: u32,
}

/// Sizes fit in u32 (see `GpuBackend::storage`).
fn params(g: LinearGeom, count: usize) -> Params {
    Params {
        n: g.n as u32,
        k: g.k as u32,
        o: g.o as u32,
        count: count as u32,
    }
}

/// Workgroups covering a (rows × cols) result with 16×16 tiles.
fn tile_groups(gpu: &GpuBackend, op: &'static str, rows: usize, cols: usize) -> Result<[u32; 3]> {
    let (gx, gy) = (cols.div_ceil(TILE), rows.div_ceil(TILE));
    let max = gpu.rec.max_groups() as usize;
    if gx > max || gy > max {
        return Err(shape_err(
            op,
            format!("a {rows}×{cols} product needs more than {max} workgroups per dimension"),
            &[&[rows, cols]],
        ));
    }
    Ok([gx as u32, gy as u32, 1])
}

/// x (N,K), w (O,K), b (O) -> y (N,O) = x·wᵀ + b
pub(super) fn forward(gpu: &GpuBackend, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "linear";
    let g = LinearGeom::forward(OP, &x.shape, &w.shape, &b.shape)?;
    let LinearGeom { n, o, .. } = g;
    let y = gpu.output(OP, &[n, o])?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, w)?,
        gpu.tensor_buffer(OP, b)?,
        gpu.tensor_buffer(OP, &y)?,
    ];
    let groups = tile_groups(gpu, OP, n, o)?;
    gpu.dispatch_groups(&FORWARD, &params(g, n * o), &buffers, groups, n * o)?;
    Ok(y)
}

/// dy (N,O), x (N,K), w (O,K) -> (dx (N,K) = dy·w, dw (O,K) = dyᵀ·x, db (O) = Σ_n dy)
pub(super) fn backward(gpu: &GpuBackend, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "linear_backward";
    let g = LinearGeom::backward(OP, &dy.shape, &x.shape, &w.shape)?;
    let LinearGeom { n, k, o } = g;
    let dx = gpu.output(OP, &[n, k])?;
    let dw = gpu.output(OP, &[o, k])?;
    let db = gpu.output(OP, &[o])?;
    let (dy_b, x_b, w_b) = (
        gpu.tensor_buffer(OP, dy)?,
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, w)?,
    );

    let groups = tile_groups(gpu, OP, n, k)?;
    let buffers = [w_b, dy_b, gpu.tensor_buffer(OP, &dx)?];
    gpu.dispatch_groups(&BACKWARD_INPUT, &params(g, n * k), &buffers, groups, n * k)?;

    let groups = tile_groups(gpu, OP, o, k)?;
    let buffers = [x_b, dy_b, gpu.tensor_buffer(OP, &dw)?];
    gpu.dispatch_groups(&BACKWARD_WEIGHT, &params(g, o * k), &buffers, groups, o * k)?;

    let buffers = [dy_b, gpu.tensor_buffer(OP, &db)?];
    gpu.dispatch(&BACKWARD_BIAS, &params(g, o), &buffers, o)?;
    Ok((dx, dw, db))
}
