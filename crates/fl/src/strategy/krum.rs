//! Krum and Multi-Krum (Blanchard et al., 2017): keep the models closest to
//! their neighbours, robust to `f` Byzantine clients.

use super::{AggregateError, FitResult, Strategy, aggregate, split};
use crate::tensor::Tensor;

/// Krum (`num_to_keep = 1`) or Multi-Krum (example-weighted mean of the
/// `num_to_keep` best-scored models).
#[derive(Debug, Clone, Copy)]
pub struct Krum {
    num_malicious: usize,
    num_to_keep: usize,
}

impl Krum {
    /// Krum tolerating `num_malicious` clients, averaging the best `num_to_keep`.
    pub fn new(num_malicious: usize, num_to_keep: usize) -> Self {
        Self {
            num_malicious,
            num_to_keep: num_to_keep.max(1),
        }
    }

    /// Krum scores: for each model, the sum of squared distances to its
    /// `n - f - 2` nearest other models.
    pub fn scores(&self, models: &[&[Tensor]]) -> Vec<f64> {
        let n = models.len();
        let mut distances = vec![0.0f64; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let d = aggregate::squared_distance(models[i], models[j]);
                distances[i * n + j] = d;
                distances[j * n + i] = d;
            }
        }
        let neighbours = n.saturating_sub(self.num_malicious + 2).max(1);
        (0..n)
            .map(|i| {
                let mut row: Vec<f64> = (0..n)
                    .filter(|j| *j != i)
                    .map(|j| distances[i * n + j])
                    .collect();
                row.sort_unstable_by(f64::total_cmp);
                row.iter().take(neighbours).sum()
            })
            .collect()
    }
}

impl Strategy for Krum {
    fn name(&self) -> &'static str {
        "krum"
    }

    fn mean_based(&self) -> bool {
        false
    }

    fn aggregate_fit(
        &mut self,
        _current: &[Tensor],
        results: &[FitResult],
    ) -> Result<Vec<Tensor>, AggregateError> {
        if results.is_empty() {
            return Err(AggregateError::NoResults);
        }
        let (models, examples) = split(results);
        let scores = self.scores(&models);
        let mut order: Vec<usize> = (0..models.len()).collect();
        order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
        order.truncate(self.num_to_keep.min(models.len()));
        let kept: Vec<&[Tensor]> = order.iter().map(|i| models[*i]).collect();
        let kept_examples: Vec<u64> = order.iter().map(|i| examples[*i]).collect();
        Ok(aggregate::weighted_mean(&kept, &kept_examples))
    }
}
