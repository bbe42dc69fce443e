//! The network side of a netns run's results: throughput of every link in
//! each direction over time, TCP RTT and congestion window of the FL
//! connections, and the delay lines' counters; kept in `summary.json`
//! (`network`) and written as `links.csv` and `tcp.csv`.

use crate::summary::ResultsError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use testbed::netns::measure::{Measurements, Sample};

/// One link's throughput over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkSeries {
    /// Index in the topology's links.
    pub link: usize,
    /// End a.
    pub a: String,
    /// End b.
    pub b: String,
    /// `(t_s, Mbit/s a->b, Mbit/s b->a)`, one point per sampling interval.
    pub mbit: Vec<(f64, f64, f64)>,
    /// Bytes a->b over the run.
    pub bytes_a_to_b: u64,
    /// Bytes b->a over the run.
    pub bytes_b_to_a: u64,
    /// Highest rate seen in either direction, Mbit/s.
    pub peak_mbit: f64,
}

/// One FL connection's TCP statistics over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpSeries {
    /// The aggregator host.
    pub host: String,
    /// The client's address:port.
    pub peer: String,
    /// `(t_s, rtt_ms, cwnd)`.
    pub points: Vec<(f64, f64, u32)>,
    /// Median RTT, ms.
    pub median_rtt_ms: f64,
    /// Twice the configured one-way delays on the path, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_rtt_ms: Option<f64>,
}

/// The FL connections' RTT against their paths' configured RTT, over
/// every sample of every connection whose path has a delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttFidelity {
    /// The least and the greatest configured path RTT, ms.
    pub configured_ms: (f64, f64),
    /// The least RTT sampled, ms.
    pub min_ms: f64,
    /// The median RTT, ms.
    pub median_ms: f64,
    /// The 99th percentile, ms.
    pub p99_ms: f64,
    /// The median of each sample's RTT over its path's configured RTT.
    pub median_ratio: f64,
    /// The 99th percentile of those ratios.
    pub p99_ratio: f64,
    /// Samples.
    pub samples: usize,
}

impl RttFidelity {
    /// Most the median may exceed the configured RTT, as a ratio.
    pub const MEDIAN_GOAL: f64 = 1.10;
    /// Most the 99th percentile may exceed it.
    pub const P99_GOAL: f64 = 1.25;

    /// Whether the median and the 99th percentile are within
    /// [`Self::MEDIAN_GOAL`] and [`Self::P99_GOAL`] of the configured RTT.
    pub fn met(&self) -> bool {
        self.median_ratio <= Self::MEDIAN_GOAL && self.p99_ratio <= Self::P99_GOAL
    }
}

/// How promptly the kernel ran a real-time thread during the run: the
/// latency probe beside the delay lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulingSummary {
    /// Timer wakeups of the probe (one a millisecond).
    pub wakeups: u64,
    /// Wakeups more than 1 ms late.
    pub late: u64,
    /// The latest wakeup, ms after its timer.
    pub max_late_ms: f64,
    /// Whether the probe ran at real-time priority.
    pub realtime: bool,
    /// The kernel's preemption model (`none`, `voluntary`, `full`, ...).
    pub preemption: Option<String>,
}

/// A delay line's counters at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayLineSummary {
    /// Index of its link.
    pub link: usize,
    /// The link's end a.
    pub a: String,
    /// The link's end b.
    pub b: String,
    /// Frames forwarded a->b and b->a.
    pub frames: (u64, u64),
    /// Frames dropped by the loss draw, a->b and b->a.
    pub lost: (u64, u64),
    /// Frames dropped because the queue was full, a->b and b->a: the
    /// modelled router buffer.
    pub queue_drops: (u64, u64),
    /// The link's configured one-way delay, ms.
    #[serde(default)]
    pub delay_ms: f64,
    /// Frames that left more than 1 ms after they were due, a->b and b->a:
    /// the line did not get the CPU in time.
    #[serde(default)]
    pub late: (u64, u64),
    /// The most any frame left after it was due, ms.
    #[serde(default)]
    pub max_late_ms: f64,
    /// Whether the line's threads ran at real-time priority.
    #[serde(default)]
    pub realtime: bool,
    /// Frames dropped while the link was down (the link schedule's
    /// outages), a->b and b->a.
    #[serde(default)]
    pub outage: (u64, u64),
}

