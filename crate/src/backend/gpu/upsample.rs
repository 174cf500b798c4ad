//! Upsampling ops (shaders/upsample.wgsl): nearest or bilinear (align_corners=False) by an
//! integer scale. Forward reads each output's taps; backward gathers, one thread per input
//! cell summing the output cells that read it, so no float atomics.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Kernel, Shader};
use super::GpuBackend;
use crate::backend::cpu::upsample_geometry;
use crate::backend::UpsampleMode;
use crate::error::{shape_err, Result};
use crate::tensor::{Shape, Tensor};

use Access::{Read, ReadWrite};

// Bindings: 1 x (or dy), 2 out.
const FORWARD: Kernel = Kernel {
    shader: Shader::Upsample,
    entry: "upsample_forward",
    storage: &[(1, Read), (2, ReadWrite)],
};
const BACKWARD: Kernel = Kernel {
    shader: Shader::Upsample,
    entry: "upsample_backward",
    storage: &[(1, Read), (2, ReadWrite)],
};

/// Every kernel of this family, for `GpuBackend::warm_up`.
pub(super) const KERNELS: &[&Kernel] = &[&FORWARD, &BACKWARD];

/// Mirrors `UpsampleParams` in upsample.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    scale: u32,
    mode: u32,
    count: u32,
}

/// Sizes fit in u32 (see `GpuBackend::storage`).
fn params(g: [usize; 6], scale: usize, mode: UpsampleMode, count: usize) -> Params {
    let [n, c, h, w, oh, ow] = g;
    Params {
        planes: (n * c) as u32,
        h: h as u32,
        w: w as u32,
        oh: oh as u32,
        ow: ow as u32,
        scale: scale as u32,
        mode: match mode {
            UpsampleMode::Nearest => 0,
            UpsampleMode::Bilinear => 1,
        },
        count: count as u32,
    }
}

/// x (N,C,H,W) -> y (N,C,H·s,W·s)
pub(super) fn forward(gpu: &GpuBackend, x: &Tensor, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
    const OP: &str = "upsample2d";
    let g = upsample_geometry(OP, &x.shape, scale)?;
    let y = gpu.output(OP, &[g[0], g[1], g[4], g[5]])?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, &y)?];
    gpu.dispatch(&FORWARD, &params(g, scale, mode, y.numel()), &buffers, y.numel())?;
    Ok(y)
}

/// dy (N,C,H·s,W·s) -> dx (N,C,H,W)
pub(super) fn backward(
    gpu: &GpuBackend,
    dy: &Tensor,
    x_shape: &Shape,
    scale: usize,
    mode: UpsampleMode,
) -> Result<Tensor> {
    const OP: &str = "upsample2d_backward";
    let g = upsample_geometry(OP, x_shape, scale)?;
    if dy.dims() != [g[0], g[1], g[4], g[5]] {
        return Err(shape_err(
            OP,
            "dy does not match the upsampled shape",
            &[dy.dims(), x_shape.dims()],
        ));
    }
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [gpu.tensor_buffer(OP, dy)?, gpu.tensor_buffer(OP, &dx)?];
    gpu.dispatch(&BACKWARD, &params(g, scale, mode, dx.numel()), &buffers, dx.numel())?;
    Ok(dx)
}
