//! regularize on the CPU: the L1/L2 penalty (f64 sums, the accurate reference), its
//! gradient, and the soft threshold of proximal L1.

use super::{host, host_mut};
use crate::backend::geometry::{check_same_shapes, check_scalar};
use crate::error::Result;
use crate::tensor::Tensor;

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

// acc += l1·Σ|w| + (l2/2)·Σw², both sums in f64 so that this stays the accurate reference
pub(super) fn penalty(w: &Tensor, l1: f32, l2: f32, acc: &mut Tensor) -> Result<()> {
    const OP: &str = "l1_l2_penalty";
    check_scalar(OP, &acc.shape)?;
    let ws = host(OP, w)?;
    let sum_abs: f64 = ws.iter().map(|&x| f64::from(x.abs())).sum();
    let sum_sq: f64 = ws.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let term = f64::from(l1) * sum_abs + 0.5 * f64::from(l2) * sum_sq;
    host_mut(OP, acc)?[0] += term as f32;
    Ok(())
}

// g += l1·sign(w) + l2·w
pub(super) fn grad(g: &mut Tensor, w: &Tensor, l1: f32, l2: f32) -> Result<()> {
    const OP: &str = "l1_l2_grad";
    check_same_shapes(OP, &g.shape, &[&w.shape])?;
    let ws = host(OP, w)?;
    for (g, &w) in host_mut(OP, g)?.iter_mut().zip(ws) {
        *g += l1 * sign(w) + l2 * w;
    }
    Ok(())
}

// w = sign(w)·max(|w| - t, 0)
pub(super) fn soft_threshold(w: &mut Tensor, t: f32) -> Result<()> {
    for w in host_mut("soft_threshold", w)?.iter_mut() {
        *w = sign(*w) * (w.abs() - t).max(0.0);
    }
    Ok(())
}
