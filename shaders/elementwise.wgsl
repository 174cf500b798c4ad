// Element-wise ops on flat arrays of `count` elements (any shape).

struct ElementwiseParams {
    count: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// a = x -> out = y = max(x, 0)   (a NaN input gives 0, like `if x > 0 { x } else { 0 }`)
@compute @workgroup_size(64)
fn elementwise_relu(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    let v = a[i];
    out[i] = select(0.0, v, v > 0.0);
}

// a = dy, b = y (the forward output) -> out = dx = dy · [y > 0]
@compute @workgroup_size(64)
fn elementwise_relu_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                             @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = select(0.0, a[i], b[i] > 0.0);
}

// a = x -> out = acc += x
@compute @workgroup_size(64)
fn elementwise_add_assign(@builtin(global_invocation_id) gid: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.count) { return; }
    out[i] = out[i] + a[i];
}
