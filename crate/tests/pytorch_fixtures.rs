//! Every op, forward and backward, against PyTorch.
//!
//! The references live in `tests/fixtures/*.json` (format documented at the top of
//! `tests/fixtures/gen_fixtures.py`, which generated them with fixed seeds). Each case runs
//! through the `Backend` trait on the CPU backend and, when an adapter exists, on the GPU
//! backend. Tolerance, per element: |got - ref| <= 1e-4 · max(1, |ref|).
//!
//! Native only: the fixtures are read from the file system.
#![cfg(not(target_arch = "wasm32"))]

use std::error::Error;
use std::path::PathBuf;

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::{
    Activation, AdamHyper, Backend, Conv2dParams, ConvTransposeParams, PointLoss, PoolParams, SgdHyper, UpsampleMode,
};
use cnn_playground::tensor::{Indices, Shape, Tensor};
use serde_json::Value;

const TOL: f32 = 1e-4;

type CaseResult = Result<(), Box<dyn Error>>;

// ---- fixtures ---------------------------------------------------------------------------

/// A reference tensor from a fixture: row-major data and its shape.
struct Ref<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T> Ref<T> {
    fn shape(&self) -> Shape {
        Shape::new(&self.shape)
    }
}

fn load_cases(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let root: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {} is not valid JSON: {e}", path.display()));
    let cases = root["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("fixture {} has no \"cases\" array", path.display()))
        .clone();
    assert!(!cases.is_empty(), "fixture {} has no cases", path.display());
    cases
}

fn name(case: &Value) -> String {
    case["name"].as_str().expect("case without a name").to_string()
}

fn int(case: &Value, key: &str) -> usize {
    case[key]
        .as_u64()
        .unwrap_or_else(|| panic!("case {}: missing integer {key:?}", name(case))) as usize
}

fn float(v: &Value, key: &str) -> f32 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("missing number {key:?} in {v}")) as f32
}

fn shape_of(v: &Value, what: &str) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap_or_else(|| panic!("tensor {what:?} has no shape"))
        .iter()
        .map(|d| d.as_u64().expect("shape entries are integers") as usize)
        .collect()
}

fn tensor_of(v: &Value, what: &str) -> Ref<f32> {
    let shape = shape_of(v, what);
    let data: Vec<f32> = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("tensor {what:?} has no data"))
        .iter()
        .map(|x| x.as_f64().expect("float data") as f32)
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "tensor {what:?}: data length"
    );
    Ref { shape, data }
}

fn fref(case: &Value, key: &str) -> Ref<f32> {
    tensor_of(&case[key], &format!("{}.{key}", name(case)))
}

fn iref(case: &Value, key: &str) -> Ref<u32> {
    let v = &case[key];
    let shape = shape_of(v, key);
    let data: Vec<u32> = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("case {}: {key:?} has no data", name(case)))
        .iter()
        .map(|x| x.as_u64().expect("integer data") as u32)
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{key:?}: data length");
    Ref { shape, data }
}

// ---- backends ---------------------------------------------------------------------------

/// The CPU backend, and the GPU backend when an adapter exists.
fn backends() -> Vec<Box<dyn Backend>> {
    let mut all: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new())];
    match pollster::block_on(GpuBackend::request()) {
        Ok(gpu) => {
            println!("GPU: {}", gpu.adapter_summary());
            all.push(Box::new(gpu));
        }
        Err(e) => println!("GPU: skipped, no adapter: {e}"),
    }
    all
}

fn up(b: &dyn Backend, r: &Ref<f32>) -> Result<Tensor, Box<dyn Error>> {
    Ok(b.upload(r.shape(), &r.data)?)
}

fn up_idx(b: &dyn Backend, r: &Ref<u32>) -> Result<Indices, Box<dyn Error>> {
    Ok(b.upload_indices(r.shape(), &r.data)?)
}

// ---- comparison -----------------------------------------------------------------------------

/// Collects every mismatch of one op family on one backend, then fails once with all of them.
struct Checker {
    op: &'static str,
    backend: &'static str,
    failures: Vec<String>,
    compared: usize,
}

