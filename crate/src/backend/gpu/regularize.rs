//! regularize on the GPU (shaders/regularize.wgsl): the L1/L2 penalty as a two-pass reduction
//! into a device scalar (no readback: the trainer reads it with the loss), its gradient and
//! the soft threshold of proximal L1, both one thread per element.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::{check_same_shapes, check_scalar};
use crate::error::Result;
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

/// Threads per workgroup of both reduction passes (`@workgroup_size(256)`).
const REDUCE_THREADS: usize = 256;
/// At most this many workgroups in pass 1, so that pass 2 (one workgroup) sums at most
/// 4 pairs per thread; past 256·1024 elements the threads of pass 1 loop (grid stride).
const MAX_GROUPS: usize = 1024;

pub(super) static FAMILY: Family = Family {
    name: "regularize",
    source: include_str!("../../../../shaders/regularize.wgsl"),
    kernels: &[&PARTIAL, &FINISH, &GRAD, &SOFT_THRESHOLD],
};

// Bindings: 1 w, 2 partials, 3 acc, 4 g, 5 w (in place).
static PARTIAL: Kernel = Kernel {
    family: &FAMILY,
    entry: "regularize_penalty_partial",
    storage: &[(1, Read), (2, ReadWrite)],
};
static FINISH: Kernel = Kernel {
    family: &FAMILY,
    entry: "regularize_penalty_finish",
    storage: &[(2, ReadWrite), (3, ReadWrite)],
};
static GRAD: Kernel = Kernel {
    family: &FAMILY,
    entry: "regularize_grad",
    storage: &[(1, Read), (4, ReadWrite)],
};
static SOFT_THRESHOLD: Kernel = Kernel {
    family: &FAMILY,
    entry: "regularize_soft_threshold",
    storage: &[(5, ReadWrite)],
};

/// Mirrors `RegularizeParams` in regularize.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    groups: u32,
    l1: f32,
    l2: f32,
    threshold: f32,
    _pad: [u32; 3],
}

/// Element counts fit in u32 (see `GpuBackend::storage`).
fn params(count: usize, groups: usize, l1: f32, l2: f32, threshold: f32) -> Params {
    Params {
        count: count as u32,
        groups: groups as u32,
        l1,
        l2,
        threshold,
        _pad: [0; 3],
    }
}

/// w (any), acc (1): acc += l1·Σ|w| + (l2/2)·Σw²
pub(super) fn penalty(gpu: &GpuBackend, w: &Tensor, l1: f32, l2: f32, acc: &mut Tensor) -> Result<()> {
    const OP: &str = "l1_l2_penalty";
    check_scalar(OP, &acc.shape)?;
    let n = w.numel();
    if n == 0 {
        return Ok(());
    }
    let groups = n.div_ceil(REDUCE_THREADS).clamp(1, MAX_GROUPS);
    let partials = gpu.output(OP, &[groups, 2])?;
    let params = params(n, groups, l1, l2, 0.0);
    let buffers = [gpu.tensor_buffer(OP, w)?, gpu.tensor_buffer(OP, &partials)?];
    gpu.dispatch_groups(&PARTIAL, &params, &buffers, [groups as u32, 1, 1], n)?;
    let buffers = [gpu.tensor_buffer(OP, &partials)?, gpu.tensor_buffer(OP, acc)?];
    gpu.dispatch_groups(&FINISH, &params, &buffers, [1, 1, 1], REDUCE_THREADS)
}

/// g, w same shape: g += l1·sign(w) + l2·w
pub(super) fn grad(gpu: &GpuBackend, g: &mut Tensor, w: &Tensor, l1: f32, l2: f32) -> Result<()> {
    const OP: &str = "l1_l2_grad";
    check_same_shapes(OP, &g.shape, &[&w.shape])?;
    let buffers = [gpu.tensor_buffer(OP, w)?, gpu.tensor_buffer(OP, g)?];
    gpu.dispatch(&GRAD, &params(w.numel(), 0, l1, l2, 0.0), &buffers, w.numel())
}

/// w (any), in place: w = sign(w)·max(|w| - t, 0)
pub(super) fn soft_threshold(gpu: &GpuBackend, w: &mut Tensor, t: f32) -> Result<()> {
    const OP: &str = "soft_threshold";
    let buffers = [gpu.tensor_buffer(OP, w)?];
    gpu.dispatch(&SOFT_THRESHOLD, &params(w.numel(), 0, 0.0, 0.0, t), &buffers, w.numel())
}
