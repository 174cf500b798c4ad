// Losses. Every loss writes its gradient with respect to its input and reduces its value
// on the GPU: a pass with one thread per row, element or pixel writes partial values, then
// one workgroup reduces them with a tree in workgroup memory (no float atomics needed).
//
// Softmax cross-entropy with integer labels:
//   logits (N,K), labels (N) -> loss (1) = mean_n [logsumexp(z_n) - z_n[y_n]],
//   dlogits (N,K) = (softmax(z) - onehot(y)) / N, correct (1) = #{n : argmax z_n = y_n}
// loss_softmax_cross_entropy writes per-row (loss, correct) pairs, loss_reduce_pairs sums
// them (and divides by N).
// A label >= K cannot be checked on the GPU without a readback: its row (or pixel) counts
// as wrong and adds only logsumexp(z_n) to the loss; Dice counts it in no class (the host
// validates labels when it makes them).
//
// Point losses (loss_point, then loss_reduce_sum): pred, target, weight (same shape) ->
//   loss (1) = scale·Σ w·ℓ(p, t), dpred = scale·w·∂ℓ/∂p, ℓ by `kind`:
//   0 smooth L1 (beta), 1 BCE with logits (stable form), 2 squared error.
//
// Per-pixel cross-entropy (loss_ce_map, then loss_reduce_pairs): logits (N,K,H,W),
// labels and weights (N,H,W) -> loss = scale·Σ w·CE, dlogits = scale·w·(softmax - onehot),
// correct = Σ w·[argmax = label]. Class j of pixel m = (img, i) sits at
// (img·K + j)·HW + i.
//
// Soft Dice over the batch (three passes): loss_dice_softmax writes p = softmax over K into
// the gradient buffer; loss_dice_sums runs one workgroup per class k for
// I_k = Σ p_k·[y=k], P_k = Σ p_k, Y_k = Σ [y=k]; loss_dice_grad turns p into
// d loss/d z in place, with D_k = P_k + Y_k + 1 and
//   g_k = -(scale/K)·(2·[y=k]/D_k - (2·I_k + 1)/D_k²),  dz_j = p_j·(g_j - Σ_k p_k·g_k),
// and its first thread writes loss = scale·(1 - (1/K)·Σ_k (2·I_k + 1)/D_k).

// n: rows, elements or pixels; k: classes; hw: pixels per image (H·W, 1 for (N,K));
// kind: the point loss; scale: the loss's factor; beta: smooth L1's band;
// divisor: what loss_reduce_pairs divides the summed loss by (N for the mean CE, else 1).
struct LossParams {
    n: u32, k: u32, hw: u32, kind: u32,
    scale: f32, beta: f32, divisor: f32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;         // (N,K)
@group(0) @binding(2) var<storage, read> labels: array<u32>;         // (N)
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;  // (N,K)
@group(0) @binding(4) var<storage, read_write> rows: array<f32>;     // (N,2): loss, correct
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;     // (1)
@group(0) @binding(6) var<storage, read_write> correct: array<f32>;  // (1)
@group(0) @binding(7) var<storage, read> pred: array<f32>;           // (any)
@group(0) @binding(8) var<storage, read> truth: array<f32>;          // the target, like pred
@group(0) @binding(9) var<storage, read> weight: array<f32>;         // like pred, or (N,H,W)
@group(0) @binding(10) var<storage, read_write> dpred: array<f32>;   // like pred
@group(0) @binding(11) var<storage, read_write> parts: array<f32>;   // (n): per-element terms
@group(0) @binding(12) var<storage, read_write> sums: array<f32>;    // (K,3): I, P, Y per class

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
var<workgroup> part_dice: array<vec3<f32>, 256>;

// Dispatched as a single workgroup: strided partial sums of the (n,2) pairs, then a tree;
// loss = scale·Σ / divisor, correct = Σ.
@compute @workgroup_size(256)
fn loss_reduce_pairs(@builtin(local_invocation_id) lid: vec3<u32>) {
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
        loss[0] = part_loss[0] * p.scale / p.divisor;
        correct[0] = part_correct[0];
    }
}

// One thread per element: dpred = scale·w·∂ℓ/∂p, parts = w·ℓ.
@compute @workgroup_size(64)
fn loss_point(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= p.n) { return; }
    let x = pred[i];
    let t = truth[i];
    var l = 0.0;
    var g = 0.0;
    if (p.kind == 0u) {          // smooth L1
        let d = x - t;
        if (abs(d) < p.beta) {
            l = 0.5 * d * d / p.beta;
            g = d / p.beta;
        } else {
            l = abs(d) - 0.5 * p.beta;
            g = sign(d);
        }
    } else if (p.kind == 1u) {   // BCE with logits: max(x,0) - x·t + log(1 + e^-|x|)
        let e = exp(-abs(x));
        l = max(x, 0.0) - x * t + log(1.0 + e);
        let sigmoid = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
        g = sigmoid - t;
    } else {                     // squared error
        let d = x - t;
        l = d * d;
        g = 2.0 * d;
    }
    let w = weight[i];
    dpred[i] = p.scale * w * g;
    parts[i] = w * l;
}

