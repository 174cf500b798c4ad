//! Seeded "shapes" scenes for localisation, detection and segmentation: a few coloured
//! shapes (circle, square, triangle, cross, ring) on a plain or textured background, with
//! optional small distractor blobs and pixel noise. Every scene comes with its objects
//! (class, tight box, colour), a class mask and an instance mask.
//!
//! Scene `index` is a pure function of `(config, seed, index)`: each scene has its own RNG
//! derived from the seed and the index, so a split is just a range of indices
//! ([`split_range`]) and any scene can be regenerated alone. Only `+ - * /` on `f32` and the
//! crate's PCG32 are used (rotations come from a table of 15° steps, not from `sin`/`cos`),
//! so the same inputs give the same bytes on every machine.
//!
//! Geometry: pixel `(x, y)` covers `[x, x+1) × [y, y+1)` and belongs to a shape when its
//! centre `(x + 0.5, y + 0.5)` does. Every shape lies inside the disc of its radius `r`
//! around its centre, and the centre is drawn in `[r, size - r]`, so shapes never leave
//! the canvas. Objects are drawn in order, later ones on top.

use super::Rng;
use crate::error::{Error, Result};
use std::ops::Range;

/// The shape classes; `class` is the position in [`ShapeKind::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShapeKind {
    Circle,
    Square,
    Triangle,
    Cross,
    Ring,
}

const SQRT3_2: f32 = 0.866_025_4; // √3 / 2
const FRAC_1_SQRT2: f32 = 0.707_106_77; // 1 / √2
const SQRT3: f32 = 1.732_050_8;

impl ShapeKind {
    pub const ALL: [ShapeKind; 5] = [
        ShapeKind::Circle,
        ShapeKind::Square,
        ShapeKind::Triangle,
        ShapeKind::Cross,
        ShapeKind::Ring,
    ];
    /// Number of object classes (the mask uses 0 for background and `class + 1` for objects).
    pub const COUNT: usize = 5;

    pub fn class(self) -> u32 {
        self as u32
    }

    pub fn from_class(class: u32) -> Option<ShapeKind> {
        ShapeKind::ALL.get(class as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Square => "square",
            ShapeKind::Triangle => "triangle",
            ShapeKind::Cross => "cross",
            ShapeKind::Ring => "ring",
        }
    }

    /// Whether the point `(u, v)`, in the shape's own frame (centre at the origin, rotation
    /// undone), lies in a shape of circumradius `r`. Every shape fits in the disc of radius `r`.
    fn contains(self, u: f32, v: f32, r: f32) -> bool {
        let d2 = u * u + v * v;
        match self {
            ShapeKind::Circle => d2 <= r * r,
            ShapeKind::Ring => d2 <= r * r && d2 >= (0.55 * r) * (0.55 * r),
            ShapeKind::Square => {
                let h = r * FRAC_1_SQRT2; // half side: corners on the circle
                u.abs() <= h && v.abs() <= h
            }
            ShapeKind::Cross => {
                let (arm, half_width) = (0.95 * r, 0.3 * r); // arm corners at 0.996 r
                (u.abs() <= arm && v.abs() <= half_width) || (v.abs() <= arm && u.abs() <= half_width)
            }
            ShapeKind::Triangle => {
                // Equilateral, vertices at r·(0,-1) (pointing up: y grows downwards) and
                // r·(±√3/2, 1/2); each edge is at distance r/2 from the centre.
                let half = 0.5 * r;
                v <= half && -SQRT3_2 * u - 0.5 * v <= half && SQRT3_2 * u - 0.5 * v <= half
            }
        }
    }
}

