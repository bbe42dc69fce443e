//! The scenario spec (YAML, see `docs/results.md`): topology, catalog,
//! the intents per cohort, seed, timeouts and expectations.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use testbed::{GenOptions, Topology};

/// The scenario `dmo run` runs with no argument (generated data).
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/default.yaml");
/// The same experiment on Fashion-MNIST: what `dmo run` runs with no
/// argument where the dataset is installed.
pub const FASHION_MNIST_SCENARIO: &str = include_str!("../../../scenarios/fashion-mnist.yaml");

/// Largest scenario file read.
pub const MAX_SCENARIO_BYTES: u64 = 4 * 1024 * 1024;

/// The generator's arguments in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    /// Client sizes of the cohorts, e.g. `[30, 10, 10]`.
    pub cohorts: Vec<usize>,
    /// Delay of each satellite hop, ms (default 12).
    #[serde(default)]
    pub satellite_delay_ms: Option<f64>,
    /// Bandwidth of every link, Mbit/s (default 500).
    #[serde(default)]
    pub bandwidth_mbit: Option<f64>,
    /// Bandwidth of the two satellite hops, Mbit/s (default: `bandwidth_mbit`).
    #[serde(default)]
    pub satellite_bandwidth_mbit: Option<f64>,
    /// Bandwidth of the campus links (campus hosts to their switch, the
    /// switch to `edgesw`), Mbit/s (default: `bandwidth_mbit`).
    #[serde(default)]
    pub campus_bandwidth_mbit: Option<f64>,
    /// One edge aggregator host `fla.N` per campus (hierarchical FL).
    #[serde(default)]
    pub edge_aggregators: bool,
    /// Clients per campus switch (default 10, the prototype's).
    #[serde(default)]
    pub campus_size: Option<usize>,
    /// Loss on each satellite hop, percent (default 0).
    #[serde(default)]
    pub satellite_loss_pct: Option<f64>,
    /// CPU limit of every FL host (aggregators and clients), cores
    /// (default 2, the prototype's).
    #[serde(default)]
    pub fl_cpus: Option<f64>,
    /// Jitter of each satellite hop, ms (default 0; at most its delay).
    #[serde(default)]
    pub satellite_jitter_ms: Option<f64>,
    /// Bursty (Gilbert-Elliott) loss on each satellite hop, instead of
    /// `satellite_loss_pct`: `{ p_pct, r_pct, bad_loss_pct, good_loss_pct }`.
    #[serde(default)]
    pub satellite_loss_burst: Option<testbed::BurstLoss>,
}

/// Where the topology comes from: exactly one of the three.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySource {
    /// The prototype's shape with these cohorts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<GenerateSpec>,
    /// A topology file, relative to the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// A topology written in the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<Topology>,
}

/// One intent of the batch: which cohort, which document, which overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioIntent {
    /// Cohort name of the topology (`cohort1`, ...).
    pub cohort: String,
    /// Intent file, relative to the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The intent document, written in the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Constraints set over the document's (`numround`, `fracfit`, ...).
    #[serde(default)]
    pub constraints: Map<String, Value>,
    /// Also run the intent centralised (`privacylevel: low`) once it has
    /// ended federated, so that the report puts the two side by side.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub also_centralised: bool,
}

/// One intent the runner sends: a scenario intent as written, or its
/// centralised twin.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentPost {
    /// Index in the scenario's `intents`.
    pub intent: usize,
    /// Sent with `privacylevel: low` over its constraints.
    pub centralised: bool,
    /// Sent once the post at this index has ended.
    pub after: Option<usize>,
}

/// Longest time limit a scenario may set, seconds (a week).
pub const MAX_TIMEOUT_S: f64 = 7.0 * 24.0 * 3600.0;

/// Time limits of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunTimeouts {
    /// Seconds every host has to come up.
    pub ready_s: f64,
    /// Seconds the whole batch may train.
    pub run_s: f64,
}

impl Default for RunTimeouts {
    fn default() -> Self {
        Self {
            ready_s: 60.0,
            run_s: 1800.0,
        }
    }
}

