//! Where a task's examples come from: the MNIST digits (optionally a subset of the labels,
//! with only a few labelled examples per class, for transfer learning), seeded shapes scenes
//! (data/shapes.rs) or cluttered digits (data/clutter.rs).
//!
//! Training examples are drawn fresh every step: scenes are a pure function of
//! (config, seed, index), so the training stream is endless and never repeats a scene; MNIST
//! examples are shuffled passes over the (sub)set. The validation examples are generated
//! once, when the data is built, so every evaluation sees the same ones.

use crate::data::clutter;
use crate::data::mnist::Sampler;
use crate::data::shapes::{self, Split};
use crate::data::{Mnist, Rng};
use crate::error::{Error, Result};
use crate::spec::{DataSource, ModelSpec};
use crate::tasks::metrics::Truth;

/// The data section's types live in spec/data.rs; these are their old paths.
pub use crate::spec::data::{DataConfig, MAX_VAL};

/// Scene indices below this are training scenes; validation follows (`shapes::split_range`).
const N_TRAIN: u64 = 1 << 40;

/// One example on the host, with every target any task needs.
#[derive(Clone, Debug)]
pub struct Example {
    /// (C, H, W) in [0, 1].
    pub image: Vec<f32>,
    /// The class (classification, localization: the one object's class).
    pub label: u32,
    /// Objects with their tight boxes (scenes; empty for MNIST).
    pub truths: Vec<Truth>,
    /// (H, W): 0 background, class + 1 on object pixels (scenes; empty for MNIST).
    pub mask: Vec<u32>,
}

/// A run's data: the training stream and the fixed validation examples.
pub struct TaskData {
    config: DataConfig,
    seed: u64,
    mnist: Option<Mnist>,
    /// MNIST label -> class (None: not used by this run).
    relabel: [Option<u32>; 10],
    /// MNIST examples this run may train on (after the digit filter and `per_class`).
    pub train_pool: Vec<u32>,
    sampler: Option<Sampler>,
    /// Next training scene index.
    cursor: u64,
    pub val: Vec<Example>,
    /// The MNIST index of each validation example (MNIST only).
    pub val_ids: Vec<u32>,
}

impl TaskData {
    /// Builds the data for `spec` (input, classes and task must fit the config).
    pub fn new(config: &DataConfig, spec: &ModelSpec, mnist: Option<Mnist>, seed: u64) -> Result<TaskData> {
        config.validate_for(spec)?;
        let needs_mnist = matches!(config.source, DataSource::Mnist | DataSource::Clutter);
        let mnist = match (needs_mnist, mnist) {
            (true, None) => return Err(Error::Data(format!("{:?} data needs the MNIST asset", config.source))),
            (true, Some(m)) => {
                if (m.rows, m.cols) != (28, 28) {
                    return Err(Error::Data(format!(
                        "MNIST digits must be 28×28, got {}×{}",
                        m.rows, m.cols
                    )));
                }
                Some(m)
            }
            (false, _) => None,
        };
        let mut relabel = [None; 10];
        if config.digits.is_empty() {
            for (d, r) in relabel.iter_mut().enumerate() {
                *r = Some(d as u32);
            }
        } else {
            for (i, &d) in config.digits.iter().enumerate() {
                relabel[d as usize] = Some(i as u32);
            }
        }
        let mut data = TaskData {
            config: config.clone(),
            seed,
            mnist,
            relabel,
            train_pool: Vec::new(),
            sampler: None,
            cursor: 0,
            val: Vec::new(),
            val_ids: Vec::new(),
        };
        if needs_mnist {
            let m = data.digits()?;
            {
                let mut pool: Vec<u32> = m
                    .train
                    .iter()
                    .copied()
                    .filter(|&i| data.label_of(i).is_some())
                    .collect();
                if config.per_class > 0 {
                    // a seeded choice of `per_class` examples of each class
                    Rng::new(seed ^ 0x7ea5_0b1e).shuffle(&mut pool);
                    let mut taken = [0usize; 10];
                    pool.retain(|&i| {
                        let l = m.labels[i as usize] as usize;
                        taken[l] += 1;
                        taken[l] <= config.per_class
                    });
                }
                data.val_ids = m.val.iter().copied().filter(|&i| data.label_of(i).is_some()).collect();
                data.train_pool = pool;
            }
        }
        match config.source {
            DataSource::Mnist => {
                data.sampler = Some(Sampler::new(&data.train_pool, seed.wrapping_add(1)));
                data.val = data
                    .val_ids
                    .iter()
                    .map(|&i| data.mnist_example(i))
                    .collect::<Result<_>>()?;
            }
            DataSource::Shapes | DataSource::Clutter => {
                let range = shapes::split_range(Split::Val, N_TRAIN, config.val as u64, config.val as u64);
                data.val = range.map(|i| data.scene(i)).collect::<Result<_>>()?;
            }
        }
        Ok(data)
    }

