//! conv2d on the CPU: convolution as im2col + GEMM per image, and the transposed
//! convolution as its adjoint (the same two products with the roles swapped).

use super::gemm::{col2im, gemm, im2col, transpose};
use super::{host, host_mut, per_image, tensor};
use crate::backend::geometry::{ConvGeom, ConvTransposeGeom};
use crate::backend::{Conv2dParams, ConvTransposeParams};
use crate::error::Result;
use crate::tensor::{Shape, Tensor};

// x (N,C,H,W), w (O,C,K,K), b (O) -> y (N,O,OH,OW)
// y[n,o] = w[o] (C·K·K) · im2col(x[n]) (C·K·K, OH·OW) + b[o]
pub(super) fn forward(x: &Tensor, w: &Tensor, b: &Tensor, p: Conv2dParams) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let g = ConvGeom::forward(OP, &x.shape, &w.shape, &b.shape, p)?;
    let (xs, ws, bs) = (host(OP, x)?, host(OP, w)?, host(OP, b)?);
    let (chw, ckk, ohw) = (g.c * g.h * g.w, g.c * g.k * g.k, g.oh * g.ow);
    let mut y = vec![0.0; g.n * g.o * ohw];
    per_image(&mut y, g.o * ohw, |img, yn| {
        let mut cols = vec![0.0; ckk * ohw];
        im2col(&xs[img * chw..][..chw], &g, &mut cols);
        gemm(g.o, ohw, ckk, ws, &cols, yn, false);
        for (oc, plane) in yn.chunks_mut(ohw).enumerate() {
            plane.iter_mut().for_each(|v| *v += bs[oc]);
        }
    });
    Ok(tensor(&g.y_dims(), y))
}

// dy (N,O,OH,OW), w (O,C,K,K) -> dx (N,C,H,W)
// dcols = wᵀ (C·K·K, O) · dy[n] (O, OH·OW); dx[n] = col2im(dcols)
pub(super) fn backward_input(dy: &Tensor, w: &Tensor, x_shape: &Shape, p: Conv2dParams) -> Result<Tensor> {
    const OP: &str = "conv2d_backward_input";
    let g = ConvGeom::backward(OP, &dy.shape, x_shape, &w.shape, p)?;
    let (dys, ws) = (host(OP, dy)?, host(OP, w)?);
    let (chw, ckk, ohw) = (g.c * g.h * g.w, g.c * g.k * g.k, g.oh * g.ow);
    let mut wt = vec![0.0; ckk * g.o];
    transpose(g.o, ckk, ws, &mut wt);
    let mut dx = vec![0.0; g.n * chw];
    per_image(&mut dx, chw, |img, dxn| {
        let mut dcols = vec![0.0; ckk * ohw];
        gemm(
            ckk,
            ohw,
            g.o,
            &wt,
            &dys[img * g.o * ohw..][..g.o * ohw],
            &mut dcols,
            false,
        );
        col2im(&dcols, &g, dxn);
    });
    Ok(tensor(x_shape.dims(), dx))
}

// dy (N,O,OH,OW), x (N,C,H,W) -> dw (O,C,K,K) = Σn dy[n] · im2col(x[n])ᵀ, db (O) = Σ dy
// Computed as dwᵀ (C·K·K, O) = Σn im2col(x[n]) · dy[n]ᵀ, so only the small dy[n] is transposed.
pub(super) fn backward_weight(dy: &Tensor, x: &Tensor, w_shape: &Shape, p: Conv2dParams) -> Result<(Tensor, Tensor)> {
    const OP: &str = "conv2d_backward_weight";
    let g = ConvGeom::backward(OP, &dy.shape, &x.shape, w_shape, p)?;
    let (dys, xs) = (host(OP, dy)?, host(OP, x)?);
    let (o, chw, ckk, ohw) = (g.o, g.c * g.h * g.w, g.c * g.k * g.k, g.oh * g.ow);
    // one partial dwᵀ per image, summed in image order (the same sum on any thread count)
    let mut partial = vec![0.0; g.n * ckk * o];
    per_image(&mut partial, ckk * o, |img, dw_t| {
        let mut cols = vec![0.0; ckk * ohw];
        let mut dy_t = vec![0.0; ohw * o];
        im2col(&xs[img * chw..][..chw], &g, &mut cols);
        transpose(o, ohw, &dys[img * o * ohw..][..o * ohw], &mut dy_t);
        gemm(ckk, o, ohw, &cols, &dy_t, dw_t, false);
    });
    let mut dw_t = vec![0.0; ckk * o];
    for part in partial.chunks(ckk * o) {
        dw_t.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    let mut db = vec![0.0; o];
    for img in 0..g.n {
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
pub(super) fn transpose_forward(x: &Tensor, w: &Tensor, b: &Tensor, p: ConvTransposeParams) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    let g = ConvTransposeGeom::new(OP, &x.shape, &w.shape, &b.shape, p)?;
    let mut y = backward_input(x, w, &Shape::new(&g.y_dims()), p.conv())?;
    let bs = host(OP, b)?;
    for (plane, v) in host_mut(OP, &mut y)?.chunks_mut(g.oh * g.ow).enumerate() {
        v.iter_mut().for_each(|v| *v += bs[plane % g.o]);
    }
    Ok(y)
}

// dy (N,O,OH,OW), x (N,C,H,W), w (C,O,K,K) -> dx (N,C,H,W) = conv2d(dy, w),
// dw (C,O,K,K) = conv2d's weight gradient with dy as its input and x as its output
// gradient, db (O) = Σ dy over n, oh, ow
pub(super) fn transpose_backward(
    dy: &Tensor,
    x: &Tensor,
    w: &Tensor,
    p: ConvTransposeParams,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "conv_transpose2d_backward";
    let g = ConvTransposeGeom::backward(OP, &dy.shape, &x.shape, &w.shape, p)?;
    let no_bias = tensor(&[g.c], vec![0.0; g.c]);
    let dx = forward(dy, w, &no_bias, p.conv())?;
    let (dw, _) = backward_weight(x, dy, &w.shape, p.conv())?;
    let mut db = vec![0.0; g.o];
    for (plane, v) in host(OP, dy)?.chunks(g.oh * g.ow).enumerate() {
        db[plane % g.o] += v.iter().sum::<f32>();
    }
    Ok((dx, dw, tensor(&[g.o], db)))
}
