// Channel concat and its adjoint, the channel slice, as one strided block copy.
//   concat: xs[i] (N,Ci,H,W) -> y (N,ΣCi,H,W), one dispatch per input, each writing its
//           own channel block of every image;
//   slice:  x (N,C,H,W) -> y (N,len,H,W) = channels start..start+len (concat's backward).
// Element e of the copy lies in block b = e / block at offset r = e % block:
//   out[b * dst_stride + dst_offset + r] = src[b * src_stride + src_offset + r]
// With S = H·W (1 for (N,C) tensors): concat of input i has block = src_stride = Ci·S,
// src_offset = 0, dst_stride = ΣC·S, dst_offset = (channels before i)·S; the slice has
// block = dst_stride = len·S, src_stride = C·S, src_offset = start·S, dst_offset = 0.

struct ConcatParams {
    count: u32,        // elements copied (threads of this dispatch)
    block: u32,        // contiguous run per image
    src_stride: u32,
    src_offset: u32,
    dst_stride: u32,
    dst_offset: u32,
    _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: ConcatParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

@compute @workgroup_size(64)
fn concat_copy(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(gid, groups);
    if (e >= p.count) { return; }
    let b = e / p.block;
    let r = e % p.block;
    out[b * p.dst_stride + p.dst_offset + r] = src[b * p.src_stride + p.src_offset + r];
}
