//! Element-wise ops (shaders/elementwise.wgsl): any shape, one thread per element.

use bytemuck::{Pod, Zeroable};

use super::pipelines::{Access, Kernel, Shader};
use super::GpuBackend;
use crate::error::{shape_err, Result};
use crate::tensor::Tensor;

use Access::{Read, ReadWrite};

// Bindings: 1 a, 2 b, 3 out.
const RELU: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "elementwise_relu",
    storage: &[(1, Read), (3, ReadWrite)],
};
const RELU_BACKWARD: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "elementwise_relu_backward",
    storage: &[(1, Read), (2, Read), (3, ReadWrite)],
};
const ADD_ASSIGN: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "elementwise_add_assign",
    storage: &[(1, Read), (3, ReadWrite)],
};

/// Every kernel of this family, for `GpuBackend::warm_up`.
pub(super) const KERNELS: &[&Kernel] = &[&RELU, &RELU_BACKWARD, &ADD_ASSIGN];

/// Mirrors `ElementwiseParams` in elementwise.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    _pad: [u32; 3],
}

/// Element counts fit in u32 (see `GpuBackend::storage`).
fn params(count: usize) -> Params {
    Params {
        count: count as u32,
        _pad: [0; 3],
    }
}

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dims() != b.dims() {
        return Err(shape_err(op, "shapes differ", &[a.dims(), b.dims()]));
    }
    Ok(())
}

/// x (any) -> y = max(x, 0), same shape
pub(super) fn relu(gpu: &GpuBackend, x: &Tensor) -> Result<Tensor> {
    const OP: &str = "relu";
    let y = gpu.output(OP, x.dims())?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, &y)?];
    gpu.dispatch(&RELU, &params(y.numel()), &buffers, y.numel())?;
    Ok(y)
}

/// dy, y (same shape) -> dx = dy · [y > 0]
pub(super) fn relu_backward(gpu: &GpuBackend, dy: &Tensor, y: &Tensor) -> Result<Tensor> {
    const OP: &str = "relu_backward";
    same_shape(OP, dy, y)?;
    let dx = gpu.output(OP, dy.dims())?;
    let buffers = [
        gpu.tensor_buffer(OP, dy)?,
        gpu.tensor_buffer(OP, y)?,
        gpu.tensor_buffer(OP, &dx)?,
    ];
    gpu.dispatch(&RELU_BACKWARD, &params(dx.numel()), &buffers, dx.numel())?;
    Ok(dx)
}

/// acc += x, same shape, in place
pub(super) fn add_assign(gpu: &GpuBackend, acc: &mut Tensor, x: &Tensor) -> Result<()> {
    const OP: &str = "add_assign";
    same_shape(OP, acc, x)?;
    let buffers = [gpu.tensor_buffer(OP, x)?, gpu.tensor_buffer(OP, acc)?];
    gpu.dispatch(&ADD_ASSIGN, &params(x.numel()), &buffers, x.numel())
}
