//! The node agent's integration tests over real HTTP and gRPC.
//! One binary per crate (one link on two cores); each file is a module.

mod agent;
mod bodies;
