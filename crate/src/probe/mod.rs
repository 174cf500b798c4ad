//! Instruments that read the model without changing it. Pure functions of host data: the
//! trainer or the CLI reads a tensor back once and hands its values here.

pub mod histogram;

pub use histogram::{weight_stats, Histogram, WeightStats, NEAR_ZERO};
