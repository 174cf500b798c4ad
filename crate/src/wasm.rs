//! The wasm edge: the only file with `#[wasm_bindgen]`. JavaScript gets an opaque
//! `Playground` handle; small results cross as JSON strings and errors as `Error`s whose
//! message names the problem.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
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

    /// The first conv layer's kernels: {"shape": [O,C,K,K], "data": [...]}.
    pub fn filters(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            json(&t.filters().await.map_err(js)?)
        })
    }

    /// Every layer's output for validation example `example`:
    /// {"example", "label", "image": [...], "layers": [{"name", "kind", "shape", "data"}]}.
    pub fn activations(&self, example: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            json(&t.activations(example as usize).await.map_err(js)?)
        })
    }

    /// The kernels of the conv2d layer with this name (the first conv when ""):
    /// {"shape": [O,C,K,K], "data": [...]}.
    pub fn layer_filters(&self, layer: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            json(&t.layer_filters(&layer).await.map_err(js)?)
        })
    }

    /// {"params": [{"name", "group", "shape", "stats": {count, zeros, near_zeros, l2_norm,
    /// min, max, histogram: {lo, hi, counts}}}], "batch_norm": [{"layer", "mean", "var"}]}
    pub fn weights(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            json(&t.weights().await.map_err(js)?)
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

    /// The first `k` validation examples with truth and decoded prediction:
    /// {"task", "input": [C,H,W], "class_names", "examples": [{"image": [C·H·W], "truth":
    /// {"label", "boxes": [{"class","bbox"}], "mask"?}, "pred": {"label"?, "score"?, "boxes":
    /// [{"class","score","bbox"}], "mask"?, "fg"?}}]}; detections are after NMS.
    pub fn outputs(&self, k: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            json(&t.outputs(k as usize).await.map_err(js)?)
        })
    }

    /// Transfer learning: loads the parameters of a safetensors file whose names and shapes
    /// match, except the output layer's: {"loaded": [names], "skipped": [names]}.
    pub fn load_backbone(&self, bytes: Vec<u8>) -> Result<String, JsValue> {
        let mut t = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let r = t.load_backbone(&bytes).map_err(js)?;
        Ok(serde_json::to_string(&r).unwrap_or_default())
    }

    /// Predictions for `k` validation digits: indices into the asset, labels, preds, confidence.
    pub fn predict(&self, k: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let t = inner.try_borrow().map_err(|_| busy())?;
            json(&t.predict(k as usize).await.map_err(js)?)
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