impl Checker {
    fn new(op: &'static str, backend: &'static str) -> Self {
        Checker {
            op,
            backend,
            failures: Vec::new(),
            compared: 0,
        }
    }

    fn fail(&mut self, case: &str, msg: String) {
        self.failures
            .push(format!("{} [{}] case {case}: {msg}", self.op, self.backend));
    }

    /// Runs one case; an op error counts as a failure of that case.
    fn run(&mut self, case: &str, f: impl FnOnce(&mut Self) -> CaseResult) {
        if let Err(e) = f(self) {
            self.fail(case, format!("op returned an error: {e}"));
        }
    }

    /// Reads `t` back and compares it with `want`, element by element.
    fn tensor(&mut self, b: &dyn Backend, case: &str, what: &str, t: &Tensor, want: &Ref<f32>) -> CaseResult {
        if t.dims() != want.shape.as_slice() {
            self.fail(case, format!("{what}: shape {:?}, want {:?}", t.dims(), want.shape));
            return Ok(());
        }
        let got = pollster::block_on(b.read(t))?;
        self.values(case, what, &got, want);
        Ok(())
    }

    fn values(&mut self, case: &str, what: &str, got: &[f32], want: &Ref<f32>) {
        self.compared += 1;
        if got.len() != want.data.len() {
            self.fail(
                case,
                format!("{what}: read {} values, want {}", got.len(), want.data.len()),
            );
            return;
        }
        let mut worst: Option<(usize, f32)> = None; // (index, error / allowed)
        let mut over = 0;
        for (i, (&g, &r)) in got.iter().zip(&want.data).enumerate() {
            let allowed = TOL * r.abs().max(1.0);
            let ratio = (g - r).abs() / allowed;
            let ratio = if ratio.is_nan() { f32::INFINITY } else { ratio }; // NaN is bad
            let bad = ratio > 1.0;
            if bad {
                over += 1;
            }
            if bad && worst.is_none_or(|(_, w)| ratio > w) {
                worst = Some((i, ratio));
            }
        }
        if let Some((i, _)) = worst {
            let (g, r) = (got[i], want.data[i]);
            self.fail(
                case,
                format!(
                    "{what}: {over} of {} elements off; worst at {:?} (flat {i}): got {g:e}, \
                     want {r:e}, |diff| {:e} > tol {:e}",
                    got.len(),
                    unravel(i, &want.shape),
                    (g - r).abs(),
                    TOL * r.abs().max(1.0),
                ),
            );
        }
    }

    fn indices(&mut self, case: &str, what: &str, idx: &Indices, want: &Ref<u32>) {
        self.compared += 1;
        if idx.dims() != want.shape.as_slice() {
            self.fail(case, format!("{what}: shape {:?}, want {:?}", idx.dims(), want.shape));
            return;
        }
        let Some(got) = idx.cpu() else {
            return; // no read-back for indices on the GPU; dx checks them indirectly
        };
        let wrong: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want.data[i]).collect();
        if let Some(&i) = wrong.first() {
            self.fail(
                case,
                format!(
                    "{what}: {} of {} differ; first at {:?}: got {}, want {}",
                    wrong.len(),
                    got.len(),
                    unravel(i, &want.shape),
                    got[i],
                    want.data[i]
                ),
            );
        }
    }

    /// Prints a summary line and hands back the failures.
    fn finish(self) -> Vec<String> {
        println!(
            "{} [{}]: {} comparisons, {} failures",
            self.op,
            self.backend,
            self.compared,
            self.failures.len()
        );
        self.failures
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut at = vec![0; shape.len()];
    for (a, &d) in at.iter_mut().zip(shape).rev() {
        *a = i % d.max(1);
        i /= d.max(1);
    }
    at
}

