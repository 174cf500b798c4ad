//! What the model outputs for a few validation examples: decoded predictions beside the
//! truth for the page's task views, and the MNIST digit grid. One round trip each.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::spec::DataSource;
use crate::spec::Task;
use crate::tasks::data::Example;
use crate::tasks::heads::Prediction;
use crate::tasks::metrics::Truth;
use crate::trainer::Trainer;

/// Decoded outputs for the first validation examples, for the page's views.
#[derive(Clone, Debug, Serialize)]
pub struct Outputs {
    pub task: Task,
    pub input: [usize; 3],
    pub class_names: Vec<String>,
    pub examples: Vec<OutputExample>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputExample {
    /// (C, H, W) in [0, 1].
    pub image: Vec<f32>,
    pub truth: OutputTruth,
    pub pred: Prediction,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputTruth {
    pub label: u32,
    pub boxes: Vec<Truth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<u32>>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Predictions {
    /// Global indices into the MNIST asset.
    pub indices: Vec<u32>,
    pub labels: Vec<u32>,
    pub preds: Vec<u32>,
    pub confidence: Vec<f32>,
}

impl Trainer {
    /// The first `k` validation examples with their truth and the model's decoded prediction
    /// (detections after NMS with the live thresholds), for the page's views.
    pub async fn outputs(&self, k: usize) -> Result<Outputs> {
        let val: Vec<&Example> = self.data().val.iter().take(k).collect();
        let (_, _, _, preds) = self.forward_examples(&val, true, self.config().score_threshold).await?;
        let examples = val
            .iter()
            .zip(preds)
            .map(|(e, pred)| OutputExample {
                image: e.image.clone(),
                truth: OutputTruth {
                    label: e.label,
                    boxes: e.truths.clone(),
                    mask: (!e.mask.is_empty()).then(|| e.mask.clone()),
                },
                pred,
            })
            .collect();
        Ok(Outputs {
            task: self.spec().task,
            input: self.spec().input,
            class_names: self.class_names(),
            examples,
        })
    }

    /// Names of the classes, in label order.
    pub fn class_names(&self) -> Vec<String> {
        let c = self.data().config();
        match c.source {
            DataSource::Shapes => crate::data::shapes::ShapeKind::ALL
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
            DataSource::Mnist | DataSource::Clutter if !c.digits.is_empty() => {
                c.digits.iter().map(|d| d.to_string()).collect()
            }
            _ => (0..10).map(|d| d.to_string()).collect(),
        }
    }

    /// Predicted class and confidence for `k` validation examples spread over the split
    /// (MNIST classification: the page's digit grid).
    pub async fn predict(&self, k: usize) -> Result<Predictions> {
        if self.data().config().source != DataSource::Mnist {
            return Err(Error::Config {
                field: "predict",
                problem: "the digit grid needs MNIST data; use outputs() for scenes".into(),
            });
        }
        let val = &self.data().val;
        let k = k.min(val.len());
        let stride = (val.len() / k.max(1)).max(1);
        let picked: Vec<&Example> = (0..k).map(|i| &val[i * stride]).collect();
        let (_, _, _, preds) = self.forward_examples(&picked, true, 0.0).await?;
        Ok(Predictions {
            indices: (0..k).map(|i| self.data().val_ids[i * stride]).collect(),
            labels: picked.iter().map(|e| e.label).collect(),
            preds: preds.iter().map(|p| p.label.unwrap_or(0)).collect(),
            confidence: preds.iter().map(|p| p.score.unwrap_or(0.0)).collect(),
        })
    }
}
