//! Helpers that the workspace's integration tests share: the root check,
//! the load lock that keeps measuring tests alone on the machine, free
//! loopback ports, and the median of measured samples. Test-only: no
//! library crate depends on it.

#![warn(missing_docs)]

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Held shared by every test of a binary that also holds measuring tests,
/// and exclusively by those: a measurement (a link's rate, a round's RTT)
/// never shares the two cores with another test of its binary.
static LOAD: RwLock<()> = RwLock::new(());

/// Takes the load lock exclusively: for a test that measures time, rates
/// or delays. Hold the guard for the whole test.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOAD.write().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the load lock shared: for any other test in a binary with
/// measuring tests. Hold the guard for the whole test.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Fails clearly where a test cannot run: it needs root (CI runs as root),
/// so it never skips silently.
pub fn require_root() {
    assert!(
        is_root(),
        "the netns tests need root (CI runs them as root)"
    );
}

/// The root check and [`exclusive`] in one, for a measuring root test.
pub fn require_root_alone() -> RwLockWriteGuard<'static, ()> {
    require_root();
    exclusive()
}

/// A port free on 127.0.0.1 now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `127.0.0.1:PORT` with a [`free_port`].
pub fn free_loopback_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// The median of `v` (the mean of the two middle values when their number
/// is even).
///
/// # Panics
/// When `v` is empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "the median of no samples");
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_samples() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn free_ports_are_nonzero_and_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