impl DelayLineSummary {
    /// The summary of the delay line on link number `link` (`topology`,
    /// when the topology has it) from its final counters.
    fn of(
        link: usize,
        s: &testbed::netns::delayline::LineStats,
        topology: Option<&testbed::Link>,
    ) -> Self {
        let (a, b) = topology.map_or_else(Default::default, |l| (l.a.clone(), l.b.clone()));
        DelayLineSummary {
            link,
            a,
            b,
            frames: (s.a_to_b.frames, s.b_to_a.frames),
            lost: (s.a_to_b.lost, s.b_to_a.lost),
            queue_drops: (s.a_to_b.queue_drops, s.b_to_a.queue_drops),
            delay_ms: topology.and_then(|l| l.delay_ms).unwrap_or(0.0),
            late: (s.a_to_b.late, s.b_to_a.late),
            max_late_ms: s.a_to_b.max_late_us.max(s.b_to_a.max_late_us) as f64 / 1000.0,
            realtime: s.realtime,
            outage: (s.a_to_b.outage, s.b_to_a.outage),
        }
    }

    /// Whether the line delayed frames by more than its link's delay, or
    /// dropped them, because it did not get the CPU in time.
    pub fn missed(&self) -> bool {
        self.late.0 + self.late.1 > 0
    }
}

/// One background-traffic flow as iperf3 reported it each second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficSummary {
    /// Sending host.
    pub from: String,
    /// Receiving host.
    pub to: String,
    /// Rate asked for, Mbit/s.
    pub rate_mbit: f64,
    /// `(t_s, Mbit/s)` per one-second interval, from the run's start of traffic.
    pub points: Vec<(f64, f64)>,
    /// Mean over the intervals, Mbit/s.
    pub mean_mbit: f64,
    /// `(t_s, ms)`: the flow's TCP RTT as its sender's kernel reports it,
    /// once a second on the network charts' clock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtt: Vec<(f64, f64)>,
    /// Median RTT while the flow ran before the first intent was sent, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_alone_ms: Option<f64>,
    /// Median RTT from the first intent on, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_with_fl_ms: Option<f64>,
}

impl TrafficSummary {
    /// Adds the flow's RTT from `samples`: its sender's connection to
    /// `port` (the data connection, the one with the largest congestion
    /// window), split at `fl_start_s` into the medians alone and with FL.
    pub fn with_rtt(mut self, samples: &[Sample], port: u16, fl_start_s: Option<f64>) -> Self {
        let suffix = format!(":{port}");
        self.rtt = samples
            .iter()
            .filter_map(|s| {
                let conn = s
                    .traffic
                    .iter()
                    .filter(|c| c.host == self.from && c.peer.ends_with(&suffix))
                    .max_by_key(|c| c.cwnd)?;
                Some((s.t_s, conn.rtt_ms))
            })
            .collect();
        if let Some(start) = fl_start_s {
            let (alone, with): (Vec<_>, Vec<_>) = self.rtt.iter().partition(|(t, _)| *t < start);
            let medians = |v: Vec<&(f64, f64)>| {
                (!v.is_empty()).then(|| median(v.iter().map(|p| p.1).collect()))
            };
            self.rtt_alone_ms = medians(alone);
            self.rtt_with_fl_ms = medians(with);
        }
        self
    }

    /// The flow `from -> to` at `rate_mbit` from iperf3's client output
    /// (`-i 1 -f m`): one point per interval line; the final summary lines
    /// (`sender`, `receiver`) are left out.
    pub fn from_iperf3(from: &str, to: &str, rate_mbit: f64, output: &str) -> TrafficSummary {
        let points: Vec<(f64, f64)> = output
            .lines()
            .filter(|l| !l.contains("sender") && !l.contains("receiver"))
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let unit = words.iter().position(|w| *w == "Mbits/sec")?;
                let mbit = words.get(unit.checked_sub(1)?)?.parse::<f64>().ok()?;
                let end = words
                    .iter()
                    .find_map(|w| w.split_once('-').and_then(|(_, e)| e.parse::<f64>().ok()))?;
                Some((end, mbit))
            })
            .collect();
        let mean_mbit = if points.is_empty() {
            0.0
        } else {
            points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64
        };
        TrafficSummary {
            from: from.to_owned(),
            to: to.to_owned(),
            rate_mbit,
            points,
            mean_mbit,
            rtt: Vec::new(),
            rtt_alone_ms: None,
            rtt_with_fl_ms: None,
        }
    }
}

