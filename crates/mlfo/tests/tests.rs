//! The MLFO crate's integration tests (root): bandwidth caps as meters.
//! One binary per crate (one link on two cores); each file is a module.

mod bandwidth;
