//! Shared aggregation kernels: weighted sums, coordinate-wise median and
//! trimmed mean, and squared distances. Each works in place over flat
//! slices, with no per-element allocation, in parallel over element chunks.

use crate::npy::NpyView;
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Elements per parallel work item: large enough to amortise scheduling,
/// small enough to spread a 200k-parameter model over both cores.
const CHUNK: usize = 16 * 1024;

/// `sum_k weights[k] * models[k]`, tensor by tensor. `weights` need not sum
/// to one. Every model must have the shapes of `models[0]` (checked by the
/// caller); an empty `models` gives an empty result.
pub fn weighted_sum(models: &[&[Tensor]], weights: &[f32]) -> Vec<Tensor> {
    let Some(first) = models.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(t, reference)| {
            let mut out = vec![0.0f32; reference.len()];
            out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dst)| {
                let start = c * CHUNK;
                for (model, w) in models.iter().zip(weights) {
                    let src = &model[t].data[start..start + dst.len()];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += w * s;
                    }
                }
            });
            Tensor {
                shape: reference.shape.clone(),
                data: out,
            }
        })
        .collect()
}

/// Example-weighted mean (FedAvg): weights are `num_examples / total`.
pub fn weighted_mean(models: &[&[Tensor]], num_examples: &[u64]) -> Vec<Tensor> {
    let total: f64 = num_examples.iter().map(|n| *n as f64).sum();
    let weights: Vec<f32> = if total > 0.0 {
        num_examples
            .iter()
            .map(|n| (*n as f64 / total) as f32)
            .collect()
    } else {
        vec![1.0 / models.len().max(1) as f32; models.len()]
    };
    weighted_sum(models, &weights)
}

/// A tensor that can add its elements, scaled, to running f64 sums.
pub trait AddScaled {
    /// Adds `weight` times each element (C order) to `sums`, which holds
    /// one value per element.
    fn add_scaled_to(&self, sums: &mut [f64], weight: f64);
}

impl AddScaled for Tensor {
    fn add_scaled_to(&self, sums: &mut [f64], weight: f64) {
        for (s, x) in sums.iter_mut().zip(&self.data) {
            *s += weight * f64::from(*x);
        }
    }
}

impl<B: AsRef<[u8]>> AddScaled for NpyView<B> {
    fn add_scaled_to(&self, sums: &mut [f64], weight: f64) {
        NpyView::add_scaled_to(self, sums, weight);
    }
}

/// The example-weighted mean of models that arrive one at a time: each is
/// added to running sums (f64) and can be dropped at once, so a round holds
/// one model's worth of sums instead of every client's model. The result
/// equals [`weighted_mean`] up to rounding; with no examples at all it is
/// the plain mean, as there (a plain sum is kept only while every model so
/// far reported zero examples).
#[derive(Debug, Clone)]
pub struct MeanAccumulator {
    shapes: Vec<Vec<usize>>,
    weighted: Vec<Vec<f64>>,
    plain: Option<Vec<Vec<f64>>>,
    examples: u64,
    models: usize,
}

impl MeanAccumulator {
    /// Sums for models of these tensor shapes.
    pub fn new(shapes: &[Vec<usize>]) -> Self {
        let zeros: Vec<Vec<f64>> = shapes
            .iter()
            .map(|s| vec![0.0; s.iter().product()])
            .collect();
        Self {
            shapes: shapes.to_vec(),
            plain: Some(zeros.clone()),
            weighted: zeros,
            examples: 0,
            models: 0,
        }
    }

    /// Adds a model trained on `num_examples` examples, as decoded tensors
    /// or still-encoded ones; its shapes must be the accumulator's (checked
    /// by the caller).
    pub fn add<T: AddScaled>(&mut self, model: &[T], num_examples: u64) {
        self.examples += num_examples;
        self.models += 1;
        if self.examples > 0 {
            self.plain = None;
        }
        if let Some(plain) = &mut self.plain {
            for (sum, t) in plain.iter_mut().zip(model) {
                t.add_scaled_to(sum, 1.0);
            }
        }
        if num_examples == 0 {
            return;
        }
        let w = num_examples as f64;
        for (sum, t) in self.weighted.iter_mut().zip(model) {
            t.add_scaled_to(sum, w);
        }
    }

