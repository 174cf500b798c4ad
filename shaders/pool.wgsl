// 2-D pooling, square window `k`, step `stride`, `pad` cells of padding on every side
// (at most k/2, so every window holds an input cell), and the ops built on its switches.
//   x (N,C,H,W) -> y (N,C,OH,OW)   [max pooling also writes argmax indices (N,C,OH,OW),
//   each the flat index ih*W + iw within its unpadded H·W plane]
// Window (i, j) covers rows i*stride - pad .. i*stride - pad + k (and likewise columns),
// clipped to the input: max pooling pads with -inf, avg pooling with zeros and always
// divides by k² (PyTorch's count_include_pad=True).
// Global average pooling: x (N,C,H,W) -> y (N,C), each plane's mean.
// Max-unpooling: x (N,C,OH,OW) and switches -> y (N,C,H,W), zeros except y[idx] = x.

struct PoolParams {
    planes: u32,   // N·C
    h: u32, w: u32,
    oh: u32, ow: u32,  // the switch kernels read only oh·ow, the switches per plane
    k: u32, stride: u32, pad: u32,
    count: u32,    // threads of this dispatch
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;             // (N,C,H,W)
@group(0) @binding(2) var<storage, read> dy: array<f32>;            // (N,C,OH,OW)
@group(0) @binding(3) var<storage, read> idx_in: array<u32>;        // (N,C,OH,OW)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;     // y or dx
@group(0) @binding(5) var<storage, read_write> idx_out: array<u32>; // (N,C,OH,OW)

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// By its bits, so no compiler may fold `v != v` away.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// The input cells [start, end) under window `o` along an axis of length `len`.
fn window(o: u32, len: u32) -> vec2<u32> {
    let start = o * p.stride;
    return vec2<u32>(min(max(start, p.pad) - p.pad, len), min(start + p.k - p.pad, len));
}

// One thread per output element: scan the window's input cells in row-major order, keep
// PyTorch's max: take v when v > best or v is NaN. Starting from the first cell gives the
// same result as PyTorch's start from -inf, with no infinity in the shader.
@compute @workgroup_size(64)
fn pool_max_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let j = idx % p.ow;
    let i = (idx / p.ow) % p.oh;
    let plane = idx / (p.ow * p.oh);
    let base = plane * p.h * p.w;
    let rows = window(i, p.h);
    let cols = window(j, p.w);
    var best_at = rows.x * p.w + cols.x;
    var best = x[base + best_at];
    for (var r = rows.x; r < rows.y; r++) {
        for (var c = cols.x; c < cols.y; c++) {
            let at = r * p.w + c;
            let v = x[base + at];
            if (v > best || is_nan(v)) {
                best = v;
                best_at = at;
            }
        }
    }
    out[idx] = best;
    idx_out[idx] = best_at;
}

// dx[plane, t] = sum of dy[plane, q] over outputs q whose index is t.
// One thread per (plane, input row): it zeroes its row, then scans the plane's indices in
// output order and adds the ones that land in its row (no two threads write one element).
// The kernel does not need the window geometry: indices are flat within the plane.
@compute @workgroup_size(64)
fn pool_max_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let row = idx % p.h;
    let plane = idx / p.h;
    let x_base = plane * p.h * p.w;
    for (var c = 0u; c < p.w; c++) {
        out[x_base + row * p.w + c] = 0.0;
    }
    let y_base = plane * p.oh * p.ow;
    for (var q = 0u; q < p.oh * p.ow; q++) {
        let t = idx_in[y_base + q];
        if (t / p.w == row) {
            out[x_base + t] += dy[y_base + q];
        }
    }
}

