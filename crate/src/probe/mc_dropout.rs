//! Monte-Carlo dropout: K stochastic forward passes at test time (dropout left on), their
//! softmax outputs p_k (K,N,C) summarised per example. After Srivastava et al., "Dropout"
//! (JMLR 2014), Fig. 11: the accuracy of averaging k = 1..K sampled passes against
//! weight-scaling inference; and Gal & Ghahramani 2016 for mean, variance and entropy.
//!
//! - predictive mean  p̄[n,c] = (1/K) Σ_k p_k[n,c]                   (probabilities)
//! - variance         σ²[n,c] = (1/K) Σ_k (p_k[n,c] − p̄[n,c])²      (probabilities², the 1/K population variance)
//! - entropy          H[n]   = −Σ_c p̄[n,c]·ln p̄[n,c]                (nats; 0·ln 0 = 0)
//! - accuracy of k    share of examples whose argmax of the mean of the first k passes is the label
//! - agreement        share of examples whose MC-mean argmax equals the weight-scaled argmax
//!
//! Argmax ties go to the lowest class index. Sums run in f64.

use serde::Serialize;

use crate::error::{shape_err, Result};

const OP: &str = "mc_dropout";

/// The summary of K stochastic passes over N examples of C classes.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct McDropout {
    /// Predictive mean (N,C).
    pub mean: Vec<f32>,
    /// Per-class variance over the passes (N,C).
    pub variance: Vec<f32>,
    /// Entropy of the predictive mean (N), nats.
    pub entropy: Vec<f32>,
    /// accuracy[k-1]: accuracy of the mean of the first k passes, k = 1..K; in [0, 1].
    pub accuracy: Vec<f32>,
    /// Share of examples where the MC mean and the weight-scaled prediction agree, in [0, 1].
    pub agreement: f32,
}

impl McDropout {
    /// `passes` (K,N,C) softmax outputs, `labels` (N), `weight_scaled` (N,C) the
    /// deterministic (dropout off) softmax output.
    pub fn new(passes: &[f32], dims: [usize; 3], labels: &[usize], weight_scaled: &[f32]) -> Result<McDropout> {
        let [_, n, c] = dims;
        let mean = predictive_mean(passes, dims)?;
        Ok(McDropout {
            variance: predictive_variance(passes, dims)?,
            entropy: predictive_entropy(&mean, [n, c])?,
            accuracy: accuracy_by_passes(passes, dims, labels)?,
            agreement: agreement(&mean, weight_scaled, [n, c])?,
            mean,
        })
    }
}

/// p̄ (N,C): the mean over K of `passes` (K,N,C).
pub fn predictive_mean(passes: &[f32], dims: [usize; 3]) -> Result<Vec<f32>> {
    check_passes(passes, dims)?;
    let [k, n, c] = dims;
    Ok(sums_over_passes(passes, n * c, k)
        .into_iter()
        .map(|s| (s / k as f64) as f32)
        .collect())
}

/// σ² (N,C): the population variance over K of `passes` (K,N,C).
pub fn predictive_variance(passes: &[f32], dims: [usize; 3]) -> Result<Vec<f32>> {
    check_passes(passes, dims)?;
    let [k, n, c] = dims;
    let mean: Vec<f64> = sums_over_passes(passes, n * c, k)
        .iter()
        .map(|s| s / k as f64)
        .collect();
    let mut sq = vec![0.0f64; n * c];
    for pass in passes.chunks_exact(n * c) {
        for ((acc, &p), m) in sq.iter_mut().zip(pass).zip(&mean) {
            *acc += (f64::from(p) - m).powi(2);
        }
    }
    Ok(sq.into_iter().map(|s| (s / k as f64) as f32).collect())
}

/// H (N): −Σ_c p·ln p of each row of `probs` (N,C), in nats.
pub fn predictive_entropy(probs: &[f32], dims: [usize; 2]) -> Result<Vec<f32>> {
    let [n, c] = dims;
    check_rows("predictive_entropy", probs, n, c)?;
    Ok(probs
        .chunks_exact(c)
        .map(|row| {
            let h: f64 = row
                .iter()
                .filter(|&&p| p > 0.0)
                .map(|&p| -f64::from(p) * f64::from(p).ln())
                .sum();
            h as f32
        })
        .collect())
}

/// accuracy[k-1] for k = 1..K: the share of the N examples whose argmax of the mean of the
/// first k passes equals `labels[n]`.
pub fn accuracy_by_passes(passes: &[f32], dims: [usize; 3], labels: &[usize]) -> Result<Vec<f32>> {
    check_passes(passes, dims)?;
    let [k, n, c] = dims;
    if labels.len() != n || labels.iter().any(|&l| l >= c) {
        return Err(shape_err(
            OP,
            format!("need {n} labels below {c}, got {:?}", labels),
            &[&dims, &[labels.len()]],
        ));
    }
    let mut sums = vec![0.0f64; n * c];
    let mut accuracy = Vec::with_capacity(k);
    for pass in passes.chunks_exact(n * c) {
        for (acc, &p) in sums.iter_mut().zip(pass) {
            *acc += f64::from(p);
        }
        // the argmax of a sum is the argmax of the mean
        let correct = sums
            .chunks_exact(c)
            .zip(labels)
            .filter(|(row, &l)| argmax(row) == l)
            .count();
        accuracy.push(correct as f32 / n.max(1) as f32);
    }
    Ok(accuracy)
}

