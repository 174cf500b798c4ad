// Batch normalization, PyTorch's BatchNorm2d on (N,C,H,W) and BatchNorm1d on (N,C) (HW = 1).
// Per channel c over its n = N·HW values: xhat = (x - mean)·invstd, y = gamma·xhat + beta,
// invstd = 1/sqrt(var + eps). Training uses the batch's mean and biased variance (two
// passes: the mean first, then the squared deviations from it); eval the running ones.
//   x, dy, out (N,C,HW); gamma, beta and every statistic (C)
// The reductions run one workgroup of 256 threads per channel: each thread sums a strided
// slice of the channel's values, then a tree in workgroup memory adds the 256 partials
// (no float atomics). The element-wise passes run one thread per value.

struct BatchNormParams {
    n: u32,          // N
    c: u32,          // C
    hw: u32,         // H·W (1 for (N,C))
    count: u32,      // threads of an element-wise dispatch (N·C·HW) or C for per-channel ones
    eps: f32,
    momentum: f32,
    unbiased: f32,   // n/(n-1), for the running variance
    train: u32,      // backward_input: 1 to differentiate through the batch statistics
}

@group(0) @binding(0) var<uniform> p: BatchNormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;                 // (N,C,HW)
@group(0) @binding(2) var<storage, read> dy: array<f32>;                // (N,C,HW)
@group(0) @binding(3) var<storage, read> gamma: array<f32>;             // (C)
@group(0) @binding(4) var<storage, read> beta: array<f32>;              // (C)
@group(0) @binding(5) var<storage, read> mean: array<f32>;              // (C) the mean in use
@group(0) @binding(6) var<storage, read> variance: array<f32>;          // (C) running or batch var
@group(0) @binding(7) var<storage, read> invstd: array<f32>;            // (C)
@group(0) @binding(8) var<storage, read_write> out: array<f32>;         // y or dx (N,C,HW)
@group(0) @binding(9) var<storage, read_write> mean_out: array<f32>;    // (C)
@group(0) @binding(10) var<storage, read_write> var_out: array<f32>;    // (C)
@group(0) @binding(11) var<storage, read_write> invstd_out: array<f32>; // (C)
@group(0) @binding(12) var<storage, read_write> dgamma: array<f32>;     // (C) Σ dy·xhat
@group(0) @binding(13) var<storage, read_write> dbeta: array<f32>;      // (C) Σ dy
@group(0) @binding(14) var<storage, read> sum_dy_xhat: array<f32>;      // (C) dgamma, read back
@group(0) @binding(15) var<storage, read> sum_dy: array<f32>;           // (C) dbeta, read back
@group(0) @binding(16) var<storage, read_write> running_mean: array<f32>; // (C)
@group(0) @binding(17) var<storage, read_write> running_var: array<f32>;  // (C)

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Where the i-th of channel c's n·HW values lives: image i / HW, position i % HW.
fn at(c: u32, i: u32) -> u32 {
    return ((i / p.hw) * p.c + c) * p.hw + i % p.hw;
}

const REDUCE: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

// The sum of every thread's `v` in the workgroup, returned to all of them. The barrier
// on entry keeps the previous call's readers of partial[0] ahead of this call's writes.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    workgroupBarrier();
    partial[lid] = v;
    workgroupBarrier();
    for (var width = REDUCE / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            partial[lid] += partial[lid + width];
        }
        workgroupBarrier();
    }
    return partial[0];
}

// One workgroup per channel (dispatched as exactly C workgroups along x):
// mean = Σ x / n, var = Σ (x - mean)² / n (biased), invstd = 1/sqrt(var + eps)
@compute @workgroup_size(256)
fn batch_norm_batch_stats(@builtin(local_invocation_id) lid: vec3<u32>,
                         @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let n = p.n * p.hw;
    var s = 0.0;
    for (var i = lid.x; i < n; i += REDUCE) {
        s += x[at(c, i)];
    }
    let m = workgroup_sum(lid.x, s) / f32(n);
    var sq = 0.0;
    for (var i = lid.x; i < n; i += REDUCE) {
        let d = x[at(c, i)] - m;
        sq += d * d;
    }
    let v = workgroup_sum(lid.x, sq) / f32(n);
    if (lid.x == 0u) {
        mean_out[c] = m;
        var_out[c] = v;
        invstd_out[c] = 1.0 / sqrt(v + p.eps);
    }
}

// One thread per channel: the eval statistics are copies of the running ones
// (mean bound to the running mean, variance to the running variance).
@compute @workgroup_size(64)
fn batch_norm_running_stats(@builtin(global_invocation_id) gid: vec3<u32>,
                           @builtin(num_workgroups) groups: vec3<u32>) {
    let c = flat_index(gid, groups);
    if (c >= p.count) { return; }
    mean_out[c] = mean[c];
    var_out[c] = variance[c];
    invstd_out[c] = 1.0 / sqrt(variance[c] + p.eps);
}

// One thread per value: y = gamma·(x - mean)·invstd + beta
@compute @workgroup_size(64)
fn batch_norm_normalize(@builtin(global_invocation_id) gid: vec3<u32>,
                       @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let c = (idx / p.hw) % p.c;
    out[idx] = gamma[c] * (x[idx] - mean[c]) * invstd[c] + beta[c];
}

// One workgroup per channel: dbeta = Σ dy, dgamma = Σ dy·xhat
@compute @workgroup_size(256)
fn batch_norm_backward_reduce(@builtin(local_invocation_id) lid: vec3<u32>,
                             @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let n = p.n * p.hw;
    var s_dy = 0.0;
    var s_dy_xhat = 0.0;
    for (var i = lid.x; i < n; i += REDUCE) {
        let j = at(c, i);
        s_dy += dy[j];
        s_dy_xhat += dy[j] * (x[j] - mean[c]) * invstd[c];
    }
    let total_dy = workgroup_sum(lid.x, s_dy);
    let total_dy_xhat = workgroup_sum(lid.x, s_dy_xhat);
    if (lid.x == 0u) {
        dbeta[c] = total_dy;
        dgamma[c] = total_dy_xhat;
    }
}

// One thread per value: dx = gamma·invstd·dy with constant statistics (eval), and in
// training dx = gamma·invstd·(dy - (Σ dy + xhat·Σ dy·xhat) / n)
@compute @workgroup_size(64)
fn batch_norm_backward_input(@builtin(global_invocation_id) gid: vec3<u32>,
                            @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = flat_index(gid, groups);
    if (idx >= p.count) { return; }
    let c = (idx / p.hw) % p.c;
    var d = dy[idx];
    if (p.train == 1u) {
        let xhat = (x[idx] - mean[c]) * invstd[c];
        d -= (sum_dy[c] + xhat * sum_dy_xhat[c]) / f32(p.n * p.hw);
    }
    out[idx] = gamma[c] * invstd[c] * d;
}

// One thread per channel: running = (1 - momentum)·running + momentum·batch, the batch
// variance (bound to `variance`) made unbiased first
@compute @workgroup_size(64)
fn batch_norm_update_running(@builtin(global_invocation_id) gid: vec3<u32>,
                            @builtin(num_workgroups) groups: vec3<u32>) {
    let c = flat_index(gid, groups);
    if (c >= p.count) { return; }
    running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * mean[c];
    running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * variance[c] * p.unbiased;
}
