// Element-wise ops on flat arrays of `count` elements (any shape).

// Activation kinds, mirrored in elementwise.rs.
const KIND_RELU: u32 = 0u;
const KIND_LEAKY_RELU: u32 = 1u;
const KIND_TANH: u32 = 2u;
const KIND_SIGMOID: u32 = 3u;

struct ElementwiseParams {
    count: u32,
    kind: u32,      // one of KIND_*, for the activation entry points
    slope: f32,     // leaky relu's slope for x <= 0
    scale: f32,     // the factor of mul_mask and scale
}

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// y = f(x). Comparisons are `x > 0`, so a NaN input takes the x <= 0 branch, as on the CPU.
fn activate(x: f32) -> f32 {
    switch p.kind {
        case KIND_LEAKY_RELU: { return select(p.slope * x, x, x > 0.0); }
        // tanh(±9) is already ±1 in f32; the clamp keeps exp-based implementations finite.
        case KIND_TANH: { return tanh(clamp(x, -15.0, 15.0)); }
        // Written so exp never overflows: e = exp(-|x|) lies in (0, 1].
        case KIND_SIGMOID: {
            let e = exp(-abs(x));
            return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
        }
        default: { return select(0.0, x, x > 0.0); }
    }
}

// f'(x), from the input x (relu, leaky relu) or the output y (tanh, sigmoid)
fn activate_grad(x: f32, y: f32) -> f32 {
    switch p.kind {
        case KIND_LEAKY_RELU: { return select(p.slope, 1.0, x > 0.0); }
        case KIND_TANH: { return 1.0 - y * y; }
        case KIND_SIGMOID: { return y * (1.0 - y); }
        default: { return select(0.0, 1.0, x > 0.0); }
    }
}

// a = x -> out = y = f(x)
@compute @workgroup_size(64)
fn elementwise_activation_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                                  @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = activate(a[i]);
}

// a = dy, b = x, c = y (the forward output) -> out = dx = dy · f'(x)
@compute @workgroup_size(64)
fn elementwise_activation_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                                   @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = a[i] * activate_grad(b[i], c[i]);
}

// a = x -> out = acc += x
@compute @workgroup_size(64)
fn elementwise_add_assign(@builtin(global_invocation_id) gid: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = out[i] + a[i];
}

// a = x, b = mask -> out = y = x · mask · scale (dropout; also its own backward, on dy)
@compute @workgroup_size(64)
fn elementwise_mul_mask(@builtin(global_invocation_id) gid: vec3<u32>,
                        @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = a[i] * b[i] * p.scale;
}

// a = x -> out = y = scale · x
@compute @workgroup_size(64)
fn elementwise_scale(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = p.scale * a[i];
}

// a, b -> out = y = a + b
@compute @workgroup_size(64)
fn elementwise_add(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = a[i] + b[i];
}
