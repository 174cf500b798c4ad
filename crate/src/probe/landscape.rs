//! The loss landscape along the gradient: Santurkar, Tsipras, Ilyas & Madry, "How Does Batch
//! Normalization Help Optimization?" (NeurIPS 2018), Fig. 4. At parameters θ with gradient g
//! on a fixed batch, for step sizes η_1..η_m:
//!
//! - loss landscape (Fig. 4a)         L(θ − η·g) for each η; `loss_range` = max − min over η (loss units)
//! - gradient predictiveness (4b)     ‖∇L(θ − η·g) − g‖₂ for each η; `gradient_change` = its max
//! - effective β-smoothness (4c)      max over η of ‖∇L(θ − η·g) − g‖₂ / ‖η·g‖₂ (gradient per unit of θ)
//!
//! Pure maths over host vectors: `landscape` drives any loss-and-gradient function (a
//! quadratic in the tests); `Landscape::from_samples` summarises samples taken elsewhere.
//! `Trainer::landscape` (landscape_trainer.rs) takes them from the model on its device.
//! Norms are summed in f64.

use serde::Serialize;

use crate::error::{shape_err, Result};

pub(crate) const OP: &str = "landscape";

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Landscape {
    /// The step sizes η, as given.
    pub etas: Vec<f32>,
    /// losses[i] = L(θ − η_i·g).
    pub losses: Vec<f32>,
    /// gradient_changes[i] = ‖∇L(θ − η_i·g) − g‖₂.
    pub gradient_changes: Vec<f32>,
    /// max − min of `losses`.
    pub loss_range: f32,
    /// max of `gradient_changes`.
    pub gradient_change: f32,
    /// max over i of gradient_changes[i] / (η_i·‖g‖₂); 0 when g = 0.
    pub beta_smoothness: f32,
    /// ‖g‖₂.
    pub grad_norm: f32,
}

impl Landscape {
    /// The summary of samples already taken: `grad` g at θ, and for each η_i the loss and
    /// gradient at θ − η_i·g.
    pub fn from_samples(etas: &[f32], grad: &[f32], losses: &[f32], grads_at: &[Vec<f32>]) -> Result<Landscape> {
        check_etas(etas)?;
        if losses.len() != etas.len() || grads_at.len() != etas.len() {
            return Err(shape_err(
                OP,
                "one loss and one gradient per step size",
                &[&[etas.len()], &[losses.len()], &[grads_at.len()]],
            ));
        }
        let g_norm = norm(grad.iter().map(|&v| f64::from(v)));
        let mut gradient_changes = Vec::with_capacity(etas.len());
        let mut beta = 0.0f64;
        for (&eta, g_at) in etas.iter().zip(grads_at) {
            if g_at.len() != grad.len() {
                return Err(shape_err(
                    OP,
                    format!("the gradient at θ − {eta}·g has another length than g"),
                    &[&[grad.len()], &[g_at.len()]],
                ));
            }
            let change = norm(g_at.iter().zip(grad).map(|(&a, &b)| f64::from(a) - f64::from(b)));
            let moved = f64::from(eta) * g_norm;
            if moved > 0.0 {
                beta = beta.max(change / moved);
            }
            gradient_changes.push(change as f32);
        }
        let (lo, hi) = losses.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &l| {
            (lo.min(l), hi.max(l))
        });
        Ok(Landscape {
            etas: etas.to_vec(),
            losses: losses.to_vec(),
            gradient_change: gradient_changes.iter().copied().fold(0.0, f32::max),
            gradient_changes,
            loss_range: hi - lo,
            beta_smoothness: beta as f32,
            grad_norm: g_norm as f32,
        })
    }
}

/// Samples `loss_and_grad` at θ − η·g for each η in `etas` and summarises them. `theta` and
/// `grad` (the gradient at θ) have the same length; `loss_and_grad` returns a gradient of
/// that length too.
pub fn landscape<F>(theta: &[f32], grad: &[f32], etas: &[f32], mut loss_and_grad: F) -> Result<Landscape>
where
    F: FnMut(&[f32]) -> Result<(f32, Vec<f32>)>,
{
    if theta.len() != grad.len() {
        return Err(shape_err(
            OP,
            "θ and its gradient differ in length",
            &[&[theta.len()], &[grad.len()]],
        ));
    }
    check_etas(etas)?;
    let mut losses = Vec::with_capacity(etas.len());
    let mut grads_at = Vec::with_capacity(etas.len());
    for &eta in etas {
        let moved: Vec<f32> = theta.iter().zip(grad).map(|(&t, &g)| t - eta * g).collect();
        let (loss, g_at) = loss_and_grad(&moved)?;
        losses.push(loss);
        grads_at.push(g_at);
    }
    Landscape::from_samples(etas, grad, &losses, &grads_at)
}