/// The share of rows of `mc_mean` and `weight_scaled` (both (N,C)) with the same argmax.
pub fn agreement(mc_mean: &[f32], weight_scaled: &[f32], dims: [usize; 2]) -> Result<f32> {
    let [n, c] = dims;
    check_rows("mc_dropout agreement", mc_mean, n, c)?;
    check_rows("mc_dropout agreement", weight_scaled, n, c)?;
    let as_f64 = |row: &[f32]| row.iter().map(|&p| f64::from(p)).collect::<Vec<_>>();
    let same = mc_mean
        .chunks_exact(c)
        .zip(weight_scaled.chunks_exact(c))
        .filter(|(a, b)| argmax(&as_f64(a)) == argmax(&as_f64(b)))
        .count();
    Ok(same as f32 / n.max(1) as f32)
}

/// Σ over the K blocks of `len` values each (K·len values), in f64.
fn sums_over_passes(passes: &[f32], len: usize, k: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; len];
    for pass in passes.chunks_exact(len).take(k) {
        for (acc, &p) in sums.iter_mut().zip(pass) {
            *acc += f64::from(p);
        }
    }
    sums
}

/// Index of the largest value; ties to the lowest index.
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

fn check_passes(passes: &[f32], dims: [usize; 3]) -> Result<()> {
    let [k, n, c] = dims;
    if k == 0 || n == 0 || c == 0 || passes.len() != k * n * c {
        return Err(shape_err(
            OP,
            format!("{} values do not fill (K,N,C), each at least 1", passes.len()),
            &[&dims],
        ));
    }
    Ok(())
}

fn check_rows(op: &'static str, probs: &[f32], n: usize, c: usize) -> Result<()> {
    if n == 0 || c == 0 || probs.len() != n * c {
        return Err(shape_err(
            op,
            format!("{} values do not fill (N,C), each at least 1", probs.len()),
            &[&[n, c]],
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn identical_passes_have_no_variance_and_the_entropy_of_that_distribution() {
        let one = [0.7f32, 0.2, 0.1, 0.25, 0.25, 0.5]; // N = 2, C = 3
        let passes: Vec<f32> = one.iter().copied().cycle().take(4 * 6).collect();
        let s = McDropout::new(&passes, [4, 2, 3], &[0, 2], &one).unwrap();
        assert!(close(&s.mean, &one), "{:?}", s.mean);
        assert!(s.variance.iter().all(|&v| v.abs() < 1e-12), "{:?}", s.variance);
        let h0 = -(0.7f32 * 0.7f32.ln() + 0.2 * 0.2f32.ln() + 0.1 * 0.1f32.ln());
        let h1 = -(0.5f32 * 0.25f32.ln() + 0.5 * 0.5f32.ln());
        assert!(close(&s.entropy, &[h0, h1]), "{:?} vs {h0}, {h1}", s.entropy);
        assert_eq!((s.accuracy, s.agreement), (vec![1.0; 4], 1.0));
    }

    #[test]
    fn two_class_case_by_hand() {
        // K = 2, N = 1: passes (0.9, 0.1) and (0.3, 0.7): mean (0.6, 0.4), variance 0.3² = 0.09
        let passes = [0.9f32, 0.1, 0.3, 0.7];
        assert!(close(&predictive_mean(&passes, [2, 1, 2]).unwrap(), &[0.6, 0.4]));
        assert!(close(&predictive_variance(&passes, [2, 1, 2]).unwrap(), &[0.09, 0.09]));
        let h = predictive_entropy(&[0.6, 0.4], [1, 2]).unwrap()[0];
        assert!(
            (h - 0.673_011_7).abs() < 1e-6,
            "−0.6 ln 0.6 − 0.4 ln 0.4 = 0.6730117, got {h}"
        );
        // a certain prediction has entropy 0; the uniform one ln 2
        assert_eq!(predictive_entropy(&[1.0, 0.0], [1, 2]).unwrap(), vec![0.0]);
        let u = predictive_entropy(&[0.5, 0.5], [1, 2]).unwrap()[0];
        assert!((u - std::f32::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn accuracy_grows_as_passes_are_averaged() {
        // N = 2, C = 2, labels (0, 0). Pass 1 gets example 1 wrong, pass 2 gets example 0 wrong
        // but mildly, pass 3 is right on both:
        //   k=1: ex0 (0.8,0.2) ✓, ex1 (0.4,0.6) ✗                       -> ½
        //   k=2: ex0 sum (1.2,0.8) ✓, ex1 sum (1.3,0.7) ✓               -> 1
        //   k=3: ex0 (0.0,1.0) added: (1.2,1.8) ✗, ex1 (2.2,0.8) ✓       -> ½
        let passes = [0.8f32, 0.2, 0.4, 0.6, 0.4, 0.6, 0.9, 0.1, 0.0, 1.0, 0.9, 0.1];
        let acc = accuracy_by_passes(&passes, [3, 2, 2], &[0, 0]).unwrap();
        assert_eq!(acc, vec![0.5, 1.0, 0.5]);
        // weight scaling says (class 0, class 0); the 3-pass mean says (class 1, class 0)
        let mean = predictive_mean(&passes, [3, 2, 2]).unwrap();
        assert_eq!(agreement(&mean, &[0.6, 0.4, 0.7, 0.3], [2, 2]).unwrap(), 0.5);
    }

    #[test]
    fn errors_name_the_instrument_and_shapes() {
        let e = predictive_mean(&[0.5; 5], [2, 1, 2]).unwrap_err().to_string();
        assert!(e.contains("mc_dropout") && e.contains("[2, 1, 2]"), "{e}");
        assert!(
            accuracy_by_passes(&[0.5; 4], [2, 1, 2], &[2]).is_err(),
            "label 2 of 2 classes"
        );
        assert!(
            accuracy_by_passes(&[0.5; 4], [2, 1, 2], &[0, 1]).is_err(),
            "two labels for one example"
        );
        assert!(agreement(&[0.5; 4], &[0.5; 2], [2, 2]).is_err());
        assert!(predictive_entropy(&[], [0, 2]).is_err());
    }
}
