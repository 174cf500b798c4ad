//! Finite-difference checks of every op's backward, and of the whole tape on a small model,
//! on the CPU backend and (when an adapter exists, e.g. lavapipe) on the GPU backend.
//!
//! For an op y = f(x) and a random probe r, L(x) = <f(x), r>; backward with dy = r gives
//! dL/dx, compared with central differences (L(x+h·e) - L(x-h·e)) / 2h at sampled elements.
#![cfg(not(target_arch = "wasm32"))]

use cnn_playground::autograd::{Tape, Var};
use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::{
    Activation, Backend, Conv2dParams, ConvTransposeParams, PointLoss, PoolParams, UpsampleMode,
};
use cnn_playground::data::Rng;
use cnn_playground::nn::{Mode, Model, ParamKind, ParamStore, Pass};
use cnn_playground::spec::ModelSpec;
use cnn_playground::tensor::{Indices, Shape, Tensor};

const H: f32 = 1e-2;

fn read(be: &dyn Backend, t: &Tensor) -> Vec<f32> {
    be.flush().unwrap();
    pollster::block_on(be.read(t)).unwrap()
}

fn rand(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Compares `analytic` (the gradient w.r.t. `x`) with central differences of
/// L(x) = <forward(x), r> at up to 12 sampled elements.
fn check(
    name: &str,
    be: &dyn Backend,
    x: &[f32],
    analytic: &[f32],
    forward: &dyn Fn(&[f32]) -> Vec<f32>,
    r: &[f32],
    tol: f64,
) {
    assert_eq!(x.len(), analytic.len(), "{name}: gradient has the wrong size");
    let mut rng = Rng::new(99);
    for _ in 0..12.min(x.len()) {
        let i = rng.below(x.len());
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[i] += H;
        xm[i] -= H;
        let numeric = (dot(&forward(&xp), r) - dot(&forward(&xm), r)) / (2.0 * H as f64);
        let a = analytic[i] as f64;
        assert!(
            (numeric - a).abs() <= tol * numeric.abs().max(1.0),
            "{} {name}: element {i}: analytic {a} vs numeric {numeric}",
            be.name()
        );
    }
}

fn up(be: &dyn Backend, dims: &[usize], data: &[f32]) -> Tensor {
    be.upload(Shape::new(dims), data).unwrap()
}

fn ops_match_finite_differences(be: &dyn Backend) {
    let mut rng = Rng::new(1);
    // conv2d: x (2,3,6,5), w (4,3,3,3), stride 2, padding 1 and stride 1, padding 0
    for p in [
        Conv2dParams { stride: 2, padding: 1 },
        Conv2dParams { stride: 1, padding: 0 },
    ] {
        let (xs, ws) = ([2, 3, 6, 5], [4, 3, 3, 3]);
        let (x, w, b) = (rand(&mut rng, 180), rand(&mut rng, 108), rand(&mut rng, 4));
        let conv = |xv: &[f32], wv: &[f32], bv: &[f32]| {
            read(
                be,
                &be.conv2d(&up(be, &xs, xv), &up(be, &ws, wv), &up(be, &[4], bv), p)
                    .unwrap(),
            )
        };
        let y = be
            .conv2d(&up(be, &xs, &x), &up(be, &ws, &w), &up(be, &[4], &b), p)
            .unwrap();
        let r = rand(&mut rng, y.numel());
        let dy = up(be, y.dims(), &r);
        let dx = read(
            be,
            &be.conv2d_backward_input(&dy, &up(be, &ws, &w), &Shape::new(&xs), p)
                .unwrap(),
        );
        let (dw, db) = be
            .conv2d_backward_weight(&dy, &up(be, &xs, &x), &Shape::new(&ws), p)
            .unwrap();
        check("conv2d dx", be, &x, &dx, &|v| conv(v, &w, &b), &r, 1e-2);
        check("conv2d dw", be, &w, &read(be, &dw), &|v| conv(&x, v, &b), &r, 1e-2);
        check("conv2d db", be, &b, &read(be, &db), &|v| conv(&x, &w, v), &r, 1e-2);
    }
    // conv_transpose2d: x (2,3,4,5), w (3,4,3,3) -> y (2,4,OH,OW); stride 1, and stride 2
    // with padding 1 and output_padding 1
    for p in [
        ConvTransposeParams {
            stride: 1,
            padding: 0,
            output_padding: 0,
        },
        ConvTransposeParams {
            stride: 2,
            padding: 1,
            output_padding: 1,
        },
    ] {
        let (xs, ws) = ([2, 3, 4, 5], [3, 4, 3, 3]);
        let (x, w, b) = (rand(&mut rng, 120), rand(&mut rng, 108), rand(&mut rng, 4));
        let convt = |xv: &[f32], wv: &[f32], bv: &[f32]| {
            read(
                be,
                &be.conv_transpose2d(&up(be, &xs, xv), &up(be, &ws, wv), &up(be, &[4], bv), p)
                    .unwrap(),
            )
        };
        let y = be
            .conv_transpose2d(&up(be, &xs, &x), &up(be, &ws, &w), &up(be, &[4], &b), p)
            .unwrap();
        let r = rand(&mut rng, y.numel());
        let (dx, dw, db) = be
            .conv_transpose2d_backward(&up(be, y.dims(), &r), &up(be, &xs, &x), &up(be, &ws, &w), p)
            .unwrap();
        check(
            "conv_transpose2d dx",
            be,
            &x,
            &read(be, &dx),
            &|v| convt(v, &w, &b),
            &r,
            1e-2,
        );
        check(
            "conv_transpose2d dw",
            be,
            &w,
            &read(be, &dw),
            &|v| convt(&x, v, &b),
            &r,
            1e-2,
        );
        check(
            "conv_transpose2d db",
            be,
            &b,
            &read(be, &db),
            &|v| convt(&x, &w, v),
            &r,
            1e-2,
        );
    }
    // upsample: x (2,3,4,5), scale 2 and 3, nearest and bilinear
    for (scale, mode) in [
        (2, UpsampleMode::Nearest),
        (3, UpsampleMode::Nearest),
        (2, UpsampleMode::Bilinear),
        (3, UpsampleMode::Bilinear),
    ] {
        let xs = [2, 3, 4, 5];
        let x = rand(&mut rng, 120);
        let r = rand(&mut rng, 120 * scale * scale);
        let dy = up(be, &[2, 3, 4 * scale, 5 * scale], &r);
        let dx = read(be, &be.upsample2d_backward(&dy, &Shape::new(&xs), scale, mode).unwrap());
        let f = |v: &[f32]| read(be, &be.upsample2d(&up(be, &xs, v), scale, mode).unwrap());
        check(&format!("upsample {mode:?} x{scale}"), be, &x, &dx, &f, &r, 1e-2);
    }
    // batch norm on (N,C,H,W) and (N,C), both modes: dx, dgamma, dbeta. In training mode
    // the batch statistics move with x, so dx differs from the eval-mode one.
    for dims in [vec![2, 3, 4, 5], vec![6, 4]] {
        let c = dims[1];
        let numel: usize = dims.iter().product();
        let x = rand(&mut rng, numel);
        let gamma: Vec<f32> = rand(&mut rng, c).iter().map(|v| 1.0 + 0.5 * v).collect();
        let beta = rand(&mut rng, c);
        let rmean = rand(&mut rng, c);
        let rvar: Vec<f32> = rand(&mut rng, c).iter().map(|v| 1.0 + 0.5 * v).collect();
        let r = rand(&mut rng, numel);
        let dy = up(be, &dims, &r);
        let (xt, gt) = (up(be, &dims, &x), up(be, &[c], &gamma));
        let train = |xv: &[f32], gv: &[f32], bv: &[f32]| {
            let out = be
                .batch_norm_train(&up(be, &dims, xv), &up(be, &[c], gv), &up(be, &[c], bv), 1e-5)
                .unwrap();
            read(be, &out.y)
        };
        let out = be.batch_norm_train(&xt, &gt, &up(be, &[c], &beta), 1e-5).unwrap();
        let (dx, dg, db) = be
            .batch_norm_train_backward(&dy, &xt, &gt, &out.mean, &out.invstd)
            .unwrap();
        let what = format!("batch_norm_train {dims:?}");
        check(
            &format!("{what} dx"),
            be,
            &x,
            &read(be, &dx),
            &|v| train(v, &gamma, &beta),
            &r,
            1e-2,
        );
        check(
            &format!("{what} dgamma"),
            be,
            &gamma,
            &read(be, &dg),
            &|v| train(&x, v, &beta),
            &r,
            1e-2,
        );
        check(
            &format!("{what} dbeta"),
            be,
            &beta,
            &read(be, &db),
            &|v| train(&x, &gamma, v),
            &r,
            1e-2,
        );

        let (rm, rv) = (up(be, &[c], &rmean), up(be, &[c], &rvar));
        let eval = |xv: &[f32], gv: &[f32], bv: &[f32]| {
            let out = be
                .batch_norm_eval(&up(be, &dims, xv), &up(be, &[c], gv), &up(be, &[c], bv), &rm, &rv, 1e-5)
                .unwrap();
            read(be, &out.y)
        };
        let out = be
            .batch_norm_eval(&xt, &gt, &up(be, &[c], &beta), &rm, &rv, 1e-5)
            .unwrap();
        let (dx, dg, db) = be
            .batch_norm_eval_backward(&dy, &xt, &gt, &out.mean, &out.invstd)
            .unwrap();
        let what = format!("batch_norm_eval {dims:?}");
        check(
            &format!("{what} dx"),
            be,
            &x,
            &read(be, &dx),
            &|v| eval(v, &gamma, &beta),
            &r,
            1e-2,
        );
        check(
            &format!("{what} dgamma"),
            be,
            &gamma,
            &read(be, &dg),
            &|v| eval(&x, v, &beta),
            &r,
            1e-2,
        );
        check(
            &format!("{what} dbeta"),
            be,
            &beta,
            &read(be, &db),
            &|v| eval(&x, &gamma, v),
            &r,
            1e-2,
        );
    }
    // linear: x (5,7), w (3,7), b (3)
    {
        let (x, w, b) = (rand(&mut rng, 35), rand(&mut rng, 21), rand(&mut rng, 3));
        let lin = |xv: &[f32], wv: &[f32], bv: &[f32]| {
            read(
                be,
                &be.linear(&up(be, &[5, 7], xv), &up(be, &[3, 7], wv), &up(be, &[3], bv))
                    .unwrap(),
            )
        };
        let r = rand(&mut rng, 15);
        let (dx, dw, db) = be
            .linear_backward(&up(be, &[5, 3], &r), &up(be, &[5, 7], &x), &up(be, &[3, 7], &w))
            .unwrap();
        check("linear dx", be, &x, &read(be, &dx), &|v| lin(v, &w, &b), &r, 1e-2);
        check("linear dw", be, &w, &read(be, &dw), &|v| lin(&x, v, &b), &r, 1e-2);
        check("linear db", be, &b, &read(be, &db), &|v| lin(&x, &w, v), &r, 1e-2);
    }
    // activations on x in [-3, 3); relu and leaky relu keep inputs away from the kink at 0
    for a in [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.01 },
        Activation::LeakyRelu { slope: 0.2 },
        Activation::Tanh,
        Activation::Sigmoid,
    ] {
        let x: Vec<f32> = rand(&mut rng, 40)
            .into_iter()
            .map(|v| if v.abs() < 0.05 { 0.5 } else { 3.0 * v })
            .collect();
        let r = rand(&mut rng, 40);
        let xt = up(be, &[40], &x);
        let y = be.activation(&xt, a).unwrap();
        let dx = read(be, &be.activation_backward(&up(be, &[40], &r), &xt, &y, a).unwrap());
        let f = |v: &[f32]| read(be, &be.activation(&up(be, &[40], v), a).unwrap());
        check(&format!("{a:?}"), be, &x, &dx, &f, &r, 1e-2);
    }
    // pools: x (2,2,6,6), window 2 stride 2 and window 3 stride 2 (overlapping), unpadded
    // and padded (max pools pad with -inf, avg pools count the zeros)
    for (kernel, stride, padding) in [(2, 2, 0), (3, 2, 0), (3, 2, 1), (2, 2, 1), (3, 1, 1)] {
        let p = PoolParams {
            kernel,
            stride,
            padding,
        };
        // distinct values spaced well beyond 2h, so no window has a near tie
        let mut x: Vec<f32> = (0..144).map(|i| i as f32 * 0.05).collect();
        rng.shuffle(&mut x);
        let xs = [2, 2, 6, 6];
        let (y, idx) = be.max_pool2d(&up(be, &xs, &x), p).unwrap();
        let r = rand(&mut rng, y.numel());
        let dx = read(
            be,
            &be.max_pool2d_backward(&up(be, y.dims(), &r), &idx, &Shape::new(&xs))
                .unwrap(),
        );
        check(
            &format!("max_pool2d {p:?}"),
            be,
            &x,
            &dx,
            &|v| read(be, &be.max_pool2d(&up(be, &xs, v), p).unwrap().0),
            &r,
            1e-2,
        );
        let ya = be.avg_pool2d(&up(be, &xs, &x), p).unwrap();
        let dxa = read(
            be,
            &be.avg_pool2d_backward(&up(be, ya.dims(), &r), &Shape::new(&xs), p)
                .unwrap(),
        );
        check(
            &format!("avg_pool2d {p:?}"),
            be,
            &x,
            &dxa,
            &|v| read(be, &be.avg_pool2d(&up(be, &xs, v), p).unwrap()),
            &r,
            1e-2,
        );
    }
    graph_ops_match_finite_differences(be, &mut rng);
    // softmax cross-entropy: dL/dz of the mean loss (r = 1 on the scalar)
    {
        let z = rand(&mut rng, 4 * 5).into_iter().map(|v| 3.0 * v).collect::<Vec<_>>();
        let labels: Indices = be.upload_indices(Shape::new(&[4]), &[0, 3, 4, 1]).unwrap();
        let ce = be.softmax_cross_entropy(&up(be, &[4, 5], &z), &labels).unwrap();
        let loss = |v: &[f32]| {
            read(
                be,
                &be.softmax_cross_entropy(&up(be, &[4, 5], v), &labels).unwrap().loss,
            )
        };
        check(
            "softmax_cross_entropy",
            be,
            &z,
            &read(be, &ce.dlogits),
            &loss,
            &[1.0],
            1e-2,
        );
    }
}