/// Runs `each` for every case of `file` on every backend; fails with every mismatch.
fn check_all(op: &'static str, file: &str, each: fn(&dyn Backend, &Value, &str, &mut Checker) -> CaseResult) {
    let cases = load_cases(file);
    let mut failures = Vec::new();
    for b in backends() {
        let mut chk = Checker::new(op, b.name());
        for case in &cases {
            let n = name(case);
            chk.run(&n, |chk| each(b.as_ref(), case, &n, chk));
        }
        failures.extend(chk.finish());
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

// ---- ops --------------------------------------------------------------------------------------

fn conv2d_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let p = Conv2dParams {
        stride: int(case, "stride"),
        padding: int(case, "padding"),
    };
    let (x, w, bias, dy) = (fref(case, "x"), fref(case, "w"), fref(case, "b"), fref(case, "dy"));
    let (xt, wt, bt, dyt) = (up(b, &x)?, up(b, &w)?, up(b, &bias)?, up(b, &dy)?);

    let y = b.conv2d(&xt, &wt, &bt, p)?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let dx = b.conv2d_backward_input(&dyt, &wt, &x.shape(), p)?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))?;
    let (dw, db) = b.conv2d_backward_weight(&dyt, &xt, &w.shape(), p)?;
    chk.tensor(b, n, "dw", &dw, &fref(case, "dw"))?;
    chk.tensor(b, n, "db", &db, &fref(case, "db"))
}

fn conv_transpose2d_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let p = ConvTransposeParams {
        stride: int(case, "stride"),
        padding: int(case, "padding"),
        output_padding: int(case, "output_padding"),
    };
    let (x, w, bias, dy) = (fref(case, "x"), fref(case, "w"), fref(case, "b"), fref(case, "dy"));
    let (xt, wt, bt, dyt) = (up(b, &x)?, up(b, &w)?, up(b, &bias)?, up(b, &dy)?);

    let y = b.conv_transpose2d(&xt, &wt, &bt, p)?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let (dx, dw, db) = b.conv_transpose2d_backward(&dyt, &xt, &wt, p)?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))?;
    chk.tensor(b, n, "dw", &dw, &fref(case, "dw"))?;
    chk.tensor(b, n, "db", &db, &fref(case, "db"))
}

fn upsample_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let mode = match case["mode"].as_str() {
        Some("nearest") => UpsampleMode::Nearest,
        Some("bilinear") => UpsampleMode::Bilinear,
        other => panic!("case {n}: unknown upsample mode {other:?}"),
    };
    let scale = int(case, "scale");
    let (x, dy) = (fref(case, "x"), fref(case, "dy"));
    let y = b.upsample2d(&up(b, &x)?, scale, mode)?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let dx = b.upsample2d_backward(&up(b, &dy)?, &x.shape(), scale, mode)?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))
}

fn batch_norm_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let (eps, momentum) = (float(case, "eps"), float(case, "momentum"));
    let x = fref(case, "x");
    let (rm, rv) = (fref(case, "running_mean"), fref(case, "running_var"));
    let (xt, gamma, beta, dy) = (
        up(b, &x)?,
        up(b, &fref(case, "gamma"))?,
        up(b, &fref(case, "beta"))?,
        up(b, &fref(case, "dy"))?,
    );
    let (mut rmt, mut rvt) = (up(b, &rm)?, up(b, &rv)?);
    match case["mode"].as_str() {
        Some("train") => {
            let out = b.batch_norm_train(&xt, &gamma, &beta, eps)?;
            chk.tensor(b, n, "y", &out.y, &fref(case, "y"))?;
            chk.tensor(b, n, "mean", &out.mean, &fref(case, "mean"))?;
            chk.tensor(b, n, "var", &out.var, &fref(case, "var"))?;
            let (dx, dgamma, dbeta) = b.batch_norm_train_backward(&dy, &xt, &gamma, &out.mean, &out.invstd)?;
            chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))?;
            chk.tensor(b, n, "dgamma", &dgamma, &fref(case, "dgamma"))?;
            chk.tensor(b, n, "dbeta", &dbeta, &fref(case, "dbeta"))?;
            let count = x.data.len() / x.shape[1]; // N·H·W
            b.batch_norm_update_running(&mut rmt, &mut rvt, &out.mean, &out.var, count, momentum)?;
            chk.tensor(b, n, "running_mean after", &rmt, &fref(case, "running_mean_after"))?;
            chk.tensor(b, n, "running_var after", &rvt, &fref(case, "running_var_after"))
        }
        Some("eval") => {
            let out = b.batch_norm_eval(&xt, &gamma, &beta, &rmt, &rvt, eps)?;
            chk.tensor(b, n, "y", &out.y, &fref(case, "y"))?;
            chk.tensor(b, n, "mean (the running mean)", &out.mean, &rm)?;
            chk.tensor(b, n, "var (the running var)", &out.var, &rv)?;
            let (dx, dgamma, dbeta) = b.batch_norm_eval_backward(&dy, &xt, &gamma, &out.mean, &out.invstd)?;
            chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))?;
            chk.tensor(b, n, "dgamma", &dgamma, &fref(case, "dgamma"))?;
            chk.tensor(b, n, "dbeta", &dbeta, &fref(case, "dbeta"))
        }
        other => panic!("case {n}: unknown batch norm mode {other:?}"),
    }
}

