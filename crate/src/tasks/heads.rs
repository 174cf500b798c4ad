//! What each task does with the model's output: the loss terms on the tape (training), and
//! the decoding of raw outputs into labels, boxes and masks (evaluation, the page's views).
//!
//! Output layouts (checked by `Task::check_output` when the spec is validated):
//! - classify (N, K): class scores.
//! - localize (N, K + 4): class scores, then (cx/W, cy/H, w/W, h/H). Loss: cross-entropy +
//!   `box_weight` · smooth-L1 (β = [`BOX_BETA`]) on the four box values.
//! - detect (N, 5 + K, S, S): objectness logit, (tx, ty, tw, th) and K class scores per cell
//!   (tasks/grid.rs). Loss per image: BCE-with-logits on objectness over every cell, plus
//!   `box_weight` · smooth-L1 on the box of cells that own an object, plus cross-entropy on
//!   their classes (YOLO v1 with BCE in place of its squared objectness error).
//! - segment (N, K + 1, H, W): per-pixel scores. Loss: mean per-pixel cross-entropy, plus
//!   `dice` · soft Dice when `dice` > 0.

use serde::Serialize;

use crate::autograd::{Tape, Var};
use crate::backend::PointLoss;
use crate::error::{shape_err, Result};
use crate::spec::{ModelSpec, Task, TrainConfig};
use crate::tasks::data::Example;
use crate::tasks::grid;
use crate::tasks::metrics::{self, Detection, SegConfusion, Truth};
use crate::tensor::{Shape, Tensor};

/// Smooth-L1's β for box values, in units of the image size (localize) or cell (detect):
/// errors below it are penalised quadratically, above it linearly.
pub const BOX_BETA: f32 = 0.05;
/// Detections scored below this are dropped before mAP is computed (so the precision-recall
/// curve is nearly complete whatever the page's drawing threshold is).
pub const MAP_SCORE_FLOOR: f32 = 0.01;

/// The loss settings of a run (from `TrainConfig`).
#[derive(Clone, Copy, Debug)]
pub struct HeadOptions {
    pub box_weight: f32,
    pub dice: f32,
}

impl TrainConfig {
    /// The loss settings this config asks for.
    pub(crate) fn heads(&self) -> HeadOptions {
        HeadOptions {
            box_weight: self.box_weight,
            dice: self.dice,
        }
    }
}

/// The loss terms of one mini-batch on the tape.
pub struct HeadLoss {
    /// Summed for the backward pass.
    pub terms: Vec<Var>,
    /// Named terms for the report (each [1]).
    pub parts: Vec<(&'static str, Var)>,
    /// Correct predictions (classes, object cells' classes or pixels), [1].
    pub correct: Tensor,
    /// What `correct` counts out of.
    pub count: usize,
}

fn ones(tape: &Tape, dims: &[usize]) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    tape.backend().upload(Shape::new(dims), &vec![1.0; n])
}

