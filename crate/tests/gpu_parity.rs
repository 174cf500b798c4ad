//! The GPU backend against the CPU backend (the specification): every op, forward and
//! backward, on small seeded random shapes, element-wise within 1e-4 · max(1, |cpu|).
//! Also the GPU rules that parity alone would not catch: buffer and pipeline reuse, many
//! ops in one encoder, 2-D dispatch of large element counts, uploads that must not race
//! pending work, and errors that match the CPU's.
//!
//! Without an adapter every test prints "skipped: no GPU adapter" and passes. Natively on
//! a machine without a GPU, Mesa's lavapipe (`mesa-vulkan-drivers`) provides one.
#![cfg(not(target_arch = "wasm32"))]

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::GpuBackend;
use cnn_playground::backend::{
    Activation, AdamHyper, Backend, Conv2dParams, ConvTransposeParams, PointLoss, PoolParams, SgdHyper, UpsampleMode,
};
use cnn_playground::tensor::{Indices, Shape, Tensor};

const TOL: f32 = 1e-4;

// ---- setup ------------------------------------------------------------------------------

/// The CPU reference and the GPU under test, fed the same host data.
struct Pair {
    cpu: CpuBackend,
    gpu: GpuBackend,
    rng: Rng,
}

/// A `Pair`, or `None` (after saying so) when this machine has no adapter.
fn pair(seed: u64) -> Option<Pair> {
    match pollster::block_on(GpuBackend::request()) {
        Ok(gpu) => Some(Pair {
            cpu: CpuBackend::new(),
            gpu,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        }),
        Err(e) => {
            println!("skipped: no GPU adapter ({e})");
            None
        }
    }
}

/// xorshift64*: small, seeded, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl Pair {
    fn data(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.rng.unit()).collect()
    }

    /// Values on a coarse grid (multiples of 0.25), so windows and rows contain ties.
    fn coarse(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| (self.rng.unit() * 4.0).round() / 4.0).collect()
    }

    /// The same host data uploaded to both backends.
    fn up(&self, dims: &[usize], data: &[f32]) -> (Tensor, Tensor) {
        let c = self.cpu.upload(Shape::new(dims), data).expect("cpu upload");
        let g = self.gpu.upload(Shape::new(dims), data).expect("gpu upload");
        (c, g)
    }

    fn rand(&mut self, dims: &[usize]) -> (Tensor, Tensor) {
        let data = self.data(dims.iter().product());
        self.up(dims, &data)
    }

    fn up_idx(&self, dims: &[usize], data: &[u32]) -> (Indices, Indices) {
        let c = self.cpu.upload_indices(Shape::new(dims), data).expect("cpu upload");
        let g = self.gpu.upload_indices(Shape::new(dims), data).expect("gpu upload");
        (c, g)
    }
}

fn read(b: &dyn Backend, t: &Tensor) -> Vec<f32> {
    pollster::block_on(b.read(t)).expect("read")
}

/// Element-wise |gpu - cpu| <= TOL · max(1, |cpu|), shapes equal; names the op and the
/// first few mismatches.
fn assert_close(what: &str, cpu: &Tensor, gpu: &Tensor, p: &Pair) {
    assert_eq!(cpu.dims(), gpu.dims(), "{what}: shapes differ");
    let want = read(&p.cpu, cpu);
    let got = read(&p.gpu, gpu);
    assert_eq!(want.len(), got.len(), "{what}: lengths differ");
    let bad: Vec<String> = want
        .iter()
        .zip(&got)
        .enumerate()
        .filter(|(_, (w, g))| (*w - *g).abs() > TOL * w.abs().max(1.0) || w.is_nan() != g.is_nan())
        .take(5)
        .map(|(i, (w, g))| format!("[{i}] cpu {w} gpu {g}"))
        .collect();
    assert!(
        bad.is_empty(),
        "{what} {:?}: GPU differs from CPU: {}",
        cpu.dims(),
        bad.join(", ")
    );
}

// ---- convolution ---------------------------------------------------------------------------

/// (x dims, out channels, kernel, stride, padding)
const CONV_CASES: &[([usize; 4], usize, usize, usize, usize)] = &[
    ([2, 3, 7, 6], 4, 3, 1, 1),
    ([2, 3, 7, 6], 4, 3, 2, 0),
    ([1, 2, 9, 9], 3, 3, 2, 1),
    ([3, 4, 5, 5], 2, 1, 1, 0),
    ([1, 1, 8, 7], 5, 5, 3, 2),
    ([2, 2, 4, 4], 3, 4, 1, 0),
    // 40 images, 2304 weights: the weight gradient sums uneven slices of 2 images
    ([40, 16, 6, 6], 16, 3, 1, 1),
];

#[test]
fn conv2d_forward_and_backward_match_cpu() {
    let Some(mut p) = pair(1) else { return };
    for &(xd, o, k, stride, padding) in CONV_CASES {
        let cp = Conv2dParams { stride, padding };
        let (xc, xg) = p.rand(&xd);
        let (wc, wg) = p.rand(&[o, xd[1], k, k]);
        let (bc, bg) = p.rand(&[o]);
        let yc = p.cpu.conv2d(&xc, &wc, &bc, cp).expect("cpu conv2d");
        let yg = p.gpu.conv2d(&xg, &wg, &bg, cp).expect("gpu conv2d");
        let case = format!("conv2d x{xd:?} k{k} s{stride} p{padding}");
        assert_close(&format!("{case}: y"), &yc, &yg, &p);

        let (dyc, dyg) = p.rand(yc.dims());
        let dxc = p.cpu.conv2d_backward_input(&dyc, &wc, &xc.shape, cp).expect("cpu dx");
        let dxg = p.gpu.conv2d_backward_input(&dyg, &wg, &xg.shape, cp).expect("gpu dx");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);

        let (dwc, dbc) = p.cpu.conv2d_backward_weight(&dyc, &xc, &wc.shape, cp).expect("cpu dw");
        let (dwg, dbg) = p.gpu.conv2d_backward_weight(&dyg, &xg, &wg.shape, cp).expect("gpu dw");
        assert_close(&format!("{case}: dw"), &dwc, &dwg, &p);
        assert_close(&format!("{case}: db"), &dbc, &dbg, &p);
    }
}

/// (x dims, out channels, kernel, stride, padding, output_padding)
const CONV_TRANSPOSE_CASES: &[([usize; 4], usize, usize, usize, usize, usize)] = &[
    ([2, 3, 4, 5], 4, 3, 1, 0, 0),
    ([2, 3, 4, 5], 4, 3, 2, 1, 1),
    ([1, 2, 5, 3], 3, 4, 2, 1, 0),
    ([1, 4, 3, 3], 2, 1, 3, 0, 2),
    ([2, 2, 3, 4], 3, 5, 3, 2, 1),
    // 40 images: the weight gradient sums slices of the batch
    ([40, 8, 4, 4], 8, 3, 2, 1, 1),
];

