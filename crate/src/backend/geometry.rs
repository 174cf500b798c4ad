//! The shapes of the op contract: one checked struct per op family, with named sizes.
//!
//! Both backends start every op from these constructors (the way candle's `ParamsConv2D`
//! serves its CPU and Metal backends), so the two reject the same inputs with the same
//! messages. Constructors take shapes, not tensors, so that model specs can run them on
//! plain dims at N = 1 (`image_batch`) to infer a layer's output.

use super::{Activation, PointLoss, UpsampleMode};
use crate::error::{shape_err, Result};
use crate::tensor::{Shape, Tensor};

/// (C,H,W) or (K) dims as a batch of one image: (1,C,H,W) or (1,K).
pub fn image_batch(dims: &[usize]) -> Shape {
    let mut batch = vec![1];
    batch.extend_from_slice(dims);
    Shape(batch)
}

/// The shapes of some tensors, for the constructors that check several inputs at once.
pub fn shapes_of<'t>(xs: &[&'t Tensor]) -> Vec<&'t Shape> {
    xs.iter().map(|x| &x.shape).collect()
}

/// Checks that a backward's dy has the forward output's dims `want`; the error names dy's
/// shape, then the `others`.
fn check_dy(op: &'static str, problem: &str, dy: &Shape, want: &[usize], others: &[&Shape]) -> Result<()> {
    if dy.dims() != want {
        let shapes: Vec<&[usize]> = std::iter::once(dy)
            .chain(others.iter().copied())
            .map(Shape::dims)
            .collect();
        return Err(shape_err(op, problem, &shapes));
    }
    Ok(())
}

// ---- elementwise, optim, regularize: checks without sizes --------------------------------

/// Checks that each of `others` has the shape of `first` ("shapes differ", naming the pair).
pub fn check_same_shapes(op: &'static str, first: &Shape, others: &[&Shape]) -> Result<()> {
    match others.iter().find(|s| **s != first) {
        Some(s) => Err(shape_err(op, "shapes differ", &[first.dims(), s.dims()])),
        None => Ok(()),
    }
}

/// Checks that dy, x and y of an activation's backward share one shape.
pub fn check_activation_backward(op: &'static str, a: Activation, dy: &Shape, x: &Shape, y: &Shape) -> Result<()> {
    if dy != x || dy != y {
        return Err(shape_err(
            op,
            format!("{}: dy, x, y shapes differ", a.name()),
            &[dy.dims(), x.dims(), y.dims()],
        ));
    }
    Ok(())
}

/// Checks that an accumulator is a single number, shape (1).
pub fn check_scalar(op: &'static str, acc: &Shape) -> Result<()> {
    if acc.dims() != [1] {
        return Err(shape_err(op, "the accumulator must have shape [1]", &[acc.dims()]));
    }
    Ok(())
}

// ---- conv2d --------------------------------------------------------------------------------

/// Convolution geometry: square kernel, same stride and zero padding on both axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: usize,
    pub padding: usize,
}

/// Transposed convolution geometry (PyTorch's `ConvTranspose2d`): square kernel, same stride
/// and padding on both axes; `output_padding` (< stride) adds rows and columns at the far
/// end, so that OH = (H-1)·stride - 2·padding + K + output_padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeParams {
    pub stride: usize,
    pub padding: usize,
    pub output_padding: usize,
}

impl ConvTransposeParams {
    /// The convolution this one is the adjoint of: conv2d maps (N,O,OH,OW) back to (N,C,H,W).
    pub fn conv(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
        }
    }
}

/// Output length of a convolution or pooling along one axis.
pub fn out_len(input: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = input + 2 * padding;
    if stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

/// Output length of a transposed convolution along one axis, None when it is not positive.
pub fn transposed_out_len(input: usize, kernel: usize, p: ConvTransposeParams) -> Option<usize> {
    let full = input.checked_sub(1)? * p.stride + kernel + p.output_padding;
    full.checked_sub(2 * p.padding).filter(|&len| len > 0)
}

/// One convolution, checked: x (N,C,H,W), w (O,C,K,K) -> y (N,O,OH,OW).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
    pub oh: usize,
    pub ow: usize,
    pub p: Conv2dParams,
}