/// A real Prometheus server scraping every host during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSpec {
    /// Start it (needs the `prometheus` binary: Debian package `prometheus`).
    pub enabled: bool,
    /// Scrape interval, seconds (the prototype's 5).
    pub scrape_interval_s: f64,
    /// PromQL queries whose results are saved in `metrics.json` at the end.
    pub queries: Vec<String>,
}

impl Default for PrometheusSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            scrape_interval_s: 5.0,
            queries: vec![
                "fl_server_rounds_total".to_owned(),
                "fl_server_accuracy".to_owned(),
                "mlfo_orchestration_latency_seconds_count".to_owned(),
                "mlfo_orchestration_latency_seconds_sum".to_owned(),
                "mlfo_intents".to_owned(),
            ],
        }
    }
}

/// Background traffic between two `traffic` hosts (netns backend): an
/// iperf3 TCP flow at a set rate for the whole run, as the prototype's
/// `iperf -b 20m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficFlow {
    /// Sending host (role `traffic`).
    pub from: String,
    /// Receiving host (role `traffic`), runs the iperf3 server.
    pub to: String,
    /// Rate, Mbit/s.
    pub rate_mbit: f64,
}

/// Whether the run's hosts authenticate each other and their users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    /// On for the netns backend, off for the local one.
    #[default]
    Auto,
    /// Bearer tokens on every REST API and on Mo-Mo.
    On,
    /// Plain and open, for comparisons (every host says so in its log).
    Off,
}

impl SecurityMode {
    /// Whether it is on, on a backend that does (`netns`) or does not
    /// enforce links.
    pub fn on(self, netns: bool) -> bool {
        match self {
            SecurityMode::Auto => netns,
            SecurityMode::On => true,
            SecurityMode::Off => false,
        }
    }
}

/// How the run lays the client hosts' node agents out in processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientProcesses {
    /// One `dmo node` process per client host (the prototype's layout).
    #[default]
    Host,
    /// One process per campus serving every client host of that campus,
    /// each still its own agent, address and Flower stream.
    Campus,
    /// One process per cohort.
    Cohort,
}

/// Most background flows in a scenario.
pub const MAX_TRAFFIC_FLOWS: usize = 64;

/// What the run checks at the end (its exit status says whether they held).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Lowest final accuracy per cohort (`all` applies to every cohort).
    #[serde(default)]
    pub min_final_accuracy: BTreeMap<String, f64>,
}

/// A scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in the report.
    pub name: String,
    /// Seed of client sampling and data partitioning.
    #[serde(default)]
    pub seed: u64,
    /// The network.
    pub topology: TopologySource,
    /// A catalog file merged over the built-in one, relative to the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PathBuf>,
    /// A catalog written in the scenario (YAML text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_inline: Option<String>,
    /// The intents, one per cohort, sent in this order.
    pub intents: Vec<ScenarioIntent>,
    /// Evaluate each global model on the dataset's test split after every round.
    #[serde(default = "yes")]
    pub central_evaluation: bool,
    /// Also evaluate each global model on every client (Flower's federated
    /// evaluation); `false`: central evaluation only.
    #[serde(default = "yes")]
    pub federated_evaluation: bool,
    /// Partition scheme of each cohort's data.
    #[serde(default = "iid")]
    pub partition: String,
    /// A share of every cohort that attacks the federation (robustness
    /// experiments): `{ kind: sign-flip | gaussian | label-flip, share: 0.2 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<mlfo::config::AttackOptions>,
    /// How the edge MLFO asks for FL servers over Mo-Mo: `aggregated` (one
    /// Deploy per target) or `per-client` (one per client, the prototype's
    /// `mlfostatus: disabled`).
    #[serde(default)]
    pub momo: mlfo::MomoMode,
    /// Bearer tokens between the hosts and for the runner (`auto`: on for
    /// the netns backend); `dmo run --security` overrides it.
    #[serde(default)]
    pub security: SecurityMode,
    /// Time limits.
    #[serde(default)]
    pub timeouts: RunTimeouts,
    /// Client agents' processes: `host` (one per client host, the
    /// default), `campus` or `cohort` (one per group, sharing the dataset
    /// and a bounded training pool: how a run reaches 1,000 clients).
    #[serde(default)]
    pub client_processes: ClientProcesses,
    /// Prometheus.
    #[serde(default)]
    pub prometheus: PrometheusSpec,
    /// Background traffic flows (netns backend only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub background_traffic: Vec<TrafficFlow>,
    /// Seconds the background traffic runs alone before the first intent
    /// is sent (at most 600), so that the report shows it with and without
    /// FL beside it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub background_lead_s: f64,
    /// Changes to links at set times of the run (netns backend only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_schedule: Vec<crate::schedule::ScheduledChange>,
    /// Checks at the end.
    #[serde(default)]
    pub expect: Expectations,
    /// Directory relative paths are taken from (the scenario file's).
    #[serde(skip)]
    pub base: PathBuf,
}

