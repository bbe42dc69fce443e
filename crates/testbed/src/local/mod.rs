//! The local backend: every host is a process bound to its own loopback
//! address 127.R.T.H, supervised ([`Supervisor`]) and torn down on every
//! exit path; link figures are recorded, not enforced.

mod probe;
mod supervisor;

pub use probe::{http_get_ok, listeners_in_run, port_free};
pub use supervisor::{HostError, Supervisor};

use std::net::Ipv4Addr;

/// The loopback address of topology address `addr` in run `run_byte`:
/// 10.0.T.H becomes 127.`run_byte`.T.H, so the last octet (the prototype's
/// `ipstart` arithmetic) is kept and runs with different bytes do not
/// collide. Linux routes all of 127/8 to `lo`, so binding needs no setup.
pub fn loopback_addr(addr: Ipv4Addr, run_byte: u8) -> Ipv4Addr {
    let [_, _, t, h] = addr.octets();
    Ipv4Addr::new(127, run_byte, t, h)
}

/// [`loopback_addr`] under the name the experiment runner uses.
pub use loopback_addr as loopback;

/// A run byte derived from the process id, in 2..=254 (127.0/16 and
/// 127.1/16 are left to other software, 127.255/16 holds the broadcast
/// address of 127/8).
pub fn default_run_byte() -> u8 {
    2 + (std::process::id() % 253) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_keeps_the_tier_and_host_octets() {
        assert_eq!(
            loopback_addr(Ipv4Addr::new(10, 0, 1, 42), 7),
            Ipv4Addr::new(127, 7, 1, 42)
        );
        assert_eq!(
            loopback(Ipv4Addr::new(10, 0, 0, 100), 231),
            Ipv4Addr::new(127, 231, 0, 100)
        );
        assert!((2..=254).contains(&default_run_byte()));
    }
}
