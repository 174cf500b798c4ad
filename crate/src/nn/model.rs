//! A model built from a validated spec: a DAG of layers whose parameters live in a
//! `ParamStore`, initialised as PyTorch does by default.

use super::{ParamKind, ParamStore};
use crate::autograd::{Tape, Var};
use crate::backend::{Activation, Backend, Conv2dParams, ConvTransposeParams, PoolParams, UpsampleMode};
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::spec::{DropoutScaling, LayerSpec, ModelSpec, Plan, Source, ValidSpec};
use crate::tensor::{Shape, Tensor};

pub use crate::spec::train::Mode;

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
    /// (N,C,H,W) or (N,C) -> the same; params gamma, beta (C); buffers running mean, var (C)
    BatchNorm {
        gamma: usize,
        beta: usize,
        mean: usize,
        var: usize,
        momentum: f32,
        eps: f32,
    },
    /// Any shape -> the same; a seeded mask in train mode
    Dropout {
        p: f32,
        scaling: DropoutScaling,
    },
    /// (N,C,H,W) -> (N,C)
    GlobalAvgPool,
    /// (N,C,OH,OW) -> (N,C,H,W) through the switches of max-pool node `pool`
    MaxUnpool {
        pool: usize,
    },
    /// (N,C,H,W) -> (N, b1+b3+b5+pool_proj, H, W)
    Inception(Box<Inception>),
    /// (N,Ci,...) × k -> (N,ΣCi,...)
    Concat,
    /// a, b (same shape) -> a + b
    Add,
}

/// A convolution's parameters and geometry.
#[derive(Clone, Copy)]
pub struct Conv {
    pub w: usize,
    pub b: usize,
    pub p: Conv2dParams,
}

/// GoogLeNet v1's block: 1×1 | 1×1 -> 3×3 | 1×1 -> 5×5 | 3×3 max-pool -> 1×1, each conv
/// followed by ReLU, joined on channels in that order. The naive block (`reduce: false`)
/// has no reductions: its 3×3 and 5×5 read the input.
pub struct Inception {
    pub b1: Conv,
    pub b3_reduce: Option<Conv>,
    pub b3: Conv,
    pub b5_reduce: Option<Conv>,
    pub b5: Conv,
    pub pool_proj: Conv,
}

/// How one forward pass runs: the mode, the RNG that draws dropout masks (needed in train
/// mode), and the page's live overrides of every dropout layer's p and scaling.
pub struct Pass<'r> {
    pub mode: Mode,
    pub rng: Option<&'r mut Rng>,
    pub dropout_p: Option<f32>,
    pub dropout_scaling: Option<DropoutScaling>,
    /// What dropout layers do in eval mode (ignored in train mode): the dropout chapter's
    /// test-time modes and Monte-Carlo dropout.
    pub test_dropout: TestDropout,
}

/// Dropout in an eval-mode pass (batch norm uses its running statistics in every case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestDropout {
    /// `model.eval()`: identity for inverted dropout, ×(1−p) for classic.
    #[default]
    Expected,
    /// Masks drawn as in training, from the pass's RNG, with the training scale (Monte-Carlo
    /// dropout: Gal & Ghahramani 2016).
    Masks,
    /// Classic dropout's test-time ×(1−p) forgotten. A classic-trained layer is then the
    /// identity. An inverted-trained net is the classic net whose next weights absorbed the
    /// 1/(1−p), so forgetting that net's ×(1−p) leaves a factor 1/(1−p): the layer is ×1/(1−p).
    /// In both cases the layer's output is its `Expected` output divided by (1−p).
    NoRescale,
}

impl Pass<'static> {
    /// Evaluation: no masks, running statistics.
    pub fn eval() -> Pass<'static> {
        Pass {
            mode: Mode::Eval,
            rng: None,
            dropout_p: None,
            dropout_scaling: None,
            test_dropout: TestDropout::Expected,
        }
    }
}

/// One training-mode batch norm's batch statistics, to fold into its running buffers once
/// the tape (which borrows the store) is done.
pub struct BnBatch {
    mean_buffer: usize,
    var_buffer: usize,
    mean: Tensor,
    var: Tensor,
    count: usize,
    momentum: f32,
}

/// What a forward pass produced: every layer's output (the last is the model's output)
/// and the batch statistics to fold into running ones.
pub struct Forward {
    pub outputs: Vec<Var>,
    pub bn: Vec<BnBatch>,
}

