//! The wasm edge: the only file with `#[wasm_bindgen]`. JavaScript gets an opaque
//! `Playground` handle; small results cross as JSON strings and errors as `Error`s whose
//! message names the problem. Probes that carry images, maps or kernels cross as a typed
//! result: `[header, ...typed arrays]`, where the header is JSON text in which `{"$": i}`
//! stands for the i-th array after it (a `Float32Array` or `Uint32Array`, copied out of
//! wasm memory, so the worker can transfer its buffer). Floats never cross as JSON text.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::data::Mnist;
use crate::error::Error;
use crate::spec::{ModelSpec, ValidSpec};
use crate::trainer::{TrainConfig, Trainer};

fn js(e: Error) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn json<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    serde_json::to_string(v)
        .map(|s| JsValue::from_str(&s))
        .map_err(|e| JsError::new(&format!("serialising a result: {e}")).into())
}

/// Builds a typed result: each `f32` / `u32` call moves an array out beside the header
/// and returns the `{"$": i}` that stands for it there.
#[derive(Default)]
struct Typed {
    arrays: Vec<JsValue>,
}

impl Typed {
    fn slot(&mut self, array: JsValue) -> Value {
        self.arrays.push(array);
        json!({ "$": self.arrays.len() - 1 })
    }
    fn f32(&mut self, data: &[f32]) -> Value {
        self.slot(js_sys::Float32Array::from(data).into())
    }
    fn u32(&mut self, data: &[u32]) -> Value {
        self.slot(js_sys::Uint32Array::from(data).into())
    }
    /// `[header, ...arrays]`.
    fn finish(self, header: &Value) -> JsValue {
        let out = js_sys::Array::new();
        out.push(&JsValue::from_str(&header.to_string()));
        for a in &self.arrays {
            out.push(a);
        }
        out.into()
    }
}

/// {"shape", "data": {"$": i}}: kernels or a layer's output.
fn typed_map(t: &mut Typed, shape: &[usize], data: &[f32]) -> Value {
    json!({ "shape": shape, "data": t.f32(data) })
}

fn busy() -> JsValue {
    JsError::new("the playground is busy with another call; await it first").into()
}

#[wasm_bindgen]
pub struct Playground {
    inner: Rc<RefCell<Trainer>>,
}

#[derive(Serialize)]
struct StepOut<'a> {
    #[serde(flatten)]
    report: &'a crate::trainer::Report,
    ms_per_step: f64,
}

#[wasm_bindgen]
impl Playground {
    /// Resolves to a Playground, or rejects with an Error naming what is wrong with the
    /// spec, the config or the data. `mnist` is the MNIST asset, or empty for data that
    /// does not need it (shapes scenes).
    pub fn create(spec_json: String, config_json: String, mnist: Vec<u8>) -> Promise {
        future_to_promise(async move {
            // validated once, here: the trainer and `summary` use its plan
            let spec = ModelSpec::parse(&spec_json).and_then(ValidSpec::new).map_err(js)?;
            let config = TrainConfig::from_json(&config_json).map_err(js)?;
            let data = if mnist.is_empty() {
                None
            } else {
                Some(Mnist::parse(&mnist).map_err(js)?)
            };
            let trainer = Trainer::create_valid(spec, config, data).await.map_err(js)?;
            Ok(Playground {
                inner: Rc::new(RefCell::new(trainer)),
            }
            .into())
        })
    }

    /// {"backend": "cpu" | "webgpu", "reason": "..."}
    pub fn backend(&self) -> Result<String, JsValue> {
        let t = self.inner.try_borrow().map_err(|_| busy())?;
        Ok(serde_json::json!({ "backend": t.backend_name(), "reason": t.backend_reason() }).to_string())
    }

    /// {"params", "flops", "activations", "layers": [{name, kind, inputs, in_shapes, out,
    /// params, flops}]} of the current model.
    pub fn summary(&self) -> Result<String, JsValue> {
        let t = self.inner.try_borrow().map_err(|_| busy())?;
        let plan = t.plan();
        Ok(serde_json::json!({ "params": plan.params, "flops": plan.flops, "activations": plan.activations, "layers": plan.layers }).to_string())
    }