/// What the netns backend measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSummary {
    /// How delay and loss were made: `netem` or `user-space delay line`.
    pub impairment: String,
    /// Links that carried traffic, busiest first.
    pub links: Vec<LinkSeries>,
    /// FL connections seen on the aggregators.
    pub tcp: Vec<TcpSeries>,
    /// The delay lines.
    pub delay_lines: Vec<DelayLineSummary>,
    /// Background traffic flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub background: Vec<TrafficSummary>,
    /// The link schedule's changes as applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::schedule::AppliedChange>,
    /// When the first intent was sent, on the network charts' clock, s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fl_start_s: Option<f64>,
    /// The kernel's scheduling latency (runs with delay lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSummary>,
}

/// Bytes over `links` (indices; both directions, summed over the links)
/// from `from_unix_s` to `to_unix_s`, by the link counters: from the last
/// sample whose read ended at or before `from_unix_s` (else the first) to
/// the first whose read began at or after `to_unix_s` (else the last), so
/// that no byte of the window is missed while the counters are read (which
/// takes a while on a loaded machine). `None` without samples.
pub fn bytes_between(
    m: &Measurements,
    links: &[usize],
    from_unix_s: f64,
    to_unix_s: f64,
) -> Option<u64> {
    let total = |s: &testbed::netns::measure::Sample| -> u64 {
        s.links
            .iter()
            .filter(|l| links.contains(&l.link))
            .map(|l| l.a_to_b + l.b_to_a)
            .sum()
    };
    let first = m
        .samples
        .iter()
        .rev()
        .find(|s| s.unix_end_s.max(s.unix_s) <= from_unix_s)
        .or(m.samples.first())?;
    let last = m
        .samples
        .iter()
        .find(|s| s.unix_s >= to_unix_s)
        .or(m.samples.last())?;
    Some(total(last).saturating_sub(total(first)))
}

/// The median; of an even count, the mean of the two middle values (a
/// connection sampled twice, once mid-burst, is not its burst's RTT).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// The configured RTT of the path between aggregator `host` and `peer`
/// (`address:port`), when the measurements have it.
fn configured_rtt_ms(m: &Measurements, host: &str, peer: &str) -> Option<f64> {
    let address = testbed::netns::measure::peer_address(peer);
    m.paths
        .iter()
        .find(|p| p.host == host && p.peer == address)
        .map(|p| p.rtt_ms)
}

/// The `q` quantile of `v` (nearest rank); 0 for none.
fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

