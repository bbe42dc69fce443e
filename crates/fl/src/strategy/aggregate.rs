//! Shared aggregation kernels: weighted sums, coordinate-wise median and
//! trimmed mean, and squared distances. Each works in place over flat
//! slices, with no per-element allocation, in parallel over element chunks.

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

/// Applies `reduce` to each coordinate's values across models (in a scratch
/// buffer reused per chunk), e.g. the median or a trimmed mean.
fn coordinate_wise(models: &[&[Tensor]], reduce: impl Fn(&mut [f32]) -> f32 + Sync) -> Vec<Tensor> {
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
        values.sort_unstable_by(f32::total_cmp);
        let n = values.len();
        if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        }
    })
}

/// Coordinate-wise mean after dropping `trim` values at each end.
/// The caller ensures `2 * trim < models.len()`.
pub fn trimmed_mean(models: &[&[Tensor]], trim: usize) -> Vec<Tensor> {
    coordinate_wise(models, |values| {
        values.sort_unstable_by(f32::total_cmp);
        let kept = &values[trim..values.len() - trim];
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
