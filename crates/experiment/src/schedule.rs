//! Link schedules: a scenario's `network_schedule`, changes to links at
//! set times of a run (the satellite link drops to 20 Mbit/s at t = 30 s,
//! a 2 s outage for a handover), checked against the topology, run by a
//! thread beside the intents, and recorded as they were applied.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use testbed::Topology;
use testbed::netns::{LinkChange, LinkControl};

/// Most changes one schedule may hold.
pub const MAX_CHANGES: usize = 256;
/// Longest outage, seconds.
pub const MAX_OUTAGE_S: f64 = 3600.0;

/// Which links a change applies to: `satellite` (the satellite hops:
/// links between two switches with a delay) or pairs of ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LinkSet {
    /// A named class of links: `satellite`.
    Named(String),
    /// Links by their two ends, e.g. `[[aggsw, satsw]]`.
    Pairs(Vec<[String; 2]>),
}

/// One change of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledChange {
    /// Seconds after the first intent is sent.
    pub at_s: f64,
    /// The links it changes.
    pub links: LinkSet,
    /// New bandwidth, Mbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbit: Option<f64>,
    /// New one-way delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// New jitter, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    /// New loss, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    /// The links go down for this many seconds, then come back with their
    /// figures (given alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_s: Option<f64>,
}

impl ScheduledChange {
    /// The change of figures it makes (none for an outage).
    fn change(&self) -> LinkChange {
        LinkChange {
            bandwidth_mbit: self.bandwidth_mbit,
            delay_ms: self.delay_ms,
            jitter_ms: self.jitter_ms,
            loss_pct: self.loss_pct,
            up: None,
        }
    }

    /// Whether it changes delay, jitter, loss or state (so its links need
    /// a delay line or netem from the start).
    fn impairs(&self) -> bool {
        self.outage_s.is_some() || self.change().impairs()
    }
}

/// A change as the run applied it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedChange {
    /// When it was due, seconds after the first intent was sent.
    pub at_s: f64,
    /// When it was applied on the network measurements' clock (the x axis
    /// of the report's network charts), seconds.
    pub t_s: f64,
    /// The links, `a - b`.
    pub links: Vec<String>,
    /// What changed, in words (`bandwidth 20 Mbit/s`, `down`, `up`).
    pub what: String,
    /// Why it could not be applied, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The satellite hops of `topology`: links between two switches that have
/// a delay (in the generated topology aggsw - satsw and satsw - edgesw).
pub fn satellite_links(topology: &Topology) -> Vec<usize> {
    let switch = |name: &str| topology.switches.iter().any(|s| s.name == name);
    topology
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| switch(&l.a) && switch(&l.b) && l.delay_ms.is_some_and(|d| d > 0.0))
        .map(|(i, _)| i)
        .collect()
}

/// The indices of the links `set` names in `topology`.
fn resolve(set: &LinkSet, topology: &Topology) -> Result<Vec<usize>, String> {
    match set {
        LinkSet::Named(name) if name == "satellite" => {
            let links = satellite_links(topology);
            if links.is_empty() {
                return Err("`satellite`: the topology has no satellite hop (a link between two switches with a delay)".to_owned());
            }
            Ok(links)
        }
        LinkSet::Named(name) => Err(format!(
            "{name:?} is not a class of links; give `satellite` or a list of ends such as [[aggsw, satsw]]"
        )),
        LinkSet::Pairs(pairs) if pairs.is_empty() => {
            Err("name at least one link, e.g. [[aggsw, satsw]], or `satellite`".to_owned())
        }
        LinkSet::Pairs(pairs) => pairs
            .iter()
            .map(|[a, b]| {
                topology
                    .links
                    .iter()
                    .position(|l| (l.a == *a && l.b == *b) || (l.a == *b && l.b == *a))
                    .ok_or_else(|| format!("no link joins {a:?} and {b:?} in the topology"))
            })
            .collect(),
    }
}

