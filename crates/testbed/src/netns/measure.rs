//! Measurements of a running netns testbed, sampled once a second on a
//! background thread: bytes through every link in each direction (from
//! the switch-side device's counters, `ip -s -j link show` in the fabric
//! namespace) and the kernel's TCP statistics (RTT, congestion window) of
//! the FL connections on the aggregators (`ss -N NS -ti`).

use super::plan::NetPlan;
use super::sys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time between samples.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// FL servers listen from this port up (the node agents' FL port range).
pub const FL_PORTS: std::ops::Range<u16> = 6000..7000;
/// Background flows' receivers listen on these ports (flow `i` on the
/// first + `i`).
pub const TRAFFIC_PORTS: std::ops::Range<u16> = 5201..5265;
/// Most samples kept (a day at one a second); older ones are dropped.
const MAX_SAMPLES: usize = 86_400;

/// Bytes through one link so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkBytes {
    /// Index of the link in the topology.
    pub link: usize,
    /// Bytes from end `a` to end `b`.
    pub a_to_b: u64,
    /// Bytes from `b` to `a`.
    pub b_to_a: u64,
}

/// One TCP connection's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpConn {
    /// The host whose socket it is.
    pub host: String,
    /// Local address:port.
    pub local: String,
    /// Peer address:port.
    pub peer: String,
    /// Smoothed RTT, ms.
    pub rtt_ms: f64,
    /// Congestion window, segments.
    pub cwnd: u32,
}

/// One sample of the whole testbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since sampling started.
    pub t_s: f64,
    /// When the link counters' read began, seconds since the Unix epoch
    /// (to line samples up with an intent's life).
    #[serde(default)]
    pub unix_s: f64,
    /// When it ended: the counters hold every byte sent before `unix_s`
    /// and none sent after this.
    #[serde(default)]
    pub unix_end_s: f64,
    /// Every link's byte counters.
    pub links: Vec<LinkBytes>,
    /// The FL connections on the aggregators.
    pub tcp: Vec<TcpConn>,
    /// The background flows' connections on their senders.
    #[serde(default)]
    pub traffic: Vec<TcpConn>,
}

/// What a netns run measured, handed over when it ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measurements {
    /// How delay and loss were made (`netem` or `user-space delay line`).
    pub impairment: String,
    /// The samples, oldest first.
    pub samples: Vec<Sample>,
    /// Each delay line's counters at the end, with its link's index.
    pub delay_lines: Vec<(usize, super::delayline::LineStats)>,
    /// The latency probe's figures at the end (runs with delay lines).
    pub probe: Option<super::latency::ProbeStats>,
    /// The kernel's preemption model ([`super::latency::preemption_model`]).
    pub preemption: Option<String>,
    /// The configured RTT of each FL connection's path.
    pub paths: Vec<PathRtt>,
}

/// The configured round-trip time between an aggregator and a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathRtt {
    /// The aggregator (the socket's host).
    pub host: String,
    /// The peer's address, without the port.
    pub peer: String,
    /// Twice the configured one-way delays on the path, ms.
    pub rtt_ms: f64,
}

/// The configured RTT of the path of every FL connection in `samples`,
/// once per aggregator and peer address.
pub fn configured_rtts(plan: &NetPlan, samples: &[Sample]) -> Vec<PathRtt> {
    let pairs: std::collections::BTreeSet<(&str, &str)> = samples
        .iter()
        .flat_map(|s| &s.tcp)
        .map(|c| (c.host.as_str(), peer_address(&c.peer)))
        .collect();
    pairs
        .into_iter()
        .filter_map(|(host, peer)| {
            let rtt_ms = super::paths::configured_rtt_ms(plan, host, peer)?;
            Some(PathRtt {
                host: host.to_owned(),
                peer: peer.to_owned(),
                rtt_ms,
            })
        })
        .collect()
}

/// The address part of `address:port` (IPv4, as `ss` prints it).
pub fn peer_address(peer: &str) -> &str {
    peer.rsplit_once(':').map_or(peer, |(address, _)| address)
}

