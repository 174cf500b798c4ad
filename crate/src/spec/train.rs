//! A run's hyperparameters and settings (`TrainConfig`), and the enums its JSON names: the
//! optimizer, the train/eval mode, the regularizers' targets and L1 mode. The code that
//! acts on them lives in nn/ (optim.rs, regularize.rs, model.rs) and the trainer.

use serde::{Deserialize, Serialize};

use super::DropoutScaling;
use crate::backend::BackendChoice;
use crate::error::{Error, Result};

/// Hyperparameters and run settings. Every field is optional in JSON; unknown fields are
/// refused. Rates, batch size, optimizer and regularization apply from the next step; seed
/// and backend need a rebuild.
///
/// Regularization (semantics in nn/regularize.rs): `l1`·Σ|w| and (`l2`/2)·Σw² over the
/// parameters picked by `l1_target` / `l2_target`, added to the mean data loss; `l1_mode`
/// says whether L1 acts through the gradient or as a proximal soft threshold after the
/// update. `weight_decay` is AdamW's decoupled decay (PyTorch's default 0.01), used only
/// when `optimizer` is "adamw".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub batch: usize,
    pub lr: f32,
    pub optimizer: OptimizerKind,
    pub momentum: f32,
    pub seed: u64,
    pub backend: BackendChoice,
    /// What the training forward uses: `train` (dropout masks, batch-norm batch statistics)
    /// or `eval` (no dropout, running statistics) — the course's train/eval switch.
    pub train_mode: Mode,
    /// Overrides every dropout layer's p while set (the page's slider); None keeps the spec's.
    pub dropout_p: Option<f32>,
    /// Overrides every dropout layer's scaling while set.
    pub dropout_scaling: Option<DropoutScaling>,
    pub l1: f32,
    pub l2: f32,
    pub l1_target: RegTarget,
    pub l2_target: RegTarget,
    pub l1_mode: L1Mode,
    pub weight_decay: f32,
    /// Weight of the box term (localize, detect).
    pub box_weight: f32,
    /// Weight of the soft Dice term added to the per-pixel cross-entropy (segment; 0 = off).
    pub dice: f32,
    /// Detection: NMS IoU threshold and the score below which boxes are not drawn (live).
    pub nms_iou: f32,
    pub score_threshold: f32,
    /// Names of layers whose parameters are frozen (not updated; transfer learning), live.
    pub freeze: Vec<String>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch: 64,
            lr: 0.001,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            seed: 1,
            backend: BackendChoice::Auto,
            train_mode: Mode::Train,
            dropout_p: None,
            dropout_scaling: None,
            l1: 0.0,
            l2: 0.0,
            l1_target: RegTarget::Weights,
            l2_target: RegTarget::Weights,
            l1_mode: L1Mode::Penalty,
            weight_decay: 0.01,
            box_weight: 5.0,
            dice: 0.0,
            nms_iou: 0.5,
            score_threshold: 0.3,
            freeze: Vec::new(),
        }
    }
}

pub const MAX_BATCH: usize = 1024;

impl TrainConfig {
    pub fn from_json(text: &str) -> Result<TrainConfig> {
        let c: TrainConfig = serde_json::from_str(text).map_err(|e| Error::Parse {
            what: "train config",
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// This config with the fields present in `text` (a JSON object) replaced; fields left
    /// out keep their current values. Unknown fields and bad values are refused.
    pub fn merged_with_json(&self, text: &str) -> Result<TrainConfig> {
        let parse = |e: serde_json::Error| Error::Parse {
            what: "train config",
            message: e.to_string(),
        };
        let serde_json::Value::Object(changes) = serde_json::from_str(text).map_err(parse)? else {
            return Err(Error::Parse {
                what: "train config",
                message: "expected a JSON object".into(),
            });
        };
        let mut merged = serde_json::to_value(self).map_err(parse)?;
        if let serde_json::Value::Object(fields) = &mut merged {
            fields.extend(changes);
        }
        let c: TrainConfig = serde_json::from_value(merged).map_err(parse)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.batch > MAX_BATCH {
            return Err(Error::Config {
                field: "batch",
                problem: format!("must be between 1 and {MAX_BATCH}, got {}", self.batch),
            });
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return Err(Error::Config {
                field: "lr",
                problem: format!("must be in (0, 10], got {}", self.lr),
            });
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::Config {
                field: "momentum",
                problem: format!("must be in [0, 1), got {}", self.momentum),
            });
        }
        if let Some(p) = self.dropout_p {
            if !(p.is_finite() && (0.0..1.0).contains(&p)) {
                return Err(Error::Config {
                    field: "dropout_p",
                    problem: format!("must be in [0, 1) or null, got {p}"),
                });
            }
        }
        for (field, value) in [
            ("l1", self.l1),
            ("l2", self.l2),
            ("weight_decay", self.weight_decay),
            ("box_weight", self.box_weight),
            ("dice", self.dice),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::Config {
                    field,
                    problem: format!("must be finite and at least 0, got {value}"),
                });
            }
        }
        for (field, value) in [("nms_iou", self.nms_iou), ("score_threshold", self.score_threshold)] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(Error::Config {
                    field,
                    problem: format!("must be in [0, 1], got {value}"),
                });
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Adam,
    /// Serialized "adamw".
    AdamW,
}

/// How a forward pass treats dropout and batch norm (PyTorch's `model.train()` / `model.eval()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Dropout masks units; batch norm uses (and updates) batch statistics.
    #[default]
    Train,
    /// No masks (classic dropout scales by 1-p); batch norm uses its running statistics.
    Eval,
}

/// Which parameters a regularizer applies to. Serialized in snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegTarget {
    /// Conv kernels and linear weights (not biases, not normalisation parameters).
    #[default]
    Weights,
    /// Conv kernels only (transposed convolutions' included).
    Conv,
    /// Linear weights only.
    Linear,
    /// The first conv kernel in the parameter store.
    FirstConv,
    /// Every parameter.
    All,
}

/// How the L1 term acts. Serialized in lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum L1Mode {
    /// l1·sign(w) is added to the gradient.
    #[default]
    Penalty,
    /// Soft threshold by lr·l1 after the optimizer update.
    Proximal,
}