#[test]
fn conv_transpose2d_forward_and_backward_match_cpu() {
    let Some(mut p) = pair(16) else { return };
    for &(xd, o, k, stride, padding, output_padding) in CONV_TRANSPOSE_CASES {
        let tp = ConvTransposeParams {
            stride,
            padding,
            output_padding,
        };
        let (xc, xg) = p.rand(&xd);
        let (wc, wg) = p.rand(&[xd[1], o, k, k]);
        let (bc, bg) = p.rand(&[o]);
        let yc = p.cpu.conv_transpose2d(&xc, &wc, &bc, tp).expect("cpu conv_transpose2d");
        let yg = p.gpu.conv_transpose2d(&xg, &wg, &bg, tp).expect("gpu conv_transpose2d");
        let case = format!("conv_transpose2d x{xd:?} k{k} s{stride} p{padding} op{output_padding}");
        assert_close(&format!("{case}: y"), &yc, &yg, &p);

        let (dyc, dyg) = p.rand(yc.dims());
        let (dxc, dwc, dbc) = p
            .cpu
            .conv_transpose2d_backward(&dyc, &xc, &wc, tp)
            .expect("cpu backward");
        let (dxg, dwg, dbg) = p
            .gpu
            .conv_transpose2d_backward(&dyg, &xg, &wg, tp)
            .expect("gpu backward");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
        assert_close(&format!("{case}: dw"), &dwc, &dwg, &p);
        assert_close(&format!("{case}: db"), &dbc, &dbg, &p);
    }
}

#[test]
fn upsample_forward_and_backward_match_cpu() {
    let Some(mut p) = pair(17) else { return };
    for (xd, scale) in [
        ([2, 3, 4, 5], 2),
        ([1, 2, 3, 7], 3),
        ([1, 1, 1, 2], 4),
        ([2, 2, 5, 3], 1),
    ] {
        for mode in [UpsampleMode::Nearest, UpsampleMode::Bilinear] {
            let case = format!("upsample {mode:?} x{xd:?} s{scale}");
            let (xc, xg) = p.rand(&xd);
            let yc = p.cpu.upsample2d(&xc, scale, mode).expect("cpu upsample2d");
            let yg = p.gpu.upsample2d(&xg, scale, mode).expect("gpu upsample2d");
            assert_close(&format!("{case}: y"), &yc, &yg, &p);
            let (dyc, dyg) = p.rand(yc.dims());
            let dxc = p.cpu.upsample2d_backward(&dyc, &xc.shape, scale, mode).expect("cpu dx");
            let dxg = p.gpu.upsample2d_backward(&dyg, &xg.shape, scale, mode).expect("gpu dx");
            assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
        }
    }
}

// ---- batch normalization ---------------------------------------------------------------------

#[test]
fn batch_norm_train_eval_and_running_update_match_cpu() {
    let Some(mut p) = pair(18) else { return };
    // (x dims, offset added to x): 2-D and 1-D; n = N·H·W of 2; n = 1280 per channel, so
    // each of a reduction's 256 threads sums five values; 70 channels (70 workgroups); a
    // mean far from zero, which a one-pass variance would lose in f32
    let cases: [(&[usize], f32); 6] = [
        (&[2, 3, 4, 5], 0.0),
        (&[6, 4], 0.0),
        (&[2, 3, 1, 1], 0.0),
        (&[4, 3, 16, 20], 0.0),
        (&[8, 70], 0.0),
        (&[3, 2, 5, 5], 40.0),
    ];
    for (dims, offset) in cases {
        let c = dims[1];
        let count = dims.iter().product::<usize>() / c;
        let x: Vec<f32> = p.data(count * c).iter().map(|v| 2.0 * v + offset).collect();
        let (xc, xg) = p.up(dims, &x);
        let (gc, gg) = p.rand(&[c]);
        let (bc, bg) = p.rand(&[c]);
        let (dyc, dyg) = p.rand(dims);
        let running_var: Vec<f32> = p.data(c).iter().map(|v| 1.0 + 0.5 * v).collect();
        let (mut rvc, mut rvg) = p.up(&[c], &running_var);
        let (mut rmc, mut rmg) = p.rand(&[c]);

        let case = format!("batch_norm_train {dims:?} offset {offset}");
        let oc = p.cpu.batch_norm_train(&xc, &gc, &bc, 1e-5).expect("cpu train");
        let og = p.gpu.batch_norm_train(&xg, &gg, &bg, 1e-5).expect("gpu train");
        assert_close(&format!("{case}: y"), &oc.y, &og.y, &p);
        assert_close(&format!("{case}: mean"), &oc.mean, &og.mean, &p);
        assert_close(&format!("{case}: var"), &oc.var, &og.var, &p);
        assert_close(&format!("{case}: invstd"), &oc.invstd, &og.invstd, &p);
        let (dxc, dgc, dbc) = p
            .cpu
            .batch_norm_train_backward(&dyc, &xc, &gc, &oc.mean, &oc.invstd)
            .expect("cpu train backward");
        let (dxg, dgg, dbg) = p
            .gpu
            .batch_norm_train_backward(&dyg, &xg, &gg, &og.mean, &og.invstd)
            .expect("gpu train backward");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
        assert_close(&format!("{case}: dgamma"), &dgc, &dgg, &p);
        assert_close(&format!("{case}: dbeta"), &dbc, &dbg, &p);

        // the running update, on the GPU without a readback, twice in one encoder
        for _ in 0..2 {
            p.cpu
                .batch_norm_update_running(&mut rmc, &mut rvc, &oc.mean, &oc.var, count, 0.1)
                .expect("cpu update");
            p.gpu
                .batch_norm_update_running(&mut rmg, &mut rvg, &og.mean, &og.var, count, 0.1)
                .expect("gpu update");
        }
        assert_close(&format!("{case}: running mean"), &rmc, &rmg, &p);
        assert_close(&format!("{case}: running var"), &rvc, &rvg, &p);

        let case = format!("batch_norm_eval {dims:?} offset {offset}");
        let oc = p
            .cpu
            .batch_norm_eval(&xc, &gc, &bc, &rmc, &rvc, 1e-5)
            .expect("cpu eval");
        let og = p
            .gpu
            .batch_norm_eval(&xg, &gg, &bg, &rmg, &rvg, 1e-5)
            .expect("gpu eval");
        assert_close(&format!("{case}: y"), &oc.y, &og.y, &p);
        assert_close(&format!("{case}: mean"), &oc.mean, &og.mean, &p);
        assert_close(&format!("{case}: var"), &oc.var, &og.var, &p);
        assert_close(&format!("{case}: invstd"), &oc.invstd, &og.invstd, &p);
        let (dxc, dgc, dbc) = p
            .cpu
            .batch_norm_eval_backward(&dyc, &xc, &gc, &oc.mean, &oc.invstd)
            .expect("cpu eval backward");
        let (dxg, dgg, dbg) = p
            .gpu
            .batch_norm_eval_backward(&dyg, &xg, &gg, &og.mean, &og.invstd)
            .expect("gpu eval backward");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
        assert_close(&format!("{case}: dgamma"), &dgc, &dgg, &p);
        assert_close(&format!("{case}: dbeta"), &dbc, &dbg, &p);
    }
}

// ---- linear --------------------------------------------------------------------------------

