//! The intent crate's integration tests: the seed's intents, the catalog,
//! field errors, aggregation intents, and inputs that must never panic.
//! One binary per crate (one link on two cores); each file is a module.

mod aggregate;
mod catalog;
mod errors;
mod no_panic;
mod seed;
