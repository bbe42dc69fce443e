//! Helpers of the root tests on a real netns testbed.

use std::process::{Command, Stdio};
use std::time::Duration;
use testbed::netns::NetnsTestbed;

/// iperf3 TCP throughput from host `from` to host `to` over `seconds`,
/// Mbit/s as the receiver counts it; the server listens on `port`.
pub fn iperf(bed: &NetnsTestbed, from: &str, to: &str, port: u16, seconds: u32) -> f64 {
    let addr = bed.plan().host(to).unwrap().address.to_string();
    let port = port.to_string();
    let mut server = bed
        .command(
            to,
            Command::new("iperf3").args(["-s", "-1", "-B", &addr, "-p", &port]),
        )
        .unwrap()
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let time = seconds.to_string();
    let out = bed
        .command(
            from,
            Command::new("iperf3").args(["-c", &addr, "-p", &port, "-t", &time, "-J"]),
        )
        .unwrap()
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap()
        / 1e6
}

/// Asserts that run `run` left no namespace and no cgroup.
pub fn assert_gone(run: u8) {
    let left = testbed::netns::leftovers(run);
    assert!(left.is_empty(), "left: {left:?}");
}
