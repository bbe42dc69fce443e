//! FL aggregation strategies: the names an intent may give (`avgalgo`), their
//! optional parameters, and the resolved strategy with every parameter set.

use serde::Serialize;

pub use fl::names::StrategyKind;

/// Strategy parameters an intent may set; each applies to some strategies only.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StrategyParams {
    /// FedProx: weight of the proximal term, in [0, 10].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proximal_mu: Option<f64>,
    /// FedAvgM, FedAdam: server learning rate, in (0, 10].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_lr: Option<f64>,
    /// FedAvgM: server momentum, in [0, 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_momentum: Option<f64>,
    /// FedTrimmedAvg: fraction cut from each end, in [0, 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trim_fraction: Option<f64>,
    /// Krum, Bulyan: number of Byzantine clients tolerated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byzantine_clients: Option<u32>,
    /// FaultTolerantFedAvg: least share of the sampled clients whose fit
    /// must complete for the round's update to count, in [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_completion_rate: Option<f64>,
}

impl StrategyParams {
    /// The field names, as written in intents.
    pub(crate) const FIELDS: [&str; 6] = [
        "proximal_mu",
        "server_lr",
        "server_momentum",
        "trim_fraction",
        "byzantine_clients",
        "min_completion_rate",
    ];

    /// The names of the parameters that are set, in [`Self::FIELDS`] order.
    fn set(&self) -> Vec<&'static str> {
        let flags = [
            self.proximal_mu.is_some(),
            self.server_lr.is_some(),
            self.server_momentum.is_some(),
            self.trim_fraction.is_some(),
            self.byzantine_clients.is_some(),
            self.min_completion_rate.is_some(),
        ];
        Self::FIELDS
            .into_iter()
            .zip(flags)
            .filter_map(|(name, set)| set.then_some(name))
            .collect()
    }
}

/// A strategy with every parameter decided (defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name")]
pub enum Strategy {
    /// Federated averaging.
    FedAvg,
    /// FedAvg with a proximal term.
    FedProx {
        /// Weight of the proximal term (default 0.01).
        proximal_mu: f64,
    },
    /// FedAvg with server momentum.
    FedAvgM {
        /// Server learning rate (default 1.0).
        server_lr: f64,
        /// Server momentum (default 0.9).
        server_momentum: f64,
    },
    /// Adam on the server.
    FedAdam {
        /// Server learning rate (default 0.1).
        server_lr: f64,
    },
    /// Yogi on the server.
    FedYogi {
        /// Server learning rate (default 0.01, as Flower's).
        server_lr: f64,
    },
    /// Adagrad on the server.
    FedAdagrad {
        /// Server learning rate (default 0.1).
        server_lr: f64,
    },
    /// Coordinate-wise median.
    FedMedian,
    /// Coordinate-wise trimmed mean.
    FedTrimmedAvg {
        /// Fraction cut from each end (default 0.2).
        trim_fraction: f64,
    },
    /// Krum.
    Krum {
        /// Byzantine clients tolerated (default 0).
        byzantine_clients: u32,
    },
    /// Bulyan.
    Bulyan {
        /// Byzantine clients tolerated (default 0; needs 4f + 3 results).
        byzantine_clients: u32,
    },
    /// FedAvg keeping only rounds where enough fits completed.
    FaultTolerantFedAvg {
        /// Least share of fits that must complete (default 0.5, as Flower's).
        min_completion_rate: f64,
    },
}