#[test]
fn linear_forward_and_backward_match_cpu() {
    let Some(mut p) = pair(2) else { return };
    // (N, K, O): tile multiples, ragged edges, and a 1×1×1 corner case
    for &(n, k, o) in &[(5, 37, 19), (32, 16, 16), (33, 17, 10), (1, 1, 1), (7, 70, 3)] {
        let (xc, xg) = p.rand(&[n, k]);
        let (wc, wg) = p.rand(&[o, k]);
        let (bc, bg) = p.rand(&[o]);
        let case = format!("linear N{n} K{k} O{o}");
        let yc = p.cpu.linear(&xc, &wc, &bc).expect("cpu linear");
        let yg = p.gpu.linear(&xg, &wg, &bg).expect("gpu linear");
        assert_close(&format!("{case}: y"), &yc, &yg, &p);

        let (dyc, dyg) = p.rand(&[n, o]);
        let (dxc, dwc, dbc) = p.cpu.linear_backward(&dyc, &xc, &wc).expect("cpu backward");
        let (dxg, dwg, dbg) = p.gpu.linear_backward(&dyg, &xg, &wg).expect("gpu backward");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
        assert_close(&format!("{case}: dw"), &dwc, &dwg, &p);
        assert_close(&format!("{case}: db"), &dbc, &dbg, &p);
    }
}

// ---- activations and accumulation ------------------------------------------------------------

#[test]
fn activations_and_add_assign_match_cpu() {
    let Some(mut p) = pair(3) else { return };
    let dims = [3, 5, 7];
    for a in [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.01 },
        Activation::LeakyRelu { slope: 0.2 },
        Activation::Tanh,
        Activation::Sigmoid,
    ] {
        // exact zeros included (f'(0) takes the x ≤ 0 branch on both), and saturated values
        let mut data = p.coarse(105);
        data[..4].copy_from_slice(&[-30.0, 30.0, -100.0, 100.0]);
        let (xc, xg) = p.up(&dims, &data);
        let yc = p.cpu.activation(&xc, a).expect("cpu activation");
        let yg = p.gpu.activation(&xg, a).expect("gpu activation");
        assert_close(&format!("{a:?}: y"), &yc, &yg, &p);

        let (dyc, dyg) = p.rand(&dims);
        let dxc = p
            .cpu
            .activation_backward(&dyc, &xc, &yc, a)
            .expect("cpu activation_backward");
        let dxg = p
            .gpu
            .activation_backward(&dyg, &xg, &yg, a)
            .expect("gpu activation_backward");
        assert_close(&format!("{a:?}: dx"), &dxc, &dxg, &p);
    }

    let (mut acc_c, mut acc_g) = p.rand(&[4, 33]);
    for _ in 0..3 {
        let (xc, xg) = p.rand(&[4, 33]);
        p.cpu.add_assign(&mut acc_c, &xc).expect("cpu add_assign");
        p.gpu.add_assign(&mut acc_g, &xg).expect("gpu add_assign");
    }
    assert_close("add_assign", &acc_c, &acc_g, &p);
}

// ---- pooling --------------------------------------------------------------------------------

/// (x dims, window, stride, padding): tiling, overlapping windows, ragged edges, padding.
const POOL_CASES: &[([usize; 4], usize, usize, usize)] = &[
    ([2, 3, 8, 8], 2, 2, 0),
    ([2, 2, 7, 7], 3, 2, 0),
    ([1, 3, 6, 5], 3, 1, 0),
    ([2, 1, 9, 6], 2, 3, 0),
    ([1, 2, 4, 4], 4, 4, 0),
    ([2, 2, 7, 7], 3, 2, 1),
    ([1, 3, 6, 5], 3, 1, 1),
    ([2, 1, 5, 6], 2, 2, 1),
    ([1, 2, 9, 8], 5, 2, 2),
    ([1, 1, 3, 3], 4, 3, 2),
];

#[test]
fn max_pool_values_indices_and_backward_match_cpu() {
    let Some(mut p) = pair(4) else { return };
    for &(xd, kernel, stride, padding) in POOL_CASES {
        let pp = PoolParams {
            kernel,
            stride,
            padding,
        };
        let case = format!("max_pool2d x{xd:?} k{kernel} s{stride} p{padding}");
        let data = p.coarse(xd.iter().product()); // ties: the first maximum must win
        let (xc, xg) = p.up(&xd, &data);
        let (yc, ic) = p.cpu.max_pool2d(&xc, pp).expect("cpu max_pool2d");
        let (yg, ig) = p.gpu.max_pool2d(&xg, pp).expect("gpu max_pool2d");
        assert_close(&format!("{case}: y"), &yc, &yg, &p);
        let got = pollster::block_on(p.gpu.read_indices(&ig)).expect("read indices");
        assert_eq!(ic.cpu().expect("cpu indices"), got.as_slice(), "{case}: indices");

        let (dyc, dyg) = p.rand(yc.dims());
        let dxc = p.cpu.max_pool2d_backward(&dyc, &ic, &xc.shape).expect("cpu backward");
        let dxg = p.gpu.max_pool2d_backward(&dyg, &ig, &xg.shape).expect("gpu backward");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
    }
}

#[test]
fn max_pool_backward_routes_uploaded_indices_like_cpu() {
    // Indices need not come from a forward pass (max-unpooling reuses them): any index
    // inside the plane, repeated ones included, must be routed the same way.
    let Some(mut p) = pair(5) else { return };
    let (xd, yd) = ([2, 3, 5, 4], [2, 3, 3, 3]);
    let idx: Vec<u32> = (0..54).map(|_| p.rng.below(20) as u32).collect();
    let (ic, ig) = p.up_idx(&yd, &idx);
    let (dyc, dyg) = p.rand(&yd);
    let x_shape = Shape::new(&xd);
    let dxc = p.cpu.max_pool2d_backward(&dyc, &ic, &x_shape).expect("cpu backward");
    let dxg = p.gpu.max_pool2d_backward(&dyg, &ig, &x_shape).expect("gpu backward");
    assert_close("max_pool2d_backward (uploaded indices)", &dxc, &dxg, &p);
}

#[test]
fn avg_pool_forward_and_backward_match_cpu() {
    let Some(mut p) = pair(6) else { return };
    for &(xd, kernel, stride, padding) in POOL_CASES {
        let pp = PoolParams {
            kernel,
            stride,
            padding,
        };
        let case = format!("avg_pool2d x{xd:?} k{kernel} s{stride} p{padding}");
        let (xc, xg) = p.rand(&xd);
        let yc = p.cpu.avg_pool2d(&xc, pp).expect("cpu avg_pool2d");
        let yg = p.gpu.avg_pool2d(&xg, pp).expect("gpu avg_pool2d");
        assert_close(&format!("{case}: y"), &yc, &yg, &p);

        let (dyc, dyg) = p.rand(yc.dims());
        let dxc = p.cpu.avg_pool2d_backward(&dyc, &xc.shape, pp).expect("cpu backward");
        let dxg = p.gpu.avg_pool2d_backward(&dyg, &xg.shape, pp).expect("gpu backward");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
    }
}

