//! The tape. Forward calls record one node each, in order; `backward` walks them in reverse
//! and accumulates gradients, one `match` over `Op`. Parameters are persistent leaves that
//! live in a `ParamStore` outside the tape; the tape itself lives for one step.
//!
//! Losses are the roots: each loss op (cross-entropy, point losses, per-pixel
//! cross-entropy, Dice) computes its gradient with respect to its input in the forward
//! call, and `backward_sum` seeds the walk with those gradients, so the gradient of a sum
//! of loss terms is the sum of their gradients with no extra node.

use crate::backend::{Activation, Backend, Conv2dParams, ConvTransposeParams, PointLoss, PoolParams, UpsampleMode};
use crate::error::{shape_err, Result};
use crate::params::ParamStore;
use crate::tensor::{Indices, Shape, Tensor};

/// A value recorded on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(usize);

enum Op {
    /// An input; no gradient flows into it.
    Input,
    /// Parameter `id` of the store; its gradient is handed to the optimizer.
    Param(usize),
    Conv2d {
        x: Var,
        w: Var,
        b: Var,
        p: Conv2dParams,
    },
    ConvTranspose2d {
        x: Var,
        w: Var,
        b: Var,
        p: ConvTransposeParams,
    },
    Linear {
        x: Var,
        w: Var,
        b: Var,
    },
    /// y = f(x); backward reads x and this node's own value y.
    Activation {
        x: Var,
        a: Activation,
    },
    MaxPool {
        x: Var,
        idx: Indices,
    },
    AvgPool {
        x: Var,
        p: PoolParams,
    },
    Upsample {
        x: Var,
        scale: usize,
        mode: UpsampleMode,
    },
    /// Batch normalization; mean and invstd (C) are the statistics the forward normalized
    /// with: the batch's own in training mode (the gradient flows through them), copies of
    /// the running ones in eval mode (held constant).
    BatchNorm {
        x: Var,
        gamma: Var,
        beta: Var,
        mean: Tensor,
        invstd: Tensor,
        training: bool,
    },
    /// y = x·mask·scale; the mask is kept for backward.
    Dropout {
        x: Var,
        mask: Tensor,
        scale: f32,
    },
    /// y = s·x
    Scale {
        x: Var,
        s: f32,
    },
    /// y = a + b
    Add {
        a: Var,
        b: Var,
    },
    /// y = the inputs joined along the channels, in order.
    Concat {
        xs: Vec<Var>,
    },
    GlobalAvgPool {
        x: Var,
    },
    /// y = x scattered through the switches of the max-pool node `pool`.
    MaxUnpool {
        x: Var,
        pool: Var,
    },
    Reshape {
        x: Var,
    },
    /// y = channels start..start+len of x; backward pads dy with zeros to x's channels.
    SliceChannels {
        x: Var,
        start: usize,
        len: usize,
    },
    /// A loss (shape [1]) of `input`, whose gradient d loss/d input was computed in the
    /// forward call: a seed of `backward_sum`.
    Loss {
        input: Var,
        grad: Tensor,
    },
}

struct Node {
    op: Op,
    /// None for parameters, whose value stays in the store.
    value: Option<Tensor>,
    requires_grad: bool,
}

/// Outputs of a classification loss: the loss and the (weighted) count of correct
/// predictions, both shape [1].
pub struct LossOut {
    pub loss: Var,
    pub correct: Tensor,
}

/// What training-mode batch normalization hands its caller: the output on the tape and
/// the batch statistics, mean and biased variance (each (C)), for
/// `Backend::batch_norm_update_running` once the tape is done with the parameter store.
pub struct BatchNormTrain {
    pub y: Var,
    pub mean: Tensor,
    pub var: Tensor,
}

pub struct Tape<'a> {
    backend: &'a dyn Backend,
    params: &'a ParamStore,
    nodes: Vec<Node>,
}

impl<'a> Tape<'a> {
    pub fn new(backend: &'a dyn Backend, params: &'a ParamStore) -> Self {
        Tape {
            backend,
            params,
            nodes: Vec::new(),
        }
    }

