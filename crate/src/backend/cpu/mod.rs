//! The CPU backend: the specification every other backend must match.
//!
//! Each op is written as the maths reads, forward next to backward. Convolution and linear
//! layers route their inner products through `gemm` (im2col + a register-blocked matrix
//! multiply); `reference` keeps the plain nested-loop convolution they are tested against.

mod gemm;
pub mod reference;

use std::future::ready;

use super::{
    out_len, transposed_out_len, upsample_source, Activation, AdamHyper, Backend, BatchNormOut, Conv2dParams,
    ConvTransposeParams, CrossEntropy, LossGrad, PointLoss, PoolParams, ReadFuture, ReadManyFuture, SgdHyper,
    UpsampleMode,
};
use crate::error::{shape_err, Error, Result};
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

/// A switch as a position in a plane of `cells`, or an error naming the op.
fn switch(op: &'static str, i: u32, cells: usize, idx: &Indices) -> Result<usize> {
    let i = i as usize;
    if i >= cells {
        return Err(shape_err(
            op,
            format!("index {i} lies outside the plane of {cells} cells"),
            &[idx.dims()],
        ));
    }
    Ok(i)
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

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(shape_err(op, "shapes differ", &[a.dims(), b.dims()]));
    }
    Ok(())
}

/// Checks that an accumulator is a single number, shape (1).
pub fn scalar_geometry(op: &'static str, acc: &Shape) -> Result<()> {
    if acc.dims() != [1] {
        return Err(shape_err(op, "the accumulator must have shape [1]", &[acc.dims()]));
    }
    Ok(())
}

/// torch.sign: -1, 0 or 1 (`f32::signum` would give 1 for +0).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Checks x (N,C,H,W) against w (O,C,K,K) and b (O); returns (n, c, h, w, o, k, oh, ow).
pub fn conv_geometry(op: &'static str, x: &Shape, w: &Shape, p: Conv2dParams) -> Result<[usize; 8]> {
    let (n, c, h, wd) = x.nchw(op)?;
    let (o, wc, kh, kw) = w.nchw(op)?;
    if wc != c {
        return Err(shape_err(
            op,
            format!("input has {c} channels, kernel expects {wc}"),
            &[x.dims(), w.dims()],
        ));
    }
    if kh != kw {
        return Err(shape_err(op, "kernel must be square", &[w.dims()]));
    }
    let (Some(oh), Some(ow)) = (
        out_len(h, kh, p.stride, p.padding),
        out_len(wd, kw, p.stride, p.padding),
    ) else {
        return Err(shape_err(
            op,
            format!(
                "kernel {kh} with padding {} and stride {} does not fit the input",
                p.padding, p.stride
            ),
            &[x.dims(), w.dims()],
        ));
    };
    Ok([n, c, h, wd, o, kh, oh, ow])
}

/// Checks x (N,C,H,W) against w (C,O,K,K) and b (O) of a transposed convolution; returns
/// (n, c, h, w, o, k, oh, ow) with OH = (H-1)·stride - 2·padding + K + output_padding.
pub fn conv_transpose_geometry(
    op: &'static str,
    x: &Shape,
    w: &Shape,
    b: &Shape,
    p: ConvTransposeParams,
) -> Result<[usize; 8]> {
    let (n, c, h, wd) = x.nchw(op)?;
    let (wc, o, kh, kw) = w.nchw(op)?;
    let shapes = [x.dims(), w.dims(), b.dims()];
    if wc != c {
        return Err(shape_err(
            op,
            format!("input has {c} channels, kernel (C,O,K,K) expects {wc}"),
            &shapes,
        ));
    }
    if kh != kw || kh == 0 {
        return Err(shape_err(op, "kernel must be square and non-empty", &shapes));
    }
    if b.dims() != [o] {
        return Err(shape_err(op, "bias must have one value per output channel", &shapes));
    }
    if p.stride == 0 || p.output_padding >= p.stride {
        return Err(shape_err(
            op,
            format!(
                "output_padding {} must be smaller than stride {} (stride at least 1)",
                p.output_padding, p.stride
            ),
            &shapes,
        ));
    }
    let (Some(oh), Some(ow)) = (transposed_out_len(h, kh, p), transposed_out_len(wd, kw, p)) else {
        return Err(shape_err(
            op,
            format!(
                "padding {} leaves no output for kernel {kh}, stride {}",
                p.padding, p.stride
            ),
            &shapes,
        ));
    };
    Ok([n, c, h, wd, o, kh, oh, ow])
}

/// Checks x (N,C,H,W) against a pooling window; returns (n, c, h, w, oh, ow). The window
/// must be non-empty and, as in PyTorch, the padding at most half of it, so that every
/// window covers at least one input cell.
pub fn pool_geometry(op: &'static str, x: &Shape, p: PoolParams) -> Result<[usize; 6]> {
    let (n, c, h, w) = x.nchw(op)?;
    if p.kernel == 0 || 2 * p.padding > p.kernel {
        return Err(shape_err(
            op,
            format!(
                "window {} must be at least 1 and padding {} at most half of it",
                p.kernel, p.padding
            ),
            &[x.dims()],
        ));
    }
    let (Some(oh), Some(ow)) = (
        out_len(h, p.kernel, p.stride, p.padding),
        out_len(w, p.kernel, p.stride, p.padding),
    ) else {
        return Err(shape_err(
            op,
            format!(
                "window {} stride {} padding {} does not fit the input",
                p.kernel, p.stride, p.padding
            ),
            &[x.dims()],
        ));
    };
    Ok([n, c, h, w, oh, ow])
}

/// The input cells under window `o` along an axis of length `len`: o·stride - padding ..
/// o·stride - padding + kernel, clipped to 0..len (the padding holds no cells).
pub fn pool_window(o: usize, p: PoolParams, len: usize) -> std::ops::Range<usize> {
    let start = o * p.stride;
    start.saturating_sub(p.padding).min(len)..(start + p.kernel).saturating_sub(p.padding).min(len)
}

/// Checks the inputs of a channel concat: all (N,Ci,H,W) or all (N,Ci), agreeing on every
/// dimension but the channels, none empty. Returns the output dims (N,ΣCi,...) and the
/// number of elements per channel (H·W, or 1).
pub fn concat_geometry(op: &'static str, xs: &[&Tensor]) -> Result<(Vec<usize>, usize)> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.dims()).collect();
    let Some(first) = shapes.first() else {
        return Err(shape_err(op, "needs at least one input", &[]));
    };
    if first.len() != 2 && first.len() != 4 {
        return Err(shape_err(op, "inputs must be (N,C,H,W) or (N,C)", &shapes));
    }
    let fits = |s: &&[usize]| s.len() == first.len() && s[0] == first[0] && s[2..] == first[2..] && s[1] > 0;
    if !shapes.iter().all(fits) {
        return Err(shape_err(
            op,
            "inputs must agree on every dimension but the channels, and have at least one channel",
            &shapes,
        ));
    }
    let mut dims = first.to_vec();
    dims[1] = shapes.iter().map(|s| s[1]).sum();
    Ok((dims, first[2..].iter().product()))
}

/// Checks a channel slice of x (N,C,H,W) or (N,C); returns the output dims (N,len,...) and
/// the number of elements per channel.
pub fn slice_geometry(op: &'static str, x: &Shape, start: usize, len: usize) -> Result<(Vec<usize>, usize)> {
    let dims = x.dims();
    if (dims.len() != 2 && dims.len() != 4) || len == 0 || start + len > dims[1] {
        return Err(shape_err(
            op,
            format!(
                "channels {start}..{} must be a non-empty range of a (N,C,H,W) or (N,C) tensor",
                start + len
            ),
            &[dims],
        ));
    }
    let mut out = dims.to_vec();
    out[1] = len;
    Ok((out, dims[2..].iter().product()))
}

