//! Evaluation: loss, accuracy and the task's metrics over validation (or training)
//! examples, and the eval-mode forward that the output probes share. The examples run in
//! chunks (bounding memory); every chunk's few results stay on the device until one read
//! brings them all back.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::autograd::{Tape, Var};
use crate::error::Result;
use crate::nn::Pass;
use crate::spec::Task;
use crate::tasks::data::{stack, Example};
use crate::tasks::heads::{self, Prediction, Scorer};
use crate::tensor::Tensor;
use crate::trainer::Trainer;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    pub val_loss: f32,
    /// As the report's accuracy, on the validation examples.
    pub val_accuracy: f32,
    pub examples: usize,
    /// The task's metrics: classify {accuracy}; localize {accuracy, mean_iou, iou50};
    /// detect {map50, ap50_<class>}; segment {pixel_accuracy, mean_iou}.
    pub metrics: BTreeMap<String, f32>,
}

/// Examples per forward pass while evaluating (bounds memory).
const EVAL_CHUNK: usize = 100;

/// What one chunk left on the device, in read order: `parts` loss terms, then its output
/// (when decoding, each example's `out_dims`), then its correct count.
struct Chunk {
    len: usize,
    parts: usize,
    out_dims: Option<Vec<usize>>,
    count: usize,
}

impl Trainer {
    /// Loss, accuracy and the task's metrics on the first `max` validation examples (all
    /// when `max` is 0).
    pub async fn evaluate(&self, max: usize) -> Result<Evaluation> {
        let val: Vec<&Example> = self.data().val.iter().collect();
        self.evaluate_examples(&val, max).await
    }

    /// Loss, accuracy and metrics on the first `max` training examples (what the CLI
    /// reports as final train metrics).
    pub async fn evaluate_train(&self, max: usize) -> Result<Evaluation> {
        let examples = self.data().train_examples(max.max(1))?;
        let refs: Vec<&Example> = examples.iter().collect();
        self.evaluate_examples(&refs, 0).await
    }

    async fn evaluate_examples(&self, examples: &[&Example], max: usize) -> Result<Evaluation> {
        let n = if max == 0 {
            examples.len()
        } else {
            max.min(examples.len())
        };
        let decode = self.spec().task != Task::Classify;
        // mAP ranks every detection, so evaluation keeps all above a low floor (not the
        // drawing threshold)
        let floor = heads::MAP_SCORE_FLOOR;
        let (loss, correct, count, preds) = self.forward_examples(&examples[..n], decode, floor).await?;
        let mut metrics = BTreeMap::new();
        if decode {
            let mut scorer = Scorer::new(self.spec());
            for (p, e) in preds.into_iter().zip(&examples[..n]) {
                scorer.add(p, e);
            }
            metrics.extend(scorer.metrics());
        } else {
            metrics.insert("accuracy".to_string(), correct / n.max(1) as f32);
        }
        Ok(Evaluation {
            val_loss: loss / n.max(1) as f32,
            val_accuracy: correct / count.max(1) as f32,
            examples: n,
            metrics,
        })
    }

    /// Eval-mode forward over examples, in chunks: the summed loss, correct count and count
    /// of the task's head, and each example's decoded prediction (detections scored at least
    /// `score_threshold`) when `decode` is set. One round trip for all chunks.
    pub(crate) async fn forward_examples(
        &self,
        examples: &[&Example],
        decode: bool,
        score_threshold: f32,
    ) -> Result<(f32, f32, usize, Vec<Prediction>)> {
        let be = self.backend();
        let opts = self.head_options();
        let mut chunks = Vec::new();
        let mut kept: Vec<Tensor> = Vec::new();
        for chunk in examples.chunks(EVAL_CHUNK) {
            let x = be.upload(self.input_shape(chunk.len()), &stack(chunk))?;
            let mut tape = Tape::new(be, self.params());
            let xv = tape.input(x);
            let z = self.model().forward(&mut tape, xv, &mut Pass::eval())?.output();
            let head = heads::loss(&mut tape, z, self.spec(), chunk, &opts)?;
            let mut vars: Vec<Var> = head.parts.iter().map(|(_, v)| *v).collect();
            let out_dims = decode.then(|| tape.value(z).dims()[1..].to_vec());
            if decode {
                vars.push(z);
            }
            kept.extend(tape.into_values(&vars)?);
            kept.push(head.correct);
            chunks.push(Chunk {
                len: chunk.len(),
                parts: head.parts.len(),
                out_dims,
                count: head.count,
            });
            // submit each chunk's work, so that its buffers can serve the next chunk
            be.flush()?;
        }
        let refs: Vec<&Tensor> = kept.iter().collect();
        let mut read = be.read_many(&refs).await?.into_iter();
        let mut next = || read.next().unwrap_or_default();
        let (mut loss, mut correct, mut count, mut preds) = (0.0f32, 0.0f32, 0usize, Vec::new());
        for chunk in chunks {
            for _ in 0..chunk.parts {
                loss += next().first().copied().unwrap_or(f32::NAN) * chunk.len as f32;
            }
            if let Some(dims) = &chunk.out_dims {
                let per: usize = dims.iter().product::<usize>().max(1);
                for row in next().chunks(per) {
                    preds.push(heads::decode(
                        self.spec(),
                        dims,
                        row,
                        score_threshold,
                        self.config().nms_iou,
                    ));
                }
            }
            correct += next().first().copied().unwrap_or(0.0);
            count += chunk.count;
        }
        Ok((loss, correct, count, preds))
    }
}
