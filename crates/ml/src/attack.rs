//! Clients that attack the federation, so that a researcher can measure a
//! strategy's robustness: `sign-flip` sends the global model minus four
//! times its honest update, `gaussian` sends the global model plus noise
//! of standard deviation 1 per parameter, `label-flip` trains honestly on
//! labels mapped `y -> classes - 1 - y`.

use crate::partition::ClientData;
use fl::{Config, EvaluateOutcome, FitOutcome, Tensor, Trainer, TrainerError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How many times its honest update a sign-flipping client sends, negated.
pub const SIGN_FLIP_SCALE: f32 = 4.0;
/// Standard deviation of a Gaussian attacker's noise.
pub const GAUSSIAN_STD: f32 = 1.0;

/// An attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// The global model minus [`SIGN_FLIP_SCALE`] times the honest update.
    SignFlip,
    /// The global model plus Gaussian noise.
    Gaussian,
    /// Honest training on flipped labels.
    LabelFlip,
}

impl Attack {
    /// Every attack, as written.
    pub const NAMES: [&str; 3] = ["sign-flip", "gaussian", "label-flip"];

    /// The attack called `name`.
    pub fn from_name(name: &str) -> Option<Attack> {
        match name {
            "sign-flip" => Some(Attack::SignFlip),
            "gaussian" => Some(Attack::Gaussian),
            "label-flip" => Some(Attack::LabelFlip),
            _ => None,
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Attack::SignFlip => "sign-flip",
            Attack::Gaussian => "gaussian",
            Attack::LabelFlip => "label-flip",
        })
    }
}

/// Maps every training label `y` to `classes - 1 - y` (label-flip).
pub fn flip_labels(data: &mut ClientData) {
    data.train.flip_labels();
}

/// A trainer whose fits attack: it trains as `inner` does, then replaces
/// what it sends back as its attack says (label-flip changes the data
/// instead, before the trainer is built).
pub struct Attacking<T> {
    inner: T,
    attack: Attack,
    rng: ChaCha8Rng,
}

impl<T> Attacking<T> {
    /// `inner` attacking with `attack`; `seed` fixes the noise.
    pub fn new(inner: T, attack: Attack, seed: u64) -> Self {
        Self {
            inner,
            attack,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x4154_5441_434b),
        }
    }
}

impl<T: Trainer> Trainer for Attacking<T> {
    fn get_parameters(&mut self, config: &Config) -> Result<Vec<Tensor>, TrainerError> {
        self.inner.get_parameters(config)
    }

    fn fit(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<FitOutcome, TrainerError> {
        let global = parameters.clone();
        let mut out = self.inner.fit(parameters, config)?;
        match self.attack {
            Attack::SignFlip => {
                for (t, g) in out.parameters.iter_mut().zip(&global) {
                    for (w, w0) in t.data.iter_mut().zip(&g.data) {
                        *w = w0 - SIGN_FLIP_SCALE * (*w - w0);
                    }
                }
            }
            Attack::Gaussian => {
                let noise = Normal::new(0.0f32, GAUSSIAN_STD).map_err(TrainerError::msg)?;
                for (t, g) in out.parameters.iter_mut().zip(&global) {
                    for (w, w0) in t.data.iter_mut().zip(&g.data) {
                        *w = w0 + noise.sample(&mut self.rng);
                    }
                }
            }
            Attack::LabelFlip => {}
        }
        Ok(out)
    }

    fn evaluate(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<EvaluateOutcome, TrainerError> {
        self.inner.evaluate(parameters, config)
    }
}
