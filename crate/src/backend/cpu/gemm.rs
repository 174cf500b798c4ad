//! The CPU fast path for convolution and linear layers: a register-blocked matrix multiply,
//! and im2col / col2im, which lower a convolution to it.
//!
//! c (M,N) = a (M,K) · b (K,N), or c += a·b, all row-major and contiguous. A 6×8 tile of c
//! is held in registers (fixed-size arrays that LLVM turns into SIMD: SSE/AVX natively,
//! SIMD128 in wasm) while the K loop streams one 8-wide row segment of b and six values of
//! a. 6×8 keeps the 12 accumulator vectors within the 16 SIMD registers of x86 and of V8's
//! wasm code, so nothing spills. Edges fall back to 4×8 and 1×8 tiles and then a plain loop.

use crate::backend::geometry::ConvGeom;

/// c (M,N) = a (M,K) · b (K,N)  (or c += a·b when `accumulate`)
#[allow(clippy::too_many_arguments)]
pub fn gemm(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    debug_assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let mut i = 0;
    while i < m {
        if m - i >= 6 {
            row_block::<6>(i, n, k, a, b, c, accumulate);
            i += 6;
        } else if m - i >= 4 {
            row_block::<4>(i, n, k, a, b, c, accumulate);
            i += 4;
        } else {
            row_block::<1>(i, n, k, a, b, c, accumulate);
            i += 1;
        }
    }
}

/// Rows i..i+MR of c, across all N columns.
fn row_block<const MR: usize>(i: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    let mut j = 0;
    while n - j >= 8 {
        tile::<MR, 8>(i, j, n, k, a, b, c, accumulate);
        j += 8;
    }
    // Remaining columns (< 8): plain dot products.
    for r in i..i + MR {
        for col in j..n {
            let mut s = if accumulate { c[r * n + col] } else { 0.0 };
            for p in 0..k {
                s += a[r * k + p] * b[p * n + col];
            }
            c[r * n + col] = s;
        }
    }
}

/// One MR×NR tile of c at (i, j), accumulated in registers over the whole K loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile<const MR: usize, const NR: usize>(
    i: usize,
    j: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..k {
        let brow: &[f32; NR] = match b[p * n + j..p * n + j + NR].try_into() {
            Ok(r) => r,
            Err(_) => return, // unreachable: the slice has exactly NR elements
        };
        for r in 0..MR {
            let av = a[(i + r) * k + p];
            for q in 0..NR {
                acc[r][q] += av * brow[q];
            }
        }
    }
    for r in 0..MR {
        let crow = &mut c[(i + r) * n + j..(i + r) * n + j + NR];
        for q in 0..NR {
            crow[q] = if accumulate { crow[q] + acc[r][q] } else { acc[r][q] };
        }
    }
}

/// out (C,R) = transpose of x (R,C)
pub fn transpose(rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
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
pub(super) fn im2col(x: &[f32], g: &ConvGeom, cols: &mut [f32]) {
    let (c, h, w, k, oh, ow) = (g.c, g.h, g.w, g.k, g.oh, g.ow);
    let (s, pad) = (g.p.stride, g.p.padding);
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
pub(super) fn col2im(cols: &[f32], g: &ConvGeom, dx: &mut [f32]) {
    let (c, h, w, k, oh, ow) = (g.c, g.h, g.w, g.k, g.oh, g.ow);
    let (s, pad) = (g.p.stride, g.p.padding);
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
                    for (d, xo) in src.iter().zip((first..).step_by(s)) {
                        dst[xo] += d;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_naive_on_awkward_sizes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 17, 3),
            (4, 16, 7),
            (9, 33, 25),
            (16, 196, 200),
            (3, 10, 64),
        ] {
            let a: Vec<f32> = (0..m * k).map(|v| ((v * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..k * n).map(|v| ((v * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let mut c = vec![0.5f32; m * n];
            gemm(m, n, k, &a, &b, &mut c, true);
            for r in 0..m {
                for q in 0..n {
                    let want: f32 = 0.5 + (0..k).map(|p| a[r * k + p] * b[p * n + q]).sum::<f32>();
                    let got = c[r * n + q];
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "({m},{n},{k}) at ({r},{q}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