fn pool_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let p = PoolParams {
        kernel: int(case, "kernel"),
        stride: int(case, "stride"),
        padding: int(case, "padding"),
    };
    let (x, dy) = (fref(case, "x"), fref(case, "dy"));
    let (xt, dyt) = (up(b, &x)?, up(b, &dy)?);
    let (want_y, want_dx) = (fref(case, "y"), fref(case, "dx"));
    match case["kind"].as_str() {
        Some("max") => {
            let want_idx = iref(case, "indices");
            let (y, idx) = b.max_pool2d(&xt, p)?;
            chk.tensor(b, n, "y", &y, &want_y)?;
            chk.indices(n, "indices", &idx, &want_idx);
            // Backward from the backend's own indices (the only check of them on the GPU)...
            let dx = b.max_pool2d_backward(&dyt, &idx, &x.shape())?;
            chk.tensor(b, n, "dx (own indices)", &dx, &want_dx)?;
            // ...and from PyTorch's, so a wrong forward cannot hide a wrong backward.
            let ref_idx = up_idx(b, &want_idx)?;
            let dx = b.max_pool2d_backward(&dyt, &ref_idx, &x.shape())?;
            chk.tensor(b, n, "dx (reference indices)", &dx, &want_dx)
        }
        Some("avg") => {
            let y = b.avg_pool2d(&xt, p)?;
            chk.tensor(b, n, "y", &y, &want_y)?;
            let dx = b.avg_pool2d_backward(&dyt, &x.shape(), p)?;
            chk.tensor(b, n, "dx", &dx, &want_dx)
        }
        other => panic!("case {n}: unknown pool kind {other:?}"),
    }
}

fn dropout_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let scale = float(case, "scale");
    let (xt, dyt) = (up(b, &fref(case, "x"))?, up(b, &fref(case, "dy"))?);
    let (y, dx) = match case["kind"].as_str() {
        // the op is its own backward: dx = dy · mask · scale
        Some("inverted") => {
            let mask = up(b, &fref(case, "mask"))?;
            (b.mul_mask(&xt, &mask, scale)?, b.mul_mask(&dyt, &mask, scale)?)
        }
        Some("classic_eval") => (b.scale(&xt, scale)?, b.scale(&dyt, scale)?),
        other => panic!("case {n}: unknown dropout kind {other:?}"),
    };
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))
}

fn add_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let (at, bt) = (up(b, &fref(case, "a"))?, up(b, &fref(case, "b"))?);
    let y = b.add(&at, &bt)?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    // backward passes dy to both inputs (a copy for one: 1·dy, as the tape does)
    let dy = up(b, &fref(case, "dy"))?;
    chk.tensor(b, n, "da", &b.scale(&dy, 1.0)?, &fref(case, "da"))?;
    chk.tensor(b, n, "db", &dy, &fref(case, "db"))
}

/// In-place accumulation against the same reference: acc = a; acc += b is PyTorch's
/// `a.add_(b)`, equal to the fixture's a + b.
fn add_assign_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let (mut acc, x) = (up(b, &fref(case, "a"))?, up(b, &fref(case, "b"))?);
    b.add_assign(&mut acc, &x)?;
    chk.tensor(b, n, "y", &acc, &fref(case, "y"))
}

