//! The crate's umbrella error: what can stop building a trainer or an evaluator.

use crate::datasets::DataError;
use crate::models::{ModelError, WeightsError};
use crate::partition::PartitionError;

/// Building or running a trainer or evaluator failed.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// The dataset could not be found, read or generated.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The cohort could not be partitioned as asked.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The model does not exist or does not fit the data.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Parameters do not fit the model.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The worker threads could not be started.
    #[error("cannot start {threads} worker threads: {message}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// The reason.
        message: String,
    },
    /// Differential-privacy settings out of range (the field named).
    #[error("{0}")]
    Privacy(String),
}
