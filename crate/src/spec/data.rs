//! The data section of a spec: which examples a run trains on (`DataSource`) and how they
//! are made, checked against the model's input, classes and task. The data itself is
//! built by tasks/data.rs.

use serde::{Deserialize, Serialize};

use super::{ModelSpec, Task};
use crate::data::clutter::ClutterConfig;
use crate::data::shapes::{ShapeKind, ShapesConfig};
use crate::error::{Error, Result};

/// Which examples a run trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// The real MNIST digits, 28×28 grey.
    #[default]
    Mnist,
    /// Seeded RGB scenes of circles, squares, triangles, crosses and rings.
    Shapes,
    /// MNIST digits placed on a larger canvas among fragments of other digits.
    Clutter,
}

/// The data section of a run's config. Every field is optional in JSON; unknown fields are
/// refused. The data is built when the run starts: changes need a reset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub source: DataSource,
    /// Canvas width and height (shapes, clutter).
    pub size: usize,
    /// Objects per scene (shapes, clutter).
    pub min_objects: usize,
    pub max_objects: usize,
    /// Shape circumradius range in pixels (shapes).
    pub min_radius: f32,
    pub max_radius: f32,
    /// Pixel noise (standard deviation) and number of distractors.
    pub noise: f32,
    pub clutter: usize,
    /// Largest IoU between two objects' boxes.
    pub max_overlap: f32,
    /// Textured background (shapes).
    pub textured: bool,
    /// MNIST, clutter: use these digits only, relabelled 0.. in this order (empty: all ten).
    pub digits: Vec<u32>,
    /// MNIST, clutter: labelled training digits per class (0: all of them); clutter scenes
    /// then place only those digits (at random positions, among fresh fragments).
    pub per_class: usize,
    /// Validation examples (scenes; MNIST uses its whole validation split, filtered).
    pub val: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: DataSource::Mnist,
            size: 32,
            min_objects: 1,
            max_objects: 1,
            min_radius: 5.0,
            max_radius: 12.0,
            noise: 0.02,
            clutter: 0,
            max_overlap: 0.1,
            textured: false,
            digits: Vec::new(),
            per_class: 0,
            val: 256,
        }
    }
}

/// Largest validation set of scenes (bounds memory in the page).
pub const MAX_VAL: usize = 2048;

fn config_err(field: &'static str, problem: String) -> Error {
    Error::Config { field, problem }
}

impl DataConfig {
    pub fn shapes(&self) -> ShapesConfig {
        ShapesConfig {
            size: self.size,
            min_objects: self.min_objects,
            max_objects: self.max_objects,
            min_radius: self.min_radius,
            max_radius: self.max_radius,
            noise: self.noise,
            clutter: self.clutter,
            max_overlap: self.max_overlap,
            min_visible: 0.5,
            textured_background: self.textured,
        }
    }

    pub fn clutter(&self) -> ClutterConfig {
        ClutterConfig {
            size: self.size,
            min_digits: self.min_objects,
            max_digits: self.max_objects,
            clutter: self.clutter,
            noise: self.noise,
            max_overlap: self.max_overlap,
        }
    }

    /// Checks the fields and that they fit the spec's input, classes and task.
    pub fn validate_for(&self, spec: &ModelSpec) -> Result<()> {
        if self.val == 0 || self.val > MAX_VAL {
            return Err(config_err(
                "data.val",
                format!("must be in 1..={MAX_VAL}, got {}", self.val),
            ));
        }
        if let Some(bad) = self.digits.iter().find(|&&d| d > 9) {
            return Err(config_err("data.digits", format!("{bad} is not a digit (0..=9)")));
        }
        let mut seen = [false; 10];
        for &d in &self.digits {
            if std::mem::replace(&mut seen[d as usize], true) {
                return Err(config_err("data.digits", format!("{d} is listed twice")));
            }
        }
        if self.digits.len() == 1 {
            return Err(config_err(
                "data.digits",
                "needs at least two digits to classify".into(),
            ));
        }
        let digit_classes = if self.digits.is_empty() { 10 } else { self.digits.len() };
        let (input, classes) = match self.source {
            DataSource::Mnist => {
                if spec.task != Task::Classify {
                    return Err(config_err(
                        "data.source",
                        format!(
                            "mnist digits are for the classify task; a {} model needs \"shapes\" or \"clutter\"",
                            spec.task.name()
                        ),
                    ));
                }
                ([1, 28, 28], digit_classes)
            }
            DataSource::Shapes => {
                self.shapes().validate()?;
                ([3, self.size, self.size], ShapeKind::COUNT)
            }
            DataSource::Clutter => {
                self.clutter().validate()?;
                ([1, self.size, self.size], digit_classes)
            }
        };
        if matches!(self.source, DataSource::Shapes | DataSource::Clutter)
            && matches!(spec.task, Task::Classify | Task::Localize)
            && (self.min_objects != 1 || self.max_objects != 1)
        {
            return Err(config_err(
                "data.max_objects",
                format!(
                    "{} needs exactly one object per scene (min_objects = max_objects = 1), got {}..={}",
                    spec.task.name(),
                    self.min_objects,
                    self.max_objects
                ),
            ));
        }
        if spec.input != input || spec.classes != classes {
            return Err(Error::Spec {
                index: 0,
                name: None,
                kind: "input".into(),
                problem: format!(
                    "{:?} data needs input {input:?} and {classes} classes; the spec has input {:?} and {} classes",
                    self.source, spec.input, spec.classes
                ),
                input_shapes: Vec::new(),
            });
        }
        Ok(())
    }
}
