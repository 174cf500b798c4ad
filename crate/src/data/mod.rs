//! Data: a seeded RNG that gives the same numbers on every machine, and the MNIST digits.

pub mod mnist;
mod rng;
pub mod shapes;

pub use mnist::{Batch, Mnist};
pub use rng::Rng;