impl ConvGeom {
    /// x (N,C,H,W) against w (O,C,K,K): the channels agree, the kernel is square and fits.
    pub fn new(op: &'static str, x: &Shape, w: &Shape, p: Conv2dParams) -> Result<ConvGeom> {
        let (n, c, h, wd) = x.nchw(op)?;
        let (o, wc, kh, kw) = w.nchw(op)?;
        if wc != c {
            return Err(shape_err(
                op,
                format!("input has {c} channels, kernel expects {wc}"),
                &[x.dims(), w.dims()],
            ));
        }
        if kh != kw {
            return Err(shape_err(op, "kernel must be square", &[w.dims()]));
        }
        let (Some(oh), Some(ow)) = (
            out_len(h, kh, p.stride, p.padding),
            out_len(wd, kw, p.stride, p.padding),
        ) else {
            return Err(shape_err(
                op,
                format!(
                    "kernel {kh} with padding {} and stride {} does not fit the input",
                    p.padding, p.stride
                ),
                &[x.dims(), w.dims()],
            ));
        };
        Ok(ConvGeom {
            n,
            c,
            h,
            w: wd,
            o,
            k: kh,
            oh,
            ow,
            p,
        })
    }

    /// The forward's x, w and its bias b (O).
    pub fn forward(op: &'static str, x: &Shape, w: &Shape, b: &Shape, p: Conv2dParams) -> Result<ConvGeom> {
        let g = ConvGeom::new(op, x, w, p)?;
        if b.dims() != [g.o] {
            return Err(shape_err(
                op,
                "bias must have one value per output channel",
                &[w.dims(), b.dims()],
            ));
        }
        Ok(g)
    }

    /// A gradient's x and w, and its dy, which must be (N,O,OH,OW).
    pub fn backward(op: &'static str, dy: &Shape, x: &Shape, w: &Shape, p: Conv2dParams) -> Result<ConvGeom> {
        let g = ConvGeom::new(op, x, w, p)?;
        check_dy(op, "dy does not match the conv output", dy, &g.y_dims(), &[x, w])?;
        Ok(g)
    }

    pub fn y_dims(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }
}

/// One transposed convolution, checked: x (N,C,H,W), w (C,O,K,K), b (O) -> y (N,O,OH,OW)
/// with OH = (H-1)·stride - 2·padding + K + output_padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
    pub oh: usize,
    pub ow: usize,
    pub p: ConvTransposeParams,
}

impl ConvTransposeGeom {
    /// x (N,C,H,W) against w (C,O,K,K) and b (O): the channels agree, the kernel is square
    /// and non-empty, output_padding < stride, and the output is not empty.
    pub fn new(op: &'static str, x: &Shape, w: &Shape, b: &Shape, p: ConvTransposeParams) -> Result<ConvTransposeGeom> {
        let (n, c, h, wd) = x.nchw(op)?;
        let (wc, o, kh, kw) = w.nchw(op)?;
        let shapes = [x.dims(), w.dims(), b.dims()];
        if wc != c {
            return Err(shape_err(
                op,
                format!("input has {c} channels, kernel (C,O,K,K) expects {wc}"),
                &shapes,
            ));
        }
        if kh != kw || kh == 0 {
            return Err(shape_err(op, "kernel must be square and non-empty", &shapes));
        }
        if b.dims() != [o] {
            return Err(shape_err(op, "bias must have one value per output channel", &shapes));
        }
        if p.stride == 0 || p.output_padding >= p.stride {
            return Err(shape_err(
                op,
                format!(
                    "output_padding {} must be smaller than stride {} (stride at least 1)",
                    p.output_padding, p.stride
                ),
                &shapes,
            ));
        }
        let (Some(oh), Some(ow)) = (transposed_out_len(h, kh, p), transposed_out_len(wd, kw, p)) else {
            return Err(shape_err(
                op,
                format!(
                    "padding {} leaves no output for kernel {kh}, stride {}",
                    p.padding, p.stride
                ),
                &shapes,
            ));
        };
        Ok(ConvTransposeGeom {
            n,
            c,
            h,
            w: wd,
            o,
            k: kh,
            oh,
            ow,
            p,
        })
    }