/// Checks a point loss: pred, target and weight of one shape, a finite scale and, for
/// smooth L1, a finite beta ≥ 0; returns the element count.
pub fn point_loss_geometry(
    op: &'static str,
    pred: &Shape,
    target: &Shape,
    weight: &Shape,
    kind: PointLoss,
    scale: f32,
) -> Result<usize> {
    if pred != target || pred != weight {
        return Err(shape_err(
            op,
            format!("{}: pred, target and weight must have one shape", kind.name()),
            &[pred.dims(), target.dims(), weight.dims()],
        ));
    }
    if let PointLoss::SmoothL1 { beta } = kind {
        if !(beta >= 0.0 && beta.is_finite()) {
            return Err(shape_err(
                op,
                format!("smooth_l1: beta must be finite and ≥ 0, got {beta}"),
                &[pred.dims()],
            ));
        }
    }
    if !scale.is_finite() {
        return Err(shape_err(
            op,
            format!("scale must be finite, got {scale}"),
            &[pred.dims()],
        ));
    }
    Ok(pred.numel())
}

/// Checks per-pixel class maps: logits (N,K,H,W) with labels (N,H,W) (and, when given, a
/// weight (N,H,W)), or logits (N,K) with labels (N); returns (n, k, hw) with hw = H·W
/// (1 for (N,K)). K must be at least 1.
pub fn class_map_geometry(
    op: &'static str,
    logits: &Shape,
    labels: &Shape,
    weight: Option<&Shape>,
) -> Result<[usize; 3]> {
    let (n, k, pixels): (usize, usize, &[usize]) = match logits.dims() {
        [n, k] => (*n, *k, &[]),
        [n, k, _, _] => (*n, *k, &logits.dims()[2..]),
        d => return Err(shape_err(op, "logits must be (N,K,H,W) or (N,K)", &[d])),
    };
    let mut want = vec![n];
    want.extend_from_slice(pixels);
    let fits = labels.dims() == want && weight.is_none_or(|w| w.dims() == want);
    if !fits || k == 0 {
        let mut shapes = vec![logits.dims(), labels.dims()];
        shapes.extend(weight.map(|w| w.dims()));
        return Err(shape_err(
            op,
            format!("need K ≥ 1 classes and labels (and weights) of shape {want:?}, one per pixel"),
            &shapes,
        ));
    }
    Ok([n, k, pixels.iter().product()])
}

/// A label as a class index, or an error naming the op.
fn class(op: &'static str, y: u32, k: usize, logits: &Tensor) -> Result<usize> {
    let y = y as usize;
    if y >= k {
        return Err(shape_err(
            op,
            format!("label {y} out of range for {k} classes"),
            &[logits.dims()],
        ));
    }
    Ok(y)
}

