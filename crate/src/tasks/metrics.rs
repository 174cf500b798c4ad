//! Metrics for localisation, detection and segmentation, computed on the host from
//! predictions that were already read back: box IoU, class-wise non-maximum suppression,
//! VOC mean average precision, and a pixel confusion matrix for segmentation.
//!
//! Boxes are `[x0, y0, x1, y1]` in pixel edges (pixel `(x, y)` covers `[x, x+1) × [y, y+1)`),
//! the convention of `data::shapes`.

use serde::Serialize;
use std::cmp::Ordering;

/// One predicted box.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Detection {
    pub class: u32,
    pub score: f32,
    /// `[x0, y0, x1, y1]` in pixel edges.
    pub bbox: [f32; 4],
}

/// One ground-truth box.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Truth {
    pub class: u32,
    /// `[x0, y0, x1, y1]` in pixel edges.
    pub bbox: [f32; 4],
}

/// Area of a box; 0 for an empty or inverted one.
fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Intersection over union of two boxes; 0 when they are disjoint or both empty.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Highest score first; NaN scores last, ties keep their input order (the sort is stable).
fn by_score_desc(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        (x, y) => x.cmp(&y),
    }
}

/// Greedy non-maximum suppression, class by class: take the highest-scoring box left, drop
/// every box of the same class whose IoU with it exceeds `iou_threshold`, repeat. Boxes of
/// different classes never suppress each other. Returns the kept boxes, highest score first.
pub fn nms(mut dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| by_score_desc(a.score, b.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        let suppressed = kept
            .iter()
            .any(|k| k.class == d.class && iou(&k.bbox, &d.bbox) > iou_threshold);
        if !suppressed {
            kept.push(d);
        }
    }
    kept
}

/// Mean average precision and the average precision of each class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApReport {
    /// Mean of the `Some` entries of `per_class`; 0 when no class has a ground-truth box.
    pub map: f32,
    /// AP of each class; `None` when the class has no ground-truth box (it is left out of the mean).
    pub per_class: Vec<Option<f32>>,
}

/// VOC mean average precision (all-point interpolated AP, as VOC2010 and later).
///
/// `preds[i]` and `truths[i]` belong to image `i` (an image missing from the shorter list has
/// no boxes there). For each class, the predictions of all images are ranked by score; going
/// down the list, a prediction is a true positive when its best-overlapping truth of the same
/// class in the same image has IoU ≥ `iou_threshold` and was not matched by a higher-scoring
/// prediction, otherwise a false positive (so duplicates count as false positives). AP is the
/// area under the precision–recall curve after making precision non-increasing in recall.
/// Classes `>= classes` are ignored.
pub fn mean_average_precision(
    preds: &[Vec<Detection>],
    truths: &[Vec<Truth>],
    classes: usize,
    iou_threshold: f32,
) -> ApReport {
    let images = preds.len().max(truths.len());
    let no_preds: Vec<Detection> = Vec::new();
    let no_truths: Vec<Truth> = Vec::new();
    let image_preds = |i: usize| preds.get(i).unwrap_or(&no_preds);
    let image_truths = |i: usize| truths.get(i).unwrap_or(&no_truths);

    let mut per_class = Vec::with_capacity(classes);
    for class in 0..classes as u32 {
        // Truth boxes of this class, per image, and whether each is matched yet.
        let class_truths: Vec<Vec<[f32; 4]>> = (0..images)
            .map(|i| {
                image_truths(i)
                    .iter()
                    .filter(|t| t.class == class)
                    .map(|t| t.bbox)
                    .collect()
            })
            .collect();
        let n_truth: usize = class_truths.iter().map(Vec::len).sum();
        if n_truth == 0 {
            per_class.push(None);
            continue;
        }
        let mut matched: Vec<Vec<bool>> = class_truths.iter().map(|t| vec![false; t.len()]).collect();
        // (score, image, box) of every prediction of this class, best first.
        let mut ranked: Vec<(f32, usize, [f32; 4])> = (0..images)
            .flat_map(|i| {
                image_preds(i)
                    .iter()
                    .filter(|d| d.class == class)
                    .map(move |d| (d.score, i, d.bbox))
            })
            .collect();
        ranked.sort_by(|a, b| by_score_desc(a.0, b.0));

        // Precision and recall after each prediction.
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut recall = Vec::with_capacity(ranked.len());
        let mut precision = Vec::with_capacity(ranked.len());
        for (_, image, bbox) in &ranked {
            let best = class_truths[*image]
                .iter()
                .enumerate()
                .map(|(j, t)| (j, iou(bbox, t)))
                .fold(None, |best: Option<(usize, f32)>, (j, o)| match best {
                    Some((_, bo)) if bo >= o => best,
                    _ => Some((j, o)),
                });
            match best {
                Some((j, o)) if o >= iou_threshold && !matched[*image][j] => {
                    matched[*image][j] = true;
                    tp += 1;
                }
                _ => fp += 1,
            }
            recall.push(tp as f32 / n_truth as f32);
            precision.push(tp as f32 / (tp + fp) as f32);
        }
        per_class.push(Some(all_point_ap(&recall, &precision)));
    }
    let present: Vec<f32> = per_class.iter().flatten().copied().collect();
    let map = if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f32>() / present.len() as f32
    };
    ApReport { map, per_class }
}

