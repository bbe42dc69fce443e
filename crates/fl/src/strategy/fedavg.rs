//! FedAvg (McMahan et al., 2017): the example-weighted mean of client models.

use super::{AggregateError, FitResult, Strategy, aggregate, split};
use crate::tensor::Tensor;

/// Example-weighted averaging of client models.
#[derive(Debug, Clone, Copy, Default)]
pub struct FedAvg;

impl Strategy for FedAvg {
    fn name(&self) -> &'static str {
        "fedavg"
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
        Ok(aggregate::weighted_mean(&models, &examples))
    }

    fn mean_based(&self) -> bool {
        true
    }
}
