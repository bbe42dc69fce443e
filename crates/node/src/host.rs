//! The host's network interface counters (bytes and packets each way),
//! read from `/proc/self/net/dev` when the metrics are scraped.
//!
//! The file lists the interfaces of the agent's network namespace: on the
//! netns testbed every host sees its own, on the local backend every agent
//! sees the machine's. Every interface is exported, `lo` too, labelled
//! `interface`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use std::path::PathBuf;

/// Where the kernel lists the interfaces of the process's network namespace.
pub const PROC_NET_DEV: &str = "/proc/self/net/dev";

/// One interface's counters, as `/proc/net/dev` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    /// Interface name, e.g. `eth0`.
    pub interface: String,
    /// Bytes received.
    pub receive_bytes: u64,
    /// Packets received.
    pub receive_packets: u64,
    /// Bytes transmitted.
    pub transmit_bytes: u64,
    /// Packets transmitted.
    pub transmit_packets: u64,
}

/// Counters per line of `/proc/net/dev`: receive bytes, packets, errs,
/// drop, fifo, frame, compressed, multicast, then transmit bytes, packets,
/// errs, drop, fifo, colls, carrier, compressed.
const FIELDS: usize = 16;
/// Position of the transmit counters among them.
const TRANSMIT: usize = 8;

/// The interfaces of `/proc/net/dev` text, in its order; headers, lines
/// that are not `NAME: 16 counters` and names holding `"` or `\` are skipped.
pub fn parse_net_dev(text: &str) -> Vec<InterfaceCounters> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<InterfaceCounters> {
    // Interface names cannot hold ':' nor whitespace; the kernel pads them
    // on the left and, when long, leaves no space before the first counter.
    // Names with '"' or '\' are skipped: label values go out unescaped.
    let (name, counters) = line.split_once(':')?;
    let name = name.trim();
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || "|\"\\".contains(c)) {
        return None;
    }
    let counters = counters
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<Vec<u64>, _>>()
        .ok()?;
    if counters.len() != FIELDS {
        return None;
    }
    Some(InterfaceCounters {
        interface: name.to_owned(),
        receive_bytes: counters[0],
        receive_packets: counters[1],
        transmit_bytes: counters[TRANSMIT],
        transmit_packets: counters[TRANSMIT + 1],
    })
}

/// An exported family: name, help and each interface's value.
type Family = (&'static str, &'static str, fn(&InterfaceCounters) -> u64);

/// The exported families, all counters.
const FAMILIES: [Family; 4] = [
    (
        "host_network_receive_bytes",
        "Bytes received by a network interface of the host",
        |c| c.receive_bytes,
    ),
    (
        "host_network_transmit_bytes",
        "Bytes transmitted by a network interface of the host",
        |c| c.transmit_bytes,
    ),
    (
        "host_network_receive_packets",
        "Packets received by a network interface of the host",
        |c| c.receive_packets,
    ),
    (
        "host_network_transmit_packets",
        "Packets transmitted by a network interface of the host",
        |c| c.transmit_packets,
    ),
];

/// Exports the counters of a `/proc/net/dev` file at each scrape; without
/// the file (not Linux) the families are exported empty.
#[derive(Debug)]
pub struct HostNetworkCollector {
    path: PathBuf,
}

impl HostNetworkCollector {
    /// A collector reading `path`, normally [`PROC_NET_DEV`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Collector for HostNetworkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let interfaces = match std::fs::read_to_string(&self.path) {
            Ok(text) => parse_net_dev(&text),
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "interface counters");
                Vec::new()
            }
        };
        for (name, help, value) in FAMILIES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for c in &interfaces {
                let labels = [("interface", c.interface.as_str())];
                ConstCounter::new(value(c)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    /// A namespace's file as Linux 6.x writes it, with a long veth name and
    /// the odd lines a parser must survive.
    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   46312     512    0    0    0     0          0         0    46312     512    0    0    0     0       0          0
  eth0: 1019422979   35986    0    0    0     0          0         0  2258627   21772    0    0    0     0       0          0
dmo-7-fc.10-e0:18446744073709551615 3 0 0 0 0 0 0 42 1 0 0 0 0 0 0
  bad0: 12 x 0 0 0 0 0 0 1 1 0 0 0 0 0 0
 short: 1 2 3
 : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
  long: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17
  q\"0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
  b\\0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
  neg0: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
no colon at all

";

    #[test]
    fn parser_reads_each_interface_and_skips_headers_and_malformed_lines() {
        let got = parse_net_dev(NET_DEV);
        assert_eq!(
            got,
            vec![
                InterfaceCounters {
                    interface: "lo".into(),
                    receive_bytes: 46312,
                    receive_packets: 512,
                    transmit_bytes: 46312,
                    transmit_packets: 512,
                },
                InterfaceCounters {
                    interface: "eth0".into(),
                    receive_bytes: 1_019_422_979,
                    receive_packets: 35986,
                    transmit_bytes: 2_258_627,
                    transmit_packets: 21772,
                },
                InterfaceCounters {
                    interface: "dmo-7-fc.10-e0".into(),
                    receive_bytes: u64::MAX,
                    receive_packets: 3,
                    transmit_bytes: 42,
                    transmit_packets: 1,
                },
            ]
        );
        assert!(parse_net_dev("").is_empty());
        assert!(parse_net_dev("eth0:\n:\n\u{0}:\u{ff}").is_empty());
    }

    fn scrape(collector: HostNetworkCollector) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn counters_are_read_from_the_file_at_each_scrape() {
        let path = std::env::temp_dir().join(format!("dmo-net-dev-{}", std::process::id()));
        std::fs::write(&path, NET_DEV).unwrap();
        let text = scrape(HostNetworkCollector::new(&path));
        for line in [
            "# TYPE host_network_receive_bytes counter",
            "host_network_receive_bytes_total{interface=\"eth0\"} 1019422979",
            "host_network_transmit_bytes_total{interface=\"eth0\"} 2258627",
            "host_network_receive_packets_total{interface=\"lo\"} 512",
            "host_network_transmit_packets_total{interface=\"dmo-7-fc.10-e0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        std::fs::write(&path, NET_DEV.replace("1019422979", "1019423000")).unwrap();
        let text = scrape(HostNetworkCollector::new(&path));
        assert!(text.contains("host_network_receive_bytes_total{interface=\"eth0\"} 1019423000"));
        std::fs::remove_file(&path).unwrap();

        let text = scrape(HostNetworkCollector::new(&path));
        assert!(text.contains("# TYPE host_network_transmit_packets counter\n"));
        assert!(!text.contains("interface="), "{text}");
    }
}
