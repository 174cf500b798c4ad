// Regularization: the L1/L2 penalty, its gradient, and the soft threshold of proximal L1.
//   penalty:        acc (1) += l1·Σ|w| + (l2/2)·Σw²
//                   Pass 1 (`regularize_penalty_partial`) runs `groups` workgroups of 256
//                   threads; each thread sums |w| and w² over a grid stride, each workgroup
//                   reduces its threads with a tree in workgroup memory and writes one
//                   (Σ|w|, Σw²) pair. Pass 2 (`regularize_penalty_finish`) is one workgroup
//                   that reduces the pairs the same way and adds the weighted term to acc.
//                   No float atomics, any size up to the binding limit.
//   gradient:       g += l1·sign(w) + l2·w, sign(0) = 0 (torch.sign), one thread per element
//   soft threshold: w = sign(w)·max(|w| - t, 0), one thread per element

struct RegularizeParams {
    count: u32,      // elements of w
    groups: u32,     // workgroups of pass 1 = (Σ|w|, Σw²) pairs in `partials`
    l1: f32,
    l2: f32,
    threshold: f32,  // t of the soft threshold
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: RegularizeParams;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;  // (groups, 2)
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;       // (1)
@group(0) @binding(4) var<storage, read_write> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> w_inout: array<f32>;   // soft threshold only

const REDUCE: u32 = 256u;
var<workgroup> part_abs: array<f32, 256>;
var<workgroup> part_sq: array<f32, 256>;

// Tree-reduces part_abs and part_sq into element 0; every thread of the workgroup calls it.
fn reduce_workgroup(lid: u32) {
    workgroupBarrier();
    for (var width = REDUCE / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            part_abs[lid] += part_abs[lid + width];
            part_sq[lid] += part_sq[lid + width];
        }
        workgroupBarrier();
    }
}

// Dispatched as (groups, 1, 1) workgroups: grid-stride partial sums, one pair per workgroup.
@compute @workgroup_size(256)
fn regularize_penalty_partial(@builtin(local_invocation_id) lid: vec3<u32>,
                              @builtin(workgroup_id) wid: vec3<u32>) {
    var s_abs = 0.0;
    var s_sq = 0.0;
    let stride = p.groups * REDUCE;
    for (var i = wid.x * REDUCE + lid.x; i < p.count; i += stride) {
        let x = w[i];
        s_abs += abs(x);
        s_sq += x * x;
    }
    part_abs[lid.x] = s_abs;
    part_sq[lid.x] = s_sq;
    reduce_workgroup(lid.x);
    if (lid.x == 0u) {
        partials[2u * wid.x] = part_abs[0];
        partials[2u * wid.x + 1u] = part_sq[0];
    }
}

// Dispatched as a single workgroup: reduces the pairs and adds the penalty to acc.
@compute @workgroup_size(256)
fn regularize_penalty_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s_abs = 0.0;
    var s_sq = 0.0;
    for (var k = lid.x; k < p.groups; k += REDUCE) {
        s_abs += partials[2u * k];
        s_sq += partials[2u * k + 1u];
    }
    part_abs[lid.x] = s_abs;
    part_sq[lid.x] = s_sq;
    reduce_workgroup(lid.x);
    if (lid.x == 0u) {
        acc[0] = acc[0] + p.l1 * part_abs[0] + 0.5 * p.l2 * part_sq[0];
    }
}

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

@compute @workgroup_size(64)
fn regularize_grad(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    let x = w[i];
    g[i] = g[i] + p.l1 * sign(x) + p.l2 * x;
}

@compute @workgroup_size(64)
fn regularize_soft_threshold(@builtin(global_invocation_id) gid: vec3<u32>,
                             @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    let x = w_inout[i];
    w_inout[i] = sign(x) * max(abs(x) - p.threshold, 0.0);
}