/// VOC2010+ AP: with sentinels recall (0, r.., 1) and precision (0, p.., 0), replace each
/// precision by the largest at any higher recall, then sum precision × recall step.
fn all_point_ap(recall: &[f32], precision: &[f32]) -> f32 {
    let mrec: Vec<f32> = std::iter::once(0.0)
        .chain(recall.iter().copied())
        .chain([1.0])
        .collect();
    let mut mpre: Vec<f32> = std::iter::once(0.0)
        .chain(precision.iter().copied())
        .chain([0.0])
        .collect();
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    (1..mrec.len()).map(|i| (mrec[i] - mrec[i - 1]) * mpre[i]).sum()
}

/// Pixel confusion matrix over `k` classes (class 0 is the background), for segmentation.
#[derive(Clone, Debug, PartialEq)]
pub struct SegConfusion {
    pub k: usize,
    /// k×k counts, `[truth · k + pred]`.
    pub counts: Vec<u64>,
}

impl SegConfusion {
    pub fn new(k: usize) -> Self {
        SegConfusion {
            k,
            counts: vec![0; k * k],
        }
    }

    /// Counts one image (or batch) of labels: `pred` and `truth` pixel by pixel. Pixels where
    /// either label is `>= k` are skipped (an "ignore" label), as are any past the shorter slice.
    pub fn add(&mut self, pred: &[u32], truth: &[u32]) {
        debug_assert_eq!(
            pred.len(),
            truth.len(),
            "SegConfusion::add: label maps differ in length"
        );
        let k = self.k;
        for (&p, &t) in pred.iter().zip(truth) {
            if (p as usize) < k && (t as usize) < k {
                self.counts[t as usize * k + p as usize] += 1;
            }
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Share of counted pixels whose predicted class is the true one (0 when nothing was counted).
    pub fn pixel_accuracy(&self) -> f32 {
        let correct: u64 = (0..self.k).map(|c| self.counts[c * self.k + c]).sum();
        match self.total() {
            0 => 0.0,
            total => correct as f32 / total as f32,
        }
    }

    /// IoU of each class: TP / (TP + FP + FN); `None` when the class appears in neither the
    /// truth nor the prediction.
    pub fn per_class_iou(&self) -> Vec<Option<f32>> {
        let k = self.k;
        (0..k)
            .map(|c| {
                let tp = self.counts[c * k + c];
                let truth: u64 = (0..k).map(|p| self.counts[c * k + p]).sum();
                let pred: u64 = (0..k).map(|t| self.counts[t * k + c]).sum();
                let union = truth + pred - tp;
                (union > 0).then(|| tp as f32 / union as f32)
            })
            .collect()
    }

    /// Mean of the `Some` entries of [`per_class_iou`](Self::per_class_iou); 0 when there are none.
    pub fn mean_iou(&self) -> f32 {
        let present: Vec<f32> = self.per_class_iou().into_iter().flatten().collect();
        if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f32>() / present.len() as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: u32, score: f32, bbox: [f32; 4]) -> Detection {
        Detection { class, score, bbox }
    }

    fn truth(class: u32, bbox: [f32; 4]) -> Truth {
        Truth { class, bbox }
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = [0.0, 0.0, 4.0, 4.0];
        assert!(close(iou(&a, &a), 1.0));
        // Overlap 2×4 = 8, union 16 + 16 - 8 = 24.
        assert!(close(iou(&a, &[2.0, 0.0, 6.0, 4.0]), 8.0 / 24.0));
        // Touching edges, disjoint, empty and inverted boxes give 0.
        assert_eq!(iou(&a, &[4.0, 0.0, 8.0, 4.0]), 0.0);
        assert_eq!(iou(&a, &[10.0, 10.0, 12.0, 12.0]), 0.0);
        assert_eq!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
        assert_eq!(iou(&a, &[3.0, 3.0, 1.0, 1.0]), 0.0);
        // A box inside another: IoU = inner area / outer area.
        assert!(close(iou(&a, &[1.0, 1.0, 3.0, 3.0]), 4.0 / 16.0));
    }

    #[test]
    fn nms_is_greedy_per_class_and_sorted() {
        let a = [0.0, 0.0, 10.0, 10.0];
        let a_shifted = [1.0, 0.0, 11.0, 10.0]; // IoU with a = 90 / 110 = 0.82
        let far = [20.0, 20.0, 30.0, 30.0];
        let dets = vec![
            det(0, 0.6, a_shifted),
            det(0, 0.9, a),
            det(1, 0.8, a), // other class: kept despite IoU 1 with the best box
            det(0, 0.7, far),
            det(1, 0.5, a_shifted), // suppressed by the class-1 box
        ];
        let kept = nms(dets, 0.5);
        assert_eq!(kept, vec![det(0, 0.9, a), det(1, 0.8, a), det(0, 0.7, far)]);
        // A threshold above their IoU keeps the overlapping pair.
        assert_eq!(nms(vec![det(0, 0.6, a_shifted), det(0, 0.9, a)], 0.85).len(), 2);
        assert!(nms(Vec::new(), 0.5).is_empty());
    }

    #[test]
    fn textbook_average_precision() {
        // One class, 5 truths over 2 images, 6 predictions. Ranked by score:
        //   rank score image  result    TP FP  recall precision
        //   1    0.9   0      TP (t0)   1  0   1/5    1
        //   2    0.8   0      FP (miss) 1  1   1/5    1/2
        //   3    0.7   1      TP (t2)   2  1   2/5    2/3
        //   4    0.6   0      FP (dup)  2  2   2/5    1/2     (t0 already taken)
        //   5    0.5   1      TP (t3)   3  2   3/5    3/5
        //   6    0.4   1      FP (miss) 3  3   3/5    1/2
        // t1 (image 0) and t4 (image 1) are never found.
        // Interpolated precision (max to the right): 1, 2/3, 2/3, 3/5, 3/5, 1/2, then 0 at recall 1.
        // AP = 1/5·1 + 1/5·2/3 + 1/5·3/5 = (15 + 10 + 9) / 75 = 34/75 = 0.45333.
        let t0 = [0.0, 0.0, 10.0, 10.0];
        let t1 = [30.0, 30.0, 40.0, 40.0];
        let t2 = [0.0, 0.0, 8.0, 8.0];
        let t3 = [20.0, 0.0, 28.0, 8.0];
        let t4 = [0.0, 20.0, 8.0, 28.0];
        let truths = vec![
            vec![truth(0, t0), truth(0, t1)],
            vec![truth(0, t2), truth(0, t3), truth(0, t4)],
        ];
        let preds = vec![
            vec![
                det(0, 0.9, t0),
                det(0, 0.8, [50.0, 50.0, 60.0, 60.0]),
                det(0, 0.6, [0.5, 0.0, 10.5, 10.0]), // IoU 0.905 with t0, a duplicate
            ],
            vec![
                det(0, 0.7, t2),
                det(0, 0.5, [20.0, 1.0, 28.0, 9.0]), // IoU 56/72 = 0.78 with t3
                det(0, 0.4, [0.0, 24.0, 8.0, 32.0]), // IoU 32/96 = 0.33 with t4: a miss at 0.5
            ],
        ];
        let r = mean_average_precision(&preds, &truths, 1, 0.5);
        assert!(close(r.per_class[0].unwrap(), 34.0 / 75.0), "{r:?}");
        assert!(close(r.map, 34.0 / 75.0));
        // At IoU 0.3 the last prediction finds t4: recall 4/5 at precision 4/6, which now
        // lifts the interpolated precision at recall 3/5 to 2/3 as well:
        // AP = 1/5·1 + 3·(1/5·2/3) = 3/5.
        let r = mean_average_precision(&preds, &truths, 1, 0.3);
        assert!(close(r.map, 0.6), "{r:?}");
    }

    #[test]
    fn duplicates_are_false_positives_and_ranking_is_global() {
        let b = [0.0, 0.0, 10.0, 10.0];
        // Two identical predictions on one truth: TP, then the duplicate is an FP (the truth is
        // taken). Recall 1 is reached at precision 1, so AP stays 1, and only one TP is counted.
        let r = mean_average_precision(&[vec![det(0, 0.9, b), det(0, 0.8, b)]], &[vec![truth(0, b)]], 1, 0.5);
        assert!(close(r.map, 1.0));
        // Image 0: a miss at 0.9; image 1: a hit at 0.5 -> precision 1/2 at recall 1: AP 0.5.
        // (Ranking per image would have put the hit first.)
        let far = [50.0, 50.0, 60.0, 60.0];
        let r = mean_average_precision(
            &[vec![det(0, 0.9, far)], vec![det(0, 0.5, b)]],
            &[vec![], vec![truth(0, b)]],
            1,
            0.5,
        );
        assert!(close(r.map, 0.5), "{r:?}");
        // Wrong class: a false positive for class 1 and a miss for class 0.
        let r = mean_average_precision(&[vec![det(1, 0.9, b)]], &[vec![truth(0, b), truth(1, far)]], 2, 0.5);
        assert_eq!(r.per_class, vec![Some(0.0), Some(0.0)]);
    }

    #[test]
    fn perfect_predictions_give_map_one_and_absent_classes_none() {
        let truths = vec![
            vec![truth(0, [0.0, 0.0, 5.0, 5.0]), truth(2, [10.0, 10.0, 20.0, 16.0])],
            vec![truth(2, [3.0, 4.0, 9.0, 9.0])],
        ];
        let preds: Vec<Vec<Detection>> = truths
            .iter()
            .map(|ts| ts.iter().map(|t| det(t.class, 0.7, t.bbox)).collect())
            .collect();
        let r = mean_average_precision(&preds, &truths, 4, 0.5);
        assert_eq!(r.per_class, vec![Some(1.0), None, Some(1.0), None]);
        assert_eq!(r.map, 1.0);
        // A prediction for a class without truth changes nothing: that class stays out of the mean.
        let mut extra = preds.clone();
        extra[0].push(det(1, 0.99, [0.0, 0.0, 3.0, 3.0]));
        assert_eq!(mean_average_precision(&extra, &truths, 4, 0.5).map, 1.0);
        // Nothing at all.
        let empty = mean_average_precision(&[], &[], 3, 0.5);
        assert_eq!((empty.map, empty.per_class), (0.0, vec![None, None, None]));
        // Truths without any prediction: AP 0.
        assert_eq!(mean_average_precision(&[], &truths, 4, 0.5).map, 0.0);
    }

    #[test]
    fn segmentation_confusion() {
        let mut c = SegConfusion::new(3);
        // truth: 0 0 1 1 2 2, pred: 0 1 1 1 2 0
        c.add(&[0, 1, 1, 1, 2, 0], &[0, 0, 1, 1, 2, 2]);
        assert!(close(c.pixel_accuracy(), 4.0 / 6.0));
        // class 0: tp 1, truth 2, pred 2 -> 1/3; class 1: tp 2, truth 2, pred 3 -> 2/3;
        // class 2: tp 1, truth 2, pred 1 -> 1/2.
        let ious = c.per_class_iou();
        let expected = [1.0 / 3.0, 2.0 / 3.0, 0.5];
        for (got, want) in ious.iter().zip(expected) {
            assert!(close(got.unwrap(), want));
        }
        assert!(close(c.mean_iou(), (1.0 / 3.0 + 2.0 / 3.0 + 0.5) / 3.0));

        // A class in neither truth nor prediction is left out of the mean; labels >= k are ignored.
        let mut perfect = SegConfusion::new(4);
        perfect.add(&[0, 2, 2, 0, 7], &[0, 2, 2, 0, 1]);
        assert_eq!(perfect.per_class_iou(), vec![Some(1.0), None, Some(1.0), None]);
        assert_eq!((perfect.pixel_accuracy(), perfect.mean_iou()), (1.0, 1.0));
        let none = SegConfusion::new(2);
        assert_eq!((none.pixel_accuracy(), none.mean_iou()), (0.0, 0.0));
    }
}
