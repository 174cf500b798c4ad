//! The course's last chapters as training tasks: localization (class + box), detection (a
//! YOLO-v1-style grid, NMS, mAP), segmentation (per-pixel scores, encoder–decoder models)
//! and the data they train on. Classification (MNIST) is the first task of the same kind.
//!
//! - `data`: where examples come from (MNIST subsets, shapes scenes, cluttered digits);
//! - `heads`: each task's loss terms on the tape and the decoding of raw outputs;
//! - `grid`: the detection grid's targets and decoding;
//! - `metrics`: IoU, NMS, VOC mAP, the segmentation confusion matrix.

pub mod data;
pub mod grid;
pub mod heads;
pub mod metrics;
