// 2-D pooling, square window `k`, step `stride`, no padding.
//   x (N,C,H,W) -> y (N,C,OH,OW)   [max pooling also writes argmax indices (N,C,OH,OW),
//   each the flat index ih*W + iw within its H·W plane; the first maximum wins on ties]

struct PoolParams {
    planes: u32,   // N·C
    h: u32, w: u32,
    oh: u32, ow: u32,
    k: u32, stride: u32,
    count: u32,    // threads of this dispatch
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

// One thread per output element: scan the window in row-major order, keep a strict max.
@compute @workgroup_size(64)
fn pool_max_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let j = idx % p.ow;
    let i = (idx / p.ow) % p.oh;
    let plane = idx / (p.ow * p.oh);
    let base = plane * p.h * p.w;
    var best_at = (i * p.stride) * p.w + j * p.stride;
    var best = x[base + best_at];
    for (var kh = 0u; kh < p.k; kh++) {
        for (var kw = 0u; kw < p.k; kw++) {
            let at = (i * p.stride + kh) * p.w + (j * p.stride + kw);
            let v = x[base + at];
            if (v > best) {
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

// y = mean of each window.
@compute @workgroup_size(64)
fn pool_avg_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let j = idx % p.ow;
    let i = (idx / p.ow) % p.oh;
    let plane = idx / (p.ow * p.oh);
    let base = plane * p.h * p.w;
    var acc = 0.0;
    for (var kh = 0u; kh < p.k; kh++) {
        for (var kw = 0u; kw < p.k; kw++) {
            acc += x[base + (i * p.stride + kh) * p.w + (j * p.stride + kw)];
        }
    }
    out[idx] = acc / f32(p.k * p.k);
}

// dx[plane, ih, iw] = sum over windows (i, j) containing (ih, iw) of dy[plane, i, j] / k².
// Window i covers rows i*s .. i*s+k-1, so i runs from ceil((ih-k+1)/s) to floor(ih/s).
@compute @workgroup_size(64)
fn pool_avg_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let iw = idx % p.w;
    let ih = (idx / p.w) % p.h;
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