#[test]
fn max_pool_with_nan_and_infinities_matches_cpu() {
    // NaN beats any number (the last NaN of a window wins), an all -inf window reports its
    // first cell, and ties keep the first maximum, with and without padding.
    let Some(mut p) = pair(18) else { return };
    let mut data = p.coarse(2 * 3 * 6 * 7);
    for (i, v) in data.iter_mut().enumerate() {
        match i % 11 {
            0 => *v = f32::NAN,
            3..=5 => *v = f32::NEG_INFINITY,
            7 => *v = f32::INFINITY,
            _ => {}
        }
    }
    let (xc, xg) = p.up(&[2, 3, 6, 7], &data);
    for (kernel, stride, padding) in [(2, 2, 0), (3, 1, 1), (3, 2, 1)] {
        let pp = PoolParams {
            kernel,
            stride,
            padding,
        };
        let case = format!("max_pool2d with NaN/inf k{kernel} s{stride} p{padding}");
        let (yc, ic) = p.cpu.max_pool2d(&xc, pp).expect("cpu max_pool2d");
        let (yg, ig) = p.gpu.max_pool2d(&xg, pp).expect("gpu max_pool2d");
        let (want, got) = (read(&p.cpu, &yc), read(&p.gpu, &yg));
        let same = want.iter().zip(&got).all(|(w, g)| w == g || (w.is_nan() && g.is_nan()));
        assert!(same, "{case}: y differs: cpu {want:?} gpu {got:?}");
        let got = pollster::block_on(p.gpu.read_indices(&ig)).expect("read indices");
        assert_eq!(ic.cpu().expect("cpu indices"), got.as_slice(), "{case}: indices");
    }
}

// ---- dropout, add, concat, global pooling, unpooling ------------------------------------------

#[test]
fn dropout_add_and_scale_match_cpu() {
    let Some(mut p) = pair(19) else { return };
    let dims = [3, 4, 5, 7];
    let n = dims.iter().product();
    let mask: Vec<f32> = (0..n).map(|_| p.rng.below(2) as f32).collect();
    let (mc, mg) = p.up(&dims, &mask);
    let (xc, xg) = p.rand(&dims);
    for scale in [1.0 / (1.0 - 0.3), 2.0, 5.0] {
        let yc = p.cpu.mul_mask(&xc, &mc, scale).expect("cpu mul_mask");
        let yg = p.gpu.mul_mask(&xg, &mg, scale).expect("gpu mul_mask");
        assert_close(&format!("mul_mask scale {scale}"), &yc, &yg, &p);
    }
    let yc = p.cpu.scale(&xc, 0.7).expect("cpu scale");
    let yg = p.gpu.scale(&xg, 0.7).expect("gpu scale");
    assert_close("scale 0.7", &yc, &yg, &p);
    let (bc, bg) = p.rand(&dims);
    let yc = p.cpu.add(&xc, &bc).expect("cpu add");
    let yg = p.gpu.add(&xg, &bg).expect("gpu add");
    assert_close("add", &yc, &yg, &p);
}

#[test]
fn concat_and_slice_match_cpu() {
    let Some(mut p) = pair(20) else { return };
    for shapes in [
        vec![vec![2, 3, 4, 5], vec![2, 1, 4, 5], vec![2, 4, 4, 5]],
        vec![vec![3, 5], vec![3, 2], vec![3, 7]],
        vec![vec![1, 2, 3, 3]],
    ] {
        let (cs, gs): (Vec<Tensor>, Vec<Tensor>) = shapes.iter().map(|d| p.rand(d)).unzip();
        let yc = p
            .cpu
            .concat_channels(&cs.iter().collect::<Vec<_>>())
            .expect("cpu concat");
        let yg = p
            .gpu
            .concat_channels(&gs.iter().collect::<Vec<_>>())
            .expect("gpu concat");
        assert_close(&format!("concat {shapes:?}"), &yc, &yg, &p);
        let channels = yc.dims()[1];
        for (start, len) in [(0, 1), (1, channels - 1), (0, channels), (channels - 1, 1)] {
            let sc = p.cpu.slice_channels(&yc, start, len).expect("cpu slice");
            let sg = p.gpu.slice_channels(&yg, start, len).expect("gpu slice");
            assert_close(&format!("slice {start}+{len} of {:?}", yc.dims()), &sc, &sg, &p);
        }
    }
}

#[test]
fn global_avg_pool_matches_cpu() {
    let Some(mut p) = pair(21) else { return };
    for xd in [[2, 3, 4, 5], [1, 70, 1, 1], [3, 2, 9, 7]] {
        let (xc, xg) = p.rand(&xd);
        let yc = p.cpu.global_avg_pool(&xc).expect("cpu global_avg_pool");
        let yg = p.gpu.global_avg_pool(&xg).expect("gpu global_avg_pool");
        assert_close(&format!("global_avg_pool x{xd:?}"), &yc, &yg, &p);
        let (dyc, dyg) = p.rand(yc.dims());
        let dxc = p.cpu.global_avg_pool_backward(&dyc, &xc.shape).expect("cpu backward");
        let dxg = p.gpu.global_avg_pool_backward(&dyg, &xg.shape).expect("gpu backward");
        assert_close(&format!("global_avg_pool x{xd:?}: dx"), &dxc, &dxg, &p);
    }
}

#[test]
fn max_unpool_matches_cpu_with_pooled_and_colliding_switches() {
    let Some(mut p) = pair(22) else { return };
    // switches from a max pool (overlapping windows with padding: collisions)...
    for &(xd, kernel, stride, padding) in POOL_CASES {
        let pp = PoolParams {
            kernel,
            stride,
            padding,
        };
        let case = format!("max_unpool2d after k{kernel} s{stride} p{padding} on x{xd:?}");
        let (xc, xg) = p.rand(&xd);
        let (_, ic) = p.cpu.max_pool2d(&xc, pp).expect("cpu max_pool2d");
        let (yc_shape, idx) = (ic.shape.clone(), ic.cpu().expect("cpu indices").to_vec());
        let (_, ig) = p.up_idx(yc_shape.dims(), &idx);
        let (vc, vg) = p.rand(yc_shape.dims()); // the decoder's values, not the pooled ones
        let uc = p.cpu.max_unpool2d(&vc, &ic, &xc.shape).expect("cpu unpool");
        let ug = p.gpu.max_unpool2d(&vg, &ig, &xg.shape).expect("gpu unpool");
        assert_close(&format!("{case}: y"), &uc, &ug, &p);
        let (dyc, dyg) = p.rand(&xd);
        let dxc = p.cpu.max_unpool2d_backward(&dyc, &ic).expect("cpu backward");
        let dxg = p.gpu.max_unpool2d_backward(&dyg, &ig).expect("gpu backward");
        assert_close(&format!("{case}: dx"), &dxc, &dxg, &p);
    }
    // ...and arbitrary uploaded switches with many repeats: the last write must win on both
    let (xd, yd) = ([2, 3, 3, 4], [2, 3, 4, 5]);
    let idx: Vec<u32> = (0..72).map(|_| p.rng.below(6) as u32).collect();
    let (ic, ig) = p.up_idx(&xd, &idx);
    let (vc, vg) = p.rand(&xd);
    let out = Shape::new(&yd);
    let uc = p.cpu.max_unpool2d(&vc, &ic, &out).expect("cpu unpool");
    let ug = p.gpu.max_unpool2d(&vg, &ig, &out).expect("gpu unpool");
    assert_close("max_unpool2d (uploaded, colliding switches)", &uc, &ug, &p);
    let (dyc, dyg) = p.rand(&yd);
    let dxc = p.cpu.max_unpool2d_backward(&dyc, &ic).expect("cpu backward");
    let dxg = p.gpu.max_unpool2d_backward(&dyg, &ig).expect("gpu backward");
    assert_close("max_unpool2d_backward (uploaded switches)", &dxc, &dxg, &p);
}

