//! The single entry point an FL client calls: what to train on, and the
//! trainer built from it.

use std::path::PathBuf;

use crate::MlError;
use crate::datasets::{DatasetName, registry};
use crate::models::ModelName;
use crate::partition::{self, Partition};
use crate::trainer::LocalTrainer;

/// Everything a client needs to build its trainer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpec {
    /// The dataset the cohort shares.
    pub dataset: DatasetName,
    /// The model to train.
    pub model: ModelName,
    /// Data directory (else `$DMO_DATA_DIR`, then `/usr/share/datasets`).
    pub data_dir: Option<PathBuf>,
    /// This client's part of the cohort.
    pub partition: Partition,
    /// Worker threads for this client (0: one per core).
    pub threads: usize,
    /// Seed of the initial weights, shuffling and dropout.
    pub seed: u64,
}

/// Loads the dataset, takes this client's part, and builds its trainer.
pub fn build_trainer(spec: &ClientSpec) -> Result<LocalTrainer, MlError> {
    let splits = registry::load(spec.dataset, spec.data_dir.as_deref())?;
    let data = partition::client_data(&splits.train, &spec.partition)?;
    LocalTrainer::new(spec.model, data, spec.threads, spec.seed)
}