    pub fn config(&self) -> &DataConfig {
        &self.config
    }
    pub fn mnist(&self) -> Option<&Mnist> {
        self.mnist.as_ref()
    }

    fn label_of(&self, mnist_index: u32) -> Option<u32> {
        let m = self.mnist.as_ref()?;
        self.relabel[m.labels[mnist_index as usize] as usize]
    }

    /// The MNIST asset, which data needing it was checked to have at construction.
    fn digits(&self) -> Result<&Mnist> {
        (self.mnist.as_ref()).ok_or_else(|| Error::Data(format!("{:?} data needs the MNIST asset", self.config.source)))
    }

    fn mnist_example(&self, i: u32) -> Result<Example> {
        let m = self.digits()?;
        let len = m.image_len();
        let i = i as usize;
        Ok(Example {
            image: m.pixels[i * len..(i + 1) * len]
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect(),
            label: self.label_of(i as u32).unwrap_or(0),
            truths: Vec::new(),
            mask: Vec::new(),
        })
    }

    /// Scene `index` (shapes or clutter) as an example.
    fn scene(&self, index: u64) -> Result<Example> {
        let scene = match self.config.source {
            DataSource::Shapes => shapes::scene(&self.config.shapes(), self.seed, index)?,
            DataSource::Clutter => {
                let m = self.digits()?;
                // digits of training scenes come from the training pool (MNIST's training split,
                // filtered), validation ones from its validation split
                let pool = if index < N_TRAIN {
                    &self.train_pool
                } else {
                    &self.val_ids
                };
                let mut scene = clutter::scene(m, pool, &self.config.clutter(), self.seed, index)?;
                for o in &mut scene.objects {
                    o.class = self.relabel[o.class as usize].unwrap_or(0);
                }
                for v in &mut scene.mask {
                    if *v > 0 {
                        *v = self.relabel[*v as usize - 1].map_or(0, |c| c as u8 + 1);
                    }
                }
                scene
            }
            DataSource::Mnist => unreachable!("MNIST has no scenes"),
        };
        let truths: Vec<Truth> = scene
            .objects
            .iter()
            .map(|o| Truth {
                class: o.class,
                bbox: o.bbox,
            })
            .collect();
        Ok(Example {
            image: scene.image,
            label: truths.first().map_or(0, |t| t.class),
            truths,
            mask: scene.mask.iter().map(|&m| m as u32).collect(),
        })
    }

    /// The first `n` training examples (MNIST: of the training pool; scenes: 0..n), without
    /// moving the training stream.
    pub fn train_examples(&self, n: usize) -> Result<Vec<Example>> {
        match self.config.source {
            DataSource::Mnist => self.train_pool.iter().take(n).map(|&i| self.mnist_example(i)).collect(),
            _ => (0..n as u64).map(|i| self.scene(i)).collect(),
        }
    }

    /// The next `n` training examples.
    pub fn next_train(&mut self, n: usize) -> Result<Vec<Example>> {
        if let Some(sampler) = &mut self.sampler {
            let ids = sampler.next_batch(n);
            return ids.iter().map(|&i| self.mnist_example(i)).collect();
        }
        let start = self.cursor;
        self.cursor += n as u64;
        (start..start + n as u64).map(|i| self.scene(i % N_TRAIN)).collect()
    }
}

/// Examples stacked into one (N, C, H, W) input.
pub fn stack(examples: &[&Example]) -> Vec<f32> {
    let mut x = Vec::with_capacity(examples.iter().map(|e| e.image.len()).sum());
    for e in examples {
        x.extend_from_slice(&e.image);
    }
    x
}
