//! The netns backend: one network namespace per host, the switches as
//! Linux bridges in a fabric namespace, veth links shaped with tc, delay
//! and loss with netem or a user-space delay line, per-host CPU limits
//! with cgroups, and ports published on loopback by a forwarding proxy.

pub mod delayline;
pub mod sys;
pub mod tap;
