//! Seeded synthetic datasets: FedProx/LEAF `Synthetic(alpha, beta)` and
//! image-shaped data with class-dependent patterns plus noise.
//!
//! The same parameters and seed give the same data on every machine (ChaCha8
//! streams), so every client of a job generates the same pool and partitions
//! it without overlap.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::{Dataset, Features, InputShape};

/// Features of a `Synthetic(alpha, beta)` example.
pub const LEAF_FEATURES: usize = 60;
/// Classes of a `Synthetic(alpha, beta)` example.
pub const LEAF_CLASSES: usize = 10;

/// FedProx/LEAF `Synthetic(alpha, beta)` (Li et al., "Federated Optimization in
/// Heterogeneous Networks", 2020): `devices` devices, each with its own softmax
/// model and its own input distribution.
///
/// Device k draws `u_k ~ N(0, alpha)`, `W_k ~ N(u_k, 1)` (10x60),
/// `b_k ~ N(u_k, 1)`, `B_k ~ N(0, beta)`, `v_k ~ N(B_k, 1)` (60); its examples
/// are `x ~ N(v_k, diag(j^-1.2))` and `y = argmax(W_k x + b_k)`. `alpha`
/// controls how much the devices' models differ, `beta` how much their data does.
/// Unlike LEAF every device has the same number of examples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeafSynthetic {
    /// Model heterogeneity (standard deviation of `u_k`).
    pub alpha: f64,
    /// Data heterogeneity (standard deviation of `B_k`).
    pub beta: f64,
    /// Number of devices.
    pub devices: usize,
    /// Examples per device.
    pub per_device: usize,
}

impl LeafSynthetic {
    /// Device `k`'s examples drawn with `seed`; devices are contiguous blocks
    /// when pooled by [`LeafSynthetic::generate`].
    pub fn device(&self, seed: u64, k: usize) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(k as u64);
        let std_normal = Normal::new(0.0, 1.0).expect("unit normal is valid");
        let u = self.alpha * std_normal.sample(&mut rng);
        let big_b = self.beta * std_normal.sample(&mut rng);
        let w: Vec<f64> = (0..LEAF_CLASSES * LEAF_FEATURES)
            .map(|_| u + std_normal.sample(&mut rng))
            .collect();
        let b: Vec<f64> = (0..LEAF_CLASSES)
            .map(|_| u + std_normal.sample(&mut rng))
            .collect();
        let v: Vec<f64> = (0..LEAF_FEATURES)
            .map(|_| big_b + std_normal.sample(&mut rng))
            .collect();
        let sd: Vec<f64> = (1..=LEAF_FEATURES)
            .map(|j| (j as f64).powf(-1.2).sqrt())
            .collect();
        let mut features = Vec::with_capacity(self.per_device * LEAF_FEATURES);
        let mut labels = Vec::with_capacity(self.per_device);
        for _ in 0..self.per_device {
            let x: Vec<f64> = (0..LEAF_FEATURES)
                .map(|j| v[j] + sd[j] * std_normal.sample(&mut rng))
                .collect();
            let label = (0..LEAF_CLASSES)
                .map(|c| {
                    let row = &w[c * LEAF_FEATURES..(c + 1) * LEAF_FEATURES];
                    b[c] + row.iter().zip(&x).map(|(w, x)| w * x).sum::<f64>()
                })
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (c, s)| {
                    if s > best.1 { (c, s) } else { best }
                })
                .0;
            features.extend(x.iter().map(|&v| v as f32));
            labels.push(label as u8);
        }
        Dataset::new(
            Features::Floats(features),
            labels,
            InputShape::vector(LEAF_FEATURES),
            LEAF_CLASSES,
        )
        .expect("generator builds consistent datasets")
    }

    /// All devices' examples pooled, device after device.
    pub fn generate(&self, seed: u64) -> Dataset {
        let parts: Vec<Dataset> = (0..self.devices).map(|k| self.device(seed, k)).collect();
        concat(&parts)
    }
}

/// Concatenates datasets of the same shape and classes (internal generators only).
fn concat(parts: &[Dataset]) -> Dataset {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        for e in 0..p.len() {
            p.push_features(e, &mut features);
        }
        labels.extend_from_slice(p.labels());
        debug_assert!(i == 0 || p.shape() == parts[0].shape());
    }
    let (shape, classes) = parts
        .first()
        .map(|p| (p.shape(), p.num_classes()))
        .unwrap_or((InputShape::vector(LEAF_FEATURES), LEAF_CLASSES));
    Dataset::new(Features::Floats(features), labels, shape, classes).expect("parts share one shape")
}

