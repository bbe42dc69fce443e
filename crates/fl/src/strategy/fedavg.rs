//! FedAvg (McMahan et al., 2017): the example-weighted mean of client
//! models, the [`Strategy`] trait's default aggregation.

use super::Strategy;

/// Example-weighted averaging of client models.
#[derive(Debug, Clone, Copy, Default)]
pub struct FedAvg;

impl Strategy for FedAvg {
    fn name(&self) -> &'static str {
        "fedavg"
    }
}