impl Forward {
    pub fn output(&self) -> Var {
        // Validation refuses a spec without layers, so there is always a last output.
        self.outputs[self.outputs.len() - 1]
    }
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
        Self::from_plan(spec, &spec.validate()?, backend, rng)
    }

    /// As `build`, for a spec validated already: its plan is used, not recomputed.
    pub fn build_valid(spec: &ValidSpec, backend: &dyn Backend, rng: &mut Rng) -> Result<(Model, ParamStore)> {
        Self::from_plan(spec.spec(), spec.plan(), backend, rng)
    }

    /// `build` given the spec's plan (which must be the spec's own: `ValidSpec` guarantees it).
    fn from_plan(spec: &ModelSpec, plan: &Plan, backend: &dyn Backend, rng: &mut Rng) -> Result<(Model, ParamStore)> {
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
                LayerSpec::MaxPool { size, stride, padding } => Layer::MaxPool(PoolParams {
                    kernel: size,
                    stride: stride.unwrap_or(size),
                    padding,
                }),
                LayerSpec::AvgPool { size, stride, padding } => Layer::AvgPool(PoolParams {
                    kernel: size,
                    stride: stride.unwrap_or(size),
                    padding,
                }),
                LayerSpec::Upsample { scale, mode } => Layer::Upsample { scale, mode },
                LayerSpec::Flatten {} => Layer::Flatten,
                LayerSpec::GlobalAvgPool {} => Layer::GlobalAvgPool,
                LayerSpec::MaxUnpool { ref pool } => Layer::MaxUnpool {
                    // validation guarantees an earlier max_pool of that name
                    pool: plan.layers.iter().position(|l| l.name == *pool).unwrap_or(0),
                },
                LayerSpec::BatchNorm { momentum, eps } => {
                    let c = input[0];
                    let ones = backend.upload(Shape::new(&[c]), &vec![1.0; c])?;
                    Layer::BatchNorm {
                        gamma: store.add(format!("{name}.weight"), ParamKind::BnWeight, ones),
                        beta: store.add(
                            format!("{name}.bias"),
                            ParamKind::BnBias,
                            backend.zeros(Shape::new(&[c]))?,
                        ),
                        mean: store.add_buffer(format!("{name}.running_mean"), backend.zeros(Shape::new(&[c]))?),
                        var: store.add_buffer(
                            format!("{name}.running_var"),
                            backend.upload(Shape::new(&[c]), &vec![1.0; c])?,
                        ),
                        momentum,
                        eps,
                    }
                }
                LayerSpec::Dropout { p, scaling } => Layer::Dropout { p, scaling },
                LayerSpec::Inception {
                    b1,
                    b3_reduce,
                    b3,
                    b5_reduce,
                    b5,
                    pool_proj,
                    reduce,
                } => {
                    let c = input[0];
                    let mut conv = |branch: &str, cin: usize, out: usize, k: usize| -> Result<Conv> {
                        let fan_in = cin * k * k;
                        let w = init(backend, rng, &[out, cin, k, k], fan_in)?;
                        let b = init(backend, rng, &[out], fan_in)?;
                        Ok(Conv {
                            w: store.add(format!("{name}.{branch}.weight"), ParamKind::ConvWeight, w),
                            b: store.add(format!("{name}.{branch}.bias"), ParamKind::Bias, b),
                            p: Conv2dParams {
                                stride: 1,
                                padding: k / 2,
                            },
                        })
                    };
                    // parameters in PyTorch's registration order (export.rs's Inception)
                    let b1 = conv("b1", c, b1, 1)?;
                    let (b3_reduce, b3_in) = match reduce {
                        true => (Some(conv("b3_reduce", c, b3_reduce, 1)?), b3_reduce),
                        false => (None, c),
                    };
                    let b3 = conv("b3", b3_in, b3, 3)?;
                    let (b5_reduce, b5_in) = match reduce {
                        true => (Some(conv("b5_reduce", c, b5_reduce, 1)?), b5_reduce),
                        false => (None, c),
                    };
                    let b5 = conv("b5", b5_in, b5, 5)?;
                    Layer::Inception(Box::new(Inception {
                        b1,
                        b3_reduce,
                        b3,
                        b5_reduce,
                        b5,
                        pool_proj: conv("pool_proj", c, pool_proj, 1)?,
                    }))
                }
                LayerSpec::Concat {} => Layer::Concat,
                LayerSpec::Add {} => Layer::Add,
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
    /// In train mode dropout draws its masks from `pass.rng` and batch norm normalizes
    /// with batch statistics, returned in `Forward::bn` for `update_running_stats`.
    pub fn forward(&self, tape: &mut Tape, x: Var, pass: &mut Pass) -> Result<Forward> {
        let mut outs: Vec<Var> = Vec::with_capacity(self.nodes.len());
        let mut bn = Vec::new();
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
                Layer::Conv2d { w, b, p } => conv(tape, h, Conv { w, b, p })?,
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
                Layer::BatchNorm {
                    gamma,
                    beta,
                    mean,
                    var,
                    momentum,
                    eps,
                } => {
                    let (g, b) = (tape.param(gamma), tape.param(beta));
                    match pass.mode {
                        Mode::Train => {
                            let dims = tape.value(h).dims();
                            let count = tape.value(h).numel() / dims.get(1).copied().unwrap_or(1).max(1);
                            let out = tape.batch_norm_train(h, g, b, eps)?;
                            bn.push(BnBatch {
                                mean_buffer: mean,
                                var_buffer: var,
                                mean: out.mean,
                                var: out.var,
                                count,
                                momentum,
                            });
                            out.y
                        }
                        Mode::Eval => {
                            let store = tape.store();
                            let (rm, rv) = (&store.buffers[mean].value, &store.buffers[var].value);
                            tape.batch_norm_eval(h, g, b, rm, rv, eps)?
                        }
                    }
                }
                Layer::Dropout { p, scaling } => {
                    let p = pass.dropout_p.unwrap_or(p);
                    let scaling = pass.dropout_scaling.unwrap_or(scaling);
                    dropout(tape, h, p, scaling, pass, &node.name)?
                }
                Layer::GlobalAvgPool => tape.global_avg_pool(h)?,
                Layer::MaxUnpool { pool } => tape.max_unpool(h, outs[pool])?,
                Layer::Inception(ref block) => {
                    let a = conv_relu(tape, h, block.b1)?;
                    let b = match block.b3_reduce {
                        Some(r) => conv_relu(tape, h, r)?,
                        None => h,
                    };
                    let b = conv_relu(tape, b, block.b3)?;
                    let c = match block.b5_reduce {
                        Some(r) => conv_relu(tape, h, r)?,
                        None => h,
                    };
                    let c = conv_relu(tape, c, block.b5)?;
                    let three = PoolParams {
                        kernel: 3,
                        stride: 1,
                        padding: 1,
                    };
                    let d = tape.max_pool(h, three)?;
                    let d = conv_relu(tape, d, block.pool_proj)?;
                    tape.concat(&[a, b, c, d])?
                }
                Layer::Concat => tape.concat(&ins)?,
                Layer::Add => tape.add(ins[0], ins[1])?,
            };
            outs.push(y);
        }
        Ok(Forward { outputs: outs, bn })
    }

    /// Folds a training pass's batch statistics into the running ones (PyTorch's update).
    pub fn update_running_stats(backend: &dyn Backend, store: &mut ParamStore, bn: Vec<BnBatch>) -> Result<()> {
        for b in bn {
            let [m, v] = store
                .buffers
                .get_disjoint_mut([b.mean_buffer, b.var_buffer])
                .map_err(|_| Error::Config {
                    field: "buffers",
                    problem: "batch norm running statistics are missing".into(),
                })?;
            backend.batch_norm_update_running(&mut m.value, &mut v.value, &b.mean, &b.var, b.count, b.momentum)?;
        }
        Ok(())
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

// x (N,C,H,W) -> (N,O,OH,OW)
fn conv(tape: &mut Tape, x: Var, c: Conv) -> Result<Var> {
    let (w, b) = (tape.param(c.w), tape.param(c.b));
    tape.conv2d(x, w, b, c.p)
}

fn conv_relu(tape: &mut Tape, x: Var, c: Conv) -> Result<Var> {
    let y = conv(tape, x, c)?;
    tape.activation(y, Activation::Relu)
}

/// Train (and eval with `TestDropout::Masks`): keep each unit with probability 1-p (mask
/// from the pass's RNG), scaled by 1/(1-p) when inverted. Eval: identity when inverted,
/// ×(1-p) when classic; with `TestDropout::NoRescale` that output divided by (1-p).
fn dropout(tape: &mut Tape, x: Var, p: f32, scaling: DropoutScaling, pass: &mut Pass, layer: &str) -> Result<Var> {
    if p == 0.0 {
        return Ok(x);
    }
    let masks = pass.mode == Mode::Train || pass.test_dropout == TestDropout::Masks;
    match (masks, pass.test_dropout, scaling) {
        (false, TestDropout::NoRescale, DropoutScaling::Inverted) => tape.scale(x, 1.0 / (1.0 - p)),
        (false, TestDropout::NoRescale, DropoutScaling::Classic) => Ok(x),
        (false, _, DropoutScaling::Inverted) => Ok(x),
        (false, _, DropoutScaling::Classic) => tape.scale(x, 1.0 - p),
        (true, ..) => {
            let Some(rng) = pass.rng.as_deref_mut() else {
                return Err(Error::Config {
                    field: "mode",
                    problem: format!("dropout layer {layer} with masks on needs a seeded RNG for its mask"),
                });
            };
            let shape = tape.value(x).shape.clone();
            let mask: Vec<f32> = (0..shape.numel())
                .map(|_| if rng.next_f32() >= p { 1.0 } else { 0.0 })
                .collect();
            let mask = tape.backend().upload(shape, &mask)?;
            let scale = match scaling {
                DropoutScaling::Inverted => 1.0 / (1.0 - p),
                DropoutScaling::Classic => 1.0,
            };
            tape.dropout(x, mask, scale)
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;

    /// The naive inception block (`reduce: false`): b3 and b5 read the input's C channels, no
    /// reduction parameters exist, and the forward is the four branches composed by hand.
    #[test]
    fn the_naive_inception_block_has_no_reductions_and_composes_its_branches() {
        let spec = ModelSpec::from_json(
            r#"{"input":[3,6,6],"classes":2,"layers":[
            {"type":"inception","b1":2,"b3_reduce":5,"b3":3,"b5_reduce":7,"b5":2,"pool_proj":1,"reduce":false,"name":"inc"},
            {"type":"flatten"},{"type":"linear","out":2}]}"#,
        )
        .unwrap();
        let be = CpuBackend::new();
        let (model, store) = Model::build(&spec, &be, &mut Rng::new(3)).unwrap();
        let shapes: Vec<(&str, Vec<usize>)> = (store.params.iter())
            .map(|p| (p.name.as_str(), p.value.dims().to_vec()))
            .filter(|(n, _)| n.starts_with("inc."))
            .collect();
        let want: Vec<(&str, Vec<usize>)> = vec![
            ("inc.b1.weight", vec![2, 3, 1, 1]),
            ("inc.b1.bias", vec![2]),
            ("inc.b3.weight", vec![3, 3, 3, 3]),
            ("inc.b3.bias", vec![3]),
            ("inc.b5.weight", vec![2, 3, 5, 5]),
            ("inc.b5.bias", vec![2]),
            ("inc.pool_proj.weight", vec![1, 3, 1, 1]),
            ("inc.pool_proj.bias", vec![1]),
        ];
        assert_eq!(shapes, want);
        let mut rng = Rng::new(5);
        let x: Vec<f32> = (0..2 * 3 * 36).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut tape = Tape::new(&be, &store);
        let xv = tape.input(be.upload(Shape::new(&[2, 3, 6, 6]), &x).unwrap());
        let outs = model.forward(&mut tape, xv, &mut Pass::eval()).unwrap().outputs;
        // by hand: each branch's conv (same padding) + relu on x, the pool branch after a 3×3 max pool
        let id = |name: &str| store.params.iter().position(|p| p.name == name).unwrap();
        let branch = |tape: &mut Tape, input: Var, sub: &str, k: usize| {
            let c = Conv {
                w: id(&format!("inc.{sub}.weight")),
                b: id(&format!("inc.{sub}.bias")),
                p: Conv2dParams {
                    stride: 1,
                    padding: k / 2,
                },
            };
            conv_relu(tape, input, c).unwrap()
        };
        let a = branch(&mut tape, xv, "b1", 1);
        let b = branch(&mut tape, xv, "b3", 3);
        let c = branch(&mut tape, xv, "b5", 5);
        let pool = PoolParams {
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        let pooled = tape.max_pool(xv, pool).unwrap();
        let d = branch(&mut tape, pooled, "pool_proj", 1);
        let want = tape.concat(&[a, b, c, d]).unwrap();
        assert_eq!(tape.value(outs[0]).dims(), &[2, 8, 6, 6]);
        assert_eq!(tape.value(outs[0]).cpu(), tape.value(want).cpu());
    }
}