/// `(cos, sin)` of 0°, 15°, ..., 75°; other multiples of 15° by exact quarter turns.
const QUARTER_TURN: [(f32, f32); 6] = [
    (1.0, 0.0),
    (0.965_925_8, 0.258_819_04),
    (SQRT3_2, 0.5),
    (FRAC_1_SQRT2, FRAC_1_SQRT2),
    (0.5, SQRT3_2),
    (0.258_819_04, 0.965_925_8),
];
/// Number of rotation steps (15° each) in a full turn.
const ROTATION_STEPS: usize = 24;

/// `(cos, sin)` of `step · 15°`.
fn rotation(step: usize) -> (f32, f32) {
    let (mut c, mut s) = QUARTER_TURN[step % 6];
    for _ in 0..(step / 6) % 4 {
        (c, s) = (-s, c); // + 90°
    }
    (c, s)
}

/// One object of a scene.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The shape; `None` for objects that are not shapes (the MNIST digits of `data::clutter`).
    pub kind: Option<ShapeKind>,
    /// The object's class (`kind.class()` for shapes, the digit for digits); the mask holds
    /// `class + 1` on this object's visible pixels.
    pub class: u32,
    /// `[x0, y0, x1, y1]` in pixel edges: the tight box of the pixels this object set when it
    /// was drawn (min x, min y, max x + 1, max y + 1). Later objects may hide some of those
    /// pixels; the box is not shrunk for that (it is the box of the whole shape).
    pub bbox: [f32; 4],
    /// RGB fill colour (white, `[1, 1, 1]`, for digits).
    pub colour: [f32; 3],
    /// Centre `(x, y)` and circumradius in pixels (every drawn pixel centre is within `radius`);
    /// for digits, the box centre and half its diagonal.
    pub centre: [f32; 2],
    pub radius: f32,
}

/// One generated scene.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    pub size: usize,
    /// Image channels: 3 (R, G, B) for shapes, 1 (grey) for cluttered digits.
    pub channels: usize,
    /// (channels, size, size), values in [0, 1].
    pub image: Vec<f32>,
    /// In drawing order (later objects on top).
    pub objects: Vec<Object>,
    /// (size, size): 0 = background (distractor blobs included), `class + 1` on object pixels.
    pub mask: Vec<u8>,
    /// (size, size): 0 = background, `i + 1` where object `i` is visible (instance segmentation).
    pub instances: Vec<u8>,
}

/// How scenes are drawn. `validate` names the first bad field.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapesConfig {
    /// Width and height in pixels.
    pub size: usize,
    pub min_objects: usize,
    pub max_objects: usize,
    /// Circumradius range in pixels.
    pub min_radius: f32,
    pub max_radius: f32,
    /// Standard deviation of the per-pixel noise (a sum of 4 uniforms, scaled), before clamping to [0, 1].
    pub noise: f32,
    /// Number of small distractor blobs, drawn under the objects and background in the mask.
    pub clutter: usize,
    /// Largest IoU allowed between any two objects' boxes.
    pub max_overlap: f32,
    /// Smallest fraction of each object's pixels that must stay visible after later objects.
    pub min_visible: f32,
    /// Smooth random colour variation in the background instead of one flat colour.
    pub textured_background: bool,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        ShapesConfig {
            size: 32,
            min_objects: 1,
            max_objects: 3,
            min_radius: 4.0,
            max_radius: 9.0,
            noise: 0.02,
            clutter: 2,
            max_overlap: 0.2,
            min_visible: 0.5,
            textured_background: false,
        }
    }
}

const MAX_SIZE: usize = 1024;
const MAX_OBJECTS: usize = 32;
const MAX_CLUTTER: usize = 256;
const MIN_RADIUS: f32 = 2.0;

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

