//! elementwise ops on the CPU: activations, dropout masks, scaling, the residual add and
//! accumulation, any shape.

use super::{host, host_mut, tensor};
use crate::backend::geometry::{check_activation_backward, check_same_shapes};
use crate::backend::Activation;
use crate::error::Result;
use crate::tensor::Tensor;

// y = f(x), any shape
pub(super) fn activation(x: &Tensor, a: Activation) -> Result<Tensor> {
    let xs = host(a.name(), x)?;
    let mut y = vec![0.0; xs.len()];
    for (y, &x) in y.iter_mut().zip(xs) {
        *y = match a {
            Activation::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { slope } => {
                if x > 0.0 {
                    x
                } else {
                    slope * x
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        };
    }
    Ok(tensor(x.dims(), y))
}

// dx = dy · f'(x); relu and leaky relu read x (f'(0) is the x ≤ 0 branch, as in PyTorch),
// tanh and sigmoid read y: tanh' = 1 - y², sigmoid' = y(1 - y)
pub(super) fn activation_backward(dy: &Tensor, x: &Tensor, y: &Tensor, a: Activation) -> Result<Tensor> {
    const OP: &str = "activation_backward";
    check_activation_backward(OP, a, &dy.shape, &x.shape, &y.shape)?;
    let (dys, xs, ys) = (host(OP, dy)?, host(OP, x)?, host(OP, y)?);
    let mut dx = vec![0.0; dys.len()];
    for i in 0..dx.len() {
        let grad = match a {
            Activation::Relu => {
                if xs[i] > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { slope } => {
                if xs[i] > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            Activation::Tanh => 1.0 - ys[i] * ys[i],
            Activation::Sigmoid => ys[i] * (1.0 - ys[i]),
        };
        dx[i] = dys[i] * grad;
    }
    Ok(tensor(dy.dims(), dx))
}

// x, mask (same shape) -> y = x·mask·scale
pub(super) fn mul_mask(x: &Tensor, mask: &Tensor, scale: f32) -> Result<Tensor> {
    const OP: &str = "mul_mask";
    check_same_shapes(OP, &x.shape, &[&mask.shape])?;
    let (xs, ms) = (host(OP, x)?, host(OP, mask)?);
    let y = xs.iter().zip(ms).map(|(x, m)| x * m * scale).collect();
    Ok(tensor(x.dims(), y))
}

// x (any) -> y = s·x
pub(super) fn scale(x: &Tensor, s: f32) -> Result<Tensor> {
    let y = host("scale", x)?.iter().map(|x| s * x).collect();
    Ok(tensor(x.dims(), y))
}

// a, b (same shape) -> y = a + b
pub(super) fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "add";
    check_same_shapes(OP, &a.shape, &[&b.shape])?;
    let y = host(OP, a)?.iter().zip(host(OP, b)?).map(|(a, b)| a + b).collect();
    Ok(tensor(a.dims(), y))
}

// acc += x, same shape
pub(super) fn add_assign(acc: &mut Tensor, x: &Tensor) -> Result<()> {
    const OP: &str = "add_assign";
    check_same_shapes(OP, &acc.shape, &[&x.shape])?;
    let xs = host(OP, x)?;
    host_mut(OP, acc)?.iter_mut().zip(xs).for_each(|(a, b)| *a += b);
    Ok(())
}
