//! The single entry point an FL client calls: what to train on, and the
//! trainer built from it.

use std::path::PathBuf;

use crate::MlError;
use crate::datasets::{DatasetName, idx, registry, shared};
use crate::models::ModelName;
use crate::partition::{self, ClientData, Partition};
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
    /// Worker threads for this client (0: one per core); for a pooled
    /// client, the threads of the process's pool that all its clients share.
    pub threads: usize,
    /// Seed of the initial weights, shuffling and dropout.
    pub seed: u64,
    /// How this client attacks the federation, if it does.
    pub attack: Option<crate::attack::Attack>,
    /// Local differential privacy of its updates, if it has it.
    pub local_dp: Option<fl::privacy::LocalDp>,
    /// One of many clients in this process (a node agent serving many
    /// hosts): the dataset is read once per process and shared, the
    /// training threads are the process's, and the model exists only
    /// while the client trains or evaluates.
    pub pooled: bool,
}

/// Loads this client's part of the dataset: its training and held-out
/// examples. IDX datasets are streamed so that only the client's examples
/// are kept; a pooled client copies its examples out of the process's
/// shared training split instead (the same examples, in the same order).
pub fn load_client_data(spec: &ClientSpec) -> Result<ClientData, MlError> {
    let p = &spec.partition;
    if spec.pooled {
        let train = shared::train_split(spec.dataset, spec.data_dir.as_deref())?;
        return Ok(partition::client_data(&train, p)?);
    }
    Ok(
        match registry::idx_train_files(spec.dataset, spec.data_dir.as_deref())? {
            Some((images, labels)) => {
                let classes = spec.dataset.num_classes();
                let mine = idx::read_selected_images(&images, &labels, classes, |labels| {
                    partition::client_indices(labels, classes, p).map_err(MlError::from)
                })?;
                let rows: Vec<usize> = (0..mine.len()).collect();
                partition::split_client(&mine, &rows, p)
            }
            None => {
                let splits = registry::load(spec.dataset, spec.data_dir.as_deref())?;
                partition::client_data(&splits.train, p)?
            }
        },
    )
}

/// Loads this client's part of the dataset and builds its trainer.
pub fn build_trainer(spec: &ClientSpec) -> Result<LocalTrainer, MlError> {
    let mut data = load_client_data(spec)?;
    if spec.attack == Some(crate::attack::Attack::LabelFlip) {
        crate::attack::flip_labels(&mut data);
    }
    if spec.pooled {
        LocalTrainer::pooled(spec.model, data, spec.threads, spec.seed)
    } else {
        LocalTrainer::new(spec.model, data, spec.threads, spec.seed)
    }
}

/// The trainer of `spec` as the FL client runs it: attacking, and then
/// locally differentially private, when `spec` says so.
pub fn build_fl_trainer(spec: &ClientSpec) -> Result<Box<dyn fl::Trainer>, MlError> {
    let trainer = build_trainer(spec)?;
    let trainer: Box<dyn fl::Trainer> = match spec.attack {
        Some(attack) => Box::new(crate::attack::Attacking::new(trainer, attack, spec.seed)),
        None => Box::new(trainer),
    };
    Ok(match &spec.local_dp {
        Some(dp) => Box::new(
            fl::privacy::LocalDpTrainer::new(trainer, dp.clone(), spec.seed)
                .map_err(|e| MlError::Privacy(format!("local_dp.{e}")))?,
        ),
        None => trainer,
    })
}
