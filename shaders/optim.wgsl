// Optimizer steps, one thread per parameter. p, g and the state buffers share one shape.
//   SGD with momentum (PyTorch): v = momentum·v + g;  p -= lr·v
//   Adam (PyTorch): m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//                   p -= lr · (m / bc1) / (sqrt(v / bc2) + eps),  bc = 1 - β^t
//   AdamW (PyTorch): first p *= 1 - lr·weight_decay (decoupled decay), then Adam;
//                   weight_decay = 0 is plain Adam

struct OptimParams {
    count: u32,
    lr: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bc1: f32,   // 1 - beta1^t, computed on the host
    bc2: f32,   // 1 - beta2^t
    weight_decay: f32,   // AdamW's decoupled decay, 0 for Adam and SGD
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: OptimParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;   // SGD: the velocity
@group(0) @binding(4) var<storage, read_write> v: array<f32>;   // Adam only

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

@compute @workgroup_size(64)
fn optim_sgd(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    let vel = p.momentum * m[i] + grad[i];
    m[i] = vel;
    param[i] = param[i] - p.lr * vel;
}

@compute @workgroup_size(64)
fn optim_adam(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    let g = grad[i];
    let m1 = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let v1 = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = m1;
    v[i] = v1;
    let m_hat = m1 / p.bc1;
    let v_hat = v1 / p.bc2;
    let decayed = param[i] * (1.0 - p.lr * p.weight_decay);
    param[i] = decayed - p.lr * m_hat / (sqrt(v_hat) + p.eps);
}
