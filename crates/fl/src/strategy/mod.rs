//! Aggregation strategies behind one [`Strategy`] trait, one module each,
//! sharing the arithmetic in [`aggregate`].

pub mod aggregate;
mod bulyan;
mod fault_tolerant;
mod fedavg;
mod fedavgm;
mod fedmedian;
mod fedopt;
mod fedprox;
mod krum;
mod trimmed;

pub use bulyan::Bulyan;
pub use fault_tolerant::FaultTolerantFedAvg;
pub use fedavg::FedAvg;
pub use fedavgm::FedAvgM;
pub use fedmedian::FedMedian;
pub use fedopt::{FedOpt, FedOptKind};
pub use fedprox::FedProx;
pub use krum::Krum;
pub use trimmed::FedTrimmedAvg;

use crate::config::Config;
use crate::names::StrategyKind;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// One client's successful `FitRes`, decoded.
#[derive(Debug, Clone)]
pub struct FitResult {
    /// Server-assigned client id.
    pub client: String,
    /// Updated parameters.
    pub parameters: Vec<Tensor>,
    /// Training examples the client used.
    pub num_examples: u64,
    /// Client metrics.
    pub metrics: Config,
}

/// Why a strategy could not aggregate a round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// No results to aggregate.
    #[error("no fit results to aggregate")]
    NoResults,
    /// The strategy needs more results than arrived.
    #[error("{strategy} needs at least {needed} results, got {got}")]
    TooFewResults {
        /// Strategy name.
        strategy: &'static str,
        /// Results it needs.
        needed: usize,
        /// Results that arrived.
        got: usize,
    },
}

/// A federated aggregation strategy: what to send with each round and how to
/// combine the clients' updates into the next global model.
pub trait Strategy: Send {
    /// The strategy's name as users write it (e.g. `fedavg`).
    fn name(&self) -> &'static str;
    /// Extra configuration sent with every `FitIns` (e.g. FedProx's `proximal_mu`).
    fn fit_config(&self) -> Config {
        Config::new()
    }
    /// Combines `results` (shapes already checked against `current`) into the
    /// next global parameters. By default: their example-weighted mean,
    /// handed to [`Strategy::aggregate_mean`] (FedAvg and the strategies
    /// built on it); the others override this and [`Strategy::mean_based`].
    fn aggregate_fit(
        &mut self,
        current: &[Tensor],
        results: &[FitResult],
    ) -> Result<Vec<Tensor>, AggregateError> {
        if results.is_empty() {
            return Err(AggregateError::NoResults);
        }
        let (models, examples) = split(results);
        self.aggregate_mean(current, aggregate::weighted_mean(&models, &examples))
    }
    /// Whether the next parameters depend on the results only through their
    /// example-weighted mean. Then the server folds each `FitRes` into a
    /// running sum as it arrives ([`aggregate::MeanAccumulator`]) and calls
    /// [`Strategy::aggregate_mean`], holding one model instead of one per client.
    fn mean_based(&self) -> bool {
        true
    }
    /// Whether a round's update is kept, from how many of its sampled
    /// clients completed and failed their fit; `Err(why)` keeps the global
    /// model as it was (FaultTolerantFedAvg below its completion rate).
    fn keeps_round(&self, completed: usize, failed: usize) -> Result<(), String> {
        let _ = (completed, failed);
        Ok(())
    }
    /// The next global parameters from `mean`, the example-weighted mean of
    /// the round's results (FedAvg: `mean` itself).
    fn aggregate_mean(
        &mut self,
        current: &[Tensor],
        mean: Vec<Tensor>,
    ) -> Result<Vec<Tensor>, AggregateError> {
        let _ = current;
        Ok(mean)
    }
}

/// A strategy and its parameters as users choose them (CLI, intents, JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum StrategyConfig {
    /// Example-weighted averaging.
    #[serde(alias = "FedAvg")]
    Fedavg,
    /// FedAvg with server momentum.
    Fedavgm {
        /// Server learning rate.
        #[serde(default = "one")]
        server_lr: f32,
        /// Server momentum.
        #[serde(default = "default_momentum")]
        momentum: f32,
    },
    /// FedAvg aggregation with a proximal term on the clients.
    Fedprox {
        /// Proximal term weight sent to clients.
        #[serde(default = "default_mu")]
        proximal_mu: f64,
    },
    /// Adaptive server optimiser: Adam.
    Fedadam(FedOptParams),
    /// Adaptive server optimiser: Yogi.
    Fedyogi(FedOptParams),
    /// Adaptive server optimiser: Adagrad.
    Fedadagrad(FedOptParams),
    /// Coordinate-wise median.
    Fedmedian,
    /// Coordinate-wise trimmed mean.
    Fedtrimmedavg {
        /// Fraction cut from each end.
        #[serde(default = "default_beta")]
        beta: f32,
    },
    /// Krum (keep 1) or Multi-Krum (keep m > 1).
    Krum {
        /// Number of malicious clients tolerated.
        #[serde(default)]
        num_malicious: usize,
        /// Models averaged after selection (1 = Krum).
        #[serde(default = "one_usize")]
        num_to_keep: usize,
    },
    /// Bulyan: Krum selection, then a trimmed mean around the median.
    Bulyan {
        /// Number of malicious clients tolerated (needs `4f + 3` results).
        #[serde(default)]
        num_malicious: usize,
    },
    /// FedAvg that keeps a round only when enough fits completed.
    Faulttolerantfedavg {
        /// Least share of the sampled clients that must complete a fit.
        #[serde(default = "default_completion")]
        min_completion_rate_fit: f64,
    },
}

