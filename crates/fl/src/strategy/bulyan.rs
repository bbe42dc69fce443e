//! Bulyan (El Mhamdi et al., 2018), as Flower's `Bulyan` strategy: Krum
//! picks `n - 2f` models one by one (each pick leaves the pool), then each
//! coordinate is the mean of the `n - 4f` selected values closest to their
//! median. Robust to `f` Byzantine clients when `n >= 4f + 3`.

use super::{AggregateError, FitResult, Krum, Strategy, aggregate, split};
use crate::tensor::Tensor;

/// Bulyan tolerating `num_malicious` clients.
#[derive(Debug, Clone, Copy)]
pub struct Bulyan {
    num_malicious: usize,
}

impl Bulyan {
    /// Bulyan tolerating `num_malicious` clients.
    pub fn new(num_malicious: usize) -> Self {
        Self { num_malicious }
    }

    /// The indices Krum picks, best first, until `keep` are picked.
    fn select(&self, models: &[&[Tensor]], keep: usize) -> Vec<usize> {
        let krum = Krum::new(self.num_malicious, 1);
        let mut pool: Vec<usize> = (0..models.len()).collect();
        let mut picked = Vec::with_capacity(keep);
        while picked.len() < keep && !pool.is_empty() {
            let candidates: Vec<&[Tensor]> = pool.iter().map(|i| models[*i]).collect();
            let scores = krum.scores(&candidates);
            let best = (0..pool.len())
                .min_by(|a, b| scores[*a].total_cmp(&scores[*b]))
                .unwrap_or(0);
            picked.push(pool.remove(best));
        }
        picked
    }
}

/// Each coordinate: the mean of the `beta` values closest to their median.
fn closest_to_median(models: &[&[Tensor]], beta: usize) -> Vec<Tensor> {
    aggregate::coordinate_wise(models, |values| {
        values.sort_unstable_by(f32::total_cmp);
        let n = values.len();
        let m = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        values.sort_unstable_by(|a, b| (a - m).abs().total_cmp(&(b - m).abs()));
        let kept = &values[..beta.clamp(1, n)];
        kept.iter().sum::<f32>() / kept.len() as f32
    })
}

impl Strategy for Bulyan {
    fn name(&self) -> &'static str {
        "bulyan"
    }

    fn mean_based(&self) -> bool {
        false
    }

    fn aggregate_fit(
        &mut self,
        _current: &[Tensor],
        results: &[FitResult],
    ) -> Result<Vec<Tensor>, AggregateError> {
        let f = self.num_malicious;
        let needed = 4 * f + 3;
        if results.len() < needed {
            return Err(AggregateError::TooFewResults {
                strategy: "bulyan",
                needed,
                got: results.len(),
            });
        }
        let (models, _) = split(results);
        let theta = models.len() - 2 * f;
        let selected: Vec<&[Tensor]> = self
            .select(&models, theta)
            .into_iter()
            .map(|i| models[i])
            .collect();
        Ok(closest_to_median(&selected, theta - 2 * f))
    }
}
