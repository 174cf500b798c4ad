//! The CPU backend: the specification every other backend must match.
//!
//! Each op is written as the maths reads, forward next to backward, in one file per op
//! family (the trait's sections, in its order): `conv2d`, `linear`, `elementwise`, `pool`,
//! `concat`, `upsample`, `batch_norm`, `loss`, `optim`, `regularize`. Every op starts from
//! its checked shapes in `backend::geometry`, shared with the GPU backend. Convolution and
//! linear layers route their inner products through `gemm` (im2col + a register-blocked
//! matrix multiply); `reference` keeps the plain nested-loop convolution they are tested
//! against.

mod batch_norm;
mod concat;
mod conv2d;
mod elementwise;
mod gemm;
mod linear;
mod loss;
mod optim;
mod pool;
pub mod reference;
mod regularize;
mod upsample;

use std::future::ready;

use super::{
    Activation, AdamHyper, Backend, BatchNormOut, Conv2dParams, ConvTransposeParams, CrossEntropy, LossGrad, PointLoss,
    PoolParams, ReadFuture, ReadManyFuture, SgdHyper, UpsampleMode,
};
use crate::error::{shape_err, Result};
use crate::tensor::{Data, Indices, Shape, Tensor};
pub use gemm::{gemm, transpose};

#[derive(Default)]
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend
    }
}

/// The elements of a CPU tensor, or an error naming the op if it lives elsewhere.
fn host<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a [f32]> {
    t.cpu()
        .ok_or_else(|| shape_err(op, "tensor lives on the GPU, not the CPU", &[t.dims()]))
}

fn host_mut<'a>(op: &'static str, t: &'a mut Tensor) -> Result<&'a mut Vec<f32>> {
    match &mut t.data {
        Data::Cpu(v) => Ok(v),
        Data::Gpu(_) => Err(shape_err(op, "tensor lives on the GPU, not the CPU", &[t.shape.dims()])),
    }
}

fn tensor(dims: &[usize], data: Vec<f32>) -> Tensor {
    Tensor {
        shape: Shape::new(dims),
        data: Data::Cpu(data),
    }
}

fn host_indices<'a>(op: &'static str, i: &'a Indices) -> Result<&'a [u32]> {
    i.cpu()
        .ok_or_else(|| shape_err(op, "indices live on the GPU, not the CPU", &[i.dims()]))
}

