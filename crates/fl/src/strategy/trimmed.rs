//! FedTrimmedAvg (Yin et al., 2018): the coordinate-wise mean after cutting
//! a fraction `beta` of the values from each end.

use super::{AggregateError, FitResult, Strategy, aggregate, split};
use crate::tensor::Tensor;

/// Coordinate-wise trimmed mean.
#[derive(Debug, Clone, Copy)]
pub struct FedTrimmedAvg {
    beta: f32,
}

impl FedTrimmedAvg {
    /// Trimmed mean cutting `floor(beta * n)` values at each end (`beta` in [0, 0.5)).
    pub fn new(beta: f32) -> Self {
        Self {
            beta: beta.clamp(0.0, 0.499),
        }
    }
}

impl Strategy for FedTrimmedAvg {
    fn name(&self) -> &'static str {
        "fedtrimmedavg"
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
        let (models, _) = split(results);
        let trim = (self.beta * models.len() as f32).floor() as usize;
        Ok(aggregate::trimmed_mean(&models, trim))
    }
}