    /// The backward's x and w (the bias is implied, (O)), and its dy, which must be
    /// (N,O,OH,OW).
    pub fn backward(
        op: &'static str,
        dy: &Shape,
        x: &Shape,
        w: &Shape,
        p: ConvTransposeParams,
    ) -> Result<ConvTransposeGeom> {
        let b = Shape::new(&[w.dims().get(1).copied().unwrap_or(0)]);
        let g = ConvTransposeGeom::new(op, x, w, &b, p)?;
        check_dy(
            op,
            "dy does not match the transposed conv output",
            dy,
            &g.y_dims(),
            &[x, w],
        )?;
        Ok(g)
    }

    pub fn y_dims(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }

    /// The convolution this one is the adjoint of, with the same weight w (C,O,K,K) read as
    /// (O',C',K,K): y (N,O,OH,OW) -> x (N,C,H,W). Its output length is H exactly, since
    /// output_padding < stride.
    pub fn adjoint(&self) -> ConvGeom {
        ConvGeom {
            n: self.n,
            c: self.o,
            h: self.oh,
            w: self.ow,
            o: self.c,
            k: self.k,
            oh: self.h,
            ow: self.w,
            p: self.p.conv(),
        }
    }
}

// ---- linear --------------------------------------------------------------------------------

/// One fully connected layer, checked: x (N,K), w (O,K), b (O) -> y (N,O).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearGeom {
    pub n: usize,
    pub k: usize,
    pub o: usize,
}

impl LinearGeom {
    /// x (N,K), w (O,K) and b (O).
    pub fn forward(op: &'static str, x: &Shape, w: &Shape, b: &Shape) -> Result<LinearGeom> {
        let (n, k) = x.matrix(op)?;
        let (o, wk) = w.matrix(op)?;
        if wk != k || b.dims() != [o] {
            return Err(shape_err(
                op,
                "x (N,K), w (O,K), b (O) do not fit",
                &[x.dims(), w.dims(), b.dims()],
            ));
        }
        Ok(LinearGeom { n, k, o })
    }

    /// dy (N,O), x (N,K) and w (O,K).
    pub fn backward(op: &'static str, dy: &Shape, x: &Shape, w: &Shape) -> Result<LinearGeom> {
        let (n, k) = x.matrix(op)?;
        let (o, wk) = w.matrix(op)?;
        if wk != k || dy.dims() != [n, o] {
            return Err(shape_err(
                op,
                "dy (N,O), x (N,K), w (O,K) do not fit",
                &[dy.dims(), x.dims(), w.dims()],
            ));
        }
        Ok(LinearGeom { n, k, o })
    }
}

// ---- pool ----------------------------------------------------------------------------------

/// Pooling geometry (PyTorch's `MaxPool2d` / `AvgPool2d`, floor mode): square window
/// `kernel`, step `stride`, `padding` cells on every side, at most kernel/2. Max pooling
/// pads with -inf; avg pooling counts the padding (count_include_pad=True: divide by K²).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// The input cells under window `o` along an axis of length `len`: o·stride - padding ..
/// o·stride - padding + kernel, clipped to 0..len (the padding holds no cells).
pub fn pool_window(o: usize, p: PoolParams, len: usize) -> std::ops::Range<usize> {
    let start = o * p.stride;
    start.saturating_sub(p.padding).min(len)..(start + p.kernel).saturating_sub(p.padding).min(len)
}

/// One windowed pooling, checked: x (N,C,H,W) -> y (N,C,OH,OW).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub p: PoolParams,
}