/// Dropout's mask product and scale, add, channel concat, global average pooling and
/// max-unpooling: each backward against central differences of its forward.
fn graph_ops_match_finite_differences(be: &dyn Backend, rng: &mut Rng) {
    // mul_mask with a fixed 0/1 mask and inverted-dropout scale, and scale (classic eval)
    {
        let xs = [2, 3, 4, 5];
        let x = rand(rng, 120);
        let mask: Vec<f32> = (0..120).map(|_| (rng.below(2)) as f32).collect();
        let r = rand(rng, 120);
        let m = up(be, &xs, &mask);
        let dx = read(be, &be.mul_mask(&up(be, &xs, &r), &m, 2.0).unwrap());
        let f = |v: &[f32]| read(be, &be.mul_mask(&up(be, &xs, v), &m, 2.0).unwrap());
        check("mul_mask", be, &x, &dx, &f, &r, 1e-2);
        let dx = read(be, &be.scale(&up(be, &xs, &r), 0.7).unwrap());
        let f = |v: &[f32]| read(be, &be.scale(&up(be, &xs, v), 0.7).unwrap());
        check("scale", be, &x, &dx, &f, &r, 1e-2);
    }
    // add: both inputs get dy
    {
        let (a, b, r) = (rand(rng, 35), rand(rng, 35), rand(rng, 35));
        let add = |av: &[f32], bv: &[f32]| read(be, &be.add(&up(be, &[5, 7], av), &up(be, &[5, 7], bv)).unwrap());
        check("add da", be, &a, &r, &|v| add(v, &b), &r, 1e-2);
        check("add db", be, &b, &r, &|v| add(&a, v), &r, 1e-2);
    }
    // concat of three inputs, (N,Ci,H,W) and (N,Ci); dxs[i] = slice_channels(dy, ...)
    for shapes in [
        vec![vec![2, 2, 3, 4], vec![2, 3, 3, 4], vec![2, 1, 3, 4]],
        vec![vec![3, 4], vec![3, 1], vec![3, 5]],
    ] {
        let inputs: Vec<Vec<f32>> = shapes.iter().map(|d| rand(rng, d.iter().product())).collect();
        let cat = |which: usize, v: &[f32]| {
            let ts: Vec<Tensor> = shapes
                .iter()
                .zip(&inputs)
                .enumerate()
                .map(|(i, (d, x))| up(be, d, if i == which { v } else { x }))
                .collect();
            read(be, &be.concat_channels(&ts.iter().collect::<Vec<_>>()).unwrap())
        };
        let total: usize = shapes.iter().map(|d| d[1]).sum();
        let mut out_dims = shapes[0].clone();
        out_dims[1] = total;
        let r = rand(rng, out_dims.iter().product());
        let dy = up(be, &out_dims, &r);
        let mut start = 0;
        for (i, (d, x)) in shapes.iter().zip(&inputs).enumerate() {
            let dx = read(be, &be.slice_channels(&dy, start, d[1]).unwrap());
            check(
                &format!("concat {shapes:?} dx{i}"),
                be,
                x,
                &dx,
                &|v| cat(i, v),
                &r,
                1e-2,
            );
            start += d[1];
        }
    }
    // global average pooling
    {
        let xs = [2, 3, 4, 5];
        let x = rand(rng, 120);
        let r = rand(rng, 6);
        let dx = read(
            be,
            &be.global_avg_pool_backward(&up(be, &[2, 3], &r), &Shape::new(&xs))
                .unwrap(),
        );
        let f = |v: &[f32]| read(be, &be.global_avg_pool(&up(be, &xs, v)).unwrap());
        check("global_avg_pool", be, &x, &dx, &f, &r, 1e-2);
    }
    // max-unpooling: x (2,3,3,3) into (2,3,6,5) through distinct switches per plane, placed
    // anywhere in the plane (unpooling is linear in x; with colliding switches the
    // overwritten x would have no effect, while PyTorch's gather still gives it dy)
    {
        let (xs, ys) = ([2, 3, 3, 3], [2, 3, 6, 5]);
        let mut idx = Vec::new();
        for _ in 0..6 {
            let mut cells: Vec<u32> = (0..30).collect();
            rng.shuffle(&mut cells);
            idx.extend_from_slice(&cells[..9]);
        }
        let idx = be.upload_indices(Shape::new(&xs), &idx).unwrap();
        let x = rand(rng, 54);
        let r = rand(rng, 180);
        let dx = read(be, &be.max_unpool2d_backward(&up(be, &ys, &r), &idx).unwrap());
        let f = |v: &[f32]| read(be, &be.max_unpool2d(&up(be, &xs, v), &idx, &Shape::new(&ys)).unwrap());
        check("max_unpool2d", be, &x, &dx, &f, &r, 1e-2);
    }
}