/// The softmax over the K logits of one pixel, which sit `hw` apart starting at `base`
/// (f64), the first argmax and logsumexp(z).
fn pixel_softmax(zs: &[f32], base: usize, hw: usize, k: usize) -> (Vec<f64>, usize, f64) {
    let z = |j: usize| zs[base + j * hw] as f64;
    let mut arg = 0;
    for j in 1..k {
        if z(j) > z(arg) {
            arg = j;
        }
    }
    let max = z(arg);
    let e: Vec<f64> = (0..k).map(|j| (z(j) - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    (e.into_iter().map(|e| e / sum).collect(), arg, max + sum.ln())
}

/// ℓ(p, t) and ∂ℓ/∂p of one element (see `PointLoss`).
fn point_loss_term(kind: PointLoss, p: f64, t: f64) -> (f64, f64) {
    match kind {
        PointLoss::SmoothL1 { beta } => {
            let (d, beta) = (p - t, beta as f64);
            if d.abs() < beta {
                (0.5 * d * d / beta, d / beta)
            } else {
                (
                    d.abs() - 0.5 * beta,
                    if d > 0.0 {
                        1.0
                    } else if d < 0.0 {
                        -1.0
                    } else {
                        0.0
                    },
                )
            }
        }
        PointLoss::BceWithLogits => {
            let loss = p.max(0.0) - p * t + (-p.abs()).exp().ln_1p();
            (loss, 1.0 / (1.0 + (-p).exp()) - t)
        }
        PointLoss::Mse => ((p - t) * (p - t), 2.0 * (p - t)),
    }
}

/// Checks x (N,C,OH,OW) and its switches against the unpooled shape (N,C,H,W); returns
/// (n·c, h·w, oh·ow): planes, cells per output plane, switches per plane.
pub fn unpool_geometry(op: &'static str, x: &Shape, idx: &Shape, out: &Shape) -> Result<[usize; 3]> {
    let (n, c, h, w) = out.nchw(op)?;
    let (xn, xc, oh, ow) = x.nchw(op)?;
    if x != idx || (xn, xc) != (n, c) {
        return Err(shape_err(
            op,
            "x and indices must be (N,C,OH,OW) with the N and C of the output (N,C,H,W)",
            &[x.dims(), idx.dims(), out.dims()],
        ));
    }
    Ok([n * c, h * w, oh * ow])
}

/// Checks x (N,C,H,W) against an upsampling by `scale`; returns (n, c, h, w, oh, ow).
pub fn upsample_geometry(op: &'static str, x: &Shape, scale: usize) -> Result<[usize; 6]> {
    let (n, c, h, w) = x.nchw(op)?;
    if scale == 0 || h == 0 || w == 0 {
        return Err(shape_err(
            op,
            "scale must be at least 1, the input non-empty",
            &[x.dims()],
        ));
    }
    Ok([n, c, h, w, h * scale, w * scale])
}

/// Checks x (N,C,H,W) or (N,C) against per-channel tensors (gamma, beta, statistics), each
/// of which must be (C); returns (n, c, hw): N images, C channels, H·W values per channel
/// and image (1 for (N,C)).
pub fn batch_norm_geometry(op: &'static str, x: &Shape, per_channel: &[&Shape]) -> Result<[usize; 3]> {
    let (n, c, hw) = match *x.dims() {
        [n, c] => (n, c, 1),
        [n, c, h, w] => (n, c, h * w),
        ref d => return Err(shape_err(op, "expected x (N,C,H,W) or (N,C)", &[d])),
    };
    if per_channel.iter().any(|s| s.dims() != [c]) {
        let shapes: Vec<&[usize]> = std::iter::once(x.dims())
            .chain(per_channel.iter().map(|s| s.dims()))
            .collect();
        return Err(shape_err(
            op,
            format!("gamma, beta and the statistics must each hold one value per channel ({c})"),
            &shapes,
        ));
    }
    Ok([n, c, hw])
}

/// `batch_norm_geometry` for training mode, which also needs n = N·H·W ≥ 2 values per
/// channel (PyTorch: "Expected more than 1 value per channel when training").
pub fn batch_norm_train_geometry(op: &'static str, x: &Shape, per_channel: &[&Shape]) -> Result<[usize; 3]> {
    let g = batch_norm_geometry(op, x, per_channel)?;
    if g[0] * g[2] < 2 {
        return Err(shape_err(
            op,
            "training needs more than one value per channel (N·H·W ≥ 2)",
            &[x.dims()],
        ));
    }
    Ok(g)
}

/// Checks the running update's per-channel tensors, which must all be (C), and its
/// count (≥ 2, for the unbiased variance n/(n-1)); returns C.
pub fn batch_norm_running_geometry(op: &'static str, stats: &[&Shape], count: usize) -> Result<usize> {
    let shapes: Vec<&[usize]> = stats.iter().map(|s| s.dims()).collect();
    let c = match shapes.first() {
        Some(&&[c]) if shapes.iter().all(|s| *s == [c]) => c,
        _ => {
            return Err(shape_err(
                op,
                "running mean, running var, batch mean and batch var must all be (C)",
                &shapes,
            ))
        }
    };
    if count < 2 {
        return Err(shape_err(
            op,
            format!("the batch statistics need a count of at least 2 values per channel, got {count}"),
            &shapes,
        ));
    }
    Ok(c)
}

/// y = gamma·(x - mean)·invstd + beta, each value with its channel's statistics.
fn batch_norm_normalize(
    xs: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    invstd: &[f32],
    g: [usize; 3],
) -> Vec<f32> {
    let [_, c, hw] = g;
    let mut y = vec![0.0; xs.len()];
    for (i, (y, &x)) in y.iter_mut().zip(xs).enumerate() {
        let ch = i / hw % c;
        *y = gamma[ch] * (x - mean[ch]) * invstd[ch] + beta[ch];
    }
    y
}

/// The batch norm gradient, shared by both modes. Per channel (f64 sums):
/// dbeta = Σ dy, dgamma = Σ dy·xhat with xhat = (x - mean)·invstd; then
/// dx = gamma·invstd·dy in eval mode (constant statistics), and in training mode, where
/// mean and invstd depend on x: dx = gamma·invstd·(dy - dbeta/n - xhat·dgamma/n).
fn batch_norm_gradients(
    op: &'static str,
    dy: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    through_batch_stats: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let g = batch_norm_geometry(op, &x.shape, &[&gamma.shape, &mean.shape, &invstd.shape])?;
    if dy.shape != x.shape {
        return Err(shape_err(op, "dy must have the shape of x", &[dy.dims(), x.dims()]));
    }
    let [n, c, hw] = g;
    let (dys, xs, gs) = (host(op, dy)?, host(op, x)?, host(op, gamma)?);
    let (ms, is) = (host(op, mean)?, host(op, invstd)?);
    let mut dbeta = vec![0.0f64; c];
    let mut dgamma = vec![0.0f64; c];
    for (i, (&d, &x)) in dys.iter().zip(xs).enumerate() {
        let ch = i / hw % c;
        dbeta[ch] += d as f64;
        dgamma[ch] += d as f64 * ((x - ms[ch]) * is[ch]) as f64;
    }
    let count = (n * hw) as f64;
    let mut dx = vec![0.0; dys.len()];
    for (i, (dx, (&d, &x))) in dx.iter_mut().zip(dys.iter().zip(xs)).enumerate() {
        let ch = i / hw % c;
        let mut d = d as f64;
        if through_batch_stats {
            let xhat = ((x - ms[ch]) * is[ch]) as f64;
            d -= (dbeta[ch] + xhat * dgamma[ch]) / count;
        }
        *dx = (gs[ch] as f64 * is[ch] as f64 * d) as f32;
    }
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|s| s as f32).collect::<Vec<f32>>();
    Ok((
        tensor(x.dims(), dx),
        tensor(&[c], to_f32(dgamma)),
        tensor(&[c], to_f32(dbeta)),
    ))
}

/// The output columns `xo` whose input column `xo·s + kw - pad` falls inside 0..w.
fn valid_cols(w: usize, kw: usize, s: usize, pad: usize, ow: usize) -> std::ops::Range<usize> {
    // xo·s + kw >= pad  and  xo·s + kw - pad <= w - 1
    let lo = pad.saturating_sub(kw).div_ceil(s);
    let hi = if w + pad > kw {
        ((w - 1 + pad - kw) / s + 1).min(ow)
    } else {
        0
    };
    lo.min(hi)..hi
}

/// x_n (C,H,W) -> cols (C·K·K, OH·OW): column (oh,ow) holds the input patch under the kernel.
/// Each row segment is split into its zero-padding ends and the strided copy between them.
#[allow(clippy::too_many_arguments)]
fn im2col(x: &[f32], c: usize, h: usize, w: usize, k: usize, p: Conv2dParams, oh: usize, ow: usize, cols: &mut [f32]) {
    let (s, pad) = (p.stride, p.padding);
    for ci in 0..c {
        for kh in 0..k {
            for kw in 0..k {
                let row = &mut cols[((ci * k + kh) * k + kw) * oh * ow..][..oh * ow];
                let valid = valid_cols(w, kw, s, pad, ow);
                for y in 0..oh {
                    let out = &mut row[y * ow..][..ow];
                    let ih = (y * s + kh) as isize - pad as isize;
                    if ih < 0 || ih as usize >= h || valid.is_empty() {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &x[(ci * h + ih as usize) * w..][..w];
                    out[..valid.start].fill(0.0);
                    out[valid.end..].fill(0.0);
                    let first = valid.start * s + kw - pad;
                    if s == 1 {
                        out[valid.clone()].copy_from_slice(&src[first..first + valid.len()]);
                    } else {
                        for (o, xo) in out[valid.clone()].iter_mut().zip((first..).step_by(s)) {
                            *o = src[xo];
                        }
                    }
                }
            }
        }
    }
}

/// cols (C·K·K, OH·OW) -> dx_n (C,H,W): the adjoint of im2col, adding each patch back.
#[allow(clippy::too_many_arguments)]
fn col2im(cols: &[f32], c: usize, h: usize, w: usize, k: usize, p: Conv2dParams, oh: usize, ow: usize, dx: &mut [f32]) {
    let (s, pad) = (p.stride, p.padding);
    for ci in 0..c {
        for kh in 0..k {
            for kw in 0..k {
                let row = &cols[((ci * k + kh) * k + kw) * oh * ow..][..oh * ow];
                let valid = valid_cols(w, kw, s, pad, ow);
                if valid.is_empty() {
                    continue;
                }
                for y in 0..oh {
                    let ih = (y * s + kh) as isize - pad as isize;
                    if ih < 0 || ih as usize >= h {
                        continue;
                    }
                    let dst = &mut dx[(ci * h + ih as usize) * w..][..w];
                    let first = valid.start * s + kw - pad;
                    let src = &row[y * ow..][valid.clone()];
                    for (g, xo) in src.iter().zip((first..).step_by(s)) {
                        dst[xo] += g;
                    }
                }
            }
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

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

    // x (N,C,H,W), w (O,C,K,K), b (O) -> y (N,O,OH,OW)
    // y[n,o] = w[o] (C·K·K) · im2col(x[n]) (C·K·K, OH·OW) + b[o]
    fn conv2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: Conv2dParams) -> Result<Tensor> {
        let [n, c, h, wd, o, k, oh, ow] = conv_geometry("conv2d", &x.shape, &w.shape, p)?;
        if b.dims() != [o] {
            return Err(shape_err(
                "conv2d",
                "bias must have one value per output channel",
                &[w.dims(), b.dims()],
            ));
        }
        let (xs, ws, bs) = (host("conv2d", x)?, host("conv2d", w)?, host("conv2d", b)?);
        let (ckk, ohw) = (c * k * k, oh * ow);
        let mut y = vec![0.0; n * o * ohw];
        per_image(&mut y, o * ohw, |img, yn| {
            let mut cols = vec![0.0; ckk * ohw];
            im2col(&xs[img * c * h * wd..][..c * h * wd], c, h, wd, k, p, oh, ow, &mut cols);
            gemm(o, ohw, ckk, ws, &cols, yn, false);
            for (oc, plane) in yn.chunks_mut(ohw).enumerate() {
                plane.iter_mut().for_each(|v| *v += bs[oc]);
            }
        });
        Ok(tensor(&[n, o, oh, ow], y))
    }

    // dy (N,O,OH,OW), w (O,C,K,K) -> dx (N,C,H,W)
    // dcols = wᵀ (C·K·K, O) · dy[n] (O, OH·OW); dx[n] = col2im(dcols)
    fn conv2d_backward_input(&self, dy: &Tensor, w: &Tensor, x_shape: &Shape, p: Conv2dParams) -> Result<Tensor> {
        let [n, c, h, wd, o, k, oh, ow] = conv_geometry("conv2d_backward_input", x_shape, &w.shape, p)?;
        if dy.dims() != [n, o, oh, ow] {
            return Err(shape_err(
                "conv2d_backward_input",
                "dy does not match the conv output",
                &[dy.dims(), x_shape.dims(), w.dims()],
            ));
        }
        let (dys, ws) = (host("conv2d_backward_input", dy)?, host("conv2d_backward_input", w)?);
        let (ckk, ohw) = (c * k * k, oh * ow);
        let mut wt = vec![0.0; ckk * o];
        transpose(o, ckk, ws, &mut wt);
        let mut dx = vec![0.0; n * c * h * wd];
        per_image(&mut dx, c * h * wd, |img, dxn| {
            let mut dcols = vec![0.0; ckk * ohw];
            gemm(ckk, ohw, o, &wt, &dys[img * o * ohw..][..o * ohw], &mut dcols, false);
            col2im(&dcols, c, h, wd, k, p, oh, ow, dxn);
        });
        Ok(tensor(x_shape.dims(), dx))
    }

    // dy (N,O,OH,OW), x (N,C,H,W) -> dw (O,C,K,K) = Σn dy[n] · im2col(x[n])ᵀ, db (O) = Σ dy
    // Computed as dwᵀ (C·K·K, O) = Σn im2col(x[n]) · dy[n]ᵀ, so only the small dy[n] is transposed.
    fn conv2d_backward_weight(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w_shape: &Shape,
        p: Conv2dParams,
    ) -> Result<(Tensor, Tensor)> {
        let [n, c, h, wd, o, k, oh, ow] = conv_geometry("conv2d_backward_weight", &x.shape, w_shape, p)?;
        if dy.dims() != [n, o, oh, ow] {
            return Err(shape_err(
                "conv2d_backward_weight",
                "dy does not match the conv output",
                &[dy.dims(), x.dims(), w_shape.dims()],
            ));
        }
        let (dys, xs) = (host("conv2d_backward_weight", dy)?, host("conv2d_backward_weight", x)?);
        let (ckk, ohw) = (c * k * k, oh * ow);
        // one partial dwᵀ per image, summed in image order (the same sum on any thread count)
        let mut partial = vec![0.0; n * ckk * o];
        per_image(&mut partial, ckk * o, |img, dw_t| {
            let mut cols = vec![0.0; ckk * ohw];
            let mut dy_t = vec![0.0; ohw * o];
            im2col(&xs[img * c * h * wd..][..c * h * wd], c, h, wd, k, p, oh, ow, &mut cols);
            transpose(o, ohw, &dys[img * o * ohw..][..o * ohw], &mut dy_t);
            gemm(ckk, o, ohw, &cols, &dy_t, dw_t, false);
        });
        let mut dw_t = vec![0.0; ckk * o];
        for part in partial.chunks(ckk * o) {
            dw_t.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
        let mut db = vec![0.0; o];
        for img in 0..n {
            for (oc, plane) in dys[img * o * ohw..][..o * ohw].chunks(ohw).enumerate() {
                db[oc] += plane.iter().sum::<f32>();
            }
        }
        let mut dw = vec![0.0; o * ckk];
        transpose(ckk, o, &dw_t, &mut dw);
        Ok((tensor(w_shape.dims(), dw), tensor(&[o], db)))
    }

    // x (N,C,H,W), w (C,O,K,K), b (O) -> y (N,O,OH,OW)
    // The adjoint of conv2d with weight w (C out, O in): y = conv2d_backward_input(x, w) + b,
    // so each x[n,c,i,j] scatters x · w[c] into the K×K patch at (i·s - pad, j·s - pad).
    fn conv_transpose2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: ConvTransposeParams) -> Result<Tensor> {
        let op = "conv_transpose2d";
        let [n, _, _, _, o, _, oh, ow] = conv_transpose_geometry(op, &x.shape, &w.shape, &b.shape, p)?;
        let mut y = self.conv2d_backward_input(x, w, &Shape::new(&[n, o, oh, ow]), p.conv())?;
        let bs = host(op, b)?;
        for (plane, v) in host_mut(op, &mut y)?.chunks_mut(oh * ow).enumerate() {
            v.iter_mut().for_each(|v| *v += bs[plane % o]);
        }
        Ok(y)
    }

    // dy (N,O,OH,OW), x (N,C,H,W), w (C,O,K,K) -> dx (N,C,H,W) = conv2d(dy, w),
    // dw (C,O,K,K) = conv2d's weight gradient with dy as its input and x as its output
    // gradient, db (O) = Σ dy over n, oh, ow
    fn conv_transpose2d_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w: &Tensor,
        p: ConvTransposeParams,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = "conv_transpose2d_backward";
        let b_shape = Shape::new(&[w.dims().get(1).copied().unwrap_or(0)]);
        let [n, c, _, _, o, _, oh, ow] = conv_transpose_geometry(op, &x.shape, &w.shape, &b_shape, p)?;
        if dy.dims() != [n, o, oh, ow] {
            return Err(shape_err(
                op,
                "dy does not match the transposed conv output",
                &[dy.dims(), x.dims(), w.dims()],
            ));
        }
        let no_bias = tensor(&[c], vec![0.0; c]);
        let dx = self.conv2d(dy, w, &no_bias, p.conv())?;
        let (dw, _) = self.conv2d_backward_weight(x, dy, &w.shape, p.conv())?;
        let mut db = vec![0.0; o];
        for (plane, v) in host(op, dy)?.chunks(oh * ow).enumerate() {
            db[plane % o] += v.iter().sum::<f32>();
        }
        Ok((dx, dw, tensor(&[o], db)))
    }

    // x (N,K), w (O,K), b (O) -> y (N,O) = x · wᵀ + b
    fn linear(&self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (n, kx) = x.shape.matrix("linear")?;
        let (o, kw) = w.shape.matrix("linear")?;
        if kx != kw || b.dims() != [o] {
            return Err(shape_err(
                "linear",
                "x (N,K), w (O,K), b (O) do not fit",
                &[x.dims(), w.dims(), b.dims()],
            ));
        }
        let (xs, ws, bs) = (host("linear", x)?, host("linear", w)?, host("linear", b)?);
        let mut wt = vec![0.0; kw * o];
        transpose(o, kw, ws, &mut wt);
        let mut y = vec![0.0; n * o];
        gemm(n, o, kx, xs, &wt, &mut y, false);
        for row in y.chunks_mut(o) {
            row.iter_mut().zip(bs).for_each(|(v, b)| *v += b);
        }
        Ok(tensor(&[n, o], y))
    }

    // dy (N,O), x (N,K), w (O,K) -> dx (N,K) = dy · w, dw (O,K) = dyᵀ · x, db (O) = Σn dy
    fn linear_backward(&self, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (n, k) = x.shape.matrix("linear_backward")?;
        let (o, kw) = w.shape.matrix("linear_backward")?;
        if kw != k || dy.dims() != [n, o] {
            return Err(shape_err(
                "linear_backward",
                "dy (N,O), x (N,K), w (O,K) do not fit",
                &[dy.dims(), x.dims(), w.dims()],
            ));
        }
        let (dys, xs, ws) = (
            host("linear_backward", dy)?,
            host("linear_backward", x)?,
            host("linear_backward", w)?,
        );
        let mut dx = vec![0.0; n * k];
        gemm(n, k, o, dys, ws, &mut dx, false);
        let mut dyt = vec![0.0; o * n];
        transpose(n, o, dys, &mut dyt);
        let mut dw = vec![0.0; o * k];
        gemm(o, k, n, &dyt, xs, &mut dw, false);
        let mut db = vec![0.0; o];
        for row in dys.chunks(o) {
            db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
        Ok((tensor(&[n, k], dx), tensor(&[o, k], dw), tensor(&[o], db)))
    }

    // y = f(x), any shape
    fn activation(&self, x: &Tensor, a: Activation) -> Result<Tensor> {
        let xs = host(a.name(), x)?;
        let mut y = vec![0.0; xs.len()];
        for (y, &x) in y.iter_mut().zip(xs) {
            *y = match a {
                Activation::Relu => {
                    if x > 0.0 {
                        x
                    } else {
                        0.0
                    }
                }
                Activation::LeakyRelu { slope } => {
                    if x > 0.0 {
                        x
                    } else {
                        slope * x
                    }
                }
                Activation::Tanh => x.tanh(),
                Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            };
        }
        Ok(tensor(x.dims(), y))
    }

    // dx = dy · f'(x); relu and leaky relu read x (f'(0) is the x ≤ 0 branch, as in PyTorch),
    // tanh and sigmoid read y: tanh' = 1 - y², sigmoid' = y(1 - y)
    fn activation_backward(&self, dy: &Tensor, x: &Tensor, y: &Tensor, a: Activation) -> Result<Tensor> {
        let op = "activation_backward";
        if dy.shape != x.shape || dy.shape != y.shape {
            return Err(shape_err(
                op,
                format!("{}: dy, x, y shapes differ", a.name()),
                &[dy.dims(), x.dims(), y.dims()],
            ));
        }
        let (dys, xs, ys) = (host(op, dy)?, host(op, x)?, host(op, y)?);
        let mut dx = vec![0.0; dys.len()];
        for i in 0..dx.len() {
            let grad = match a {
                Activation::Relu => {
                    if xs[i] > 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                }
                Activation::LeakyRelu { slope } => {
                    if xs[i] > 0.0 {
                        1.0
                    } else {
                        slope
                    }
                }
                Activation::Tanh => 1.0 - ys[i] * ys[i],
                Activation::Sigmoid => ys[i] * (1.0 - ys[i]),
            };
            dx[i] = dys[i] * grad;
        }
        Ok(tensor(dy.dims(), dx))
    }

    // x (N,C,H,W) -> y (N,C,OH,OW) = max over each window (the padding is -inf, so only
    // input cells compete), idx = argmax's flat index in the unpadded H·W plane. PyTorch's
    // loop: start at -inf on the window's first cell, take v when v > best or v is NaN.
    fn max_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<(Tensor, Indices)> {
        let [n, c, h, w, oh, ow] = pool_geometry("max_pool2d", &x.shape, p)?;
        let xs = host("max_pool2d", x)?;
        let mut y = vec![0.0; n * c * oh * ow];
        let mut idx = vec![0u32; n * c * oh * ow];
        for plane in 0..n * c {
            let xp = &xs[plane * h * w..][..h * w];
            for i in 0..oh {
                let rows = pool_window(i, p, h);
                for j in 0..ow {
                    let cols = pool_window(j, p, w);
                    let (mut best, mut at) = (f32::NEG_INFINITY, rows.start * w + cols.start);
                    for r in rows.clone() {
                        for col in cols.clone() {
                            let pos = r * w + col;
                            if xp[pos] > best || xp[pos].is_nan() {
                                best = xp[pos];
                                at = pos;
                            }
                        }
                    }
                    let out = (plane * oh + i) * ow + j;
                    y[out] = best;
                    idx[out] = at as u32;
                }
            }
        }
        let shape = Shape::new(&[n, c, oh, ow]);
        Ok((
            Tensor {
                shape: shape.clone(),
                data: Data::Cpu(y),
            },
            Indices {
                shape,
                data: Data::Cpu(idx),
            },
        ))
    }

    // dy (N,C,OH,OW) -> dx (N,C,H,W): dx[plane, idx] += dy
    fn max_pool2d_backward(&self, dy: &Tensor, idx: &Indices, x_shape: &Shape) -> Result<Tensor> {
        let op = "max_pool2d_backward";
        let (n, c, h, w) = x_shape.nchw(op)?;
        if dy.shape != idx.shape || dy.dims().first() != Some(&n) || dy.dims().get(1) != Some(&c) {
            return Err(shape_err(
                op,
                "dy, indices and input do not fit",
                &[dy.dims(), idx.dims(), x_shape.dims()],
            ));
        }
        let (dys, ids) = (host(op, dy)?, host_indices(op, idx)?);
        let per_plane = dy.numel() / (n * c).max(1);
        let mut dx = vec![0.0; n * c * h * w];
        for (o, (d, &i)) in dys.iter().zip(ids).enumerate() {
            let plane = o / per_plane;
            dx[plane * h * w + switch(op, i, h * w, idx)?] += d;
        }
        Ok(tensor(x_shape.dims(), dx))
    }

    // x (N,C,H,W) -> y (N,C,OH,OW) = sum over each window / K² (zero padding counted,
    // PyTorch's count_include_pad=True)
    fn avg_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<Tensor> {
        let [n, c, h, w, oh, ow] = pool_geometry("avg_pool2d", &x.shape, p)?;
        let xs = host("avg_pool2d", x)?;
        let scale = 1.0 / (p.kernel * p.kernel) as f32;
        let mut y = vec![0.0; n * c * oh * ow];
        for plane in 0..n * c {
            let xp = &xs[plane * h * w..][..h * w];
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = 0.0;
                    for r in pool_window(i, p, h) {
                        for col in pool_window(j, p, w) {
                            s += xp[r * w + col];
                        }
                    }
                    y[(plane * oh + i) * ow + j] = s * scale;
                }
            }
        }
        Ok(tensor(&[n, c, oh, ow], y))
    }

    // dy (N,C,OH,OW) -> dx (N,C,H,W): each dy/(K·K) added to every input cell of its window
    fn avg_pool2d_backward(&self, dy: &Tensor, x_shape: &Shape, p: PoolParams) -> Result<Tensor> {
        let [n, c, h, w, oh, ow] = pool_geometry("avg_pool2d_backward", x_shape, p)?;
        if dy.dims() != [n, c, oh, ow] {
            return Err(shape_err(
                "avg_pool2d_backward",
                "dy does not match the pooled shape",
                &[dy.dims(), x_shape.dims()],
            ));
        }
        let dys = host("avg_pool2d_backward", dy)?;
        let scale = 1.0 / (p.kernel * p.kernel) as f32;
        let mut dx = vec![0.0; n * c * h * w];
        for plane in 0..n * c {
            for i in 0..oh {
                for j in 0..ow {
                    let g = dys[(plane * oh + i) * ow + j] * scale;
                    for r in pool_window(i, p, h) {
                        for col in pool_window(j, p, w) {
                            dx[plane * h * w + r * w + col] += g;
                        }
                    }
                }
            }
        }
        Ok(tensor(x_shape.dims(), dx))
    }

    // x, mask (same shape) -> y = x·mask·scale
    fn mul_mask(&self, x: &Tensor, mask: &Tensor, scale: f32) -> Result<Tensor> {
        same_shape("mul_mask", x, mask)?;
        let (xs, ms) = (host("mul_mask", x)?, host("mul_mask", mask)?);
        let y = xs.iter().zip(ms).map(|(x, m)| x * m * scale).collect();
        Ok(tensor(x.dims(), y))
    }

    // x (any) -> y = s·x
    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        let y = host("scale", x)?.iter().map(|x| s * x).collect();
        Ok(tensor(x.dims(), y))
    }

    // a, b (same shape) -> y = a + b
    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_shape("add", a, b)?;
        let y = host("add", a)?
            .iter()
            .zip(host("add", b)?)
            .map(|(a, b)| a + b)
            .collect();
        Ok(tensor(a.dims(), y))
    }

    // xs[i] (N,Ci,H,W) -> y (N,ΣCi,H,W): image by image, the inputs' channel blocks in order
    fn concat_channels(&self, xs: &[&Tensor]) -> Result<Tensor> {
        let op = "concat_channels";
        let (dims, inner) = concat_geometry(op, xs)?;
        let mut y = Vec::with_capacity(dims.iter().product());
        for img in 0..dims[0] {
            for x in xs {
                let block = x.dims()[1] * inner;
                y.extend_from_slice(&host(op, x)?[img * block..][..block]);
            }
        }
        Ok(tensor(&dims, y))
    }

    // x (N,C,H,W) -> y (N,len,H,W) = x[:, start..start+len]
    fn slice_channels(&self, x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        let op = "slice_channels";
        let (dims, inner) = slice_geometry(op, &x.shape, start, len)?;
        let xs = host(op, x)?;
        let block = x.dims()[1] * inner;
        let mut y = Vec::with_capacity(dims.iter().product());
        for img in 0..dims[0] {
            y.extend_from_slice(&xs[img * block + start * inner..][..len * inner]);
        }
        Ok(tensor(&dims, y))
    }

    // x (N,C,H,W) -> y (N,C) = Σ plane / (H·W)
    fn global_avg_pool(&self, x: &Tensor) -> Result<Tensor> {
        let op = "global_avg_pool";
        let (n, c, h, w) = x.shape.nchw(op)?;
        if h * w == 0 {
            return Err(shape_err(op, "planes must not be empty", &[x.dims()]));
        }
        let xs = host(op, x)?;
        let y = xs
            .chunks(h * w)
            .map(|p| p.iter().sum::<f32>() / (h * w) as f32)
            .collect();
        Ok(tensor(&[n, c], y))
    }

    // dy (N,C) -> dx (N,C,H,W): dx[n,c,i,j] = dy[n,c] / (H·W)
    fn global_avg_pool_backward(&self, dy: &Tensor, x_shape: &Shape) -> Result<Tensor> {
        let op = "global_avg_pool_backward";
        let (n, c, h, w) = x_shape.nchw(op)?;
        if dy.dims() != [n, c] || h * w == 0 {
            return Err(shape_err(
                op,
                "dy must be (N,C) of a non-empty input (N,C,H,W)",
                &[dy.dims(), x_shape.dims()],
            ));
        }
        let dys = host(op, dy)?;
        let dx = dys
            .iter()
            .flat_map(|g| std::iter::repeat_n(g / (h * w) as f32, h * w))
            .collect();
        Ok(tensor(x_shape.dims(), dx))
    }

    // x (N,C,OH,OW), idx -> y (N,C,H,W): zeros, then y[plane, idx[q]] = x[q] for q in
    // row-major order, so the last of colliding switches wins
    fn max_unpool2d(&self, x: &Tensor, idx: &Indices, out_shape: &Shape) -> Result<Tensor> {
        let op = "max_unpool2d";
        let [planes, cells, per_plane] = unpool_geometry(op, &x.shape, &idx.shape, out_shape)?;
        let (xs, ids) = (host(op, x)?, host_indices(op, idx)?);
        let mut y = vec![0.0; planes * cells];
        for (q, (&v, &i)) in xs.iter().zip(ids).enumerate() {
            let plane = q / per_plane;
            y[plane * cells + switch(op, i, cells, idx)?] = v;
        }
        Ok(tensor(out_shape.dims(), y))
    }

    // dy (N,C,H,W), idx (N,C,OH,OW) -> dx (N,C,OH,OW): dx[q] = dy[plane, idx[q]]
    fn max_unpool2d_backward(&self, dy: &Tensor, idx: &Indices) -> Result<Tensor> {
        let op = "max_unpool2d_backward";
        let [_, cells, per_plane] = unpool_geometry(op, &idx.shape, &idx.shape, &dy.shape)?;
        let (dys, ids) = (host(op, dy)?, host_indices(op, idx)?);
        let mut dx = Vec::with_capacity(ids.len());
        for (q, &i) in ids.iter().enumerate() {
            let plane = q / per_plane;
            dx.push(dys[plane * cells + switch(op, i, cells, idx)?]);
        }
        Ok(tensor(idx.dims(), dx))
    }

    // x (N,C,H,W) -> y (N,C,H·s,W·s): y[i,j] = Σ over the row taps (i0, i1) and column
    // taps (j0, j1) of upsample_source, weighted (1-λ, λ) on each axis
    fn upsample2d(&self, x: &Tensor, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
        let op = "upsample2d";
        let [n, c, h, w, oh, ow] = upsample_geometry(op, &x.shape, scale)?;
        let xs = host(op, x)?;
        let cols: Vec<_> = (0..ow).map(|j| upsample_source(j, scale, w, mode)).collect();
        let mut y = vec![0.0; n * c * oh * ow];
        for (xp, yp) in xs.chunks(h * w).zip(y.chunks_mut(oh * ow)) {
            for (i, yrow) in yp.chunks_mut(ow).enumerate() {
                let (i0, i1, ly) = upsample_source(i, scale, h, mode);
                let (r0, r1) = (&xp[i0 * w..][..w], &xp[i1 * w..][..w]);
                for (v, &(j0, j1, lx)) in yrow.iter_mut().zip(&cols) {
                    let top = (1.0 - lx) * r0[j0] + lx * r0[j1];
                    let bottom = (1.0 - lx) * r1[j0] + lx * r1[j1];
                    *v = (1.0 - ly) * top + ly * bottom;
                }
            }
        }
        Ok(tensor(&[n, c, oh, ow], y))
    }

    // dy (N,C,H·s,W·s) -> dx (N,C,H,W): each dy[i,j] added back to the four taps it read,
    // with the same weights
    fn upsample2d_backward(&self, dy: &Tensor, x_shape: &Shape, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
        let op = "upsample2d_backward";
        let [n, c, h, w, oh, ow] = upsample_geometry(op, x_shape, scale)?;
        if dy.dims() != [n, c, oh, ow] {
            return Err(shape_err(
                op,
                "dy does not match the upsampled shape",
                &[dy.dims(), x_shape.dims()],
            ));
        }
        let dys = host(op, dy)?;
        let cols: Vec<_> = (0..ow).map(|j| upsample_source(j, scale, w, mode)).collect();
        let mut dx = vec![0.0; n * c * h * w];
        for (dxp, dyp) in dx.chunks_mut(h * w).zip(dys.chunks(oh * ow)) {
            for (i, dyrow) in dyp.chunks(ow).enumerate() {
                let (i0, i1, ly) = upsample_source(i, scale, h, mode);
                for (&g, &(j0, j1, lx)) in dyrow.iter().zip(&cols) {
                    dxp[i0 * w + j0] += (1.0 - ly) * (1.0 - lx) * g;
                    dxp[i0 * w + j1] += (1.0 - ly) * lx * g;
                    dxp[i1 * w + j0] += ly * (1.0 - lx) * g;
                    dxp[i1 * w + j1] += ly * lx * g;
                }
            }
        }
        Ok(tensor(x_shape.dims(), dx))
    }

    // x (N,C,H,W) or (N,C) -> per channel over its n = N·H·W values (two passes, f64 sums):
    // mean = Σ x / n, var = Σ (x - mean)² / n, invstd = 1/sqrt(var + eps);
    // y = gamma·(x - mean)·invstd + beta
    fn batch_norm_train(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<BatchNormOut> {
        let op = "batch_norm_train";
        let g = batch_norm_train_geometry(op, &x.shape, &[&gamma.shape, &beta.shape])?;
        let [n, c, hw] = g;
        let count = (n * hw) as f64;
        let xs = host(op, x)?;
        let mut sum = vec![0.0f64; c];
        for (i, &x) in xs.iter().enumerate() {
            sum[i / hw % c] += x as f64;
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let mut squares = vec![0.0f64; c];
        for (i, &x) in xs.iter().enumerate() {
            let ch = i / hw % c;
            squares[ch] += (x as f64 - mean[ch]).powi(2);
        }
        let var: Vec<f64> = squares.iter().map(|s| s / count).collect();
        let invstd: Vec<f32> = var.iter().map(|v| (1.0 / (v + eps as f64).sqrt()) as f32).collect();
        let mean: Vec<f32> = mean.into_iter().map(|m| m as f32).collect();
        let var: Vec<f32> = var.into_iter().map(|v| v as f32).collect();
        let y = batch_norm_normalize(xs, host(op, gamma)?, host(op, beta)?, &mean, &invstd, g);
        Ok(BatchNormOut {
            y: tensor(x.dims(), y),
            mean: tensor(&[c], mean),
            var: tensor(&[c], var),
            invstd: tensor(&[c], invstd),
        })
    }

    // dy, x (N,C,H,W) or (N,C), gamma, mean, invstd (C) -> dx, dgamma, dbeta, through the
    // batch statistics (see `batch_norm_gradients`)
    fn batch_norm_train_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        batch_norm_gradients("batch_norm_train_backward", dy, x, gamma, mean, invstd, true)
    }

    // x (N,C,H,W) or (N,C) -> y = gamma·(x - running_mean)·invstd + beta,
    // invstd = 1/sqrt(running_var + eps)
    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f32,
    ) -> Result<BatchNormOut> {
        let op = "batch_norm_eval";
        let per_channel = [&gamma.shape, &beta.shape, &running_mean.shape, &running_var.shape];
        let g = batch_norm_geometry(op, &x.shape, &per_channel)?;
        let (mean, var) = (host(op, running_mean)?.to_vec(), host(op, running_var)?.to_vec());
        let invstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let y = batch_norm_normalize(host(op, x)?, host(op, gamma)?, host(op, beta)?, &mean, &invstd, g);
        Ok(BatchNormOut {
            y: tensor(x.dims(), y),
            mean: tensor(&[g[1]], mean),
            var: tensor(&[g[1]], var),
            invstd: tensor(&[g[1]], invstd),
        })
    }

    // dy, x (N,C,H,W) or (N,C), gamma, mean, invstd (C) -> dx = dy·gamma·invstd,
    // dgamma = Σ dy·xhat, dbeta = Σ dy (see `batch_norm_gradients`)
    fn batch_norm_eval_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        batch_norm_gradients("batch_norm_eval_backward", dy, x, gamma, mean, invstd, false)
    }

    // running_mean = (1 - m)·running_mean + m·mean;
    // running_var = (1 - m)·running_var + m·var·n/(n-1)
    fn batch_norm_update_running(
        &self,
        running_mean: &mut Tensor,
        running_var: &mut Tensor,
        mean: &Tensor,
        var: &Tensor,
        count: usize,
        momentum: f32,
    ) -> Result<()> {
        let op = "batch_norm_update_running";
        let stats = [&running_mean.shape, &running_var.shape, &mean.shape, &var.shape];
        batch_norm_running_geometry(op, &stats, count)?;
        let unbiased = (count as f64 / (count - 1) as f64) as f32;
        let (ms, vs) = (host(op, mean)?, host(op, var)?);
        for (r, &m) in host_mut(op, running_mean)?.iter_mut().zip(ms) {
            *r = (1.0 - momentum) * *r + momentum * m;
        }
        for (r, &v) in host_mut(op, running_var)?.iter_mut().zip(vs) {
            *r = (1.0 - momentum) * *r + momentum * v * unbiased;
        }
        Ok(())
    }

    // logits (N,K), labels (N) -> loss = mean_n [logsumexp(z_n) - z_n[y_n]],
    // dlogits = (softmax(z) - onehot(y)) / N, correct = #{n : argmax z_n = y_n}
    fn softmax_cross_entropy(&self, logits: &Tensor, labels: &Indices) -> Result<CrossEntropy> {
        let (n, k) = logits.shape.matrix("softmax_cross_entropy")?;
        if labels.dims() != [n] {
            return Err(shape_err(
                "softmax_cross_entropy",
                "need one label per row",
                &[logits.dims(), labels.dims()],
            ));
        }
        let zs = host("softmax_cross_entropy", logits)?;
        let ys = labels
            .cpu()
            .ok_or_else(|| shape_err("softmax_cross_entropy", "labels live on the GPU", &[labels.dims()]))?;
        let mut dz = vec![0.0; n * k];
        let (mut loss, mut correct) = (0.0f64, 0.0f32);
        for row in 0..n {
            let z = &zs[row * k..][..k];
            let y = ys[row] as usize;
            if y >= k {
                return Err(shape_err(
                    "softmax_cross_entropy",
                    format!("label {y} out of range for {k} classes"),
                    &[logits.dims()],
                ));
            }
            let (mut arg, mut max) = (0, f32::NEG_INFINITY);
            for (i, &v) in z.iter().enumerate() {
                if v > max {
                    max = v;
                    arg = i;
                }
            }
            let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
            loss += (sum.ln() + max - z[y]) as f64;
            correct += (arg == y) as u8 as f32;
            for i in 0..k {
                let p = (z[i] - max).exp() / sum;
                dz[row * k + i] = (p - if i == y { 1.0 } else { 0.0 }) / n as f32;
            }
        }
        Ok(CrossEntropy {
            loss: tensor(&[1], vec![(loss / n as f64) as f32]),
            dlogits: tensor(&[n, k], dz),
            correct: tensor(&[1], vec![correct]),
        })
    }

    // pred, target, weight (any, one shape) -> loss = scale·Σ w·ℓ(p, t) (f64 sum),
    // dpred = scale·w·∂ℓ/∂p
    fn point_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        weight: &Tensor,
        kind: PointLoss,
        scale: f32,
    ) -> Result<LossGrad> {
        const OP: &str = "point_loss";
        point_loss_geometry(OP, &pred.shape, &target.shape, &weight.shape, kind, scale)?;
        let (ps, ts, ws) = (host(OP, pred)?, host(OP, target)?, host(OP, weight)?);
        let scale = scale as f64;
        let mut loss = 0.0f64;
        let mut dpred = vec![0.0; ps.len()];
        for (i, d) in dpred.iter_mut().enumerate() {
            let (l, g) = point_loss_term(kind, ps[i] as f64, ts[i] as f64);
            let w = ws[i] as f64;
            loss += w * l;
            *d = (scale * w * g) as f32;
        }
        Ok(LossGrad {
            loss: tensor(&[1], vec![(scale * loss) as f32]),
            dpred: tensor(pred.dims(), dpred),
        })
    }

    // logits (N,K,H,W), labels (N,H,W), weight (N,H,W) -> for each pixel (n, i) with
    // p = softmax_k z[n,k,i]:  loss = scale·Σ w·(logsumexp(z) - z[y]),
    // dlogits[n,k,i] = scale·w·(p_k - [k = y]),  correct = Σ w·[argmax_k z = y]
    fn softmax_ce_map(&self, logits: &Tensor, labels: &Indices, weight: &Tensor, scale: f32) -> Result<CrossEntropy> {
        const OP: &str = "softmax_ce_map";
        let [n, k, hw] = class_map_geometry(OP, &logits.shape, &labels.shape, Some(&weight.shape))?;
        let (zs, ys, ws) = (host(OP, logits)?, host_indices(OP, labels)?, host(OP, weight)?);
        let scale = scale as f64;
        let mut dz = vec![0.0; zs.len()];
        let (mut loss, mut correct) = (0.0f64, 0.0f64);
        for img in 0..n {
            for i in 0..hw {
                let pixel = img * hw + i;
                let base = img * k * hw + i; // z[img, 0, i]; class j at base + j·hw
                let y = class(OP, ys[pixel], k, logits)?;
                let w = ws[pixel] as f64;
                let (p, arg, lse) = pixel_softmax(zs, base, hw, k);
                loss += w * (lse - zs[base + y * hw] as f64);
                correct += w * (arg == y) as u8 as f64;
                for (j, &pj) in p.iter().enumerate() {
                    let onehot = if j == y { 1.0 } else { 0.0 };
                    dz[base + j * hw] = (scale * w * (pj - onehot)) as f32;
                }
            }
        }
        Ok(CrossEntropy {
            loss: tensor(&[1], vec![(scale * loss) as f32]),
            dlogits: tensor(logits.dims(), dz),
            correct: tensor(&[1], vec![correct as f32]),
        })
    }

    // logits (N,K,H,W), labels (N,H,W) -> with p = softmax over K and D_k = P_k + Y_k + 1:
    //   loss = scale·(1 - (1/K)·Σ_k (2·I_k + 1)/D_k)
    //   g_k = ∂loss/∂p_k at a pixel of label y = -(scale/K)·(2·[y=k]/D_k - (2·I_k + 1)/D_k²)
    //   dlogits_j = p_j·(g_j - Σ_k p_k·g_k)            (through the softmax)
    fn softmax_dice(&self, logits: &Tensor, labels: &Indices, scale: f32) -> Result<LossGrad> {
        const OP: &str = "softmax_dice";
        let [n, k, hw] = class_map_geometry(OP, &logits.shape, &labels.shape, None)?;
        let (zs, ys) = (host(OP, logits)?, host_indices(OP, labels)?);
        let scale = scale as f64;
        // pass 1: the per-class sums I, P, Y over every pixel of the batch
        let (mut inter, mut pred, mut truth) = (vec![0.0f64; k], vec![0.0f64; k], vec![0.0f64; k]);
        for img in 0..n {
            for i in 0..hw {
                let y = class(OP, ys[img * hw + i], k, logits)?;
                let (p, _, _) = pixel_softmax(zs, img * k * hw + i, hw, k);
                inter[y] += p[y];
                truth[y] += 1.0;
                for (sum, pj) in pred.iter_mut().zip(&p) {
                    *sum += pj;
                }
            }
        }
        let denom: Vec<f64> = (0..k).map(|j| pred[j] + truth[j] + 1.0).collect();
        let dice: f64 = (0..k).map(|j| (2.0 * inter[j] + 1.0) / denom[j]).sum();
        let loss = scale * (1.0 - dice / k as f64);
        // pass 2: the gradient, pixel by pixel
        let mut dz = vec![0.0; zs.len()];
        for img in 0..n {
            for i in 0..hw {
                let y = ys[img * hw + i] as usize;
                let base = img * k * hw + i;
                let (p, _, _) = pixel_softmax(zs, base, hw, k);
                let g: Vec<f64> = (0..k)
                    .map(|j| {
                        let hit = if j == y { 2.0 / denom[j] } else { 0.0 };
                        -scale / k as f64 * (hit - (2.0 * inter[j] + 1.0) / (denom[j] * denom[j]))
                    })
                    .collect();
                let pg: f64 = p.iter().zip(&g).map(|(p, g)| p * g).sum();
                for j in 0..k {
                    dz[base + j * hw] = (p[j] * (g[j] - pg)) as f32;
                }
            }
        }
        Ok(LossGrad {
            loss: tensor(&[1], vec![loss as f32]),
            dpred: tensor(logits.dims(), dz),
        })
    }

    fn add_assign(&self, acc: &mut Tensor, x: &Tensor) -> Result<()> {
        same_shape("add_assign", acc, x)?;
        let xs = host("add_assign", x)?;
        host_mut("add_assign", acc)?
            .iter_mut()
            .zip(xs)
            .for_each(|(a, b)| *a += b);
        Ok(())
    }

    // v = momentum·v + g;  p -= lr·v
    fn sgd_step(&self, p: &mut Tensor, g: &Tensor, v: &mut Tensor, h: SgdHyper) -> Result<()> {
        same_shape("sgd_step", p, g)?;
        same_shape("sgd_step", p, v)?;
        let gs = host("sgd_step", g)?;
        let vs = host_mut("sgd_step", v)?;
        let ps = host_mut("sgd_step", p)?;
        for ((p, v), g) in ps.iter_mut().zip(vs.iter_mut()).zip(gs) {
            *v = h.momentum * *v + g;
            *p -= h.lr * *v;
        }
        Ok(())
    }

    // p *= 1 - lr·wd (AdamW);  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;
    // p -= lr · (m/(1-β1ᵗ)) / (sqrt(v/(1-β2ᵗ)) + eps)
    fn adam_step(&self, p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, h: AdamHyper) -> Result<()> {
        same_shape("adam_step", p, g)?;
        same_shape("adam_step", p, m)?;
        same_shape("adam_step", p, v)?;
        if h.t == 0 {
            return Err(Error::Config {
                field: "adam.t",
                problem: "step count starts at 1".into(),
            });
        }
        let bc1 = 1.0 - h.beta1.powi(h.t as i32);
        let bc2 = 1.0 - h.beta2.powi(h.t as i32);
        let gs = host("adam_step", g)?;
        let ms = host_mut("adam_step", m)?;
        let vs = host_mut("adam_step", v)?;
        let ps = host_mut("adam_step", p)?;
        for i in 0..ps.len() {
            ps[i] *= 1.0 - h.lr * h.weight_decay; // AdamW's decoupled decay; identity for Adam
            ms[i] = h.beta1 * ms[i] + (1.0 - h.beta1) * gs[i];
            vs[i] = h.beta2 * vs[i] + (1.0 - h.beta2) * gs[i] * gs[i];
            let mhat = ms[i] / bc1;
            let vhat = vs[i] / bc2;
            ps[i] -= h.lr * mhat / (vhat.sqrt() + h.eps);
        }
        Ok(())
    }

    // ---- regularization ------------------------------------------------------------------

    // acc += l1·Σ|w| + (l2/2)·Σw², both sums in f64 so that this stays the accurate reference
    fn l1_l2_penalty(&self, w: &Tensor, l1: f32, l2: f32, acc: &mut Tensor) -> Result<()> {
        const OP: &str = "l1_l2_penalty";
        scalar_geometry(OP, &acc.shape)?;
        let ws = host(OP, w)?;
        let sum_abs: f64 = ws.iter().map(|&x| f64::from(x.abs())).sum();
        let sum_sq: f64 = ws.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let term = f64::from(l1) * sum_abs + 0.5 * f64::from(l2) * sum_sq;
        host_mut(OP, acc)?[0] += term as f32;
        Ok(())
    }

    // g += l1·sign(w) + l2·w
    fn l1_l2_grad(&self, g: &mut Tensor, w: &Tensor, l1: f32, l2: f32) -> Result<()> {
        const OP: &str = "l1_l2_grad";
        same_shape(OP, g, w)?;
        let ws = host(OP, w)?;
        for (g, &w) in host_mut(OP, g)?.iter_mut().zip(ws) {
            *g += l1 * sign(w) + l2 * w;
        }
        Ok(())
    }

    // w = sign(w)·max(|w| - t, 0)
    fn soft_threshold(&self, w: &mut Tensor, t: f32) -> Result<()> {
        for w in host_mut("soft_threshold", w)?.iter_mut() {
            *w = sign(*w) * (w.abs() - t).max(0.0);
        }
        Ok(())
    }
}