/// Checks `schedule` against `topology`; the problem names the field.
pub fn check(schedule: &[ScheduledChange], topology: &Topology) -> Result<(), String> {
    if schedule.len() > MAX_CHANGES {
        return Err(format!(
            "network_schedule: {} changes, more than the limit of {MAX_CHANGES}",
            schedule.len()
        ));
    }
    for (i, c) in schedule.iter().enumerate() {
        let field = |f: &str| format!("network_schedule[{i}].{f}");
        if !(c.at_s.is_finite() && (0.0..=crate::scenario::MAX_TIMEOUT_S).contains(&c.at_s)) {
            return Err(format!(
                "{}: must be seconds in [0, {}], got {}",
                field("at_s"),
                crate::scenario::MAX_TIMEOUT_S,
                c.at_s
            ));
        }
        resolve(&c.links, topology).map_err(|e| format!("{}: {e}", field("links")))?;
        let figures = [
            ("bandwidth_mbit", c.bandwidth_mbit, 0.0, 100_000.0, false),
            ("delay_ms", c.delay_ms, 0.0, 10_000.0, true),
            ("jitter_ms", c.jitter_ms, 0.0, 10_000.0, true),
            ("loss_pct", c.loss_pct, 0.0, 100.0, true),
            ("outage_s", c.outage_s, 0.0, MAX_OUTAGE_S, false),
        ];
        for (name, value, lo, hi, zero_ok) in figures {
            if let Some(v) = value {
                let above = if zero_ok { v >= lo } else { v > lo };
                if !(v.is_finite() && above && v <= hi) {
                    let open = if zero_ok { "[" } else { "(" };
                    return Err(format!(
                        "{}: must be in {open}{lo}, {hi}], got {v}",
                        field(name)
                    ));
                }
            }
        }
        let changes = c.change();
        if c.outage_s.is_some() && changes != LinkChange::default() {
            return Err(format!(
                "network_schedule[{i}]: give outage_s alone (an outage restores the links' figures); put other changes in their own entry"
            ));
        }
        if c.outage_s.is_none() && changes == LinkChange::default() {
            return Err(format!(
                "network_schedule[{i}]: changes nothing; give bandwidth_mbit, delay_ms, jitter_ms, loss_pct or outage_s"
            ));
        }
    }
    Ok(())
}

/// The links whose delay, loss or state the schedule changes (they need a
/// delay line or netem from the start).
pub fn changing_links(schedule: &[ScheduledChange], topology: &Topology) -> BTreeSet<usize> {
    schedule
        .iter()
        .filter(|c| c.impairs())
        .filter_map(|c| resolve(&c.links, topology).ok())
        .flatten()
        .collect()
}

/// One step the thread takes: at `at_s`, `change` on `links`.
#[derive(Debug, Clone)]
struct Step {
    at_s: f64,
    links: Vec<usize>,
    change: LinkChange,
    what: String,
}

/// The schedule as steps in time order: an outage is a step down and a step
/// up.
fn steps(schedule: &[ScheduledChange], topology: &Topology) -> Vec<Step> {
    let mut steps = Vec::new();
    for c in schedule {
        let Ok(links) = resolve(&c.links, topology) else {
            continue;
        };
        match c.outage_s {
            Some(outage) => {
                for (at_s, up) in [(c.at_s, false), (c.at_s + outage, true)] {
                    steps.push(Step {
                        at_s,
                        links: links.clone(),
                        change: LinkChange {
                            up: Some(up),
                            ..LinkChange::default()
                        },
                        what: if up { "up" } else { "down" }.to_owned(),
                    });
                }
            }
            None => steps.push(Step {
                at_s: c.at_s,
                links,
                change: c.change(),
                what: describe(&c.change()),
            }),
        }
    }
    steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    steps
}

