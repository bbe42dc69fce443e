//! Emulated networks for experiments: the topology spec and its generator
//! ([`topology`]); the local backend ([`local`]), every host a supervised
//! process on its own loopback address; the netns backend ([`netns`]),
//! every host in its own network namespace on shaped links; and what an
//! experiment needs from either ([`backend`]).

#![warn(missing_docs)]

pub mod backend;
pub mod limits;
pub mod local;
pub mod netns;
pub mod topology;

pub use topology::{
    Addressing, BurstLoss, GenOptions, Host, Link, Role, SpecError, Subnet, Switch, Topology,
    TopologyError, generate,
};