/// Gradients by `backward` against central differences of the whole forward pass, at a few
/// elements of every parameter. `forward` records one pass on a fresh tape and returns the
/// loss (a cross-entropy node).
fn tape_check(be: &dyn Backend, params: &mut ParamStore, forward: &dyn Fn(&mut Tape) -> Var) {
    tape_check_sum(be, params, &|tape| vec![forward(tape)]);
}

/// `tape_check` for a sum of loss nodes, through `backward_sum`.
fn tape_check_sum(be: &dyn Backend, params: &mut ParamStore, forward: &dyn Fn(&mut Tape) -> Vec<Var>) {
    let loss_and_grads = |params: &ParamStore, want_grads: bool| {
        let mut tape = Tape::new(be, params);
        let losses = forward(&mut tape);
        let loss: f64 = losses.iter().map(|&l| read(be, tape.value(l))[0] as f64).sum();
        let grads = if want_grads {
            Some(tape.backward_sum(&losses).unwrap())
        } else {
            None
        };
        (loss, grads)
    };
    let (_, grads) = loss_and_grads(params, true);
    let grads: Vec<Vec<f32>> = grads
        .unwrap()
        .iter()
        .map(|g| read(be, g.as_ref().expect("every parameter gets a gradient")))
        .collect();
    for (pi, g) in grads.iter().enumerate() {
        let base = read(be, &params.params[pi].value);
        for i in (0..base.len()).step_by((base.len() / 4).max(1)) {
            let mut bump = |delta: f32| {
                let mut v = base.clone();
                v[i] += delta;
                params.params[pi].value = up(be, params.params[pi].value.dims(), &v);
                loss_and_grads(params, false).0
            };
            // A smaller step than the per-op checks: a bias moves a whole channel, and a step
            // of 1e-2 can carry some ReLU or max-pool switches across their kinks.
            let h = 1e-3;
            let numeric = (bump(h) - bump(-h)) / (2.0 * h as f64);
            params.params[pi].value = up(be, params.params[pi].value.dims(), &base);
            let a = g[i] as f64;
            assert!(
                (numeric - a).abs() <= 2e-2 * numeric.abs().max(0.1),
                "{} param {} [{i}]: analytic {a} vs numeric {numeric}",
                be.name(),
                params.params[pi].name
            );
        }
    }
}