fn concat_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let list = |key: &str| -> Vec<Ref<f32>> {
        let items = case[key]
            .as_array()
            .unwrap_or_else(|| panic!("case {n}: no {key:?} list"));
        items.iter().map(|v| tensor_of(v, key)).collect()
    };
    let xs = list("xs");
    let xts = xs.iter().map(|x| up(b, x)).collect::<Result<Vec<_>, _>>()?;
    let y = b.concat_channels(&xts.iter().collect::<Vec<_>>())?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let dy = up(b, &fref(case, "dy"))?;
    let mut start = 0;
    for (i, (x, want)) in xs.iter().zip(&list("dxs")).enumerate() {
        let dx = b.slice_channels(&dy, start, x.shape[1])?;
        chk.tensor(b, n, &format!("dx{i}"), &dx, want)?;
        start += x.shape[1];
    }
    Ok(())
}

fn global_avg_pool_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let x = fref(case, "x");
    let y = b.global_avg_pool(&up(b, &x)?)?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let dx = b.global_avg_pool_backward(&up(b, &fref(case, "dy"))?, &x.shape())?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))
}

fn max_unpool_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let out_shape: Vec<usize> = case["out_shape"]
        .as_array()
        .unwrap_or_else(|| panic!("case {n}: no out_shape"))
        .iter()
        .map(|d| d.as_u64().expect("out_shape entries are integers") as usize)
        .collect();
    let idx = up_idx(b, &iref(case, "indices"))?;
    let y = b.max_unpool2d(&up(b, &fref(case, "x"))?, &idx, &Shape::new(&out_shape))?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let dx = b.max_unpool2d_backward(&up(b, &fref(case, "dy"))?, &idx)?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))
}

fn linear_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let (x, w, bias, dy) = (fref(case, "x"), fref(case, "w"), fref(case, "b"), fref(case, "dy"));
    let (xt, wt, bt, dyt) = (up(b, &x)?, up(b, &w)?, up(b, &bias)?, up(b, &dy)?);
    let y = b.linear(&xt, &wt, &bt)?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let (dx, dw, db) = b.linear_backward(&dyt, &xt, &wt)?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))?;
    chk.tensor(b, n, "dw", &dw, &fref(case, "dw"))?;
    chk.tensor(b, n, "db", &db, &fref(case, "db"))
}

fn activation_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let a = match case["kind"].as_str() {
        Some("relu") => Activation::Relu,
        Some("leaky_relu") => Activation::LeakyRelu {
            slope: float(case, "slope"),
        },
        Some("tanh") => Activation::Tanh,
        Some("sigmoid") => Activation::Sigmoid,
        other => panic!("case {n}: unknown activation kind {other:?}"),
    };
    let (xt, dyt) = (up(b, &fref(case, "x"))?, up(b, &fref(case, "dy"))?);
    let y = b.activation(&xt, a)?;
    chk.tensor(b, n, "y", &y, &fref(case, "y"))?;
    let dx = b.activation_backward(&dyt, &xt, &y, a)?;
    chk.tensor(b, n, "dx", &dx, &fref(case, "dx"))
}

fn cross_entropy_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let logits = up(b, &fref(case, "logits"))?;
    let labels = up_idx(b, &iref(case, "labels"))?;
    let ce = b.softmax_cross_entropy(&logits, &labels)?;
    chk.tensor(b, n, "loss", &ce.loss, &fref(case, "loss"))?;
    chk.tensor(b, n, "dlogits", &ce.dlogits, &fref(case, "dlogits"))?;
    chk.tensor(b, n, "correct", &ce.correct, &fref(case, "correct"))
}

