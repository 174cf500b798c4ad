//! batch_norm on the CPU (PyTorch's BatchNorm2d on (N,C,H,W), BatchNorm1d on (N,C)): per
//! channel statistics over its n = N·H·W values, summed in f64 so that this stays the
//! accurate reference.

use super::{host, host_mut, tensor};
use crate::backend::geometry::{BatchNormGeom, BatchNormRunningGeom};
use crate::backend::BatchNormOut;
use crate::error::Result;
use crate::tensor::Tensor;

/// y = gamma·(x - mean)·invstd + beta, each value with its channel's statistics.
fn normalize(xs: &[f32], gamma: &[f32], beta: &[f32], mean: &[f32], invstd: &[f32], g: BatchNormGeom) -> Vec<f32> {
    let BatchNormGeom { c, hw, .. } = g;
    let mut y = vec![0.0; xs.len()];
    for (i, (y, &x)) in y.iter_mut().zip(xs).enumerate() {
        let ch = i / hw % c;
        *y = gamma[ch] * (x - mean[ch]) * invstd[ch] + beta[ch];
    }
    y
}

// x (N,C,H,W) or (N,C) -> per channel over its n = N·H·W values (two passes, f64 sums):
// mean = Σ x / n, var = Σ (x - mean)² / n, invstd = 1/sqrt(var + eps);
// y = gamma·(x - mean)·invstd + beta
pub(super) fn train(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<BatchNormOut> {
    const OP: &str = "batch_norm_train";
    let g = BatchNormGeom::train(OP, &x.shape, &[&gamma.shape, &beta.shape])?;
    let BatchNormGeom { c, hw, .. } = g;
    let count = g.count() as f64;
    let xs = host(OP, x)?;
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
    let y = normalize(xs, host(OP, gamma)?, host(OP, beta)?, &mean, &invstd, g);
    Ok(BatchNormOut {
        y: tensor(x.dims(), y),
        mean: tensor(&[c], mean),
        var: tensor(&[c], var),
        invstd: tensor(&[c], invstd),
    })
}

// x (N,C,H,W) or (N,C) -> y = gamma·(x - running_mean)·invstd + beta,
// invstd = 1/sqrt(running_var + eps)
pub(super) fn eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f32,
) -> Result<BatchNormOut> {
    const OP: &str = "batch_norm_eval";
    let per_channel = [&gamma.shape, &beta.shape, &running_mean.shape, &running_var.shape];
    let g = BatchNormGeom::new(OP, &x.shape, &per_channel)?;
    let (mean, var) = (host(OP, running_mean)?.to_vec(), host(OP, running_var)?.to_vec());
    let invstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let y = normalize(host(OP, x)?, host(OP, gamma)?, host(OP, beta)?, &mean, &invstd, g);
    Ok(BatchNormOut {
        y: tensor(x.dims(), y),
        mean: tensor(&[g.c], mean),
        var: tensor(&[g.c], var),
        invstd: tensor(&[g.c], invstd),
    })
}

// dy, x (N,C,H,W) or (N,C), gamma, mean, invstd (C) -> dx, dgamma, dbeta, shared by both
// modes. Per channel (f64 sums): dbeta = Σ dy, dgamma = Σ dy·xhat with
// xhat = (x - mean)·invstd; then dx = gamma·invstd·dy in eval mode (constant statistics),
// and in training mode, where mean and invstd depend on x:
// dx = gamma·invstd·(dy - dbeta/n - xhat·dgamma/n).
pub(super) fn backward(
    dy: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    through_batch_stats: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = if through_batch_stats {
        "batch_norm_train_backward"
    } else {
        "batch_norm_eval_backward"
    };
    let g = BatchNormGeom::backward(op, &dy.shape, &x.shape, &[&gamma.shape, &mean.shape, &invstd.shape])?;
    let BatchNormGeom { c, hw, .. } = g;
    let (dys, xs, gs) = (host(op, dy)?, host(op, x)?, host(op, gamma)?);
    let (ms, is) = (host(op, mean)?, host(op, invstd)?);
    let mut dbeta = vec![0.0f64; c];
    let mut dgamma = vec![0.0f64; c];
    for (i, (&d, &x)) in dys.iter().zip(xs).enumerate() {
        let ch = i / hw % c;
        dbeta[ch] += d as f64;
        dgamma[ch] += d as f64 * ((x - ms[ch]) * is[ch]) as f64;
    }
    let count = g.count() as f64;
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

// running_mean = (1 - m)·running_mean + m·mean;
// running_var = (1 - m)·running_var + m·var·n/(n-1)
pub(super) fn update_running(
    running_mean: &mut Tensor,
    running_var: &mut Tensor,
    mean: &Tensor,
    var: &Tensor,
    count: usize,
    momentum: f32,
) -> Result<()> {
    const OP: &str = "batch_norm_update_running";
    let stats = [&running_mean.shape, &running_var.shape, &mean.shape, &var.shape];
    let unbiased = BatchNormRunningGeom::new(OP, &stats, count)?.unbiased();
    let (ms, vs) = (host(OP, mean)?, host(OP, var)?);
    for (r, &m) in host_mut(OP, running_mean)?.iter_mut().zip(ms) {
        *r = (1.0 - momentum) * *r + momentum * m;
    }
    for (r, &v) in host_mut(OP, running_var)?.iter_mut().zip(vs) {
        *r = (1.0 - momentum) * *r + momentum * v * unbiased;
    }
    Ok(())
}