// y = sum of each window's input cells / k² (the zero padding adds nothing).
@compute @workgroup_size(64)
fn pool_avg_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let j = idx % p.ow;
    let i = (idx / p.ow) % p.oh;
    let plane = idx / (p.ow * p.oh);
    let base = plane * p.h * p.w;
    let rows = window(i, p.h);
    let cols = window(j, p.w);
    var acc = 0.0;
    for (var r = rows.x; r < rows.y; r++) {
        for (var c = cols.x; c < cols.y; c++) {
            acc += x[base + r * p.w + c];
        }
    }
    out[idx] = acc / f32(p.k * p.k);
}

// dx[plane, ih, iw] = sum over windows (i, j) containing (ih, iw) of dy[plane, i, j] / k².
// Window i covers padded rows i*s .. i*s+k-1, and input row ih is padded row ih + pad, so
// i runs from ceil((ih+pad-k+1)/s) to floor((ih+pad)/s).
@compute @workgroup_size(64)
fn pool_avg_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let iw = idx % p.w + p.pad;
    let ih = (idx / p.w) % p.h + p.pad;
    let plane = idx / (p.w * p.h);
    let y_base = plane * p.oh * p.ow;
    let i_lo = select(0u, (ih + 1u - p.k + p.stride - 1u) / p.stride, ih + 1u >= p.k);
    let i_hi = min(ih / p.stride + 1u, p.oh);
    let j_lo = select(0u, (iw + 1u - p.k + p.stride - 1u) / p.stride, iw + 1u >= p.k);
    let j_hi = min(iw / p.stride + 1u, p.ow);
    var acc = 0.0;
    for (var i = i_lo; i < i_hi; i++) {
        for (var j = j_lo; j < j_hi; j++) {
            acc += dy[y_base + i * p.ow + j];
        }
    }
    out[idx] = acc / f32(p.k * p.k);
}

// x (N,C,H,W) -> out (N,C): one thread per plane sums its H·W cells, then divides.
@compute @workgroup_size(64)
fn pool_global_avg_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                           @builtin(num_workgroups) groups: vec3<u32>) {
    let plane = flat_index(gid, groups);
    if (plane >= p.count) { return; }
    let cells = p.h * p.w;
    var acc = 0.0;
    for (var t = 0u; t < cells; t++) {
        acc += x[plane * cells + t];
    }
    out[plane] = acc / f32(cells);
}

// dy (N,C) -> out = dx (N,C,H,W): one thread per input cell, dy of its plane / (H·W).
@compute @workgroup_size(64)
fn pool_global_avg_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                            @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let cells = p.h * p.w;
    out[idx] = dy[idx / cells] / f32(cells);
}

// x = the pooled values (N,C,OH,OW) (bound as `dy`), idx_in their switches -> out = y
// (N,C,H,W): zeros except y[plane, idx_in[q]] = x[q]. Like pool_max_backward, one thread
// per (plane, output row) scans the plane's switches in order, so the last of colliding
// switches wins, as on the CPU; switches outside the plane are dropped.
@compute @workgroup_size(64)
fn pool_max_unpool_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                           @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let row = idx % p.h;
    let plane = idx / p.h;
    let y_base = plane * p.h * p.w;
    for (var c = 0u; c < p.w; c++) {
        out[y_base + row * p.w + c] = 0.0;
    }
    let x_base = plane * p.oh * p.ow;
    for (var q = 0u; q < p.oh * p.ow; q++) {
        let t = idx_in[x_base + q];
        if (t / p.w == row) {
            out[y_base + t] = dy[x_base + q];
        }
    }
}

// dy (N,C,H,W) (bound as `x`), idx_in (N,C,OH,OW) -> out = dx (N,C,OH,OW) = dy[plane, idx]:
// a gather, one thread per switch; a switch outside the plane reads 0.
@compute @workgroup_size(64)
fn pool_max_unpool_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                            @builtin(num_workgroups) groups: vec3<u32>) {
    let q = flat_index(gid, groups);
    if (q >= p.count) { return; }
    let plane = q / (p.oh * p.ow);
    let t = idx_in[q];
    var g = 0.0;
    if (t < p.h * p.w) {
        g = x[plane * p.h * p.w + t];
    }
    out[q] = g;
}
