//! Fully connected ops (shaders/matmul.wgsl), PyTorch layout: w is (out, in).
//! The three products are 16×16-tiled matmuls; the bias gradient is a column sum.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Kernel, Shader};
use super::GpuBackend;
use crate::error::{shape_err, Result};
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

/// Side of the square tiles in matmul.wgsl (`@workgroup_size(16, 16)`).
const TILE: usize = 16;

// Bindings: 1 x, 2 w, 3 b, 4 dy, 5 out.
const FORWARD: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "matmul_forward",
    storage: &[(1, Read), (2, Read), (3, Read), (5, ReadWrite)],
};
const BACKWARD_INPUT: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "matmul_backward_input",
    storage: &[(2, Read), (4, Read), (5, ReadWrite)],
};
const BACKWARD_WEIGHT: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "matmul_backward_weight",
    storage: &[(1, Read), (4, Read), (5, ReadWrite)],
};
const BACKWARD_BIAS: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "matmul_backward_bias",
    storage: &[(4, Read), (5, ReadWrite)],
};

/// Every kernel of this family, for `GpuBackend::warm_up`.
pub(super) const KERNELS: &[&Kernel] = &[&FORWARD, &BACKWARD_INPUT, &BACKWARD_WEIGHT, &BACKWARD_BIAS];

/// Mirrors `MatmulParams` in matmul.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    k: u32,
    o: u32,
    count: u32,
}

/// Sizes fit in u32 (see `GpuBackend::storage`).
fn params(n: usize, k: usize, o: usize, count: usize) -> Params {
    Params {
        n: n as u32,
        k: k as u32,
        o: o as u32,
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
    let (n, k) = x.shape.matrix(OP)?;
    let (o, wk) = w.shape.matrix(OP)?;
    if wk != k || b.dims() != [o] {
        return Err(shape_err(
            OP,
            "x (N,K), w (O,K), b (O) do not fit",
            &[x.dims(), w.dims(), b.dims()],
        ));
    }
    let y = gpu.output(OP, &[n, o])?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, w)?,
        gpu.tensor_buffer(OP, b)?,
        gpu.tensor_buffer(OP, &y)?,
    ];
    let groups = tile_groups(gpu, OP, n, o)?;
    gpu.dispatch_groups(&FORWARD, &params(n, k, o, n * o), &buffers, groups, n * o)?;
    Ok(y)
}

/// dy (N,O), x (N,K), w (O,K) -> (dx (N,K) = dy·w, dw (O,K) = dyᵀ·x, db (O) = Σ_n dy)
pub(super) fn backward(gpu: &GpuBackend, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "linear_backward";
    let (n, k) = x.shape.matrix(OP)?;
    let (o, wk) = w.shape.matrix(OP)?;
    if wk != k || dy.dims() != [n, o] {
        return Err(shape_err(
            OP,
            "dy (N,O), x (N,K), w (O,K) do not fit",
            &[dy.dims(), x.dims(), w.dims()],
        ));
    }
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
    gpu.dispatch_groups(&BACKWARD_INPUT, &params(n, k, o, n * k), &buffers, groups, n * k)?;

    let groups = tile_groups(gpu, OP, o, k)?;
    let buffers = [x_b, dy_b, gpu.tensor_buffer(OP, &dw)?];
    gpu.dispatch_groups(&BACKWARD_WEIGHT, &params(n, k, o, o * k), &buffers, groups, o * k)?;

    let buffers = [dy_b, gpu.tensor_buffer(OP, &db)?];
    gpu.dispatch(&BACKWARD_BIAS, &params(n, k, o, o), &buffers, o)?;
    Ok((dx, dw, db))
}
