//! The loss landscape along the gradient (landscape.rs, after Santurkar et al. 2018, Fig. 4)
//! of a Trainer's model: the training loss and its gradient on a fixed probe batch, with
//! fixed dropout masks, at the current parameters θ and at θ − η·g for each step size η.
//! The moved parameters live in a scratch store, so the trainer is left bit-identical.

use crate::autograd::Tape;
use crate::data::Rng;
use crate::error::{shape_err, Result};
use crate::nn::Pass;
use crate::params::{Buffer, Param, ParamStore};
use crate::probe::landscape::{check_etas, Landscape, OP};
use crate::tasks::data::{stack, Example};
use crate::tasks::heads;
use crate::tensor::{Shape, Tensor};
use crate::trainer::Trainer;

/// Seed of the dropout masks of every landscape pass: the same masks at θ and at each θ − η·g.
const MASK_SEED: u64 = 0x1a4d_5ca9e;

impl Trainer {
    /// The landscape along the gradient of the training loss on `examples` (a fixed probe
    /// batch), at the current parameters, for step sizes `etas`: 1 + `etas.len()` forward and
    /// backward passes in the training mode (batch statistics; dropout masks drawn from one
    /// fixed seed), frozen layers' gradients zeroed as in `step`. The moved parameters live in
    /// a scratch store: nothing of the trainer changes. Two round trips: θ and g, then the
    /// samples.
    pub async fn landscape(&self, examples: &[&Example], etas: &[f32]) -> Result<Landscape> {
        check_etas(etas)?;
        if examples.is_empty() {
            return Err(shape_err(OP, "the probe batch is empty", &[&[0]]));
        }
        let be = self.backend();
        let store = self.params();
        let input = stack(examples);
        let (_, grads) = self.landscape_pass(store, &input, examples)?;
        // θ, the buffers, then g (only the parameters that have a gradient)
        let mut reads: Vec<&Tensor> = store.params.iter().map(|p| &p.value).collect();
        reads.extend(store.buffers.iter().map(|b| &b.value));
        reads.extend(grads.iter().flatten());
        let read = be.read_many(&reads).await?;
        let (theta, rest) = read.split_at(store.params.len().min(read.len()));
        let (buffers, rest) = rest.split_at(store.buffers.len().min(rest.len()));
        let g = flatten_grads(store, &grads, rest)?;
        if theta.len() != store.params.len() {
            return Err(shape_err(
                OP,
                "the parameters did not come back",
                &[&[store.params.len()], &[theta.len()]],
            ));
        }
        let mut samples = Vec::with_capacity(etas.len());
        for &eta in etas {
            let mut offset = 0;
            let mut moved = ParamStore::default();
            for (p, t) in store.params.iter().zip(theta) {
                let step: Vec<f32> = t
                    .iter()
                    .zip(g.get(offset..).unwrap_or_default())
                    .map(|(&t, &g)| t - eta * g)
                    .collect();
                offset += t.len();
                let value = be.upload(p.value.shape.clone(), &step)?;
                moved.params.push(Param {
                    name: p.name.clone(),
                    kind: p.kind,
                    value,
                });
            }
            for (b, v) in store.buffers.iter().zip(buffers) {
                let value = be.upload(b.value.shape.clone(), v)?;
                moved.buffers.push(Buffer {
                    name: b.name.clone(),
                    value,
                });
            }
            samples.push(self.landscape_pass(&moved, &input, examples)?);
            be.flush()?;
        }
        let mut reads: Vec<&Tensor> = Vec::new();
        for (loss, grads) in &samples {
            reads.push(loss);
            reads.extend(grads.iter().flatten());
        }
        let read = be.read_many(&reads).await?;
        let (mut losses, mut grads_at) = (Vec::new(), Vec::new());
        let mut next = 0;
        for (_, grads) in &samples {
            let count = 1 + grads.iter().flatten().count();
            let part = read.get(next..next + count).unwrap_or_default();
            losses.push(part.first().and_then(|l| l.first()).copied().unwrap_or(f32::NAN));
            grads_at.push(flatten_grads(store, grads, part.get(1..).unwrap_or_default())?);
            next += count;
        }
        Landscape::from_samples(etas, &g, &losses, &grads_at)
    }

