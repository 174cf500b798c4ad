//! Layers, parameters and optimizers. Pure: no browser APIs here.

pub mod export;
pub mod infer;
pub mod io;
pub mod model;
pub mod optim;
pub mod regularize;

pub use infer::infer;
pub use model::{Forward, Layer, Mode, Model, Pass, TestDropout};
pub use optim::{Optimizer, OptimizerKind};
pub use regularize::{L1Mode, RegTarget, Regularizer};

// Parameters and buffers are the tape's persistent leaves (params.rs); their old paths.
pub use crate::params::{Buffer, Param, ParamKind, ParamStore};
