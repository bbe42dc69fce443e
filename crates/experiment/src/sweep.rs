//! Sweeps: a base scenario and axes (any scenario field by path, or a
//! shorthand), run as a full grid or as listed points, each point repeated
//! with different seeds, each run in its own results directory; and the
//! measures every run yields, for `sweep.csv` and the comparison page.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Summary;
use crate::scenario::Scenario;

/// Most runs (points times repeats) one sweep may hold.
pub const MAX_RUNS: usize = 1000;

/// Shorthands for the fields researchers sweep most, and the scenario
/// paths they stand for.
pub const SHORTHANDS: [(&str, &str); 11] = [
    (
        "satellite_bandwidth_mbit",
        "topology.generate.satellite_bandwidth_mbit",
    ),
    ("satellite_delay_ms", "topology.generate.satellite_delay_ms"),
    ("satellite_loss_pct", "topology.generate.satellite_loss_pct"),
    (
        "satellite_jitter_ms",
        "topology.generate.satellite_jitter_ms",
    ),
    ("bandwidth_mbit", "topology.generate.bandwidth_mbit"),
    ("cohorts", "topology.generate.cohorts"),
    ("strategy", "intents[*].constraints.avgalgo"),
    ("aggregation", "intents[*].constraints.aggregation"),
    ("background_mbit", "background_traffic[*].rate_mbit"),
    ("fl_cpus", "topology.generate.fl_cpus"),
    ("meter_mbit", "intents[0].constraints.max_bandwidth_mbps"),
];

/// A sweep file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The base scenario, relative to the sweep file.
    pub base: PathBuf,
    /// Runs of every point, with seeds `seed`, `seed + 1`, ... (default 1).
    #[serde(default = "one")]
    pub repeats: u32,
    /// The axes: each a scenario path or a shorthand, and its values.
    #[serde(default)]
    pub axes: Vec<Axis>,
    /// Listed points (each axis's value by name) instead of the full grid.
    #[serde(default)]
    pub points: Option<Vec<BTreeMap<String, Value>>>,
}

fn one() -> u32 {
    1
}

/// One axis of a sweep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// A shorthand ([`SHORTHANDS`]) or a scenario path such as
    /// `topology.generate.satellite_delay_ms` or
    /// `intents[*].constraints.numround` (`[*]`: every element).
    pub name: String,
    /// Its values, in order.
    pub values: Vec<Value>,
}

/// One run of a sweep: a point (a value per axis) and a repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRun {
    /// The point's index, from 0.
    pub point: usize,
    /// The repeat, from 0.
    pub repeat: u32,
    /// Each axis's value at this point, in axis order.
    pub values: Vec<(String, Value)>,
    /// Where its results go, under the sweep's directory.
    pub dir: PathBuf,
}

/// A sweep that cannot run, naming the field and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct SweepError {
    /// The sweep file.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

/// A sweep read and checked: its base scenario's text and its runs.
#[derive(Debug)]
pub struct Sweep {
    /// The base scenario as a JSON value.
    pub base: Value,
    /// The base scenario's file and directory.
    pub base_file: PathBuf,
    /// Every run, point by point, repeats together.
    pub runs: Vec<SweepRun>,
    /// The axes' names.
    pub axes: Vec<String>,
}

/// The scenario path an axis name stands for.
pub fn path_of(name: &str) -> &str {
    SHORTHANDS
        .iter()
        .find(|(short, _)| *short == name)
        .map_or(name, |(_, path)| path)
}

/// One step of a path: an object key, then, for a list, `Some(Some(i))`
/// for element `i` or `Some(None)` for every element (`[*]`).
type Step = (String, Option<Option<usize>>);

