//! concat on the GPU (shaders/concat.wgsl): channel concat and channel slice: both are one strided block copy,
//! `concat_copy`; concat runs it once per input into disjoint channel blocks of y.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::{shapes_of, ConcatGeom, SliceGeom};
use crate::error::Result;
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

pub(super) static FAMILY: Family = Family {
    name: "concat",
    source: include_str!("../../../../shaders/concat.wgsl"),
    kernels: &[&COPY],
};

// Bindings: 1 src, 2 out.
static COPY: Kernel = Kernel {
    family: &FAMILY,
    entry: "concat_copy",
    storage: &[(1, Read), (2, ReadWrite)],
};

/// Mirrors `ConcatParams` in concat.wgsl: out[b·dst_stride + dst_offset + r] =
/// src[b·src_stride + src_offset + r] for element e = b·block + r.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    block: u32,
    src_stride: u32,
    src_offset: u32,
    dst_stride: u32,
    dst_offset: u32,
    _pad: [u32; 2],
}

impl Params {
    /// `images` runs of `block` elements, each read at `src` (stride, offset) and written at
    /// `dst` (stride, offset). Sizes fit in u32 (see `GpuBackend::storage`).
    fn new(images: usize, block: usize, src: (usize, usize), dst: (usize, usize)) -> Params {
        Params {
            count: (images * block) as u32,
            block: block as u32,
            src_stride: src.0 as u32,
            src_offset: src.1 as u32,
            dst_stride: dst.0 as u32,
            dst_offset: dst.1 as u32,
            _pad: [0; 2],
        }
    }
}

fn copy(gpu: &GpuBackend, op: &'static str, src: &Tensor, out: &Tensor, p: Params) -> Result<()> {
    let buffers = [gpu.tensor_buffer(op, src)?, gpu.tensor_buffer(op, out)?];
    gpu.dispatch(&COPY, &p, &buffers, p.count as usize)
}

/// xs[i] (N,Ci,H,W) -> y (N,ΣCi,H,W); also (N,Ci) -> (N,ΣCi)
pub(super) fn concat(gpu: &GpuBackend, xs: &[&Tensor]) -> Result<Tensor> {
    const OP: &str = "concat_channels";
    let g = ConcatGeom::new(OP, &shapes_of(xs))?;
    let y = gpu.output(OP, &g.dims)?;
    let mut offset = 0;
    for (x, c) in xs.iter().zip(&g.channels) {
        let block = c * g.inner;
        let p = Params::new(g.n(), block, (block, 0), (g.dims[1] * g.inner, offset));
        copy(gpu, OP, x, &y, p)?;
        offset += block;
    }
    Ok(y)
}

/// x (N,C,H,W) -> y (N,len,H,W) = channels start..start+len; also (N,C) -> (N,len)
pub(super) fn slice(gpu: &GpuBackend, x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    const OP: &str = "slice_channels";
    let g = SliceGeom::new(OP, &x.shape, start, len)?;
    let y = gpu.output(OP, &g.dims)?;
    let block = g.len * g.inner;
    let p = Params::new(g.n(), block, (g.c * g.inner, g.start * g.inner), (block, 0));
    copy(gpu, OP, x, &y, p)?;
    Ok(y)
}