/// End to end through the tape: d(loss)/d(param) of a small conv net by backward, against
/// central differences of the whole forward pass.
fn tape_matches_finite_differences(be: &dyn Backend) {
    let spec = ModelSpec::from_json(
        r#"{"input":[2,8,8],"classes":3,"layers":[
            {"type":"conv2d","out":3,"kernel":3,"padding":1},{"type":"relu"},{"type":"max_pool","size":2},
            {"type":"conv2d","out":4,"kernel":3,"stride":2,"padding":1},{"type":"relu"},{"type":"avg_pool","size":2},
            {"type":"conv_transpose2d","out":2,"kernel":3,"stride":2,"padding":1,"output_padding":1},
            {"type":"upsample","scale":2,"mode":"bilinear"},
            {"type":"flatten"},{"type":"linear","out":3}]}"#,
    )
    .unwrap();
    let mut rng = Rng::new(3);
    let (model, mut params) = Model::build(&spec, be, &mut rng).unwrap();
    let x = rand(&mut rng, 4 * 2 * 8 * 8);
    let labels = [0u32, 2, 1, 2];
    tape_check(be, &mut params, &|tape| {
        let y = be.upload_indices(Shape::new(&[4]), &labels).unwrap();
        let xv = tape.input(up(be, &[4, 2, 8, 8], &x));
        let z = model.forward(tape, xv, &mut Pass::eval()).unwrap().output();
        tape.cross_entropy(z, &y).unwrap().loss
    });
}

