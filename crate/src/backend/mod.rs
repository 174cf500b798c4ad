//! The op contract. `Backend` is a trait of coarse ops, each forward next to its backward;
//! the CPU backend is the specification and the GPU backend must match it. `Device` picks
//! one at run time, because whether WebGPU exists is only known at run time.

pub mod cpu;
pub mod geometry;
pub mod gpu;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{Indices, Shape, Tensor};
pub use geometry::{
    out_len, pool_window, transposed_out_len, upsample_source, Conv2dParams, ConvTransposeParams, PoolParams,
};

/// Elementwise nonlinearities. Serialized in specs as the layer type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu { slope: f32 },
    Tanh,
    Sigmoid,
}

impl Activation {
    /// The layer type in specs, also used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// How `upsample2d` fills the enlarged grid (PyTorch's `F.interpolate`, align_corners=False).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpsampleMode {
    #[default]
    Nearest,
    Bilinear,
}

impl UpsampleMode {
    pub fn name(&self) -> &'static str {
        match self {
            UpsampleMode::Nearest => "nearest",
            UpsampleMode::Bilinear => "bilinear",
        }
    }
}

/// SGD with momentum, PyTorch's convention: v = momentum·v + g; p -= lr·v.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdHyper {
    pub lr: f32,
    pub momentum: f32,
}

/// Adam (Kingma & Ba), PyTorch's convention. `t` is the 1-based step number used for the
/// bias corrections. `weight_decay` is AdamW's decoupled decay (Loshchilov & Hutter,
/// PyTorch's `torch.optim.AdamW`): p ← p·(1 - lr·weight_decay) before the Adam update; 0 is
/// plain Adam.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamHyper {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub t: u32,
}

impl AdamHyper {
    /// The bias corrections (1 - β1ᵗ, 1 - β2ᵗ); the step count t starts at 1.
    pub fn bias_corrections(&self) -> Result<(f32, f32)> {
        if self.t == 0 {
            return Err(Error::Config {
                field: "adam.t",
                problem: "step count starts at 1".into(),
            });
        }
        let t = self.t as i32;
        Ok((1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t)))
    }
}

/// What softmax cross-entropy returns: the mean loss (shape [1]), its gradient with respect
/// to the logits, (softmax(z) - onehot(y)) / N with shape (N, K), and the number of rows
/// whose argmax equals the label (shape [1], as f32). `softmax_ce_map` returns the same
/// three, weighted and scaled per pixel (see there).
pub struct CrossEntropy {
    pub loss: Tensor,
    pub dlogits: Tensor,
    pub correct: Tensor,
}

/// Elementwise loss kinds for `point_loss`, each ℓ(p, t) of a prediction p and a target t.
/// - `SmoothL1 { beta }`: PyTorch's smooth L1 (Huber / beta): with d = p - t,
///   ℓ = 0.5·d²/beta where |d| < beta, else |d| - 0.5·beta; beta = 0 is plain L1.
/// - `BceWithLogits`: binary cross-entropy of sigmoid(p) against t in [0,1], in the stable
///   form ℓ = max(p,0) - p·t + log(1 + exp(-|p|)) (PyTorch's `binary_cross_entropy_with_logits`).
/// - `Mse`: ℓ = (p - t)².
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PointLoss {
    SmoothL1 { beta: f32 },
    BceWithLogits,
    Mse,
}

impl PointLoss {
    pub fn name(&self) -> &'static str {
        match self {
            PointLoss::SmoothL1 { .. } => "smooth_l1",
            PointLoss::BceWithLogits => "bce_with_logits",
            PointLoss::Mse => "mse",
        }
    }
}

/// A loss value (shape [1]) and its gradient with respect to the prediction (the
/// prediction's shape).
pub struct LossGrad {
    pub loss: Tensor,
    pub dpred: Tensor,
}

/// What a batch normalization forward returns: the output y (same shape as x) and the
/// per-channel statistics it normalized with, each (C): `mean`, the biased variance `var`
/// (divided by n = N·H·W) and `invstd` = 1/sqrt(var + eps). In training mode they are the
/// batch's own; in eval mode copies of the running statistics.
pub struct BatchNormOut {
    pub y: Tensor,
    pub mean: Tensor,
    pub var: Tensor,
    pub invstd: Tensor,
}

