//! The probe headers the experiments record: `Trainer::instrument(name, options)`
//! (probe/instruments.rs, docs/chapters.md "Probes"), the same entry point the page calls.
//! The CLI keeps each header's scalars; the `{"$": i}` slots that stand for bulk arrays are
//! kept as they are (result.json holds the header, not the arrays), except where a finding
//! or a figure needs an array: none of them does today.

use serde_json::Value;

use crate::error::Result;
use crate::trainer::Trainer;

/// The header of probe `name` on `trainer`'s current parameters.
pub async fn probe(trainer: &Trainer, name: &str, options: &Value) -> Result<Value> {
    Ok(trainer.instrument(name, options).await?.header)
}
