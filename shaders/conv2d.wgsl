// Direct 2-D convolution, square kernel, same stride and zero padding on both axes.
//   x (N,C,H,W), w (O,C,K,K), b (O) -> y (N,O,OH,OW)
// The transposed convolution is composed from these kernels on the host (its forward is
// conv2d_backward_input, its input gradient conv2d_forward, its weight gradient
// conv2d_backward_weight with the roles swapped) plus conv2d_add_bias.
// One thread per output element; no atomics: the backward passes gather (each thread
// owns the element it writes). The weight and bias gradients sum over the batch, which
// leaves few threads (one per weight); they split the batch into `groups` slices, write
// one partial sum per slice, and `conv2d_reduce_groups` adds the slices up.

struct Conv2dParams {
    n: u32, c: u32, h: u32, w: u32,
    o: u32, k: u32, oh: u32, ow: u32,
    stride: u32, padding: u32,
    count: u32,    // threads of this dispatch (per group for the gradient kernels)
    groups: u32,   // batch slices of the weight and bias gradients (1: no split)
}

@group(0) @binding(0) var<uniform> p: Conv2dParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;           // (N,C,H,W)
@group(0) @binding(2) var<storage, read> w: array<f32>;           // (O,C,K,K)
@group(0) @binding(3) var<storage, read> b: array<f32>;           // (O)
@group(0) @binding(4) var<storage, read> dy: array<f32>;          // (N,O,OH,OW)
@group(0) @binding(5) var<storage, read_write> out: array<f32>;   // y, dx, dw or db (or partials)
@group(0) @binding(6) var<storage, read> partial: array<f32>;     // (groups, count)

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// y[n,o,i,j] = b[o] + sum_{c,kh,kw} x[n, c, i*s+kh-pad, j*s+kw-pad] * w[o,c,kh,kw]
@compute @workgroup_size(64)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let j = idx % p.ow;
    let i = (idx / p.ow) % p.oh;
    let o = (idx / (p.ow * p.oh)) % p.o;
    let n = idx / (p.ow * p.oh * p.o);
    var acc = 0.0;
    for (var c = 0u; c < p.c; c++) {
        let x_plane = (n * p.c + c) * p.h * p.w;
        let w_plane = (o * p.c + c) * p.k * p.k;
        for (var kh = 0u; kh < p.k; kh++) {
            let ih = i32(i * p.stride + kh) - i32(p.padding);
            if (ih < 0 || ih >= i32(p.h)) { continue; }
            for (var kw = 0u; kw < p.k; kw++) {
                let iw = i32(j * p.stride + kw) - i32(p.padding);
                if (iw < 0 || iw >= i32(p.w)) { continue; }
                acc += x[x_plane + u32(ih) * p.w + u32(iw)] * w[w_plane + kh * p.k + kw];
            }
        }
    }
    out[idx] = acc + b[o];
}

// dx[n,c,ih,iw] = sum over (o,kh,kw) with ih = i*s+kh-pad, iw = j*s+kw-pad of dy[n,o,i,j] * w[o,c,kh,kw]
@compute @workgroup_size(64)
fn conv2d_backward_input(@builtin(global_invocation_id) gid: vec3<u32>,
                         @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let iw = idx % p.w;
    let ih = (idx / p.w) % p.h;
    let c = (idx / (p.w * p.h)) % p.c;
    let n = idx / (p.w * p.h * p.c);
    var acc = 0.0;
    for (var o = 0u; o < p.o; o++) {
        let dy_plane = (n * p.o + o) * p.oh * p.ow;
        let w_plane = (o * p.c + c) * p.k * p.k;
        for (var kh = 0u; kh < p.k; kh++) {
            let ti = i32(ih + p.padding) - i32(kh);
            if (ti < 0 || u32(ti) % p.stride != 0u) { continue; }
            let i = u32(ti) / p.stride;
            if (i >= p.oh) { continue; }
            for (var kw = 0u; kw < p.k; kw++) {
                let tj = i32(iw + p.padding) - i32(kw);
                if (tj < 0 || u32(tj) % p.stride != 0u) { continue; }
                let j = u32(tj) / p.stride;
                if (j >= p.ow) { continue; }
                acc += dy[dy_plane + i * p.ow + j] * w[w_plane + kh * p.k + kw];
            }
        }
    }
    out[idx] = acc;
}

// y[n,o,i,j] += b[o]: the transposed convolution's bias, added after conv2d_backward_input
@compute @workgroup_size(64)
fn conv2d_add_bias(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let o = (idx / (p.oh * p.ow)) % p.o;
    out[idx] += b[o];
}

// The batch slice [n0, n1) of group g, of ceil(N / groups) images each.
fn batch_slice(g: u32) -> vec2<u32> {
    let per = (p.n + p.groups - 1u) / p.groups;
    return vec2<u32>(min(g * per, p.n), min((g + 1u) * per, p.n));
}

// partial dw[g,o,c,kh,kw] = sum over n in slice g, (i,j) of dy[n,o,i,j] * x[n, c, i*s+kh-pad, j*s+kw-pad]
@compute @workgroup_size(64)
fn conv2d_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count * p.groups) { return; }
    let g = idx / p.count;
    let kw = idx % p.k;
    let kh = (idx / p.k) % p.k;
    let c = (idx / (p.k * p.k)) % p.c;
    let o = (idx % p.count) / (p.k * p.k * p.c);
    let slice = batch_slice(g);
    var acc = 0.0;
    for (var n = slice.x; n < slice.y; n++) {
        let x_plane = (n * p.c + c) * p.h * p.w;
        let dy_plane = (n * p.o + o) * p.oh * p.ow;
        for (var i = 0u; i < p.oh; i++) {
            let ih = i32(i * p.stride + kh) - i32(p.padding);
            if (ih < 0 || ih >= i32(p.h)) { continue; }
            for (var j = 0u; j < p.ow; j++) {
                let iw = i32(j * p.stride + kw) - i32(p.padding);
                if (iw < 0 || iw >= i32(p.w)) { continue; }
                acc += dy[dy_plane + i * p.ow + j] * x[x_plane + u32(ih) * p.w + u32(iw)];
            }
        }
    }
    out[idx] = acc;
}

// partial db[g,o] = sum over n in slice g, (i,j) of dy[n,o,i,j]
@compute @workgroup_size(64)
fn conv2d_backward_bias(@builtin(global_invocation_id) gid: vec3<u32>,
                        @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count * p.groups) { return; }
    let o = idx % p.count;
    let slice = batch_slice(idx / p.count);
    var acc = 0.0;
    for (var n = slice.x; n < slice.y; n++) {
        let dy_plane = (n * p.o + o) * p.oh * p.ow;
        for (var t = 0u; t < p.oh * p.ow; t++) {
            acc += dy[dy_plane + t];
        }
    }
    out[idx] = acc;
}

// out[i] = sum_g partial[g, i]
@compute @workgroup_size(64)
fn conv2d_reduce_groups(@builtin(global_invocation_id) gid: vec3<u32>,
                        @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    var acc = 0.0;
    for (var g = 0u; g < p.groups; g++) {
        acc += partial[g * p.count + i];
    }
    out[i] = acc;
}
