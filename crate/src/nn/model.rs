//! A model built from a validated spec: a chain of layers whose parameters live in a
//! `ParamStore`, initialised as PyTorch does by default.

use super::{ParamKind, ParamStore};
use crate::autograd::{Tape, Var};
use crate::backend::{Activation, Backend, Conv2dParams, ConvTransposeParams, PoolParams, UpsampleMode};
use crate::data::Rng;
use crate::error::Result;
use crate::spec::{LayerSpec, ModelSpec};
use crate::tensor::Shape;

pub enum Layer {
    /// x (N,C,H,W) -> (N,O,OH,OW); params: weight (O,C,K,K), bias (O)
    Conv2d {
        w: usize,
        b: usize,
        p: Conv2dParams,
    },
    /// x (N,C,H,W) -> (N,O,OH,OW); params: weight (C,O,K,K), bias (O)
    ConvTranspose2d {
        w: usize,
        b: usize,
        p: ConvTransposeParams,
    },
    /// x (N,K) -> (N,O); params: weight (O,K), bias (O)
    Linear {
        w: usize,
        b: usize,
    },
    /// y = f(x), any shape
    Activation(Activation),
    MaxPool(PoolParams),
    AvgPool(PoolParams),
    /// (N,C,H,W) -> (N,C,H·s,W·s)
    Upsample {
        scale: usize,
        mode: UpsampleMode,
    },
    /// (N,C,H,W) -> (N, C·H·W)
    Flatten,
}

pub struct Model {
    pub layers: Vec<Layer>,
    /// (C, H, W) of one example.
    pub input: [usize; 3],
    pub classes: usize,
}

impl Model {
    /// Builds the layers of a spec (validated first) and initialises their parameters on
    /// `backend`: weights and biases ~ U(-1/√fan_in, 1/√fan_in), PyTorch's default.
    pub fn build(spec: &ModelSpec, backend: &dyn Backend, rng: &mut Rng) -> Result<(Model, ParamStore)> {
        let plan = spec.validate()?;
        let mut store = ParamStore::default();
        let mut layers = Vec::with_capacity(spec.layers.len());
        for (i, (layer, shapes)) in spec.layers.iter().zip(&plan.shapes).enumerate() {
            let input = &shapes.0;
            let built = match *layer {
                LayerSpec::Conv2d {
                    out, kernel, stride, ..
                } => {
                    let c = input[0];
                    let fan_in = c * kernel * kernel;
                    let w = init(backend, rng, &[out, c, kernel, kernel], fan_in)?;
                    let b = init(backend, rng, &[out], fan_in)?;
                    let padding = layer.padding_px().unwrap_or(0);
                    Layer::Conv2d {
                        w: store.add(format!("{i}.weight"), ParamKind::ConvWeight, w),
                        b: store.add(format!("{i}.bias"), ParamKind::Bias, b),
                        p: Conv2dParams { stride, padding },
                    }
                }
                LayerSpec::ConvTranspose2d {
                    out,
                    kernel,
                    stride,
                    padding,
                    output_padding,
                } => {
                    // PyTorch takes fan_in from weight.size(1)·K·K, which is `out` here
                    let c = input[0];
                    let fan_in = out * kernel * kernel;
                    let w = init(backend, rng, &[c, out, kernel, kernel], fan_in)?;
                    let b = init(backend, rng, &[out], fan_in)?;
                    Layer::ConvTranspose2d {
                        w: store.add(format!("{i}.weight"), ParamKind::ConvWeight, w),
                        b: store.add(format!("{i}.bias"), ParamKind::Bias, b),
                        p: ConvTransposeParams {
                            stride,
                            padding,
                            output_padding,
                        },
                    }
                }
                LayerSpec::Linear { out } => {
                    let k = input[0];
                    let w = init(backend, rng, &[out, k], k)?;
                    let b = init(backend, rng, &[out], k)?;
                    Layer::Linear {
                        w: store.add(format!("{i}.weight"), ParamKind::LinearWeight, w),
                        b: store.add(format!("{i}.bias"), ParamKind::Bias, b),
                    }
                }
                LayerSpec::Relu {} => Layer::Activation(Activation::Relu),
                LayerSpec::LeakyRelu { slope } => Layer::Activation(Activation::LeakyRelu { slope }),
                LayerSpec::Tanh {} => Layer::Activation(Activation::Tanh),
                LayerSpec::Sigmoid {} => Layer::Activation(Activation::Sigmoid),
                LayerSpec::MaxPool { size, stride } => Layer::MaxPool(PoolParams {
                    kernel: size,
                    stride: stride.unwrap_or(size),
                    padding: 0,
                }),
                LayerSpec::AvgPool { size, stride } => Layer::AvgPool(PoolParams {
                    kernel: size,
                    stride: stride.unwrap_or(size),
                    padding: 0,
                }),
                LayerSpec::Upsample { scale, mode } => Layer::Upsample { scale, mode },
                LayerSpec::Flatten {} => Layer::Flatten,
            };
            layers.push(built);
        }
        Ok((
            Model {
                layers,
                input: spec.input,
                classes: spec.classes,
            },
            store,
        ))
    }

    /// x (N,C,H,W) -> logits (N, classes)
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var> {
        let mut h = x;
        for layer in &self.layers {
            h = match *layer {
                Layer::Conv2d { w, b, p } => {
                    let (w, b) = (tape.param(w), tape.param(b));
                    tape.conv2d(h, w, b, p)?
                }
                Layer::ConvTranspose2d { w, b, p } => {
                    let (w, b) = (tape.param(w), tape.param(b));
                    tape.conv_transpose2d(h, w, b, p)?
                }
                Layer::Linear { w, b } => {
                    let (w, b) = (tape.param(w), tape.param(b));
                    tape.linear(h, w, b)?
                }
                Layer::Activation(a) => tape.activation(h, a)?,
                Layer::MaxPool(p) => tape.max_pool(h, p)?,
                Layer::AvgPool(p) => tape.avg_pool(h, p)?,
                Layer::Upsample { scale, mode } => tape.upsample(h, scale, mode)?,
                Layer::Flatten => {
                    let dims = tape.value(h).dims().to_vec();
                    let n = dims.first().copied().unwrap_or(1);
                    let rest = dims.iter().skip(1).product();
                    tape.reshape(h, Shape::new(&[n, rest]))?
                }
            };
        }
        Ok(h)
    }

    /// The first convolution's weight parameter, if any (the page draws its filters).
    pub fn first_conv_weight(&self) -> Option<usize> {
        self.layers.iter().find_map(|l| match l {
            Layer::Conv2d { w, .. } => Some(*w),
            _ => None,
        })
    }
}

fn init(backend: &dyn Backend, rng: &mut Rng, dims: &[usize], fan_in: usize) -> Result<crate::tensor::Tensor> {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    let n: usize = dims.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.uniform(-bound, bound)).collect();
    backend.upload(Shape::new(dims), &data)
}