/// The graph ops through the tape, in a small net with branches:
///   h = conv(x) (N,3,6,6);  p = max_pool(h, 2) (N,3,3,3);  s = add(conv1x1(p), p);
///   u = max_unpool(s, p) (N,3,6,6);  b = conv(u) (N,2,6,6);  c = concat(u, b, h) (N,8,6,6);
///   g = scale(global_avg_pool(dropout(c)), 0.7) (N,8);  logits = linear(g)
/// so add passes dy to both branches, concat splits it three ways, and unpooling routes
/// it back through the pool's switches.
fn tape_graph_ops_match_finite_differences(be: &dyn Backend) {
    let mut rng = Rng::new(5);
    let mut params = ParamStore::default();
    let mut add = |name: &str, kind: ParamKind, dims: &[usize], rng: &mut Rng| {
        let v: Vec<f32> = rand(rng, dims.iter().product()).iter().map(|v| 0.5 * v).collect();
        params.add(name.into(), kind, up(be, dims, &v))
    };
    let (w0, b0) = (
        add("h.weight", ParamKind::ConvWeight, &[3, 2, 3, 3], &mut rng),
        add("h.bias", ParamKind::Bias, &[3], &mut rng),
    );
    let (w1, b1) = (
        add("a.weight", ParamKind::ConvWeight, &[3, 3, 1, 1], &mut rng),
        add("a.bias", ParamKind::Bias, &[3], &mut rng),
    );
    let (w2, b2) = (
        add("b.weight", ParamKind::ConvWeight, &[2, 3, 3, 3], &mut rng),
        add("b.bias", ParamKind::Bias, &[2], &mut rng),
    );
    let (w3, b3) = (
        add("fc.weight", ParamKind::LinearWeight, &[3, 8], &mut rng),
        add("fc.bias", ParamKind::Bias, &[3], &mut rng),
    );
    let x = rand(&mut rng, 3 * 2 * 6 * 6);
    let mask: Vec<f32> = (0..3 * 8 * 6 * 6).map(|_| rng.below(2) as f32).collect();
    let labels = [2u32, 0, 1];
    let same = Conv2dParams { stride: 1, padding: 1 };
    let point = Conv2dParams { stride: 1, padding: 0 };
    let pool = PoolParams {
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    tape_check(be, &mut params, &|tape| {
        let xv = tape.input(up(be, &[3, 2, 6, 6], &x));
        let (w0, b0, w1, b1) = (tape.param(w0), tape.param(b0), tape.param(w1), tape.param(b1));
        let (w2, b2, w3, b3) = (tape.param(w2), tape.param(b2), tape.param(w3), tape.param(b3));
        let h = tape.conv2d(xv, w0, b0, same).unwrap();
        let p = tape.max_pool(h, pool).unwrap();
        let a = tape.conv2d(p, w1, b1, point).unwrap();
        let s = tape.add(a, p).unwrap();
        let u = tape.max_unpool(s, p).unwrap();
        let b = tape.conv2d(u, w2, b2, same).unwrap();
        let c = tape.concat(&[u, b, h]).unwrap();
        let d = tape.dropout(c, up(be, &[3, 8, 6, 6], &mask), 2.0).unwrap();
        let g = tape.global_avg_pool(d).unwrap();
        let g = tape.scale(g, 0.7).unwrap();
        let z = tape.linear(g, w3, b3).unwrap();
        let y = be.upload_indices(Shape::new(&[3]), &labels).unwrap();
        tape.cross_entropy(z, &y).unwrap().loss
    });
}

/// The tape's batch norm ops: x (4,2,3,3) -> conv2d (3 out, 3×3, padding 1) -> batch norm
/// -> flatten -> linear -> cross entropy. Every parameter's gradient by backward against
/// central differences of the loss, in training mode (the conv's gradients flow through
/// the batch statistics; its bias gets none, since normalizing removes it) and in eval
/// mode with running statistics from the store's buffers. Then the running update the
/// caller applies with the statistics the training-mode op returned.
fn tape_batch_norm_matches_finite_differences(be: &dyn Backend) {
    let mut rng = Rng::new(5);
    let mut params = ParamStore::default();
    params.add(
        "0.weight".into(),
        ParamKind::ConvWeight,
        up(be, &[3, 2, 3, 3], &rand(&mut rng, 54)),
    );
    params.add("0.bias".into(), ParamKind::Bias, up(be, &[3], &rand(&mut rng, 3)));
    let gamma: Vec<f32> = rand(&mut rng, 3).iter().map(|v| 1.0 + 0.5 * v).collect();
    params.add("1.weight".into(), ParamKind::BnWeight, up(be, &[3], &gamma));
    params.add("1.bias".into(), ParamKind::BnBias, up(be, &[3], &rand(&mut rng, 3)));
    params.add(
        "3.weight".into(),
        ParamKind::LinearWeight,
        up(be, &[4, 27], &rand(&mut rng, 108)),
    );
    params.add("3.bias".into(), ParamKind::Bias, up(be, &[4], &rand(&mut rng, 4)));
    let rm = params.add_buffer("1.running_mean".into(), up(be, &[3], &rand(&mut rng, 3)));
    let rv = params.add_buffer("1.running_var".into(), up(be, &[3], &[0.5, 1.0, 2.0]));
    let x = rand(&mut rng, 72);
    let labels = [0u32, 3, 1, 2];
    let conv = Conv2dParams { stride: 1, padding: 1 };
    let run = |params: &ParamStore, training: bool, want_grads: bool| {
        let y = be.upload_indices(Shape::new(&[4]), &labels).unwrap();
        let mut tape = Tape::new(be, params);
        let xv = tape.input(up(be, &[4, 2, 3, 3], &x));
        let p: Vec<Var> = (0..6).map(|i| tape.param(i)).collect();
        let h = tape.conv2d(xv, p[0], p[1], conv).unwrap();
        let (h, stats) = if training {
            let out = tape.batch_norm_train(h, p[2], p[3], 1e-5).unwrap();
            (out.y, Some((out.mean, out.var)))
        } else {
            let (rmean, rvar) = (&params.buffers[rm].value, &params.buffers[rv].value);
            (tape.batch_norm_eval(h, p[2], p[3], rmean, rvar, 1e-5).unwrap(), None)
        };
        let h = tape.reshape(h, Shape::new(&[4, 27])).unwrap();
        let z = tape.linear(h, p[4], p[5]).unwrap();
        let out = tape.cross_entropy(z, &y).unwrap();
        let loss = read(be, tape.value(out.loss))[0] as f64;
        let grads = want_grads.then(|| tape.backward(out.loss).unwrap());
        (loss, grads, stats)
    };
    for training in [true, false] {
        let (_, grads, _) = run(&params, training, true);
        let grads: Vec<Vec<f32>> = grads
            .unwrap()
            .iter()
            .map(|g| read(be, g.as_ref().expect("every parameter gets a gradient")))
            .collect();
        for (pi, g) in grads.iter().enumerate() {
            let base = read(be, &params.params[pi].value);
            let dims = params.params[pi].value.dims().to_vec();
            for i in (0..base.len()).step_by((base.len() / 4).max(1)) {
                let mut bump = |delta: f32| {
                    let mut v = base.clone();
                    v[i] += delta;
                    params.params[pi].value = up(be, &dims, &v);
                    run(&params, training, false).0
                };
                let h = 1e-3;
                let numeric = (bump(h) - bump(-h)) / (2.0 * h as f64);
                params.params[pi].value = up(be, &dims, &base);
                let a = g[i] as f64;
                assert!(
                    (numeric - a).abs() <= 2e-2 * numeric.abs().max(0.1),
                    "{} training {training}: param {} [{i}]: analytic {a} vs numeric {numeric}",
                    be.name(),
                    params.params[pi].name
                );
            }
        }
    }
    // The caller's running update, once the tape has let go of the store.
    let (_, _, stats) = run(&params, true, false);
    let (mean, var) = stats.expect("training mode returns the batch statistics");
    let (before_m, before_v) = (read(be, &params.buffers[rm].value), read(be, &params.buffers[rv].value));
    let (bm, bv) = (read(be, &mean), read(be, &var));
    let [running_mean, running_var] = &mut params.buffers[..] else {
        panic!("two buffers")
    };
    be.batch_norm_update_running(&mut running_mean.value, &mut running_var.value, &mean, &var, 36, 0.1)
        .unwrap();
    let (after_m, after_v) = (read(be, &running_mean.value), read(be, &running_var.value));
    for ch in 0..3 {
        let want_m = 0.9 * before_m[ch] + 0.1 * bm[ch];
        let want_v = 0.9 * before_v[ch] + 0.1 * bv[ch] * 36.0 / 35.0;
        assert!((after_m[ch] - want_m).abs() < 1e-5, "{} running mean {ch}", be.name());
        assert!((after_v[ch] - want_v).abs() < 1e-5, "{} running var {ch}", be.name());
    }
}

/// Labels 0..k, one per pixel, every class present.
fn labels(rng: &mut Rng, n: usize, k: usize) -> Vec<u32> {
    (0..n)
        .map(|i| if i < k { i as u32 } else { rng.below(k) as u32 })
        .collect()
}

/// The loss ops' gradients against central differences of their loss (L = loss, r = [1]):
/// point losses (each kind, weighted and scaled), per-pixel cross-entropy (weighted, on
/// (N,K,H,W) and (N,K)) and soft Dice. Scales keep the gradients near 1, where the check's
/// tolerance bites.
fn losses_match_finite_differences(be: &dyn Backend) {
    let mut rng = Rng::new(21);
    let one = [1.0f32];
    // point losses on (2,3,2,3): d = pred - target stays 0.05 away from smooth L1's kinks
    // (|d| = beta, and d = 0 for plain L1)
    let dims = [2, 3, 2, 3];
    let pred = rand(&mut rng, 36);
    let weight: Vec<f32> = (0..36).map(|_| rng.uniform(0.0, 2.0)).collect();
    for kind in [
        PointLoss::SmoothL1 { beta: 1.0 },
        PointLoss::SmoothL1 { beta: 0.1 },
        PointLoss::SmoothL1 { beta: 0.0 },
        PointLoss::BceWithLogits,
        PointLoss::Mse,
    ] {
        let target: Vec<f32> = match kind {
            PointLoss::BceWithLogits => (0..36).map(|_| rng.uniform(0.0, 1.0)).collect(),
            PointLoss::SmoothL1 { beta } => pred
                .iter()
                .map(|p| {
                    let d = if rng.below(2) == 0 {
                        beta - 0.05
                    } else {
                        beta + 0.05 + rng.uniform(0.0, 1.0)
                    };
                    let d = d.max(0.05);
                    p - if rng.below(2) == 0 { d } else { -d }
                })
                .collect(),
            PointLoss::Mse => rand(&mut rng, 36),
        };
        let (tt, wt) = (up(be, &dims, &target), up(be, &dims, &weight));
        let f = |v: &[f32]| read(be, &be.point_loss(&up(be, &dims, v), &tt, &wt, kind, 0.8).unwrap().loss);
        let out = be.point_loss(&up(be, &dims, &pred), &tt, &wt, kind, 0.8).unwrap();
        assert_eq!(out.loss.dims(), [1]);
        check(
            &format!("point_loss {kind:?}"),
            be,
            &pred,
            &read(be, &out.dpred),
            &f,
            &one,
            1e-2,
        );
    }
    // per-pixel cross-entropy: logits (2,3,4,5) with (2,4,5) labels and weights, and (6,4)
    for (dims, pixels) in [(vec![2, 3, 4, 5], vec![2, 4, 5]), (vec![6, 4], vec![6])] {
        let numel: usize = dims.iter().product();
        let m: usize = pixels.iter().product();
        let z: Vec<f32> = rand(&mut rng, numel).iter().map(|v| 3.0 * v).collect();
        let y = be
            .upload_indices(Shape::new(&pixels), &labels(&mut rng, m, dims[1]))
            .unwrap();
        let w: Vec<f32> = (0..m).map(|_| rng.uniform(0.0, 2.0)).collect();
        let wt = up(be, &pixels, &w);
        let f = |v: &[f32]| read(be, &be.softmax_ce_map(&up(be, &dims, v), &y, &wt, 1.5).unwrap().loss);
        let ce = be.softmax_ce_map(&up(be, &dims, &z), &y, &wt, 1.5).unwrap();
        check(
            &format!("softmax_ce_map {dims:?}"),
            be,
            &z,
            &read(be, &ce.dlogits),
            &f,
            &one,
            1e-2,
        );
    }
    // soft Dice: logits (2,3,4,5) and (6,4); the gradient of one logit is about
    // 1/(K·pixels), so the scale lifts it to order 1
    for (dims, pixels) in [(vec![2, 3, 4, 5], vec![2, 4, 5]), (vec![6, 4], vec![6])] {
        let numel: usize = dims.iter().product();
        let m: usize = pixels.iter().product();
        let scale = (dims[1] * m) as f32;
        let z: Vec<f32> = rand(&mut rng, numel).iter().map(|v| 2.0 * v).collect();
        let y = be
            .upload_indices(Shape::new(&pixels), &labels(&mut rng, m, dims[1]))
            .unwrap();
        let f = |v: &[f32]| read(be, &be.softmax_dice(&up(be, &dims, v), &y, scale).unwrap().loss);
        let dice = be.softmax_dice(&up(be, &dims, &z), &y, scale).unwrap();
        check(
            &format!("softmax_dice {dims:?}"),
            be,
            &z,
            &read(be, &dice.dpred),
            &f,
            &one,
            1e-2,
        );
    }
}

/// A dense head as the detection and segmentation tasks use it, through the tape:
///   h = conv(x) (N,7,4,4);  obj = slice(h, 0, 1) -> BCE with logits;
///   box = slice(h, 1, 2) -> smooth L1;  cls = slice(h, 3, 4) -> per-pixel CE + Dice;
///   g = global_avg_pool(h) (N,7);  slice(g, 5, 2) -> MSE
/// all summed by `backward_sum`, every parameter against central differences.
fn tape_losses_match_finite_differences(be: &dyn Backend) {
    let mut rng = Rng::new(23);
    let mut params = ParamStore::default();
    let w: Vec<f32> = rand(&mut rng, 7 * 2 * 9).iter().map(|v| 0.5 * v).collect();
    params.add("0.weight".into(), ParamKind::ConvWeight, up(be, &[7, 2, 3, 3], &w));
    params.add("0.bias".into(), ParamKind::Bias, up(be, &[7], &rand(&mut rng, 7)));
    let x = rand(&mut rng, 2 * 2 * 4 * 4);
    let obj: Vec<f32> = (0..32).map(|_| rng.below(2) as f32).collect();
    let boxes = rand(&mut rng, 2 * 2 * 16);
    let box_w: Vec<f32> = (0..64).map(|_| rng.below(2) as f32).collect();
    let cls = labels(&mut rng, 32, 4);
    let pix_w: Vec<f32> = (0..32).map(|_| rng.uniform(0.5, 1.5)).collect();
    let pooled = rand(&mut rng, 4);
    let same = Conv2dParams { stride: 1, padding: 1 };
    tape_check_sum(be, &mut params, &|tape| {
        let xv = tape.input(up(be, &[2, 2, 4, 4], &x));
        let (w, b) = (tape.param(0), tape.param(1));
        let h = tape.conv2d(xv, w, b, same).unwrap();
        let o = tape.slice_channels(h, 0, 1).unwrap();
        let ones = up(be, &[2, 1, 4, 4], &[1.0; 32]);
        let l_obj = tape
            .point_loss(o, &up(be, &[2, 1, 4, 4], &obj), &ones, PointLoss::BceWithLogits, 0.5)
            .unwrap();
        let bx = tape.slice_channels(h, 1, 2).unwrap();
        let l_box = tape
            .point_loss(
                bx,
                &up(be, &[2, 2, 4, 4], &boxes),
                &up(be, &[2, 2, 4, 4], &box_w),
                PointLoss::SmoothL1 { beta: 1.0 },
                2.0,
            )
            .unwrap();
        let c = tape.slice_channels(h, 3, 4).unwrap();
        let y = be.upload_indices(Shape::new(&[2, 4, 4]), &cls).unwrap();
        let l_ce = tape.ce_map(c, &y, &up(be, &[2, 4, 4], &pix_w), 0.25).unwrap().loss;
        let l_dice = tape.dice(c, &y, 3.0).unwrap();
        let g = tape.global_avg_pool(h).unwrap();
        let gs = tape.slice_channels(g, 5, 2).unwrap();
        let l_mse = tape
            .point_loss(
                gs,
                &up(be, &[2, 2], &pooled),
                &up(be, &[2, 2], &[1.0; 4]),
                PointLoss::Mse,
                1.0,
            )
            .unwrap();
        vec![l_obj, l_box, l_ce, l_dice, l_mse]
    });
}

/// `backward_sum` of two losses equals the sum of their separate `backward`s, `backward(l)`
/// equals `backward_sum(&[l])`, listing a loss twice doubles it, and a non-loss node is
/// refused with an error naming the op.
fn backward_sum_is_the_sum_of_backwards(be: &dyn Backend) {
    let mut rng = Rng::new(29);
    let mut params = ParamStore::default();
    params.add(
        "fc.weight".into(),
        ParamKind::LinearWeight,
        up(be, &[5, 4], &rand(&mut rng, 20)),
    );
    params.add("fc.bias".into(), ParamKind::Bias, up(be, &[5], &rand(&mut rng, 5)));
    let x = rand(&mut rng, 12);
    let target = rand(&mut rng, 6);
    let y = [0u32, 2, 1];
    // which: 0 = CE alone, 1 = smooth L1 alone, 2 = both, 3 = CE listed twice
    let grads = |which: usize| -> Vec<Vec<f32>> {
        let mut tape = Tape::new(be, &params);
        let xv = tape.input(up(be, &[3, 4], &x));
        let (w, b) = (tape.param(0), tape.param(1));
        let z = tape.linear(xv, w, b).unwrap();
        let cls = tape.slice_channels(z, 0, 3).unwrap();
        let bx = tape.slice_channels(z, 3, 2).unwrap();
        let labels = be.upload_indices(Shape::new(&[3]), &y).unwrap();
        let ce = tape.cross_entropy(cls, &labels).unwrap().loss;
        let ones = up(be, &[3, 2], &[1.0; 6]);
        let l1 = tape
            .point_loss(
                bx,
                &up(be, &[3, 2], &target),
                &ones,
                PointLoss::SmoothL1 { beta: 0.5 },
                1.0,
            )
            .unwrap();
        let g = match which {
            0 => tape.backward(ce),
            1 => tape.backward_sum(&[l1]),
            2 => tape.backward_sum(&[ce, l1]),
            _ => tape.backward_sum(&[ce, ce]),
        };
        g.unwrap().iter().map(|g| read(be, g.as_ref().unwrap())).collect()
    };
    let (a, b, both, twice) = (grads(0), grads(1), grads(2), grads(3));
    for p in 0..2 {
        for i in 0..a[p].len() {
            let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * x.abs().max(1.0);
            assert!(
                close(both[p][i], a[p][i] + b[p][i]),
                "{} sum: param {p} [{i}]",
                be.name()
            );
            assert!(
                close(twice[p][i], 2.0 * a[p][i]),
                "{} twice: param {p} [{i}]",
                be.name()
            );
        }
    }
    let mut tape = Tape::new(be, &params);
    let xv = tape.input(up(be, &[3, 4], &x));
    let Err(err) = tape.backward_sum(&[xv]) else {
        panic!("an input is not a loss")
    };
    assert!(err.to_string().starts_with("backward: "), "{err}");
}

fn gpu() -> Option<GpuBackend> {
    match pollster::block_on(GpuBackend::request()) {
        Ok(g) => Some(g),
        Err(e) => {
            println!("GPU: skipped, no adapter: {e}");
            None
        }
    }
}

#[test]
fn cpu_ops_match_finite_differences() {
    ops_match_finite_differences(&CpuBackend::new());
}

#[test]
fn cpu_tape_matches_finite_differences() {
    tape_matches_finite_differences(&CpuBackend::new());
}

#[test]
fn cpu_tape_graph_ops_match_finite_differences() {
    tape_graph_ops_match_finite_differences(&CpuBackend::new());
}

#[test]
fn gpu_tape_graph_ops_match_finite_differences() {
    if let Some(g) = gpu() {
        tape_graph_ops_match_finite_differences(&g);
    }
}

#[test]
fn gpu_ops_match_finite_differences() {
    if let Some(g) = gpu() {
        ops_match_finite_differences(&g);
    }
}

#[test]
fn gpu_tape_matches_finite_differences() {
    if let Some(g) = gpu() {
        tape_matches_finite_differences(&g);
    }
}

#[test]
fn cpu_tape_batch_norm_matches_finite_differences() {
    tape_batch_norm_matches_finite_differences(&CpuBackend::new());
}

#[test]
fn gpu_tape_batch_norm_matches_finite_differences() {
    if let Some(g) = gpu() {
        tape_batch_norm_matches_finite_differences(&g);
    }
}

/// The model built from a DAG spec with every new layer kind, end to end through the tape:
/// batch norm in train mode (gradients through the batch statistics) and after a linear
/// layer, dropout with a fixed seeded mask, an inception block and a naive one (no 1×1
/// reductions), a residual add, max-unpool
/// through a named pool's switches, channel concat and a global-average-pool head.
fn model_dag_matches_finite_differences(be: &dyn Backend) {
    let spec = ModelSpec::from_json(
        r#"{"input":[2,8,8],"classes":3,"layers":[
            {"type":"conv2d","out":4,"kernel":3,"padding":1,"name":"stem"},{"type":"batch_norm"},{"type":"tanh"},
            {"type":"max_pool","name":"pool"},
            {"type":"inception","b1":2,"b3_reduce":2,"b3":2,"b5_reduce":1,"b5":2,"pool_proj":2,"name":"inc"},
            {"type":"inception","b1":2,"b3_reduce":9,"b3":2,"b5_reduce":9,"b5":2,"pool_proj":2,"reduce":false,"name":"naive"},
            {"type":"conv2d","out":8,"kernel":1,"inputs":["pool"],"name":"proj"},
            {"type":"add","inputs":["naive","proj"]},
            {"type":"conv2d","out":4,"kernel":1},
            {"type":"max_unpool","pool":"pool"},
            {"type":"concat","inputs":["9","stem"]},
            {"type":"dropout","p":0.3},
            {"type":"global_avg_pool"},
            {"type":"linear","out":5},{"type":"batch_norm"},{"type":"dropout","p":0.2,"scaling":"classic"},
            {"type":"linear","out":3}]}"#,
    )
    .unwrap();
    let mut rng = Rng::new(11);
    let (model, mut params) = Model::build(&spec, be, &mut rng).unwrap();
    let x = rand(&mut rng, 4 * 2 * 8 * 8);
    let labels = [0u32, 2, 1, 2];
    tape_check(be, &mut params, &|tape| {
        let y = be.upload_indices(Shape::new(&[4]), &labels).unwrap();
        let xv = tape.input(up(be, &[4, 2, 8, 8], &x));
        // the same masks on every evaluation of the loss
        let mut masks = Rng::new(99);
        let mut pass = Pass {
            mode: Mode::Train,
            rng: Some(&mut masks),
            dropout_p: None,
            dropout_scaling: None,
            test_dropout: Default::default(),
        };
        let z = model.forward(tape, xv, &mut pass).unwrap().output();
        tape.cross_entropy(z, &y).unwrap().loss
    });
}