fn point_loss_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let kind = match case["kind"].as_str() {
        Some("smooth_l1") => PointLoss::SmoothL1 {
            beta: float(case, "beta"),
        },
        Some("bce_with_logits") => PointLoss::BceWithLogits,
        Some("mse") => PointLoss::Mse,
        other => panic!("case {n}: unknown point loss {other:?}"),
    };
    let (pred, target) = (up(b, &fref(case, "pred"))?, up(b, &fref(case, "target"))?);
    let weight = up(b, &fref(case, "weight"))?;
    let out = b.point_loss(&pred, &target, &weight, kind, float(case, "scale"))?;
    chk.tensor(b, n, "loss", &out.loss, &fref(case, "loss"))?;
    chk.tensor(b, n, "dpred", &out.dpred, &fref(case, "dpred"))
}

fn ce_map_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let logits = up(b, &fref(case, "logits"))?;
    let labels = up_idx(b, &iref(case, "labels"))?;
    let weight = up(b, &fref(case, "weight"))?;
    let ce = b.softmax_ce_map(&logits, &labels, &weight, float(case, "scale"))?;
    chk.tensor(b, n, "loss", &ce.loss, &fref(case, "loss"))?;
    chk.tensor(b, n, "dlogits", &ce.dlogits, &fref(case, "dlogits"))?;
    chk.tensor(b, n, "correct", &ce.correct, &fref(case, "correct"))
}

fn dice_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let logits = up(b, &fref(case, "logits"))?;
    let labels = up_idx(b, &iref(case, "labels"))?;
    let out = b.softmax_dice(&logits, &labels, float(case, "scale"))?;
    chk.tensor(b, n, "loss", &out.loss, &fref(case, "loss"))?;
    chk.tensor(b, n, "dlogits", &out.dpred, &fref(case, "dlogits"))
}

fn optim_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let hyper = &case["hyper"];
    let p0 = fref(case, "p0");
    let grads: Vec<Ref<f32>> = case["grads"]
        .as_array()
        .expect("grads array")
        .iter()
        .map(|g| tensor_of(g, "grad"))
        .collect();
    let steps = case["steps"].as_array().expect("steps array");
    assert_eq!(grads.len(), steps.len(), "case {n}: one gradient per step");

    // sgd and adam: PyTorch's coupled weight decay, which is our L2 gradient term;
    // adamw: the decoupled decay inside the step.
    let weight_decay = hyper["weight_decay"].as_f64().unwrap_or(0.0) as f32;
    let mut p = up(b, &p0)?;
    let mut m = b.zeros(p0.shape())?;
    let mut v = b.zeros(p0.shape())?;
    for (g, step) in grads.iter().zip(steps) {
        let t = int(step, "t");
        let mut g = up(b, g)?;
        let kind = case["kind"].as_str();
        if kind != Some("adamw") && weight_decay != 0.0 {
            b.l1_l2_grad(&mut g, &p, 0.0, weight_decay)?;
        }
        match kind {
            Some("sgd") => {
                let h = SgdHyper {
                    lr: float(hyper, "lr"),
                    momentum: float(hyper, "momentum"),
                };
                b.sgd_step(&mut p, &g, &mut v, h)?;
                chk.tensor(b, n, &format!("v after step {t}"), &v, &tensor_of(&step["v"], "v"))?;
            }
            Some(adam @ ("adam" | "adamw")) => {
                let h = AdamHyper {
                    lr: float(hyper, "lr"),
                    beta1: float(hyper, "beta1"),
                    beta2: float(hyper, "beta2"),
                    eps: float(hyper, "eps"),
                    weight_decay: if adam == "adamw" { weight_decay } else { 0.0 },
                    t: t as u32,
                };
                b.adam_step(&mut p, &g, &mut m, &mut v, h)?;
                chk.tensor(b, n, &format!("m after step {t}"), &m, &tensor_of(&step["m"], "m"))?;
                chk.tensor(b, n, &format!("v after step {t}"), &v, &tensor_of(&step["v"], "v"))?;
            }
            other => panic!("case {n}: unknown optimizer {other:?}"),
        }
        chk.tensor(b, n, &format!("p after step {t}"), &p, &tensor_of(&step["p"], "p"))?;
    }
    Ok(())
}