    /// The training loss (summed over the head's parts, as the Report's loss) and the
    /// gradients of the model with the parameters of `store` on `input` (the stacked
    /// `examples`); frozen parameters' gradients are None.
    fn landscape_pass(
        &self,
        store: &ParamStore,
        input: &[f32],
        examples: &[&Example],
    ) -> Result<(Tensor, Vec<Option<Tensor>>)> {
        let be = self.backend();
        let config = self.config();
        let mut rng = Rng::new(MASK_SEED);
        let mut tape = Tape::new(be, store);
        let xv = tape.input(be.upload(self.input_shape(examples.len()), input)?);
        let mut pass = Pass {
            mode: config.train_mode,
            rng: Some(&mut rng),
            dropout_p: config.dropout_p,
            dropout_scaling: config.dropout_scaling,
            test_dropout: Default::default(),
        };
        let z = self.model().forward(&mut tape, xv, &mut pass)?.output();
        let head = heads::loss(&mut tape, z, self.spec(), examples, &self.head_options())?;
        let mut loss = be.zeros(Shape::new(&[1]))?;
        for (_, v) in &head.parts {
            be.add_assign(&mut loss, tape.value(*v))?;
        }
        let mut grads = tape.backward_sum(&head.terms)?;
        for id in self.frozen_params() {
            if let Some(g) = grads.get_mut(id) {
                *g = None;
            }
        }
        Ok((loss, grads))
    }
}

/// One vector over all parameters of `store`, in store order: each parameter's read gradient
/// (`read` holds those of the Some entries of `grads`, in order), zeros where it has none.
fn flatten_grads(store: &ParamStore, grads: &[Option<Tensor>], read: &[Vec<f32>]) -> Result<Vec<f32>> {
    let mut flat = Vec::with_capacity(store.count());
    let mut read = read.iter();
    for (p, g) in store.params.iter().zip(grads) {
        let values = if g.is_some() { read.next() } else { None };
        match (g, values) {
            (Some(_), Some(values)) if values.len() == p.value.numel() => flat.extend(values),
            (None, _) => flat.extend(std::iter::repeat_n(0.0, p.value.numel())),
            _ => {
                return Err(shape_err(
                    OP,
                    format!("the gradient of {} did not come back", p.name),
                    &[p.value.dims()],
                ))
            }
        }
    }
    Ok(flat)
}

// native only: the test blocks on the probe with pollster (wasm tests are in crate/tests/web.rs)
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn bits(store: &ParamStore) -> Vec<Vec<u32>> {
        let cpu = |t: &Tensor| t.cpu().unwrap().iter().map(|v| v.to_bits()).collect();
        store
            .params
            .iter()
            .map(|p| cpu(&p.value))
            .chain(store.buffers.iter().map(|b| cpu(&b.value)))
            .collect()
    }

    /// A conv → BN → relu → dropout → pool → linear net on a small MNIST-format asset: digit d is a
    /// bright bar at row 3 + 2d.
    fn tiny_trainer() -> Trainer {
        let spec = crate::ModelSpec::from_json(
            r#"{"input":[1,28,28],"classes":10,"layers":[
            {"type":"conv2d","out":4,"kernel":3,"padding":1},{"type":"batch_norm"},{"type":"relu"},{"type":"dropout","p":0.2},
            {"type":"max_pool","size":4},{"type":"flatten"},{"type":"linear","out":10}]}"#,
        )
        .unwrap();
        let config = crate::TrainConfig {
            batch: 8,
            ..Default::default()
        };
        let mnist = crate::probe::instruments::trainer_tests::bars_of(100);
        let cpu = crate::Device::Cpu(crate::backend::cpu::CpuBackend::new());
        Trainer::with_device(spec, config, mnist, cpu, "test".into()).unwrap()
    }

    #[test]
    fn the_trainer_probe_follows_the_gradient_and_changes_nothing() {
        let t = tiny_trainer();
        let examples = t.data().train_examples(16).unwrap();
        let refs: Vec<&Example> = examples.iter().collect();
        let before = bits(t.params());
        let etas = [1e-4f32, 2e-4, 0.1, 0.5];
        let l = pollster::block_on(t.landscape(&refs, &etas)).unwrap();
        assert_eq!(
            bits(t.params()),
            before,
            "parameters and buffers bit-identical after the probe"
        );
        assert_eq!(t.steps_done(), 0);
        // first order: L(θ − η₁g) − L(θ − η₂g) ≈ (η₂ − η₁)·‖g‖², so the loss and g agree
        let slope = (l.losses[0] - l.losses[1]) / (1e-4 * l.grad_norm * l.grad_norm);
        assert!((slope - 1.0).abs() < 0.01, "slope {slope}, {l:?}");
        // and the gradient barely moves for a tiny step, more for a large one
        assert!(l.gradient_changes[0] < l.gradient_changes[3], "{l:?}");
        assert!(l.grad_norm > 0.0 && l.beta_smoothness.is_finite() && l.beta_smoothness > 0.0);
        let spread = l.losses.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
            - l.losses.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        assert_eq!(l.loss_range, spread);
        // a fixed batch and fixed masks: the probe repeats exactly
        assert_eq!(pollster::block_on(t.landscape(&refs, &etas)).unwrap(), l);
    }
}
