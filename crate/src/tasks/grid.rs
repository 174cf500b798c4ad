//! YOLO-v1-style detection on an S×S grid, one box per cell: training targets from truth
//! boxes ([`encode`]) and detections from one image's network output ([`decode`]).
//!
//! The output of one image is channel-major, `(5 + C, S, S)`: value `out[c·S·S + row·S + col]`.
//! Channel 0 is the objectness logit, channels 1..5 the box `(tx, ty, tw, th)`, channels 5..
//! the `C` class logits. A cell owns an object when the object's box centre lies in it:
//!
//! ```text
//! tx = cx·S/size − col   ty = cy·S/size − row     (the centre within the cell, in [0, 1))
//! tw = √(w/size)         th = √(h/size)           (square roots, as YOLO v1: small boxes count more)
//! ```

use super::metrics::{Detection, Truth};

/// Targets for one image, in the output's channel-major layout.
#[derive(Clone, Debug, PartialEq)]
pub struct GridTargets {
    pub s: usize,
    /// (S, S): 1 where a cell owns an object, else 0.
    pub obj: Vec<f32>,
    /// (4, S, S): tx, ty, tw, th of the owned object (0 elsewhere).
    pub boxes: Vec<f32>,
    /// (4, S, S): `obj` repeated for each box channel, so only owning cells learn a box.
    pub box_weight: Vec<f32>,
    /// (S, S): class of the owned object, 0 where no object (masked by `obj` in the loss).
    pub class: Vec<u32>,
}

/// Targets for `truths` on a `size`×`size` image and an `s`×`s` grid. An object belongs to the
/// cell holding its box centre (a centre on the far edge goes to the last cell); when two share
/// a cell, the larger box wins (the first of equal ones).
pub fn encode(truths: &[Truth], size: usize, s: usize) -> GridTargets {
    let cells = s * s;
    let mut t = GridTargets {
        s,
        obj: vec![0.0; cells],
        boxes: vec![0.0; 4 * cells],
        box_weight: vec![0.0; 4 * cells],
        class: vec![0; cells],
    };
    if s == 0 || size == 0 {
        return t;
    }
    let (size_f, s_f) = (size as f32, s as f32);
    let mut owner_area = vec![f32::NEG_INFINITY; cells];
    for truth in truths {
        let [x0, y0, x1, y1] = truth.bbox;
        let (w, h) = ((x1 - x0).max(0.0), (y1 - y0).max(0.0));
        // Centre in grid units; the cell is its integer part, clamped onto the grid.
        let (gx, gy) = ((x0 + x1) / 2.0 * s_f / size_f, (y0 + y1) / 2.0 * s_f / size_f);
        let (col, row) = (cell_of(gx, s), cell_of(gy, s));
        let cell = row * s + col;
        if w * h <= owner_area[cell] {
            continue;
        }
        owner_area[cell] = w * h;
        t.obj[cell] = 1.0;
        t.class[cell] = truth.class;
        let target = [
            gx - col as f32,
            gy - row as f32,
            (w / size_f).sqrt(),
            (h / size_f).sqrt(),
        ];
        for (c, value) in target.into_iter().enumerate() {
            t.boxes[c * cells + cell] = value;
            t.box_weight[c * cells + cell] = 1.0;
        }
    }
    t
}