fn regularize_case(b: &dyn Backend, case: &Value, n: &str, chk: &mut Checker) -> CaseResult {
    let (l1, l2, t) = (float(case, "l1"), float(case, "l2"), float(case, "threshold"));
    let w = up(b, &fref(case, "w"))?;
    let mut acc = up(b, &fref(case, "acc0"))?;
    b.l1_l2_penalty(&w, l1, l2, &mut acc)?;
    chk.tensor(b, n, "penalty (acc0 + term)", &acc, &fref(case, "penalty"))?;
    let mut g = up(b, &fref(case, "g"))?;
    b.l1_l2_grad(&mut g, &w, l1, l2)?;
    chk.tensor(b, n, "grad (g + term's gradient)", &g, &fref(case, "grad"))?;
    let mut soft = up(b, &fref(case, "w"))?;
    b.soft_threshold(&mut soft, t)?;
    chk.tensor(b, n, "soft threshold", &soft, &fref(case, "soft"))?;
    // exact zeros stay exact: the comparison's tolerance would let 1e-5 through
    let got = pollster::block_on(b.read(&soft))?;
    let want = fref(case, "soft");
    let leaked = got
        .iter()
        .zip(&want.data)
        .filter(|(g, w)| **w == 0.0 && **g != 0.0)
        .count();
    if leaked > 0 {
        chk.fail(n, format!("soft threshold: {leaked} values should be exactly 0"));
    }
    Ok(())
}

// ---- tests ----------------------------------------------------------------------------------

#[test]
fn conv2d_matches_pytorch() {
    check_all("conv2d", "conv2d.json", conv2d_case);
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    check_all("conv_transpose2d", "conv_transpose2d.json", conv_transpose2d_case);
}

#[test]
fn upsample_matches_pytorch() {
    check_all("upsample2d", "upsample.json", upsample_case);
}

#[test]
fn batch_norm_matches_pytorch() {
    check_all("batch_norm", "batch_norm.json", batch_norm_case);
}

/// What PyTorch rejects, every backend rejects with a shape error naming the op: gamma of
/// the wrong length, x of rank 3, and training on a single value per channel.
#[test]
fn batch_norm_rejects_bad_shapes() {
    for b in backends() {
        let b = b.as_ref();
        let t = |dims: &[usize]| b.upload(Shape::new(dims), &vec![0.5; dims.iter().product()]).unwrap();
        let (x, gamma3, gamma4, beta) = (t(&[2, 3, 2, 2]), t(&[3]), t(&[4]), t(&[3]));
        let err = b
            .batch_norm_train(&x, &gamma4, &beta, 1e-5)
            .err()
            .expect("gamma (4) for 3 channels");
        let msg = err.to_string();
        assert!(
            msg.starts_with("batch_norm_train:") && msg.contains("[2, 3, 2, 2], [4], [3]"),
            "{}: {msg}",
            b.name()
        );
        let err = b
            .batch_norm_eval(&t(&[2, 3, 4]), &gamma3, &beta, &gamma3, &beta, 1e-5)
            .err()
            .expect("rank 3 x");
        assert!(
            err.to_string()
                .starts_with("batch_norm_eval: expected x (N,C,H,W) or (N,C)"),
            "{}: {err}",
            b.name()
        );
        let err = b
            .batch_norm_train(&t(&[1, 3]), &gamma3, &beta, 1e-5)
            .err()
            .expect("one value per channel");
        assert!(
            err.to_string().contains("more than one value per channel"),
            "{}: {err}",
            b.name()
        );
        let dy = t(&[2, 3, 2, 1]);
        let err = b
            .batch_norm_train_backward(&dy, &x, &gamma3, &gamma3, &beta)
            .err()
            .expect("dy of another shape");
        assert!(
            err.to_string().starts_with("batch_norm_train_backward:"),
            "{}: {err}",
            b.name()
        );
    }
}

#[test]
fn pooling_matches_pytorch() {
    check_all("pool2d", "pool.json", pool_case);
}

#[test]
fn dropout_matches_pytorch() {
    check_all("dropout", "dropout.json", dropout_case);
}

#[test]
fn add_matches_pytorch() {
    check_all("add", "add.json", add_case);
}

#[test]
fn add_assign_matches_pytorch() {
    check_all("add_assign", "add.json", add_assign_case);
}

