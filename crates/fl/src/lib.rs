//! Federated-learning runtime speaking Flower's gRPC wire protocol
//! (grpc-bidi): parameter codec, server with strategies, and client loop.
//!
//! No ML framework lives here: clients train through the [`Trainer`] trait,
//! which the `ml` crate implements.
//!
//! Feature `runtime` (on by default) is everything but [`names`], the
//! strategy names, which build without it for the intent crate.

#![warn(missing_docs)]

#[cfg(feature = "runtime")]
pub mod client;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod history;
#[cfg(feature = "runtime")]
mod join_stream;
pub mod names;
#[cfg(feature = "runtime")]
pub mod npy;
#[cfg(feature = "runtime")]
pub mod privacy;
#[cfg(feature = "runtime")]
pub mod proto;
#[cfg(feature = "runtime")]
pub mod server;
#[cfg(feature = "runtime")]
pub mod strategy;
#[cfg(feature = "runtime")]
pub mod tensor;
#[cfg(feature = "runtime")]
pub mod tls;
#[cfg(feature = "runtime")]
pub mod trainer;
#[cfg(feature = "runtime")]
pub mod wire;

#[cfg(feature = "runtime")]
pub use config::{Config, Scalar};
pub use names::StrategyKind;
#[cfg(feature = "runtime")]
pub use tensor::Tensor;
#[cfg(feature = "runtime")]
pub use trainer::{EvaluateOutcome, FitOutcome, Trainer, TrainerError};