// ---- loss -----------------------------------------------------------------------------------

#[test]
fn softmax_cross_entropy_matches_cpu() {
    let Some(mut p) = pair(7) else { return };
    // 300 rows: more than the reduction's 256 threads
    for &(n, k) in &[(6, 10), (300, 3), (1, 1), (17, 5)] {
        let case = format!("softmax_cross_entropy N{n} K{k}");
        let logits: Vec<f32> = p.coarse(n * k).iter().map(|v| v * 8.0).collect(); // ties
        let (zc, zg) = p.up(&[n, k], &logits);
        let labels: Vec<u32> = (0..n).map(|_| p.rng.below(k) as u32).collect();
        let (lc, lg) = p.up_idx(&[n], &labels);
        let cc = p.cpu.softmax_cross_entropy(&zc, &lc).expect("cpu loss");
        let cg = p.gpu.softmax_cross_entropy(&zg, &lg).expect("gpu loss");
        assert_close(&format!("{case}: loss"), &cc.loss, &cg.loss, &p);
        assert_close(&format!("{case}: dlogits"), &cc.dlogits, &cg.dlogits, &p);
        assert_close(&format!("{case}: correct"), &cc.correct, &cg.correct, &p);
    }
}

// ---- optimizers -----------------------------------------------------------------------------

#[test]
fn task_losses_match_cpu_past_one_workgroup() {
    let Some(mut p) = pair(19) else { return };
    // (N,K,H,W) maps of 1280 values and 320 pixels: more than a 256-thread reduction
    for &dims in &[[2usize, 3, 4, 4], [4, 5, 8, 8], [1, 1, 1, 1]] {
        let [n, k, h, w] = dims;
        let len = n * k * h * w;
        let case = format!("task losses {dims:?}");
        let (pc, pg) = p.rand(&dims);
        let targets: Vec<f32> = p.data(len).iter().map(|v| (v + 1.0) / 2.0).collect(); // in [0, 1]
        let (tc, tg) = p.up(&dims, &targets);
        let weights: Vec<f32> = (0..len).map(|_| p.rng.below(3) as f32 / 2.0).collect(); // 0, 0.5, 1
        let (wc, wg) = p.up(&dims, &weights);
        for kind in [
            PointLoss::SmoothL1 { beta: 1.0 },
            PointLoss::SmoothL1 { beta: 0.0 },
            PointLoss::BceWithLogits,
            PointLoss::Mse,
        ] {
            let what = format!("{case}: point_loss {}", kind.name());
            let lc = p.cpu.point_loss(&pc, &tc, &wc, kind, 0.5).expect("cpu point_loss");
            let lg = p.gpu.point_loss(&pg, &tg, &wg, kind, 0.5).expect("gpu point_loss");
            assert_close(&format!("{what} loss"), &lc.loss, &lg.loss, &p);
            assert_close(&format!("{what} dpred"), &lc.dpred, &lg.dpred, &p);
        }
        let logits: Vec<f32> = p.coarse(len).iter().map(|v| v * 6.0).collect(); // ties for argmax
        let (zc, zg) = p.up(&dims, &logits);
        let labels: Vec<u32> = (0..n * h * w).map(|_| p.rng.below(k) as u32).collect();
        let (yc, yg) = p.up_idx(&[n, h, w], &labels);
        let pixel_w: Vec<f32> = (0..n * h * w).map(|_| 0.5 + p.rng.below(2) as f32).collect();
        let (pwc, pwg) = p.up(&[n, h, w], &pixel_w);
        let scale = 1.0 / (n * h * w) as f32;
        let cc = p.cpu.softmax_ce_map(&zc, &yc, &pwc, scale).expect("cpu softmax_ce_map");
        let cg = p.gpu.softmax_ce_map(&zg, &yg, &pwg, scale).expect("gpu softmax_ce_map");
        assert_close(&format!("{case}: softmax_ce_map loss"), &cc.loss, &cg.loss, &p);
        assert_close(&format!("{case}: softmax_ce_map dlogits"), &cc.dlogits, &cg.dlogits, &p);
        assert_close(&format!("{case}: softmax_ce_map correct"), &cc.correct, &cg.correct, &p);
        let dc = p.cpu.softmax_dice(&zc, &yc, 2.0).expect("cpu softmax_dice");
        let dg = p.gpu.softmax_dice(&zg, &yg, 2.0).expect("gpu softmax_dice");
        assert_close(&format!("{case}: softmax_dice loss"), &dc.loss, &dg.loss, &p);
        assert_close(&format!("{case}: softmax_dice dlogits"), &dc.dpred, &dg.dpred, &p);
    }
}

#[test]
fn sgd_and_adam_steps_match_cpu() {
    let Some(mut p) = pair(8) else { return };
    let dims = [5, 13];
    let (mut pc, mut pg) = p.rand(&dims);
    let (mut vc, mut vg) = (
        p.cpu.zeros(Shape::new(&dims)).expect("zeros"),
        p.gpu.zeros(Shape::new(&dims)).expect("zeros"),
    );
    let h = SgdHyper { lr: 0.1, momentum: 0.9 };
    for step in 0..3 {
        let (gc, gg) = p.rand(&dims);
        p.cpu.sgd_step(&mut pc, &gc, &mut vc, h).expect("cpu sgd");
        p.gpu.sgd_step(&mut pg, &gg, &mut vg, h).expect("gpu sgd");
        assert_close(&format!("sgd step {step}: p"), &pc, &pg, &p);
        assert_close(&format!("sgd step {step}: v"), &vc, &vg, &p);
    }

    let (mut pc, mut pg) = p.rand(&dims);
    let zeros = |b: &dyn Backend| b.zeros(Shape::new(&dims)).expect("zeros");
    let (mut mc, mut mg, mut vc, mut vg) = (zeros(&p.cpu), zeros(&p.gpu), zeros(&p.cpu), zeros(&p.gpu));
    for t in 1..=4 {
        // t = 3 and 4: AdamW's decoupled decay
        let h = AdamHyper {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: if t > 2 { 0.1 } else { 0.0 },
            t,
        };
        let (gc, gg) = p.rand(&dims);
        p.cpu.adam_step(&mut pc, &gc, &mut mc, &mut vc, h).expect("cpu adam");
        p.gpu.adam_step(&mut pg, &gg, &mut mg, &mut vg, h).expect("gpu adam");
        assert_close(&format!("adam t={t}: p"), &pc, &pg, &p);
        assert_close(&format!("adam t={t}: m"), &mc, &mg, &p);
        assert_close(&format!("adam t={t}: v"), &vc, &vg, &p);
    }
}

