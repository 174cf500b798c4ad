//! The WebGPU backend (wgpu: WebGPU in the browser, Vulkan natively). It must match the
//! CPU backend, which is the specification; `tests/gpu_parity.rs` checks that it does.
//!
//! How a training step runs here:
//! - tensors stay in GPU storage buffers (`GpuBuffer`, from a size-keyed pool);
//! - each op validates shapes on the host, then encodes one or two compute dispatches into
//!   the single pending command encoder (`recorder.rs`), with its parameters in a uniform
//!   slice of the params arena;
//! - `flush` (or `read`) submits everything at once; `read` then maps a staging buffer
//!   asynchronously and never blocks the browser; `read_many` copies several tensors into
//!   one staging buffer, so that they come back in one round trip (`round_trips` counts).
//!
//! Files: `context` gets a device, `pipelines` caches pipelines and layouts, `buffers` is
//! the pool, `recorder` the encoder and arena; each op family of the trait (`conv2d`,
//! `linear`, `elementwise`, `pool`, `concat`, `upsample`, `batch_norm`, `loss`, `optim`,
//! `regularize`) has one file here that encodes its ops, and one shader file of the same
//! name; `SHADER_FAMILIES` lists them.

mod batch_norm;
mod buffers;
mod concat;
mod context;
mod conv2d;
mod elementwise;
mod linear;
mod loss;
mod optim;
mod pipelines;
mod pool;
mod recorder;
mod regularize;
mod upsample;

pub use crate::tensor::GpuBuffer;
pub use pipelines::Family;

use std::rc::Rc;

use bytemuck::Pod;

use super::{
    Activation, AdamHyper, Backend, BatchNormOut, Conv2dParams, ConvTransposeParams, CrossEntropy, LossGrad, PointLoss,
    PoolParams, ReadFuture, ReadManyFuture, SgdHyper, UpsampleMode,
};
use crate::error::{shape_err, Error, Result};
use crate::tensor::{Data, Indices, Shape, Tensor};
use buffers::{BufferPool, Writer};
use context::Context;
use pipelines::Kernel;
use recorder::Recorder;

/// Every op family's shader and kernels, in the trait's order: the one table that
/// `GpuBackend::warm_up` builds pipelines from and that `tests/shaders_validate.rs`
/// validates with naga.
pub static SHADER_FAMILIES: [&Family; 10] = [
    &conv2d::FAMILY,
    &linear::FAMILY,
    &elementwise::FAMILY,
    &pool::FAMILY,
    &concat::FAMILY,
    &upsample::FAMILY,
    &batch_norm::FAMILY,
    &loss::FAMILY,
    &optim::FAMILY,
    &regularize::FAMILY,
];

/// Small by design (boxed parts), so that `Device` stays small too.
pub struct GpuBackend {
    ctx: Box<Context>,
    buffers: Rc<BufferPool>,
    rec: Box<Recorder>,
    /// Largest storage binding, in bytes: no tensor may be bigger.
    max_binding: u64,
}

/// Counters that show reuse: after the first step of a loop, none of them should grow
/// except `dispatches`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuStats {
    pub buffers_created: usize,
    pub pipelines: usize,
    pub dispatches: u64,
}

impl GpuBackend {
    /// Requests an adapter and a device. Software adapters (lavapipe, SwiftShader) are
    /// accepted; `is_software` tells the caller. Fails with `Error::Gpu` when there is none.
    pub async fn request() -> Result<GpuBackend> {
        let ctx = Context::acquire().await?;
        let max_binding = ctx.device.limits().max_storage_buffer_binding_size;
        let buffers = BufferPool::new(ctx.device.clone());
        let rec = Recorder::new(ctx.device.clone(), ctx.queue.clone(), ctx.errors.clone());
        Ok(GpuBackend {
            ctx: Box::new(ctx),
            buffers,
            rec: Box::new(rec),
            max_binding,
        })
    }

    /// Adapter name, backend and kind, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, cpu)".
    pub fn adapter_summary(&self) -> String {
        self.ctx.summary()
    }