/// The loss terms of `spec.task` for the model output `out` on `examples`.
pub fn loss(tape: &mut Tape, out: Var, spec: &ModelSpec, examples: &[&Example], opt: &HeadOptions) -> Result<HeadLoss> {
    let be = tape.backend();
    let n = examples.len();
    let k = spec.classes;
    let dims = tape.value(out).dims().to_vec();
    let labels: Vec<u32> = examples.iter().map(|e| e.label).collect();
    match spec.task {
        // out (N, K)
        Task::Classify => {
            let y = be.upload_indices(Shape::new(&[n]), &labels)?;
            let ce = tape.cross_entropy(out, &y)?;
            Ok(HeadLoss {
                terms: vec![ce.loss],
                parts: vec![("class", ce.loss)],
                correct: ce.correct,
                count: n,
            })
        }
        // out (N, K + 4) -> class scores (N, K) and box (N, 4)
        Task::Localize => {
            let size = spec.input[1] as f32;
            let cls = tape.slice_channels(out, 0, k)?;
            let bx = tape.slice_channels(out, k, 4)?;
            let y = be.upload_indices(Shape::new(&[n]), &labels)?;
            let ce = tape.cross_entropy(cls, &y)?;
            let mut target = Vec::with_capacity(4 * n);
            for e in examples {
                let b = e.truths.first().map_or([0.0; 4], |t| t.bbox);
                target.extend(box_to_cxcywh(&b, size));
            }
            let target = be.upload(Shape::new(&[n, 4]), &target)?;
            let weight = ones(tape, &[n, 4])?;
            let kind = PointLoss::SmoothL1 { beta: BOX_BETA };
            let bl = tape.point_loss(bx, &target, &weight, kind, opt.box_weight / n as f32)?;
            Ok(HeadLoss {
                terms: vec![ce.loss, bl],
                parts: vec![("class", ce.loss), ("box", bl)],
                correct: ce.correct,
                count: n,
            })
        }
        // out (N, 5 + K, S, S) -> objectness (N,1,S,S), box (N,4,S,S), classes (N,K,S,S)
        Task::Detect => {
            let s = dims[2];
            let size = spec.input[1];
            let cells = s * s;
            let (mut obj, mut boxes, mut box_w, mut cls) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for e in examples {
                let t = grid::encode(&e.truths, size, s);
                obj.extend_from_slice(&t.obj);
                boxes.extend_from_slice(&t.boxes);
                box_w.extend_from_slice(&t.box_weight);
                cls.extend_from_slice(&t.class);
            }
            let objects: f32 = obj.iter().sum();
            let o = tape.slice_channels(out, 0, 1)?;
            let bx = tape.slice_channels(out, 1, 4)?;
            let c = tape.slice_channels(out, 5, k)?;
            let obj_t = be.upload(Shape::new(&[n, 1, s, s]), &obj)?;
            let obj_w = ones(tape, &[n, 1, s, s])?;
            let inv_n = 1.0 / n as f32;
            let ol = tape.point_loss(o, &obj_t, &obj_w, PointLoss::BceWithLogits, inv_n)?;
            let box_t = be.upload(Shape::new(&[n, 4, s, s]), &boxes)?;
            let box_w = be.upload(Shape::new(&[n, 4, s, s]), &box_w)?;
            let kind = PointLoss::SmoothL1 { beta: BOX_BETA };
            let bl = tape.point_loss(bx, &box_t, &box_w, kind, opt.box_weight * inv_n)?;
            let cls_y = be.upload_indices(Shape::new(&[n, s, s]), &cls)?;
            let cls_w = be.upload(Shape::new(&[n, s, s]), &obj)?;
            let cl = tape.ce_map(c, &cls_y, &cls_w, inv_n)?;
            debug_assert_eq!(obj.len(), n * cells);
            Ok(HeadLoss {
                terms: vec![ol, bl, cl.loss],
                parts: vec![("objectness", ol), ("box", bl), ("class", cl.loss)],
                correct: cl.correct,
                count: objects as usize,
            })
        }
        // out (N, K + 1, H, W), masks (N, H, W)
        Task::Segment => {
            let (h, w) = (dims[2], dims[3]);
            let mut mask = Vec::with_capacity(n * h * w);
            for e in examples {
                if e.mask.len() != h * w {
                    return Err(shape_err(
                        "segment",
                        "each example needs an H·W mask",
                        &[&dims, &[e.mask.len()]],
                    ));
                }
                mask.extend_from_slice(&e.mask);
            }
            let y = be.upload_indices(Shape::new(&[n, h, w]), &mask)?;
            let wts = ones(tape, &[n, h, w])?;
            let ce = tape.ce_map(out, &y, &wts, 1.0 / (n * h * w) as f32)?;
            let mut terms = vec![ce.loss];
            let mut parts = vec![("pixel_ce", ce.loss)];
            if opt.dice > 0.0 {
                let d = tape.dice(out, &y, opt.dice)?;
                terms.push(d);
                parts.push(("dice", d));
            }
            Ok(HeadLoss {
                terms,
                parts,
                correct: ce.correct,
                count: n * h * w,
            })
        }
    }
}

/// [x0, y0, x1, y1] in pixels -> (cx, cy, w, h) / size
pub fn box_to_cxcywh(b: &[f32; 4], size: f32) -> [f32; 4] {
    [
        (b[0] + b[2]) / (2.0 * size),
        (b[1] + b[3]) / (2.0 * size),
        (b[2] - b[0]) / size,
        (b[3] - b[1]) / size,
    ]
}

/// (cx, cy, w, h) / size -> [x0, y0, x1, y1] in pixels, clipped to the image
pub fn cxcywh_to_box(v: &[f32], size: f32) -> [f32; 4] {
    let (cx, cy, w, h) = (v[0] * size, v[1] * size, v[2].max(0.0) * size, v[3].max(0.0) * size);
    let clip = |x: f32| x.clamp(0.0, size);
    [
        clip(cx - w / 2.0),
        clip(cy - h / 2.0),
        clip(cx + w / 2.0),
        clip(cy + h / 2.0),
    ]
}

/// argmax and softmax probability of one row of scores
pub fn argmax_softmax(z: &[f32]) -> (u32, f32) {
    let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
    let arg = z.iter().position(|&v| v == max).unwrap_or(0);
    (arg as u32, 1.0 / sum)
}

