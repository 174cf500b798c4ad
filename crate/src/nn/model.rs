//! A model built from a validated spec: a DAG of layers whose parameters live in a
//! `ParamStore`, initialised as PyTorch does by default.

use serde::{Deserialize, Serialize};

use super::{ParamKind, ParamStore};
use crate::autograd::{Tape, Var};
use crate::backend::{Activation, Backend, Conv2dParams, ConvTransposeParams, PoolParams, UpsampleMode};
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::spec::{LayerSpec, ModelSpec, Source};
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

/// How a forward pass treats dropout and batch norm (PyTorch's `model.train()` / `model.eval()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Dropout masks units; batch norm uses (and updates) batch statistics.
    #[default]
    Train,
    /// No masks (classic dropout scales by 1-p); batch norm uses its running statistics.
    Eval,
}

/// One layer of the graph and where it reads from (in the order of the spec, which is a
/// topological order: every source comes earlier).
pub struct Node {
    pub name: String,
    pub sources: Vec<Source>,
    pub layer: Layer,
}

pub struct Model {
    pub nodes: Vec<Node>,
    /// (C, H, W) of one example.
    pub input: [usize; 3],
    pub classes: usize,
}

impl Model {
    /// Builds the layers of a spec (validated first) and initialises their parameters on
    /// `backend`: weights and biases ~ U(-1/√fan_in, 1/√fan_in), PyTorch's default.
    /// Parameters are named `{layer name}.weight` / `.bias`, the layer name being its index
    /// unless the spec names it, as in PyTorch's state dict.
    pub fn build(spec: &ModelSpec, backend: &dyn Backend, rng: &mut Rng) -> Result<(Model, ParamStore)> {
        let plan = spec.validate()?;
        let mut store = ParamStore::default();
        let mut nodes = Vec::with_capacity(spec.layers.len());
        for (i, lp) in plan.layers.iter().enumerate() {
            let input = &lp.in_shapes[0];
            let name = &lp.name;
            let built = match spec.layers[i].op {
                LayerSpec::Conv2d {
                    out, kernel, stride, ..
                } => {
                    let c = input[0];
                    let fan_in = c * kernel * kernel;
                    let w = init(backend, rng, &[out, c, kernel, kernel], fan_in)?;
                    let b = init(backend, rng, &[out], fan_in)?;
                    let padding = spec.layers[i].op.padding_px().unwrap_or(0);
                    Layer::Conv2d {
                        w: store.add(format!("{name}.weight"), ParamKind::ConvWeight, w),
                        b: store.add(format!("{name}.bias"), ParamKind::Bias, b),
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
                        w: store.add(format!("{name}.weight"), ParamKind::ConvWeight, w),
                        b: store.add(format!("{name}.bias"), ParamKind::Bias, b),
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
                        w: store.add(format!("{name}.weight"), ParamKind::LinearWeight, w),
                        b: store.add(format!("{name}.bias"), ParamKind::Bias, b),
                    }
                }
                LayerSpec::Relu {} => Layer::Activation(Activation::Relu),
                LayerSpec::LeakyRelu { slope } => Layer::Activation(Activation::LeakyRelu { slope }),
                LayerSpec::Tanh {} => Layer::Activation(Activation::Tanh),
                LayerSpec::Sigmoid {} => Layer::Activation(Activation::Sigmoid),
                LayerSpec::MaxPool {
                    size,
                    stride,
                    padding: 0,
                } => Layer::MaxPool(PoolParams {
                    kernel: size,
                    stride: stride.unwrap_or(size),
                    padding: 0,
                }),
                LayerSpec::AvgPool {
                    size,
                    stride,
                    padding: 0,
                } => Layer::AvgPool(PoolParams {
                    kernel: size,
                    stride: stride.unwrap_or(size),
                    padding: 0,
                }),
                LayerSpec::Upsample { scale, mode } => Layer::Upsample { scale, mode },
                LayerSpec::Flatten {} => Layer::Flatten,
                ref other => {
                    return Err(Error::Config {
                        field: "layers",
                        problem: format!("{} layers are not built yet", other.kind()),
                    })
                }
            };
            nodes.push(Node {
                name: name.clone(),
                sources: lp.sources.clone(),
                layer: built,
            });
        }
        Ok((
            Model {
                nodes,
                input: spec.input,
                classes: spec.classes,
            },
            store,
        ))
    }

    /// x (N,C,H,W) -> every layer's output, in order; the last is the logits (N, classes).
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Vec<Var>> {
        let mut outs: Vec<Var> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let ins: Vec<Var> = node
                .sources
                .iter()
                .map(|s| match s {
                    Source::Input => x,
                    Source::Layer(j) => outs[*j],
                })
                .collect();
            let h = ins[0];
            let y = match node.layer {
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
            outs.push(y);
        }
        Ok(outs)
    }

    /// The first convolution's weight parameter, if any (the page draws its filters).
    pub fn first_conv_weight(&self) -> Option<usize> {
        self.nodes.iter().find_map(|n| match n.layer {
            Layer::Conv2d { w, .. } => Some(w),
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
