//! elementwise ops on the GPU (shaders/elementwise.wgsl): activations, dropout masks,
//! scaling, the residual add and accumulation; any shape, one thread per element.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Family, Kernel};
use super::GpuBackend;
use crate::backend::geometry::{check_activation_backward, check_same_shapes};
use crate::backend::Activation;
use crate::error::Result;
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

pub(super) static FAMILY: Family = Family {
    name: "elementwise",
    source: include_str!("../../../../shaders/elementwise.wgsl"),
    kernels: &[
        &ACTIVATION_FORWARD,
        &ACTIVATION_BACKWARD,
        &ADD_ASSIGN,
        &MUL_MASK,
        &SCALE,
        &ADD,
    ],
};

// Bindings: 1 a, 2 b, 3 c, 4 out.
static ACTIVATION_FORWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "elementwise_activation_forward",
    storage: &[(1, Read), (4, ReadWrite)],
};
static ACTIVATION_BACKWARD: Kernel = Kernel {
    family: &FAMILY,
    entry: "elementwise_activation_backward",
    storage: &[(1, Read), (2, Read), (3, Read), (4, ReadWrite)],
};
static ADD_ASSIGN: Kernel = Kernel {
    family: &FAMILY,
    entry: "elementwise_add_assign",
    storage: &[(1, Read), (4, ReadWrite)],
};

static MUL_MASK: Kernel = Kernel {
    family: &FAMILY,
    entry: "elementwise_mul_mask",
    storage: &[(1, Read), (2, Read), (4, ReadWrite)],
};
static SCALE: Kernel = Kernel {
    family: &FAMILY,
    entry: "elementwise_scale",
    storage: &[(1, Read), (4, ReadWrite)],
};
static ADD: Kernel = Kernel {
    family: &FAMILY,
    entry: "elementwise_add",
    storage: &[(1, Read), (2, Read), (4, ReadWrite)],
};

/// Mirrors `ElementwiseParams` in elementwise.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    /// Which activation: the `KIND_*` constants of the shader.
    kind: u32,
    /// Leaky relu's slope for x ≤ 0; unused by the other kinds.
    slope: f32,
    /// The factor of `mul_mask` and `scale`.
    scale: f32,
}

// Mirror the `KIND_*` constants in elementwise.wgsl.
const KIND_RELU: u32 = 0;
const KIND_LEAKY_RELU: u32 = 1;
const KIND_TANH: u32 = 2;
const KIND_SIGMOID: u32 = 3;

/// Element counts fit in u32 (see `GpuBackend::storage`). `a` is None for non-activations.
fn params(count: usize, a: Option<Activation>) -> Params {
    scaled(count, a, 1.0)
}

fn scaled(count: usize, a: Option<Activation>, scale: f32) -> Params {
    let (kind, slope) = match a {
        None | Some(Activation::Relu) => (KIND_RELU, 0.0),
        Some(Activation::LeakyRelu { slope }) => (KIND_LEAKY_RELU, slope),
        Some(Activation::Tanh) => (KIND_TANH, 0.0),
        Some(Activation::Sigmoid) => (KIND_SIGMOID, 0.0),
    };
    Params {
        count: count as u32,
        kind,
        slope,
        scale,
    }
}

/// x (any) -> y = f(x), same shape
pub(super) fn activation(gpu: &GpuBackend, x: &Tensor, a: Activation) -> Result<Tensor> {
    let op = a.name();
    let y = gpu.output(op, x.dims())?;
    let buffers = [gpu.tensor_buffer(op, x)?, gpu.tensor_buffer(op, &y)?];
    gpu.dispatch(&ACTIVATION_FORWARD, &params(y.numel(), Some(a)), &buffers, y.numel())?;
    Ok(y)
}

/// dy, x, y (same shape) -> dx = dy · f'(x), f' read from x (relu, leaky relu) or y (tanh, sigmoid)
pub(super) fn activation_backward(
    gpu: &GpuBackend,
    dy: &Tensor,
    x: &Tensor,
    y: &Tensor,
    a: Activation,
) -> Result<Tensor> {
    const OP: &str = "activation_backward";
    check_activation_backward(OP, a, &dy.shape, &x.shape, &y.shape)?;
    let dx = gpu.output(OP, dy.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, dy)?,
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, y)?,
        gpu.tensor_buffer(OP, &dx)?,
    ];
    gpu.dispatch(&ACTIVATION_BACKWARD, &params(dx.numel(), Some(a)), &buffers, dx.numel())?;
    Ok(dx)
}

/// acc += x, same shape, in place
pub(super) fn add_assign(gpu: &GpuBackend, acc: &mut Tensor, x: &Tensor) -> Result<()> {
    const OP: &str = "add_assign";
    check_same_shapes(OP, &acc.shape, &[&x.shape])?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, acc)?];
    gpu.dispatch(&ADD_ASSIGN, &params(x.numel(), None), &buffers, x.numel())
}

/// x, mask (same shape) -> y = x·mask·scale
pub(super) fn mul_mask(gpu: &GpuBackend, x: &Tensor, mask: &Tensor, scale: f32) -> Result<Tensor> {
    const OP: &str = "mul_mask";
    check_same_shapes(OP, &x.shape, &[&mask.shape])?;
    let y = gpu.output(OP, x.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, x)?,
        gpu.tensor_buffer(OP, mask)?,
        gpu.tensor_buffer(OP, &y)?,
    ];
    gpu.dispatch(&MUL_MASK, &scaled(y.numel(), None, scale), &buffers, y.numel())?;
    Ok(y)
}

/// x (any) -> y = s·x
pub(super) fn scale(gpu: &GpuBackend, x: &Tensor, s: f32) -> Result<Tensor> {
    const OP: &str = "scale";
    let y = gpu.output(OP, x.dims())?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, &y)?];
    gpu.dispatch(&SCALE, &scaled(y.numel(), None, s), &buffers, y.numel())?;
    Ok(y)
}

/// a, b (same shape) -> y = a + b
pub(super) fn add(gpu: &GpuBackend, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "add";
    check_same_shapes(OP, &a.shape, &[&b.shape])?;
    let y = gpu.output(OP, a.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, a)?,
        gpu.tensor_buffer(OP, b)?,
        gpu.tensor_buffer(OP, &y)?,
    ];
    gpu.dispatch(&ADD, &params(y.numel(), None), &buffers, y.numel())?;
    Ok(y)
}