impl PoolGeom {
    /// x (N,C,H,W) against the window, which must be non-empty with, as in PyTorch, padding
    /// at most half of it, so that every window covers at least one input cell.
    pub fn new(op: &'static str, x: &Shape, p: PoolParams) -> Result<PoolGeom> {
        let (n, c, h, w) = x.nchw(op)?;
        if p.kernel == 0 || 2 * p.padding > p.kernel {
            return Err(shape_err(
                op,
                format!(
                    "window {} must be at least 1 and padding {} at most half of it",
                    p.kernel, p.padding
                ),
                &[x.dims()],
            ));
        }
        let (Some(oh), Some(ow)) = (
            out_len(h, p.kernel, p.stride, p.padding),
            out_len(w, p.kernel, p.stride, p.padding),
        ) else {
            return Err(shape_err(
                op,
                format!(
                    "window {} stride {} padding {} does not fit the input",
                    p.kernel, p.stride, p.padding
                ),
                &[x.dims()],
            ));
        };
        Ok(PoolGeom { n, c, h, w, oh, ow, p })
    }

    /// The backward's x shape and window, and its dy, which must be (N,C,OH,OW).
    pub fn backward(op: &'static str, dy: &Shape, x: &Shape, p: PoolParams) -> Result<PoolGeom> {
        let g = PoolGeom::new(op, x, p)?;
        check_dy(op, "dy does not match the pooled shape", dy, &g.y_dims(), &[x])?;
        Ok(g)
    }

    pub fn y_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }
}

/// Global average pooling, checked: x (N,C,H,W) with non-empty planes -> y (N,C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalPoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl GlobalPoolGeom {
    pub fn new(op: &'static str, x: &Shape) -> Result<GlobalPoolGeom> {
        let (n, c, h, w) = x.nchw(op)?;
        if h * w == 0 {
            return Err(shape_err(op, "planes must not be empty", &[x.dims()]));
        }
        Ok(GlobalPoolGeom { n, c, h, w })
    }

    /// The backward's x shape and its dy, which must be (N,C).
    pub fn backward(op: &'static str, dy: &Shape, x: &Shape) -> Result<GlobalPoolGeom> {
        let (n, c, h, w) = x.nchw(op)?;
        if dy.dims() != [n, c] || h * w == 0 {
            return Err(shape_err(
                op,
                "dy must be (N,C) of a non-empty input (N,C,H,W)",
                &[dy.dims(), x.dims()],
            ));
        }
        Ok(GlobalPoolGeom { n, c, h, w })
    }
}

/// Max-pool switches, checked: pooled values (N,C,OH,OW) and their flat argmax indices into
/// planes (N,C,H,W). Max pooling's backward and max-unpooling (both ways) route through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpoolGeom {
    pub n: usize,
    pub c: usize,
    /// The planes' height and width (the unpooled side).
    pub h: usize,
    pub w: usize,
    /// Switches per plane: OH·OW.
    pub switches: usize,
}

impl UnpoolGeom {
    /// max_unpool2d: x (N,C,OH,OW) and idx of x's shape, against the output (N,C,H,W).
    pub fn new(op: &'static str, x: &Shape, idx: &Shape, out: &Shape) -> Result<UnpoolGeom> {
        let (n, c, h, w) = out.nchw(op)?;
        let (xn, xc, oh, ow) = x.nchw(op)?;
        if x != idx || (xn, xc) != (n, c) {
            return Err(shape_err(
                op,
                "x and indices must be (N,C,OH,OW) with the N and C of the output (N,C,H,W)",
                &[x.dims(), idx.dims(), out.dims()],
            ));
        }
        Ok(UnpoolGeom {
            n,
            c,
            h,
            w,
            switches: oh * ow,
        })
    }

    /// max_unpool2d_backward: dy (N,C,H,W) against idx (N,C,OH,OW).
    pub fn backward(op: &'static str, dy: &Shape, idx: &Shape) -> Result<UnpoolGeom> {
        UnpoolGeom::new(op, idx, idx, dy)
    }

    /// max_pool2d_backward: dy and idx of one shape, with the N and C of the input x
    /// (N,C,H,W).
    pub fn max_pool_backward(op: &'static str, dy: &Shape, idx: &Shape, x: &Shape) -> Result<UnpoolGeom> {
        let (n, c, h, w) = x.nchw(op)?;
        if dy != idx || dy.dims().first() != Some(&n) || dy.dims().get(1) != Some(&c) {
            return Err(shape_err(
                op,
                "dy, indices and input do not fit",
                &[dy.dims(), idx.dims(), x.dims()],
            ));
        }
        let switches = dy.numel() / (n * c).max(1);
        Ok(UnpoolGeom { n, c, h, w, switches })
    }

