//! Shared by the training tests (native and in-browser).
#![allow(dead_code)] // each test binary uses its own part

use cnn_playground::data::{Mnist, Rng};

/// A small learnable MNIST-format asset: digit d is a bright bar at row 3 + 2d, with noise.
pub fn bars(count: usize) -> Mnist {
    let mut rng = Rng::new(11);
    let mut bytes = b"MNST".to_vec();
    for v in [count as u32, 28, 28] {
        bytes.extend(v.to_le_bytes());
    }
    bytes.extend((0..count).map(|i| (i % 10) as u8));
    for i in 0..count {
        let row = 3 + 2 * (i % 10);
        for p in 0..784 {
            let on = p / 28 == row && (4..24).contains(&(p % 28));
            bytes.push(if on { 230 } else { (rng.next_f32() * 40.0) as u8 });
        }
    }
    Mnist::parse(&bytes).expect("synthetic asset parses")
}

/// One conv stage, both pools, a linear head: every op of the foundation, small enough for
/// software GPUs.
pub const TINY: &str = r#"{"input":[1,28,28],"classes":10,"layers":[
    {"type":"conv2d","out":4,"kernel":3,"padding":1},{"type":"relu"},{"type":"max_pool","size":2},
    {"type":"avg_pool","size":2},{"type":"flatten"},{"type":"linear","out":10}]}"#;
