//! Federated-learning runtime speaking Flower's gRPC wire protocol
//! (grpc-bidi): parameter codec, server with strategies, and client loop.
//!
//! No ML framework lives here: clients train through the [`Trainer`] trait,
//! which the `ml` crate implements.

pub mod client;
pub mod config;
pub mod history;
pub mod npy;
pub mod proto;
pub mod server;
pub mod strategy;
pub mod tensor;
pub mod trainer;
pub mod wire;

pub use config::{Config, Scalar};
pub use tensor::Tensor;
pub use trainer::{EvaluateOutcome, FitOutcome, Trainer, TrainerError};