    /// True for CPU implementations of the GPU API (lavapipe, SwiftShader, fallback adapters).
    pub fn is_software(&self) -> bool {
        self.ctx.is_software()
    }

    /// Creates every pipeline now instead of on first use, so that no training step pays
    /// for shader compilation; reports a shader the device rejects as `Error::Gpu`.
    pub fn warm_up(&self) -> Result<()> {
        for kernel in SHADER_FAMILIES.iter().flat_map(|family| family.kernels) {
            self.rec.prepare(kernel);
        }
        self.rec.take_errors()
    }

    /// Reads max-pool indices or labels back (the trait's `read` is for f32 tensors).
    pub async fn read_indices(&self, idx: &Indices) -> Result<Vec<u32>> {
        let buffer = self.indices_buffer("read_indices", idx)?;
        self.read_pod::<u32>("read_indices", buffer, idx.numel()).await
    }

    /// Frees the pool's idle buffers, e.g. after the model was rebuilt with other shapes;
    /// buffers held by live tensors are untouched.
    pub fn release_cached_buffers(&self) {
        self.buffers.release_free();
    }

    /// GPU -> host round trips so far: every readback maps one staging buffer once.
    pub fn round_trips(&self) -> u64 {
        self.buffers.maps()
    }

    pub fn stats(&self) -> GpuStats {
        GpuStats {
            buffers_created: self.buffers.created(),
            pipelines: self.rec.pipeline_count(),
            dispatches: self.rec.dispatch_count(),
        }
    }

    // ---- helpers shared by the op files ----------------------------------------------

    fn tensor_buffer<'t>(&self, op: &'static str, t: &'t Tensor) -> Result<&'t wgpu::Buffer> {
        match &t.data {
            Data::Gpu(b) => Ok(b.raw()),
            Data::Cpu(_) => Err(shape_err(op, "tensor lives on the CPU, not the GPU", &[t.dims()])),
        }
    }

    fn indices_buffer<'t>(&self, op: &'static str, i: &'t Indices) -> Result<&'t wgpu::Buffer> {
        match &i.data {
            Data::Gpu(b) => Ok(b.raw()),
            Data::Cpu(_) => Err(shape_err(op, "indices live on the CPU, not the GPU", &[i.dims()])),
        }
    }

    /// Storage for `numel` 4-byte elements, checked against the device's binding limit.
    fn storage(&self, op: &'static str, dims: &[usize], writer: Writer) -> Result<GpuBuffer> {
        let numel: usize = dims.iter().product();
        let bytes = (numel as u64).saturating_mul(4);
        if bytes > self.max_binding || numel > u32::MAX as usize {
            return Err(shape_err(
                op,
                format!(
                    "tensor of {bytes} bytes exceeds the device's storage binding limit of {} bytes",
                    self.max_binding
                ),
                &[dims],
            ));
        }
        Ok(self.buffers.storage(bytes, writer))
    }

    /// A new f32 tensor that a dispatch will write.
    fn output(&self, op: &'static str, dims: &[usize]) -> Result<Tensor> {
        let buffer = self.storage(op, dims, Writer::Encoder)?;
        Ok(Tensor {
            shape: Shape::new(dims),
            data: Data::Gpu(buffer),
        })
    }

    /// New u32 indices that a dispatch will write.
    fn output_indices(&self, op: &'static str, dims: &[usize]) -> Result<Indices> {
        let buffer = self.storage(op, dims, Writer::Encoder)?;
        Ok(Indices {
            shape: Shape::new(dims),
            data: Data::Gpu(buffer),
        })
    }

    fn dispatch<P: Pod>(&self, kernel: &Kernel, params: &P, buffers: &[&wgpu::Buffer], threads: usize) -> Result<()> {
        self.rec.dispatch(kernel, params, buffers, threads as u64)
    }

    fn dispatch_groups<P: Pod>(
        &self,
        kernel: &Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
        threads: usize,
    ) -> Result<()> {
        self.rec
            .dispatch_groups(kernel, params, buffers, groups, threads as u64)
    }