/// At least one step size, each finite and > 0.
pub(crate) fn check_etas(etas: &[f32]) -> Result<()> {
    if etas.is_empty() || etas.iter().any(|&e| !(e.is_finite() && e > 0.0)) {
        return Err(shape_err(
            OP,
            format!("step sizes must be finite and > 0, at least one: {etas:?}"),
            &[&[etas.len()]],
        ));
    }
    Ok(())
}

fn norm(values: impl Iterator<Item = f64>) -> f64 {
    values.map(|v| v * v).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(θ) = ½ θᵀAθ with A = diag(a): ∇f = Aθ.
    fn quadratic(a: &[f32]) -> impl Fn(&[f32]) -> Result<(f32, Vec<f32>)> + '_ {
        move |theta: &[f32]| {
            let loss = theta.iter().zip(a).map(|(&t, &ai)| 0.5 * ai * t * t).sum();
            Ok((loss, theta.iter().zip(a).map(|(&t, &ai)| ai * t).collect()))
        }
    }

    const A: [f32; 3] = [4.0, 1.0, 0.25];
    const ETAS: [f32; 4] = [0.05, 0.1, 0.25, 0.5];

    #[test]
    fn along_an_eigenvector_beta_is_the_eigenvalue_and_the_loss_has_a_closed_form() {
        // θ = 2·e_0: g = (8, 0, 0); θ − ηg = 2(1 − 4η)·e_0, loss 2·4·(1 − 4η)² = 8(1 − 4η)²
        let theta = [2.0f32, 0.0, 0.0];
        let (_, g) = quadratic(&A)(&theta).unwrap();
        let l = landscape(&theta, &g, &ETAS, quadratic(&A)).unwrap();
        assert!((l.beta_smoothness - 4.0).abs() < 1e-5, "{}", l.beta_smoothness);
        let want: Vec<f32> = ETAS.iter().map(|e| 8.0 * (1.0 - 4.0 * e).powi(2)).collect();
        for (got, want) in l.losses.iter().zip(&want) {
            assert!((got - want).abs() < 1e-5, "{:?} vs {want:?}", l.losses);
        }
        // losses 5.12, 2.88, 0, 8: range 8
        assert!((l.loss_range - 8.0).abs() < 1e-5, "{}", l.loss_range);
        // ‖∇f(θ − ηg) − g‖ = ‖ηAg‖ = 32η: largest at η = 0.5, 16
        assert!((l.gradient_change - 16.0).abs() < 1e-5, "{}", l.gradient_change);
        assert!((l.gradient_changes[0] - 1.6).abs() < 1e-5);
    }

    #[test]
    fn off_an_eigenvector_beta_is_the_rayleigh_ratio_along_g() {
        // θ = (1, 1, 0): g = (4, 1, 0), ‖Ag‖/‖g‖ = ‖(16, 1, 0)‖/‖(4, 1, 0)‖ = √257/√17, for every η
        let theta = [1.0f32, 1.0, 0.0];
        let (_, g) = quadratic(&A)(&theta).unwrap();
        let l = landscape(&theta, &g, &ETAS, quadratic(&A)).unwrap();
        let want = (257.0f32 / 17.0).sqrt();
        assert!(
            (l.beta_smoothness - want).abs() < 1e-4,
            "{} vs {want}",
            l.beta_smoothness
        );
        assert!(l.beta_smoothness < 4.0, "below the largest eigenvalue");
        // loss(η) = ½·4(1 − 4η)² + ½(1 − η)²: at η = 0.05, 0.1, 0.25, 0.5: 1.73125, 1.125, 0.28125, 2.125
        let want = [1.73125f32, 1.125, 0.28125, 2.125];
        for (got, want) in l.losses.iter().zip(&want) {
            assert!((got - want).abs() < 1e-5, "{:?}", l.losses);
        }
        assert!((l.loss_range - (2.125 - 0.28125)).abs() < 1e-5);
    }

    #[test]
    fn a_zero_gradient_moves_nothing() {
        let l = landscape(&[0.0; 3], &[0.0; 3], &ETAS, quadratic(&A)).unwrap();
        assert_eq!((l.loss_range, l.gradient_change, l.beta_smoothness), (0.0, 0.0, 0.0));
    }

    #[test]
    fn errors_name_the_instrument_and_shapes() {
        let e = landscape(&[1.0; 3], &[1.0; 2], &ETAS, quadratic(&A))
            .unwrap_err()
            .to_string();
        assert!(e.contains("landscape") && e.contains("[3], [2]"), "{e}");
        assert!(landscape(&[1.0; 3], &[1.0; 3], &[], quadratic(&A)).is_err());
        assert!(landscape(&[1.0; 3], &[1.0; 3], &[0.0], quadratic(&A)).is_err());
        assert!(landscape(&[1.0; 3], &[1.0; 3], &[f32::NAN], quadratic(&A)).is_err());
        let short = |_: &[f32]| Ok((0.0f32, vec![0.0f32; 2]));
        assert!(landscape(&[1.0; 3], &[1.0; 3], &[0.1], short).is_err());
        assert!(Landscape::from_samples(&[0.1], &[1.0], &[], &[]).is_err());
    }
}