#[test]
fn cpu_model_dag_matches_finite_differences() {
    model_dag_matches_finite_differences(&CpuBackend::new());
}

#[test]
fn gpu_model_dag_matches_finite_differences() {
    if let Some(g) = gpu() {
        model_dag_matches_finite_differences(&g);
    }
}

#[test]
fn cpu_losses_match_finite_differences() {
    losses_match_finite_differences(&CpuBackend::new());
}

#[test]
fn gpu_losses_match_finite_differences() {
    if let Some(g) = gpu() {
        losses_match_finite_differences(&g);
    }
}

#[test]
fn cpu_tape_losses_match_finite_differences() {
    tape_losses_match_finite_differences(&CpuBackend::new());
}

#[test]
fn gpu_tape_losses_match_finite_differences() {
    if let Some(g) = gpu() {
        tape_losses_match_finite_differences(&g);
    }
}

#[test]
fn cpu_backward_sum_is_the_sum_of_backwards() {
    backward_sum_is_the_sum_of_backwards(&CpuBackend::new());
}

#[test]
fn gpu_backward_sum_is_the_sum_of_backwards() {
    if let Some(g) = gpu() {
        backward_sum_is_the_sum_of_backwards(&g);
    }
}

/// `a` (GPU) against `b` (CPU), elementwise within `tol` of the larger of 1e-3 and
/// the largest |b| (Dice gradients are small everywhere, so a per-element relative bound
/// would be too strict and an absolute one too loose).
fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what} [{i}]: gpu {x} vs cpu {y}");
    }
}

