//! upsample on the CPU: nearest or bilinear (align_corners=False) by an integer scale, each
//! output read from (and each gradient sent back to) the taps of `upsample_source`.

use super::{host, tensor};
use crate::backend::geometry::{upsample_source, UpsampleGeom};
use crate::backend::UpsampleMode;
use crate::error::Result;
use crate::tensor::{Shape, Tensor};

// x (N,C,H,W) -> y (N,C,H·s,W·s): y[i,j] = Σ over the row taps (i0, i1) and column
// taps (j0, j1) of upsample_source, weighted (1-λ, λ) on each axis
pub(super) fn forward(x: &Tensor, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
    const OP: &str = "upsample2d";
    let UpsampleGeom { n, c, h, w, oh, ow, .. } = UpsampleGeom::new(OP, &x.shape, scale)?;
    let xs = host(OP, x)?;
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
pub(super) fn backward(dy: &Tensor, x_shape: &Shape, scale: usize, mode: UpsampleMode) -> Result<Tensor> {
    const OP: &str = "upsample2d_backward";
    let UpsampleGeom { n, c, h, w, oh, ow, .. } = UpsampleGeom::backward(OP, &dy.shape, x_shape, scale)?;
    let dys = host(OP, dy)?;
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
