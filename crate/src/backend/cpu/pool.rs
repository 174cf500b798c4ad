//! pool on the CPU: max and average pooling over square windows, global average pooling,
//! and max-unpooling through the max-pool switches.

use super::{host, host_indices, tensor};
use crate::backend::geometry::{pool_window, GlobalPoolGeom, PoolGeom, UnpoolGeom};
use crate::backend::PoolParams;
use crate::error::{shape_err, Result};
use crate::tensor::{Data, Indices, Shape, Tensor};

/// A switch as a position in a plane of `cells`, or an error naming the op.
fn switch(op: &'static str, i: u32, cells: usize, idx: &Indices) -> Result<usize> {
    let i = i as usize;
    if i >= cells {
        return Err(shape_err(
            op,
            format!("index {i} lies outside the plane of {cells} cells"),
            &[idx.dims()],
        ));
    }
    Ok(i)
}

// x (N,C,H,W) -> y (N,C,OH,OW) = max over each window (the padding is -inf, so only
// input cells compete), idx = argmax's flat index in the unpadded H·W plane. PyTorch's
// loop: start at -inf on the window's first cell, take v when v > best or v is NaN.
pub(super) fn max_forward(x: &Tensor, p: PoolParams) -> Result<(Tensor, Indices)> {
    const OP: &str = "max_pool2d";
    let PoolGeom { n, c, h, w, oh, ow, .. } = PoolGeom::new(OP, &x.shape, p)?;
    let xs = host(OP, x)?;
    let mut y = vec![0.0; n * c * oh * ow];
    let mut idx = vec![0u32; n * c * oh * ow];
    for plane in 0..n * c {
        let xp = &xs[plane * h * w..][..h * w];
        for i in 0..oh {
            let rows = pool_window(i, p, h);
            for j in 0..ow {
                let cols = pool_window(j, p, w);
                let (mut best, mut at) = (f32::NEG_INFINITY, rows.start * w + cols.start);
                for r in rows.clone() {
                    for col in cols.clone() {
                        let pos = r * w + col;
                        if xp[pos] > best || xp[pos].is_nan() {
                            best = xp[pos];
                            at = pos;
                        }
                    }
                }
                let out = (plane * oh + i) * ow + j;
                y[out] = best;
                idx[out] = at as u32;
            }
        }
    }
    let shape = Shape::new(&[n, c, oh, ow]);
    Ok((
        Tensor {
            shape: shape.clone(),
            data: Data::Cpu(y),
        },
        Indices {
            shape,
            data: Data::Cpu(idx),
        },
    ))
}

// dy (N,C,OH,OW) -> dx (N,C,H,W): dx[plane, idx] += dy
pub(super) fn max_backward(dy: &Tensor, idx: &Indices, x_shape: &Shape) -> Result<Tensor> {
    const OP: &str = "max_pool2d_backward";
    let g = UnpoolGeom::max_pool_backward(OP, &dy.shape, &idx.shape, x_shape)?;
    let (dys, ids) = (host(OP, dy)?, host_indices(OP, idx)?);
    let cells = g.cells();
    let mut dx = vec![0.0; g.planes() * cells];
    for (o, (d, &i)) in dys.iter().zip(ids).enumerate() {
        let plane = o / g.switches;
        dx[plane * cells + switch(OP, i, cells, idx)?] += d;
    }
    Ok(tensor(x_shape.dims(), dx))
}

// x (N,C,H,W) -> y (N,C,OH,OW) = sum over each window / K² (zero padding counted,
// PyTorch's count_include_pad=True)
pub(super) fn avg_forward(x: &Tensor, p: PoolParams) -> Result<Tensor> {
    const OP: &str = "avg_pool2d";
    let PoolGeom { n, c, h, w, oh, ow, .. } = PoolGeom::new(OP, &x.shape, p)?;
    let xs = host(OP, x)?;
    let scale = 1.0 / (p.kernel * p.kernel) as f32;
    let mut y = vec![0.0; n * c * oh * ow];
    for plane in 0..n * c {
        let xp = &xs[plane * h * w..][..h * w];
        for i in 0..oh {
            for j in 0..ow {
                let mut s = 0.0;
                for r in pool_window(i, p, h) {
                    for col in pool_window(j, p, w) {
                        s += xp[r * w + col];
                    }
                }
                y[(plane * oh + i) * ow + j] = s * scale;
            }
        }
    }
    Ok(tensor(&[n, c, oh, ow], y))
}

