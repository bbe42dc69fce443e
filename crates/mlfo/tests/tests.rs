//! The MLFO crate's integration tests: bearer tokens, bandwidth caps as meters (root),
//! plans made at submission, Mo-Mo messages and northbound JSON bodies from
//! any bytes.
//! One binary per crate (one link on two cores); each file is a module.

mod auth;
mod bandwidth;
mod intent_bodies;
mod momo_bytes;
mod planning;
