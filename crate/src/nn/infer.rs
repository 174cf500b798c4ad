//! One forward pass outside training: what `cnnp infer` runs.

use super::{Mode, Model, ParamStore, Pass};
use crate::autograd::Tape;
use crate::backend::Backend;
use crate::data::Rng;
use crate::error::{shape_err, Result};
use crate::tensor::Shape;

/// x (N,C,H,W) as row-major values -> (the last layer's output shape, its values).
pub async fn infer(
    model: &Model,
    store: &ParamStore,
    backend: &dyn Backend,
    x: &[f32],
    n: usize,
    mode: Mode,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let [c, h, w] = model.input;
    let dims = [n, c, h, w];
    if n == 0 || x.len() != n * c * h * w {
        return Err(shape_err(
            "infer",
            format!(
                "needs {n}·{c}·{h}·{w} values for a (N,C,H,W) batch of {n}, got {}",
                x.len()
            ),
            &[&dims],
        ));
    }
    let mut tape = Tape::new(backend, store);
    let xv = tape.input(backend.upload(Shape::new(&dims), x)?);
    // train mode: batch statistics, and dropout masks from a fixed seed (repeatable)
    let mut masks = Rng::new(0);
    let mut pass = Pass {
        mode,
        rng: Some(&mut masks),
        dropout_p: None,
        dropout_scaling: None,
        test_dropout: Default::default(),
    };
    let y = model.forward(&mut tape, xv, &mut pass)?.output();
    backend.flush()?;
    let value = tape.value(y);
    Ok((value.dims().to_vec(), backend.read(value).await?))
}