/// The loss ops on the GPU give the CPU's loss, gradient and correct count, on sizes that
/// take every reduction through its strided loop (more than 256 elements or pixels per
/// thread group) and logits up to ±60 (BCE's stable form, the softmax's max shift).
#[test]
fn gpu_losses_equal_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = CpuBackend::new();
    let mut rng = Rng::new(31);
    let both = |dims: &[usize], data: &[f32]| (up(&cpu, dims, data), up(&gpu, dims, data));
    // point losses on (3,5,17,13)
    let dims = [3, 5, 17, 13];
    let numel = dims.iter().product();
    let pred: Vec<f32> = (0..numel)
        .map(|i| rng.uniform(-2.0, 2.0) * if i % 7 == 0 { 30.0 } else { 1.0 })
        .collect();
    let soft: Vec<f32> = (0..numel).map(|_| rng.uniform(0.0, 1.0)).collect();
    let weight: Vec<f32> = (0..numel).map(|_| rng.below(3) as f32 * 0.5).collect();
    let (pc, pg) = both(&dims, &pred);
    let (tc, tg) = both(&dims, &soft);
    let (wc, wg) = both(&dims, &weight);
    for kind in [
        PointLoss::SmoothL1 { beta: 1.0 },
        PointLoss::SmoothL1 { beta: 0.1 },
        PointLoss::SmoothL1 { beta: 0.0 },
        PointLoss::BceWithLogits,
        PointLoss::Mse,
    ] {
        let c = cpu.point_loss(&pc, &tc, &wc, kind, 0.3).unwrap();
        let g = gpu.point_loss(&pg, &tg, &wg, kind, 0.3).unwrap();
        let what = format!("point_loss {kind:?}");
        assert_close(
            &format!("{what} loss"),
            &read(&gpu, &g.loss),
            &read(&cpu, &c.loss),
            1e-5,
        );
        assert_close(
            &format!("{what} dpred"),
            &read(&gpu, &g.dpred),
            &read(&cpu, &c.dpred),
            1e-5,
        );
    }
    // per-pixel cross-entropy and Dice on (2,5,17,13) and (300,7)
    for (dims, pixels) in [(vec![2, 5, 17, 13], vec![2, 17, 13]), (vec![300, 7], vec![300])] {
        let numel: usize = dims.iter().product();
        let m: usize = pixels.iter().product();
        let z: Vec<f32> = (0..numel)
            .map(|i| rng.uniform(-3.0, 3.0) * if i % 11 == 0 { 20.0 } else { 1.0 })
            .collect();
        let y = labels(&mut rng, m, dims[1]);
        let w: Vec<f32> = (0..m).map(|_| rng.uniform(0.0, 2.0)).collect();
        let (zc, zg) = both(&dims, &z);
        let (wc, wg) = both(&pixels, &w);
        let yc = cpu.upload_indices(Shape::new(&pixels), &y).unwrap();
        let yg = gpu.upload_indices(Shape::new(&pixels), &y).unwrap();
        let c = cpu.softmax_ce_map(&zc, &yc, &wc, 0.7).unwrap();
        let g = gpu.softmax_ce_map(&zg, &yg, &wg, 0.7).unwrap();
        let what = format!("softmax_ce_map {dims:?}");
        assert_close(
            &format!("{what} loss"),
            &read(&gpu, &g.loss),
            &read(&cpu, &c.loss),
            1e-5,
        );
        assert_close(
            &format!("{what} dlogits"),
            &read(&gpu, &g.dlogits),
            &read(&cpu, &c.dlogits),
            1e-5,
        );
        assert_close(
            &format!("{what} correct"),
            &read(&gpu, &g.correct),
            &read(&cpu, &c.correct),
            1e-5,
        );
        let c = cpu.softmax_dice(&zc, &yc, 2.0).unwrap();
        let g = gpu.softmax_dice(&zg, &yg, 2.0).unwrap();
        let what = format!("softmax_dice {dims:?}");
        assert_close(
            &format!("{what} loss"),
            &read(&gpu, &g.loss),
            &read(&cpu, &c.loss),
            1e-5,
        );
        assert_close(
            &format!("{what} dlogits"),
            &read(&gpu, &g.dpred),
            &read(&cpu, &c.dpred),
            1e-4,
        );
    }
}