impl ShapesConfig {
    pub fn validate(&self) -> Result<()> {
        if !(8..=MAX_SIZE).contains(&self.size) {
            return Err(config_err(
                "size",
                format!("must be in 8..={MAX_SIZE}, got {}", self.size),
            ));
        }
        if !(1..=MAX_OBJECTS).contains(&self.max_objects) {
            return Err(config_err(
                "max_objects",
                format!("must be in 1..={MAX_OBJECTS}, got {}", self.max_objects),
            ));
        }
        if !(1..=self.max_objects).contains(&self.min_objects) {
            return Err(config_err(
                "min_objects",
                format!(
                    "must be in 1..=max_objects ({}), got {}",
                    self.max_objects, self.min_objects
                ),
            ));
        }
        let half = self.size as f32 / 2.0;
        check_range("min_radius", self.min_radius, MIN_RADIUS, half)?;
        if !(self.max_radius.is_finite() && self.max_radius >= self.min_radius && self.max_radius <= half) {
            return Err(config_err(
                "max_radius",
                format!(
                    "must be in [min_radius ({}), size / 2 ({half})], got {}",
                    self.min_radius, self.max_radius
                ),
            ));
        }
        check_range("noise", self.noise, 0.0, 0.5)?;
        if self.clutter > MAX_CLUTTER {
            return Err(config_err(
                "clutter",
                format!("must be at most {MAX_CLUTTER}, got {}", self.clutter),
            ));
        }
        check_range("max_overlap", self.max_overlap, 0.0, 1.0)?;
        check_range("min_visible", self.min_visible, 0.0, 1.0)?;
        // Room for min_objects smallest shapes side by side on a grid (boxes disjoint).
        let per_side = (self.size as f32 / (2.0 * self.min_radius + 1.0)) as usize;
        if per_side * per_side < self.min_objects {
            return Err(config_err(
                "min_objects",
                format!(
                    "{} shapes of radius {} do not fit side by side in {}×{} pixels",
                    self.min_objects, self.min_radius, self.size, self.size
                ),
            ));
        }
        Ok(())
    }
}

/// The three parts of a dataset of scenes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
    Test,
}

/// Scene indices of a split: train `0..n_train`, then val, then test, back to back.
pub fn split_range(split: Split, n_train: u64, n_val: u64, n_test: u64) -> Range<u64> {
    match split {
        Split::Train => 0..n_train,
        Split::Val => n_train..n_train + n_val,
        Split::Test => n_train + n_val..n_train + n_val + n_test,
    }
}

/// SplitMix64 finaliser: spreads nearby inputs (seed, index, attempt) over all 64 bits.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whole-scene attempts (each with a fresh RNG stream) before giving up.
const SCENE_ATTEMPTS: u64 = 16;
/// Placements tried per object within one attempt.
const OBJECT_TRIES: usize = 64;

/// Scene `index` of the dataset given by `(config, seed)`. Fails when the config is invalid,
/// or (only for crowded configs) when `min_objects` shapes could not be placed within
/// `max_overlap` / `min_visible` after a bounded number of attempts.
pub fn scene(config: &ShapesConfig, seed: u64, index: u64) -> Result<Scene> {
    config.validate()?;
    let scene_seed = mix(mix(seed) ^ index);
    for attempt in 0..SCENE_ATTEMPTS {
        let mut rng = Rng::new(mix(scene_seed ^ attempt));
        if let Some(scene) = try_scene(config, &mut rng) {
            return Ok(scene);
        }
    }
    Err(Error::Data(format!(
        "shapes: could not place {} objects of radius {}..{} in {}×{} pixels with max_overlap {} and min_visible {} \
         ({SCENE_ATTEMPTS} attempts)",
        config.min_objects,
        config.min_radius,
        config.max_radius,
        config.size,
        config.size,
        config.max_overlap,
        config.min_visible
    )))
}

