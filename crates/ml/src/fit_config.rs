//! The Flower-style configuration keys a fit reads, their defaults and
//! checks, and the optimiser they describe.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use fl::config::{get_f64, get_i64};
use fl::{Config, Scalar};

/// Config key of [`FitConfig::local_epochs`].
pub const LOCAL_EPOCHS: &str = "local_epochs";
/// Config key of [`FitConfig::batch_size`].
pub const BATCH_SIZE: &str = "batch_size";
/// Config key of [`FitConfig::learning_rate`].
pub const LEARNING_RATE: &str = "learning_rate";
/// Config key of [`FitConfig::optimizer`].
pub const OPTIMIZER: &str = "optimizer";
/// Config key of [`FitConfig::momentum`].
pub const MOMENTUM: &str = "momentum";
/// Config key of [`FitConfig::weight_decay`].
pub const WEIGHT_DECAY: &str = "weight_decay";
/// Config key of [`FitConfig::proximal_mu`].
pub const PROXIMAL_MU: &str = "proximal_mu";

/// Default for `local_epochs`.
pub const DEFAULT_LOCAL_EPOCHS: usize = 1;
/// Default for `batch_size`.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Default for `learning_rate`.
pub const DEFAULT_LEARNING_RATE: f64 = 0.05;

/// The optimiser a fit uses (`optimizer` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Stochastic gradient descent, PyTorch's `torch.optim.SGD` (`"sgd"`, the default).
    Sgd,
    /// Adam, PyTorch's `torch.optim.Adam` defaults (`"adam"`).
    Adam,
}

/// The settings of one local training call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    /// Passes over the local training set (`local_epochs`, default 1).
    pub local_epochs: usize,
    /// Examples per step (`batch_size`, default 32).
    pub batch_size: usize,
    /// Step size (`learning_rate`, default 0.05).
    pub learning_rate: f64,
    /// The optimiser (`optimizer`, default `"sgd"`).
    pub optimizer: OptimizerKind,
    /// SGD momentum in `[0, 1)` (`momentum`, default 0, no dampening as in PyTorch).
    pub momentum: f64,
    /// L2 penalty added to the gradient (`weight_decay`, default 0).
    pub weight_decay: f64,
    /// FedProx's `mu`: adds `mu/2 * ||w - w_global||^2` to the loss (`proximal_mu`, default 0).
    pub proximal_mu: f64,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            local_epochs: DEFAULT_LOCAL_EPOCHS,
            batch_size: DEFAULT_BATCH_SIZE,
            learning_rate: DEFAULT_LEARNING_RATE,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.0,
            weight_decay: 0.0,
            proximal_mu: 0.0,
        }
    }
}

/// A configuration value that cannot be used; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn positive_int(config: &Config, key: &str, default: usize) -> Result<usize, ConfigError> {
    let v = get_i64(config, key, default as i64).map_err(ConfigError)?;
    usize::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| {
        ConfigError(format!(
            "config key `{key}` must be a positive integer, got {v}"
        ))
    })
}

fn real(
    config: &Config,
    key: &str,
    default: f64,
    ok: impl Fn(f64) -> bool,
    rule: &str,
) -> Result<f64, ConfigError> {
    let v = get_f64(config, key, default).map_err(ConfigError)?;
    if v.is_finite() && ok(v) {
        Ok(v)
    } else {
        Err(ConfigError(format!(
            "config key `{key}` must be {rule}, got {v}"
        )))
    }
}

impl FitConfig {
    /// Reads the keys from a fit's configuration, with defaults for absent ones.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let d = FitConfig::default();
        let optimizer = match config.get(OPTIMIZER) {
            None => d.optimizer,
            Some(Scalar::String(s)) => match s.to_ascii_lowercase().as_str() {
                "sgd" => OptimizerKind::Sgd,
                "adam" => OptimizerKind::Adam,
                _ => {
                    return Err(ConfigError(format!(
                        "config key `optimizer` must be \"sgd\" or \"adam\", got {s:?}"
                    )));
                }
            },
            Some(other) => {
                return Err(ConfigError(format!(
                    "config key `optimizer` must be a string (\"sgd\" or \"adam\"), got {other:?}"
                )));
            }
        };
        Ok(FitConfig {
            local_epochs: positive_int(config, LOCAL_EPOCHS, d.local_epochs)?,
            batch_size: positive_int(config, BATCH_SIZE, d.batch_size)?,
            learning_rate: real(
                config,
                LEARNING_RATE,
                d.learning_rate,
                |v| v > 0.0,
                "a positive number",
            )?,
            optimizer,
            momentum: real(
                config,
                MOMENTUM,
                d.momentum,
                |v| (0.0..1.0).contains(&v),
                "in [0, 1)",
            )?,
            weight_decay: real(
                config,
                WEIGHT_DECAY,
                d.weight_decay,
                |v| v >= 0.0,
                "zero or positive",
            )?,
            proximal_mu: real(
                config,
                PROXIMAL_MU,
                d.proximal_mu,
                |v| v >= 0.0,
                "zero or positive",
            )?,
        })
    }

    /// The keys of the settings given (the others stay the clients'
    /// defaults): what a server sends when its user chose some of them.
    pub fn given(
        local_epochs: Option<i64>,
        batch_size: Option<i64>,
        learning_rate: Option<f64>,
    ) -> Config {
        let mut c = Config::new();
        if let Some(v) = local_epochs {
            c.insert(LOCAL_EPOCHS.into(), Scalar::Sint64(v));
        }
        if let Some(v) = batch_size {
            c.insert(BATCH_SIZE.into(), Scalar::Sint64(v));
        }
        if let Some(v) = learning_rate {
            c.insert(LEARNING_RATE.into(), Scalar::Double(v));
        }
        c
    }

    /// SGD without momentum or weight decay: `param -= lr * grad`.
    pub fn is_plain_sgd(&self) -> bool {
        self.optimizer == OptimizerKind::Sgd && self.momentum == 0.0 && self.weight_decay == 0.0
    }

    /// A fresh optimiser as configured (its state lives for one fit, as in a
    /// Flower client that builds its optimiser in `fit`).
    pub fn optimizer(&self) -> ModuleOptimizer {
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.optimizer {
            OptimizerKind::Sgd => SgdConfig::new()
                .with_weight_decay(decay)
                .with_momentum((self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(0.0)
                }))
                .init(),
            OptimizerKind::Adam => AdamConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(decay)
                .init(),
        }
    }
}