/// One example's decoded prediction.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Prediction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    pub boxes: Vec<Detection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<u32>>,
    /// 1 − p(background) per pixel (segmentation), where checkerboard artifacts show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fg: Option<Vec<f32>>,
}

/// Decodes one example's raw output `out` (the model's output for one example, flattened).
pub fn decode(spec: &ModelSpec, out_dims: &[usize], out: &[f32], score_threshold: f32, nms_iou: f32) -> Prediction {
    let k = spec.classes;
    let size = spec.input[1] as f32;
    match spec.task {
        Task::Classify => {
            let (label, score) = argmax_softmax(out);
            Prediction {
                label: Some(label),
                score: Some(score),
                ..Prediction::default()
            }
        }
        Task::Localize => {
            let (label, score) = argmax_softmax(&out[..k]);
            Prediction {
                label: Some(label),
                score: Some(score),
                boxes: vec![Detection {
                    class: label,
                    score,
                    bbox: cxcywh_to_box(&out[k..k + 4], size),
                }],
                ..Prediction::default()
            }
        }
        Task::Detect => {
            let s = out_dims[1];
            let dets = grid::decode(out, k, spec.input[1], s, score_threshold);
            Prediction {
                boxes: metrics::nms(dets, nms_iou),
                ..Prediction::default()
            }
        }
        Task::Segment => {
            let hw = out_dims[1] * out_dims[2];
            let mut mask = Vec::with_capacity(hw);
            let mut fg = Vec::with_capacity(hw);
            let mut z = vec![0.0; k + 1];
            for p in 0..hw {
                for (c, zc) in z.iter_mut().enumerate() {
                    *zc = out[c * hw + p];
                }
                let (arg, _) = argmax_softmax(&z);
                let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
                mask.push(arg);
                fg.push(1.0 - (z[0] - max).exp() / sum);
            }
            Prediction {
                mask: Some(mask),
                fg: Some(fg),
                ..Prediction::default()
            }
        }
    }
}

/// Accumulates a task's validation metrics over decoded predictions.
pub struct Scorer {
    task: Task,
    classes: usize,
    n: usize,
    correct: usize,
    iou_sum: f64,
    iou50: usize,
    preds: Vec<Vec<Detection>>,
    truths: Vec<Vec<Truth>>,
    confusion: SegConfusion,
}

impl Scorer {
    pub fn new(spec: &ModelSpec) -> Scorer {
        Scorer {
            task: spec.task,
            classes: spec.classes,
            n: 0,
            correct: 0,
            iou_sum: 0.0,
            iou50: 0,
            preds: Vec::new(),
            truths: Vec::new(),
            confusion: SegConfusion::new(if spec.task == Task::Segment {
                spec.classes + 1
            } else {
                1
            }),
        }
    }

    pub fn add(&mut self, pred: Prediction, truth: &Example) {
        self.n += 1;
        if pred.label == Some(truth.label) {
            self.correct += 1;
        }
        match self.task {
            Task::Localize => {
                let iou = match (pred.boxes.first(), truth.truths.first()) {
                    (Some(p), Some(t)) => metrics::iou(&p.bbox, &t.bbox),
                    _ => 0.0,
                };
                self.iou_sum += iou as f64;
                self.iou50 += (iou >= 0.5) as usize;
            }
            Task::Detect => {
                self.preds.push(pred.boxes);
                self.truths.push(truth.truths.clone());
            }
            Task::Segment => {
                if let Some(mask) = &pred.mask {
                    self.confusion.add(mask, &truth.mask);
                }
            }
            Task::Classify => {}
        }
    }

    /// Named metrics, in a fixed order.
    pub fn metrics(&self) -> Vec<(String, f32)> {
        let n = self.n.max(1) as f32;
        match self.task {
            Task::Classify => vec![("accuracy".into(), self.correct as f32 / n)],
            Task::Localize => vec![
                ("accuracy".into(), self.correct as f32 / n),
                ("mean_iou".into(), (self.iou_sum / n as f64) as f32),
                ("iou50".into(), self.iou50 as f32 / n),
            ],
            Task::Detect => {
                let ap = metrics::mean_average_precision(&self.preds, &self.truths, self.classes, 0.5);
                let mut out = vec![("map50".to_string(), ap.map)];
                for (c, a) in ap.per_class.iter().enumerate() {
                    if let Some(a) = a {
                        out.push((format!("ap50_{c}"), *a));
                    }
                }
                out
            }
            Task::Segment => vec![
                ("pixel_accuracy".into(), self.confusion.pixel_accuracy()),
                ("mean_iou".into(), self.confusion.mean_iou()),
            ],
        }
    }
}
