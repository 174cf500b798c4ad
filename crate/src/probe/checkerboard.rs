//! The checkerboard score: Odena, Dumoulin & Olah, "Deconvolution and Checkerboard
//! Artifacts" (Distill 2016) show the stride-periodic pattern of a transposed convolution as
//! a picture; this makes it a number. For a map x (H,W), mean removed, with unnormalised 2-D
//! DFT X, the score is
//!
//!   Σ_{(u,v) : u ∈ F_H or v ∈ F_W} |X[u,v]|²  /  Σ_{(u,v)} |X[u,v]|²
//!
//! where F_n, the stride frequencies of an axis of length n for stride s, are k·n/s for
//! k = 1..s-1 (for s = 2: the Nyquist row and column). A share of spectral energy, in [0, 1]:
//! 1 for a pure ±1 checkerboard, 0 for a constant or a smooth map. When s does not divide n
//! (odd sizes), k·n/s falls between two DFT bins and both count (they are each other's
//! mirror, n − ⌊k·n/s⌋ = ⌈k·n/s⌉, so the set stays symmetric like the spectrum of a real map).
//! A (C,H,W) map scores the mean of its channels' scores.
//!
//! The DFT is the definition, O(n²) per axis, in f64: the maps probed here are ≤ 64 a side.

use std::f64::consts::PI;

use crate::error::{shape_err, Result};

const OP: &str = "checkerboard_score";

/// The checkerboard score of `map` with `dims` [H, W] or [C, H, W], for `stride` ≥ 2: the
/// share of its (mean-removed) spectral energy at the stride frequencies, in [0, 1]. A
/// channel with no energy (constant) scores 0.
pub fn checkerboard_score(map: &[f32], dims: &[usize], stride: usize) -> Result<f32> {
    let (c, h, w) = match *dims {
        [h, w] => (1, h, w),
        [c, h, w] => (c, h, w),
        _ => return Err(shape_err(OP, "the map must be (H,W) or (C,H,W)", &[dims])),
    };
    if map.len() != c * h * w {
        return Err(shape_err(
            OP,
            format!("{} values do not fill the map", map.len()),
            &[dims],
        ));
    }
    if c == 0 {
        return Err(shape_err(OP, "the map has no channels", &[dims]));
    }
    if stride < 2 || stride > h || stride > w {
        return Err(shape_err(
            OP,
            format!("stride {stride} must be at least 2 and at most each side"),
            &[dims],
        ));
    }
    let rows = stride_bins(h, stride);
    let cols = stride_bins(w, stride);
    let mut sum = 0.0f64;
    for channel in map.chunks_exact(h * w) {
        let power = power_spectrum(channel, h, w);
        let total: f64 = power.iter().sum();
        if total <= 0.0 {
            continue;
        }
        let mut at_stride = 0.0f64;
        for u in 0..h {
            for v in 0..w {
                if rows.contains(&u) || cols.contains(&v) {
                    at_stride += power[u * w + v];
                }
            }
        }
        sum += at_stride / total;
    }
    Ok((sum / c as f64) as f32)
}

/// The DFT bins of the stride frequencies k·n/s, k = 1..s-1, of an axis of length n: the bin
/// itself when s divides k·n, else the two bins either side. Sorted, without repeats.
pub(crate) fn stride_bins(n: usize, stride: usize) -> Vec<usize> {
    let mut bins = Vec::new();
    for k in 1..stride {
        let (lo, rem) = ((k * n) / stride, (k * n) % stride);
        bins.push(lo);
        if rem != 0 {
            bins.push(lo + 1);
        }
    }
    bins.sort_unstable();
    bins.dedup();
    bins.retain(|&b| b > 0 && b < n);
    bins
}

/// |X[u,v]|² of one (H,W) map with its mean removed, X the unnormalised 2-D DFT
/// X[u,v] = Σ_{i,j} x[i,j]·e^{-2πi(ui/H + vj/W)}; (H,W) row-major, so Parseval reads
/// Σ|X|² = H·W·Σ(x − mean)².
pub fn power_spectrum(map: &[f32], h: usize, w: usize) -> Vec<f64> {
    let mean = map.iter().map(|&v| f64::from(v)).sum::<f64>() / (h * w).max(1) as f64;
    let mut re: Vec<f64> = map.iter().map(|&v| f64::from(v) - mean).collect();
    let mut im = vec![0.0f64; h * w];
    // along each row (length W), then along each column (length H)
    for i in 0..h {
        dft_strided(&mut re, &mut im, i * w, 1, w);
    }
    for j in 0..w {
        dft_strided(&mut re, &mut im, j, w, h);
    }
    re.iter().zip(&im).map(|(a, b)| a * a + b * b).collect()
}