/// A change in words: `bandwidth 20 Mbit/s, delay 40 ms`.
fn describe(c: &LinkChange) -> String {
    let parts: Vec<String> = [
        c.bandwidth_mbit.map(|v| format!("bandwidth {v} Mbit/s")),
        c.delay_ms.map(|v| format!("delay {v} ms")),
        c.jitter_ms.map(|v| format!("jitter {v} ms")),
        c.loss_pct.map(|v| format!("loss {v} %")),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts.join(", ")
}

/// A schedule running beside the intents; [`Running::stop`] ends it and
/// hands over what it applied.
pub struct Running {
    stop: Arc<AtomicBool>,
    applied: Arc<Mutex<Vec<AppliedChange>>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Starts applying `schedule` with `control`; its times count from now
    /// (the first intent is about to be sent), and what it records counts
    /// from `clock` too (the network measurements' origin).
    pub fn start(
        schedule: &[ScheduledChange],
        topology: &Topology,
        control: LinkControl,
        clock: Instant,
    ) -> Running {
        let steps = steps(schedule, topology);
        let stop = Arc::new(AtomicBool::new(false));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let labels: Vec<String> = topology
            .links
            .iter()
            .map(|l| format!("{} - {}", l.a, l.b))
            .collect();
        let (flag, record) = (stop.clone(), applied.clone());
        let start = Instant::now();
        let thread = std::thread::Builder::new()
            .name("link schedule".into())
            .spawn(move || {
                for step in steps {
                    let due = start + Duration::from_secs_f64(step.at_s);
                    while Instant::now() < due {
                        if flag.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
                    }
                    let error = step
                        .links
                        .iter()
                        .filter_map(|l| control.apply(*l, &step.change).err())
                        .map(|e| e.to_string())
                        .next();
                    if let Some(e) = &error {
                        eprintln!("link schedule: {e}");
                    }
                    let entry = AppliedChange {
                        at_s: step.at_s,
                        t_s: clock.elapsed().as_secs_f64(),
                        links: step.links.iter().map(|l| labels[*l].clone()).collect(),
                        what: step.what,
                        error,
                    };
                    record
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(entry);
                }
            })
            .ok();
        Running {
            stop,
            applied,
            thread,
        }
    }

    /// Stops the schedule (changes not yet due are not applied) and returns
    /// what it applied, in order.
    pub fn stop(mut self) -> Vec<AppliedChange> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.applied.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        testbed::generate(&testbed::GenOptions {
            cohorts: vec![2],
            ..testbed::GenOptions::default()
        })
        .unwrap()
    }

    fn parse(yaml: &str) -> Vec<ScheduledChange> {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn satellite_and_pairs_name_links_and_an_outage_is_down_then_up() {
        let t = topology();
        let s = parse(
            "- { at_s: 30, links: satellite, bandwidth_mbit: 20 }\n\
             - { at_s: 10, links: [[satsw, aggsw]], outage_s: 2 }\n",
        );
        check(&s, &t).unwrap();
        let sat = satellite_links(&t);
        assert_eq!(sat.len(), 2);
        let steps = steps(&s, &t);
        let summary: Vec<(f64, &str, usize)> = steps
            .iter()
            .map(|s| (s.at_s, s.what.as_str(), s.links.len()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (10.0, "down", 1),
                (12.0, "up", 1),
                (30.0, "bandwidth 20 Mbit/s", 2)
            ]
        );
        assert_eq!(steps[0].links, vec![sat[0]]);
        // Only the outage's link needs an impairment from the start.
        assert_eq!(changing_links(&s, &t), [sat[0]].into_iter().collect());
    }

    #[test]
    fn every_problem_names_its_field() {
        let t = topology();
        for (yaml, expected) in [
            (
                "- { at_s: -1, links: satellite, bandwidth_mbit: 20 }",
                "network_schedule[0].at_s: must be seconds in [0, ",
            ),
            (
                "- { at_s: 1, links: wifi, bandwidth_mbit: 20 }",
                "network_schedule[0].links: \"wifi\" is not a class of links",
            ),
            (
                "- { at_s: 1, links: [[a, b]], bandwidth_mbit: 20 }",
                "network_schedule[0].links: no link joins \"a\" and \"b\"",
            ),
            (
                "- { at_s: 1, links: [], bandwidth_mbit: 20 }",
                "network_schedule[0].links: name at least one link",
            ),
            (
                "- { at_s: 1, links: satellite, bandwidth_mbit: 0 }",
                "network_schedule[0].bandwidth_mbit: must be in (0, 100000], got 0",
            ),
            (
                "- { at_s: 1, links: satellite, loss_pct: 101 }",
                "network_schedule[0].loss_pct: must be in [0, 100], got 101",
            ),
            (
                "- { at_s: 1, links: satellite, outage_s: 2, loss_pct: 1 }",
                "network_schedule[0]: give outage_s alone",
            ),
            (
                "- { at_s: 1, links: satellite }",
                "network_schedule[0]: changes nothing",
            ),
        ] {
            let e = check(&parse(yaml), &t).unwrap_err();
            assert!(e.starts_with(expected), "{yaml}: {e}");
        }
    }
}
