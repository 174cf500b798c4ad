//! optim on the CPU: SGD with momentum and Adam / AdamW, in place, PyTorch's conventions.

use super::{host, host_mut};
use crate::backend::geometry::check_same_shapes;
use crate::backend::{AdamHyper, SgdHyper};
use crate::error::Result;
use crate::tensor::Tensor;

// v = momentum·v + g;  p -= lr·v
pub(super) fn sgd(p: &mut Tensor, g: &Tensor, v: &mut Tensor, h: SgdHyper) -> Result<()> {
    const OP: &str = "sgd_step";
    check_same_shapes(OP, &p.shape, &[&g.shape, &v.shape])?;
    let gs = host(OP, g)?;
    let vs = host_mut(OP, v)?;
    let ps = host_mut(OP, p)?;
    for ((p, v), g) in ps.iter_mut().zip(vs.iter_mut()).zip(gs) {
        *v = h.momentum * *v + g;
        *p -= h.lr * *v;
    }
    Ok(())
}

// p *= 1 - lr·wd (AdamW);  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;
// p -= lr · (m/(1-β1ᵗ)) / (sqrt(v/(1-β2ᵗ)) + eps)
pub(super) fn adam(p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, h: AdamHyper) -> Result<()> {
    const OP: &str = "adam_step";
    check_same_shapes(OP, &p.shape, &[&g.shape, &m.shape, &v.shape])?;
    let (bc1, bc2) = h.bias_corrections()?;
    let gs = host(OP, g)?;
    let ms = host_mut(OP, m)?;
    let vs = host_mut(OP, v)?;
    let ps = host_mut(OP, p)?;
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
