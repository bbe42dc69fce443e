//! What the network controller measures of the path between two hosts
//! (`GET /v1/paths?from=A&to=B`): its links in order; on each, in each
//! direction, the rate the kernel shapes it to (read back from the end
//! device's htb root class), the load the link's byte counters show over a
//! short window, and what is left; and the round-trip time of a TCP
//! handshake probe from `from` to `to`, sent inside `from`'s namespace.

use super::measure::link_bytes;
use super::plan::{EndPlan, LinkPlan, NetPlan};
use super::sys;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Seconds between the two counter reads that give each link's load.
pub const LOAD_WINDOW_S: f64 = 0.3;
/// TCP handshakes the RTT probe times.
pub const PROBES: usize = 5;
/// Port the probe connects to: discard, where a refusal (RST) comes back
/// as fast as an acceptance, so nothing has to listen.
const PROBE_PORT: u16 = 9;
/// Longest a probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One direction of one link on the path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    /// The link, `a-b` as the topology names it.
    pub link: String,
    /// The node the traffic leaves.
    pub from: String,
    /// The node it reaches.
    pub to: String,
    /// The rate the kernel shapes this direction to, Mbit/s (`None` when
    /// it cannot be read back: then `declared_mbit` holds).
    pub rate_mbit: Option<f64>,
    /// The topology's bandwidth for the link, Mbit/s (none: unshaped).
    pub declared_mbit: Option<f64>,
    /// Traffic the link's counters showed in this direction over the
    /// window, Mbit/s.
    pub load_mbit: f64,
    /// What is left: the rate less the load, Mbit/s.
    pub available_mbit: Option<f64>,
    /// The link's one-way delay as configured, ms.
    pub delay_ms: f64,
}

/// Both directions of a path and its probed RTT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathReport {
    /// The host the path starts at.
    pub from: String,
    /// The host it ends at.
    pub to: String,
    /// Hops from `from` to `to`, in order.
    pub forward: Vec<Hop>,
    /// Hops from `to` back to `from`, in order.
    pub reverse: Vec<Hop>,
    /// The least available bandwidth over both directions, the first hop
    /// (`from`'s own link) left out, Mbit/s.
    pub bottleneck_mbit: Option<f64>,
    /// The available bandwidth of `from`'s own link (the first hop), the
    /// smaller direction, Mbit/s.
    pub access_mbit: Option<f64>,
    /// Twice the configured one-way delays, ms.
    pub configured_rtt_ms: f64,
    /// Median of the probes' handshake times, ms (`None`: none answered).
    pub rtt_ms: Option<f64>,
    /// Every probe's handshake time, ms.
    pub rtt_samples_ms: Vec<f64>,
    /// Seconds over which the load was measured.
    pub window_s: f64,
}

/// A path the controller cannot measure (the text names the parameter).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// No host of the topology has that name or address (404).
    #[error("{0}")]
    UnknownHost(String),
    /// The two hosts are not connected (404).
    #[error("{0}")]
    NoPath(String),
}

/// The host called `name`, or with address `name`.
fn find_host<'a>(plan: &'a NetPlan, field: &str, name: &str) -> Result<&'a str, PathError> {
    let by_address: Option<Ipv4Addr> = name.parse().ok();
    plan.hosts
        .iter()
        .find(|h| h.name == name || Some(h.address) == by_address)
        .map(|h| h.name.as_str())
        .ok_or_else(|| {
            PathError::UnknownHost(format!(
                "{field}: no host of the testbed is called {name:?} or has that address; GET /v1/switches lists the topology"
            ))
        })
}

/// The links from node `from` to node `to`, each with whether it is
/// crossed from end `a` to end `b`; breadth first, so the fewest hops.
fn route(plan: &NetPlan, from: &str, to: &str) -> Option<Vec<(usize, bool)>> {
    let mut came: BTreeMap<&str, (usize, bool, &str)> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            let mut out = Vec::new();
            let mut at = to;
            while let Some(&(link, forward, prev)) = came.get(at) {
                out.push((link, forward));
                at = prev;
            }
            out.reverse();
            return Some(out);
        }
        for (i, l) in plan.links.iter().enumerate() {
            let (next, forward) = if l.a.node == node {
                (l.b.node.as_str(), true)
            } else if l.b.node == node {
                (l.a.node.as_str(), false)
            } else {
                continue;
            };
            if next != from && !came.contains_key(next) {
                came.insert(next, (i, forward, node));
                queue.push_back(next);
            }
        }
    }
    None
}

