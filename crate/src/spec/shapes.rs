//! One layer's shape rule: its output shape, parameter count and FLOPs from its input
//! shapes (validation's phase 3, infer.rs), or the problem in words.

use super::{LayerSpec, Padding};
use crate::backend::{out_len, transposed_out_len, ConvTransposeParams};

fn chw(shape: &[usize], what: &str) -> std::result::Result<[usize; 3], String> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(format!("needs a (C,H,W) input{what}")),
    }
}

const NOT_FLAT: &str = "; it cannot follow flatten, linear or global_avg_pool";

/// One layer's output shape, parameter count and FLOPs from its input shapes, or the problem.
/// `pool_of(name)` gives a named max_pool layer's (input, output) shapes.
pub(super) fn infer_layer(
    op: &LayerSpec,
    ins: &[Vec<usize>],
    pool_of: impl Fn(&str) -> std::result::Result<(Vec<usize>, Vec<usize>), String>,
) -> std::result::Result<(Vec<usize>, usize, usize), String> {
    let x = &ins[0];
    Ok(match op {
        LayerSpec::Conv2d {
            out,
            kernel,
            stride,
            padding,
        } => {
            let [c, h, w] = chw(x, NOT_FLAT)?;
            if *out == 0 || *kernel == 0 || *stride == 0 {
                return Err(format!(
                    "out ({out}), kernel ({kernel}) and stride ({stride}) must be at least 1"
                ));
            }
            let pad = op
                .padding_px()
                .ok_or("padding must be a number of pixels, \"same\" or \"valid\"")?;
            if matches!(padding, Padding::Named(s) if s == "same") && (kernel % 2 == 0 || *stride != 1) {
                return Err(format!(
                    "\"same\" padding needs an odd kernel and stride 1 (kernel {kernel}, stride {stride})"
                ));
            }
            if pad >= *kernel {
                return Err(format!("padding {pad} must be smaller than the kernel {kernel}"));
            }
            let (Some(oh), Some(ow)) = (out_len(h, *kernel, *stride, pad), out_len(w, *kernel, *stride, pad)) else {
                return Err(format!(
                    "kernel {kernel} (padding {pad}) is larger than the {h}×{w} input"
                ));
            };
            (
                vec![*out, oh, ow],
                out * c * kernel * kernel + out,
                2 * out * oh * ow * c * kernel * kernel,
            )
        }
        LayerSpec::ConvTranspose2d {
            out,
            kernel,
            stride,
            padding,
            output_padding,
        } => {
            let [c, h, w] = chw(x, NOT_FLAT)?;
            if *out == 0 || *kernel == 0 || *stride == 0 {
                return Err(format!(
                    "out ({out}), kernel ({kernel}) and stride ({stride}) must be at least 1"
                ));
            }
            if output_padding >= stride {
                return Err(format!(
                    "output_padding {output_padding} must be smaller than stride {stride}"
                ));
            }
            let p = ConvTransposeParams {
                stride: *stride,
                padding: *padding,
                output_padding: *output_padding,
            };
            let (Some(oh), Some(ow)) = (transposed_out_len(h, *kernel, p), transposed_out_len(w, *kernel, p)) else {
                return Err(format!(
                    "padding {padding} leaves no output for the {h}×{w} input (kernel {kernel}, stride {stride})"
                ));
            };
            (
                vec![*out, oh, ow],
                c * out * kernel * kernel + out,
                2 * c * h * w * out * kernel * kernel,
            )
        }
        LayerSpec::Linear { out } => {
            let &[k] = x.as_slice() else {
                return Err("needs a flat input: add a flatten or global_avg_pool layer before it".into());
            };
            if *out == 0 {
                return Err("out must be at least 1".into());
            }
            (vec![*out], out * k + out, 2 * out * k)
        }
        LayerSpec::Relu {} | LayerSpec::Tanh {} | LayerSpec::Sigmoid {} => (x.clone(), 0, 0),
        LayerSpec::LeakyRelu { slope } => {
            if !slope.is_finite() || !(0.0..1.0).contains(slope) {
                return Err(format!("slope {slope} must be a finite number in [0, 1)"));
            }
            (x.clone(), 0, 0)
        }
        LayerSpec::MaxPool { size, stride, padding } | LayerSpec::AvgPool { size, stride, padding } => {
            let [c, h, w] = chw(x, "")?;
            let s = stride.unwrap_or(*size);
            if *size == 0 || s == 0 {
                return Err(format!("size ({size}) and stride ({s}) must be at least 1"));
            }
            if 2 * padding > *size {
                return Err(format!("padding {padding} must be at most half the window {size}"));
            }
            let (Some(oh), Some(ow)) = (out_len(h, *size, s, *padding), out_len(w, *size, s, *padding)) else {
                return Err(format!("window {size} is larger than the {h}×{w} input"));
            };
            (vec![c, oh, ow], 0, 0)
        }
        LayerSpec::GlobalAvgPool {} => {
            let [c, h, w] = chw(x, "")?;
            (vec![c], 0, c * h * w)
        }
        LayerSpec::MaxUnpool { pool } => {
            let (pool_in, pool_out) = pool_of(pool)?;
            if *x != pool_out {
                return Err(format!(
                    "its input {x:?} must have the shape of pool \"{pool}\"'s output {pool_out:?}"
                ));
            }
            (pool_in, 0, 0)
        }
        LayerSpec::Upsample { scale, .. } => {
            let [c, h, w] = chw(x, "")?;
            if *scale == 0 {
                return Err(format!("scale ({scale}) must be at least 1"));
            }
            (vec![c, h * scale, w * scale], 0, 0)
        }
        LayerSpec::BatchNorm { momentum, eps } => {
            if !(momentum.is_finite() && *momentum > 0.0 && *momentum <= 1.0) {
                return Err(format!("momentum {momentum} must be in (0, 1]"));
            }
            if !(eps.is_finite() && *eps > 0.0) {
                return Err(format!("eps {eps} must be a positive number"));
            }
            if x.len() != 3 && x.len() != 1 {
                return Err("needs a (C,H,W) or flat input".into());
            }
            let n: usize = x.iter().product();
            (x.clone(), 2 * x[0], 4 * n)
        }
        LayerSpec::Dropout { p, .. } => {
            if !(p.is_finite() && (0.0..1.0).contains(p)) {
                return Err(format!("p {p} must be in [0, 1)"));
            }
            (x.clone(), 0, 0)
        }
        LayerSpec::Inception {
            b1,
            b3_reduce,
            b3,
            b5_reduce,
            b5,
            pool_proj,
        } => {
            let [c, h, w] = chw(x, NOT_FLAT)?;
            let widths = [b1, b3_reduce, b3, b5_reduce, b5, pool_proj];
            if widths.iter().any(|&&v| v == 0) {
                return Err(format!(
                    "every branch width must be at least 1 (b1 {b1}, b3_reduce {b3_reduce}, b3 {b3}, b5_reduce {b5_reduce}, b5 {b5}, pool_proj {pool_proj})"
                ));
            }
            // multiply-adds per pixel of each conv, and its parameters
            let convs = [
                (c, *b1, 1),
                (c, *b3_reduce, 1),
                (*b3_reduce, *b3, 3),
                (c, *b5_reduce, 1),
                (*b5_reduce, *b5, 5),
                (c, *pool_proj, 1),
            ];
            let params = convs.iter().map(|&(i, o, k)| o * i * k * k + o).sum();
            let macs: usize = convs.iter().map(|&(i, o, k)| o * i * k * k).sum();
            (vec![b1 + b3 + b5 + pool_proj, h, w], params, 2 * macs * h * w)
        }
        LayerSpec::Concat {} => {
            let rest = |s: &Vec<usize>| s[1..].to_vec();
            if ins.iter().any(|s| s.len() != x.len() || rest(s) != rest(x)) {
                return Err(format!(
                    "inputs must agree on every axis but channels, got {}",
                    ins.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                ));
            }
            let mut out = x.clone();
            out[0] = ins.iter().map(|s| s[0]).sum();
            (out, 0, 0)
        }
        LayerSpec::Add {} => {
            if ins.iter().any(|s| s != x) {
                return Err(format!(
                    "inputs must have the same shape, got {}",
                    ins.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                ));
            }
            let n: usize = x.iter().product();
            (x.clone(), 0, n)
        }
        LayerSpec::Flatten {} => (vec![x.iter().product()], 0, 0),
    })
}
