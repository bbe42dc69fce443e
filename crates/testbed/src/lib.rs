//! Emulated networks for experiments: the topology spec and its generator
//! ([`topology`]), and the local backend ([`local`]) that runs every host
//! as a supervised process on its own loopback address.

pub mod local;
pub mod netns;
pub mod topology;

pub use topology::{
    Addressing, GenOptions, Host, Link, Role, SpecError, Subnet, Switch, Topology, TopologyError,
    generate,
};
