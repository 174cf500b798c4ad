// 2-D upsampling by an integer scale s, PyTorch's F.interpolate with align_corners=False.
//   x (N,C,H,W) -> y (N,C,H·s,W·s)
// Each output row reads input rows (i0, i1) with weights (1-λ, λ), and likewise each
// column: nearest has i0 = i1 = dst / s and λ = 0; bilinear reads the source coordinate
// (dst + 0.5)/s - 0.5 clamped at 0, with i1 clamped at the last cell. The backward pass
// gathers (no atomics): each input cell sums the output cells whose taps include it,
// which all lie within rows [i·s - s, i·s + 2s) and the matching columns.

struct UpsampleParams {
    planes: u32,   // N·C
    h: u32, w: u32,
    oh: u32, ow: u32,
    scale: u32,
    mode: u32,     // 0 nearest, 1 bilinear
    count: u32,    // threads of this dispatch
}

@group(0) @binding(0) var<uniform> p: UpsampleParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // (N,C,H,W) or dy (N,C,OH,OW)
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // y (N,C,OH,OW) or dx (N,C,H,W)

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

struct Taps {
    i0: u32,
    i1: u32,
    l: f32,   // weight of i1
}

// The input cells that output position `dst` reads along an axis of input length `len`.
fn taps(dst: u32, len: u32) -> Taps {
    if (p.mode == 0u) {
        let i = min(dst / p.scale, len - 1u);
        return Taps(i, i, 0.0);
    }
    let src = max((f32(dst) + 0.5) / f32(p.scale) - 0.5, 0.0);
    let i0 = min(u32(floor(src)), len - 1u);
    let i1 = min(i0 + 1u, len - 1u);
    return Taps(i0, i1, src - f32(i0));
}

// The weight with which output position `dst` reads input cell `i` along one axis.
fn weight(dst: u32, i: u32, len: u32) -> f32 {
    let t = taps(dst, len);
    var wt = 0.0;
    if (t.i0 == i) { wt += 1.0 - t.l; }
    if (t.i1 == i) { wt += t.l; }
    return wt;
}

// y[plane,i,j] = sum over the row and column taps of their weights times x
@compute @workgroup_size(64)
fn upsample_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let j = idx % p.ow;
    let i = (idx / p.ow) % p.oh;
    let plane = idx / (p.ow * p.oh);
    let r = taps(i, p.h);
    let c = taps(j, p.w);
    let base = plane * p.h * p.w;
    let top = (1.0 - c.l) * x[base + r.i0 * p.w + c.i0] + c.l * x[base + r.i0 * p.w + c.i1];
    let bottom = (1.0 - c.l) * x[base + r.i1 * p.w + c.i0] + c.l * x[base + r.i1 * p.w + c.i1];
    out[idx] = (1.0 - r.l) * top + r.l * bottom;
}

// dx[plane,i,j] = sum over output cells (oi, oj) near (i·s, j·s) of
//                 weight(oi -> i) · weight(oj -> j) · dy[plane,oi,oj]
@compute @workgroup_size(64)
fn upsample_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let j = idx % p.w;
    let i = (idx / p.w) % p.h;
    let plane = idx / (p.w * p.h);
    let base = plane * p.oh * p.ow;
    let oi_end = min(i * p.scale + 2u * p.scale, p.oh);
    let oj_end = min(j * p.scale + 2u * p.scale, p.ow);
    var acc = 0.0;
    for (var oi = max(i * p.scale, p.scale) - p.scale; oi < oi_end; oi++) {
        let wr = weight(oi, i, p.h);
        if (wr == 0.0) { continue; }
        var row = 0.0;
        for (var oj = max(j * p.scale, p.scale) - p.scale; oj < oj_end; oj++) {
            row += weight(oj, j, p.w) * x[base + oi * p.ow + oj];  // x holds dy here
        }
        acc += wr * row;
    }
    out[idx] = acc;
}
