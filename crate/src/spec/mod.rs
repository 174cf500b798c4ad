//! The model spec: the JSON that the page and the CLI both speak. A model is data: a list
//! of layers, each optionally named and reading the outputs of earlier layers by name, so a
//! spec is a DAG (inception blocks, U-Net skips, residual adds) as well as a chain. It is
//! validated (shapes inferred layer by layer) before anything runs, and every error names
//! the layer (index and name), the problem and the shapes.
//!
//! - here: the spec's top-level types (`ModelSpec`, `Task`, budgets), parsing;
//! - `layer`: one entry of `layers` and its op (`LayerSpec`);
//! - `infer`: validation in phases, producing the `Plan` (and `ValidSpec`, a spec with its plan);
//! - `shapes`: one layer's output shape, parameters and FLOPs;
//! - `data`: the data section (`DataConfig`);
//! - `train`: the run's hyperparameters (`TrainConfig`).
//!
//! This module imports nothing from nn, tasks or the trainer: they build on it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub mod data;
pub mod infer;
pub mod kinds;
pub mod layer;
mod shapes;
#[cfg(test)]
mod tests;
pub mod train;

pub use data::{DataConfig, DataSource};
pub use infer::{check_json, LayerPlan, Plan, Source, ValidSpec};
pub use layer::{inception_convs, DropoutScaling, Layer, LayerSpec, Padding};
pub use train::{L1Mode, Mode, OptimizerKind, RegTarget, TrainConfig, MAX_BATCH};

/// Models larger than this many parameters are refused before any memory is allocated.
pub const MAX_PARAMS: usize = 20_000_000;
/// Activation floats per example summed over layers, refused above this.
pub const MAX_ACTIVATIONS: usize = 20_000_000;

/// The size limits a spec is validated against (the CLI can raise or lower them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_params: usize,
    pub max_activations: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_params: MAX_PARAMS,
            max_activations: MAX_ACTIVATIONS,
        }
    }
}

/// The reserved name of the model's input in `inputs` lists.
pub const INPUT: &str = "input";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// (C, H, W) of one example.
    pub input: [usize; 3],
    pub classes: usize,
    /// What the model is trained for; it fixes the shape the output must have.
    #[serde(default, skip_serializing_if = "Task::is_classify")]
    pub task: Task,
    /// The examples it trains on (default: all MNIST digits); see spec/data.rs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataConfig>,
    pub layers: Vec<Layer>,
}

/// The task a spec's head is built for (the course's last chapters). The model's output
/// must be [`Task::output_shape`]:
/// - `classify`: (classes) class scores;
/// - `localize`: (classes + 4): class scores, then the box (cx/W, cy/H, w/W, h/H);
/// - `detect`: (5 + classes, S, S), a YOLO-v1 grid of S×S cells (any S): objectness logit,
///   (tx, ty, tw, th) and class scores per cell (tasks/grid.rs);
/// - `segment`: (classes + 1, H, W) per-pixel scores, channel 0 the background.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Classify,
    Localize,
    Detect,
    Segment,
}

impl Task {
    pub fn is_classify(&self) -> bool {
        *self == Task::Classify
    }
    pub fn name(&self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Localize => "localize",
            Task::Detect => "detect",
            Task::Segment => "segment",
        }
    }
    /// Whether `out` (one example's output shape) fits this task for `classes` classes and
    /// an input of (C, H, W); the error names what was expected.
    pub fn check_output(&self, out: &[usize], classes: usize, input: [usize; 3]) -> std::result::Result<(), String> {
        let ok = match self {
            Task::Classify => out == [classes],
            Task::Localize => out == [classes + 4],
            Task::Detect => out.len() == 3 && out[0] == 5 + classes && out[1] == out[2] && out[1] > 0,
            Task::Segment => out == [classes + 1, input[1], input[2]],
        };
        if ok {
            return Ok(());
        }
        let want = match self {
            Task::Classify => format!("{classes} class scores"),
            Task::Localize => format!("[{}] ({classes} class scores, then the box cx, cy, w, h)", classes + 4),
            Task::Detect => format!(
                "a detection grid [{}, S, S] (objectness, 4 box values and {classes} class scores per cell)",
                5 + classes
            ),
            Task::Segment => format!(
                "per-pixel scores [{}, {}, {}] (background and {classes} classes at the input's size)",
                classes + 1,
                input[1],
                input[2]
            ),
        };
        Err(format!(
            "a {} model must end in {want}, but outputs {out:?}",
            self.name()
        ))
    }
}

impl ModelSpec {
    /// The data section, or the default (all MNIST digits).
    pub fn data_config(&self) -> DataConfig {
        self.data.clone().unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<ModelSpec> {
        let spec = Self::parse(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses without validating (the layer editor shows validation errors per layer).
    pub fn parse(text: &str) -> Result<ModelSpec> {
        serde_json::from_str(text).map_err(|e| Error::Parse {
            what: "model spec",
            message: e.to_string(),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The name of layer `i`: its own, or its index.
    pub fn layer_name(&self, i: usize) -> String {
        self.layers
            .get(i)
            .and_then(|l| l.name.clone())
            .unwrap_or_else(|| i.to_string())
    }
}