/// The link byte counters of `plan`, read from the switch-side ends (in
/// the fabric namespace); links between two hosts are read in the
/// namespace of end `a`.
pub fn link_bytes(plan: &NetPlan) -> Vec<LinkBytes> {
    let mut by_ns: BTreeMap<&str, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    let mut out = Vec::new();
    for l in &plan.links {
        // A switch-side device, end b's when both are switch ports; end
        // a's device for a link between two hosts.
        let end = if l.b.bridge.is_some() || l.a.bridge.is_none() {
            (&l.b, false)
        } else {
            (&l.a, true)
        };
        let counters = by_ns
            .entry(end.0.ns.as_str())
            .or_insert_with(|| device_counters(&end.0.ns));
        let Some(&(rx, tx)) = counters.get(&end.0.dev) else {
            continue;
        };
        // A device transmits what goes away from its end.
        let (a_to_b, b_to_a) = if end.1 { (tx, rx) } else { (rx, tx) };
        out.push(LinkBytes {
            link: l.index,
            a_to_b,
            b_to_a,
        });
    }
    out
}

/// `device -> (rx bytes, tx bytes)` in namespace `ns` (empty where `ip`
/// fails).
fn device_counters(ns: &str) -> BTreeMap<String, (u64, u64)> {
    let Ok(text) = sys::ip(&["-n", ns, "-s", "-j", "link", "show"]) else {
        return BTreeMap::new();
    };
    parse_counters(&text)
}

/// Parses `ip -s -j link show`.
pub fn parse_counters(json: &str) -> BTreeMap<String, (u64, u64)> {
    let Ok(serde_json::Value::Array(devices)) = serde_json::from_str(json) else {
        return BTreeMap::new();
    };
    devices
        .iter()
        .filter_map(|d| {
            let name = d.get("ifname")?.as_str()?.to_owned();
            let stats = d.get("stats64")?;
            let rx = stats.get("rx")?.get("bytes")?.as_u64()?;
            let tx = stats.get("tx")?.get("bytes")?.as_u64()?;
            Some((name, (rx, tx)))
        })
        .collect()
}

/// The established TCP connections on an FL server port in namespace
/// `ns` (host `host`).
pub fn fl_connections(host: &str, ns: &str) -> Vec<TcpConn> {
    let filter = format!(
        "( sport >= :{} and sport < :{} )",
        FL_PORTS.start, FL_PORTS.end
    );
    tcp_connections(host, ns, Some(&filter))
}

/// The established TCP connections in namespace `ns` (host `host`),
/// those matching ss filter `filter` when given.
pub fn tcp_connections(host: &str, ns: &str, filter: Option<&str>) -> Vec<TcpConn> {
    let mut args = vec!["-N", ns, "-tinH", "state", "established"];
    args.extend(filter);
    let Ok(text) = sys::run("ss", &args) else {
        return Vec::new();
    };
    parse_ss(host, &text)
}

/// Parses `ss -tinH state established` output: an address line (Recv-Q,
/// Send-Q, local, peer), then an indented line of `key:value` details.
pub fn parse_ss(host: &str, text: &str) -> Vec<TcpConn> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            current = (fields.len() >= 4).then(|| (fields[2].to_owned(), fields[3].to_owned()));
            continue;
        }
        let Some((local, peer)) = current.take() else {
            continue;
        };
        let value = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_owned)
        };
        let rtt_ms = value("rtt:")
            .and_then(|v| v.split('/').next()?.parse::<f64>().ok())
            .filter(|v| v.is_finite());
        let cwnd = value("cwnd:").and_then(|v| v.parse::<u32>().ok());
        if let (Some(rtt_ms), Some(cwnd)) = (rtt_ms, cwnd) {
            out.push(TcpConn {
                host: host.to_owned(),
                local,
                peer,
                rtt_ms,
                cwnd,
            });
        }
    }
    out
}

/// The connections of background flows that host `host` (namespace `ns`)
/// sends: to a port in [`TRAFFIC_PORTS`].
pub fn traffic_connections(host: &str, ns: &str) -> Vec<TcpConn> {
    let filter = format!(
        "( dport >= :{} and dport < :{} )",
        TRAFFIC_PORTS.start, TRAFFIC_PORTS.end
    );
    tcp_connections(host, ns, Some(&filter))
}

/// One sample of the links, of the FL connections of `watched.fl_hosts`
/// and of the background flows of `watched.traffic_senders`.
fn take_sample(plan: &NetPlan, watched: &Watched, t0: Instant) -> Sample {
    let tcp = watched
        .fl_hosts
        .iter()
        .filter_map(|h| plan.host(h))
        .flat_map(|h| fl_connections(&h.name, &h.ns))
        .collect();
    let traffic = watched
        .traffic_senders
        .iter()
        .filter_map(|h| plan.host(h))
        .flat_map(|h| traffic_connections(&h.name, &h.ns))
        .collect();
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let t_s = t0.elapsed().as_secs_f64();
    let unix_s = unix();
    let links = link_bytes(plan);
    Sample {
        t_s,
        unix_s,
        unix_end_s: unix(),
        links,
        tcp,
        traffic,
    }
}