    pub fn backend(&self) -> &'a dyn Backend {
        self.backend
    }

    /// The parameter store the tape reads (batch norm's running buffers live there).
    pub fn store(&self) -> &'a ParamStore {
        self.params
    }

    fn push(&mut self, op: Op, value: Option<Tensor>, requires_grad: bool) -> Var {
        self.nodes.push(Node {
            op,
            value,
            requires_grad,
        });
        Var(self.nodes.len() - 1)
    }

    fn needs(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// The value of a recorded variable.
    pub fn value(&self, v: Var) -> &Tensor {
        let node = &self.nodes[v.0];
        match (&node.op, &node.value) {
            (Op::Param(id), _) => &self.params.params[*id].value,
            (_, Some(t)) => t,
            // Every non-parameter node is pushed with a value.
            (_, None) => unreachable!("tape node without a value"),
        }
    }

    /// Ends the tape, keeping the values of `vars` and freeing the rest: a probe keeps a
    /// chunk's outputs this way and reads every chunk's back in one round trip. Parameters
    /// (whose values stay in the store) and a variable listed twice are refused.
    pub fn into_values(mut self, vars: &[Var]) -> Result<Vec<Tensor>> {
        let mut kept = Vec::with_capacity(vars.len());
        for v in vars {
            let Some(value) = self.nodes.get_mut(v.0).and_then(|n| n.value.take()) else {
                return Err(shape_err(
                    "into_values",
                    format!("node {} is a parameter, unknown, or already taken", v.0),
                    &[],
                ));
            };
            kept.push(value);
        }
        Ok(kept)
    }

    pub fn input(&mut self, x: Tensor) -> Var {
        self.push(Op::Input, Some(x), false)
    }

    pub fn param(&mut self, id: usize) -> Var {
        self.push(Op::Param(id), None, true)
    }

    // x (N,C,H,W), w (O,C,K,K), b (O) -> y (N,O,OH,OW)
    pub fn conv2d(&mut self, x: Var, w: Var, b: Var, p: Conv2dParams) -> Result<Var> {
        let y = self.backend.conv2d(self.value(x), self.value(w), self.value(b), p)?;
        let rg = self.needs(x) || self.needs(w) || self.needs(b);
        Ok(self.push(Op::Conv2d { x, w, b, p }, Some(y), rg))
    }

    // x (N,C,H,W), w (C,O,K,K), b (O) -> y (N,O,OH,OW)
    pub fn conv_transpose2d(&mut self, x: Var, w: Var, b: Var, p: ConvTransposeParams) -> Result<Var> {
        let y = self
            .backend
            .conv_transpose2d(self.value(x), self.value(w), self.value(b), p)?;
        let rg = self.needs(x) || self.needs(w) || self.needs(b);
        Ok(self.push(Op::ConvTranspose2d { x, w, b, p }, Some(y), rg))
    }

    // x (N,K), w (O,K), b (O) -> y (N,O)
    pub fn linear(&mut self, x: Var, w: Var, b: Var) -> Result<Var> {
        let y = self.backend.linear(self.value(x), self.value(w), self.value(b))?;
        let rg = self.needs(x) || self.needs(w) || self.needs(b);
        Ok(self.push(Op::Linear { x, w, b }, Some(y), rg))
    }

    // y = f(x), any shape
    pub fn activation(&mut self, x: Var, a: Activation) -> Result<Var> {
        let y = self.backend.activation(self.value(x), a)?;
        let rg = self.needs(x);
        Ok(self.push(Op::Activation { x, a }, Some(y), rg))
    }

    // x (N,C,H,W) -> y (N,C,OH,OW), switches kept for backward
    pub fn max_pool(&mut self, x: Var, p: PoolParams) -> Result<Var> {
        let (y, idx) = self.backend.max_pool2d(self.value(x), p)?;
        let rg = self.needs(x);
        Ok(self.push(Op::MaxPool { x, idx }, Some(y), rg))
    }

    pub fn avg_pool(&mut self, x: Var, p: PoolParams) -> Result<Var> {
        let y = self.backend.avg_pool2d(self.value(x), p)?;
        let rg = self.needs(x);
        Ok(self.push(Op::AvgPool { x, p }, Some(y), rg))
    }

    // x (N,C,H,W) -> y (N,C,H·s,W·s)
    pub fn upsample(&mut self, x: Var, scale: usize, mode: UpsampleMode) -> Result<Var> {
        let y = self.backend.upsample2d(self.value(x), scale, mode)?;
        let rg = self.needs(x);
        Ok(self.push(Op::Upsample { x, scale, mode }, Some(y), rg))
    }

    // x (N,C,H,W) or (N,C), gamma (C), beta (C) -> y (like x), normalized with the batch's
    // statistics. The tape keeps the batch mean and invstd for backward; the caller gets a
    // copy of the mean and the biased variance to update the running statistics with.
    pub fn batch_norm_train(&mut self, x: Var, gamma: Var, beta: Var, eps: f32) -> Result<BatchNormTrain> {
        let out = self
            .backend
            .batch_norm_train(self.value(x), self.value(gamma), self.value(beta), eps)?;
        let mut mean = self.backend.zeros(out.mean.shape.clone())?;
        self.backend.add_assign(&mut mean, &out.mean)?;
        let rg = self.needs(x) || self.needs(gamma) || self.needs(beta);
        let op = Op::BatchNorm {
            x,
            gamma,
            beta,
            mean: out.mean,
            invstd: out.invstd,
            training: true,
        };
        let y = self.push(op, Some(out.y), rg);
        Ok(BatchNormTrain { y, mean, var: out.var })
    }

    // x (N,C,H,W) or (N,C), gamma (C), beta (C) -> y (like x), normalized with the running
    // statistics (C), which are not tape values and get no gradient
    pub fn batch_norm_eval(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f32,
    ) -> Result<Var> {
        let out = self.backend.batch_norm_eval(
            self.value(x),
            self.value(gamma),
            self.value(beta),
            running_mean,
            running_var,
            eps,
        )?;
        let rg = self.needs(x) || self.needs(gamma) || self.needs(beta);
        let op = Op::BatchNorm {
            x,
            gamma,
            beta,
            mean: out.mean,
            invstd: out.invstd,
            training: false,
        };
        Ok(self.push(op, Some(out.y), rg))
    }
    // x, mask (same shape, 0/1) -> y = x·mask·scale: dropout with a mask the caller drew
    // (inverted dropout: scale = 1/(1-p)); the mask is kept for backward
    pub fn dropout(&mut self, x: Var, mask: Tensor, scale: f32) -> Result<Var> {
        let y = self.backend.mul_mask(self.value(x), &mask, scale)?;
        let rg = self.needs(x);
        Ok(self.push(Op::Dropout { x, mask, scale }, Some(y), rg))
    }

    // y = s·x, any shape (classic dropout at evaluation: s = 1-p)
    pub fn scale(&mut self, x: Var, s: f32) -> Result<Var> {
        let y = self.backend.scale(self.value(x), s)?;
        let rg = self.needs(x);
        Ok(self.push(Op::Scale { x, s }, Some(y), rg))
    }

    // a, b (same shape) -> y = a + b (residual and branch sums)
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        let y = self.backend.add(self.value(a), self.value(b))?;
        let rg = self.needs(a) || self.needs(b);
        Ok(self.push(Op::Add { a, b }, Some(y), rg))
    }

    // xs[i] (N,Ci,H,W) -> y (N,ΣCi,H,W), also (N,Ci) -> (N,ΣCi) (inception branches)
    pub fn concat(&mut self, xs: &[Var]) -> Result<Var> {
        let values: Vec<&Tensor> = xs.iter().map(|&x| self.value(x)).collect();
        let y = self.backend.concat_channels(&values)?;
        let rg = xs.iter().any(|&x| self.needs(x));
        Ok(self.push(Op::Concat { xs: xs.to_vec() }, Some(y), rg))
    }

    // x (N,C,H,W) -> y (N,C), the mean of each plane (network in network's head)
    pub fn global_avg_pool(&mut self, x: Var) -> Result<Var> {
        let y = self.backend.global_avg_pool(self.value(x))?;
        let rg = self.needs(x);
        Ok(self.push(Op::GlobalAvgPool { x }, Some(y), rg))
    }

    /// The mask of `v` if it is the output of `dropout` on this tape (1 kept, 0 dropped).
    pub fn dropout_mask(&self, v: Var) -> Option<&Tensor> {
        match &self.nodes.get(v.0)?.op {
            Op::Dropout { mask, .. } => Some(mask),
            _ => None,
        }
    }

    /// The switches of `v` if it is the output of `max_pool` on this tape.
    pub fn pool_indices(&self, v: Var) -> Option<&Indices> {
        match &self.nodes.get(v.0)?.op {
            Op::MaxPool { idx, .. } => Some(idx),
            _ => None,
        }
    }

    // x (N,C,OH,OW) -> y (N,C,H,W): SegNet's decoder unpooling through the switches of the
    // earlier max-pool node `pool`, back to that pool's input shape (N,C,H,W)
    pub fn max_unpool(&mut self, x: Var, pool: Var) -> Result<Var> {
        let Some(Op::MaxPool { x: pool_input, idx }) = self.nodes.get(pool.0).map(|n| &n.op) else {
            return Err(shape_err(
                "max_unpool",
                format!(
                    "the pool argument (node {}) is not the output of a max_pool on this tape",
                    pool.0
                ),
                &[self.value(x).dims()],
            ));
        };
        let y = self
            .backend
            .max_unpool2d(self.value(x), idx, &self.value(*pool_input).shape)?;
        let rg = self.needs(x);
        Ok(self.push(Op::MaxUnpool { x, pool }, Some(y), rg))
    }

    /// Same elements, new shape (flatten). The elements are copied (zeros + x, on the
    /// tensor's own backend) so the input's value stays available to its own backward.
    pub fn reshape(&mut self, x: Var, shape: Shape) -> Result<Var> {
        let src = self.value(x);
        if src.numel() != shape.numel() {
            return Err(shape_err(
                "reshape",
                "element counts differ",
                &[src.dims(), shape.dims()],
            ));
        }
        let mut y = self.backend.zeros(src.shape.clone())?;
        self.backend.add_assign(&mut y, src)?;
        let y = y.reshape(shape)?;
        let rg = self.needs(x);
        Ok(self.push(Op::Reshape { x }, Some(y), rg))
    }

    // x (N,C,H,W) or (N,C) -> y (N,len,H,W) or (N,len): channels start..start+len (a task
    // head's class logits, box channels or objectness)
    pub fn slice_channels(&mut self, x: Var, start: usize, len: usize) -> Result<Var> {
        let y = self.backend.slice_channels(self.value(x), start, len)?;
        let rg = self.needs(x);
        Ok(self.push(Op::SliceChannels { x, start, len }, Some(y), rg))
    }

    /// Records a loss node: its value (shape [1]) and its gradient w.r.t. `input`.
    fn loss_node(&mut self, input: Var, loss: Tensor, grad: Tensor) -> Var {
        let rg = self.needs(input);
        self.push(Op::Loss { input, grad }, Some(loss), rg)
    }

    // logits (N,K), labels (N) -> mean loss [1]
    pub fn cross_entropy(&mut self, logits: Var, labels: &Indices) -> Result<LossOut> {
        let ce = self.backend.softmax_cross_entropy(self.value(logits), labels)?;
        let loss = self.loss_node(logits, ce.loss, ce.dlogits);
        Ok(LossOut {
            loss,
            correct: ce.correct,
        })
    }

    // pred (any), target, weight (same shape, not on the tape) -> loss [1] =
    // scale·Σ w·ℓ(pred, target) (box regression, objectness)
    pub fn point_loss(
        &mut self,
        pred: Var,
        target: &Tensor,
        weight: &Tensor,
        kind: PointLoss,
        scale: f32,
    ) -> Result<Var> {
        let out = self.backend.point_loss(self.value(pred), target, weight, kind, scale)?;
        Ok(self.loss_node(pred, out.loss, out.dpred))
    }

    // logits (N,K,H,W), labels (N,H,W), weight (N,H,W) -> loss [1] = scale·Σ w·CE per
    // pixel, and the weighted count of correct pixels (segmentation, detection classes)
    pub fn ce_map(&mut self, logits: Var, labels: &Indices, weight: &Tensor, scale: f32) -> Result<LossOut> {
        let ce = self.backend.softmax_ce_map(self.value(logits), labels, weight, scale)?;
        let loss = self.loss_node(logits, ce.loss, ce.dlogits);
        Ok(LossOut {
            loss,
            correct: ce.correct,
        })
    }

    // logits (N,K,H,W), labels (N,H,W) -> soft Dice loss [1] over the batch, times scale
    pub fn dice(&mut self, logits: Var, labels: &Indices, scale: f32) -> Result<Var> {
        let out = self.backend.softmax_dice(self.value(logits), labels, scale)?;
        Ok(self.loss_node(logits, out.loss, out.dpred))
    }

    fn accumulate(&self, grads: &mut [Option<Tensor>], v: Var, g: Tensor) -> Result<()> {
        if !self.needs(v) {
            return Ok(());
        }
        match &mut grads[v.0] {
            Some(acc) => self.backend.add_assign(acc, &g),
            slot => {
                *slot = Some(g);
                Ok(())
            }
        }
    }

    /// Walks the tape backwards from `loss` (a loss node, d loss = 1) and returns one
    /// gradient per parameter of the store (None where the loss does not depend on it).
    pub fn backward(self, loss: Var) -> Result<Vec<Option<Tensor>>> {
        self.backward_sum(&[loss])
    }

    /// Backward from the sum of several loss nodes (each a [1] loss made by cross_entropy,
    /// point_loss, ce_map or dice): each listed node seeds its input with the gradient it
    /// computed in forward (a node listed twice counts twice). Returns one gradient per
    /// parameter of the store, None where no listed loss depends on it.
    pub fn backward_sum(mut self, losses: &[Var]) -> Result<Vec<Option<Tensor>>> {
        let be = self.backend;
        for &l in losses {
            if !matches!(self.nodes.get(l.0).map(|n| &n.op), Some(Op::Loss { .. })) {
                return Err(shape_err(
                    "backward",
                    format!("node {} is not a loss (cross_entropy, point_loss, ce_map or dice)", l.0),
                    &[],
                ));
            }
        }
        let mut grads: Vec<Option<Tensor>> = (0..self.nodes.len()).map(|_| None).collect();
        let mut pgrads: Vec<Option<Tensor>> = (0..self.params.params.len()).map(|_| None).collect();
        let last = losses.iter().map(|l| l.0 + 1).max().unwrap_or(0);
        self.nodes.truncate(last);
        while let Some(node) = self.nodes.pop() {
            let i = self.nodes.len();
            let g = grads[i].take();
            match node.op {
                Op::Loss { input, grad } => {
                    let seeds = losses.iter().filter(|l| l.0 == i).count();
                    match seeds {
                        0 => {}
                        1 => self.accumulate(&mut grads, input, grad)?,
                        times => self.accumulate(&mut grads, input, be.scale(&grad, times as f32)?)?,
                    }
                }
                Op::Input => {}
                Op::Param(id) => {
                    if let Some(g) = g {
                        match &mut pgrads[id] {
                            Some(acc) => be.add_assign(acc, &g)?,
                            slot => *slot = Some(g),
                        }
                    }
                }
                Op::Conv2d { x, w, b, p } => {
                    let Some(dy) = g else { continue };
                    if self.needs(x) {
                        let dx = be.conv2d_backward_input(&dy, self.value(w), &self.value(x).shape, p)?;
                        self.accumulate(&mut grads, x, dx)?;
                    }
                    if self.needs(w) || self.needs(b) {
                        let (dw, db) = be.conv2d_backward_weight(&dy, self.value(x), &self.value(w).shape, p)?;
                        self.accumulate(&mut grads, w, dw)?;
                        self.accumulate(&mut grads, b, db)?;
                    }
                }
                Op::ConvTranspose2d { x, w, b, p } => {
                    let Some(dy) = g else { continue };
                    let (dx, dw, db) = be.conv_transpose2d_backward(&dy, self.value(x), self.value(w), p)?;
                    self.accumulate(&mut grads, x, dx)?;
                    self.accumulate(&mut grads, w, dw)?;
                    self.accumulate(&mut grads, b, db)?;
                }
                Op::Linear { x, w, b } => {
                    let Some(dy) = g else { continue };
                    let (dx, dw, db) = be.linear_backward(&dy, self.value(x), self.value(w))?;
                    self.accumulate(&mut grads, x, dx)?;
                    self.accumulate(&mut grads, w, dw)?;
                    self.accumulate(&mut grads, b, db)?;
                }
                Op::Activation { x, a } => {
                    let Some(dy) = g else { continue };
                    let y = node
                        .value
                        .as_ref()
                        .ok_or_else(|| shape_err("activation_backward", "missing forward output", &[]))?;
                    let dx = be.activation_backward(&dy, self.value(x), y, a)?;
                    self.accumulate(&mut grads, x, dx)?;
                }
                Op::MaxPool { x, idx } => {
                    let Some(dy) = g else { continue };
                    let dx = be.max_pool2d_backward(&dy, &idx, &self.value(x).shape)?;
                    self.accumulate(&mut grads, x, dx)?;
                }
                Op::AvgPool { x, p } => {
                    let Some(dy) = g else { continue };
                    let dx = be.avg_pool2d_backward(&dy, &self.value(x).shape, p)?;
                    self.accumulate(&mut grads, x, dx)?;
                }
                Op::Upsample { x, scale, mode } => {
                    let Some(dy) = g else { continue };
                    let dx = be.upsample2d_backward(&dy, &self.value(x).shape, scale, mode)?;
                    self.accumulate(&mut grads, x, dx)?;
                }
                Op::BatchNorm {
                    x,
                    gamma,
                    beta,
                    mean,
                    invstd,
                    training,
                } => {
                    let Some(dy) = g else { continue };
                    let (xv, gv) = (self.value(x), self.value(gamma));
                    let (dx, dgamma, dbeta) = if training {
                        be.batch_norm_train_backward(&dy, xv, gv, &mean, &invstd)?
                    } else {
                        be.batch_norm_eval_backward(&dy, xv, gv, &mean, &invstd)?
                    };
                    self.accumulate(&mut grads, x, dx)?;
                    self.accumulate(&mut grads, gamma, dgamma)?;
                    self.accumulate(&mut grads, beta, dbeta)?;
                }
                Op::Dropout { x, mask, scale } => {
                    let Some(dy) = g else { continue };
                    let dx = be.mul_mask(&dy, &mask, scale)?;
                    self.accumulate(&mut grads, x, dx)?;
                }
                Op::Scale { x, s } => {
                    let Some(dy) = g else { continue };
                    self.accumulate(&mut grads, x, be.scale(&dy, s)?)?;
                }
                Op::Add { a, b } => {
                    let Some(dy) = g else { continue };
                    match (self.needs(a), self.needs(b)) {
                        // both take dy (also when a and b are one variable): a copy, 1·dy, for a
                        (true, true) => {
                            self.accumulate(&mut grads, a, be.scale(&dy, 1.0)?)?;
                            self.accumulate(&mut grads, b, dy)?;
                        }
                        (true, false) => self.accumulate(&mut grads, a, dy)?,
                        (false, _) => self.accumulate(&mut grads, b, dy)?,
                    }
                }
                Op::Concat { xs } => {
                    let Some(dy) = g else { continue };
                    let mut start = 0;
                    for x in xs {
                        let len = self.value(x).dims().get(1).copied().unwrap_or(0);
                        if self.needs(x) {
                            let dx = be.slice_channels(&dy, start, len)?;
                            self.accumulate(&mut grads, x, dx)?;
                        }
                        start += len;
                    }
                }
                Op::GlobalAvgPool { x } => {
                    let Some(dy) = g else { continue };
                    let dx = be.global_avg_pool_backward(&dy, &self.value(x).shape)?;
                    self.accumulate(&mut grads, x, dx)?;
                }
                Op::MaxUnpool { x, pool } => {
                    let Some(dy) = g else { continue };
                    let idx = self
                        .pool_indices(pool)
                        .ok_or_else(|| shape_err("max_unpool", "the max_pool node lost its switches", &[]))?;
                    let dx = be.max_unpool2d_backward(&dy, idx)?;
                    self.accumulate(&mut grads, x, dx)?;
                }
                Op::Reshape { x } => {
                    let Some(dy) = g else { continue };
                    let shape = self.value(x).shape.clone();
                    self.accumulate(&mut grads, x, dy.reshape(shape)?)?;
                }
                Op::SliceChannels { x, start, len } => {
                    // dy (N,len,..) -> dx (N,C,..) = [zeros (N,start,..), dy, zeros (N,rest,..)]
                    let Some(dy) = g else { continue };
                    let dims = self.value(x).dims().to_vec();
                    let zeros = |channels: usize| -> Result<Option<Tensor>> {
                        if channels == 0 {
                            return Ok(None);
                        }
                        let mut d = dims.clone();
                        d[1] = channels;
                        Ok(Some(be.zeros(Shape::new(&d))?))
                    };
                    let (before, after) = (zeros(start)?, zeros(dims[1] - start - len)?);
                    let dx = if before.is_none() && after.is_none() {
                        dy // the whole of x
                    } else {
                        let parts: Vec<&Tensor> = [before.as_ref(), Some(&dy), after.as_ref()]
                            .into_iter()
                            .flatten()
                            .collect();
                        be.concat_channels(&parts)?
                    };
                    self.accumulate(&mut grads, x, dx)?;
                }
            }
        }
        Ok(pgrads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;

    #[test]
    fn max_unpool_needs_a_max_pool_node_and_names_the_op() {
        let be = CpuBackend::new();
        let params = ParamStore::default();
        let mut tape = Tape::new(&be, &params);
        let x = tape.input(be.upload(Shape::new(&[1, 1, 4, 4]), &[1.0; 16]).unwrap());
        let pool = PoolParams {
            kernel: 2,
            stride: 2,
            padding: 0,
        };
        let avg = tape.avg_pool(x, pool).unwrap();
        assert!(tape.pool_indices(avg).is_none());
        let err = tape.max_unpool(avg, avg).expect_err("an avg pool has no switches");
        assert!(err.to_string().starts_with("max_unpool: "), "{err}");

        let max = tape.max_pool(x, pool).unwrap();
        assert_eq!(
            tape.pool_indices(max).map(|i| i.dims().to_vec()),
            Some(vec![1, 1, 2, 2])
        );
        let up = tape.max_unpool(max, max).unwrap();
        assert_eq!(tape.value(up).dims(), [1, 1, 4, 4]);
        // x of the wrong shape for the switches: the backend's error names its op
        let err = tape.max_unpool(x, max).expect_err("x must match the switches");
        assert!(err.to_string().starts_with("max_unpool2d: "), "{err}");
    }

    #[test]
    fn concat_and_add_errors_name_the_op() {
        let be = CpuBackend::new();
        let params = ParamStore::default();
        let mut tape = Tape::new(&be, &params);
        let a = tape.input(be.upload(Shape::new(&[2, 3]), &[0.0; 6]).unwrap());
        let b = tape.input(be.upload(Shape::new(&[3, 2]), &[0.0; 6]).unwrap());
        let err = tape.concat(&[a, b]).expect_err("batch sizes differ");
        assert!(err.to_string().starts_with("concat_channels: "), "{err}");
        let err = tape.add(a, b).expect_err("shapes differ");
        assert!(err.to_string().starts_with("add: "), "{err}");
        let err = tape.global_avg_pool(a).expect_err("needs (N,C,H,W)");
        assert!(err.to_string().starts_with("global_avg_pool: "), "{err}");
        let mask = be.upload(Shape::new(&[3, 2]), &[1.0; 6]).unwrap();
        let err = tape.dropout(a, mask, 2.0).expect_err("mask shape differs");
        assert!(err.to_string().starts_with("mul_mask: "), "{err}");
    }
}