    /// Trains `n` mini-batches; resolves to the Report as JSON plus `ms_per_step`.
    pub fn step(&self, n: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut t = inner.try_borrow_mut().map_err(|_| busy())?;
            let t0 = js_sys::Date::now();
            let report = t.step(n as usize).await.map_err(js)?;
            let ms = (js_sys::Date::now() - t0) / n.max(1) as f64;
            json(&StepOut {
                report: &report,
                ms_per_step: ms,
            })
        })
    }

    /// Applies lr / batch / optimizer / momentum from the next step; fields left out keep
    /// their values. Throws on bad values, and on seed or backend changes (those need a new run).
    pub fn set_config(&self, config_json: &str) -> Result<(), JsValue> {
        let mut t = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let config = t.config().merged_with_json(config_json).map_err(js)?;
        t.set_config(config).map_err(js)
    }

    pub fn pause(&self) -> Result<(), JsValue> {
        self.inner.try_borrow_mut().map_err(|_| busy())?.pause();
        Ok(())
    }

    /// Validation loss and accuracy on the first `max` examples (0 = all).
    pub fn evaluate(&self, max: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            json(&t.evaluate(max as usize).await.map_err(js)?)
        })
    }

    /// The first conv layer's kernels, typed: {"shape": [O,C,K,K], "data": Float32Array}.
    pub fn filters(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            let f = t.filters().await.map_err(js)?;
            let mut typed = Typed::default();
            let header = typed_map(&mut typed, &f.shape, &f.data);
            Ok(typed.finish(&header))
        })
    }

    /// What the per-layer views show for the layer named `layer` and validation example
    /// `example`, in one round trip, typed: {"layer", "kind", "example", "label", "image":
    /// Float32Array (C·H·W), "activation": {"shape": [C,H,W] | [K], "data": Float32Array}
    /// (at most 64 channels), "filters": {"shape": [O,C,K,K], "data": Float32Array} | null
    /// (conv2d), "params": [{"name", "group", "shape", "stats": {count, zeros, near_zeros,
    /// l2_norm, min, max, histogram: {lo, hi, counts}}}] (this layer's), "all": {count,
    /// zeros, near_zeros} (every conv and linear weight), "bn": {"mean": Float32Array,
    /// "var": Float32Array} | null (batch norm)}.
    pub fn layer_view(&self, layer: String, example: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            let v = t.layer_view(&layer, example as usize).await.map_err(js)?;
            let mut typed = Typed::default();
            let a = &v.activation;
            let header = json!({
                "layer": a.name,
                "kind": a.kind,
                "example": v.example,
                "label": v.label,
                "image": typed.f32(&v.image),
                "activation": typed_map(&mut typed, &a.shape, &a.data),
                "filters": v.filters.map(|f| typed_map(&mut typed, &f.shape, &f.data)),
                "params": v.params,
                "all": v.all,
                "bn": v.bn.map(|b| json!({ "mean": typed.f32(&b.mean), "var": typed.f32(&b.var) })),
            });
            Ok(typed.finish(&header))
        })
    }

    /// Runs the chapter probe `name` (docs/chapters.md, "Probes") with `options_json` (a JSON
    /// object; "" for the defaults) on the fixed probe batch, typed: `[header, ...Float32Array]`,
    /// the header's `{"$": i}` standing for the i-th array. Rejects unknown probes and options,
    /// and probes that do not apply to the model, with an Error naming them.
    pub fn instrument(&self, name: String, options_json: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let options: Value = if options_json.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&options_json)
                    .map_err(|e| JsError::new(&format!("instrument {name}: options are not JSON: {e}")))?
            };
            let t = inner.try_borrow().map_err(|_| busy())?;
            let out = t.instrument(&name, &options).await.map_err(js)?;
            let mut typed = Typed::default();
            for a in &out.arrays {
                typed.f32(a);
            }
            Ok(typed.finish(&out.header))
        })
    }

    /// The weights as safetensors bytes, with PyTorch's names and layouts (a download).
    pub fn export_weights(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            let bytes = t.save_weights().await.map_err(js)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// A PyTorch `model.py` that builds this architecture and loads the exported weights.
    pub fn export_model_py(&self) -> Result<String, JsValue> {
        let t = self.inner.try_borrow().map_err(|_| busy())?;
        crate::nn::export::model_py(t.spec()).map_err(js)
    }

    /// The first `k` validation examples with truth and decoded prediction, typed:
    /// {"task", "input": [C,H,W], "class_names", "examples": [{"image": Float32Array (C·H·W),
    /// "truth": {"label", "boxes": [{"class","bbox"}], "mask"?: Uint32Array}, "pred":
    /// {"label"?, "score"?, "boxes": [{"class","score","bbox"}], "mask"?: Uint32Array,
    /// "fg"?: Float32Array}}]}; detections are after NMS.
    pub fn outputs(&self, k: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            let mut out = t.outputs(k as usize).await.map_err(js)?;
            let mut typed = Typed::default();
            let mut arrays = Vec::with_capacity(out.examples.len());
            for e in &mut out.examples {
                arrays.push((
                    typed.f32(&std::mem::take(&mut e.image)),
                    e.truth.mask.take().map(|m| typed.u32(&m)),
                    e.pred.mask.take().map(|m| typed.u32(&m)),
                    e.pred.fg.take().map(|f| typed.f32(&f)),
                ));
            }
            let mut header =
                serde_json::to_value(&out).map_err(|e| JsError::new(&format!("serialising outputs: {e}")))?;
            let examples = header["examples"].as_array_mut().into_iter().flatten();
            for (e, (image, truth_mask, pred_mask, fg)) in examples.zip(arrays) {
                e["image"] = image;
                for (at, field, slot) in [
                    ("truth", "mask", truth_mask),
                    ("pred", "mask", pred_mask),
                    ("pred", "fg", fg),
                ] {
                    if let Some(slot) = slot {
                        e[at][field] = slot;
                    }
                }
            }
            Ok(typed.finish(&header))
        })
    }

    /// Transfer learning: loads the parameters of a safetensors file whose names and shapes
    /// match, except the output layer's: {"loaded": [names], "skipped": [names]}.
    pub fn load_backbone(&self, bytes: Vec<u8>) -> Result<String, JsValue> {
        let mut t = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let r = t.load_backbone(&bytes).map_err(js)?;
        Ok(serde_json::to_string(&r).unwrap_or_default())
    }

    /// Predictions for `k` validation digits, typed: {"indices": Uint32Array (into the
    /// MNIST asset), "labels": Uint32Array, "preds": Uint32Array, "confidence": Float32Array}.
    pub fn predict(&self, k: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            let p = t.predict(k as usize).await.map_err(js)?;
            let mut typed = Typed::default();
            let header = json!({
                "indices": typed.u32(&p.indices),
                "labels": typed.u32(&p.labels),
                "preds": typed.u32(&p.preds),
                "confidence": typed.f32(&p.confidence),
            });
            Ok(typed.finish(&header))
        })
    }
}

/// Validates a spec without building it: "" when valid, else the error message.
#[wasm_bindgen]
pub fn validate_spec(spec_json: &str) -> String {
    match ModelSpec::from_json(spec_json) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// Validates a spec for the layer editor, reporting every problem at once:
/// `{"ok": bool, "params", "flops", "activations", "layers": [{name, kind, inputs,
/// in_shapes, out, params, flops}], "errors": [{"index": n | null, "message": "..."}]}`.
/// `layers` holds the layers whose shapes could be inferred.
#[wasm_bindgen]
pub fn check_spec(spec_json: &str) -> String {
    crate::spec::check_json(spec_json)
}

/// Every layer kind a spec accepts, for the layer editor and the architecture toggles:
/// `[{"kind", "about", "activation", "params": [{"key", "type": "int" | "number" |
/// "padding" | "enum" | "name", "fallback"?, "initial"?, "values"?}]}]`, in the order the
/// editor lists them (see spec/kinds.rs).
#[wasm_bindgen]
pub fn layer_kinds() -> String {
    crate::spec::kinds::table_json()
}