// Dispatched as a single workgroup: loss = scale·Σ parts.
@compute @workgroup_size(256)
fn loss_reduce_sum(@builtin(local_invocation_id) lid: vec3<u32>) {
    var l = 0.0;
    for (var i = lid.x; i < p.n; i += REDUCE) {
        l += parts[i];
    }
    part_loss[lid.x] = l;
    workgroupBarrier();
    for (var width = REDUCE / 2u; width > 0u; width /= 2u) {
        if (lid.x < width) {
            part_loss[lid.x] += part_loss[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        loss[0] = part_loss[0] * p.scale;
    }
}

// Where class 0 of pixel m sits in a (N,K,H,W) tensor; class j is hw further per step.
fn pixel_base(m: u32) -> u32 {
    return (m / p.hw) * p.k * p.hw + m % p.hw;
}

// One thread per pixel: the pixel's weighted CE and correctness into rows, its gradient
// into dlogits.
@compute @workgroup_size(64)
fn loss_ce_map(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    let m = gid.x + gid.y * groups.x * 64u;
    if (m >= p.n) { return; }
    let base = pixel_base(m);
    var zmax = logits[base];
    var arg = 0u;
    for (var j = 1u; j < p.k; j++) {
        let z = logits[base + j * p.hw];
        if (z > zmax) {
            zmax = z;
            arg = j;
        }
    }
    var sum = 0.0;
    for (var j = 0u; j < p.k; j++) {
        sum += exp(logits[base + j * p.hw] - zmax);
    }
    let label = labels[m];
    let w = weight[m];
    var z_label = 0.0;   // an out-of-range label adds logsumexp alone (see the header)
    if (label < p.k) { z_label = logits[base + label * p.hw]; }
    for (var j = 0u; j < p.k; j++) {
        let at = base + j * p.hw;
        let s = exp(logits[at] - zmax) / sum;
        dlogits[at] = p.scale * w * (s - select(0.0, 1.0, j == label));
    }
    rows[2u * m] = w * (log(sum) + zmax - z_label);
    rows[2u * m + 1u] = w * select(0.0, 1.0, arg == label);
}

// One thread per pixel: p = softmax over the K classes, into dlogits.
@compute @workgroup_size(64)
fn loss_dice_softmax(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    let m = gid.x + gid.y * groups.x * 64u;
    if (m >= p.n) { return; }
    let base = pixel_base(m);
    var zmax = logits[base];
    for (var j = 1u; j < p.k; j++) {
        zmax = max(zmax, logits[base + j * p.hw]);
    }
    var sum = 0.0;
    for (var j = 0u; j < p.k; j++) {
        sum += exp(logits[base + j * p.hw] - zmax);
    }
    for (var j = 0u; j < p.k; j++) {
        let at = base + j * p.hw;
        dlogits[at] = exp(logits[at] - zmax) / sum;
    }
}

// Dispatched as K workgroups, one per class k: sums (k) = (I_k, P_k, Y_k) over the pixels.
@compute @workgroup_size(256)
fn loss_dice_sums(@builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(workgroup_id) wid: vec3<u32>) {
    let k = wid.x;
    var acc = vec3<f32>(0.0);
    for (var m = lid.x; m < p.n; m += REDUCE) {
        let pk = dlogits[pixel_base(m) + k * p.hw];
        let hit = select(0.0, 1.0, labels[m] == k);
        acc += vec3<f32>(pk * hit, pk, hit);
    }
    part_dice[lid.x] = acc;
    workgroupBarrier();
    for (var width = REDUCE / 2u; width > 0u; width /= 2u) {
        if (lid.x < width) {
            part_dice[lid.x] += part_dice[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        sums[3u * k] = part_dice[0].x;
        sums[3u * k + 1u] = part_dice[0].y;
        sums[3u * k + 2u] = part_dice[0].z;
    }
}

// d loss/d p_k at a pixel whose label hits class k or not.
fn dice_dp(k: u32, hit: bool) -> f32 {
    let inter = sums[3u * k];
    let d = sums[3u * k + 1u] + sums[3u * k + 2u] + 1.0;
    let h = select(0.0, 2.0 / d, hit);
    return -p.scale / f32(p.k) * (h - (2.0 * inter + 1.0) / (d * d));
}

// One thread per pixel: the probabilities in dlogits become d loss/d logits, in place;
// the first thread also writes the loss.
@compute @workgroup_size(64)
fn loss_dice_grad(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) groups: vec3<u32>) {
    let m = gid.x + gid.y * groups.x * 64u;
    if (m == 0u) {   // also when there are no pixels (the host runs at least one thread)
        var dice = 0.0;
        for (var k = 0u; k < p.k; k++) {
            let d = sums[3u * k + 1u] + sums[3u * k + 2u] + 1.0;
            dice += (2.0 * sums[3u * k] + 1.0) / d;
        }
        loss[0] = p.scale * (1.0 - dice / f32(p.k));
    }
    if (m >= p.n) { return; }
    let base = pixel_base(m);
    let label = labels[m];
    var pg = 0.0;
    for (var j = 0u; j < p.k; j++) {
        pg += dlogits[base + j * p.hw] * dice_dp(j, j == label);
    }
    for (var j = 0u; j < p.k; j++) {
        let at = base + j * p.hw;
        dlogits[at] = dlogits[at] * (dice_dp(j, j == label) - pg);
    }
}
