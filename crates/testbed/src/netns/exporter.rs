//! The netns testbed's own Prometheus metrics, read at scrape time: bytes
//! through every link in each direction (the switch-side device's
//! counters), and the kernel's TCP RTT and congestion window of the
//! traffic hosts' connections (the background traffic), as the
//! prototype's node and socket-statistics exporters gave them.

use super::measure::{link_bytes, tcp_connections};
use super::plan::NetPlan;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Reads the testbed at every scrape.
#[derive(Debug)]
pub struct NetworkCollector {
    plan: NetPlan,
    traffic_hosts: Vec<String>,
}

impl NetworkCollector {
    /// Collects `plan`'s links and the TCP connections of `traffic_hosts`.
    pub fn new(plan: NetPlan, traffic_hosts: Vec<String>) -> Self {
        Self {
            plan,
            traffic_hosts,
        }
    }
}

/// Whether `value` can be written as a label value as it is
/// (prometheus-client does not escape them).
fn plain(value: &str) -> bool {
    !value.contains(['"', '\\', '\n'])
}

impl Collector for NetworkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = link_bytes(&self.plan);
        let mut family = encoder.encode_descriptor(
            "testbed_link_transmit_bytes",
            "Bytes through a testbed link in one direction (from -> to), from the switch-side device's counters",
            None,
            MetricType::Counter,
        )?;
        for c in &counters {
            let Some(l) = self.plan.links.get(c.link) else {
                continue;
            };
            let (a, b) = (&l.a.node, &l.b.node);
            if !plain(a) || !plain(b) {
                continue;
            }
            let link = format!("{a}-{b}");
            for (from, to, bytes) in [(a, b, c.a_to_b), (b, a, c.b_to_a)] {
                let labels = [
                    ("link", link.as_str()),
                    ("from", from.as_str()),
                    ("to", to.as_str()),
                ];
                ConstCounter::new(bytes).encode(family.encode_family(&labels)?)?;
            }
        }
        let connections: Vec<_> = self
            .traffic_hosts
            .iter()
            .filter_map(|h| self.plan.host(h))
            .flat_map(|h| tcp_connections(&h.name, &h.ns, None))
            .filter(|c| plain(&c.host))
            .collect();
        let mut rtt = encoder.encode_descriptor(
            "testbed_tcp_rtt_seconds",
            "Smoothed RTT of a traffic host's TCP connection (the kernel's)",
            None,
            MetricType::Gauge,
        )?;
        for c in &connections {
            let labels = [("traffic_host", c.host.as_str()), ("peer", c.peer.as_str())];
            ConstGauge::new(c.rtt_ms / 1000.0).encode(rtt.encode_family(&labels)?)?;
        }
        let mut cwnd = encoder.encode_descriptor(
            "testbed_tcp_cwnd_segments",
            "Congestion window of a traffic host's TCP connection",
            None,
            MetricType::Gauge,
        )?;
        for c in &connections {
            let labels = [("traffic_host", c.host.as_str()), ("peer", c.peer.as_str())];
            ConstGauge::new(i64::from(c.cwnd)).encode(cwnd.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// A registry holding only the testbed's collector.
pub fn registry(plan: NetPlan, traffic_hosts: Vec<String>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NetworkCollector::new(plan, traffic_hosts)));
    registry
}

/// The testbed's metrics in the Prometheus text format (OpenMetrics).
pub fn text(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::RunNames;
    use crate::{GenOptions, generate};

    #[test]
    fn a_testbed_that_is_not_up_exports_empty_families() {
        let t = generate(&GenOptions {
            cohorts: vec![1],
            ..GenOptions::default()
        })
        .unwrap();
        let plan = NetPlan::new(&t, RunNames::new(254), false).unwrap();
        let out = text(&registry(plan, vec!["app.1".into()]));
        assert!(
            out.contains("# TYPE testbed_link_transmit_bytes counter"),
            "{out}"
        );
        assert!(
            out.contains("# TYPE testbed_tcp_rtt_seconds gauge"),
            "{out}"
        );
        assert!(!out.contains("testbed_link_transmit_bytes_total{"), "{out}");
        assert!(out.ends_with("# EOF\n"));
    }
}