// ---- regularization -------------------------------------------------------------------------

#[test]
fn regularization_ops_match_cpu_past_a_million_elements() {
    // Sizes: one element, one partial workgroup, several workgroups, and 1.2 M, past the
    // 256·1024 elements where pass 1's threads start to loop (grid stride).
    let Some(mut p) = pair(18) else { return };
    for n in [1usize, 200, 5000, 1_200_000] {
        let mut data = p.data(n);
        for v in data.iter_mut().step_by(7) {
            *v = 0.0; // exact zeros: sign(0) = 0
        }
        let (wc, wg) = p.up(&[n], &data);
        let (mut ac, mut ag) = p.up(&[1], &[0.25]);
        for (l1, l2) in [(1e-3, 0.0), (0.0, 5e-4), (2e-3, 1e-2)] {
            p.cpu.l1_l2_penalty(&wc, l1, l2, &mut ac).expect("cpu penalty");
            p.gpu.l1_l2_penalty(&wg, l1, l2, &mut ag).expect("gpu penalty");
        }
        assert_close(&format!("n={n}: accumulated penalty"), &ac, &ag, &p);
        let (mut gc, mut gg) = p.rand(&[n]);
        p.cpu.l1_l2_grad(&mut gc, &wc, 0.01, 0.1).expect("cpu grad");
        p.gpu.l1_l2_grad(&mut gg, &wg, 0.01, 0.1).expect("gpu grad");
        assert_close(&format!("n={n}: grad"), &gc, &gg, &p);
        let (mut sc, mut sg) = p.up(&[n], &data);
        p.cpu.soft_threshold(&mut sc, 0.3).expect("cpu soft threshold");
        p.gpu.soft_threshold(&mut sg, 0.3).expect("gpu soft threshold");
        assert_close(&format!("n={n}: soft threshold"), &sc, &sg, &p);
        let zeros = |b: &dyn Backend, t: &Tensor| read(b, t).iter().filter(|v| **v == 0.0).count();
        assert_eq!(zeros(&p.cpu, &sc), zeros(&p.gpu, &sg), "n={n}: exact zeros");
    }
    // the accumulator must be a scalar, with the CPU's message
    let (wc, wg) = p.rand(&[4]);
    let (mut bad_c, mut bad_g) = p.rand(&[2]);
    let ec = p
        .cpu
        .l1_l2_penalty(&wc, 1.0, 1.0, &mut bad_c)
        .expect_err("cpu must reject");
    let eg = p
        .gpu
        .l1_l2_penalty(&wg, 1.0, 1.0, &mut bad_g)
        .expect_err("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());
}

// ---- GPU rules ------------------------------------------------------------------------------

/// One small training step (conv → relu → max-pool → linear → loss → backward → SGD),
/// encoded into one command encoder; returns the loss tensor.
fn train_step(
    b: &dyn Backend,
    params: &mut [Tensor; 4],
    vel: &mut [Tensor; 4],
    x: &Tensor,
    labels: &Indices,
) -> Tensor {
    let cp = Conv2dParams { stride: 1, padding: 1 };
    let pp = PoolParams {
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    let h = b.conv2d(x, &params[0], &params[1], cp).expect("conv2d");
    let a = b.activation(&h, Activation::Relu).expect("relu");
    let (pooled, idx) = b.max_pool2d(&a, pp).expect("max_pool2d");
    let pooled_shape = pooled.shape.clone();
    let flat = pooled.reshape(Shape::new(&[x.dims()[0], 2 * 3 * 3])).expect("flatten");
    let logits = b.linear(&flat, &params[2], &params[3]).expect("linear");
    let ce = b.softmax_cross_entropy(&logits, labels).expect("loss");
    let (dflat, dw2, db2) = b
        .linear_backward(&ce.dlogits, &flat, &params[2])
        .expect("linear_backward");
    let dpooled = dflat.reshape(pooled_shape).expect("unflatten");
    let da = b.max_pool2d_backward(&dpooled, &idx, &a.shape).expect("pool backward");
    let dh = b
        .activation_backward(&da, &h, &a, Activation::Relu)
        .expect("relu backward");
    let (dw1, db1) = b
        .conv2d_backward_weight(&dh, x, &params[0].shape, cp)
        .expect("conv backward");
    let grads = [dw1, db1, dw2, db2];
    for ((p, v), g) in params.iter_mut().zip(vel.iter_mut()).zip(&grads) {
        b.sgd_step(p, g, v, SgdHyper { lr: 0.1, momentum: 0.9 }).expect("sgd");
    }
    ce.loss
}

#[test]
fn training_steps_match_cpu_and_reuse_buffers_and_pipelines() {
    let Some(mut p) = pair(9) else { return };
    let shapes: [&[usize]; 4] = [&[2, 1, 3, 3], &[2], &[4, 18], &[4]];
    let mut params_c: Vec<Tensor> = Vec::new();
    let mut params_g: Vec<Tensor> = Vec::new();
    for dims in shapes {
        let data: Vec<f32> = p.data(dims.iter().product()).iter().map(|v| v * 0.5).collect();
        let (c, g) = p.up(dims, &data);
        params_c.push(c);
        params_g.push(g);
    }
    let zeros = |b: &dyn Backend| shapes.map(|d| b.zeros(Shape::new(d)).expect("zeros"));
    let (mut vel_c, mut vel_g) = (zeros(&p.cpu), zeros(&p.gpu));
    let mut params_c: [Tensor; 4] = params_c.try_into().ok().expect("four params");
    let mut params_g: [Tensor; 4] = params_g.try_into().ok().expect("four params");
    let (xc, xg) = p.rand(&[3, 1, 6, 6]);
    let (lc, lg) = p.up_idx(&[3], &[0, 3, 1]);

    p.gpu.warm_up().expect("warm_up");
    let pipelines = p.gpu.stats().pipelines;
    let mut after_first = None;
    for step in 0..4 {
        let loss_c = train_step(&p.cpu, &mut params_c, &mut vel_c, &xc, &lc);
        let loss_g = train_step(&p.gpu, &mut params_g, &mut vel_g, &xg, &lg);
        p.gpu.flush().expect("flush");
        assert_close(&format!("step {step}: loss"), &loss_c, &loss_g, &p);
        for (i, (c, g)) in params_c.iter().zip(&params_g).enumerate() {
            assert_close(&format!("step {step}: param {i}"), c, g, &p);
        }
        let stats = p.gpu.stats();
        assert_eq!(stats.pipelines, pipelines, "step {step} created pipelines");
        match after_first {
            None => after_first = Some(stats.buffers_created),
            Some(created) => {
                assert_eq!(stats.buffers_created, created, "step {step} created buffers")
            }
        }
    }
}

#[test]
fn warm_up_creates_one_pipeline_per_entry_point() {
    let Some(p) = pair(15) else { return };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let entry_points: usize = std::fs::read_dir(dir)
        .expect("shaders/")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("readable shader"))
        .map(|src| src.matches("@compute").count())
        .sum();
    let started = std::time::Instant::now();
    p.gpu.warm_up().expect("every pipeline compiles");
    println!(
        "warm_up: {} pipelines in {:?}",
        p.gpu.stats().pipelines,
        started.elapsed()
    );
    assert_eq!(p.gpu.stats().pipelines, entry_points);
    p.gpu.warm_up().expect("second warm_up");
    assert_eq!(p.gpu.stats().pipelines, entry_points, "pipelines are created once");
}

#[test]
fn uploads_never_overwrite_buffers_that_pending_work_still_reads() {
    // x is uploaded, read by relu, then dropped while that relu is still only encoded. A
    // later upload of the same size must not land in x's buffer: queue writes run before
    // the encoder, so relu would see the new data.
    let Some(p) = pair(10) else { return };
    let dims = [64];
    let first: Vec<f32> = (0..64).map(|i| i as f32 - 20.0).collect();
    let second = vec![-7.0f32; 64];
    let x = p.gpu.upload(Shape::new(&dims), &first).expect("upload");
    let y = p.gpu.activation(&x, Activation::Relu).expect("relu");
    drop(x);
    let z = p.gpu.upload(Shape::new(&dims), &second).expect("upload");
    let want: Vec<f32> = first.iter().map(|v| v.max(0.0)).collect();
    assert_eq!(read(&p.gpu, &y), want);
    assert_eq!(read(&p.gpu, &z), second);
}

#[test]
fn many_dispatches_in_one_encoder_each_keep_their_own_params() {
    // 600 SGD steps with different learning rates, encoded before one submit: more than
    // one params-arena chunk, and every dispatch must see its own lr.
    let Some(mut p) = pair(14) else { return };
    let dims = [3, 7];
    let (mut pc, mut pg) = p.rand(&dims);
    let (gc, gg) = p.rand(&dims);
    let zeros = |b: &dyn Backend| b.zeros(Shape::new(&dims)).expect("zeros");
    let (mut vc, mut vg) = (zeros(&p.cpu), zeros(&p.gpu));
    let before = p.gpu.stats().dispatches;
    for i in 0..600 {
        let h = SgdHyper {
            lr: 1e-3 * (i % 7) as f32,
            momentum: 0.0,
        };
        p.cpu.sgd_step(&mut pc, &gc, &mut vc, h).expect("cpu sgd");
        p.gpu.sgd_step(&mut pg, &gg, &mut vg, h).expect("gpu sgd");
    }
    assert_eq!(p.gpu.stats().dispatches - before, 600);
    assert_close("600 sgd steps in one encoder", &pc, &pg, &p);
}

#[test]
fn dropped_tensors_are_reused_until_the_cache_is_released() {
    let Some(p) = pair(16) else { return };
    let keep = p.gpu.upload(Shape::new(&[10]), &[1.5; 10]).expect("upload");
    let temp = p.gpu.activation(&keep, Activation::Relu).expect("relu");
    drop(temp);
    p.gpu.flush().expect("flush");
    let created = p.gpu.stats().buffers_created;
    let again = p.gpu.activation(&keep, Activation::Relu).expect("relu");
    assert_eq!(p.gpu.stats().buffers_created, created, "the dropped buffer is reused");
    drop(again);
    p.gpu.release_cached_buffers();
    let fresh = p.gpu.activation(&keep, Activation::Relu).expect("relu");
    assert_eq!(p.gpu.stats().buffers_created, created + 1, "the cache was emptied");
    assert_eq!(read(&p.gpu, &fresh), vec![1.5; 10]);
    assert_eq!(read(&p.gpu, &keep), vec![1.5; 10], "live tensors are untouched");
}

#[test]
fn large_element_counts_use_a_two_dimensional_dispatch() {
    // 65535 workgroups of 64 threads cover 4,194,240 elements; go past that.
    let Some(p) = pair(11) else { return };
    let n = 4_194_240 + 1000;
    let data: Vec<f32> = (0..n)
        .map(|i| if i % 3 == 0 { -1.0 } else { (i % 1000) as f32 })
        .collect();
    let x = p.gpu.upload(Shape::new(&[n]), &data).expect("upload");
    let y = p.gpu.activation(&x, Activation::Relu).expect("relu");
    let got = read(&p.gpu, &y);
    assert_eq!(got.len(), n);
    let wrong = got.iter().zip(&data).position(|(g, d)| *g != d.max(0.0));
    assert_eq!(wrong, None, "first wrong element");
}

#[test]
fn graph_ops_use_a_two_dimensional_dispatch_for_large_counts() {
    // past 65535 workgroups of 64 threads: concat, slice, add, mul_mask and scale
    let Some(p) = pair(23) else { return };
    let rows = 4_194_240 / 64 + 50; // (rows, 64) + (rows, 1): 4,197,465 elements
    let a: Vec<f32> = (0..rows * 64).map(|i| (i % 977) as f32).collect();
    let b: Vec<f32> = (0..rows).map(|i| -((i % 13) as f32)).collect();
    let at = p.gpu.upload(Shape::new(&[rows, 64]), &a).expect("upload");
    let bt = p.gpu.upload(Shape::new(&[rows, 1]), &b).expect("upload");
    let y = p.gpu.concat_channels(&[&at, &bt]).expect("concat");
    assert_eq!(y.numel(), rows * 65);
    let want: Vec<f32> = (0..rows)
        .flat_map(|r| a[r * 64..(r + 1) * 64].iter().copied().chain([b[r]]))
        .collect();
    let mask: Vec<f32> = (0..rows * 65).map(|i| (i % 2) as f32).collect();
    let mt = p.gpu.upload(Shape::new(&[rows, 65]), &mask).expect("upload");
    let doubled = p.gpu.add(&y, &y).expect("add");
    let masked = p.gpu.mul_mask(&doubled, &mt, 0.5).expect("mul_mask");
    let scaled = p.gpu.scale(&masked, 3.0).expect("scale");
    let back = p.gpu.slice_channels(&y, 64, 1).expect("slice");
    let got = read(&p.gpu, &scaled);
    let expected: Vec<f32> = want.iter().zip(&mask).map(|(v, m)| 3.0 * (v + v) * m * 0.5).collect();
    assert_eq!(
        got.iter().zip(&expected).position(|(g, e)| g != e),
        None,
        "first wrong element"
    );
    assert_eq!(read(&p.gpu, &back), b);
}

#[test]
fn graph_op_errors_name_the_op_and_match_the_cpu_backend() {
    // Runs on the CPU alone without an adapter; with one, the GPU must say the same.
    let gpu = pollster::block_on(GpuBackend::request()).ok();
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new())];
    backends.extend(gpu.map(|g| Box::new(g) as Box<dyn Backend>));
    let mut messages: Vec<Vec<String>> = Vec::new();
    for b in &backends {
        let t = |dims: &[usize]| {
            let n = dims.iter().product();
            b.upload(Shape::new(dims), &vec![0.5; n]).expect("upload")
        };
        let i = |dims: &[usize]| {
            let n = dims.iter().product();
            b.upload_indices(Shape::new(dims), &vec![0; n]).expect("upload")
        };
        let pool = |padding| PoolParams {
            kernel: 3,
            stride: 1,
            padding,
        };
        let errors = [
            ("mul_mask", b.mul_mask(&t(&[2, 3]), &t(&[3, 2]), 2.0).err()),
            ("add", b.add(&t(&[2, 3, 4, 4]), &t(&[2, 3, 4, 5])).err()),
            (
                "concat_channels",
                b.concat_channels(&[&t(&[2, 3, 4, 4]), &t(&[2, 1, 4, 5])]).err(),
            ),
            (
                "concat_channels",
                b.concat_channels(&[&t(&[2, 3, 4, 4]), &t(&[2, 3])]).err(),
            ),
            ("concat_channels", b.concat_channels(&[]).err()),
            ("slice_channels", b.slice_channels(&t(&[2, 3, 4, 4]), 2, 2).err()),
            ("global_avg_pool", b.global_avg_pool(&t(&[2, 3])).err()),
            (
                "global_avg_pool_backward",
                b.global_avg_pool_backward(&t(&[2, 4]), &Shape::new(&[2, 3, 4, 4]))
                    .err(),
            ),
            (
                "max_unpool2d",
                b.max_unpool2d(&t(&[2, 3, 2, 2]), &i(&[2, 3, 2, 3]), &Shape::new(&[2, 3, 4, 4]))
                    .err(),
            ),
            (
                "max_unpool2d",
                b.max_unpool2d(&t(&[2, 3, 2, 2]), &i(&[2, 3, 2, 2]), &Shape::new(&[2, 4, 4, 4]))
                    .err(),
            ),
            (
                "max_unpool2d_backward",
                b.max_unpool2d_backward(&t(&[1, 3, 4, 4]), &i(&[2, 3, 2, 2])).err(),
            ),
            ("max_pool2d", b.max_pool2d(&t(&[1, 1, 5, 5]), pool(2)).err()),
            ("avg_pool2d", b.avg_pool2d(&t(&[1, 1, 5, 5]), pool(2)).err()),
        ];
        let mut texts = Vec::new();
        for (op, err) in errors {
            let err = err.unwrap_or_else(|| panic!("{}: {op} must reject its shapes", b.name()));
            let text = err.to_string();
            assert!(text.starts_with(&format!("{op}: ")), "{}: {text}", b.name());
            texts.push(text);
        }
        messages.push(texts);
    }
    if let [cpu, gpu] = messages.as_slice() {
        assert_eq!(cpu, gpu);
    }
    // The CPU also checks that every switch lies inside its plane (the GPU drops such ones).
    let cpu = CpuBackend::new();
    let x = cpu.upload(Shape::new(&[1, 1, 2, 2]), &[1.0; 4]).expect("upload");
    let idx = cpu
        .upload_indices(Shape::new(&[1, 1, 2, 2]), &[0, 1, 2, 16])
        .expect("upload");
    let err = cpu
        .max_unpool2d(&x, &idx, &Shape::new(&[1, 1, 4, 4]))
        .err()
        .expect("index 16 is outside a 4x4 plane");
    assert!(err.to_string().starts_with("max_unpool2d: index 16"), "{err}");
}

