//! The ML crate's integration tests: data sets, models, local training.
//! One binary per crate (one link on two cores); each file is a module.

mod datasets;
mod models;
mod training;
