//! The plain nested-loop convolution, written exactly as the definition reads. The fast
//! im2col + GEMM path in `conv2d.rs` is tested against these.

use crate::backend::geometry::ConvGeom;
use crate::backend::Conv2dParams;
use crate::error::Result;
use crate::tensor::Shape;

/// x (N,C,H,W), w (O,C,K,K), b (O) -> y (N,O,OH,OW)
/// y[n,o,i,j] = b[o] + Σ_{c,u,v} w[o,c,u,v] · x[n, c, i·s+u-p, j·s+v-p]   (zero outside)
pub fn conv2d(x: &[f32], xs: &Shape, w: &[f32], ws: &Shape, b: &[f32], p: Conv2dParams) -> Result<Vec<f32>> {
    let ConvGeom {
        n,
        c,
        h,
        w: wd,
        o,
        k,
        oh,
        ow,
        ..
    } = ConvGeom::new("conv2d_reference", xs, ws, p)?;
    let mut y = vec![0.0; n * o * oh * ow];
    for ni in 0..n {
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = b[oc];
                    for ci in 0..c {
                        for u in 0..k {
                            for v in 0..k {
                                let ih = (i * p.stride + u) as isize - p.padding as isize;
                                let iw = (j * p.stride + v) as isize - p.padding as isize;
                                if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < wd {
                                    s += w[((oc * c + ci) * k + u) * k + v]
                                        * x[((ni * c + ci) * h + ih as usize) * wd + iw as usize];
                                }
                            }
                        }
                    }
                    y[((ni * o + oc) * oh + i) * ow + j] = s;
                }
            }
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::backend::Backend;
    use crate::data::Rng;

    /// The fast path (im2col + GEMM) equals the definition, forward and backward (the
    /// backward ones via the adjoint identity <conv(x), dy> = <x, dx> = <w, dw>).
    #[test]
    fn fast_conv_matches_definition() {
        let cpu = CpuBackend::new();
        let mut rng = Rng::new(5);
        for &(n, c, h, w, o, k, s, pad) in &[
            (2, 3, 7, 6, 4, 3, 1, 1),
            (1, 2, 9, 9, 3, 5, 2, 2),
            (2, 1, 5, 8, 2, 1, 1, 0),
            (1, 2, 6, 5, 2, 3, 3, 0),
            (1, 1, 4, 4, 1, 3, 2, 1),
        ] {
            let p = Conv2dParams {
                stride: s,
                padding: pad,
            };
            let mut r = |len: usize| (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect::<Vec<f32>>();
            let (xd, wd, bd) = (r(n * c * h * w), r(o * c * k * k), r(o));
            let (xs, ws) = (Shape::new(&[n, c, h, w]), Shape::new(&[o, c, k, k]));
            let want = conv2d(&xd, &xs, &wd, &ws, &bd, p).unwrap();
            let x = cpu.upload(xs.clone(), &xd).unwrap();
            let wt = cpu.upload(ws.clone(), &wd).unwrap();
            let b = cpu.upload(Shape::new(&[o]), &bd).unwrap();
            let y = cpu.conv2d(&x, &wt, &b, p).unwrap();
            let got = y.cpu().unwrap();
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-4, "forward {g} vs {e}");
            }
            // <conv_nobias(x,w), dy> must equal <x, dx> and <w, dw>.
            let dyd = r(y.numel());
            let dy = cpu.upload(y.shape.clone(), &dyd).unwrap();
            let zero_b = vec![0.0; o];
            let lin = conv2d(&xd, &xs, &wd, &ws, &zero_b, p).unwrap();
            let inner: f32 = lin.iter().zip(&dyd).map(|(a, b)| a * b).sum();
            let dx = cpu.conv2d_backward_input(&dy, &wt, &xs, p).unwrap();
            let (dw, db) = cpu.conv2d_backward_weight(&dy, &x, &ws, p).unwrap();
            let via_x: f32 = dx.cpu().unwrap().iter().zip(&xd).map(|(a, b)| a * b).sum();
            let via_w: f32 = dw.cpu().unwrap().iter().zip(&wd).map(|(a, b)| a * b).sum();
            assert!(
                (inner - via_x).abs() < 1e-3 * inner.abs().max(1.0),
                "dx adjoint {inner} vs {via_x}"
            );
            assert!(
                (inner - via_w).abs() < 1e-3 * inner.abs().max(1.0),
                "dw adjoint {inner} vs {via_w}"
            );
            let dbsum: f32 = db.cpu().unwrap().iter().sum();
            assert!((dbsum - dyd.iter().sum::<f32>()).abs() < 1e-3);
        }
    }
}