    /// N·C planes.
    pub fn planes(&self) -> usize {
        self.n * self.c
    }

    /// H·W cells per plane.
    pub fn cells(&self) -> usize {
        self.h * self.w
    }
}

// ---- concat --------------------------------------------------------------------------------

/// A channel concat, checked: xs[i] (N,Ci,H,W) -> y (N,ΣCi,H,W), or (N,Ci) -> (N,ΣCi).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcatGeom {
    /// The output dims (N,ΣCi,...).
    pub dims: Vec<usize>,
    /// Each input's channels Ci.
    pub channels: Vec<usize>,
    /// Elements per channel: H·W, or 1.
    pub inner: usize,
}

impl ConcatGeom {
    /// All (N,Ci,H,W) or all (N,Ci), agreeing on every dimension but the channels, none
    /// empty, at least one.
    pub fn new(op: &'static str, xs: &[&Shape]) -> Result<ConcatGeom> {
        let shapes: Vec<&[usize]> = xs.iter().map(|x| x.dims()).collect();
        let Some(first) = shapes.first() else {
            return Err(shape_err(op, "needs at least one input", &[]));
        };
        if first.len() != 2 && first.len() != 4 {
            return Err(shape_err(op, "inputs must be (N,C,H,W) or (N,C)", &shapes));
        }
        let fits = |s: &&[usize]| s.len() == first.len() && s[0] == first[0] && s[2..] == first[2..] && s[1] > 0;
        if !shapes.iter().all(fits) {
            return Err(shape_err(
                op,
                "inputs must agree on every dimension but the channels, and have at least one channel",
                &shapes,
            ));
        }
        let channels: Vec<usize> = shapes.iter().map(|s| s[1]).collect();
        let mut dims = first.to_vec();
        dims[1] = channels.iter().sum();
        Ok(ConcatGeom {
            dims,
            channels,
            inner: first[2..].iter().product(),
        })
    }

    /// N images.
    pub fn n(&self) -> usize {
        self.dims[0]
    }
}

/// A channel slice, checked: x (N,C,H,W) -> y (N,len,H,W) = channels start..start+len,
/// or (N,C) -> (N,len).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceGeom {
    /// The output dims (N,len,...).
    pub dims: Vec<usize>,
    /// The input's channels C.
    pub c: usize,
    pub start: usize,
    pub len: usize,
    /// Elements per channel: H·W, or 1.
    pub inner: usize,
}

impl SliceGeom {
    pub fn new(op: &'static str, x: &Shape, start: usize, len: usize) -> Result<SliceGeom> {
        let dims = x.dims();
        if (dims.len() != 2 && dims.len() != 4) || len == 0 || start + len > dims[1] {
            return Err(shape_err(
                op,
                format!(
                    "channels {start}..{} must be a non-empty range of a (N,C,H,W) or (N,C) tensor",
                    start + len
                ),
                &[dims],
            ));
        }
        let mut out = dims.to_vec();
        out[1] = len;
        Ok(SliceGeom {
            dims: out,
            c: dims[1],
            start,
            len,
            inner: dims[2..].iter().product(),
        })
    }

    /// N images.
    pub fn n(&self) -> usize {
        self.dims[0]
    }
}

// ---- upsample ------------------------------------------------------------------------------