fn yes() -> bool {
    true
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn iid() -> String {
    "iid".to_owned()
}

/// A scenario that cannot run, naming the field and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

impl Scenario {
    /// The built-in default scenario.
    pub fn builtin_default() -> Result<Scenario, ScenarioError> {
        Self::from_yaml(
            "(built-in default scenario)",
            DEFAULT_SCENARIO,
            Path::new("."),
        )
    }

    /// The built-in Fashion-MNIST scenario.
    pub fn builtin_fashion_mnist() -> Result<Scenario, ScenarioError> {
        Self::from_yaml(
            "(built-in Fashion-MNIST scenario)",
            FASHION_MNIST_SCENARIO,
            Path::new("."),
        )
    }

    /// Reads and checks the scenario in `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let fail = |problem: String| ScenarioError {
            file: file.clone(),
            problem,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .len();
        if size > MAX_SCENARIO_BYTES {
            return Err(fail(format!(
                "{size} bytes, more than the {MAX_SCENARIO_BYTES}-byte limit"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::from_yaml(&file, &text, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses and checks a scenario; relative paths are taken from `base`.
    pub fn from_yaml(file: &str, text: &str, base: &Path) -> Result<Scenario, ScenarioError> {
        let fail = |problem: String| ScenarioError {
            file: file.to_owned(),
            problem,
        };
        let mut scenario: Scenario = yaml_serde::from_str(text).map_err(|e| fail(e.to_string()))?;
        scenario.base = base.to_owned();
        if scenario.intents.is_empty() {
            return Err(fail("intents: list at least one intent".to_owned()));
        }
        for (i, intent) in scenario.intents.iter().enumerate() {
            if intent.file.is_some() == intent.document.is_some() {
                return Err(fail(format!(
                    "intents[{i}]: give exactly one of file (a path) and document (the intent's YAML)"
                )));
            }
        }
        if scenario.catalog.is_some() && scenario.catalog_inline.is_some() {
            return Err(fail("catalog, catalog_inline: give at most one".to_owned()));
        }
        let topology = scenario.topology().map_err(fail)?;
        let cohorts: Vec<String> = topology.cohorts().into_iter().map(|(n, _)| n).collect();
        for (i, intent) in scenario.intents.iter().enumerate() {
            if !cohorts.contains(&intent.cohort) {
                return Err(fail(format!(
                    "intents[{i}].cohort: {:?} is not a cohort of the topology ({})",
                    intent.cohort,
                    cohorts.join(", ")
                )));
            }
        }
        if let Some(attack) = &scenario.attack {
            attack.check().map_err(|e| fail(format!("attack.{e}")))?;
        }
        scenario.check_network(&topology).map_err(fail)?;
        for (field, v) in [
            ("ready_s", scenario.timeouts.ready_s),
            ("run_s", scenario.timeouts.run_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_TIMEOUT_S) {
                return Err(fail(format!(
                    "timeouts.{field}: must be seconds in (0, {MAX_TIMEOUT_S}], got {v}"
                )));
            }
        }
        let scrape = scenario.prometheus.scrape_interval_s;
        if !(scrape.is_finite() && (0.1..=60.0).contains(&scrape)) {
            return Err(fail(format!(
                "prometheus.scrape_interval_s: must be seconds in [0.1, 60], got {scrape}"
            )));
        }
        for (cohort, min) in &scenario.expect.min_final_accuracy {
            if cohort != "all" && !cohorts.contains(cohort) {
                return Err(fail(format!(
                    "expect.min_final_accuracy.{cohort}: not a cohort of the topology ({}) or `all`",
                    cohorts.join(", ")
                )));
            }
            if !(0.0..=1.0).contains(min) {
                return Err(fail(format!(
                    "expect.min_final_accuracy.{cohort}: must be in [0, 1], got {min}"
                )));
            }
        }
        Ok(scenario)
    }

    /// Checks the background flows, their lead and the link schedule
    /// against `topology`; the problem names the field.
    fn check_network(&self, topology: &Topology) -> Result<(), String> {
        if self.background_traffic.len() > MAX_TRAFFIC_FLOWS {
            return Err(format!(
                "background_traffic: {} flows, more than the limit of {MAX_TRAFFIC_FLOWS}",
                self.background_traffic.len()
            ));
        }
        for (i, f) in self.background_traffic.iter().enumerate() {
            for (field, name) in [("from", &f.from), ("to", &f.to)] {
                if topology.host(name).map(|h| h.role) != Some(testbed::Role::Traffic) {
                    return Err(format!(
                        "background_traffic[{i}].{field}: {name:?} is not a host with role traffic in the topology"
                    ));
                }
            }
            if f.from == f.to {
                return Err(format!(
                    "background_traffic[{i}]: from and to are both {:?}; name two hosts",
                    f.from
                ));
            }
            if !(f.rate_mbit.is_finite() && f.rate_mbit > 0.0 && f.rate_mbit <= 100_000.0) {
                return Err(format!(
                    "background_traffic[{i}].rate_mbit: must be in (0, 100000] Mbit/s, got {}",
                    f.rate_mbit
                ));
            }
        }
        crate::schedule::check(&self.network_schedule, topology)?;
        let lead = self.background_lead_s;
        if !(lead.is_finite() && (0.0..=600.0).contains(&lead)) {
            return Err(format!(
                "background_lead_s: must be seconds in [0, 600], got {lead}"
            ));
        }
        if lead > 0.0 && self.background_traffic.is_empty() {
            return Err(
            "background_lead_s: there is no background_traffic to lead; add a flow or remove it".to_owned(),
        );
        }
        Ok(())
    }

    /// The topology the scenario names.
    pub fn topology(&self) -> Result<Topology, String> {
        match &self.topology {
            TopologySource {
                generate: Some(g),
                file: None,
                inline: None,
            } => {
                let d = GenOptions::default();
                testbed::generate(&GenOptions {
                    cohorts: g.cohorts.clone(),
                    satellite_delay_ms: g.satellite_delay_ms.unwrap_or(d.satellite_delay_ms),
                    bandwidth_mbit: g.bandwidth_mbit.unwrap_or(d.bandwidth_mbit),
                    satellite_bandwidth_mbit: g.satellite_bandwidth_mbit,
                    campus_bandwidth_mbit: g.campus_bandwidth_mbit,
                    edge_aggregators: g.edge_aggregators,
                    campus_size: g.campus_size.unwrap_or(d.campus_size),
                    satellite_loss_pct: g.satellite_loss_pct.unwrap_or(d.satellite_loss_pct),
                    satellite_jitter_ms: g.satellite_jitter_ms.unwrap_or(d.satellite_jitter_ms),
                    satellite_loss_burst: g.satellite_loss_burst,
                    fl_cpus: g.fl_cpus.unwrap_or(d.fl_cpus),
                })
                .map_err(|e| format!("topology.generate.{e}"))
            }
            TopologySource {
                generate: None,
                file: Some(path),
                inline: None,
            } => Topology::load(&self.base.join(path)).map_err(|e| format!("topology.file: {e}")),
            TopologySource {
                generate: None,
                file: None,
                inline: Some(t),
            } => t
                .check()
                .map(|()| t.clone())
                .map_err(|e| format!("topology.inline.{e}")),
            _ => Err("topology: give exactly one of generate, file and inline".to_owned()),
        }
    }

    /// The text of intent `i`'s document.
    pub fn intent_text(&self, i: usize) -> Result<String, String> {
        let intent = &self.intents[i];
        match (&intent.document, &intent.file) {
            (Some(text), _) => Ok(text.clone()),
            (None, Some(path)) => {
                let path = self.base.join(path);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("intents[{i}].file: {}: {e}", path.display()))
            }
            (None, None) => Err(format!("intents[{i}]: no document")),
        }
    }

    /// What the runner sends, in order: every intent, each followed by its
    /// centralised twin when it asks for one.
    pub fn posts(&self) -> Vec<IntentPost> {
        let mut posts = Vec::new();
        for (i, intent) in self.intents.iter().enumerate() {
            posts.push(IntentPost {
                intent: i,
                centralised: false,
                after: None,
            });
            if intent.also_centralised {
                posts.push(IntentPost {
                    intent: i,
                    centralised: true,
                    after: Some(posts.len() - 1),
                });
            }
        }
        posts
    }

    /// The constraints a post sends over its document's.
    pub fn post_constraints(&self, post: &IntentPost) -> Map<String, Value> {
        let mut constraints = self.intents[post.intent].constraints.clone();
        if post.centralised {
            constraints.insert(intent::keys::PRIVACY_LEVEL.into(), Value::from("low"));
        }
        constraints
    }

    /// The catalog to give the MLFOs, as a file path, writing an inline one into `dir`.
    pub fn catalog_file(&self, dir: &Path) -> Result<Option<PathBuf>, String> {
        if let Some(text) = &self.catalog_inline {
            let path = dir.join("catalog.yaml");
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(Some(path));
        }
        Ok(self.catalog.as_ref().map(|c| {
            let p = self.base.join(c);
            std::fs::canonicalize(&p).unwrap_or(p)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_is_the_prototype_experiment() {
        let s = Scenario::builtin_default().unwrap();
        let t = s.topology().unwrap();
        let sizes: Vec<usize> = t.cohorts().iter().map(|(_, m)| m.len()).collect();
        assert_eq!(sizes, [30, 10, 10]);
        assert_eq!(s.intents.len(), 3);
        assert!(
            s.intent_text(0)
                .unwrap()
                .contains("robots.welding.accuracy")
        );
        assert!(
            s.catalog_inline
                .as_deref()
                .unwrap()
                .contains("synthetic-hard")
        );
    }

    #[test]
    fn bad_scenarios_name_the_field() {
        let bad = DEFAULT_SCENARIO.replace("cohort: cohort3", "cohort: cohort9");
        let e = Scenario::from_yaml("s.yaml", &bad, Path::new(".")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.yaml: intents[2].cohort: \"cohort9\" is not a cohort of the topology (cohort1, cohort2, cohort3)"
        );
    }

    #[test]
    fn background_traffic_names_traffic_hosts_and_a_rate() {
        let with = |flow: &str| {
            Scenario::from_yaml(
                "s.yaml",
                &format!("{DEFAULT_SCENARIO}\nbackground_traffic: [ {flow} ]\n"),
                Path::new("."),
            )
        };
        let ok = with("{ from: app.1, to: srv.1, rate_mbit: 20 }").unwrap();
        assert_eq!(ok.background_traffic[0].rate_mbit, 20.0);
        let e = with("{ from: fc.10, to: srv.1, rate_mbit: 20 }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.yaml: background_traffic[0].from: \"fc.10\" is not a host with role traffic in the topology"
        );
        let e = with("{ from: app.1, to: srv.1, rate_mbit: 0 }").unwrap_err();
        assert!(
            e.to_string()
                .contains("background_traffic[0].rate_mbit: must be in (0, 100000]"),
            "{e}"
        );
    }
}
