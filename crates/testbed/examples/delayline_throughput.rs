//! The maximum throughput of the user-space delay line: an iperf3 TCP bulk
//! transfer from namespace A to namespace B through a [`DelayLine`], at
//! 0 ms and 12 ms one-way delay, without loss, and at 12 ms behind a tbf
//! of 500 Mbit/s on the sending TAP device (the prototype's fastest link,
//! shaped as the netns backend shapes it). Needs root, /dev/net/tun and
//! iperf3.
//!
//! ```sh
//! cargo run --release -p testbed --example delayline_throughput [SECONDS]
//! ```

use std::error::Error;
use std::process::{Command, Stdio};
use std::time::Duration;
use testbed::netns::delayline::{DelayLine, LineSpec};
use testbed::netns::sys::{ip, tc};
use testbed::netns::tap::Tap;

const NS_A: &str = "dmo-t-bench-dl-a";
const NS_B: &str = "dmo-t-bench-dl-b";
const ADDR_B: &str = "10.213.0.2";

/// The two namespaces, removed on drop.
struct Namespaces;

impl Namespaces {
    fn new() -> Result<Self, Box<dyn Error>> {
        for ns in [NS_A, NS_B] {
            let _ = ip(&["netns", "del", ns]);
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(Namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [NS_A, NS_B] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn tap(ns: &str, dev: &str, cidr: &str) -> Result<Tap, Box<dyn Error>> {
    let tap = Tap::create(ns, dev)?;
    ip(&["-n", ns, "addr", "add", cidr, "dev", dev])?;
    ip(&["-n", ns, "link", "set", dev, "up"])?;
    Ok(tap)
}

/// One transfer, with `ta` shaped to `rate` (a tc rate) if given:
/// receiver's Mbit/s, frames/s and the line's counters.
fn measure(delay_ms: u64, rate: Option<&str>, seconds: u64) -> Result<(), Box<dyn Error>> {
    let a = tap(NS_A, "ta", "10.213.0.1/24")?;
    if let Some(rate) = rate {
        tc(
            NS_A,
            &[
                "qdisc", "add", "dev", "ta", "root", "tbf", "rate", rate, "burst", "128kb",
                "latency", "20ms",
            ],
        )?;
    }
    let b = tap(NS_B, "tb", &format!("{ADDR_B}/24"))?;
    let spec = LineSpec::new(Duration::from_millis(delay_ms), 0.0, 1);
    let line = DelayLine::start(a, b, spec)?;
    let mut server = Command::new("ip")
        .args(["netns", "exec", NS_B, "iperf3", "-s", "-1", "-B", ADDR_B])
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let before = line.stats();
    let secs = seconds.to_string();
    let client = Command::new("ip")
        .args([
            "netns", "exec", NS_A, "iperf3", "-c", ADDR_B, "-t", &secs, "-J",
        ])
        .output()?;
    // The server's last control message crosses the line too.
    let _ = server.wait();
    let stats = line.stop();
    let report: serde_json::Value = serde_json::from_slice(&client.stdout)?;
    let received = &report["end"]["sum_received"];
    let (Some(bps), Some(took)) = (
        received["bits_per_second"].as_f64(),
        received["seconds"].as_f64(),
    ) else {
        return Err(format!("iperf3 gave no result: {}", report["error"]).into());
    };
    let frames = stats.a_to_b.frames - before.a_to_b.frames;
    let acks = stats.b_to_a.frames - before.b_to_a.frames;
    println!(
        "delay {delay_ms:>2} ms, {:>9}: {:>7.1} Mbit/s, {:>6.0} data frames/s + {:>6.0} ack frames/s, \
         queue drops {}, write errors {}, retransmits {}, late > 1 ms {:.2} %, max late {:.1} ms",
        rate.map_or("unshaped".to_owned(), |r| format!("tbf {r}")),
        bps / 1e6,
        frames as f64 / took,
        acks as f64 / took,
        stats.a_to_b.queue_drops,
        stats.a_to_b.write_errors,
        report["end"]["sum_sent"]["retransmits"],
        stats.a_to_b.late as f64 * 100.0 / stats.a_to_b.frames.max(1) as f64,
        stats.a_to_b.max_late_us as f64 / 1000.0,
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let seconds = match std::env::args().nth(1) {
        Some(s) => s.parse()?,
        None => 5,
    };
    let _namespaces = Namespaces::new()?;
    for (delay_ms, rate) in [(0, None), (12, None), (12, Some("500mbit"))] {
        measure(delay_ms, rate, seconds)?;
    }
    Ok(())
}