/// Reads the rate of the htb root class (`1:1`) of an end's device from
/// `tc class show` output, Mbit/s.
pub fn parse_root_rate(text: &str) -> Option<f64> {
    // `class htb 1:1 root ...`: the class id is the third word.
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("1:1"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "rate")?;
    let rate = words.next()?;
    let digits = rate
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rate.len());
    let (number, unit) = rate.split_at(digits);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "bit" => 1e-6,
        "Kbit" => 1e-3,
        "Mbit" => 1.0,
        "Gbit" => 1e3,
        "Tbit" => 1e6,
        _ => return None,
    };
    Some(value * scale)
}

/// The rate the kernel shapes an end's egress to, Mbit/s.
fn shaped_rate(end: &EndPlan) -> Option<f64> {
    let text = sys::tc(&end.ns, &["class", "show", "dev", &end.dev]).ok()?;
    parse_root_rate(&text)
}

/// `(a_to_b, b_to_a)` bytes per link index.
fn counters(plan: &NetPlan) -> BTreeMap<usize, (u64, u64)> {
    link_bytes(plan)
        .into_iter()
        .map(|c| (c.link, (c.a_to_b, c.b_to_a)))
        .collect()
}

/// One direction of link `l`, with the load from the two counter reads.
fn hop(l: &LinkPlan, a_to_b: bool, bytes: (u64, u64), window_s: f64) -> Hop {
    let (sender, receiver) = if a_to_b { (&l.a, &l.b) } else { (&l.b, &l.a) };
    let rate_mbit = shaped_rate(sender);
    let load_mbit = bytes.1.saturating_sub(bytes.0) as f64 * 8.0 / 1e6 / window_s;
    let capacity = rate_mbit.or(l.bandwidth_mbit);
    Hop {
        link: l.label(),
        from: sender.node.clone(),
        to: receiver.node.clone(),
        rate_mbit,
        declared_mbit: l.bandwidth_mbit,
        load_mbit,
        available_mbit: capacity.map(|c| (c - load_mbit).max(0.0)),
        delay_ms: l.delay_ms,
    }
}

