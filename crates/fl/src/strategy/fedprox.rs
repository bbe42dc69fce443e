//! FedProx (Li et al., 2020): FedAvg aggregation; clients add a proximal
//! term `mu/2 * ||w - w_global||^2`, with `mu` sent as `proximal_mu`.

use super::Strategy;
use crate::config::{Config, Scalar};

/// FedAvg plus the `proximal_mu` fit config key.
#[derive(Debug, Clone, Copy)]
pub struct FedProx {
    mu: f64,
}

impl FedProx {
    /// FedProx with proximal weight `mu`.
    pub fn new(mu: f64) -> Self {
        Self { mu }
    }
}

impl Strategy for FedProx {
    fn name(&self) -> &'static str {
        "fedprox"
    }

    fn fit_config(&self) -> Config {
        Config::from([("proximal_mu".to_owned(), Scalar::Double(self.mu))])
    }
}
