//! concat on the CPU: the channel concat and the channel slice, block copies image by image.

use super::{host, tensor};
use crate::backend::geometry::{shapes_of, ConcatGeom, SliceGeom};
use crate::error::Result;
use crate::tensor::Tensor;

// xs[i] (N,Ci,H,W) -> y (N,ΣCi,H,W): image by image, the inputs' channel blocks in order
pub(super) fn concat(xs: &[&Tensor]) -> Result<Tensor> {
    const OP: &str = "concat_channels";
    let g = ConcatGeom::new(OP, &shapes_of(xs))?;
    let mut y = Vec::with_capacity(g.dims.iter().product());
    for img in 0..g.n() {
        for (x, c) in xs.iter().zip(&g.channels) {
            let block = c * g.inner;
            y.extend_from_slice(&host(OP, x)?[img * block..][..block]);
        }
    }
    Ok(tensor(&g.dims, y))
}

// x (N,C,H,W) -> y (N,len,H,W) = x[:, start..start+len]
pub(super) fn slice(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    const OP: &str = "slice_channels";
    let g = SliceGeom::new(OP, &x.shape, start, len)?;
    let xs = host(OP, x)?;
    let block = g.c * g.inner;
    let mut y = Vec::with_capacity(g.dims.iter().product());
    for img in 0..g.n() {
        y.extend_from_slice(&xs[img * block + g.start * g.inner..][..g.len * g.inner]);
    }
    Ok(tensor(&g.dims, y))
}
