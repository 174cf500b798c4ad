//! CNN Playground: train small convolutional networks live, on WebGPU (wgpu) or the CPU,
//! in the browser (wasm) and natively (the `cnnp` CLI).

pub mod autograd;
pub mod backend;
pub mod chapters;
pub mod data;
pub mod error;
pub mod nn;
pub mod params;
pub mod probe;
pub mod spec;
pub mod tasks;
pub mod tensor;
pub mod trainer;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use backend::{Backend, BackendChoice, Device};
pub use error::{Error, Result};
pub use spec::ModelSpec;
pub use trainer::{TrainConfig, Trainer};
