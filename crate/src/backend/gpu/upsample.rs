//! upsample on the GPU (shaders/upsample.wgsl): nearest or bilinear (align_corners=False) by an
//! integer scale. Forward reads each output's taps; backward gathers, one thread per input
//! cell summing the output cells that read it, so no float atomics.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::UpsampleGeom;
use crate::backend::UpsampleMode;
use crate::error::Result;
use crate::tensor::{Shape, Tensor};

use Access::{Read, ReadWrite};

pub(super) static FAMILY: Family = Family {
    name: "upsample",
    source: include_str!("../../../../shaders/upsample.wgsl"),
    kernels: &[&FORWARD, &BACKWARD],
};

// Bindings: 1 x (or dy), 2 out.
static FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "upsample_forward",
    storage: &[(1, Read), (2, ReadWrite)],
};
static BACKWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "upsample_backward",
    storage: &[(1, Read), (2, ReadWrite)],
};

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
fn params(g: &UpsampleGeom, mode: UpsampleMode, count: usize) -> Params {
    Params {
        planes: (g.n * g.c) as u32,
        h: g.h as u32,
        w: g.w as u32,
        oh: g.oh as u32,
        ow: g.ow as u32,
        scale: g.scale as u32,
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
    let g = UpsampleGeom::new(OP, &x.shape, scale)?;
    let y = gpu.output(OP, &g.y_dims())?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, &y)?];
    gpu.dispatch(&FORWARD, &params(&g, mode, y.numel()), &buffers, y.numel())?;
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
    let g = UpsampleGeom::backward(OP, &dy.shape, x_shape, scale)?;
    let dx = gpu.output(OP, x_shape.dims())?;
    let buffers = [gpu.tensor_buffer(OP, dy)?, gpu.tensor_buffer(OP, &dx)?];
    gpu.dispatch(&BACKWARD, &params(&g, mode, dx.numel()), &buffers, dx.numel())?;
    Ok(dx)
}
