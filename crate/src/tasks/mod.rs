pub mod grid;
pub mod metrics;
