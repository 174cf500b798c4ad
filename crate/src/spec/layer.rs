//! One entry of a spec's `layers`: the op (`LayerSpec`, tagged by `type` in JSON) with an
//! optional name and the names of the layers it reads.

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::backend::UpsampleMode;

/// One entry of `layers`: the op, plus an optional name (default: its index, "3") and the
/// names of the layers it reads (default: the layer before it, or the model input).
/// In JSON the two extra keys sit beside `type`: `{"type": "add", "name": "res1",
/// "inputs": ["conv2", "pool1"]}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: Option<String>,
    pub inputs: Option<Vec<String>>,
    pub op: LayerSpec,
}

impl Layer {
    /// A chain layer: unnamed, reading the layer before it.
    pub fn new(op: LayerSpec) -> Layer {
        Layer {
            name: None,
            inputs: None,
            op,
        }
    }
}

impl<'de> Deserialize<'de> for Layer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(d)?;
        let name = match map.remove("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => return Err(D::Error::custom(format!("a layer name must be a string, got {other}"))),
        };
        let inputs = match map.remove("inputs") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                Vec::<String>::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("inputs must be a list of layer names ({e})")))?,
            ),
        };
        let op = LayerSpec::deserialize(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Layer { name, inputs, op })
    }
}

impl Serialize for Layer {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.op).map_err(S::Error::custom)?;
        if let Value::Object(m) = &mut v {
            if let Some(name) = &self.name {
                m.insert("name".into(), Value::String(name.clone()));
            }
            if let Some(inputs) = &self.inputs {
                m.insert("inputs".into(), inputs.clone().into());
            }
        }
        v.serialize(s)
    }
}

/// Zero padding: a number of pixels, or "same" (output size = input size at stride 1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Padding {
    Pixels(usize),
    Named(String),
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Pixels(0)
    }
}

/// How dropout keeps the expected activation: `inverted` scales kept units by 1/(1-p)
/// while training and is the identity at evaluation (PyTorch); `classic` leaves training
/// unscaled and multiplies by 1-p at evaluation (the original paper).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DropoutScaling {
    #[default]
    Inverted,
    Classic,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn is_true(v: &bool) -> bool {
    *v
}
fn two() -> usize {
    2
}
/// PyTorch's default negative slope for `nn.LeakyReLU`.
fn leaky_slope() -> f32 {
    0.01
}
fn half() -> f32 {
    0.5
}
/// PyTorch's BatchNorm defaults.
fn bn_momentum() -> f32 {
    0.1
}
fn bn_eps() -> f32 {
    1e-5
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    Conv2d {
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
    },
    /// PyTorch's `ConvTranspose2d`: OH = (H-1)·stride - 2·padding + kernel + output_padding.
    ConvTranspose2d {
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default)]
        output_padding: usize,
    },
    Linear {
        out: usize,
    },
    Relu {},
    /// y = x for x > 0, slope·x otherwise; slope in [0, 1).
    LeakyRelu {
        #[serde(default = "leaky_slope")]
        slope: f32,
    },
    Tanh {},
    Sigmoid {},
    /// PyTorch's MaxPool2d(size, stride, padding): pads with -inf, floor mode.
    MaxPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// PyTorch's AvgPool2d(size, stride, padding), count_include_pad=True.
    AvgPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// (C,H,W) -> (C): the mean of each map (network in network's head).
    GlobalAvgPool {},
    /// PyTorch's MaxUnpool2d with the switches of the named max_pool layer (SegNet): puts
    /// each value back where that pool found its maximum; output = that pool's input shape.
    MaxUnpool {
        pool: String,
    },
    /// PyTorch's `nn.Upsample(scale_factor=scale, mode=mode)`, align_corners=False.
    Upsample {
        #[serde(default = "two")]
        scale: usize,
        #[serde(default)]
        mode: UpsampleMode,
    },
    /// BatchNorm2d on (C,H,W), BatchNorm1d on (K): batch statistics while training (and an
    /// update of the running ones), running statistics at evaluation.
    BatchNorm {
        #[serde(default = "bn_momentum")]
        momentum: f32,
        #[serde(default = "bn_eps")]
        eps: f32,
    },
    /// Zeroes each unit with probability p while training (seeded mask).
    Dropout {
        #[serde(default = "half")]
        p: f32,
        #[serde(default)]
        scaling: DropoutScaling,
    },
    /// GoogLeNet v1's block: four branches on the same input, concatenated on channels:
    /// 1×1 | 1×1 -> 3×3 | 1×1 -> 5×5 | 3×3 max-pool (stride 1) -> 1×1; each conv + ReLU.
    /// `reduce: false` is Szegedy et al.'s naive block (Fig. 2a): the 3×3 and 5×5 convs apply
    /// straight to the C input channels, and b3_reduce / b5_reduce are ignored.
    Inception {
        b1: usize,
        b3_reduce: usize,
        b3: usize,
        b5_reduce: usize,
        b5: usize,
        pool_proj: usize,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        reduce: bool,
    },
    /// Joins its inputs on the channel axis ((Ci,H,W) or flat (Ki)).
    Concat {},
    /// Sums two inputs of the same shape (residual connections).
    Add {},
    Flatten {},
}