/// The steps of a path.
fn steps(path: &str) -> Result<Vec<Step>, String> {
    path.split('.')
        .map(|part| {
            let (key, index) = match part.split_once('[') {
                Some((key, rest)) => {
                    let inner = rest
                        .strip_suffix(']')
                        .ok_or_else(|| format!("{part:?}: close the index with ]"))?;
                    let index = match inner {
                        "*" => None,
                        n => Some(
                            n.parse::<usize>()
                                .map_err(|_| format!("{part:?}: an index is a number or *"))?,
                        ),
                    };
                    (key, Some(index))
                }
                None => (part, None),
            };
            if key.is_empty() {
                return Err(format!("{path:?}: a step has no name"));
            }
            Ok((key.to_owned(), index))
        })
        .collect()
}

/// Sets `value` at `path` in `doc`, creating missing object keys; `[*]`
/// sets it in every element of an array.
pub fn set_path(doc: &mut Value, path: &str, value: &Value) -> Result<(), String> {
    let steps = steps(path)?;
    set_steps(doc, &steps, value, path)
}

fn set_steps(doc: &mut Value, steps: &[Step], value: &Value, path: &str) -> Result<(), String> {
    let Some(((key, index), rest)) = steps.split_first() else {
        *doc = value.clone();
        return Ok(());
    };
    if doc.is_null() {
        *doc = Value::Object(serde_json::Map::new());
    }
    let object = doc
        .as_object_mut()
        .ok_or_else(|| format!("{path}: {key:?} is inside something that is not a mapping"))?;
    let child = object.entry(key.clone()).or_insert(Value::Null);
    match index {
        None => set_steps(child, rest, value, path),
        Some(index) => {
            let items = child
                .as_array_mut()
                .ok_or_else(|| format!("{path}: {key:?} is not a list"))?;
            let len = items.len();
            match index {
                Some(i) => {
                    let item = items
                        .get_mut(*i)
                        .ok_or_else(|| format!("{path}: {key:?} has {len} items, no index {i}"))?;
                    set_steps(item, rest, value, path)
                }
                None => items
                    .iter_mut()
                    .try_for_each(|item| set_steps(item, rest, value, path)),
            }
        }
    }
}

