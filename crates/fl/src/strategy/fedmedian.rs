//! FedMedian (Yin et al., 2018): the coordinate-wise median of client models.

use super::{AggregateError, FitResult, Strategy, aggregate, split};
use crate::tensor::Tensor;

/// Coordinate-wise median aggregation.
#[derive(Debug, Clone, Copy, Default)]
pub struct FedMedian;

impl Strategy for FedMedian {
    fn name(&self) -> &'static str {
        "fedmedian"
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
        Ok(aggregate::median(&models))
    }
}