impl NetworkSummary {
    /// Builds the summary from the samples; `links` names the topology's
    /// links' ends.
    // Over 80 lines: one pass over the samples builds every series, so that the samples are read once.
    pub fn new(m: &Measurements, topology_links: &[testbed::Link]) -> NetworkSummary {
        let mut series: BTreeMap<usize, LinkSeries> = BTreeMap::new();
        for pair in m.samples.windows(2) {
            let dt = pair[1].t_s - pair[0].t_s;
            if dt <= 0.0 {
                continue;
            }
            for now in &pair[1].links {
                let Some(before) = pair[0].links.iter().find(|l| l.link == now.link) else {
                    continue;
                };
                let Some(topo) = topology_links.get(now.link) else {
                    continue;
                };
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 * 8.0 / dt / 1e6;
                let s = series.entry(now.link).or_insert_with(|| LinkSeries {
                    link: now.link,
                    a: topo.a.clone(),
                    b: topo.b.clone(),
                    mbit: Vec::new(),
                    bytes_a_to_b: 0,
                    bytes_b_to_a: 0,
                    peak_mbit: 0.0,
                });
                let (ab, ba) = (
                    rate(now.a_to_b, before.a_to_b),
                    rate(now.b_to_a, before.b_to_a),
                );
                s.mbit.push((pair[1].t_s, ab, ba));
                s.peak_mbit = s.peak_mbit.max(ab).max(ba);
            }
        }
        if let (Some(first), Some(last)) = (m.samples.first(), m.samples.last()) {
            for l in &last.links {
                if let (Some(s), Some(f)) = (
                    series.get_mut(&l.link),
                    first.links.iter().find(|f| f.link == l.link),
                ) {
                    s.bytes_a_to_b = l.a_to_b.saturating_sub(f.a_to_b);
                    s.bytes_b_to_a = l.b_to_a.saturating_sub(f.b_to_a);
                }
            }
        }
        let mut links: Vec<LinkSeries> = series
            .into_values()
            .filter(|s| s.bytes_a_to_b + s.bytes_b_to_a > 0)
            .collect();
        links.sort_by(|x, y| {
            (y.bytes_a_to_b + y.bytes_b_to_a).cmp(&(x.bytes_a_to_b + x.bytes_b_to_a))
        });
        type Points = Vec<(f64, f64, u32)>;
        let mut tcp: BTreeMap<(String, String), Points> = BTreeMap::new();
        for s in &m.samples {
            for c in &s.tcp {
                tcp.entry((c.host.clone(), c.peer.clone()))
                    .or_default()
                    .push((s.t_s, c.rtt_ms, c.cwnd));
            }
        }
        let tcp = tcp
            .into_iter()
            .map(|((host, peer), points)| TcpSeries {
                median_rtt_ms: median(points.iter().map(|p| p.1).collect()),
                configured_rtt_ms: configured_rtt_ms(m, &host, &peer),
                host,
                peer,
                points,
            })
            .collect();
        let delay_lines = m
            .delay_lines
            .iter()
            .map(|(link, s)| DelayLineSummary::of(*link, s, topology_links.get(*link)))
            .collect();
        NetworkSummary {
            impairment: m.impairment.clone(),
            links,
            tcp,
            delay_lines,
            background: Vec::new(),
            changes: Vec::new(),
            fl_start_s: None,
            scheduling: m.probe.map(|p| SchedulingSummary {
                wakeups: p.wakeups,
                late: p.late,
                max_late_ms: p.max_late_us as f64 / 1000.0,
                realtime: p.realtime,
                preemption: m.preemption.clone(),
            }),
        }
    }

    /// The FL connections' RTT against their paths' configured RTT; `None`
    /// without samples on a path with a configured delay.
    pub fn rtt_fidelity(&self) -> Option<RttFidelity> {
        let mut rtts = Vec::new();
        let mut ratios = Vec::new();
        let mut configured = (f64::INFINITY, 0.0_f64);
        for c in &self.tcp {
            let Some(path) = c.configured_rtt_ms.filter(|r| *r > 0.0) else {
                continue;
            };
            configured = (configured.0.min(path), configured.1.max(path));
            for p in &c.points {
                rtts.push(p.1);
                ratios.push(p.1 / path);
            }
        }
        if rtts.is_empty() {
            return None;
        }
        let samples = rtts.len();
        Some(RttFidelity {
            configured_ms: configured,
            min_ms: rtts.iter().copied().fold(f64::INFINITY, f64::min),
            median_ms: median(rtts.clone()),
            p99_ms: percentile(rtts, 0.99),
            median_ratio: median(ratios.clone()),
            p99_ratio: percentile(ratios, 0.99),
            samples,
        })
    }

    /// The median RTT of every FL connection of aggregator `host`, ms.
    pub fn median_rtt_ms(&self, host: &str) -> Option<f64> {
        let all: Vec<f64> = self
            .tcp
            .iter()
            .filter(|t| t.host == host)
            .flat_map(|t| t.points.iter().map(|p| p.1))
            .collect();
        (!all.is_empty()).then(|| median(all))
    }

