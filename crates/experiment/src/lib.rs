//! Experiments end to end: what `dmo run` writes (`summary.json`,
//! `rounds.csv`, `report.html`) and `dmo report` re-renders.

#![warn(missing_docs)]

pub mod compare;
mod error;
pub mod fidelity;
pub mod network;
pub mod prometheus;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod summary;
pub mod sweep;
mod topology_svg;

pub use error::RunError;
pub use runner::{BackendKind, RunOptions, RunOutcome, run, start_backend};
pub use scenario::Scenario;
pub use summary::{JobSummary, Summary};
