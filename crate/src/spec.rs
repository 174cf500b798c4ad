//! The model spec: the JSON that the page and the CLI both speak. A model is data; it is
//! validated (shapes inferred layer by layer) before anything runs, and every error names
//! the layer index, the problem and the shapes.

use serde::{Deserialize, Serialize};

use crate::backend::{out_len, transposed_out_len, ConvTransposeParams, UpsampleMode};
use crate::error::{Error, Result};

/// Models larger than this are refused before any memory is allocated.
pub const MAX_PARAMS: usize = 20_000_000;
/// Activation floats per example summed over layers, refused above this.
pub const MAX_ACTIVATIONS: usize = 20_000_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// (C, H, W) of one example.
    pub input: [usize; 3],
    pub classes: usize,
    pub layers: Vec<LayerSpec>,
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

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
/// PyTorch's default negative slope for `nn.LeakyReLU`.
fn leaky_slope() -> f32 {
    0.01
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
    MaxPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
    },
    AvgPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
    },
    /// PyTorch's `nn.Upsample(scale_factor=scale, mode=mode)`, align_corners=False.
    Upsample {
        #[serde(default = "two")]
        scale: usize,
        #[serde(default)]
        mode: UpsampleMode,
    },
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
            LayerSpec::Upsample { .. } => "upsample",
            LayerSpec::Flatten {} => "flatten",
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

/// What validation learns: per layer the (input, output) shape of one example, and totals.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub shapes: Vec<(Vec<usize>, Vec<usize>)>,
    pub params: usize,
    /// Multiply-adds of one forward pass of one example, times two.
    pub flops: usize,
}