    /// Models added so far.
    pub fn len(&self) -> usize {
        self.models
    }

    /// Whether no model was added.
    pub fn is_empty(&self) -> bool {
        self.models == 0
    }

    /// The mean of the models added.
    pub fn mean(self) -> Vec<Tensor> {
        let (sums, divisor) = match self.plain {
            Some(plain) => (plain, self.models.max(1) as f64),
            None => (self.weighted, self.examples as f64),
        };
        sums.into_iter()
            .zip(self.shapes)
            .map(|(sum, shape)| Tensor {
                shape,
                data: sum.into_iter().map(|v| (v / divisor) as f32).collect(),
            })
            .collect()
    }
}

/// Applies `reduce` to each coordinate's values across models (in a scratch
/// buffer reused per chunk), e.g. the median or a trimmed mean.
pub(crate) fn coordinate_wise(
    models: &[&[Tensor]],
    reduce: impl Fn(&mut [f32]) -> f32 + Sync,
) -> Vec<Tensor> {
    let Some(first) = models.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(t, reference)| {
            let mut out = vec![0.0f32; reference.len()];
            out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dst)| {
                let start = c * CHUNK;
                let mut column = vec![0.0f32; models.len()];
                for (i, d) in dst.iter_mut().enumerate() {
                    for (slot, model) in column.iter_mut().zip(models) {
                        *slot = model[t].data[start + i];
                    }
                    *d = reduce(&mut column);
                }
            });
            Tensor {
                shape: reference.shape.clone(),
                data: out,
            }
        })
        .collect()
}

/// Coordinate-wise median (mean of the two middle values for an even count).
pub fn median(models: &[&[Tensor]]) -> Vec<Tensor> {
    coordinate_wise(models, |values| {
        let n = values.len();
        let (lower, middle, _) = values.select_nth_unstable_by(n / 2, f32::total_cmp);
        let middle = *middle;
        if n % 2 == 1 {
            middle
        } else {
            let below = lower
                .iter()
                .copied()
                .max_by(f32::total_cmp)
                .unwrap_or(middle);
            (below + middle) / 2.0
        }
    })
}

/// Coordinate-wise mean after dropping `trim` values at each end.
/// The caller ensures `2 * trim < models.len()`.
pub fn trimmed_mean(models: &[&[Tensor]], trim: usize) -> Vec<Tensor> {
    coordinate_wise(models, |values| {
        // The `trim` smallest to the front, then the `trim` largest to the back.
        values.select_nth_unstable_by(trim, f32::total_cmp);
        let rest = &mut values[trim..];
        let last_kept = rest.len() - trim - 1;
        rest.select_nth_unstable_by(last_kept, f32::total_cmp);
        let kept = &rest[..=last_kept];
        kept.iter().sum::<f32>() / kept.len() as f32
    })
}

/// Squared Euclidean distance between two models with equal shapes.
pub fn squared_distance(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            x.data
                .par_chunks(CHUNK)
                .zip(y.data.par_chunks(CHUNK))
                .map(|(xs, ys)| {
                    xs.iter()
                        .zip(ys)
                        .map(|(p, q)| f64::from(p - q).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>()
        })
        .sum()
}

/// `a - b`, tensor by tensor.
pub fn difference(a: &[Tensor], b: &[Tensor]) -> Vec<Tensor> {
    a.iter()
        .zip(b)
        .map(|(x, y)| Tensor {
            shape: x.shape.clone(),
            data: x.data.iter().zip(&y.data).map(|(p, q)| p - q).collect(),
        })
        .collect()
}