/// Where output row (or column) `dst` of an upsampling by `scale` reads its input of length
/// `len`: the two neighbours (i0, i1) and the weight λ of i1, so that y = (1-λ)·x[i0] + λ·x[i1].
/// Nearest: i0 = i1 = dst / scale, λ = 0. Bilinear (align_corners=False): the source
/// coordinate (dst + 0.5)/scale - 0.5, clamped at 0; i1 clamped at the last cell.
pub fn upsample_source(dst: usize, scale: usize, len: usize, mode: UpsampleMode) -> (usize, usize, f32) {
    match mode {
        UpsampleMode::Nearest => {
            let i = (dst / scale).min(len.saturating_sub(1));
            (i, i, 0.0)
        }
        UpsampleMode::Bilinear => {
            let src = ((dst as f32 + 0.5) / scale as f32 - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(len.saturating_sub(1));
            let i1 = (i0 + 1).min(len.saturating_sub(1));
            (i0, i1, src - i0 as f32)
        }
    }
}

/// One upsampling, checked: x (N,C,H,W) -> y (N,C,OH,OW) = (N,C,H·scale,W·scale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpsampleGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub scale: usize,
}

impl UpsampleGeom {
    /// A non-empty x (N,C,H,W) and a scale of at least 1.
    pub fn new(op: &'static str, x: &Shape, scale: usize) -> Result<UpsampleGeom> {
        let (n, c, h, w) = x.nchw(op)?;
        if scale == 0 || h == 0 || w == 0 {
            return Err(shape_err(
                op,
                "scale must be at least 1, the input non-empty",
                &[x.dims()],
            ));
        }
        Ok(UpsampleGeom {
            n,
            c,
            h,
            w,
            oh: h * scale,
            ow: w * scale,
            scale,
        })
    }

    /// The backward's x shape and scale, and its dy, which must be (N,C,OH,OW).
    pub fn backward(op: &'static str, dy: &Shape, x: &Shape, scale: usize) -> Result<UpsampleGeom> {
        let g = UpsampleGeom::new(op, x, scale)?;
        check_dy(op, "dy does not match the upsampled shape", dy, &g.y_dims(), &[x])?;
        Ok(g)
    }

    pub fn y_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }
}

// ---- batch_norm ----------------------------------------------------------------------------

/// One batch normalization, checked: x (N,C,H,W) or (N,C) with per-channel tensors (gamma,
/// beta, statistics) of shape (C); statistics run over N·H·W values per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormGeom {
    pub n: usize,
    pub c: usize,
    /// Values per channel and image: H·W, or 1 for (N,C).
    pub hw: usize,
}

impl BatchNormGeom {
    /// x (N,C,H,W) or (N,C) against per-channel tensors, each of which must be (C).
    pub fn new(op: &'static str, x: &Shape, per_channel: &[&Shape]) -> Result<BatchNormGeom> {
        let (n, c, hw) = match *x.dims() {
            [n, c] => (n, c, 1),
            [n, c, h, w] => (n, c, h * w),
            ref d => return Err(shape_err(op, "expected x (N,C,H,W) or (N,C)", &[d])),
        };
        if per_channel.iter().any(|s| s.dims() != [c]) {
            let shapes: Vec<&[usize]> = std::iter::once(x.dims())
                .chain(per_channel.iter().map(|s| s.dims()))
                .collect();
            return Err(shape_err(
                op,
                format!("gamma, beta and the statistics must each hold one value per channel ({c})"),
                &shapes,
            ));
        }
        Ok(BatchNormGeom { n, c, hw })
    }

    /// `new` for training mode, which also needs n = N·H·W ≥ 2 values per channel
    /// (PyTorch: "Expected more than 1 value per channel when training").
    pub fn train(op: &'static str, x: &Shape, per_channel: &[&Shape]) -> Result<BatchNormGeom> {
        let g = BatchNormGeom::new(op, x, per_channel)?;
        if g.count() < 2 {
            return Err(shape_err(
                op,
                "training needs more than one value per channel (N·H·W ≥ 2)",
                &[x.dims()],
            ));
        }
        Ok(g)
    }

    /// `new` for a backward pass, whose dy must have the shape of x.
    pub fn backward(op: &'static str, dy: &Shape, x: &Shape, per_channel: &[&Shape]) -> Result<BatchNormGeom> {
        let g = BatchNormGeom::new(op, x, per_channel)?;
        if dy != x {
            return Err(shape_err(op, "dy must have the shape of x", &[dy.dims(), x.dims()]));
        }
        Ok(g)
    }

