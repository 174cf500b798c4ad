// Softmax cross-entropy with integer labels.
//   logits (N,K), labels (N) -> loss (1) = mean_n [logsumexp(z_n) - z_n[y_n]],
//   dlogits (N,K) = (softmax(z) - onehot(y)) / N, correct (1) = #{n : argmax z_n = y_n}
// Pass 1 runs one thread per row and writes per-row (loss, correct) pairs; pass 2 is one
// workgroup that reduces them with a tree in workgroup memory (no float atomics needed).
// A label >= K cannot be checked on the GPU without a readback: its row counts as wrong
// and adds only logsumexp(z_n) to the loss (the host validates labels when it makes them).

struct LossParams {
    n: u32, k: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;         // (N,K)
@group(0) @binding(2) var<storage, read> labels: array<u32>;         // (N)
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;  // (N,K)
@group(0) @binding(4) var<storage, read_write> rows: array<f32>;     // (N,2): loss, correct
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;     // (1)
@group(0) @binding(6) var<storage, read_write> correct: array<f32>;  // (1)

@compute @workgroup_size(64)
fn loss_softmax_cross_entropy(@builtin(global_invocation_id) gid: vec3<u32>,
                              @builtin(num_workgroups) groups: vec3<u32>) {
    let n = gid.x + gid.y * groups.x * 64u;
    if (n >= p.n) { return; }
    let base = n * p.k;
    // max and first argmax, for a stable softmax and the accuracy count
    var zmax = logits[base];
    var arg = 0u;
    for (var j = 1u; j < p.k; j++) {
        let z = logits[base + j];
        if (z > zmax) {
            zmax = z;
            arg = j;
        }
    }
    var sum = 0.0;
    for (var j = 0u; j < p.k; j++) {
        sum += exp(logits[base + j] - zmax);
    }
    let label = labels[n];
    let inv_n = 1.0 / f32(p.n);
    var z_label = 0.0;   // an out-of-range label adds logsumexp alone (see the header)
    if (label < p.k) { z_label = logits[base + label]; }
    for (var j = 0u; j < p.k; j++) {
        let s = exp(logits[base + j] - zmax) / sum;
        let onehot = select(0.0, 1.0, j == label);
        dlogits[base + j] = (s - onehot) * inv_n;
    }
    let row_loss = log(sum) + zmax - z_label;
    rows[2u * n] = row_loss;
    rows[2u * n + 1u] = select(0.0, 1.0, arg == label);
}

const REDUCE: u32 = 256u;
var<workgroup> part_loss: array<f32, 256>;
var<workgroup> part_correct: array<f32, 256>;

// Dispatched as a single workgroup: strided partial sums, then a tree.
@compute @workgroup_size(256)
fn loss_reduce_mean(@builtin(local_invocation_id) lid: vec3<u32>) {
    var l = 0.0;
    var c = 0.0;
    for (var n = lid.x; n < p.n; n += REDUCE) {
        l += rows[2u * n];
        c += rows[2u * n + 1u];
    }
    part_loss[lid.x] = l;
    part_correct[lid.x] = c;
    workgroupBarrier();
    for (var width = REDUCE / 2u; width > 0u; width /= 2u) {
        if (lid.x < width) {
            part_loss[lid.x] += part_loss[lid.x + width];
            part_correct[lid.x] += part_correct[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        loss[0] = part_loss[0] / f32(p.n);
        correct[0] = part_correct[0];
    }
}
