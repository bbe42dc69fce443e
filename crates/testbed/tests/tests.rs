//! The testbed's integration tests: the local backend, and the netns
//! backend on the real kernel (root): links, meters, the delay line.
//! One binary per crate (one link on two cores); each file is a module.

mod delayline;
mod local;
mod meters;
mod netns;
mod paths;
mod util;
