//! linear on the CPU (PyTorch layout: w is (out, in)): three GEMMs and a column sum.

use super::gemm::{gemm, transpose};
use super::{host, tensor};
use crate::backend::geometry::LinearGeom;
use crate::error::Result;
use crate::tensor::Tensor;

// x (N,K), w (O,K), b (O) -> y (N,O) = x · wᵀ + b
pub(super) fn forward(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "linear";
    let LinearGeom { n, k, o } = LinearGeom::forward(OP, &x.shape, &w.shape, &b.shape)?;
    let (xs, ws, bs) = (host(OP, x)?, host(OP, w)?, host(OP, b)?);
    let mut wt = vec![0.0; k * o];
    transpose(o, k, ws, &mut wt);
    let mut y = vec![0.0; n * o];
    gemm(n, o, k, xs, &wt, &mut y, false);
    for row in y.chunks_mut(o) {
        row.iter_mut().zip(bs).for_each(|(v, b)| *v += b);
    }
    Ok(tensor(&[n, o], y))
}

// dy (N,O), x (N,K), w (O,K) -> dx (N,K) = dy · w, dw (O,K) = dyᵀ · x, db (O) = Σn dy
pub(super) fn backward(dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "linear_backward";
    let LinearGeom { n, k, o } = LinearGeom::backward(OP, &dy.shape, &x.shape, &w.shape)?;
    let (dys, xs, ws) = (host(OP, dy)?, host(OP, x)?, host(OP, w)?);
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
