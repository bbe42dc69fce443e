//! The `Trainer` trait: what an FL client calls to train and evaluate locally.
//! The `fl` crate knows no ML framework; the `ml` crate implements this trait.

use crate::config::Config;
use crate::tensor::Tensor;

/// Result of one local training call (`FitRes`).
#[derive(Debug, Clone, PartialEq)]
pub struct FitOutcome {
    /// Updated model parameters, in the same order and shapes as received.
    pub parameters: Vec<Tensor>,
    /// Number of training examples used (FedAvg weights by it).
    pub num_examples: u64,
    /// Metrics such as `train_loss`, `train_accuracy`.
    pub metrics: Config,
}

/// Result of one local evaluation call (`EvaluateRes`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateOutcome {
    /// Mean loss over the evaluated examples.
    pub loss: f32,
    /// Number of examples evaluated.
    pub num_examples: u64,
    /// Metrics such as `accuracy`.
    pub metrics: Config,
}

/// A failure of local training or evaluation; the client reports it to the
/// server in `Status.message` instead of dying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TrainerError(pub String);

impl TrainerError {
    /// Builds an error from anything printable.
    pub fn msg(m: impl std::fmt::Display) -> Self {
        Self(m.to_string())
    }
}

/// Local training and evaluation on a client's own data.
///
/// Calls are blocking (they do the CPU work); the client runs them off the
/// async runtime.
pub trait Trainer: Send {
    /// The current local model parameters.
    fn get_parameters(&mut self, config: &Config) -> Result<Vec<Tensor>, TrainerError>;
    /// Trains from `parameters` on local data as `config` says.
    fn fit(&mut self, parameters: Vec<Tensor>, config: &Config)
    -> Result<FitOutcome, TrainerError>;
    /// Evaluates `parameters` on the local held-out data.
    fn evaluate(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<EvaluateOutcome, TrainerError>;
}

impl<T: Trainer + ?Sized> Trainer for Box<T> {
    fn get_parameters(&mut self, config: &Config) -> Result<Vec<Tensor>, TrainerError> {
        (**self).get_parameters(config)
    }

    fn fit(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<FitOutcome, TrainerError> {
        (**self).fit(parameters, config)
    }

    fn evaluate(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<EvaluateOutcome, TrainerError> {
        (**self).evaluate(parameters, config)
    }
}