/// Times [`PROBES`] TCP handshakes from namespace `ns` to `to`, ms.
fn probe_rtt(ns: &str, to: Ipv4Addr) -> Vec<f64> {
    let target = SocketAddr::from((to, PROBE_PORT));
    sys::in_namespace(ns, || {
        (0..PROBES)
            .filter_map(|_| {
                let start = Instant::now();
                let answered = match TcpStream::connect_timeout(&target, PROBE_TIMEOUT) {
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
                };
                answered.then(|| start.elapsed().as_secs_f64() * 1000.0)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The smallest of some figures.
fn least(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.flatten().min_by(f64::total_cmp)
}

/// Twice the configured one-way delays of the links between hosts `from`
/// and `to` (names or addresses), ms; `None` when either is unknown or
/// nothing joins them.
pub fn configured_rtt_ms(plan: &NetPlan, from: &str, to: &str) -> Option<f64> {
    let from = find_host(plan, "from", from).ok()?;
    let to = find_host(plan, "to", to).ok()?;
    let links = route(plan, from, to)?;
    Some(
        2.0 * links
            .iter()
            .map(|&(i, _)| plan.links[i].delay_ms)
            .sum::<f64>(),
    )
}

/// Measures the path from host `from` to host `to` (names or addresses):
/// reads the counters twice [`LOAD_WINDOW_S`] apart, reads back the
/// shaping, and probes the RTT. Blocks for about half a second.
pub fn measure(plan: &NetPlan, from: &str, to: &str) -> Result<PathReport, PathError> {
    let from = find_host(plan, "from", from)?;
    let to = find_host(plan, "to", to)?;
    let links = route(plan, from, to)
        .ok_or_else(|| PathError::NoPath(format!("no links join {from} and {to}")))?;
    let before = counters(plan);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(LOAD_WINDOW_S));
    let after = counters(plan);
    let window_s = started.elapsed().as_secs_f64();
    let direction = |i: usize, a_to_b: bool| {
        let (b, a) = (before.get(&i), after.get(&i));
        let pick = |c: Option<&(u64, u64)>| c.map_or(0, |c| if a_to_b { c.0 } else { c.1 });
        hop(&plan.links[i], a_to_b, (pick(b), pick(a)), window_s)
    };
    let forward: Vec<Hop> = links.iter().map(|&(i, f)| direction(i, f)).collect();
    let reverse: Vec<Hop> = links.iter().rev().map(|&(i, f)| direction(i, !f)).collect();
    let beyond_access = forward
        .iter()
        .skip(1)
        .chain(reverse.iter().take(reverse.len().saturating_sub(1)));
    let bottleneck_mbit = least(beyond_access.map(|h| h.available_mbit));
    let access_mbit = least(
        [forward.first(), reverse.last()]
            .into_iter()
            .map(|h| h.and_then(|h| h.available_mbit)),
    );
    let configured_rtt_ms = 2.0 * forward.iter().map(|h| h.delay_ms).sum::<f64>();
    let (ns, address) = plan
        .host(from)
        .zip(plan.host(to))
        .map(|(f, t)| (f.ns.clone(), t.address))
        .ok_or_else(|| PathError::UnknownHost(format!("{from} or {to}")))?;
    let rtt_samples_ms = probe_rtt(&ns, address);
    let rtt_ms = median(&mut rtt_samples_ms.clone());
    Ok(PathReport {
        from: from.to_owned(),
        to: to.to_owned(),
        forward,
        reverse,
        bottleneck_mbit,
        access_mbit,
        configured_rtt_ms,
        rtt_ms,
        rtt_samples_ms,
        window_s,
    })
}

/// The median of `values` (sorted in place).
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::RunNames;
    use crate::{GenOptions, generate};

    fn plan() -> NetPlan {
        let t = generate(&GenOptions {
            cohorts: vec![4],
            edge_aggregators: true,
            ..GenOptions::default()
        })
        .unwrap();
        NetPlan::new(&t, RunNames::new(9), false).unwrap()
    }

    #[test]
    fn the_route_from_a_campus_crosses_both_satellite_hops() {
        let plan = plan();
        let links = route(&plan, "fla.1", "mlfo.cloud").unwrap();
        let names: Vec<String> = links.iter().map(|&(i, _)| plan.links[i].label()).collect();
        assert!(names.first().unwrap().contains("fla.1"), "{names:?}");
        assert!(names.last().unwrap().contains("mlfo.cloud"), "{names:?}");
        let satellite = names.iter().filter(|n| n.contains("satsw")).count();
        assert_eq!(satellite, 2, "{names:?}");
        assert_eq!(route(&plan, "fla.1", "fla.1"), Some(vec![]));
    }

    #[test]
    fn the_configured_rtt_is_twice_the_delays_on_the_route() {
        let plan = plan();
        let one_way: f64 = route(&plan, "fla.1", "mlfo.cloud")
            .unwrap()
            .iter()
            .map(|&(i, _)| plan.links[i].delay_ms)
            .sum();
        assert_eq!(one_way, 24.0, "two satellite hops of 12 ms");
        assert_eq!(configured_rtt_ms(&plan, "fla.1", "10.0.0.1"), Some(48.0));
        assert_eq!(configured_rtt_ms(&plan, "mlfo.cloud", "fla.1"), Some(48.0));
        assert_eq!(configured_rtt_ms(&plan, "fla.1", "fla.1"), Some(0.0));
        assert_eq!(configured_rtt_ms(&plan, "fla.1", "nosuch"), None);
    }

    #[test]
    fn hosts_are_found_by_name_or_address_and_unknown_ones_named() {
        let plan = plan();
        assert_eq!(find_host(&plan, "to", "10.0.0.1"), Ok("mlfo.cloud"));
        let e = find_host(&plan, "from", "nosuch").unwrap_err();
        assert!(e.to_string().starts_with("from: no host"), "{e}");
    }

    #[test]
    fn the_root_rate_is_read_in_every_unit() {
        let show = "class htb 1:10 parent 1:1 prio 0 rate 20Mbit ceil 20Mbit burst 1600b\n\
                    class htb 1:1 root prio 0 rate 100Mbit ceil 100Mbit burst 1600b cburst 1600b\n";
        assert_eq!(parse_root_rate(show), Some(100.0));
        let g = "class htb 1:1 root rate 10Gbit ceil 10Gbit";
        assert_eq!(parse_root_rate(g), Some(10_000.0));
        let k = "class htb 1:1 root rate 500Kbit ceil 500Kbit";
        assert_eq!(parse_root_rate(k), Some(0.5));
        assert_eq!(parse_root_rate("class htb 1:1 root rate lots"), None);
        assert_eq!(parse_root_rate(""), None);
    }
}
