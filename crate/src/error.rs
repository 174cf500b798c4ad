//! One error type for the whole core. Every variant names the op or layer and the shapes
//! involved, so a message read in the page or the CLI says what went wrong and where.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// An op was given tensors whose shapes do not fit together.
    #[error("{op}: {problem} (shapes: {shapes})")]
    Shape {
        op: &'static str,
        problem: String,
        shapes: String,
    },
    /// A model spec failed validation at a given layer (`name` when the spec names it).
    #[error("layer {index}{} ({kind}): {problem}{}", name_part(.name), shape_suffix(.input_shapes))]
    Spec {
        index: usize,
        name: Option<String>,
        kind: String,
        problem: String,
        input_shapes: Vec<Vec<usize>>,
    },
    /// Several problems in one spec, each an `Error::Spec`, in layer order.
    #[error("{} problems: {}", .0.len(), join(.0))]
    Specs(Vec<Error>),
    /// The spec or config is not valid JSON, or has unknown / missing fields.
    #[error("invalid {what}: {message}")]
    Parse { what: &'static str, message: String },
    /// A hyperparameter or option is out of range.
    #[error("config: {field} {problem}")]
    Config { field: &'static str, problem: String },
    /// The data asset is missing or malformed.
    #[error("data: {0}")]
    Data(String),
    /// GPU device or adapter trouble (no adapter, device lost, mapping failed).
    #[error("gpu: {0}")]
    Gpu(String),
    /// A weights file (safetensors) that cannot be read or does not fit the model: names
    /// each tensor and its shapes.
    #[error("weights: {0}")]
    Weights(String),
    /// File system trouble in the CLI.
    #[error("io: {path}: {message}")]
    Io { path: String, message: String },
}

fn shape_suffix(s: &[Vec<usize>]) -> String {
    match s {
        [] => String::new(),
        [dims] => format!(" (input shape {dims:?})"),
        many => format!(
            " (input shapes {})",
            many.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn name_part(name: &Option<String>) -> String {
    name.as_ref().map(|n| format!(" \"{n}\"")).unwrap_or_default()
}

fn join(errors: &[Error]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for shape errors: `shape_err("conv2d", "channels differ", &[&x, &w])`.
pub fn shape_err(op: &'static str, problem: impl Into<String>, shapes: &[&[usize]]) -> Error {
    let shapes = shapes.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    Error::Shape {
        op,
        problem: problem.into(),
        shapes,
    }
}