/// Pixel indices `y · size + x` whose centres lie in the shape (clipped to the canvas).
fn footprint(size: usize, kind: ShapeKind, centre: [f32; 2], r: f32, (c, s): (f32, f32)) -> Vec<usize> {
    let span = |mid: f32| {
        (
            (mid - r).floor().max(0.0) as usize,
            ((mid + r).ceil().max(0.0) as usize).min(size),
        )
    };
    let ((x_lo, x_hi), (y_lo, y_hi)) = (span(centre[0]), span(centre[1]));
    let mut pixels = Vec::new();
    for y in y_lo..y_hi {
        for x in x_lo..x_hi {
            let (dx, dy) = (x as f32 + 0.5 - centre[0], y as f32 + 0.5 - centre[1]);
            // Undo the rotation: (u, v) = R(-θ) (dx, dy).
            let (u, v) = (c * dx + s * dy, -s * dx + c * dy);
            if kind.contains(u, v, r) {
                pixels.push(y * size + x);
            }
        }
    }
    pixels
}

/// Tight box `[x0, y0, x1, y1]` (pixel edges) of a non-empty pixel list.
fn tight_box(size: usize, pixels: &[usize]) -> [f32; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for &p in pixels {
        let (x, y) = (p % size, p / size);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
    }
    [x0 as f32, y0 as f32, x1 as f32, y1 as f32]
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

fn random_colour(rng: &mut Rng) -> [f32; 3] {
    [rng.next_f32(), rng.next_f32(), rng.next_f32()]
}

/// A colour at RGB distance ≥ 0.5 from `background`; after a few random tries, the corner
/// of the colour cube opposite the background (distance ≥ √3/2).
fn contrasting_colour(rng: &mut Rng, background: [f32; 3]) -> [f32; 3] {
    for _ in 0..16 {
        let colour = random_colour(rng);
        let d2: f32 = (0..3)
            .map(|c| (colour[c] - background[c]) * (colour[c] - background[c]))
            .sum();
        if d2 >= 0.25 {
            return colour;
        }
    }
    background.map(|b| if b > 0.5 { 0.0 } else { 1.0 })
}

/// Fills the image with the background and returns its mean colour: flat, or the base colour
/// plus bilinearly interpolated random values on a coarse 5×5 grid (±0.15 per channel).
fn paint_background(config: &ShapesConfig, rng: &mut Rng, image: &mut [f32]) -> [f32; 3] {
    let n = config.size;
    if !config.textured_background {
        let base = random_colour(rng);
        for c in 0..3 {
            image[c * n * n..(c + 1) * n * n].fill(base[c]);
        }
        return base;
    }
    const CELLS: usize = 4;
    let base = [rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)];
    let mut mean = [0.0f32; 3];
    for c in 0..3 {
        let grid: Vec<f32> = (0..(CELLS + 1) * (CELLS + 1))
            .map(|_| rng.uniform(-0.15, 0.15))
            .collect();
        let node = |gx: usize, gy: usize| grid[gy * (CELLS + 1) + gx];
        let mut total = 0.0f32;
        for y in 0..n {
            let fy = (y as f32 + 0.5) / n as f32 * CELLS as f32;
            let (gy, ty) = ((fy as usize).min(CELLS - 1), fy - (fy as usize).min(CELLS - 1) as f32);
            for x in 0..n {
                let fx = (x as f32 + 0.5) / n as f32 * CELLS as f32;
                let (gx, tx) = ((fx as usize).min(CELLS - 1), fx - (fx as usize).min(CELLS - 1) as f32);
                let top = node(gx, gy) * (1.0 - tx) + node(gx + 1, gy) * tx;
                let bottom = node(gx, gy + 1) * (1.0 - tx) + node(gx + 1, gy + 1) * tx;
                let value = (base[c] + top * (1.0 - ty) + bottom * ty).clamp(0.0, 1.0);
                image[c * n * n + y * n + x] = value;
                total += value;
            }
        }
        mean[c] = total / (n * n) as f32;
    }
    mean
}

fn paint(image: &mut [f32], plane: usize, pixels: &[usize], colour: [f32; 3]) {
    for &p in pixels {
        for c in 0..3 {
            image[c * plane + p] = colour[c];
        }
    }
}