/// Runs `f(image, chunk)` over the consecutive `len`-long chunks of `out`, one per image:
/// on every core natively (rayon), one after another in wasm (one thread). Each call writes
/// only its own chunk, so results do not depend on the number of threads.
fn per_image(out: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if len == 0 {
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len).enumerate().for_each(|(i, chunk)| f(i, chunk));
    }
    #[cfg(target_arch = "wasm32")]
    out.chunks_mut(len).enumerate().for_each(|(i, chunk)| f(i, chunk));
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    // ---- data movement -------------------------------------------------------------

    fn upload(&self, shape: Shape, data: &[f32]) -> Result<Tensor> {
        if shape.numel() != data.len() {
            return Err(shape_err(
                "upload",
                format!("{} values for the shape", data.len()),
                &[shape.dims()],
            ));
        }
        Ok(Tensor {
            shape,
            data: Data::Cpu(data.to_vec()),
        })
    }

    fn upload_indices(&self, shape: Shape, data: &[u32]) -> Result<Indices> {
        if shape.numel() != data.len() {
            return Err(shape_err(
                "upload_indices",
                format!("{} values for the shape", data.len()),
                &[shape.dims()],
            ));
        }
        Ok(Indices {
            shape,
            data: Data::Cpu(data.to_vec()),
        })
    }

    fn zeros(&self, shape: Shape) -> Result<Tensor> {
        let n = shape.numel();
        Ok(Tensor {
            shape,
            data: Data::Cpu(vec![0.0; n]),
        })
    }

    fn read<'a>(&'a self, x: &'a Tensor) -> ReadFuture<'a> {
        Box::pin(ready(host("read", x).map(|v| v.to_vec())))
    }

    fn read_many<'a>(&'a self, xs: &'a [&'a Tensor]) -> ReadManyFuture<'a> {
        Box::pin(ready(
            xs.iter().map(|x| host("read_many", x).map(|v| v.to_vec())).collect(),
        ))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    // ---- conv2d ----------------------------------------------------------------------

    fn conv2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: Conv2dParams) -> Result<Tensor> {
        conv2d::forward(x, w, b, p)
    }

    fn conv2d_backward_input(&self, dy: &Tensor, w: &Tensor, x_shape: &Shape, p: Conv2dParams) -> Result<Tensor> {
        conv2d::backward_input(dy, w, x_shape, p)
    }

    fn conv2d_backward_weight(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w_shape: &Shape,
        p: Conv2dParams,
    ) -> Result<(Tensor, Tensor)> {
        conv2d::backward_weight(dy, x, w_shape, p)
    }

    fn conv_transpose2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: ConvTransposeParams) -> Result<Tensor> {
        conv2d::transpose_forward(x, w, b, p)
    }

    fn conv_transpose2d_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w: &Tensor,
        p: ConvTransposeParams,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        conv2d::transpose_backward(dy, x, w, p)
    }

    // ---- linear ----------------------------------------------------------------------

    fn linear(&self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        linear::forward(x, w, b)
    }

    fn linear_backward(&self, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        linear::backward(dy, x, w)
    }

    // ---- elementwise -----------------------------------------------------------------

    fn activation(&self, x: &Tensor, a: Activation) -> Result<Tensor> {
        elementwise::activation(x, a)
    }

    fn activation_backward(&self, dy: &Tensor, x: &Tensor, y: &Tensor, a: Activation) -> Result<Tensor> {
        elementwise::activation_backward(dy, x, y, a)
    }

    fn mul_mask(&self, x: &Tensor, mask: &Tensor, scale: f32) -> Result<Tensor> {
        elementwise::mul_mask(x, mask, scale)
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        elementwise::scale(x, s)
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        elementwise::add(a, b)
    }

    fn add_assign(&self, acc: &mut Tensor, x: &Tensor) -> Result<()> {
        elementwise::add_assign(acc, x)
    }

    // ---- pool ------------------------------------------------------------------------

    fn max_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<(Tensor, Indices)> {
        pool::max_forward(x, p)
    }

    fn max_pool2d_backward(&self, dy: &Tensor, idx: &Indices, x_shape: &Shape) -> Result<Tensor> {
        pool::max_backward(dy, idx, x_shape)
    }

    fn avg_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<Tensor> {
        pool::avg_forward(x, p)
    }

    fn avg_pool2d_backward(&self, dy: &Tensor, x_shape: &Shape, p: PoolParams) -> Result<Tensor> {
        pool::avg_backward(dy, x_shape, p)
    }

    fn global_avg_pool(&self, x: &Tensor) -> Result<Tensor> {
        pool::global_avg_forward(x)
    }

    fn global_avg_pool_backward(&self, dy: &Tensor, x_shape: &Shape) -> Result<Tensor> {
        pool::global_avg_backward(dy, x_shape)
    }

    fn max_unpool2d(&self, x: &Tensor, idx: &Indices, out_shape: &Shape) -> Result<Tensor> {
        pool::max_unpool_forward(x, idx, out_shape)
    }

    fn max_unpool2d_backward(&self, dy: &Tensor, idx: &Indices) -> Result<Tensor> {
        pool::max_unpool_backward(dy, idx)
    }

    // ---- concat ----------------------------------------------------------------------

    fn concat_channels(&self, xs: &[&Tensor]) -> Result<Tensor> {
        concat::concat(xs)
    }

    fn slice_channels(&self, x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        concat::slice(x, start, len)
    }

    // ---- upsample --------------------------------------------------------------------

    fn upsample2d(&self, x: &Tensor, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
        upsample::forward(x, scale, mode)
    }

    fn upsample2d_backward(&self, dy: &Tensor, x_shape: &Shape, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
        upsample::backward(dy, x_shape, scale, mode)
    }

    // ---- batch_norm ------------------------------------------------------------------

    fn batch_norm_train(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<BatchNormOut> {
        batch_norm::train(x, gamma, beta, eps)
    }

    fn batch_norm_train_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        batch_norm::backward(dy, x, gamma, mean, invstd, true)
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
        batch_norm::eval(x, gamma, beta, running_mean, running_var, eps)
    }

    fn batch_norm_eval_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        batch_norm::backward(dy, x, gamma, mean, invstd, false)
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
        batch_norm::update_running(running_mean, running_var, mean, var, count, momentum)
    }

    // ---- loss ------------------------------------------------------------------------

    fn softmax_cross_entropy(&self, logits: &Tensor, labels: &Indices) -> Result<CrossEntropy> {
        loss::softmax_cross_entropy(logits, labels)
    }

    fn point_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        weight: &Tensor,
        kind: PointLoss,
        scale: f32,
    ) -> Result<LossGrad> {
        loss::point_loss(pred, target, weight, kind, scale)
    }

    fn softmax_ce_map(&self, logits: &Tensor, labels: &Indices, weight: &Tensor, scale: f32) -> Result<CrossEntropy> {
        loss::softmax_ce_map(logits, labels, weight, scale)
    }

    fn softmax_dice(&self, logits: &Tensor, labels: &Indices, scale: f32) -> Result<LossGrad> {
        loss::softmax_dice(logits, labels, scale)
    }

    // ---- optim -----------------------------------------------------------------------

    fn sgd_step(&self, p: &mut Tensor, g: &Tensor, v: &mut Tensor, h: SgdHyper) -> Result<()> {
        optim::sgd(p, g, v, h)
    }

    fn adam_step(&self, p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, h: AdamHyper) -> Result<()> {
        optim::adam(p, g, m, v, h)
    }

    // ---- regularize ------------------------------------------------------------------

    fn l1_l2_penalty(&self, w: &Tensor, l1: f32, l2: f32, acc: &mut Tensor) -> Result<()> {
        regularize::penalty(w, l1, l2, acc)
    }

    fn l1_l2_grad(&self, g: &mut Tensor, w: &Tensor, l1: f32, l2: f32) -> Result<()> {
        regularize::grad(g, w, l1, l2)
    }

    fn soft_threshold(&self, w: &mut Tensor, t: f32) -> Result<()> {
        regularize::soft_threshold(w, t)
    }
}