impl LayerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::ConvTranspose2d { .. } => "conv_transpose2d",
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::Relu {} => "relu",
            LayerSpec::LeakyRelu { .. } => "leaky_relu",
            LayerSpec::Tanh {} => "tanh",
            LayerSpec::Sigmoid {} => "sigmoid",
            LayerSpec::MaxPool { .. } => "max_pool",
            LayerSpec::AvgPool { .. } => "avg_pool",
            LayerSpec::GlobalAvgPool {} => "global_avg_pool",
            LayerSpec::MaxUnpool { .. } => "max_unpool",
            LayerSpec::Upsample { .. } => "upsample",
            LayerSpec::BatchNorm { .. } => "batch_norm",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Inception { .. } => "inception",
            LayerSpec::Concat {} => "concat",
            LayerSpec::Add {} => "add",
            LayerSpec::Flatten {} => "flatten",
        }
    }

    /// How many inputs the layer reads: (at least, at most).
    pub(super) fn arity(&self) -> (usize, usize) {
        match self {
            LayerSpec::Concat {} => (2, usize::MAX),
            LayerSpec::Add {} => (2, 2),
            _ => (1, 1),
        }
    }

    /// Padding in pixels for a conv layer; "same" resolves to kernel/2 (odd kernels, stride 1).
    pub fn padding_px(&self) -> Option<usize> {
        match self {
            LayerSpec::Conv2d { kernel, padding, .. } => match padding {
                Padding::Pixels(p) => Some(*p),
                Padding::Named(s) if s == "same" => Some(kernel / 2),
                Padding::Named(s) if s == "valid" => Some(0),
                Padding::Named(_) => None,
            },
            _ => None,
        }
    }
}

/// The convolutions of an inception block on C input channels, as (in, out, kernel), in
/// the order b1, b3_reduce, b3, b5_reduce, b5, pool_proj; without `reduce` (the naive block)
/// the two reductions are absent and b3, b5 read the C input channels.
/// `widths` = [b1, b3_reduce, b3, b5_reduce, b5, pool_proj].
pub fn inception_convs(c: usize, widths: [usize; 6], reduce: bool) -> Vec<(usize, usize, usize)> {
    let [b1, b3_reduce, b3, b5_reduce, b5, pool_proj] = widths;
    if reduce {
        vec![
            (c, b1, 1),
            (c, b3_reduce, 1),
            (b3_reduce, b3, 3),
            (c, b5_reduce, 1),
            (b5_reduce, b5, 5),
            (c, pool_proj, 1),
        ]
    } else {
        vec![(c, b1, 1), (c, b3, 3), (c, b5, 5), (c, pool_proj, 1)]
    }
}