/// A boxed future, so that `read` stays callable through `&dyn Backend`.
pub type ReadFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<f32>>> + 'a>>;

/// What `read_many` resolves to: each tensor's values, in the order asked.
pub type ReadManyFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>>> + 'a>>;

/// The op contract. Each `// ---- family ----` section below is one op family, named alike
/// everywhere: `cpu/<family>.rs`, `gpu/<family>.rs`, `shaders/<family>.wgsl` and its entry
/// points `<family>_<variant>`; `geometry.rs` checks the shapes of every op for both backends.
pub trait Backend {
    /// "cpu" or "webgpu".
    fn name(&self) -> &'static str;

    // ---- data movement -------------------------------------------------------------
    fn upload(&self, shape: Shape, data: &[f32]) -> Result<Tensor>;
    fn upload_indices(&self, shape: Shape, data: &[u32]) -> Result<Indices>;
    fn zeros(&self, shape: Shape) -> Result<Tensor>;
    /// Reads a tensor back to the host. On the GPU this submits pending work and maps a
    /// staging buffer asynchronously; it never blocks the browser's thread.
    fn read<'a>(&'a self, x: &'a Tensor) -> ReadFuture<'a>;
    /// Reads several tensors back in one round trip: on the GPU, one copy each into one
    /// staging buffer, one submit and one map (a Report, or everything a probe shows).
    fn read_many<'a>(&'a self, xs: &'a [&'a Tensor]) -> ReadManyFuture<'a>;
    /// Submits work encoded so far (no-op on the CPU).
    fn flush(&self) -> Result<()>;

    // ---- conv2d: convolution and transposed convolution -------------------------------------
    /// x (N,C,H,W), w (O,C,K,K), b (O) -> y (N,O,OH,OW)
    fn conv2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: Conv2dParams) -> Result<Tensor>;
    /// dy (N,O,OH,OW), w (O,C,K,K) -> dx (N,C,H,W) with H, W taken from `x_shape`
    fn conv2d_backward_input(&self, dy: &Tensor, w: &Tensor, x_shape: &Shape, p: Conv2dParams) -> Result<Tensor>;
    /// dy (N,O,OH,OW), x (N,C,H,W) -> (dw (O,C,K,K), db (O)) with K taken from `w_shape`
    fn conv2d_backward_weight(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w_shape: &Shape,
        p: Conv2dParams,
    ) -> Result<(Tensor, Tensor)>;

    /// x (N,C,H,W), w (C,O,K,K) (PyTorch's layout: in, out, kH, kW), b (O) -> y (N,O,OH,OW),
    /// OH = (H-1)·stride - 2·padding + K + output_padding: the adjoint of conv2d, plus a bias
    fn conv_transpose2d(&self, x: &Tensor, w: &Tensor, b: &Tensor, p: ConvTransposeParams) -> Result<Tensor>;
    /// dy (N,O,OH,OW), x (N,C,H,W), w (C,O,K,K) -> (dx (N,C,H,W), dw (C,O,K,K), db (O))
    fn conv_transpose2d_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w: &Tensor,
        p: ConvTransposeParams,
    ) -> Result<(Tensor, Tensor, Tensor)>;

    // ---- linear: fully connected (PyTorch layout: w is (out, in)) ---------------------------
    /// x (N,K), w (O,K), b (O) -> y (N,O) = x·wᵀ + b
    fn linear(&self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor>;
    /// dy (N,O), x (N,K), w (O,K) -> (dx (N,K), dw (O,K), db (O))
    fn linear_backward(&self, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor, Tensor)>;

    // ---- elementwise: activations, dropout masks, scaling, residual add, accumulation -------
    /// y = f(x), any shape
    fn activation(&self, x: &Tensor, a: Activation) -> Result<Tensor>;
    /// dx = dy · f'(x), with f' taken from the input x (relu, leaky relu) or the output y
    /// (tanh: 1 - y², sigmoid: y(1 - y))
    fn activation_backward(&self, dy: &Tensor, x: &Tensor, y: &Tensor, a: Activation) -> Result<Tensor>;
    /// x, mask (same shape, 0/1 drawn by the caller) -> y = x·mask·scale. Inverted dropout
    /// uses scale = 1/(1-p); the op is linear in x, so its backward is dx = mul_mask(dy, mask, scale)
    fn mul_mask(&self, x: &Tensor, mask: &Tensor, scale: f32) -> Result<Tensor>;
    /// x (any) -> y = s·x (classic dropout at evaluation: s = 1-p); backward dx = s·dy
    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor>;
    /// a, b (same shape) -> y = a + b; backward: da = db = dy
    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;
    /// acc += x, same shape (gradient accumulation, running metrics)
    fn add_assign(&self, acc: &mut Tensor, x: &Tensor) -> Result<()>;

    // ---- pool: windows (zero or -inf padding, floor mode), global average, max-unpooling ----
    /// x (N,C,H,W) -> (y (N,C,OH,OW), argmax indices (N,C,OH,OW) into each unpadded H·W
    /// plane); the first maximum of a window wins, a NaN beats any number (as in PyTorch)
    fn max_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<(Tensor, Indices)>;
    /// dy (N,C,OH,OW), indices -> dx (N,C,H,W): each dy routed to its argmax
    fn max_pool2d_backward(&self, dy: &Tensor, idx: &Indices, x_shape: &Shape) -> Result<Tensor>;
    /// x (N,C,H,W) -> y (N,C,OH,OW), sum of each window (padding counts as 0) over K²
    fn avg_pool2d(&self, x: &Tensor, p: PoolParams) -> Result<Tensor>;
    /// dy (N,C,OH,OW) -> dx (N,C,H,W): each dy/K² added to the cells of its window
    fn avg_pool2d_backward(&self, dy: &Tensor, x_shape: &Shape, p: PoolParams) -> Result<Tensor>;
    /// x (N,C,H,W) -> y (N,C), the mean of each H·W plane (AdaptiveAvgPool2d(1) + flatten)
    fn global_avg_pool(&self, x: &Tensor) -> Result<Tensor>;
    /// dy (N,C) -> dx (N,C,H,W) = dy/(H·W) on every cell of the plane
    fn global_avg_pool_backward(&self, dy: &Tensor, x_shape: &Shape) -> Result<Tensor>;
    /// x (N,C,OH,OW), idx (N,C,OH,OW) (max-pool switches into each H·W plane) ->
    /// y (N,C,H,W) = `out_shape`: zeros except y[plane, idx] = x (PyTorch's MaxUnpool2d).
    /// Where switches collide, the last x in row-major order wins (PyTorch's CPU loop).
    fn max_unpool2d(&self, x: &Tensor, idx: &Indices, out_shape: &Shape) -> Result<Tensor>;
    /// dy (N,C,H,W), idx (N,C,OH,OW) -> dx (N,C,OH,OW) = dy[plane, idx], a gather (PyTorch's
    /// backward: every x whose switch points at a cell gets that cell's dy, collisions too)
    fn max_unpool2d_backward(&self, dy: &Tensor, idx: &Indices) -> Result<Tensor>;

    // ---- concat: channel concat and its backward, the channel slice -------------------------
    /// xs[i] (N,Ci,H,W) -> y (N,ΣCi,H,W), in order along the channels; also (N,Ci) -> (N,ΣCi)
    fn concat_channels(&self, xs: &[&Tensor]) -> Result<Tensor>;
    /// x (N,C,H,W) -> y (N,len,H,W) = channels start..start+len (also (N,C) -> (N,len));
    /// concat's backward: dxs[i] = slice_channels(dy, ΣC<i, Ci)
    fn slice_channels(&self, x: &Tensor, start: usize, len: usize) -> Result<Tensor>;

    // ---- upsample: integer scale ------------------------------------------------------------
    /// x (N,C,H,W) -> y (N,C,H·s,W·s), nearest or bilinear (align_corners=False)
    fn upsample2d(&self, x: &Tensor, scale: usize, mode: UpsampleMode) -> Result<Tensor>;
    /// dy (N,C,H·s,W·s) -> dx (N,C,H,W): each dy shared among the inputs it was read from
    fn upsample2d_backward(&self, dy: &Tensor, x_shape: &Shape, scale: usize, mode: UpsampleMode) -> Result<Tensor>;

    // ---- batch_norm: PyTorch's BatchNorm2d on (N,C,H,W), BatchNorm1d on (N,C) -----------------
    // Statistics run over n = N·H·W values per channel ((N,C) counts as H = W = 1);
    // xhat = (x - mean)·invstd, y = gamma·xhat + beta, gamma and beta (C).
    /// x (N,C,H,W) or (N,C), gamma (C), beta (C) -> y (like x) normalized with the batch's
    /// mean and biased variance (training mode), and those statistics. Needs n ≥ 2.
    fn batch_norm_train(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<BatchNormOut>;
    /// dy (like x), x, gamma (C), mean (C), invstd (C) -> (dx (like x), dgamma (C), dbeta (C)),
    /// through the batch statistics: dbeta = Σ dy, dgamma = Σ dy·xhat,
    /// dx = gamma·invstd·(dy - dbeta/n - xhat·dgamma/n)
    fn batch_norm_train_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)>;
    /// x (N,C,H,W) or (N,C), gamma, beta, running_mean, running_var (C) -> y (like x)
    /// normalized with the running statistics (eval mode); mean and var are copies of them
    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f32,
    ) -> Result<BatchNormOut>;
    /// dy (like x), x, gamma (C), mean (C), invstd (C) of the eval forward -> (dx (like x),
    /// dgamma (C), dbeta (C)), the statistics held constant: dx = dy·gamma·invstd,
    /// dgamma = Σ dy·xhat, dbeta = Σ dy
    fn batch_norm_eval_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)>;
    /// running_mean, running_var, mean, var (all (C)), `count` = n ≥ 2 values per channel
    /// behind the batch statistics -> the running statistics updated in place:
    /// running = (1 - momentum)·running + momentum·batch, with the variance made unbiased
    /// first (var·n/(n-1)), as PyTorch does
    fn batch_norm_update_running(
        &self,
        running_mean: &mut Tensor,
        running_var: &mut Tensor,
        mean: &Tensor,
        var: &Tensor,
        count: usize,
        momentum: f32,
    ) -> Result<()>;

    // ---- loss -------------------------------------------------------------------------------
    /// logits (N,K), labels (N) -> mean cross-entropy of softmax(logits), its gradient and
    /// the count of correct argmax predictions
    fn softmax_cross_entropy(&self, logits: &Tensor, labels: &Indices) -> Result<CrossEntropy>;
    /// pred, target, weight (same shape, any) -> loss (1) = scale·Σ_i w_i·ℓ(pred_i, target_i)
    /// and dpred = scale·w·∂ℓ/∂pred (see `PointLoss` for ℓ; smooth L1's gradient is
    /// d/beta inside the band, sign(d) outside, 0 at d = 0 for beta = 0; BCE's is
    /// sigmoid(p) - t; MSE's 2·(p - t))
    fn point_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        weight: &Tensor,
        kind: PointLoss,
        scale: f32,
    ) -> Result<LossGrad>;
    /// logits (N,K,H,W), labels (N,H,W) in 0..K, weight (N,H,W) -> per-pixel softmax
    /// cross-entropy over the K channels, summed: loss (1) = scale·Σ_pixels w·CE,
    /// dlogits (N,K,H,W) = scale·w·(softmax - onehot), correct (1) = Σ_pixels w·[argmax = label]
    /// (the first maximum wins). Also logits (N,K) with labels and weight (N): H = W = 1.
    fn softmax_ce_map(&self, logits: &Tensor, labels: &Indices, weight: &Tensor, scale: f32) -> Result<CrossEntropy>;
    /// logits (N,K,H,W), labels (N,H,W) in 0..K -> soft Dice over the whole batch, with
    /// p = softmax over K and sums over N,H,W: I_k = Σ p_k·[y=k], P_k = Σ p_k, Y_k = Σ [y=k];
    /// loss (1) = scale·(1 - (1/K)·Σ_k (2·I_k + 1)/(P_k + Y_k + 1)), dpred = d loss/d logits
    /// (N,K,H,W). Also logits (N,K) with labels (N).
    fn softmax_dice(&self, logits: &Tensor, labels: &Indices, scale: f32) -> Result<LossGrad>;

    // ---- optim: optimizer steps -------------------------------------------------------------
    /// p, g, v same shape; updates p and the momentum buffer v in place
    fn sgd_step(&self, p: &mut Tensor, g: &Tensor, v: &mut Tensor, h: SgdHyper) -> Result<()>;
    /// p, g, m, v same shape; updates p and both moment buffers in place (AdamW when
    /// h.weight_decay > 0: p is first scaled by 1 - lr·weight_decay)
    fn adam_step(&self, p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, h: AdamHyper) -> Result<()>;

    // ---- regularize: L1/L2 penalties (nn/regularize.rs picks the parameters) ----------------
    /// w (any), acc (1): acc += l1·Σ|w| + (l2/2)·Σw²  (the penalty term added to the loss)
    fn l1_l2_penalty(&self, w: &Tensor, l1: f32, l2: f32, acc: &mut Tensor) -> Result<()>;
    /// g, w same shape: g += l1·sign(w) + l2·w, the penalty's gradient, with sign(0) = 0
    /// (torch.sign; l2·w is PyTorch's coupled `weight_decay = l2`)
    fn l1_l2_grad(&self, g: &mut Tensor, w: &Tensor, l1: f32, l2: f32) -> Result<()>;
    /// w (any), in place: w = sign(w)·max(|w| - t, 0), the soft threshold (proximal step of
    /// t·|w|, PyTorch's `F.softshrink(w, t)`): weights within t of zero become exactly zero
    fn soft_threshold(&self, w: &mut Tensor, t: f32) -> Result<()>;
}

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// WebGPU when a hardware adapter exists; the CPU otherwise (and for software adapters).
    #[default]
    Auto,
    Cpu,
    /// Force the GPU path (WebGPU in the browser, Vulkan natively), even on a software adapter.
    #[serde(alias = "gpu")]
    Webgpu,
}