// dy (N,C,OH,OW) -> dx (N,C,H,W): each dy/(K·K) added to every input cell of its window
pub(super) fn avg_backward(dy: &Tensor, x_shape: &Shape, p: PoolParams) -> Result<Tensor> {
    const OP: &str = "avg_pool2d_backward";
    let PoolGeom { n, c, h, w, oh, ow, .. } = PoolGeom::backward(OP, &dy.shape, x_shape, p)?;
    let dys = host(OP, dy)?;
    let scale = 1.0 / (p.kernel * p.kernel) as f32;
    let mut dx = vec![0.0; n * c * h * w];
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let g = dys[(plane * oh + i) * ow + j] * scale;
                for r in pool_window(i, p, h) {
                    for col in pool_window(j, p, w) {
                        dx[plane * h * w + r * w + col] += g;
                    }
                }
            }
        }
    }
    Ok(tensor(x_shape.dims(), dx))
}

// x (N,C,H,W) -> y (N,C) = Σ plane / (H·W)
pub(super) fn global_avg_forward(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "global_avg_pool";
    let GlobalPoolGeom { n, c, h, w } = GlobalPoolGeom::new(OP, &x.shape)?;
    let xs = host(OP, x)?;
    let y = xs
        .chunks(h * w)
        .map(|p| p.iter().sum::<f32>() / (h * w) as f32)
        .collect();
    Ok(tensor(&[n, c], y))
}

// dy (N,C) -> dx (N,C,H,W): dx[n,c,i,j] = dy[n,c] / (H·W)
pub(super) fn global_avg_backward(dy: &Tensor, x_shape: &Shape) -> Result<Tensor> {
    const OP: &str = "global_avg_pool_backward";
    let GlobalPoolGeom { h, w, .. } = GlobalPoolGeom::backward(OP, &dy.shape, x_shape)?;
    let dys = host(OP, dy)?;
    let dx = dys
        .iter()
        .flat_map(|g| std::iter::repeat_n(g / (h * w) as f32, h * w))
        .collect();
    Ok(tensor(x_shape.dims(), dx))
}

// x (N,C,OH,OW), idx -> y (N,C,H,W): zeros, then y[plane, idx[q]] = x[q] for q in
// row-major order, so the last of colliding switches wins
pub(super) fn max_unpool_forward(x: &Tensor, idx: &Indices, out_shape: &Shape) -> Result<Tensor> {
    const OP: &str = "max_unpool2d";
    let g = UnpoolGeom::new(OP, &x.shape, &idx.shape, out_shape)?;
    let (xs, ids) = (host(OP, x)?, host_indices(OP, idx)?);
    let cells = g.cells();
    let mut y = vec![0.0; g.planes() * cells];
    for (q, (&v, &i)) in xs.iter().zip(ids).enumerate() {
        let plane = q / g.switches;
        y[plane * cells + switch(OP, i, cells, idx)?] = v;
    }
    Ok(tensor(out_shape.dims(), y))
}

// dy (N,C,H,W), idx (N,C,OH,OW) -> dx (N,C,OH,OW): dx[q] = dy[plane, idx[q]]
pub(super) fn max_unpool_backward(dy: &Tensor, idx: &Indices) -> Result<Tensor> {
    const OP: &str = "max_unpool2d_backward";
    let g = UnpoolGeom::backward(OP, &dy.shape, &idx.shape)?;
    let (dys, ids) = (host(OP, dy)?, host_indices(OP, idx)?);
    let cells = g.cells();
    let mut dx = Vec::with_capacity(ids.len());
    for (q, &i) in ids.iter().enumerate() {
        let plane = q / g.switches;
        dx.push(dys[plane * cells + switch(OP, i, cells, idx)?]);
    }
    Ok(tensor(idx.dims(), dx))
}