/// The cell (0..s) of a coordinate in grid units.
fn cell_of(g: f32, s: usize) -> usize {
    if g.is_nan() || g <= 0.0 {
        0
    } else {
        (g as usize).min(s - 1)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Detections of one image from its `(5 + classes)·s·s` output values: per cell,
/// score = sigmoid(objectness) · max_k softmax(class logits)_k, class = the argmax, and the box
/// centre `((col + tx)·size/S, (row + ty)·size/S)`, size `(max(tw, 0)²·size, max(th, 0)²·size)`,
/// clipped to the image. Keeps cells with score ≥ `score_threshold`, in row-major cell order
/// (run [`nms`](super::metrics::nms) next). An `out` of the wrong length gives no detections.
pub fn decode(out: &[f32], classes: usize, size: usize, s: usize, score_threshold: f32) -> Vec<Detection> {
    let cells = s * s;
    debug_assert_eq!(out.len(), (5 + classes) * cells, "grid::decode: output length");
    if out.len() != (5 + classes) * cells || classes == 0 {
        return Vec::new();
    }
    let at = |channel: usize, cell: usize| out[channel * cells + cell];
    let (size_f, cell_px) = (size as f32, size as f32 / s as f32);
    let mut dets = Vec::new();
    for row in 0..s {
        for col in 0..s {
            let cell = row * s + col;
            // Softmax over the class logits: the largest probability is 1 / Σ exp(l_k − l_max).
            let (mut best, mut best_logit) = (0usize, f32::NEG_INFINITY);
            for k in 0..classes {
                if at(5 + k, cell) > best_logit {
                    (best, best_logit) = (k, at(5 + k, cell));
                }
            }
            let denom: f32 = (0..classes).map(|k| (at(5 + k, cell) - best_logit).exp()).sum();
            let score = sigmoid(at(0, cell)) / denom;
            if score.is_nan() || score < score_threshold {
                continue;
            }
            let (cx, cy) = (
                (col as f32 + at(1, cell)) * cell_px,
                (row as f32 + at(2, cell)) * cell_px,
            );
            let (tw, th) = (at(3, cell).max(0.0), at(4, cell).max(0.0));
            let (w, h) = (tw * tw * size_f, th * th * size_f);
            let clip = |v: f32| v.clamp(0.0, size_f);
            dets.push(Detection {
                class: best as u32,
                score,
                bbox: [
                    clip(cx - w / 2.0),
                    clip(cy - h / 2.0),
                    clip(cx + w / 2.0),
                    clip(cy + h / 2.0),
                ],
            });
        }
    }
    dets
}

#[cfg(test)]
mod tests {
    use super::super::metrics::iou;
    use super::*;

    /// A confident network output that says exactly what `t` says.
    fn output_from(t: &GridTargets, classes: usize) -> Vec<f32> {
        let cells = t.s * t.s;
        let mut out = vec![0.0; (5 + classes) * cells];
        for cell in 0..cells {
            out[cell] = if t.obj[cell] > 0.0 { 30.0 } else { -30.0 };
            for c in 0..4 {
                out[(1 + c) * cells + cell] = t.boxes[c * cells + cell];
            }
            out[(5 + t.class[cell] as usize) * cells + cell] = 30.0;
        }
        out
    }

    #[test]
    fn decode_inverts_encode() {
        let truths = [
            Truth {
                class: 2,
                bbox: [3.0, 4.0, 17.0, 12.0],
            },
            Truth {
                class: 0,
                bbox: [40.0, 30.0, 47.0, 48.0],
            },
            Truth {
                class: 4,
                bbox: [0.0, 38.0, 10.0, 48.0],
            },
        ];
        let (size, s, classes) = (48, 6, 5);
        let t = encode(&truths, size, s);
        assert_eq!(t.obj.iter().sum::<f32>(), 3.0);
        assert_eq!(t.box_weight.iter().sum::<f32>(), 12.0);
        // First truth: centre (10, 8) -> grid (1.25, 1.0): cell (row 1, col 1), tx 0.25, ty 0.
        let cell = 6 + 1;
        assert_eq!(t.class[cell], 2);
        assert_eq!(t.boxes[cell], 0.25);
        assert_eq!(t.boxes[36 + cell], 0.0);
        assert!((t.boxes[2 * 36 + cell] - (14.0f32 / 48.0).sqrt()).abs() < 1e-6);
        let mut dets = decode(&output_from(&t, classes), classes, size, s, 0.5);
        assert_eq!(dets.len(), 3);
        for truth in &truths {
            let i = dets.iter().position(|d| d.class == truth.class).unwrap();
            let d = dets.swap_remove(i);
            assert!(iou(&d.bbox, &truth.bbox) > 0.99, "{d:?} vs {truth:?}");
            assert!(d.score > 0.99);
        }
    }

    #[test]
    fn larger_box_wins_a_shared_cell() {
        let small = Truth {
            class: 1,
            bbox: [10.0, 10.0, 14.0, 14.0],
        };
        let large = Truth {
            class: 3,
            bbox: [4.0, 4.0, 20.0, 20.0],
        };
        for order in [[small, large], [large, small]] {
            let t = encode(&order, 32, 2);
            assert_eq!(t.obj, vec![1.0, 0.0, 0.0, 0.0]);
            assert_eq!(t.class[0], 3);
            assert_eq!(t.boxes[3 * 4], 0.5_f32.sqrt()); // th = √(16/32)
        }
        // A centre on the far edge belongs to the last cell.
        let edge = Truth {
            class: 0,
            bbox: [32.0, 32.0, 32.0, 32.0],
        };
        assert_eq!(encode(&[edge], 32, 2).obj, vec![0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn score_threshold_filters_and_boxes_are_clipped() {
        // s = 2, 2 classes: (5 + 2)·4 values.
        let (s, classes, size) = (2, 2, 16);
        let cells = s * s;
        let mut out = vec![0.0f32; (5 + classes) * cells];
        // Cell 0: objectness 0 -> sigmoid 0.5, classes equal -> score 0.25.
        // Cell 3: objectness 4, class 1 clearly -> score ≈ 0.98·0.99998.
        out[3] = 4.0;
        out[(5 + 1) * cells + 3] = 12.0;
        // Cell 3's box: centre (1.5·8, 1.5·8) = (12, 12), size 1·16: clipped to [4, 4, 16, 16].
        out[cells + 3] = 0.5;
        out[2 * cells + 3] = 0.5;
        out[3 * cells + 3] = 1.0;
        out[4 * cells + 3] = 1.0;
        // Cells 1, 2: very unsure.
        out[1] = -10.0;
        out[2] = -10.0;
        let all = decode(&out, classes, size, s, 0.0);
        assert_eq!(all.len(), 4);
        assert!((all[0].score - 0.25).abs() < 1e-6);
        let kept = decode(&out, classes, size, s, 0.3);
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].class, kept[0].bbox), (1, [4.0, 4.0, 16.0, 16.0]));
        assert!(kept[0].score > 0.98);
        assert!(decode(&out, classes, size, s, 0.99).is_empty());
        // Negative tw / th give empty boxes, not mirrored ones.
        out[3 * cells + 3] = -1.0;
        let flat = decode(&out, classes, size, s, 0.3);
        assert_eq!(flat[0].bbox[0], flat[0].bbox[2]);
    }
}
