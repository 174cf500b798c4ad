//! Inside the model: kernels, activations, weight statistics and batch norm's running
//! statistics. `layer_view` gathers what the page's per-layer views show for one layer and
//! one example; the whole-model probes (`activations`, `weights`) gather everything. Each
//! reads what it needs in one round trip.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::nn::{Layer, Param, ParamKind, Pass};
use crate::probe::{weight_stats, WeightStats};
use crate::tasks::data::Example;
use crate::tensor::Tensor;
use crate::trainer::Trainer;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Filters {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// One parameter tensor's statistics for the page's histogram and zero-share readouts.
#[derive(Clone, Debug, Serialize)]
pub struct ParamStats {
    pub name: String,
    /// "conv" | "linear" | "bias" | "bn"
    pub group: &'static str,
    pub shape: Vec<usize>,
    pub stats: WeightStats,
}

/// A batch norm layer's running statistics.
#[derive(Clone, Debug, Serialize)]
pub struct BnStats {
    pub layer: String,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Weights {
    pub params: Vec<ParamStats>,
    pub batch_norm: Vec<BnStats>,
}

/// Upper bound on the channels an activation probe returns per layer (the page shows a grid).
pub const MAX_PROBE_CHANNELS: usize = 64;

/// One layer's output for one example: (C,H,W) or (K), at most `MAX_PROBE_CHANNELS` channels.
#[derive(Clone, Debug, Serialize)]
pub struct LayerActivation {
    pub name: String,
    pub kind: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Every layer's output for one validation example (the page's activation maps).
#[derive(Clone, Debug, Serialize)]
pub struct Activations {
    /// Position in the validation split.
    pub example: usize,
    pub label: u32,
    /// The input image, H·W floats in [0, 1].
    pub image: Vec<f32>,
    pub layers: Vec<LayerActivation>,
}

/// Exact zeros and near zeros (|w| < NEAR_ZERO) among `count` weights.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ZeroShare {
    pub count: usize,
    pub zeros: usize,
    pub near_zeros: usize,
}

/// What the page's per-layer views show for one layer and one validation example.
#[derive(Clone, Debug)]
pub struct LayerView {
    /// Position in the validation split.
    pub example: usize,
    pub label: u32,
    /// The input image, (C,H,W) in [0, 1].
    pub image: Vec<f32>,
    /// The layer's output for the example.
    pub activation: LayerActivation,
    /// The kernels (O, C, K, K) of a conv2d layer.
    pub filters: Option<Filters>,
    /// Statistics of the layer's own parameters, in store order.
    pub params: Vec<ParamStats>,
    /// Over every conv and linear weight of the model.
    pub all: ZeroShare,
    /// The running statistics of a batch norm layer.
    pub bn: Option<BnStats>,
}

/// The page's name for a parameter's kind.
fn group(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::ConvWeight => "conv",
        ParamKind::LinearWeight => "linear",
        ParamKind::Bias => "bias",
        ParamKind::BnWeight | ParamKind::BnBias => "bn",
    }
}

fn param_stats(p: &Param, stats: WeightStats) -> ParamStats {
    ParamStats {
        name: p.name.clone(),
        group: group(p.kind),
        shape: p.value.dims().to_vec(),
        stats,
    }
}

impl Trainer {
    /// The first convolution's kernels, (O, C, K, K).
    pub async fn filters(&self) -> Result<Filters> {
        let Some(id) = self.model().first_conv_weight() else {
            return Ok(Filters {
                shape: vec![],
                data: vec![],
            });
        };
        let w = &self.params().params[id].value;
        Ok(Filters {
            shape: w.dims().to_vec(),
            data: self.backend().read(w).await?,
        })
    }

    /// The kernels of the conv2d layer named `layer` (O, C, K, K); the first conv when empty.
    pub async fn layer_filters(&self, layer: &str) -> Result<Filters> {
        if layer.is_empty() {
            return self.filters().await;
        }
        let w = self.kernel_of(layer)?.ok_or_else(|| Error::Config {
            field: "layer",
            problem: format!("layer {layer:?} is not a conv2d layer, so it has no filters to draw"),
        })?;
        let w = &self.params().params[w].value;
        Ok(Filters {
            shape: w.dims().to_vec(),
            data: self.backend().read(w).await?,
        })
    }

    /// Runs validation example `example` through the model and returns every layer's output.
    pub async fn activations(&self, example: usize) -> Result<Activations> {
        let (x, tape, outs) = self.forward_example(example)?;
        let refs: Vec<&Tensor> = outs.iter().map(|v| tape.value(*v)).collect();
        let read = self.backend().read_many(&refs).await?;
        let layers = (refs.iter().zip(read).enumerate())
            .map(|(i, (t, data))| self.layer_activation(i, t, data))
            .collect();
        Ok(Activations {
            example,
            label: x.label,
            image: x.image.clone(),
            layers,
        })
    }