impl ModelSpec {
    pub fn from_json(text: &str) -> Result<ModelSpec> {
        let spec: ModelSpec = serde_json::from_str(text).map_err(|e| Error::Parse {
            what: "model spec",
            message: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Infers every layer's shapes; refuses anything that cannot run.
    pub fn validate(&self) -> Result<Plan> {
        let top = |problem: String| Error::Spec {
            index: 0,
            kind: "input".into(),
            problem,
            input_shape: None,
        };
        if self.input.contains(&0) {
            return Err(top(format!("input shape {:?} has a zero dimension", self.input)));
        }
        if self.classes < 2 {
            return Err(top(format!("classes must be at least 2, got {}", self.classes)));
        }
        if self.layers.is_empty() {
            return Err(top("the model has no layers".into()));
        }
        let mut shape = self.input.to_vec();
        let mut plan = Plan {
            shapes: Vec::new(),
            params: 0,
            flops: 0,
        };
        let mut activations = 0usize;
        for (index, layer) in self.layers.iter().enumerate() {
            let err = |problem: String| Error::Spec {
                index,
                kind: layer.kind().into(),
                problem,
                input_shape: Some(shape.clone()),
            };
            let out = match layer {
                LayerSpec::Conv2d {
                    out, kernel, stride, ..
                } => {
                    let &[c, h, w] = shape.as_slice() else {
                        return Err(err("needs a (C,H,W) input; it cannot follow flatten or linear".into()));
                    };
                    if *out == 0 || *kernel == 0 || *stride == 0 {
                        return Err(err(format!(
                            "out ({out}), kernel ({kernel}) and stride ({stride}) must be at least 1"
                        )));
                    }
                    let pad = layer
                        .padding_px()
                        .ok_or_else(|| err("padding must be a number of pixels, \"same\" or \"valid\"".into()))?;
                    if matches!(layer, LayerSpec::Conv2d { padding: Padding::Named(s), .. } if s == "same")
                        && (kernel % 2 == 0 || *stride != 1)
                    {
                        return Err(err(format!(
                            "\"same\" padding needs an odd kernel and stride 1 (kernel {kernel}, stride {stride})"
                        )));
                    }
                    if pad >= *kernel {
                        return Err(err(format!("padding {pad} must be smaller than the kernel {kernel}")));
                    }
                    let (Some(oh), Some(ow)) = (out_len(h, *kernel, *stride, pad), out_len(w, *kernel, *stride, pad))
                    else {
                        return Err(err(format!(
                            "kernel {kernel} (padding {pad}) is larger than the {h}×{w} input"
                        )));
                    };
                    plan.params += out * c * kernel * kernel + out;
                    plan.flops += 2 * out * oh * ow * c * kernel * kernel;
                    vec![*out, oh, ow]
                }
                LayerSpec::ConvTranspose2d {
                    out,
                    kernel,
                    stride,
                    padding,
                    output_padding,
                } => {
                    let &[c, h, w] = shape.as_slice() else {
                        return Err(err("needs a (C,H,W) input; it cannot follow flatten or linear".into()));
                    };
                    if *out == 0 || *kernel == 0 || *stride == 0 {
                        return Err(err(format!(
                            "out ({out}), kernel ({kernel}) and stride ({stride}) must be at least 1"
                        )));
                    }
                    if output_padding >= stride {
                        return Err(err(format!(
                            "output_padding {output_padding} must be smaller than stride {stride}"
                        )));
                    }
                    let p = ConvTransposeParams {
                        stride: *stride,
                        padding: *padding,
                        output_padding: *output_padding,
                    };
                    let (Some(oh), Some(ow)) = (transposed_out_len(h, *kernel, p), transposed_out_len(w, *kernel, p))
                    else {
                        return Err(err(format!(
                            "padding {padding} leaves no output for the {h}×{w} input (kernel {kernel}, stride {stride})"
                        )));
                    };
                    plan.params += c * out * kernel * kernel + out;
                    plan.flops += 2 * c * h * w * out * kernel * kernel;
                    vec![*out, oh, ow]
                }
                LayerSpec::Linear { out } => {
                    let &[k] = shape.as_slice() else {
                        return Err(err("needs a flat input: add a flatten layer before it".into()));
                    };
                    if *out == 0 {
                        return Err(err("out must be at least 1".into()));
                    }
                    plan.params += out * k + out;
                    plan.flops += 2 * out * k;
                    vec![*out]
                }
                LayerSpec::Relu {} | LayerSpec::Tanh {} | LayerSpec::Sigmoid {} => shape.clone(),
                LayerSpec::LeakyRelu { slope } => {
                    if !slope.is_finite() || !(0.0..1.0).contains(slope) {
                        return Err(err(format!("slope {slope} must be a finite number in [0, 1)")));
                    }
                    shape.clone()
                }
                LayerSpec::MaxPool { size, stride } | LayerSpec::AvgPool { size, stride } => {
                    let &[c, h, w] = shape.as_slice() else {
                        return Err(err("needs a (C,H,W) input".into()));
                    };
                    let s = stride.unwrap_or(*size);
                    if *size == 0 || s == 0 {
                        return Err(err(format!("size ({size}) and stride ({s}) must be at least 1")));
                    }
                    let (Some(oh), Some(ow)) = (out_len(h, *size, s, 0), out_len(w, *size, s, 0)) else {
                        return Err(err(format!("window {size} is larger than the {h}×{w} input")));
                    };
                    vec![c, oh, ow]
                }
                LayerSpec::Upsample { scale, .. } => {
                    let &[c, h, w] = shape.as_slice() else {
                        return Err(err("needs a (C,H,W) input".into()));
                    };
                    if *scale == 0 {
                        return Err(err(format!("scale ({scale}) must be at least 1")));
                    }
                    vec![c, h * scale, w * scale]
                }
                LayerSpec::Flatten {} => vec![shape.iter().product()],
            };
            activations = activations.saturating_add(out.iter().product());
            if plan.params > MAX_PARAMS {
                return Err(err(format!(
                    "the model needs {} parameters so far, over the budget of {MAX_PARAMS}",
                    plan.params
                )));
            }
            if activations > MAX_ACTIVATIONS {
                return Err(err(format!(
                    "activations reach {activations} values per example, over the budget of {MAX_ACTIVATIONS}"
                )));
            }
            plan.shapes.push((shape.clone(), out.clone()));
            shape = out;
        }
        if shape != [self.classes] {
            let index = self.layers.len() - 1;
            return Err(Error::Spec {
                index,
                kind: self.layers[index].kind().into(),
                problem: format!(
                    "the model must end in {} class scores, but outputs {:?}",
                    self.classes, shape
                ),
                input_shape: plan.shapes.last().map(|s| s.0.clone()),
            });
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layers: &str) -> std::result::Result<ModelSpec, Error> {
        ModelSpec::from_json(&format!(r#"{{"input":[1,28,28],"classes":10,"layers":{layers}}}"#))
    }

    #[test]
    fn standard_net_validates_with_shapes_and_counts() {
        let s = spec(
            r#"[{"type":"conv2d","out":8,"kernel":5,"padding":"same"},{"type":"relu"},{"type":"max_pool"},
            {"type":"conv2d","out":16,"kernel":5,"padding":"same"},{"type":"relu"},{"type":"max_pool"},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        let plan = s.validate().unwrap();
        assert_eq!(plan.shapes[5].1, vec![16, 7, 7]);
        assert_eq!(plan.params, (8 * 25 + 8) + (16 * 8 * 25 + 16) + (784 * 10 + 10));
    }

    #[test]
    fn activation_layers_validate_and_leaky_slope_defaults() {
        let s = spec(
            r#"[{"type":"tanh"},{"type":"sigmoid"},{"type":"leaky_relu"},{"type":"leaky_relu","slope":0.2},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        assert_eq!(s.layers[2], LayerSpec::LeakyRelu { slope: 0.01 });
        assert_eq!(s.layers[3], LayerSpec::LeakyRelu { slope: 0.2 });
        assert_eq!(s.validate().unwrap().shapes[3].1, vec![1, 28, 28]);
        assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn conv_transpose_layer_validates_with_pytorch_shapes() {
        let s = spec(
            r#"[{"type":"conv_transpose2d","out":8,"kernel":3,"stride":2,"padding":1,"output_padding":1},
            {"type":"conv_transpose2d","out":2,"kernel":2},{"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        let plan = s.validate().unwrap();
        // (28-1)·2 - 2 + 3 + 1 = 56, then (56-1)·1 + 2 = 57
        assert_eq!(plan.shapes[0].1, vec![8, 56, 56]);
        assert_eq!(plan.shapes[1].1, vec![2, 57, 57]);
        assert_eq!(plan.params, (8 * 9 + 8) + (8 * 2 * 4 + 2) + (2 * 57 * 57 * 10 + 10));
        assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn upsample_layer_validates_and_defaults_to_nearest() {
        let s = spec(
            r#"[{"type":"upsample"},{"type":"upsample","scale":3,"mode":"bilinear"},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
        )
        .unwrap();
        assert_eq!(
            s.layers[0],
            LayerSpec::Upsample {
                scale: 2,
                mode: UpsampleMode::Nearest
            }
        );
        assert_eq!(s.validate().unwrap().shapes[1].1, vec![1, 168, 168]);
        assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn every_error_names_the_layer_and_problem() {
        let cases = [
            (
                r#"[{"type":"linear","out":10}]"#,
                "layer 0 (linear): needs a flat input",
            ),
            (
                r#"[{"type":"conv2d","out":4,"kernel":40}, {"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (conv2d): kernel 40",
            ),
            (
                r#"[{"type":"conv2d","out":4,"kernel":4,"padding":"same"}]"#,
                "odd kernel",
            ),
            (
                r#"[{"type":"conv2d","out":4,"kernel":3,"padding":"wide"}]"#,
                "padding must be",
            ),
            (r#"[{"type":"conv2d","out":0,"kernel":3}]"#, "must be at least 1"),
            (
                r#"[{"type":"flatten"},{"type":"max_pool"}]"#,
                "layer 1 (max_pool): needs a (C,H,W)",
            ),
            (
                r#"[{"type":"flatten"},{"type":"conv2d","out":2,"kernel":3}]"#,
                "layer 1 (conv2d): needs a (C,H,W)",
            ),
            (r#"[{"type":"max_pool","size":30}]"#, "window 30"),
            (
                r#"[{"type":"flatten"},{"type":"linear","out":7}]"#,
                "must end in 10 class scores",
            ),
            (
                r#"[{"type":"flatten"},{"type":"linear","out":100000},{"type":"linear","out":10}]"#,
                "over the budget",
            ),
            (
                r#"[{"type":"dense","out":3}]"#,
                "invalid model spec: unknown variant `dense`",
            ),
            (r#"[{"type":"relu","alpha":3}]"#, "unknown field `alpha`"),
            (r#"[{"type":"tanh","alpha":3}]"#, "unknown field `alpha`"),
            (r#"[{"type":"sigmoid","slope":0.1}]"#, "unknown field `slope`"),
            (r#"[{"type":"leaky_relu","alpha":3}]"#, "unknown field `alpha`"),
            (
                r#"[{"type":"leaky_relu","slope":1.5},{"type":"flatten"},{"type":"linear","out":10}]"#,
                "layer 0 (leaky_relu): slope 1.5 must be",
            ),
            (
                r#"[{"type":"flatten"},{"type":"leaky_relu","slope":-0.1},{"type":"linear","out":10}]"#,
                "layer 1 (leaky_relu): slope -0.1 must be",
            ),
            (
                r#"[{"type":"conv_transpose2d","out":2,"kernel":3,"stride":2,"output_padding":2}]"#,
                "layer 0 (conv_transpose2d): output_padding 2 must be smaller than stride 2",
            ),
            (
                r#"[{"type":"conv_transpose2d","out":2,"kernel":3,"padding":20}]"#,
                "layer 0 (conv_transpose2d): padding 20 leaves no output for the 28×28 input",
            ),
            (
                r#"[{"type":"conv_transpose2d","out":0,"kernel":3}]"#,
                "layer 0 (conv_transpose2d): out (0), kernel (3) and stride (1) must be at least 1",
            ),
            (
                r#"[{"type":"flatten"},{"type":"conv_transpose2d","out":2,"kernel":3}]"#,
                "layer 1 (conv_transpose2d): needs a (C,H,W)",
            ),
            (
                r#"[{"type":"upsample","scale":0}]"#,
                "layer 0 (upsample): scale (0) must be at least 1",
            ),
            (r#"[{"type":"upsample","mode":"bicubic"}]"#, "unknown variant `bicubic`"),
            (
                r#"[{"type":"flatten"},{"type":"upsample"}]"#,
                "layer 1 (upsample): needs a (C,H,W)",
            ),
            (r#"[]"#, "no layers"),
        ];
        for (layers, want) in cases {
            let e = spec(layers).expect_err(layers).to_string();
            assert!(e.contains(want), "{layers}: got {e:?}, want {want:?}");
        }
        let e = ModelSpec::from_json("{not json").unwrap_err().to_string();
        assert!(e.starts_with("invalid model spec"), "{e}");
        let e = ModelSpec::from_json(r#"{"input":[0,28,28],"classes":10,"layers":[{"type":"flatten"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero dimension"), "{e}");
    }
}
