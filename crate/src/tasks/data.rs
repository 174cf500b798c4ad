//! Where a task's examples come from: the MNIST digits (optionally a subset of the labels,
//! with only a few labelled examples per class, for transfer learning), seeded shapes scenes
//! (data/shapes.rs) or cluttered digits (data/clutter.rs).
//!
//! Training examples are drawn fresh every step: scenes are a pure function of
//! (config, seed, index), so the training stream is endless and never repeats a scene; MNIST
//! examples are shuffled passes over the (sub)set. The validation examples are generated
//! once, when the data is built, so every evaluation sees the same ones.

use serde::{Deserialize, Serialize};

use crate::data::clutter::{self, ClutterConfig};
use crate::data::mnist::Sampler;
use crate::data::shapes::{self, ShapeKind, ShapesConfig, Split};
use crate::data::{Mnist, Rng};
use crate::error::{Error, Result};
use crate::spec::{ModelSpec, Task};
use crate::tasks::metrics::Truth;

/// Which examples a run trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The real MNIST digits, 28×28 grey.
    #[default]
    Mnist,
    /// Seeded RGB scenes of circles, squares, triangles, crosses and rings.
    Shapes,
    /// MNIST digits placed on a larger canvas among fragments of other digits.
    Clutter,
}

/// The data section of a run's config. Every field is optional in JSON; unknown fields are
/// refused. The data is built when the run starts: changes need a reset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub source: Source,
    /// Canvas width and height (shapes, clutter).
    pub size: usize,
    /// Objects per scene (shapes, clutter).
    pub min_objects: usize,
    pub max_objects: usize,
    /// Shape circumradius range in pixels (shapes).
    pub min_radius: f32,
    pub max_radius: f32,
    /// Pixel noise (standard deviation) and number of distractors.
    pub noise: f32,
    pub clutter: usize,
    /// Largest IoU between two objects' boxes.
    pub max_overlap: f32,
    /// Textured background (shapes).
    pub textured: bool,
    /// MNIST, clutter: use these digits only, relabelled 0.. in this order (empty: all ten).
    pub digits: Vec<u32>,
    /// MNIST, clutter: labelled training digits per class (0: all of them); clutter scenes
    /// then place only those digits (at random positions, among fresh fragments).
    pub per_class: usize,
    /// Validation examples (scenes; MNIST uses its whole validation split, filtered).
    pub val: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: Source::Mnist,
            size: 32,
            min_objects: 1,
            max_objects: 1,
            min_radius: 5.0,
            max_radius: 12.0,
            noise: 0.02,
            clutter: 0,
            max_overlap: 0.1,
            textured: false,
            digits: Vec::new(),
            per_class: 0,
            val: 256,
        }
    }
}

/// Largest validation set of scenes (bounds memory in the page).
pub const MAX_VAL: usize = 2048;
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

fn config_err(field: &'static str, problem: String) -> Error {
    Error::Config { field, problem }
}

impl DataConfig {
    pub fn shapes(&self) -> ShapesConfig {
        ShapesConfig {
            size: self.size,
            min_objects: self.min_objects,
            max_objects: self.max_objects,
            min_radius: self.min_radius,
            max_radius: self.max_radius,
            noise: self.noise,
            clutter: self.clutter,
            max_overlap: self.max_overlap,
            min_visible: 0.5,
            textured_background: self.textured,
        }
    }

    pub fn clutter(&self) -> ClutterConfig {
        ClutterConfig {
            size: self.size,
            min_digits: self.min_objects,
            max_digits: self.max_objects,
            clutter: self.clutter,
            noise: self.noise,
            max_overlap: self.max_overlap,
        }
    }