    fn upload_words<T: Pod>(&self, op: &'static str, shape: &Shape, data: &[T]) -> Result<GpuBuffer> {
        if data.len() != shape.numel() {
            return Err(shape_err(
                op,
                format!("{} values for the shape", data.len()),
                &[shape.dims()],
            ));
        }
        let buffer = self.storage(op, shape.dims(), Writer::Queue)?;
        if !data.is_empty() {
            self.rec
                .queue()
                .write_buffer(buffer.raw(), 0, bytemuck::cast_slice(data));
        }
        Ok(buffer)
    }

    /// Copies `count` elements of `buffer` to a staging buffer, submits, maps it
    /// asynchronously and collects the elements.
    async fn read_pod<T: Pod>(&self, op: &'static str, buffer: &wgpu::Buffer, count: usize) -> Result<Vec<T>> {
        let dims = [count];
        let mut read = self.read_pods::<T>(op, &[(buffer, &dims)]).await?;
        Ok(read.pop().unwrap_or_default())
    }

    /// One round trip for several buffers (the first numel(dims) elements of each): copies
    /// them back to back into one staging buffer, submits, maps it once, asynchronously,
    /// and splits the elements per buffer.
    async fn read_pods<T: Pod>(&self, op: &'static str, parts: &[(&wgpu::Buffer, &[usize])]) -> Result<Vec<Vec<T>>> {
        let size = std::mem::size_of::<T>() as u64;
        let lens: Vec<u64> = parts
            .iter()
            .map(|(_, dims)| Shape::new(dims).numel() as u64 * size)
            .collect();
        let bytes: u64 = lens.iter().sum();
        if bytes == 0 {
            self.flush()?;
            return Ok(vec![Vec::new(); parts.len()]);
        }
        let limit = self.ctx.device.limits().max_buffer_size;
        if buffers::bucket_for(bytes) > limit {
            let shapes: Vec<&[usize]> = parts.iter().map(|(_, dims)| *dims).collect();
            return Err(shape_err(
                op,
                format!("reading back {bytes} bytes at once exceeds the device's buffer limit of {limit} bytes"),
                &shapes,
            ));
        }
        let staging = buffers::Staging::new(&self.buffers, bytes);
        self.rec.with_encoder(|encoder| {
            let mut offset = 0;
            for ((buffer, _), &len) in parts.iter().zip(&lens) {
                if len > 0 {
                    encoder.copy_buffer_to_buffer(buffer, 0, staging.raw(), offset, len);
                }
                offset += len;
            }
        });
        self.flush()?;

        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.map_read(bytes, move |result| {
            // The receiver only disappears if the read future was dropped.
            let _ = sender.send(result);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("{op}: waiting for the GPU failed: {e}")))?;
        match receiver.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Gpu(format!("{op}: mapping the readback failed: {e}"))),
            Err(_) => {
                return Err(Error::Gpu(format!(
                    "{op}: the readback was never mapped (device lost?)"
                )))
            }
        }
        self.rec.take_errors()?;
        let view = staging
            .raw()
            .slice(..bytes)
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("{op}: reading the mapped range failed: {e}")))?;
        let mut start = 0;
        let mut read = Vec::with_capacity(parts.len());
        for len in lens {
            let end = start + len as usize;
            read.push(bytemuck::pod_collect_to_vec::<u8, T>(&view[start..end]));
            start = end;
        }
        Ok(read)
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> &'static str {
        "webgpu"
    }

    // ---- data movement -------------------------------------------------------------

    fn upload(&self, shape: Shape, data: &[f32]) -> Result<Tensor> {
        let buffer = self.upload_words("upload", &shape, data)?;
        Ok(Tensor {
            shape,
            data: Data::Gpu(buffer),
        })
    }

    fn upload_indices(&self, shape: Shape, data: &[u32]) -> Result<Indices> {
        let buffer = self.upload_words("upload_indices", &shape, data)?;
        Ok(Indices {
            shape,
            data: Data::Gpu(buffer),
        })
    }

    fn zeros(&self, shape: Shape) -> Result<Tensor> {
        let t = self.output("zeros", shape.dims())?;
        let buffer = self.tensor_buffer("zeros", &t)?;
        self.rec.with_encoder(|encoder| encoder.clear_buffer(buffer, 0, None));
        Ok(t)
    }

    fn read<'a>(&'a self, x: &'a Tensor) -> ReadFuture<'a> {
        Box::pin(async move {
            let buffer = self.tensor_buffer("read", x)?;
            self.read_pod::<f32>("read", buffer, x.numel()).await
        })
    }

    fn read_many<'a>(&'a self, xs: &'a [&'a Tensor]) -> ReadManyFuture<'a> {
        Box::pin(async move {
            let parts = (xs.iter())
                .map(|x| Ok((self.tensor_buffer("read_many", x)?, x.dims())))
                .collect::<Result<Vec<_>>>()?;
            self.read_pods::<f32>("read_many", &parts).await
        })
    }

    fn flush(&self) -> Result<()> {
        let submitted = self.rec.submit();
        if submitted {
            self.buffers.settle();
        }
        self.rec.take_errors()
    }

    // ---- conv2d ---------------------------------------------------------------------

    fn conv2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: Conv2dParams) -> Result<Tensor> {
        conv2d::forward(self, x, w, b, p)
    }

    fn conv2d_backward_input(&self, dy: &Tensor, w: &Tensor, x_shape: &Shape, p: Conv2dParams) -> Result<Tensor> {
        conv2d::backward_input(self, dy, w, x_shape, p)
    }

    fn conv2d_backward_weight(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w_shape: &Shape,
        p: Conv2dParams,
    ) -> Result<(Tensor, Tensor)> {
        conv2d::backward_weight(self, dy, x, w_shape, p)
    }

    fn conv_transpose2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: ConvTransposeParams) -> Result<Tensor> {
        conv2d::transpose_forward(self, x, w, b, p)
    }

    fn conv_transpose2d_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w: &Tensor,
        p: ConvTransposeParams,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        conv2d::transpose_backward(self, dy, x, w, p)
    }

    // ---- linear ---------------------------------------------------------------------

    fn linear(&self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        linear::forward(self, x, w, b)
    }

    fn linear_backward(&self, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        linear::backward(self, dy, x, w)
    }

    // ---- elementwise ----------------------------------------------------------------

    fn activation(&self, x: &Tensor, a: Activation) -> Result<Tensor> {
        elementwise::activation(self, x, a)
    }

    fn activation_backward(&self, dy: &Tensor, x: &Tensor, y: &Tensor, a: Activation) -> Result<Tensor> {
        elementwise::activation_backward(self, dy, x, y, a)
    }

    fn mul_mask(&self, x: &Tensor, mask: &Tensor, scale: f32) -> Result<Tensor> {
        elementwise::mul_mask(self, x, mask, scale)
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        elementwise::scale(self, x, s)
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        elementwise::add(self, a, b)
    }

    fn add_assign(&self, acc: &mut Tensor, x: &Tensor) -> Result<()> {
        elementwise::add_assign(self, acc, x)
    }

    // ---- pool -----------------------------------------------------------------------

    fn max_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<(Tensor, Indices)> {
        pool::max_forward(self, x, p)
    }

    fn max_pool2d_backward(&self, dy: &Tensor, idx: &Indices, x_shape: &Shape) -> Result<Tensor> {
        pool::max_backward(self, dy, idx, x_shape)
    }

    fn avg_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<Tensor> {
        pool::avg_forward(self, x, p)
    }

    fn avg_pool2d_backward(&self, dy: &Tensor, x_shape: &Shape, p: PoolParams) -> Result<Tensor> {
        pool::avg_backward(self, dy, x_shape, p)
    }

    fn global_avg_pool(&self, x: &Tensor) -> Result<Tensor> {
        pool::global_avg_forward(self, x)
    }

    fn global_avg_pool_backward(&self, dy: &Tensor, x_shape: &Shape) -> Result<Tensor> {
        pool::global_avg_backward(self, dy, x_shape)
    }

    fn max_unpool2d(&self, x: &Tensor, idx: &Indices, out_shape: &Shape) -> Result<Tensor> {
        pool::max_unpool_forward(self, x, idx, out_shape)
    }

    fn max_unpool2d_backward(&self, dy: &Tensor, idx: &Indices) -> Result<Tensor> {
        pool::max_unpool_backward(self, dy, idx)
    }

    // ---- concat ---------------------------------------------------------------------

    fn concat_channels(&self, xs: &[&Tensor]) -> Result<Tensor> {
        concat::concat(self, xs)
    }

    fn slice_channels(&self, x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        concat::slice(self, x, start, len)
    }

    // ---- upsample -------------------------------------------------------------------

    fn upsample2d(&self, x: &Tensor, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
        upsample::forward(self, x, scale, mode)
    }

    fn upsample2d_backward(&self, dy: &Tensor, x_shape: &Shape, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
        upsample::backward(self, dy, x_shape, scale, mode)
    }

    // ---- batch_norm -----------------------------------------------------------------

    fn batch_norm_train(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<BatchNormOut> {
        batch_norm::train(self, x, gamma, beta, eps)
    }

    fn batch_norm_train_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        batch_norm::backward(self, dy, x, gamma, mean, invstd, true)
    }

    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f32,
    ) -> Result<BatchNormOut> {
        batch_norm::eval(self, x, gamma, beta, running_mean, running_var, eps)
    }

    fn batch_norm_eval_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        batch_norm::backward(self, dy, x, gamma, mean, invstd, false)
    }

    fn batch_norm_update_running(
        &self,
        running_mean: &mut Tensor,
        running_var: &mut Tensor,
        mean: &Tensor,
        var: &Tensor,
        count: usize,
        momentum: f32,
    ) -> Result<()> {
        batch_norm::update_running(self, running_mean, running_var, mean, var, count, momentum)
    }

    // ---- loss -----------------------------------------------------------------------

    fn softmax_cross_entropy(&self, logits: &Tensor, labels: &Indices) -> Result<CrossEntropy> {
        loss::softmax_cross_entropy(self, logits, labels)
    }

    fn point_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        weight: &Tensor,
        kind: PointLoss,
        scale: f32,
    ) -> Result<LossGrad> {
        loss::point_loss(self, pred, target, weight, kind, scale)
    }

    fn softmax_ce_map(&self, logits: &Tensor, labels: &Indices, weight: &Tensor, scale: f32) -> Result<CrossEntropy> {
        loss::softmax_ce_map(self, logits, labels, weight, scale)
    }

    fn softmax_dice(&self, logits: &Tensor, labels: &Indices, scale: f32) -> Result<LossGrad> {
        loss::softmax_dice(self, logits, labels, scale)
    }

    // ---- optim ----------------------------------------------------------------------

    fn sgd_step(&self, p: &mut Tensor, g: &Tensor, v: &mut Tensor, h: SgdHyper) -> Result<()> {
        optim::sgd(self, p, g, v, h)
    }

    fn adam_step(&self, p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, h: AdamHyper) -> Result<()> {
        optim::adam(self, p, g, m, v, h)
    }

    // ---- regularize -----------------------------------------------------------------

    fn l1_l2_penalty(&self, w: &Tensor, l1: f32, l2: f32, acc: &mut Tensor) -> Result<()> {
        regularize::penalty(self, w, l1, l2, acc)
    }

    fn l1_l2_grad(&self, g: &mut Tensor, w: &Tensor, l1: f32, l2: f32) -> Result<()> {
        regularize::grad(self, g, w, l1, l2)
    }

    fn soft_threshold(&self, w: &mut Tensor, t: f32) -> Result<()> {
        regularize::soft_threshold(self, w, t)
    }
}
