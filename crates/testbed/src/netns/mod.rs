//! The netns backend: one network namespace per host, the switches as
//! Linux bridges in a fabric namespace, veth links shaped with tc, delay
//! and loss with netem or a user-space delay line, per-host CPU limits
//! with cgroups, and ports published on loopback by a forwarding proxy.
//! Nothing is routed off the machine: no namespace of the testbed has a
//! default route or a link to the root namespace.

mod cgroup;
pub mod control;
pub mod controller;
pub mod delayline;
pub mod exporter;
pub mod latency;
pub mod measure;
pub mod meters;
mod names;
pub mod paths;
pub mod plan;
mod proxy;
mod shape;
pub mod sys;
pub mod tap;
mod testbed;

pub use control::{LinkChange, LinkControl};
pub use names::{RunNames, run_of};
pub use plan::NetPlan;
pub use testbed::{Impairment, NetnsTestbed, down_all, down_run, leftovers, runs_present};