#[test]
fn concat_matches_pytorch() {
    check_all("concat_channels", "concat.json", concat_case);
}

#[test]
fn global_avg_pool_matches_pytorch() {
    check_all("global_avg_pool", "global_avg_pool.json", global_avg_pool_case);
}

#[test]
fn max_unpool_matches_pytorch() {
    check_all("max_unpool2d", "max_unpool.json", max_unpool_case);
}

#[test]
fn linear_matches_pytorch() {
    check_all("linear", "linear.json", linear_case);
}

#[test]
fn activations_match_pytorch() {
    check_all("activation", "activation.json", activation_case);
}

#[test]
fn cross_entropy_matches_pytorch() {
    check_all("softmax_cross_entropy", "cross_entropy.json", cross_entropy_case);
}

#[test]
fn point_losses_match_pytorch() {
    check_all("point_loss", "point_loss.json", point_loss_case);
}

#[test]
fn per_pixel_cross_entropy_matches_pytorch() {
    check_all("softmax_ce_map", "ce_map.json", ce_map_case);
}

#[test]
fn soft_dice_matches_pytorch() {
    check_all("softmax_dice", "dice.json", dice_case);
}

#[test]
fn optimizers_match_pytorch() {
    check_all("optimizer", "optim.json", optim_case);
}

#[test]
fn regularization_matches_pytorch() {
    check_all("regularize", "regularize.json", regularize_case);
}
/// NaN and infinities in max pooling, against PyTorch 2.15's answer for this plane (too
/// small for a fixture file, whose floats are finite): NaN beats any number and the last
/// NaN of a window wins, an all -inf window reports its first cell, ties keep the first.
///   x = [[1, nan, 3, nan], [5, 2, -inf, -inf], [-inf, -inf, 0, 1], [-inf, -inf, 2, 2]]
#[test]
fn max_pool_nan_and_infinities_match_pytorch() {
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    #[rustfmt::skip]
    let x = [1.0, nan, 3.0, nan, 5.0, 2.0, -inf, -inf, -inf, -inf, 0.0, 1.0, -inf, -inf, 2.0, 2.0];
    // F.max_pool2d(x, 2, 2, return_indices=True) and F.max_pool2d(x, 3, 1, 1, ...)
    let cases: [(usize, usize, usize, &[u32]); 2] = [
        (2, 2, 0, &[1, 3, 8, 14]),
        (3, 1, 1, &[1, 1, 3, 3, 1, 1, 3, 3, 4, 4, 5, 14, 8, 14, 14, 14]),
    ];
    for b in backends() {
        let xt = b.upload(Shape::new(&[1, 1, 4, 4]), &x).expect("upload");
        for (kernel, stride, padding, want) in cases {
            let p = PoolParams {
                kernel,
                stride,
                padding,
            };
            let case = format!("{} k{kernel} s{stride} p{padding}", b.name());
            let (y, idx) = b.max_pool2d(&xt, p).expect("max_pool2d");
            let got = pollster::block_on(b.read(&y)).expect("read");
            let want_y: Vec<f32> = want.iter().map(|&i| x[i as usize]).collect();
            let same = got
                .iter()
                .zip(&want_y)
                .all(|(g, w)| g == w || (g.is_nan() && w.is_nan()));
            assert!(same, "{case}: y {got:?}, want {want_y:?}");
            if let Some(cpu_idx) = idx.cpu() {
                assert_eq!(cpu_idx, want, "{case}: indices");
            }
            // On every backend, the indices as seen through backward: dy = 1, 2, 3, ...
            let dy: Vec<f32> = (1..=want.len()).map(|v| v as f32).collect();
            let dyt = b.upload(y.shape.clone(), &dy).expect("upload");
            let dx = b.max_pool2d_backward(&dyt, &idx, &xt.shape).expect("backward");
            let mut want_dx = vec![0.0; 16];
            for (&i, g) in want.iter().zip(&dy) {
                want_dx[i as usize] += g;
            }
            assert_eq!(pollster::block_on(b.read(&dx)).expect("read"), want_dx, "{case}: dx");
        }
    }
}