/// The error message of a result, for `loss_errors_name_the_op`.
fn msg<T>(r: cnn_playground::Result<T>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// Loss errors name the op and the problem, on both backends (the GPU checks with the
/// CPU's geometry functions).
#[test]
fn loss_errors_name_the_op() {
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new())];
    backends.extend(gpu().map(|g| Box::new(g) as Box<dyn Backend>));
    for be in &backends {
        let be = be.as_ref();
        let (a, b) = (up(be, &[2, 3], &[0.0; 6]), up(be, &[3, 2], &[0.0; 6]));
        let expect = |r: Result<(), String>, starts: &str| match r {
            Err(e) => assert!(e.starts_with(starts), "{}: {e}", be.name()),
            Ok(()) => panic!("{}: {starts} should fail", be.name()),
        };
        expect(
            msg(be.point_loss(&a, &b, &a, PointLoss::Mse, 1.0)),
            "point_loss: mse: pred, target",
        );
        let beta = PointLoss::SmoothL1 { beta: -1.0 };
        expect(msg(be.point_loss(&a, &a, &a, beta, 1.0)), "point_loss: smooth_l1: beta");
        let y3 = be.upload_indices(Shape::new(&[3]), &[0, 1, 2]).unwrap();
        expect(
            msg(be.softmax_dice(&a, &y3, 1.0)),
            "softmax_dice: need K ≥ 1 classes and labels",
        );
        let w3 = up(be, &[3], &[1.0; 3]);
        let y2 = be.upload_indices(Shape::new(&[2]), &[0, 1]).unwrap();
        expect(msg(be.softmax_ce_map(&a, &y2, &w3, 1.0)), "softmax_ce_map: need K");
    }
    // labels are checked where they are readable: on the CPU
    let cpu = CpuBackend::new();
    let a = up(&cpu, &[2, 3], &[0.0; 6]);
    let y = cpu.upload_indices(Shape::new(&[2]), &[0, 3]).unwrap();
    let Err(e) = cpu.softmax_ce_map(&a, &y, &up(&cpu, &[2], &[1.0; 2]), 1.0) else {
        panic!("label 3 of 3 classes")
    };
    assert!(e.to_string().starts_with("softmax_ce_map: label 3 out of range"), "{e}");
}