/// Parameters of the adaptive server optimisers (Reddi et al., 2021).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FedOptParams {
    /// Server learning rate.
    #[serde(default = "default_eta")]
    pub eta: f32,
    /// First-moment decay.
    #[serde(default = "default_beta1")]
    pub beta_1: f32,
    /// Second-moment decay.
    #[serde(default = "default_beta2")]
    pub beta_2: f32,
    /// Adaptivity (added to the root of the second moment).
    #[serde(default = "default_tau")]
    pub tau: f32,
}

impl Default for FedOptParams {
    fn default() -> Self {
        Self {
            eta: default_eta(),
            beta_1: default_beta1(),
            beta_2: default_beta2(),
            tau: default_tau(),
        }
    }
}

fn one() -> f32 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn default_momentum() -> f32 {
    0.9
}
fn default_mu() -> f64 {
    0.01
}
fn default_completion() -> f64 {
    0.5
}
fn default_beta() -> f32 {
    0.2
}
fn default_eta() -> f32 {
    0.1
}
fn default_beta1() -> f32 {
    0.9
}
fn default_beta2() -> f32 {
    0.99
}
fn default_tau() -> f32 {
    1e-9
}

/// The API names accepted by [`StrategyConfig::from_name`] (intent names
/// and aliases are taken too: [`StrategyKind::from_name`]).
pub const STRATEGY_NAMES: [&str; 11] = StrategyKind::API_NAMES;

impl StrategyConfig {
    /// The strategy called `name` (case-insensitive) with default parameters.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(Self::of(StrategyKind::from_name(name)?))
    }

    /// The strategy `kind` with default parameters.
    pub fn of(kind: StrategyKind) -> Self {
        match kind {
            StrategyKind::FedAvg => Self::Fedavg,
            StrategyKind::FedAvgM => Self::Fedavgm {
                server_lr: one(),
                momentum: default_momentum(),
            },
            StrategyKind::FedProx => Self::Fedprox {
                proximal_mu: default_mu(),
            },
            StrategyKind::FedAdam => Self::Fedadam(FedOptParams::default()),
            StrategyKind::FedYogi => Self::Fedyogi(FedOptParams {
                eta: 0.01,
                tau: 1e-3,
                ..FedOptParams::default()
            }),
            StrategyKind::FedAdagrad => Self::Fedadagrad(FedOptParams::default()),
            StrategyKind::FedMedian => Self::Fedmedian,
            StrategyKind::FedTrimmedAvg => Self::Fedtrimmedavg {
                beta: default_beta(),
            },
            StrategyKind::Krum => Self::Krum {
                num_malicious: 0,
                num_to_keep: 1,
            },
            StrategyKind::Bulyan => Self::Bulyan { num_malicious: 0 },
            StrategyKind::FaultTolerantFedAvg => Self::Faulttolerantfedavg {
                min_completion_rate_fit: default_completion(),
            },
        }
    }

    /// Builds the strategy.
    pub fn build(&self) -> Box<dyn Strategy> {
        match self {
            Self::Fedavg => Box::new(FedAvg),
            Self::Fedavgm {
                server_lr,
                momentum,
            } => Box::new(FedAvgM::new(*server_lr, *momentum)),
            Self::Fedprox { proximal_mu } => Box::new(FedProx::new(*proximal_mu)),
            Self::Fedadam(p) => Box::new(FedOpt::new(FedOptKind::Adam, p.clone())),
            Self::Fedyogi(p) => Box::new(FedOpt::new(FedOptKind::Yogi, p.clone())),
            Self::Fedadagrad(p) => Box::new(FedOpt::new(FedOptKind::Adagrad, p.clone())),
            Self::Fedmedian => Box::new(FedMedian),
            Self::Fedtrimmedavg { beta } => Box::new(FedTrimmedAvg::new(*beta)),
            Self::Krum {
                num_malicious,
                num_to_keep,
            } => Box::new(Krum::new(*num_malicious, *num_to_keep)),
            Self::Bulyan { num_malicious } => Box::new(Bulyan::new(*num_malicious)),
            Self::Faulttolerantfedavg {
                min_completion_rate_fit,
            } => Box::new(FaultTolerantFedAvg::new(*min_completion_rate_fit)),
        }
    }
}

/// The parameter lists and example counts of `results`, as the kernels take them.
fn split(results: &[FitResult]) -> (Vec<&[Tensor]>, Vec<u64>) {
    results
        .iter()
        .map(|r| (r.parameters.as_slice(), r.num_examples))
        .unzip()
}