#[test]
fn shape_errors_match_the_cpu_backend() {
    let Some(mut p) = pair(12) else { return };
    let cp = Conv2dParams { stride: 1, padding: 0 };
    let (xc, xg) = p.rand(&[1, 3, 5, 5]);
    let (wc, wg) = p.rand(&[2, 4, 3, 3]); // 4 channels, x has 3
    let (bc, bg) = p.rand(&[2]);
    let ec = p.cpu.conv2d(&xc, &wc, &bc, cp).err().expect("cpu must reject");
    let eg = p.gpu.conv2d(&xg, &wg, &bg, cp).err().expect("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());

    let (ac, ag) = p.rand(&[3, 4]);
    let (lc, lg) = p.rand(&[4, 3]);
    let ec = p.cpu.linear(&ac, &lc, &bc).err().expect("cpu must reject");
    let eg = p.gpu.linear(&ag, &lg, &bg).err().expect("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());

    // x (1,3,5,5), w (3,2,3,3), b (2): output_padding must stay below the stride
    let (tc, tg) = p.rand(&[3, 2, 3, 3]);
    let tp = ConvTransposeParams {
        stride: 2,
        padding: 0,
        output_padding: 2,
    };
    let ec = p
        .cpu
        .conv_transpose2d(&xc, &tc, &bc, tp)
        .err()
        .expect("cpu must reject");
    let eg = p
        .gpu
        .conv_transpose2d(&xg, &tg, &bg, tp)
        .err()
        .expect("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());
    assert!(ec.to_string().contains("conv_transpose2d"), "{ec}");

    let pp = PoolParams {
        kernel: 6,
        stride: 1,
        padding: 0,
    };
    let ec = p.cpu.max_pool2d(&xc, pp).err().expect("cpu must reject");
    let eg = p.gpu.max_pool2d(&xg, pp).err().expect("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());

    // batch norm: gamma of the wrong length, x of rank 3, a running update of another length
    let (g4c, g4g) = p.rand(&[4]);
    let (g3c, g3g) = p.rand(&[3]);
    let ec = p
        .cpu
        .batch_norm_train(&xc, &g4c, &g3c, 1e-5)
        .err()
        .expect("cpu must reject");
    let eg = p
        .gpu
        .batch_norm_train(&xg, &g4g, &g3g, 1e-5)
        .err()
        .expect("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());
    assert!(ec.to_string().starts_with("batch_norm_train:"), "{ec}");
    let (r3c, r3g) = p.rand(&[2, 3, 4]);
    let ec = p
        .cpu
        .batch_norm_eval(&r3c, &g3c, &g3c, &g3c, &g3c, 1e-5)
        .err()
        .expect("cpu must reject");
    let eg = p
        .gpu
        .batch_norm_eval(&r3g, &g3g, &g3g, &g3g, &g3g, 1e-5)
        .err()
        .expect("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());
    let (mut m3c, mut m3g) = p.rand(&[3]);
    let (mut v3c, mut v3g) = p.rand(&[3]);
    let ec = p
        .cpu
        .batch_norm_update_running(&mut m3c, &mut v3c, &g4c, &g3c, 10, 0.1)
        .err()
        .expect("cpu must reject");
    let eg = p
        .gpu
        .batch_norm_update_running(&mut m3g, &mut v3g, &g4g, &g3g, 10, 0.1)
        .err()
        .expect("gpu must reject");
    assert_eq!(ec.to_string(), eg.to_string());

    // a CPU tensor given to the GPU backend is an error, not a panic
    let err = p
        .gpu
        .activation(&xc, Activation::Relu)
        .err()
        .expect("gpu must reject a CPU tensor");
    assert!(err.to_string().contains("relu"), "{err}");
}

#[test]
fn adapter_is_described_and_lavapipe_counts_as_software() {
    let Some(p) = pair(13) else { return };
    let summary = p.gpu.adapter_summary();
    println!("adapter: {summary}; software: {}", p.gpu.is_software());
    assert!(summary.contains('(') && summary.ends_with(')'), "{summary}");
    if summary.to_lowercase().contains("llvmpipe") {
        assert!(p.gpu.is_software(), "lavapipe must count as a software adapter");
    }
    assert_eq!(p.gpu.name(), "webgpu");
}