    /// Checks the fields and that they fit the spec's input, classes and task.
    pub fn validate_for(&self, spec: &ModelSpec) -> Result<()> {
        if self.val == 0 || self.val > MAX_VAL {
            return Err(config_err(
                "data.val",
                format!("must be in 1..={MAX_VAL}, got {}", self.val),
            ));
        }
        if let Some(bad) = self.digits.iter().find(|&&d| d > 9) {
            return Err(config_err("data.digits", format!("{bad} is not a digit (0..=9)")));
        }
        let mut seen = [false; 10];
        for &d in &self.digits {
            if std::mem::replace(&mut seen[d as usize], true) {
                return Err(config_err("data.digits", format!("{d} is listed twice")));
            }
        }
        if self.digits.len() == 1 {
            return Err(config_err(
                "data.digits",
                "needs at least two digits to classify".into(),
            ));
        }
        let digit_classes = if self.digits.is_empty() { 10 } else { self.digits.len() };
        let (input, classes) = match self.source {
            Source::Mnist => {
                if spec.task != Task::Classify {
                    return Err(config_err(
                        "data.source",
                        format!(
                            "mnist digits are for the classify task; a {} model needs \"shapes\" or \"clutter\"",
                            spec.task.name()
                        ),
                    ));
                }
                ([1, 28, 28], digit_classes)
            }
            Source::Shapes => {
                self.shapes().validate()?;
                ([3, self.size, self.size], ShapeKind::COUNT)
            }
            Source::Clutter => {
                self.clutter().validate()?;
                ([1, self.size, self.size], digit_classes)
            }
        };
        if matches!(self.source, Source::Shapes | Source::Clutter)
            && matches!(spec.task, Task::Classify | Task::Localize)
            && (self.min_objects != 1 || self.max_objects != 1)
        {
            return Err(config_err(
                "data.max_objects",
                format!(
                    "{} needs exactly one object per scene (min_objects = max_objects = 1), got {}..={}",
                    spec.task.name(),
                    self.min_objects,
                    self.max_objects
                ),
            ));
        }
        if spec.input != input || spec.classes != classes {
            return Err(Error::Spec {
                index: 0,
                name: None,
                kind: "input".into(),
                problem: format!(
                    "{:?} data needs input {input:?} and {classes} classes; the spec has input {:?} and {} classes",
                    self.source, spec.input, spec.classes
                ),
                input_shapes: Vec::new(),
            });
        }
        Ok(())
    }
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
        let needs_mnist = matches!(config.source, Source::Mnist | Source::Clutter);
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
            let m = data.mnist.as_ref().expect("checked above");
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
            Source::Mnist => {
                data.sampler = Some(Sampler::new(&data.train_pool, seed.wrapping_add(1)));
                data.val = data.val_ids.iter().map(|&i| data.mnist_example(i)).collect();
            }
            Source::Shapes | Source::Clutter => {
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

    fn mnist_example(&self, i: u32) -> Example {
        let m = self.mnist.as_ref().expect("MNIST data");
        let len = m.image_len();
        let i = i as usize;
        Example {
            image: m.pixels[i * len..(i + 1) * len]
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect(),
            label: self.label_of(i as u32).unwrap_or(0),
            truths: Vec::new(),
            mask: Vec::new(),
        }
    }

    /// Scene `index` (shapes or clutter) as an example.
    fn scene(&self, index: u64) -> Result<Example> {
        let scene = match self.config.source {
            Source::Shapes => shapes::scene(&self.config.shapes(), self.seed, index)?,
            Source::Clutter => {
                let m = self.mnist.as_ref().expect("MNIST data");
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
            Source::Mnist => unreachable!("MNIST has no scenes"),
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
            Source::Mnist => Ok(self.train_pool.iter().take(n).map(|&i| self.mnist_example(i)).collect()),
            _ => (0..n as u64).map(|i| self.scene(i)).collect(),
        }
    }

    /// The next `n` training examples.
    pub fn next_train(&mut self, n: usize) -> Result<Vec<Example>> {
        if let Some(sampler) = &mut self.sampler {
            let ids = sampler.next_batch(n);
            return Ok(ids.iter().map(|&i| self.mnist_example(i)).collect());
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
