//! One layer's shape rule: its output shape, parameter count and FLOPs from its input
//! shapes (validation's phase 3, infer.rs), or the problem in words.
//!
//! The layers that are one backend op take their output shape from that op's checked
//! geometry (`backend::geometry`) run on a batch of one image, so a spec that validates is
//! one the backends accept. The checks here come first and say what is wrong in the spec's
//! terms; each leaves the geometry one way to fail, which is reported in those terms too.

use super::{LayerSpec, Padding};
use crate::backend::geometry::{
    image_batch, BatchNormGeom, ConcatGeom, ConvGeom, ConvTransposeGeom, GlobalPoolGeom, PoolGeom, UnpoolGeom,
    UpsampleGeom,
};
use crate::backend::{Conv2dParams, ConvTransposeParams, PoolParams};
use crate::tensor::Shape;

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
            let p = Conv2dParams {
                stride: *stride,
                padding: pad,
            };
            let weight = Shape::new(&[*out, c, *kernel, *kernel]);
            let g = ConvGeom::new("conv2d", &image_batch(x), &weight, p)
                .map_err(|_| format!("kernel {kernel} (padding {pad}) is larger than the {h}×{w} input"))?;
            let (oh, ow) = (g.oh, g.ow);
            (
                vec![g.o, oh, ow],
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
            let (weight, bias) = (Shape::new(&[c, *out, *kernel, *kernel]), Shape::new(&[*out]));
            let g = ConvTransposeGeom::new("conv_transpose2d", &image_batch(x), &weight, &bias, p).map_err(|_| {
                format!("padding {padding} leaves no output for the {h}×{w} input (kernel {kernel}, stride {stride})")
            })?;
            (
                vec![g.o, g.oh, g.ow],
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
            let [_, h, w] = chw(x, "")?;
            let s = stride.unwrap_or(*size);
            if *size == 0 || s == 0 {
                return Err(format!("size ({size}) and stride ({s}) must be at least 1"));
            }
            if 2 * padding > *size {
                return Err(format!("padding {padding} must be at most half the window {size}"));
            }
            let p = PoolParams {
                kernel: *size,
                stride: s,
                padding: *padding,
            };
            let name = match op {
                LayerSpec::MaxPool { .. } => "max_pool2d",
                _ => "avg_pool2d",
            };
            let g = PoolGeom::new(name, &image_batch(x), p)
                .map_err(|_| format!("window {size} is larger than the {h}×{w} input"))?;
            (vec![g.c, g.oh, g.ow], 0, 0)
        }
        LayerSpec::GlobalAvgPool {} => {
            chw(x, "")?;
            // cannot fail: no shape has a zero dimension (phase 1 and every rule here see to it)
            let g = GlobalPoolGeom::new("global_avg_pool", &image_batch(x)).map_err(|e| e.to_string())?;
            (vec![g.c], 0, g.c * g.h * g.w)
        }
        LayerSpec::MaxUnpool { pool } => {
            let (pool_in, pool_out) = pool_of(pool)?;
            // x must be the pool's output exactly: the switches have that shape
            let (x_, idx, out) = (image_batch(x), image_batch(&pool_out), image_batch(&pool_in));
            let g = UnpoolGeom::new("max_unpool2d", &x_, &idx, &out)
                .map_err(|_| format!("its input {x:?} must have the shape of pool \"{pool}\"'s output {pool_out:?}"))?;
            (vec![g.c, g.h, g.w], 0, 0)
        }
        LayerSpec::Upsample { scale, .. } => {
            chw(x, "")?;
            if *scale == 0 {
                return Err(format!("scale ({scale}) must be at least 1"));
            }
            // cannot fail now: no shape has a zero dimension (phase 1 and every rule here see to it)
            let g = UpsampleGeom::new("upsample2d", &image_batch(x), *scale).map_err(|e| e.to_string())?;
            (vec![g.c, g.oh, g.ow], 0, 0)
        }
        LayerSpec::BatchNorm { momentum, eps } => {
            if !(momentum.is_finite() && *momentum > 0.0 && *momentum <= 1.0) {
                return Err(format!("momentum {momentum} must be in (0, 1]"));
            }
            if !(eps.is_finite() && *eps > 0.0) {
                return Err(format!("eps {eps} must be a positive number"));
            }
            let g = BatchNormGeom::new("batch_norm", &image_batch(x), &[])
                .map_err(|_| "needs a (C,H,W) or flat input".to_string())?;
            (x.clone(), 2 * g.c, 4 * g.c * g.hw)
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
            reduce,
        } => {
            let [c, h, w] = chw(x, NOT_FLAT)?;
            let widths = [b1, b3_reduce, b3, b5_reduce, b5, pool_proj];
            // the naive block ignores the reduction widths
            let used = |i: usize| *reduce || (i != 1 && i != 3);
            if widths.iter().enumerate().any(|(i, &&v)| used(i) && v == 0) {
                return Err(format!(
                    "every branch width must be at least 1 (b1 {b1}, b3_reduce {b3_reduce}, b3 {b3}, b5_reduce {b5_reduce}, b5 {b5}, pool_proj {pool_proj})"
                ));
            }
            // multiply-adds per pixel of each conv, and its parameters
            let convs = crate::spec::inception_convs(c, [*b1, *b3_reduce, *b3, *b5_reduce, *b5, *pool_proj], *reduce);
            let params = convs.iter().map(|&(i, o, k)| o * i * k * k + o).sum();
            let macs: usize = convs.iter().map(|&(i, o, k)| o * i * k * k).sum();
            (vec![b1 + b3 + b5 + pool_proj, h, w], params, 2 * macs * h * w)
        }
        LayerSpec::Concat {} => {
            let batch: Vec<Shape> = ins.iter().map(|s| image_batch(s)).collect();
            let g = ConcatGeom::new("concat_channels", &batch.iter().collect::<Vec<_>>()).map_err(|_| {
                format!(
                    "inputs must agree on every axis but channels, got {}",
                    ins.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                )
            })?;
            (g.dims[1..].to_vec(), 0, 0)
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
