//! Weight statistics and histograms: how sparse a layer is (exact zeros, near zeros), how
//! large (L2 norm, range), and how its values are spread.

use serde::Serialize;

/// |w| below this counts as "near zero".
pub const NEAR_ZERO: f32 = 1e-3;

/// Bins of the histogram in `WeightStats`.
pub const BINS: usize = 32;

/// Counts of values in `counts.len()` equal-width bins spanning [lo, hi]; the last bin
/// includes hi. A constant input puts everything in one bin.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Histogram {
    pub lo: f32,
    pub hi: f32,
    pub counts: Vec<u32>,
}

impl Histogram {
    /// `bins` equal-width bins over [lo, hi]; values outside or non-finite are not counted.
    pub fn new(data: &[f32], bins: usize, lo: f32, hi: f32) -> Histogram {
        let mut counts = vec![0u32; bins];
        let width = hi - lo;
        for &v in data {
            if bins == 0 || !v.is_finite() || v < lo || v > hi {
                continue;
            }
            let bin = if width > 0.0 {
                (((v - lo) / width * bins as f32) as usize).min(bins - 1)
            } else {
                0
            };
            counts[bin] += 1;
        }
        Histogram { lo, hi, counts }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WeightStats {
    pub count: usize,
    /// Values exactly 0 (either sign).
    pub zeros: usize,
    /// Values with |w| < NEAR_ZERO (the exact zeros included).
    pub near_zeros: usize,
    /// sqrt(Σw²), summed in f64.
    pub l2_norm: f32,
    /// Smallest and largest value (0 for empty input).
    pub min: f32,
    pub max: f32,
    /// BINS bins over [min, max].
    pub histogram: Histogram,
}

impl WeightStats {
    /// Share of exact zeros, in [0, 1] (0 for empty input).
    pub fn zero_share(&self) -> f32 {
        self.zeros as f32 / self.count.max(1) as f32
    }

    /// Share of |w| < NEAR_ZERO, in [0, 1].
    pub fn near_zero_share(&self) -> f32 {
        self.near_zeros as f32 / self.count.max(1) as f32
    }
}

/// Statistics of one tensor's values (or several, concatenated).
pub fn weight_stats(data: &[f32]) -> WeightStats {
    let zeros = data.iter().filter(|&&v| v == 0.0).count();
    let near_zeros = data.iter().filter(|&&v| v.abs() < NEAR_ZERO).count();
    let sum_sq: f64 = data.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let (min, max) = if data.is_empty() {
        (0.0, 0.0)
    } else {
        data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
    };
    WeightStats {
        count: data.len(),
        zeros,
        near_zeros,
        l2_norm: sum_sq.sqrt() as f32,
        min,
        max,
        histogram: Histogram::new(data, BINS, min, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_zeros_near_zeros_norm_and_range() {
        let s = weight_stats(&[0.0, -0.0, 5e-4, -2e-3, 3.0, -4.0]);
        assert_eq!((s.count, s.zeros, s.near_zeros), (6, 2, 3));
        let norm = (5e-4f64.powi(2) + 2e-3f64.powi(2) + 9.0 + 16.0).sqrt() as f32;
        assert!((s.l2_norm - norm).abs() < 1e-6, "{}", s.l2_norm);
        assert_eq!((s.min, s.max), (-4.0, 3.0));
        assert_eq!(s.histogram.counts.iter().sum::<u32>(), 6);
        assert_eq!(s.histogram.counts[0], 1, "-4 in the first bin");
        assert_eq!(s.histogram.counts[BINS - 1], 1, "3 (the max) in the last bin");
        assert!((s.zero_share() - 2.0 / 6.0).abs() < 1e-6);
    }

    #[test]
    fn empty_and_constant_inputs() {
        let e = weight_stats(&[]);
        assert_eq!((e.count, e.zeros, e.l2_norm, e.zero_share()), (0, 0, 0.0, 0.0));
        let c = weight_stats(&[2.0; 4]);
        assert_eq!(c.histogram.counts[0], 4);
        assert_eq!(c.l2_norm, 4.0);
    }
}
