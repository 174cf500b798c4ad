//! loss on the CPU: softmax cross-entropy over rows and over pixels, elementwise point
//! losses and the soft Dice loss, each returning its gradient too (sums in f64).

use super::{host, host_indices, tensor};
use crate::backend::geometry::{ClassMapGeom, PointLossGeom};
use crate::backend::{CrossEntropy, LossGrad, PointLoss};
use crate::error::{shape_err, Result};
use crate::tensor::{Indices, Tensor};

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

// logits (N,K), labels (N) -> loss = mean_n [logsumexp(z_n) - z_n[y_n]],
// dlogits = (softmax(z) - onehot(y)) / N, correct = #{n : argmax z_n = y_n}
pub(super) fn softmax_cross_entropy(logits: &Tensor, labels: &Indices) -> Result<CrossEntropy> {
    const OP: &str = "softmax_cross_entropy";
    let (n, k) = logits.shape.matrix(OP)?;
    if labels.dims() != [n] {
        return Err(shape_err(OP, "need one label per row", &[logits.dims(), labels.dims()]));
    }
    let zs = host(OP, logits)?;
    let ys = labels
        .cpu()
        .ok_or_else(|| shape_err(OP, "labels live on the GPU", &[labels.dims()]))?;
    let mut dz = vec![0.0; n * k];
    let (mut loss, mut correct) = (0.0f64, 0.0f32);
    for row in 0..n {
        let z = &zs[row * k..][..k];
        let y = ys[row] as usize;
        if y >= k {
            return Err(shape_err(
                OP,
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
pub(super) fn point_loss(
    pred: &Tensor,
    target: &Tensor,
    weight: &Tensor,
    kind: PointLoss,
    scale: f32,
) -> Result<LossGrad> {
    const OP: &str = "point_loss";
    PointLossGeom::new(OP, &pred.shape, &target.shape, &weight.shape, kind, scale)?;
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
pub(super) fn softmax_ce_map(logits: &Tensor, labels: &Indices, weight: &Tensor, scale: f32) -> Result<CrossEntropy> {
    const OP: &str = "softmax_ce_map";
    let ClassMapGeom { n, k, hw } = ClassMapGeom::new(OP, &logits.shape, &labels.shape, Some(&weight.shape))?;
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
pub(super) fn softmax_dice(logits: &Tensor, labels: &Indices, scale: f32) -> Result<LossGrad> {
    const OP: &str = "softmax_dice";
    let ClassMapGeom { n, k, hw } = ClassMapGeom::new(OP, &logits.shape, &labels.shape, None)?;
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