impl Sweep {
    /// Reads `path`, its base scenario and the runs they make; `out` is
    /// the sweep's results directory.
    pub fn load(path: &Path, out: &Path) -> Result<Sweep, SweepError> {
        let file = path.display().to_string();
        let fail = |problem: String| SweepError {
            file: file.clone(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let spec: SweepSpec = yaml_serde::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let base_file = path.parent().unwrap_or(Path::new(".")).join(&spec.base);
        let base_text = std::fs::read_to_string(&base_file)
            .map_err(|e| fail(format!("base: {}: {e}", base_file.display())))?;
        let base: Value = yaml_serde::from_str(&base_text)
            .map_err(|e| fail(format!("base: {}: {e}", base_file.display())))?;
        let points = points(&spec).map_err(fail)?;
        if spec.repeats == 0 {
            return Err(fail("repeats: must be >= 1".to_owned()));
        }
        let total = points.len().saturating_mul(spec.repeats as usize);
        if total > MAX_RUNS {
            return Err(fail(format!(
                "{} points x {} repeats make {total} runs, more than {MAX_RUNS}; use fewer values or listed points",
                points.len(),
                spec.repeats
            )));
        }
        let mut runs = Vec::with_capacity(total);
        for (point, values) in points.into_iter().enumerate() {
            for repeat in 0..spec.repeats {
                runs.push(SweepRun {
                    point,
                    repeat,
                    values: values.clone(),
                    dir: out.join("points").join(format!("p{point:03}-r{repeat}")),
                });
            }
        }
        let sweep = Sweep {
            base,
            base_file,
            runs,
            axes: spec.axes.iter().map(|a| a.name.clone()).collect(),
        };
        // Every point must make a valid scenario before anything runs.
        for run in sweep.runs.iter().filter(|r| r.repeat == 0) {
            sweep.scenario(run).map_err(|e| {
                fail(format!(
                    "point {} ({}): {e}",
                    run.point,
                    describe(&run.values)
                ))
            })?;
        }
        Ok(sweep)
    }

    /// The scenario of `run`: the base with the point's values and the
    /// repeat's seed.
    pub fn scenario(&self, run: &SweepRun) -> Result<Scenario, String> {
        let mut doc = self.base.clone();
        for (name, value) in &run.values {
            set_path(&mut doc, path_of(name), value)?;
        }
        let seed = doc.get("seed").and_then(Value::as_u64).unwrap_or(0);
        set_path(&mut doc, "seed", &Value::from(seed + u64::from(run.repeat)))?;
        let text = serde_json::to_string(&doc).map_err(|e| e.to_string())?;
        let base_dir = self.base_file.parent().unwrap_or(Path::new("."));
        Scenario::from_yaml(&self.base_file.display().to_string(), &text, base_dir)
            .map_err(|e| e.problem)
    }
}

/// `name=value, ...` of a point.
pub fn describe(values: &[(String, Value)]) -> String {
    values
        .iter()
        .map(|(n, v)| format!("{n}={}", plain(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as a CSV cell or label: strings without quotes.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The points of `spec`: the listed ones, or the full grid of its axes.
fn points(spec: &SweepSpec) -> Result<Vec<Vec<(String, Value)>>, String> {
    for (i, a) in spec.axes.iter().enumerate() {
        if a.values.is_empty() {
            return Err(format!("axes[{i}] ({}): give one or more values", a.name));
        }
        steps(path_of(&a.name)).map_err(|e| format!("axes[{i}].name: {e}"))?;
    }
    if let Some(listed) = &spec.points {
        return listed
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.keys()
                    .find(|k| !spec.axes.iter().any(|a| &a.name == *k))
                    .map_or(Ok(()), |k| {
                        Err(format!("points[{i}]: {k:?} is not an axis; add it to axes"))
                    })?;
                spec.axes
                    .iter()
                    .map(|a| {
                        let v = p.get(&a.name).cloned().ok_or_else(|| {
                            format!("points[{i}]: give a value for axis {:?}", a.name)
                        })?;
                        Ok((a.name.clone(), v))
                    })
                    .collect()
            })
            .collect();
    }
    let mut grid: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for a in &spec.axes {
        grid = grid
            .into_iter()
            .flat_map(|p| {
                a.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((a.name.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    Ok(grid)
}

/// What the comparison shows of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Measures {
    /// The run's wall time, s.
    pub wall_s: f64,
    /// Mean over the jobs of their final accuracy.
    pub final_accuracy: Option<f64>,
    /// Mean round duration over every job's rounds, s (a slow cohort's
    /// long rounds count as many times as it has rounds).
    pub round_s: Option<f64>,
    /// Mean over the jobs of the bytes a round moved (both ways), MB.
    pub round_mb: Option<f64>,
    /// Bytes over the satellite hops, MB, summed over the jobs (netns).
    pub satellite_mb: Option<f64>,
    /// The FL connections' median RTT, ms (netns).
    pub rtt_median_ms: Option<f64>,
    /// Their 99th-percentile RTT, ms (netns).
    pub rtt_p99_ms: Option<f64>,
    /// Frames the delay lines sent more than 1 ms late (runs with delay
    /// lines).
    pub late_frames: Option<f64>,
    /// Whether every job completed and every expectation held.
    pub ok: bool,
}

/// The names of [`Measures`]' columns, in order.
pub const MEASURES: [&str; 8] = [
    "wall_s",
    "final_accuracy",
    "round_s",
    "round_mb",
    "satellite_mb",
    "rtt_median_ms",
    "rtt_p99_ms",
    "late_frames",
];

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl Measures {
    /// The measures of one run's summary.
    pub fn of(s: &Summary) -> Measures {
        let accuracies: Vec<f64> = s.jobs.iter().filter_map(|j| j.final_accuracy).collect();
        let rounds: Vec<f64> = s
            .jobs
            .iter()
            .flat_map(|j| j.rounds.iter().map(|r| r.duration_s))
            .collect();
        let round_mb: Vec<f64> = s
            .jobs
            .iter()
            .filter(|j| !j.rounds.is_empty())
            .map(|j| {
                let bytes: u64 = j
                    .rounds
                    .iter()
                    .map(|r| r.bytes_sent + r.bytes_received)
                    .sum();
                bytes as f64 / j.rounds.len() as f64 / 1e6
            })
            .collect();
        let satellite: Vec<u64> = s.jobs.iter().filter_map(|j| j.satellite_bytes).collect();
        let rtt = s.network.as_ref().and_then(|n| n.rtt_fidelity());
        let late = s
            .network
            .as_ref()
            .filter(|n| !n.delay_lines.is_empty())
            .map(|n| {
                n.delay_lines
                    .iter()
                    .map(|d| d.late.0 + d.late.1)
                    .sum::<u64>() as f64
            });
        Measures {
            wall_s: s.wall_s,
            final_accuracy: mean(&accuracies),
            round_s: mean(&rounds),
            round_mb: mean(&round_mb),
            satellite_mb: (!satellite.is_empty())
                .then(|| satellite.iter().sum::<u64>() as f64 / 1e6),
            rtt_median_ms: rtt.map(|r| r.median_ms),
            rtt_p99_ms: rtt.map(|r| r.p99_ms),
            late_frames: late,
            ok: s.ok,
        }
    }

    /// The values in [`MEASURES`] order.
    pub fn values(&self) -> [Option<f64>; 8] {
        [
            Some(self.wall_s),
            self.final_accuracy,
            self.round_s,
            self.round_mb,
            self.satellite_mb,
            self.rtt_median_ms,
            self.rtt_p99_ms,
            self.late_frames,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_set_nested_fields_every_element_and_name_what_is_wrong() {
        let mut doc: Value = serde_json::json!({
            "topology": { "generate": { "cohorts": [4, 2, 2] } },
            "intents": [ { "constraints": { "avgalgo": "FedAvg" } }, { "cohort": "c2" } ]
        });
        set_path(&mut doc, path_of("satellite_delay_ms"), &Value::from(30)).unwrap();
        set_path(&mut doc, path_of("strategy"), &Value::from("FedMedian")).unwrap();
        set_path(
            &mut doc,
            "intents[1].constraints.numround",
            &Value::from("5"),
        )
        .unwrap();
        assert_eq!(doc["topology"]["generate"]["satellite_delay_ms"], 30);
        assert_eq!(doc["intents"][0]["constraints"]["avgalgo"], "FedMedian");
        assert_eq!(doc["intents"][1]["constraints"]["avgalgo"], "FedMedian");
        assert_eq!(doc["intents"][1]["constraints"]["numround"], "5");
        assert_eq!(
            set_path(&mut doc, "intents[7].cohort", &Value::Null).unwrap_err(),
            "intents[7].cohort: \"intents\" has 2 items, no index 7"
        );
        assert_eq!(
            set_path(&mut doc, "topology.generate.cohorts.x", &Value::Null).unwrap_err(),
            "topology.generate.cohorts.x: \"x\" is inside something that is not a mapping"
        );
        assert!(
            steps("a[x]")
                .unwrap_err()
                .contains("an index is a number or *")
        );
    }

    #[test]
    fn the_grid_is_every_combination_and_listed_points_name_their_axes() {
        let spec: SweepSpec = yaml_serde::from_str(
            "base: s.yaml\naxes:\n  - { name: satellite_delay_ms, values: [6, 12, 24] }\n  - { name: strategy, values: [FedAvg, FedMedian] }\n",
        )
        .unwrap();
        let grid = points(&spec).unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(
            describe(&grid[1]),
            "satellite_delay_ms=6, strategy=FedMedian"
        );
        assert_eq!(
            describe(&grid[5]),
            "satellite_delay_ms=24, strategy=FedMedian"
        );
        let listed: SweepSpec = yaml_serde::from_str(
            "base: s.yaml\naxes:\n  - { name: strategy, values: [FedAvg] }\npoints:\n  - { strategy: Krum }\n  - { colour: red }\n",
        )
        .unwrap();
        assert_eq!(
            points(&listed).unwrap_err(),
            "points[1]: \"colour\" is not an axis; add it to axes"
        );
    }
}
