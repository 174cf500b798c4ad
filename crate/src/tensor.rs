//! Shapes and tensor handles. No maths here: every computation is a Backend op.
//!
//! A `Tensor` is f32 data of a given shape that lives on one backend: a `Vec<f32>` on the
//! CPU or a storage buffer on the GPU. `Indices` is the same for u32 data (class labels,
//! max-pool switches).

use std::rc::Rc;

use crate::error::{shape_err, Result};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    pub fn new(dims: &[usize]) -> Self {
        Shape(dims.to_vec())
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    /// (N, C, H, W) of a rank-4 shape, or an error naming `op`.
    pub fn nchw(&self, op: &'static str) -> Result<(usize, usize, usize, usize)> {
        match self.0.as_slice() {
            &[n, c, h, w] => Ok((n, c, h, w)),
            d => Err(shape_err(op, "expected a rank-4 (N,C,H,W) tensor", &[d])),
        }
    }
    /// (rows, cols) of a rank-2 shape, or an error naming `op`.
    pub fn matrix(&self, op: &'static str) -> Result<(usize, usize)> {
        match self.0.as_slice() {
            &[r, c] => Ok((r, c)),
            d => Err(shape_err(op, "expected a rank-2 (rows, cols) tensor", &[d])),
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Where a GPU buffer goes when the tensor that holds it is dropped: the GPU backend's
/// buffer pool (backend/gpu/buffers.rs), which reuses it for a later tensor.
pub trait BufferHome {
    fn give_back(&self, buffer: wgpu::Buffer);
}

/// The GPU storage behind a `Tensor` or `Indices` (`Data::Gpu`). Its size is the pool
/// bucket, at least the tensor's bytes; the tensor's shape says how much is meaningful.
/// Dropping it returns the buffer to its home.
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    home: Rc<dyn BufferHome>,
}

impl GpuBuffer {
    pub fn new(buffer: wgpu::Buffer, home: Rc<dyn BufferHome>) -> GpuBuffer {
        GpuBuffer { buffer, home }
    }

    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Allocated size in bytes (the pool bucket).
    pub fn size_bytes(&self) -> u64 {
        self.buffer.size()
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.home.give_back(self.buffer.clone());
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} bytes)", self.buffer.size())
    }
}

/// Where a tensor's elements live.
pub enum Data<T> {
    Cpu(Vec<T>),
    Gpu(GpuBuffer),
}

pub struct Tensor {
    pub shape: Shape,
    pub data: Data<f32>,
}

pub struct Indices {
    pub shape: Shape,
    pub data: Data<u32>,
}

impl Tensor {
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    /// The same elements seen with another shape of equal size (flatten, unflatten).
    pub fn reshape(self, shape: Shape) -> Result<Tensor> {
        if shape.numel() != self.numel() {
            return Err(shape_err(
                "reshape",
                "element counts differ",
                &[self.dims(), shape.dims()],
            ));
        }
        Ok(Tensor { shape, data: self.data })
    }
    /// CPU elements, if this tensor lives on the CPU.
    pub fn cpu(&self) -> Option<&[f32]> {
        match &self.data {
            Data::Cpu(v) => Some(v),
            Data::Gpu(_) => None,
        }
    }
}

impl Indices {
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    pub fn cpu(&self) -> Option<&[u32]> {
        match &self.data {
            Data::Cpu(v) => Some(v),
            Data::Gpu(_) => None,
        }
    }
}
