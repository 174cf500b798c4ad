//! Every read of a model that leaves it unchanged: evaluation (`eval`), decoded outputs and
//! the digit grid (`outputs`), the per-layer views (`views`), as `impl Trainer` blocks, and
//! the pure instruments over host data they use (`histogram`). Each probe reads what it
//! shows in one round trip (`Backend::read_many`). The chapters' instruments: the
//! checkerboard score (`checkerboard`), Monte-Carlo dropout statistics (`mc_dropout`), the
//! loss landscape along the gradient (`landscape`, pure and over a Trainer) and an inception
//! block's counts with and without 1×1 reductions (`counts`). `instruments` puts every
//! chapter probe behind one entry point, `Trainer::instrument(name, options)`.

pub mod checkerboard;
pub mod counts;
pub mod eval;
pub mod histogram;
pub mod instruments;
pub mod landscape;
pub mod landscape_trainer;
pub mod mc_dropout;
pub mod outputs;
pub mod views;

pub use checkerboard::{checkerboard_score, power_spectrum};
pub use counts::{inception_counts, Counts, InceptionCounts};
pub use eval::Evaluation;
pub use histogram::{weight_stats, Histogram, WeightStats, NEAR_ZERO};
pub use instruments::{overlap_counts, Instrument, PROBES, PROBE_EXAMPLES};
pub use landscape::{landscape, Landscape};
pub use mc_dropout::{
    accuracy_by_passes, agreement, predictive_entropy, predictive_mean, predictive_variance, McDropout,
};
pub use outputs::{OutputExample, OutputTruth, Outputs, Predictions};
pub use views::{
    Activations, BnStats, Filters, LayerActivation, LayerView, ParamStats, Weights, ZeroShare, MAX_PROBE_CHANNELS,
};