    /// n = N·H·W, the values behind each channel's statistics.
    pub fn count(&self) -> usize {
        self.n * self.hw
    }
}

/// The running-statistics update, checked: running mean and var, batch mean and var, all
/// (C), from `count` ≥ 2 values per channel (for the unbiased variance n/(n-1)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormRunningGeom {
    pub c: usize,
    pub count: usize,
}

impl BatchNormRunningGeom {
    pub fn new(op: &'static str, stats: &[&Shape], count: usize) -> Result<BatchNormRunningGeom> {
        let shapes: Vec<&[usize]> = stats.iter().map(|s| s.dims()).collect();
        let c = match shapes.first() {
            Some(&&[c]) if shapes.iter().all(|s| *s == [c]) => c,
            _ => {
                return Err(shape_err(
                    op,
                    "running mean, running var, batch mean and batch var must all be (C)",
                    &shapes,
                ))
            }
        };
        if count < 2 {
            return Err(shape_err(
                op,
                format!("the batch statistics need a count of at least 2 values per channel, got {count}"),
                &shapes,
            ));
        }
        Ok(BatchNormRunningGeom { c, count })
    }

    /// n/(n-1), which makes the biased batch variance unbiased.
    pub fn unbiased(&self) -> f32 {
        (self.count as f64 / (self.count - 1) as f64) as f32
    }
}

// ---- loss ----------------------------------------------------------------------------------

/// A point loss, checked: pred, target and weight of one shape, a finite scale and, for
/// smooth L1, a finite beta ≥ 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointLossGeom {
    /// Elements of pred.
    pub count: usize,
}

impl PointLossGeom {
    pub fn new(
        op: &'static str,
        pred: &Shape,
        target: &Shape,
        weight: &Shape,
        kind: PointLoss,
        scale: f32,
    ) -> Result<PointLossGeom> {
        if pred != target || pred != weight {
            return Err(shape_err(
                op,
                format!("{}: pred, target and weight must have one shape", kind.name()),
                &[pred.dims(), target.dims(), weight.dims()],
            ));
        }
        if let PointLoss::SmoothL1 { beta } = kind {
            if !(beta >= 0.0 && beta.is_finite()) {
                return Err(shape_err(
                    op,
                    format!("smooth_l1: beta must be finite and ≥ 0, got {beta}"),
                    &[pred.dims()],
                ));
            }
        }
        if !scale.is_finite() {
            return Err(shape_err(
                op,
                format!("scale must be finite, got {scale}"),
                &[pred.dims()],
            ));
        }
        Ok(PointLossGeom { count: pred.numel() })
    }
}

/// Per-pixel class maps, checked: logits (N,K,H,W) with labels (N,H,W) (and, when given, a
/// weight (N,H,W)), or logits (N,K) with labels (N); K at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassMapGeom {
    pub n: usize,
    pub k: usize,
    /// Pixels per image: H·W, or 1 for (N,K).
    pub hw: usize,
}

impl ClassMapGeom {
    pub fn new(op: &'static str, logits: &Shape, labels: &Shape, weight: Option<&Shape>) -> Result<ClassMapGeom> {
        let (n, k, pixels): (usize, usize, &[usize]) = match logits.dims() {
            [n, k] => (*n, *k, &[]),
            [n, k, _, _] => (*n, *k, &logits.dims()[2..]),
            d => return Err(shape_err(op, "logits must be (N,K,H,W) or (N,K)", &[d])),
        };
        let mut want = vec![n];
        want.extend_from_slice(pixels);
        let fits = labels.dims() == want && weight.is_none_or(|w| w.dims() == want);
        if !fits || k == 0 {
            let mut shapes = vec![logits.dims(), labels.dims()];
            shapes.extend(weight.map(|w| w.dims()));
            return Err(shape_err(
                op,
                format!("need K ≥ 1 classes and labels (and weights) of shape {want:?}, one per pixel"),
                &shapes,
            ));
        }
        Ok(ClassMapGeom {
            n,
            k,
            hw: pixels.iter().product(),
        })
    }
}