/// Image-shaped synthetic data: each class has a fixed random pattern (an 8x8
/// grid per channel of uniform 0..1 values, scaled up to the image size),
/// blended with a pattern common to all classes by `overlap`; an example is
/// its class's pattern shifted by up to 2 pixels each way, scaled in
/// contrast by 0.7..1.3, plus Gaussian noise (sd `noise_sd`), clipped to 0..1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticImages {
    /// Image shape (e.g. 28x28x1 or 32x32x3).
    pub shape: InputShape,
    /// Number of classes.
    pub classes: usize,
    /// The share of every class's pattern that all classes have in common
    /// (0: each class its own pattern, trivially told apart).
    pub overlap: f32,
    /// Standard deviation of each pixel's Gaussian noise (pixels in 0..1).
    pub noise_sd: f32,
}

impl SyntheticImages {
    /// Distinct classes with light noise (`synthetic-images`,
    /// `synthetic-cifar`): a model learns them in a round or two.
    pub fn distinct(shape: InputShape, classes: usize) -> Self {
        Self {
            shape,
            classes,
            overlap: 0.0,
            noise_sd: 0.25,
        }
    }

    /// Classes that share most of their pattern under heavy noise
    /// (`synthetic-hard`): accuracy rises over many rounds and stays below
    /// 1, and a larger model does better, as on real images.
    pub fn overlapping(shape: InputShape, classes: usize) -> Self {
        Self {
            shape,
            classes,
            overlap: 0.6,
            noise_sd: 0.4,
        }
    }

    /// `count` examples with cycling labels (0, 1, .., classes-1, 0, ..),
    /// drawn from stream `stream` of `seed`; the class patterns depend on `seed` only.
    pub fn generate(&self, seed: u64, stream: u64, count: usize) -> Dataset {
        const GRID: usize = 8;
        const SHIFT: i64 = 2;
        let InputShape {
            channels,
            height,
            width,
        } = self.shape;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let patterns: Vec<Vec<f32>> = (0..self.classes)
            .map(|_| {
                let grid: Vec<f32> = (0..channels * GRID * GRID)
                    .map(|_| rng.random::<f32>())
                    .collect();
                let mut img = Vec::with_capacity(self.shape.features());
                for c in 0..channels {
                    for y in 0..height {
                        for x in 0..width {
                            let gy = y * GRID / height;
                            let gx = x * GRID / width;
                            img.push(grid[(c * GRID + gy) * GRID + gx]);
                        }
                    }
                }
                img
            })
            .collect();
        let patterns = if self.overlap > 0.0 {
            // Drawn after the classes' own, so distinct patterns stay as they were.
            let common: Vec<f32> = (0..channels * GRID * GRID)
                .map(|_| rng.random::<f32>())
                .collect();
            let keep = 1.0 - self.overlap;
            patterns
                .into_iter()
                .map(|own| {
                    own.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let (c, y, x) = (i / (height * width), (i / width) % height, i % width);
                            let shared =
                                common[(c * GRID + y * GRID / height) * GRID + x * GRID / width];
                            keep * v + self.overlap * shared
                        })
                        .collect()
                })
                .collect()
        } else {
            patterns
        };
        rng.set_stream(stream + 1);
        let noise = Normal::new(0.0f32, self.noise_sd.max(0.0)).expect("valid noise");
        let mut pixels = Vec::with_capacity(count * self.shape.features());
        let mut labels = Vec::with_capacity(count);
        for i in 0..count {
            let label = i % self.classes;
            let pattern = &patterns[label];
            let dy = rng.random_range(-SHIFT..=SHIFT);
            let dx = rng.random_range(-SHIFT..=SHIFT);
            let contrast = rng.random_range(0.7f32..1.3);
            for c in 0..channels {
                for y in 0..height {
                    for x in 0..width {
                        let sy = (y as i64 + dy).clamp(0, height as i64 - 1) as usize;
                        let sx = (x as i64 + dx).clamp(0, width as i64 - 1) as usize;
                        let v = pattern[(c * height + sy) * width + sx] * contrast
                            + noise.sample(&mut rng);
                        pixels.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
                    }
                }
            }
            labels.push(label as u8);
        }
        Dataset::new(Features::Bytes(pixels), labels, self.shape, self.classes)
            .expect("generator builds consistent datasets")
    }
}
