//! One forward pass outside training: what `cnnp infer` runs.

use serde::{Deserialize, Serialize};

use super::{Model, ParamStore};
use crate::autograd::Tape;
use crate::backend::Backend;
use crate::error::{shape_err, Error, Result};
use crate::tensor::Shape;

/// How layers that behave differently while training (batch norm, dropout) run: `Eval`
/// uses running statistics and keeps every unit, `Train` uses batch statistics and drops.
/// `Model::forward` has no mode yet (no such layer is built); `infer` takes it already so
/// that callers need not change when it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Eval,
    Train,
}

/// x (N,C,H,W) as row-major values -> (the last layer's output shape, its values).
pub async fn infer(
    model: &Model,
    store: &ParamStore,
    backend: &dyn Backend,
    x: &[f32],
    n: usize,
    mode: Mode,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let _ = mode; // TODO(lead): pass to Model::forward once batch norm and dropout are built
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
    let outs = model.forward(&mut tape, xv)?;
    let y = *outs.last().ok_or_else(|| Error::Config {
        field: "layers",
        problem: "the model has no layers".into(),
    })?;
    backend.flush()?;
    let value = tape.value(y);
    Ok((value.dims().to_vec(), backend.read(value).await?))
}