/// The hosts whose TCP connections a [`Sampler`] samples.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// Aggregators: their FL server connections.
    pub fl_hosts: Vec<String>,
    /// Background-traffic senders: their flows' connections.
    pub traffic_senders: Vec<String>,
}

/// The sampling thread; [`Sampler::stop`] ends it and hands the samples over.
pub struct Sampler {
    origin: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Sample>>>,
}

impl Sampler {
    /// Starts sampling `plan`'s links and the connections of the hosts
    /// `watched` names.
    pub fn start(plan: NetPlan, watched: Watched) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let origin = Instant::now();
        let thread = std::thread::Builder::new()
            .name("netns sampler".into())
            .spawn(move || {
                let t0 = origin;
                let mut samples = std::collections::VecDeque::new();
                loop {
                    let next = Instant::now() + INTERVAL;
                    if samples.len() == MAX_SAMPLES {
                        samples.pop_front();
                    }
                    samples.push_back(take_sample(&plan, &watched, t0));
                    while !flag.load(Ordering::Relaxed) && Instant::now() < next {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if flag.load(Ordering::Relaxed) {
                        // A last sample once stopped, so that the counters
                        // cover everything up to the end of the run.
                        samples.push_back(take_sample(&plan, &watched, t0));
                        break;
                    }
                }
                Vec::from(samples)
            })
            .ok();
        Sampler {
            origin,
            stop,
            thread,
        }
    }

    /// The instant the samples' `t_s` count from.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Stops sampling and returns the samples, oldest first.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_json_counters_and_skips_odd_entries() {
        let json = r#"[{"ifname":"lo","stats64":{"rx":{"bytes":5},"tx":{"bytes":7}}},
            {"ifname":"s1p1","stats64":{"rx":{"bytes":1000},"tx":{"bytes":2000}}},
            {"ifname":"odd"}]"#;
        let c = parse_counters(json);
        assert_eq!(c["s1p1"], (1000, 2000));
        assert_eq!(c.len(), 2);
        assert!(parse_counters("not json").is_empty());
    }

    #[test]
    fn each_aggregator_and_peer_gets_its_path_s_configured_rtt_once() {
        let topology = crate::generate(&crate::GenOptions {
            cohorts: vec![2],
            ..crate::GenOptions::default()
        })
        .unwrap();
        let plan = NetPlan::new(&topology, super::super::RunNames::new(9), false).unwrap();
        let fed = plan.hosts.iter().find(|h| h.name == "fed.1").unwrap();
        let client = plan.hosts.iter().find(|h| h.name == "fc.10").unwrap();
        let conn = |peer: String| TcpConn {
            host: "fed.1".into(),
            local: format!("{}:6000", fed.address),
            peer,
            rtt_ms: 50.0,
            cwnd: 10,
        };
        let sample = Sample {
            t_s: 1.0,
            unix_s: 0.0,
            unix_end_s: 0.0,
            links: Vec::new(),
            tcp: vec![
                conn(format!("{}:41000", client.address)),
                conn(format!("{}:41001", client.address)),
                conn("192.0.2.1:5555".into()),
            ],
            traffic: Vec::new(),
        };
        let paths = configured_rtts(&plan, &[sample.clone(), sample]);
        assert_eq!(
            paths,
            [PathRtt {
                host: "fed.1".into(),
                peer: client.address.to_string(),
                rtt_ms: 48.0,
            }],
            "one path, both satellite hops both ways; the unknown peer left out"
        );
        assert_eq!(peer_address("10.0.1.10:41136"), "10.0.1.10");
        assert_eq!(peer_address("10.0.1.10"), "10.0.1.10");
    }

    #[test]
    fn reads_ss_rtt_and_cwnd() {
        let text = "0      0      10.0.0.11:6000 10.0.1.10:40000\n\t cubic wscale:7,7 rto:252 rtt:48.6/0.3 ato:40 mss:1448 cwnd:23 bytes_received:100\n\
                    0 0 10.0.0.11:6000 10.0.1.11:40001\n\t cubic rto:200 mss:1448\n\
                    garbage\n\t rtt:1/1 cwnd:2\n";
        let c = parse_ss("fed.1", text);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].peer, "10.0.1.10:40000");
        assert_eq!(c[0].local, "10.0.0.11:6000");
        assert_eq!(c[0].rtt_ms, 48.6);
        assert_eq!(c[0].cwnd, 23);
    }
}
