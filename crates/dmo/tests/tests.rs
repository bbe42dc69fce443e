//! The `dmo` command's integration tests: the binary as users run it, whole
//! experiments on both backends, orchestration across processes, metrics.
//! One binary per crate (one link on two cores); each file is a module.

mod cli;
mod federated;
mod metrics;
mod netns;
mod orchestration;
mod run;
mod scale;
mod sweep;
mod util;