/// In place: the n values at offset, offset+step, … replaced by their DFT
/// X[k] = Σ_t x[t]·e^{-2πi·k·t/n}.
fn dft_strided(re: &mut [f64], im: &mut [f64], offset: usize, step: usize, n: usize) {
    let at = |t: usize| offset + t * step;
    let x: Vec<(f64, f64)> = (0..n).map(|t| (re[at(t)], im[at(t)])).collect();
    for k in 0..n {
        let (mut sr, mut si) = (0.0, 0.0);
        for (t, &(xr, xi)) in x.iter().enumerate() {
            let angle = -2.0 * PI * ((k * t) % n) as f64 / n as f64;
            let (s, c) = angle.sin_cos();
            sr += xr * c - xi * s;
            si += xr * s + xi * c;
        }
        re[at(k)] = sr;
        im[at(k)] = si;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(h: usize, w: usize, f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        (0..h * w).map(|p| f(p / w, p % w)).collect()
    }

    fn checker(i: usize, j: usize) -> f32 {
        if (i + j).is_multiple_of(2) {
            1.0
        } else {
            -1.0
        }
    }

    #[test]
    fn stride_bins_exact_and_between() {
        assert_eq!(stride_bins(16, 2), vec![8]);
        assert_eq!(stride_bins(12, 3), vec![4, 8]);
        assert_eq!(stride_bins(15, 2), vec![7, 8], "7.5 lies between bins 7 and 8");
        assert_eq!(stride_bins(16, 3), vec![5, 6, 10, 11], "16/3 = 5.33, 32/3 = 10.67");
    }

    #[test]
    fn parseval_and_a_single_frequency() {
        // x = cos(2π·2j/8) on one row of 8: energy |X[2]|² = |X[6]|² = (8/2)² = 16, rest 0
        let x = map(1, 8, |_, j| (2.0 * PI * 2.0 * j as f64 / 8.0).cos() as f32);
        let p = power_spectrum(&x, 1, 8);
        assert!((p[2] - 16.0).abs() < 1e-9 && (p[6] - 16.0).abs() < 1e-9, "{p:?}");
        assert!((p.iter().sum::<f64>() - 8.0 * 4.0).abs() < 1e-9, "H·W·Σx² = 8·4");
    }

    #[test]
    fn a_perfect_checkerboard_scores_one() {
        let s = checkerboard_score(&map(16, 16, checker), &[16, 16], 2).unwrap();
        assert!((s - 1.0).abs() < 1e-6, "{s}");
        // stride 4 includes the Nyquist bin (k = 2 of 1..3): still all of it
        let s4 = checkerboard_score(&map(16, 16, checker), &[16, 16], 4).unwrap();
        assert!((s4 - 1.0).abs() < 1e-6, "{s4}");
    }

    #[test]
    fn constant_and_smooth_maps_score_near_zero() {
        assert_eq!(checkerboard_score(&[3.0; 64], &[8, 8], 2).unwrap(), 0.0);
        let sine = map(16, 16, |i, j| (2.0 * PI * (i + 2 * j) as f64 / 16.0).sin() as f32);
        assert!(checkerboard_score(&sine, &[16, 16], 2).unwrap() < 1e-9);
        // a ramp along H: |X[u]|² ∝ 1/sin²(πu/16); Nyquist holds 1 of Σ_u 1/sin²(πu/16) = (16²−1)/3
        let ramp = map(16, 16, |i, _| i as f32);
        let s = checkerboard_score(&ramp, &[16, 16], 2).unwrap();
        assert!((s - 3.0 / 255.0).abs() < 1e-6, "{s}");
    }

    #[test]
    fn a_small_checkerboard_on_a_smooth_map_scores_its_energy_share() {
        // sine (Σx² = HW/2) and a·checkerboard (Σx² = a²·HW) are orthogonal: score = a²/(a² + ½)
        let mut last = 0.0;
        for a in [0.1f32, 0.3, 0.5, 1.0] {
            let x = map(16, 16, |i, j| {
                (2.0 * PI * i as f64 / 16.0).sin() as f32 + a * checker(i, j)
            });
            let s = checkerboard_score(&x, &[16, 16], 2).unwrap();
            let want = a * a / (a * a + 0.5);
            assert!((s - want).abs() < 1e-5, "a = {a}: {s} vs {want}");
            assert!(s > last);
            last = s;
        }
    }

    #[test]
    fn channels_average_and_odd_sizes() {
        // one checkerboard channel (1) and one constant channel (0): mean ½
        let mut x = map(8, 8, checker);
        x.extend([2.0f32; 64]);
        let s = checkerboard_score(&x, &[2, 8, 8], 2).unwrap();
        assert!((s - 0.5).abs() < 1e-6, "{s}");
        // 15×15: (−1)^(i+j) has no exact Nyquist bin; rows/columns 7 and 8 catch 0.96525 of its
        // energy (a direct 2-D DFT in Python, independent of this one)
        let odd = checkerboard_score(&map(15, 15, checker), &[15, 15], 2).unwrap();
        assert!((odd - 0.965_251_3).abs() < 1e-5, "{odd}");
    }

    #[test]
    fn errors_name_the_instrument_and_shapes() {
        let e = checkerboard_score(&[0.0; 10], &[4, 4], 2).unwrap_err().to_string();
        assert!(e.contains("checkerboard_score") && e.contains("[4, 4]"), "{e}");
        assert!(checkerboard_score(&[0.0; 16], &[4, 4], 1).is_err());
        assert!(checkerboard_score(&[0.0; 16], &[4, 4], 5).is_err());
        assert!(checkerboard_score(&[0.0; 16], &[16], 2).is_err());
        assert!(checkerboard_score(&[], &[0, 4, 4], 2).is_err());
    }
}