/// The backend that runs, picked at run time.
pub enum Device {
    Cpu(cpu::CpuBackend),
    Gpu(gpu::GpuBackend),
}

impl Device {
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Device::Cpu(b) => b,
            Device::Gpu(b) => b,
        }
    }
}

/// A device together with why it was chosen, for the badge in the page and the CLI line.
pub struct Selected {
    pub device: Device,
    pub reason: String,
}

/// Picks the backend for `choice`. Never fails: without a usable GPU it falls back to the
/// CPU and says why.
pub async fn select(choice: BackendChoice) -> Selected {
    let cpu = |reason: String| Selected {
        device: Device::Cpu(cpu::CpuBackend::new()),
        reason,
    };
    if choice == BackendChoice::Cpu {
        return cpu("CPU chosen".into());
    }
    let gpu = match gpu::GpuBackend::request().await {
        Ok(g) => g,
        Err(e) => return cpu(format!("no usable GPU ({e}); running on the CPU")),
    };
    let info = gpu.adapter_summary();
    if choice == BackendChoice::Auto && gpu.is_software() {
        return cpu(format!(
            "the GPU adapter is a software fallback ({info}), far slower than the CPU path; running on the CPU"
        ));
    }
    // Pipelines are built here, once, so that no training step creates one; a shader the
    // device rejects sends us to the CPU now rather than mid-run.
    if let Err(e) = gpu.warm_up() {
        return cpu(format!("the GPU ({info}) rejected a shader ({e}); running on the CPU"));
    }
    let why = if choice == BackendChoice::Webgpu {
        "GPU chosen"
    } else {
        "hardware GPU found"
    };
    Selected {
        device: Device::Gpu(gpu),
        reason: format!("{why}: {info}"),
    }
}