    /// Writes `links.csv` (t_s, link, a, b, mbit_a_to_b, mbit_b_to_a) and
    /// `tcp.csv` (t_s, host, peer, rtt_ms, cwnd) into `dir`.
    pub fn write_csv(&self, dir: &Path) -> Result<(), ResultsError> {
        let mut links = String::from("t_s,link,a,b,mbit_a_to_b,mbit_b_to_a\n");
        for l in &self.links {
            for (t, ab, ba) in &l.mbit {
                let _ = writeln!(links, "{t:.3},{},{},{},{ab:.3},{ba:.3}", l.link, l.a, l.b);
            }
        }
        let mut tcp = String::from("t_s,host,peer,rtt_ms,cwnd\n");
        for c in &self.tcp {
            for (t, rtt, cwnd) in &c.points {
                let _ = writeln!(tcp, "{t:.3},{},{},{rtt:.3},{cwnd}", c.host, c.peer);
            }
        }
        for (name, text) in [("links.csv", links), ("tcp.csv", tcp)] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| ResultsError {
                path: path.display().to_string(),
                problem: e.to_string(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testbed::netns::measure::{LinkBytes, Sample, TcpConn};

    fn link(a: &str, b: &str) -> testbed::Link {
        testbed::Link {
            a: a.into(),
            b: b.into(),
            ..testbed::Link::default()
        }
    }

    #[test]
    fn rates_come_from_counter_differences_and_idle_links_are_left_out() {
        let sample = |t_s: f64, ab: u64, conn_rtt: f64| Sample {
            t_s,
            unix_s: 1000.0 + t_s,
            unix_end_s: 1000.0 + t_s,
            links: vec![
                LinkBytes {
                    link: 0,
                    a_to_b: ab,
                    b_to_a: ab / 2,
                },
                LinkBytes {
                    link: 1,
                    a_to_b: 7,
                    b_to_a: 7,
                },
            ],
            tcp: vec![TcpConn {
                host: "fed.1".into(),
                local: "10.0.0.11:6000".into(),
                peer: "10.0.1.10:5555".into(),
                rtt_ms: conn_rtt,
                cwnd: 10,
            }],
            traffic: Vec::new(),
        };
        let m = Measurements {
            impairment: "netem".into(),
            samples: vec![
                sample(0.0, 0, 48.0),
                sample(1.0, 1_250_000, 50.0),
                sample(2.0, 2_500_000, 49.0),
            ],
            delay_lines: Vec::new(),
            probe: Some(testbed::netns::latency::ProbeStats {
                wakeups: 3000,
                late: 2,
                max_late_us: 3900,
                realtime: true,
            }),
            preemption: Some("none".into()),
            paths: vec![testbed::netns::measure::PathRtt {
                host: "fed.1".into(),
                peer: "10.0.1.10".into(),
                rtt_ms: 40.0,
            }],
        };
        let n = NetworkSummary::new(&m, &[link("fc.10", "campus1"), link("x", "y")]);
        assert_eq!(
            n.tcp[0].configured_rtt_ms,
            Some(40.0),
            "by the peer's address"
        );
        let s = n.scheduling.as_ref().unwrap();
        assert_eq!((s.wakeups, s.late, s.max_late_ms), (3000, 2, 3.9));
        assert_eq!(s.preemption.as_deref(), Some("none"));
        let f = n.rtt_fidelity().unwrap();
        assert_eq!((f.min_ms, f.median_ms, f.p99_ms), (48.0, 49.0, 50.0));
        assert_eq!((f.median_ratio, f.p99_ratio), (49.0 / 40.0, 50.0 / 40.0));
        assert_eq!((f.configured_ms, f.samples), ((40.0, 40.0), 3));
        assert!(!f.met(), "22 % over the configured RTT at the median");
        assert_eq!(n.links.len(), 1, "the idle link is left out");
        let l = &n.links[0];
        assert_eq!((l.a.as_str(), l.b.as_str()), ("fc.10", "campus1"));
        assert_eq!(l.mbit, vec![(1.0, 10.0, 5.0), (2.0, 10.0, 5.0)]);
        assert_eq!((l.bytes_a_to_b, l.bytes_b_to_a), (2_500_000, 1_250_000));
        assert_eq!(l.peak_mbit, 10.0);
        assert_eq!(n.tcp.len(), 1);
        assert_eq!(n.tcp[0].median_rtt_ms, 49.0);
        assert_eq!(n.median_rtt_ms("fed.1"), Some(49.0));
        assert_eq!(n.median_rtt_ms("fed.2"), None);
        // Both directions of link 0 from t=1 to t=2, and the whole run.
        assert_eq!(bytes_between(&m, &[0], 1001.0, 1002.0), Some(1_875_000));
        assert_eq!(bytes_between(&m, &[0, 1], 0.0, 5000.0), Some(3_750_000));
        assert_eq!(bytes_between(&m, &[1], 1000.5, 1001.5), Some(0));
        // A read that was still going on when the window opened may hold
        // bytes of the window: the sample before it is the start.
        let mut slow = m.clone();
        slow.samples[1].unix_end_s = 1001.4;
        assert_eq!(bytes_between(&slow, &[0], 1001.2, 1002.0), Some(3_750_000));
        assert_eq!(bytes_between(&m, &[0], 1001.2, 1002.0), Some(1_875_000));
        assert_eq!(median(vec![74.8, 48.6]), 61.7);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(hundred.clone(), 0.99), 99.0);
        assert_eq!(percentile(hundred, 0.5), 50.0);
        assert_eq!(percentile(vec![7.0], 0.99), 7.0);
        let mut unconfigured = n.clone();
        unconfigured.tcp[0].configured_rtt_ms = None;
        assert_eq!(unconfigured.rtt_fidelity(), None);
        let none = Measurements::default();
        assert_eq!(bytes_between(&none, &[0], 0.0, 1.0), None);
    }

    #[test]
    fn a_background_flow_keeps_its_data_connection_rtt_split_at_the_first_intent() {
        let conn = |peer: &str, rtt_ms: f64, cwnd: u32| TcpConn {
            host: "app.1".into(),
            local: "10.0.1.2:40000".into(),
            peer: peer.into(),
            rtt_ms,
            cwnd,
        };
        let sample = |t_s: f64, data_rtt: f64| Sample {
            t_s,
            unix_s: 0.0,
            unix_end_s: 0.0,
            links: Vec::new(),
            tcp: Vec::new(),
            traffic: vec![
                // iperf3's control connection: small window, stale RTT.
                conn("10.0.0.2:5202", 900.0, 10),
                conn("10.0.0.2:5202", data_rtt, 80),
                conn("10.0.0.2:5201", 1.0, 99),
            ],
        };
        let samples: Vec<Sample> = [
            (1.0, 50.0),
            (2.0, 52.0),
            (3.0, 51.0),
            (4.0, 120.0),
            (5.0, 140.0),
        ]
        .iter()
        .map(|(t, r)| sample(*t, *r))
        .collect();
        let flow = TrafficSummary::from_iperf3("app.1", "srv.1", 20.0, "").with_rtt(
            &samples,
            5202,
            Some(3.5),
        );
        assert_eq!(flow.rtt.len(), 5);
        assert_eq!(flow.rtt[0], (1.0, 50.0));
        assert_eq!(flow.rtt_alone_ms, Some(51.0));
        assert_eq!(flow.rtt_with_fl_ms, Some(130.0));
        let other = TrafficSummary::from_iperf3("mo.1", "srv.1", 20.0, "").with_rtt(
            &samples,
            5202,
            Some(3.5),
        );
        assert!(other.rtt.is_empty() && other.rtt_alone_ms.is_none());
    }

    #[test]
    fn iperf3_intervals_become_points() {
        let out = "Connecting to host 10.0.0.2, port 5201\n\
            [  5] local 10.0.1.2 port 1 connected to 10.0.0.2 port 5201\n\
            [ ID] Interval           Transfer     Bitrate         Retr  Cwnd\n\
            [  5]   0.00-1.00   sec  2.50 MBytes  20.9 Mbits/sec    0    123 KBytes\n\
            [  5]   1.00-2.00   sec  2.38 MBytes  19.1 Mbits/sec    0    123 KBytes\n\
            [  5]   0.00-2.00   sec  4.88 MBytes  20.0 Mbits/sec    0             sender\n\
            garbage Mbits/sec\n";
        let t = TrafficSummary::from_iperf3("app.1", "srv.1", 20.0, out);
        assert_eq!(t.points, vec![(1.0, 20.9), (2.0, 19.1)]);
        assert!((t.mean_mbit - 20.0).abs() < 1e-9);
    }
}
