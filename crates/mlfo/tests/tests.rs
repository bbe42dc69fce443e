//! The MLFO crate's integration tests: bandwidth caps as meters (root),
//! plans made at submission.
//! One binary per crate (one link on two cores); each file is a module.

mod bandwidth;
mod planning;