/// One attempt at a scene; `None` when some object found no valid placement.
fn try_scene(config: &ShapesConfig, rng: &mut Rng) -> Option<Scene> {
    let n = config.size;
    let plane = n * n;
    let count = config.min_objects + rng.below(config.max_objects - config.min_objects + 1);
    let mut image = vec![0.0f32; 3 * plane];
    let background = paint_background(config, rng, &mut image);

    // Distractors: small blobs of any colour anywhere, under the objects, not in the mask.
    let blob_max = (0.6 * config.min_radius).max(1.0);
    for _ in 0..config.clutter {
        let centre = [rng.uniform(0.0, n as f32), rng.uniform(0.0, n as f32)];
        let r = rng.uniform(0.8, blob_max);
        let colour = random_colour(rng);
        paint(
            &mut image,
            plane,
            &footprint(n, ShapeKind::Circle, centre, r, (1.0, 0.0)),
            colour,
        );
    }

    let mut objects: Vec<Object> = Vec::with_capacity(count);
    let mut instances = vec![0u8; plane];
    // Per object: pixels set when drawn, and pixels still visible now.
    let (mut drawn, mut visible): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    for i in 0..count {
        let placed = (0..OBJECT_TRIES).find_map(|_| {
            let kind = ShapeKind::ALL[rng.below(ShapeKind::COUNT)];
            let r = rng.uniform(config.min_radius, config.max_radius);
            let centre = [rng.uniform(r, n as f32 - r), rng.uniform(r, n as f32 - r)];
            let turn = rotation(rng.below(ROTATION_STEPS));
            let pixels = footprint(n, kind, centre, r, turn);
            if pixels.is_empty() {
                return None;
            }
            let bbox = tight_box(n, &pixels);
            if objects.iter().any(|o| box_iou(&o.bbox, &bbox) > config.max_overlap) {
                return None;
            }
            // Every earlier object must keep min_visible of its pixels once this one is on top.
            let mut hidden = vec![0usize; drawn.len()];
            for &p in &pixels {
                if instances[p] > 0 {
                    hidden[instances[p] as usize - 1] += 1;
                }
            }
            for j in 0..drawn.len() {
                if ((visible[j] - hidden[j]) as f32) < config.min_visible * drawn[j] as f32 {
                    return None;
                }
            }
            Some((kind, r, centre, pixels, bbox))
        });
        let (kind, radius, centre, pixels, bbox) = placed?;
        let colour = contrasting_colour(rng, background);
        paint(&mut image, plane, &pixels, colour);
        for &p in &pixels {
            if instances[p] > 0 {
                visible[instances[p] as usize - 1] -= 1;
            }
            instances[p] = i as u8 + 1;
        }
        objects.push(Object {
            kind: Some(kind),
            class: kind.class(),
            bbox,
            colour,
            centre,
            radius,
        });
        drawn.push(pixels.len());
        visible.push(pixels.len());
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
        .map(|&o| {
            if o == 0 {
                0
            } else {
                objects[o as usize - 1].class as u8 + 1
            }
        })
        .collect();
    Some(Scene {
        size: n,
        channels: 3,
        image,
        objects,
        mask,
        instances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds_of(size: usize, mask: &[u8], keep: impl Fn(usize) -> bool) -> Option<[f32; 4]> {
        let pixels: Vec<usize> = (0..size * size).filter(|&p| mask[p] != 0 && keep(p)).collect();
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

    fn busy() -> ShapesConfig {
        ShapesConfig {
            size: 48,
            min_objects: 2,
            max_objects: 5,
            clutter: 6,
            noise: 0.1,
            max_overlap: 0.3,
            textured_background: true,
            ..ShapesConfig::default()
        }
    }

    #[test]
    fn rotation_table_matches_cos_sin() {
        for step in 0..ROTATION_STEPS {
            let angle = (step as f64 * 15.0).to_radians();
            let (c, s) = rotation(step);
            assert!(
                (c as f64 - angle.cos()).abs() < 1e-6 && (s as f64 - angle.sin()).abs() < 1e-6,
                "{step}"
            );
        }
    }

    #[test]
    fn shapes_contain_what_their_definitions_say() {
        let r = 10.0;
        for kind in ShapeKind::ALL {
            // Nothing outside the circumscribed disc.
            assert!(!kind.contains(7.1, 7.1, r) && !kind.contains(0.0, 10.01, r), "{kind:?}");
        }
        assert!(ShapeKind::Circle.contains(0.0, 0.0, r) && ShapeKind::Circle.contains(6.0, 7.9, r));
        assert!(!ShapeKind::Ring.contains(0.0, 0.0, r) && !ShapeKind::Ring.contains(5.4, 0.0, r));
        assert!(ShapeKind::Ring.contains(5.6, 0.0, r) && ShapeKind::Ring.contains(0.0, -9.9, r));
        assert!(ShapeKind::Square.contains(7.0, -7.0, r) && !ShapeKind::Square.contains(7.2, 0.0, r));
        assert!(ShapeKind::Cross.contains(9.4, 2.9, r) && ShapeKind::Cross.contains(-2.9, -9.4, r));
        assert!(!ShapeKind::Cross.contains(4.0, 4.0, r) && ShapeKind::Cross.contains(0.0, 0.0, r));
        // Triangle: apex up at (0, -10), base at y = 5 from x = -8.66 to 8.66.
        let t = ShapeKind::Triangle;
        assert!(t.contains(0.0, -9.9, r) && t.contains(8.5, 4.9, r) && t.contains(-8.5, 4.9, r));
        assert!(!t.contains(0.0, 5.1, r) && !t.contains(3.0, -6.0, r) && !t.contains(-3.0, -6.0, r));
        // Rasterised square of circumradius 10 unrotated at (16, 16): half side 7.07, so
        // pixel centres 9.5..=22.5 -> columns 9..=22, a 14×14 block.
        let square = footprint(32, ShapeKind::Square, [16.0, 16.0], 10.0, rotation(0));
        assert_eq!(square.len(), 14 * 14);
        assert_eq!(tight_box(32, &square), [9.0, 9.0, 23.0, 23.0]);
        // The same square turned 90° covers the same pixels.
        assert_eq!(
            footprint(32, ShapeKind::Square, [16.0, 16.0], 10.0, rotation(6)),
            square
        );
    }

    #[test]
    fn same_inputs_same_scene_and_indices_differ() {
        let config = busy();
        let a = scene(&config, 7, 3).unwrap();
        assert_eq!(a, scene(&config, 7, 3).unwrap());
        let bits = |s: &Scene| s.image.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&scene(&config, 7, 3).unwrap()));
        for other in [scene(&config, 7, 4).unwrap(), scene(&config, 8, 3).unwrap()] {
            assert_ne!(bits(&a), bits(&other));
            assert_ne!(a.mask, other.mask);
        }
    }

    #[test]
    fn single_object_box_is_tight_around_its_mask() {
        for textured in [false, true] {
            let config = ShapesConfig {
                max_objects: 1,
                textured_background: textured,
                clutter: 5,
                ..ShapesConfig::default()
            };
            for index in 0..200 {
                let s = scene(&config, 1, index).unwrap();
                assert_eq!(s.objects.len(), 1);
                let o = &s.objects[0];
                assert_eq!(bounds_of(s.size, &s.mask, |_| true), Some(o.bbox), "scene {index}");
                assert!(s.mask.iter().all(|&m| m == 0 || m as u32 == o.class + 1));
                assert_eq!(
                    s.mask.iter().map(|&m| m != 0).collect::<Vec<_>>(),
                    s.instances.iter().map(|&m| m != 0).collect::<Vec<_>>()
                );
                // The shape lies within its circumradius, inside the canvas.
                let [x0, y0, x1, y1] = o.bbox;
                assert!(x0 >= (o.centre[0] - o.radius).floor() && x1 <= (o.centre[0] + o.radius).ceil());
                assert!(y0 >= (o.centre[1] - o.radius).floor() && y1 <= (o.centre[1] + o.radius).ceil());
                assert!(x0 >= 0.0 && y0 >= 0.0 && x1 <= s.size as f32 && y1 <= s.size as f32);
            }
        }
    }

    #[test]
    fn disjoint_boxes_are_tight_around_their_masks() {
        let config = ShapesConfig {
            size: 64,
            max_objects: 6,
            max_overlap: 0.0,
            ..ShapesConfig::default()
        };
        for index in 0..50 {
            let s = scene(&config, 2, index).unwrap();
            for (i, o) in s.objects.iter().enumerate() {
                let inside = |p: usize| {
                    let (x, y) = ((p % s.size) as f32, (p / s.size) as f32);
                    x >= o.bbox[0] && x < o.bbox[2] && y >= o.bbox[1] && y < o.bbox[3]
                };
                let by_class = bounds_of(s.size, &s.mask, |p| inside(p) && s.mask[p] as u32 == o.class + 1);
                assert_eq!(by_class, Some(o.bbox), "scene {index} object {i}");
                let by_instance = bounds_of(s.size, &s.instances, |p| s.instances[p] as usize == i + 1);
                assert_eq!(by_instance, Some(o.bbox), "scene {index} object {i}");
            }
        }
    }

    #[test]
    fn masks_counts_values_and_overlap_follow_the_config() {
        let config = busy();
        let mut kinds_seen = [false; ShapeKind::COUNT];
        for index in 0..100 {
            let s = scene(&config, 3, index).unwrap();
            let plane = s.size * s.size;
            assert_eq!(
                (s.image.len(), s.mask.len(), s.instances.len()),
                (3 * plane, plane, plane)
            );
            assert!((config.min_objects..=config.max_objects).contains(&s.objects.len()));
            assert!(s.image.iter().all(|v| (0.0..=1.0).contains(v)));
            for p in 0..plane {
                let expected = match s.instances[p] {
                    0 => 0,
                    i => s.objects[i as usize - 1].class + 1,
                };
                assert_eq!(s.mask[p] as u32, expected);
            }
            for (i, o) in s.objects.iter().enumerate() {
                kinds_seen[o.class as usize] = true;
                assert_eq!(ShapeKind::from_class(o.class), o.kind);
                // Visible pixels lie in the (pre-occlusion) box, and at least min_visible of
                // the pixels drawn stay visible (a drawn pixel count ≤ box area bounds it below).
                let mine: Vec<usize> = (0..plane).filter(|&p| s.instances[p] as usize == i + 1).collect();
                assert!(!mine.is_empty());
                let b = bounds_of(s.size, &s.instances, |p| s.instances[p] as usize == i + 1).unwrap();
                assert!(b[0] >= o.bbox[0] && b[1] >= o.bbox[1] && b[2] <= o.bbox[2] && b[3] <= o.bbox[3]);
                for later in &s.objects[i + 1..] {
                    assert!(box_iou(&o.bbox, &later.bbox) <= config.max_overlap, "scene {index}");
                }
            }
        }
        assert!(kinds_seen.iter().all(|&k| k), "{kinds_seen:?}");
    }

    #[test]
    fn min_visible_is_respected() {
        // With a generous overlap, count each object's drawn pixels by redrawing it alone.
        let config = ShapesConfig {
            max_overlap: 1.0,
            min_visible: 0.7,
            min_objects: 3,
            max_objects: 4,
            ..ShapesConfig::default()
        };
        let mut hidden_some = false;
        for index in 0..60 {
            let s = scene(&config, 4, index).unwrap();
            for (i, o) in s.objects.iter().enumerate() {
                let visible = s.instances.iter().filter(|&&v| v as usize == i + 1).count();
                // Drawn pixels: redraw with every rotation and keep the one matching the box and
                // containing the visible pixels (the rotation is not stored).
                let drawn = (0..ROTATION_STEPS)
                    .map(|k| footprint(s.size, o.kind.unwrap(), o.centre, o.radius, rotation(k)))
                    .filter(|px| tight_box(s.size, px) == o.bbox)
                    .filter(|px| (0..s.instances.len()).all(|p| s.instances[p] as usize != i + 1 || px.contains(&p)))
                    .map(|px| px.len())
                    .min()
                    .unwrap();
                hidden_some |= visible < drawn;
                assert!(
                    visible as f32 >= 0.7 * drawn as f32,
                    "scene {index} object {i}: {visible}/{drawn}"
                );
            }
        }
        assert!(
            hidden_some,
            "no occlusion at all: the test would not notice a broken check"
        );
    }

    #[test]
    fn bad_configs_name_their_field() {
        let field = |c: ShapesConfig| match c.validate() {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        let d = ShapesConfig::default;
        assert!(d().validate().is_ok() && busy().validate().is_ok());
        assert_eq!(field(ShapesConfig { size: 4, ..d() }), "size");
        assert_eq!(field(ShapesConfig { max_objects: 0, ..d() }), "max_objects");
        assert_eq!(field(ShapesConfig { min_objects: 4, ..d() }), "min_objects");
        assert_eq!(field(ShapesConfig { min_radius: 1.0, ..d() }), "min_radius");
        assert_eq!(field(ShapesConfig { max_radius: 3.0, ..d() }), "max_radius");
        assert_eq!(
            field(ShapesConfig {
                max_radius: 17.0,
                ..d()
            }),
            "max_radius"
        );
        assert_eq!(field(ShapesConfig { noise: f32::NAN, ..d() }), "noise");
        assert_eq!(field(ShapesConfig { clutter: 1000, ..d() }), "clutter");
        assert_eq!(
            field(ShapesConfig {
                max_overlap: -0.1,
                ..d()
            }),
            "max_overlap"
        );
        assert_eq!(
            field(ShapesConfig {
                min_visible: 1.5,
                ..d()
            }),
            "min_visible"
        );
        let crowded = ShapesConfig {
            size: 16,
            min_objects: 5,
            max_objects: 5,
            min_radius: 4.0,
            max_radius: 4.0,
            ..d()
        };
        assert_eq!(field(crowded.clone()), "min_objects");
        assert!(matches!(
            scene(&crowded, 0, 0),
            Err(Error::Config {
                field: "min_objects",
                ..
            })
        ));
    }

    #[test]
    fn splits_are_back_to_back_ranges() {
        assert_eq!(split_range(Split::Train, 10, 3, 2), 0..10);
        assert_eq!(split_range(Split::Val, 10, 3, 2), 10..13);
        assert_eq!(split_range(Split::Test, 10, 3, 2), 13..15);
    }

    #[test]
    fn golden_scene() {
        // Any change to the generator (RNG use, geometry, colours, noise) changes these.
        let s = scene(&busy(), 42, 0).unwrap();
        let mask_sum: u64 = s.mask.iter().map(|&m| m as u64).sum();
        let image_sum: f64 = s.image.iter().map(|&v| v as f64).sum();
        let summary: Vec<(u32, [f32; 4])> = s.objects.iter().map(|o| (o.class, o.bbox)).collect();
        assert_eq!(mask_sum, 552);
        assert_eq!(format!("{image_sum:.3}"), "3618.306");
        let expected = [
            (0, [10.0, 2.0, 27.0, 19.0]),
            (0, [16.0, 36.0, 25.0, 44.0]),
            (3, [11.0, 6.0, 19.0, 13.0]),
            (0, [20.0, 8.0, 35.0, 24.0]),
        ];
        assert_eq!(summary, expected);
    }
}
