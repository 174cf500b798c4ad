//! What the 1×1 reductions of an inception block save: Szegedy et al., "Going Deeper with
//! Convolutions" (CVPR 2015), Fig. 2 (a) naive vs (b) with dimension reductions; the
//! network-in-network chapter's parameter and FLOP counter. For each inception layer of a
//! spec: its counts with the reductions (1×1 → 3×3 and 1×1 → 5×5, the spec's b3_reduce and
//! b5_reduce) and without them (the naive block: the 3×3 and 5×5 convs applied straight to
//! the C input channels), whichever the spec builds (`reduce`); the plan's counts are the
//! built one's (tested). The 1×1 and pool → 1×1 branches are the same in both, so the
//! output keeps its b1 + b3 + b5 + pool_proj channels.
//!
//! Units as in the plan: parameters (weights + biases); FLOPs = 2 × multiply-adds of one
//! forward pass of one example (pooling counted as free).

use serde::Serialize;

use crate::error::{shape_err, Result};
use crate::spec::{inception_convs, LayerSpec, ModelSpec, Plan};

const OP: &str = "inception_counts";

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub params: usize,
    pub flops: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct InceptionCounts {
    /// The layer's name in the plan.
    pub layer: String,
    /// With the 1×1 reductions.
    pub reduced: Counts,
    /// Without the 3×3 and 5×5 branches' reductions.
    pub naive: Counts,
    /// Which of the two the spec builds (its `reduce`).
    pub built_reduced: bool,
}

/// Parameters and FLOPs of convs (in, out, kernel) with same padding over h×w pixels.
fn counts_of(convs: &[(usize, usize, usize)], h: usize, w: usize) -> Counts {
    Counts {
        params: convs.iter().map(|&(i, o, k)| o * i * k * k + o).sum(),
        flops: 2 * h * w * convs.iter().map(|&(i, o, k)| o * i * k * k).sum::<usize>(),
    }
}

/// The counts of every inception layer of `spec`, whose `plan` is the one its validation made
/// (one entry per layer, in order).
pub fn inception_counts(spec: &ModelSpec, plan: &Plan) -> Result<Vec<InceptionCounts>> {
    if spec.layers.len() != plan.layers.len() {
        return Err(shape_err(
            OP,
            "the plan is not this spec's (layer counts differ)",
            &[&[spec.layers.len()], &[plan.layers.len()]],
        ));
    }
    let mut out = Vec::new();
    for (layer, lp) in spec.layers.iter().zip(&plan.layers) {
        let LayerSpec::Inception {
            b1,
            b3_reduce,
            b3,
            b5_reduce,
            b5,
            pool_proj,
            reduce,
        } = layer.op
        else {
            continue;
        };
        let [c, h, w] = match lp.in_shapes.first().map(Vec::as_slice) {
            Some(&[c, h, w]) if lp.kind == "inception" => [c, h, w],
            _ => {
                let shapes: Vec<&[usize]> = lp.in_shapes.iter().map(Vec::as_slice).collect();
                return Err(shape_err(
                    OP,
                    format!("layer {} is not a planned (C,H,W) inception", lp.name),
                    &shapes,
                ));
            }
        };
        // (in, out, kernel) of each conv; same padding keeps H×W
        let widths = [b1, b3_reduce, b3, b5_reduce, b5, pool_proj];
        out.push(InceptionCounts {
            layer: lp.name.clone(),
            reduced: counts_of(&inception_convs(c, widths, true), h, w),
            naive: counts_of(&inception_convs(c, widths, false), h, w),
            built_reduced: reduce,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ValidSpec;

    #[test]
    fn naive_and_reduced_counts_by_hand() {
        let spec = ModelSpec::from_json(
            r#"{"input":[8,6,6],"classes":10,"layers":[
            {"type":"inception","b1":2,"b3_reduce":3,"b3":4,"b5_reduce":1,"b5":2,"pool_proj":2,"name":"mixed"},
            {"type":"flatten"},{"type":"linear","out":10}]}"#,
        )
        .unwrap();
        let valid = ValidSpec::new(spec).unwrap();
        let counts = inception_counts(valid.spec(), valid.plan()).unwrap();
        // reduced: 8→2 (1×1) 18, 8→3 (1×1) 27, 3→4 (3×3) 112, 8→1 (1×1) 9, 1→2 (5×5) 52, 8→2 (1×1) 18
        //   multiply-adds per pixel 16 + 24 + 108 + 8 + 50 + 16 = 222, over 6×6 pixels, ×2
        // naive: 8→2 (1×1) 18, 8→4 (3×3) 292, 8→2 (5×5) 402, 8→2 (1×1) 18
        //   multiply-adds per pixel 16 + 288 + 400 + 16 = 720
        let want = InceptionCounts {
            layer: "mixed".into(),
            reduced: Counts {
                params: 236,
                flops: 2 * 222 * 36,
            },
            naive: Counts {
                params: 730,
                flops: 2 * 720 * 36,
            },
            built_reduced: true,
        };
        assert_eq!(counts, vec![want.clone()]);
        // as built: the plan's counts
        assert_eq!(
            (valid.plan().layers[0].params, valid.plan().layers[0].flops),
            (236, 2 * 222 * 36)
        );

        // the naive block (reduce: false): the same two counts, and the plan's are the naive ones
        let naive = ModelSpec::from_json(
            r#"{"input":[8,6,6],"classes":10,"layers":[
            {"type":"inception","b1":2,"b3_reduce":3,"b3":4,"b5_reduce":1,"b5":2,"pool_proj":2,"name":"mixed","reduce":false},
            {"type":"flatten"},{"type":"linear","out":10}]}"#,
        )
        .unwrap();
        let valid = ValidSpec::new(naive).unwrap();
        let counts = inception_counts(valid.spec(), valid.plan()).unwrap();
        assert_eq!(
            counts,
            vec![InceptionCounts {
                built_reduced: false,
                ..want
            }]
        );
        assert_eq!(
            (valid.plan().layers[0].params, valid.plan().layers[0].flops),
            (730, 2 * 720 * 36)
        );
        assert_eq!(valid.plan().layers[0].out, vec![10, 6, 6]);
    }

    #[test]
    fn no_inception_no_counts_and_a_foreign_plan_is_refused() {
        let plain = ModelSpec::from_json(
            r#"{"input":[1,4,4],"classes":2,"layers":[{"type":"flatten"},{"type":"linear","out":2}]}"#,
        )
        .unwrap();
        let valid = ValidSpec::new(plain.clone()).unwrap();
        assert_eq!(inception_counts(valid.spec(), valid.plan()).unwrap(), vec![]);
        let e = inception_counts(&plain, &Plan::default()).unwrap_err().to_string();
        assert!(e.contains("inception_counts") && e.contains("[2], [0]"), "{e}");
    }
}