impl Strategy {
    /// Builds `kind` with `params`, filling in defaults.
    ///
    /// Fails with the name of the first parameter that `kind` does not use.
    pub fn build(kind: StrategyKind, params: &StrategyParams) -> Result<Strategy, &'static str> {
        let used: &[&str] = match kind {
            StrategyKind::FedAvg | StrategyKind::FedMedian => &[],
            StrategyKind::FedProx => &["proximal_mu"],
            StrategyKind::FedAvgM => &["server_lr", "server_momentum"],
            StrategyKind::FedAdam | StrategyKind::FedYogi | StrategyKind::FedAdagrad => {
                &["server_lr"]
            }
            StrategyKind::FedTrimmedAvg => &["trim_fraction"],
            StrategyKind::Krum | StrategyKind::Bulyan => &["byzantine_clients"],
            StrategyKind::FaultTolerantFedAvg => &["min_completion_rate"],
        };
        if let Some(unused) = params.set().into_iter().find(|p| !used.contains(p)) {
            return Err(unused);
        }
        Ok(match kind {
            StrategyKind::FedAvg => Strategy::FedAvg,
            StrategyKind::FedMedian => Strategy::FedMedian,
            StrategyKind::FedProx => Strategy::FedProx {
                proximal_mu: params.proximal_mu.unwrap_or(0.01),
            },
            StrategyKind::FedAvgM => Strategy::FedAvgM {
                server_lr: params.server_lr.unwrap_or(1.0),
                server_momentum: params.server_momentum.unwrap_or(0.9),
            },
            StrategyKind::FedAdam => Strategy::FedAdam {
                server_lr: params.server_lr.unwrap_or(0.1),
            },
            StrategyKind::FedYogi => Strategy::FedYogi {
                server_lr: params.server_lr.unwrap_or(0.01),
            },
            StrategyKind::FedAdagrad => Strategy::FedAdagrad {
                server_lr: params.server_lr.unwrap_or(0.1),
            },
            StrategyKind::FedTrimmedAvg => Strategy::FedTrimmedAvg {
                trim_fraction: params.trim_fraction.unwrap_or(0.2),
            },
            StrategyKind::Krum => Strategy::Krum {
                byzantine_clients: params.byzantine_clients.unwrap_or(0),
            },
            StrategyKind::Bulyan => Strategy::Bulyan {
                byzantine_clients: params.byzantine_clients.unwrap_or(0),
            },
            StrategyKind::FaultTolerantFedAvg => Strategy::FaultTolerantFedAvg {
                min_completion_rate: params.min_completion_rate.unwrap_or(0.5),
            },
        })
    }

    /// The strategy's name.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::FedAvg => StrategyKind::FedAvg,
            Strategy::FedProx { .. } => StrategyKind::FedProx,
            Strategy::FedAvgM { .. } => StrategyKind::FedAvgM,
            Strategy::FedAdam { .. } => StrategyKind::FedAdam,
            Strategy::FedYogi { .. } => StrategyKind::FedYogi,
            Strategy::FedAdagrad { .. } => StrategyKind::FedAdagrad,
            Strategy::FedMedian => StrategyKind::FedMedian,
            Strategy::FedTrimmedAvg { .. } => StrategyKind::FedTrimmedAvg,
            Strategy::Krum { .. } => StrategyKind::Krum,
            Strategy::Bulyan { .. } => StrategyKind::Bulyan,
            Strategy::FaultTolerantFedAvg { .. } => StrategyKind::FaultTolerantFedAvg,
        }
    }

    /// The parameters, as an intent would write them (all set explicitly).
    pub fn params(&self) -> StrategyParams {
        let mut p = StrategyParams::default();
        match *self {
            Strategy::FedAvg | Strategy::FedMedian => {}
            Strategy::FedProx { proximal_mu } => p.proximal_mu = Some(proximal_mu),
            Strategy::FedAvgM {
                server_lr,
                server_momentum,
            } => {
                p.server_lr = Some(server_lr);
                p.server_momentum = Some(server_momentum);
            }
            Strategy::FedAdam { server_lr }
            | Strategy::FedYogi { server_lr }
            | Strategy::FedAdagrad { server_lr } => p.server_lr = Some(server_lr),
            Strategy::FedTrimmedAvg { trim_fraction } => p.trim_fraction = Some(trim_fraction),
            Strategy::Krum { byzantine_clients } | Strategy::Bulyan { byzantine_clients } => {
                p.byzantine_clients = Some(byzantine_clients)
            }
            Strategy::FaultTolerantFedAvg {
                min_completion_rate,
            } => p.min_completion_rate = Some(min_completion_rate),
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ignore_case() {
        assert_eq!(
            StrategyKind::from_name("fedavg"),
            Some(StrategyKind::FedAvg)
        );
        assert_eq!(StrategyKind::from_name("KRUM"), Some(StrategyKind::Krum));
        assert_eq!(StrategyKind::from_name("fedsgd"), None);
    }

    #[test]
    fn parameters_round_trip_and_defaults_fill_in() {
        let params = StrategyParams {
            server_lr: Some(0.5),
            ..StrategyParams::default()
        };
        let s = Strategy::build(StrategyKind::FedAvgM, &params).unwrap();
        assert_eq!(
            s,
            Strategy::FedAvgM {
                server_lr: 0.5,
                server_momentum: 0.9
            }
        );
        assert_eq!(Strategy::build(s.kind(), &s.params()), Ok(s));
        assert_eq!(
            Strategy::build(StrategyKind::FedAvg, &params),
            Err("server_lr")
        );
    }
}
