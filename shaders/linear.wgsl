// Fully connected layer, PyTorch layout (w is (out, in)):
//   x (N,K), w (O,K), b (O) -> y (N,O) = x·wᵀ + b
// Forward and both input/weight gradients are 16×16-tiled matmuls over workgroup memory;
// each entry point reads its operands through bounds-checked accessors.

struct LinearParams {
    n: u32, k: u32, o: u32, count: u32,
}

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;           // (N,K)
@group(0) @binding(2) var<storage, read> w: array<f32>;           // (O,K)
@group(0) @binding(3) var<storage, read> b: array<f32>;           // (O)
@group(0) @binding(4) var<storage, read> dy: array<f32>;          // (N,O)
@group(0) @binding(5) var<storage, read_write> out: array<f32>;   // y, dx, dw or db

const TILE: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

// Bounds-checked loads: zero outside the matrix, so partial tiles need no special case.
fn x_at(n: u32, k: u32) -> f32 {
    if (n < p.n && k < p.k) { return x[n * p.k + k]; }
    return 0.0;
}
fn w_at(o: u32, k: u32) -> f32 {
    if (o < p.o && k < p.k) { return w[o * p.k + k]; }
    return 0.0;
}
fn dy_at(n: u32, o: u32) -> f32 {
    if (n < p.n && o < p.o) { return dy[n * p.o + o]; }
    return 0.0;
}

// Tiled kernels use a 2-D grid: workgroup (gx, gy) computes rows gy*16.., cols gx*16..
// of a (rows × cols) result; the inner dimension is walked 16 at a time.

// y[n,o] = b[o] + sum_k x[n,k] * w[o,k]        rows = N, cols = O, inner = K
@compute @workgroup_size(16, 16)
fn linear_forward(@builtin(workgroup_id) wg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.y * TILE + lid.y;   // n
    let col = wg.x * TILE + lid.x;   // o
    var acc = 0.0;
    for (var t = 0u; t < p.k; t += TILE) {
        // tile_a[r][i] = x[row0 + r, t + i]; tile_b[i][c] = w[col0 + c, t + i]
        tile_a[lid.y][lid.x] = x_at(row, t + lid.x);
        tile_b[lid.y][lid.x] = w_at(col, t + lid.y);
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < p.n && col < p.o) {
        out[row * p.o + col] = acc + b[col];
    }
}

// dx[n,k] = sum_o dy[n,o] * w[o,k]              rows = N, cols = K, inner = O
@compute @workgroup_size(16, 16)
fn linear_backward_input(@builtin(workgroup_id) wg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.y * TILE + lid.y;   // n
    let col = wg.x * TILE + lid.x;   // k
    var acc = 0.0;
    for (var t = 0u; t < p.o; t += TILE) {
        tile_a[lid.y][lid.x] = dy_at(row, t + lid.x);
        tile_b[lid.y][lid.x] = w_at(t + lid.y, col);
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < p.n && col < p.k) {
        out[row * p.k + col] = acc;
    }
}

// dw[o,k] = sum_n dy[n,o] * x[n,k]              rows = O, cols = K, inner = N
@compute @workgroup_size(16, 16)
fn linear_backward_weight(@builtin(workgroup_id) wg: vec3<u32>,
                          @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.y * TILE + lid.y;   // o
    let col = wg.x * TILE + lid.x;   // k
    var acc = 0.0;
    for (var t = 0u; t < p.n; t += TILE) {
        tile_a[lid.y][lid.x] = dy_at(t + lid.x, row);
        tile_b[lid.y][lid.x] = x_at(t + lid.y, col);
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < p.o && col < p.k) {
        out[row * p.k + col] = acc;
    }
}

// db[o] = sum_n dy[n,o]                         one thread per o (1-D grid of 64)
@compute @workgroup_size(64)
fn linear_backward_bias(@builtin(global_invocation_id) gid: vec3<u32>,
                        @builtin(num_workgroups) groups: vec3<u32>) {
    let o = gid.x + gid.y * groups.x * 64u;
    if (o >= p.o) { return; }
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
        acc += dy[n * p.o + o];
    }
    out[o] = acc;
}
