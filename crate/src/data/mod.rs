//! Data: a seeded RNG that gives the same numbers on every machine, the MNIST digits, and
//! seeded scenes for localisation, detection and segmentation (shapes, cluttered digits).

pub mod clutter;
pub mod mnist;
mod rng;
pub mod shapes;

pub use mnist::{Batch, Mnist};
pub use rng::Rng;