    /// Every parameter's statistics (histogram, exact and near zeros, norm) and every batch
    /// norm layer's running statistics.
    pub async fn weights(&self) -> Result<Weights> {
        let params = &self.params().params;
        let bn: Vec<(&str, &Tensor, &Tensor)> = self.bn_pairs().collect();
        let mut refs: Vec<&Tensor> = params.iter().map(|p| &p.value).collect();
        refs.extend(bn.iter().flat_map(|(_, m, v)| [*m, *v]));
        let mut read = self.backend().read_many(&refs).await?;
        let mut running = read.split_off(params.len().min(read.len())).into_iter();
        Ok(Weights {
            params: params
                .iter()
                .zip(&read)
                .map(|(p, data)| param_stats(p, weight_stats(data)))
                .collect(),
            batch_norm: (bn.iter())
                .map(|(layer, ..)| BnStats {
                    layer: layer.to_string(),
                    mean: running.next().unwrap_or_default(),
                    var: running.next().unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// What the per-layer views show for the layer named `layer` and validation example
    /// `example`, in one round trip: its output, its kernels (conv2d), its parameters'
    /// statistics, the model's zero share and its running statistics (batch norm).
    pub async fn layer_view(&self, layer: &str, example: usize) -> Result<LayerView> {
        let i = self.node_index(layer)?;
        let kernel = self.kernel_of(layer)?;
        let (x, tape, outs) = self.forward_example(example)?;
        let out = outs.get(i).map(|v| tape.value(*v)).ok_or_else(|| Error::Config {
            field: "layer",
            problem: format!("layer {layer:?} recorded no output"),
        })?;
        let params = &self.params().params;
        let prefix = format!("{layer}.");
        let own: Vec<usize> = (0..params.len())
            .filter(|&id| params[id].name.starts_with(&prefix))
            .collect();
        let weights: Vec<usize> = (0..params.len())
            .filter(|&id| matches!(params[id].kind, ParamKind::ConvWeight | ParamKind::LinearWeight))
            .collect();
        let mut ids = [own.as_slice(), weights.as_slice()].concat();
        ids.sort_unstable();
        ids.dedup();
        let bn = self.bn_pairs().find(|(name, ..)| *name == layer);

        // one read: the output, each parameter needed (once), then the running statistics
        let mut refs = vec![out];
        refs.extend(ids.iter().map(|&id| &params[id].value));
        refs.extend(bn.iter().flat_map(|(_, m, v)| [*m, *v]));
        let mut read = self.backend().read_many(&refs).await?;
        let mut running = read.split_off((1 + ids.len()).min(read.len())).into_iter();
        let mut read = read.into_iter();
        let activation = self.layer_activation(i, out, read.next().unwrap_or_default());
        let values: BTreeMap<usize, Vec<f32>> = ids.iter().copied().zip(read).collect();
        let stats: BTreeMap<usize, WeightStats> = values.iter().map(|(&id, data)| (id, weight_stats(data))).collect();
        let stats_of = |id: &usize| stats.get(id).cloned().unwrap_or_else(|| weight_stats(&[]));
        let all = weights
            .iter()
            .map(stats_of)
            .fold(ZeroShare::default(), |acc, s| ZeroShare {
                count: acc.count + s.count,
                zeros: acc.zeros + s.zeros,
                near_zeros: acc.near_zeros + s.near_zeros,
            });
        Ok(LayerView {
            example,
            label: x.label,
            image: x.image.clone(),
            activation,
            filters: kernel.map(|id| Filters {
                shape: params[id].value.dims().to_vec(),
                data: values.get(&id).cloned().unwrap_or_default(),
            }),
            params: own.iter().map(|id| param_stats(&params[*id], stats_of(id))).collect(),
            all,
            bn: bn.map(|(name, ..)| BnStats {
                layer: name.to_string(),
                mean: running.next().unwrap_or_default(),
                var: running.next().unwrap_or_default(),
            }),
        })
    }

    /// Validation example `example` through the model in eval mode: the example, the tape
    /// and every layer's output on it (not yet read back).
    fn forward_example(&self, example: usize) -> Result<(&Example, Tape<'_>, Vec<Var>)> {
        let val = &self.data().val;
        let Some(x) = val.get(example) else {
            return Err(Error::Config {
                field: "example",
                problem: format!(
                    "{example} is out of range: the validation split has {} examples",
                    val.len()
                ),
            });
        };
        let be = self.backend();
        let input = be.upload(self.input_shape(1), &x.image)?;
        let mut tape = Tape::new(be, self.params());
        let xv = tape.input(input);
        let outs = self.model().forward(&mut tape, xv, &mut Pass::eval())?.outputs;
        Ok((x, tape, outs))
    }

    /// Layer `i`'s output `t` with its values, cut to `MAX_PROBE_CHANNELS` channels.
    fn layer_activation(&self, i: usize, t: &Tensor, mut data: Vec<f32>) -> LayerActivation {
        let mut shape = t.dims()[1..].to_vec();
        if shape.len() == 3 && shape[0] > MAX_PROBE_CHANNELS {
            shape[0] = MAX_PROBE_CHANNELS;
            data.truncate(shape.iter().product());
        }
        LayerActivation {
            name: self.model().nodes[i].name.clone(),
            kind: self.spec().layers[i].op.kind(),
            shape,
            data,
        }
    }

    /// The position of the layer named `layer`, or an error listing the names.
    fn node_index(&self, layer: &str) -> Result<usize> {
        let nodes = &self.model().nodes;
        nodes.iter().position(|n| n.name == layer).ok_or_else(|| {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            Error::Config {
                field: "layer",
                problem: format!("no layer named {layer:?}; the model has {names:?}"),
            }
        })
    }

    /// The store id of the kernel of the layer named `layer`, None unless it is a conv2d.
    fn kernel_of(&self, layer: &str) -> Result<Option<usize>> {
        Ok(match self.model().nodes[self.node_index(layer)?].layer {
            Layer::Conv2d { w, .. } => Some(w),
            _ => None,
        })
    }

    /// Each batch norm layer's name with its running mean and variance.
    fn bn_pairs(&self) -> impl Iterator<Item = (&str, &Tensor, &Tensor)> {
        self.params().buffers.chunks(2).filter_map(|pair| {
            let [m, v] = pair else { return None };
            Some((m.name.strip_suffix(".running_mean")?, &m.value, &v.value))
        })
    }
}
