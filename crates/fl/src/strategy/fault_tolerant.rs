//! FaultTolerantFedAvg, as Flower's: FedAvg that keeps a round's update
//! only when at least `min_completion_rate_fit` of the sampled clients
//! completed their fit; below it the global model stays as it was.

use super::Strategy;

/// FedAvg with a minimum completion rate.
#[derive(Debug, Clone, Copy)]
pub struct FaultTolerantFedAvg {
    min_completion_rate_fit: f64,
}

impl FaultTolerantFedAvg {
    /// Keeps rounds where at least `rate` (in [0, 1]) of the fits completed.
    pub fn new(rate: f64) -> Self {
        Self {
            min_completion_rate_fit: rate.clamp(0.0, 1.0),
        }
    }
}

impl Strategy for FaultTolerantFedAvg {
    fn name(&self) -> &'static str {
        "faulttolerantfedavg"
    }

    fn keeps_round(&self, completed: usize, failed: usize) -> Result<(), String> {
        let sampled = completed + failed;
        let rate = completed as f64 / sampled.max(1) as f64;
        if rate < self.min_completion_rate_fit {
            return Err(format!(
                "{completed} of {sampled} fits completed, below min_completion_rate_fit {}: the model stays as it was",
                self.min_completion_rate_fit
            ));
        }
        Ok(())
    }
}
