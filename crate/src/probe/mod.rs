//! Every read of a model that leaves it unchanged: evaluation (`eval`), decoded outputs and
//! the digit grid (`outputs`), the per-layer views (`views`), as `impl Trainer` blocks, and
//! the pure instruments over host data they use (`histogram`). Each probe reads what it
//! shows in one round trip (`Backend::read_many`).

pub mod eval;
pub mod histogram;
pub mod outputs;
pub mod views;

pub use eval::Evaluation;
pub use histogram::{weight_stats, Histogram, WeightStats, NEAR_ZERO};
pub use outputs::{OutputExample, OutputTruth, Outputs, Predictions};
pub use views::{
    Activations, BnStats, Filters, LayerActivation, LayerView, ParamStats, Weights, ZeroShare, MAX_PROBE_CHANNELS,
};
