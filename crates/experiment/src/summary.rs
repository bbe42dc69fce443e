//! The results of one experiment: `summary.json` (schema in
//! `docs/results.md`) and `rounds.csv`, built from the edge MLFO's intent
//! records.

use mlfo::record::{IntentRecord, IntentState, MomoStats, RoundSummary, Timings};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the `summary.json` schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The testbed an experiment ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestbedSummary {
    /// Backend: `local` (loopback processes) or `netns`.
    pub backend: String,
    /// Whether link bandwidth, delay and loss were enforced.
    pub links_enforced: bool,
    /// Hosts of the topology.
    pub hosts: usize,
    /// FL client hosts.
    pub clients: usize,
    /// Aggregator hosts.
    pub aggregators: usize,
    /// Links with their figures, as the topology gives them.
    pub links: Vec<testbed::Link>,
    /// The topology's hosts (for the report's picture).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_hosts: Vec<testbed::Host>,
    /// The topology's switches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switches: Vec<String>,
    /// Whether the hosts' REST APIs and Mo-Mo took bearer tokens.
    #[serde(default)]
    pub authenticated: bool,
    /// Whether the hosts' REST APIs and Mo-Mo spoke TLS.
    #[serde(default)]
    pub encrypted: bool,
}

/// One FL job: an intent target with its cohort, rounds and timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The MLFO's intent id.
    pub intent_id: String,
    /// The intent target.
    pub target: String,
    /// Cohort name (as the scenario named it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// Client hosts.
    pub clients: Vec<String>,
    /// Dataset.
    pub source: String,
    /// Model.
    pub model: String,
    /// Aggregation strategy (`centralised` for a centralised plan).
    pub strategy: String,
    /// Federated, or centralised (the clients sent their data to one
    /// trainer; its rounds are passes over the pooled data).
    #[serde(default = "federated")]
    pub mode: intent::TrainingMode,
    /// Flat, or hierarchical (through edge aggregators).
    #[serde(default)]
    pub aggregation: intent::Aggregation,
    /// A hierarchical job's edge aggregators: campus, host, clients, and
    /// when and why one was lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_aggregators: Vec<mlfo::record::EdgePlacement>,
    /// For `aggregation: auto`: the options the MLFO predicted and chose from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<mlfo::cost::Choice>,
    /// What was measured, to put beside the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<mlfo::record::Outcome>,
    /// Final state of the intent.
    pub state: IntentState,
    /// Why it did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The MLFO's notes on the intent (e.g. a bandwidth cap not applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Meters set for the intent's bandwidth cap (netns backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meters: Vec<u32>,
    /// The FL server's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Rounds planned.
    pub rounds_planned: u64,
    /// Passes over the cohort's data planned (`rounds x local_epochs x
    /// fracfit`; a centralised job's rounds are its passes).
    #[serde(default)]
    pub passes_planned: u64,
    /// Bytes the server or trainer exchanged with the clients (message and
    /// data-part sizes), summed over the rounds.
    #[serde(default)]
    pub bytes: u64,
    /// Bytes that crossed the satellite while the intent ran: the link
    /// counters of the satellite hops (switch-to-switch links with a delay),
    /// both directions, mean over the hops (netns backend; other traffic at
    /// the same time counts too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satellite_bytes: Option<u64>,
    /// Per round: participants, failures, loss, accuracy, duration, bytes.
    pub rounds: Vec<RoundSummary>,
    /// Accuracy of the initial model, when the server evaluated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_accuracy: Option<f64>,
    /// Accuracy after the last round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_accuracy: Option<f64>,
    /// Orchestration timings, seconds from the intent's arrival.
    pub orchestration: Timings,
    /// Mo-Mo mode, messages and bytes of the intent (all its jobs together).
    #[serde(default)]
    pub momo: MomoStats,
}

/// A checked expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// What was checked, e.g. `cohort1: final accuracy >= 0.8`.
    pub check: String,
    /// The value found, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<f64>,
    /// Whether it held.
    pub ok: bool,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// Scenario name.
    pub scenario: String,
    /// Seed of the run.
    pub seed: u64,
    /// Start, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// Wall time of the whole run, seconds (testbed up to torn down).
    pub wall_s: f64,
    /// The testbed.
    pub testbed: TestbedSummary,
    /// The FL jobs, in the order the intents were sent.
    pub jobs: Vec<JobSummary>,
    /// The scenario's expectations, checked.
    pub expectations: Vec<ExpectationResult>,
    /// Every job completed and every expectation held.
    pub ok: bool,
    /// Node agents whose process ended during the run (a fault injected or
    /// a crash); the run went on and the orchestrators handled it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_faults: Vec<HostFault>,
    /// What the netns backend measured of the network (absent on the
    /// local backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::NetworkSummary>,
}

/// A host process that ended while the intents ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFault {
    /// The host.
    pub host: String,
    /// When it was noticed, seconds from the start of the run.
    pub at_s: f64,
    /// Its exit status and the tail of its log.
    pub problem: String,
}

/// A results file that could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ResultsError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub problem: String,
}

fn results_error(path: &Path, problem: impl ToString) -> ResultsError {
    ResultsError {
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

fn federated() -> intent::TrainingMode {
    intent::TrainingMode::Federated
}

impl JobSummary {
    /// The pass over the cohort's data that round `round` ends.
    pub fn pass_of_round(&self, round: u64) -> f64 {
        if self.rounds_planned == 0 || self.passes_planned == 0 {
            return round as f64;
        }
        round as f64 * self.passes_planned as f64 / self.rounds_planned as f64
    }

    /// The jobs of one intent record, labelled with `cohort`.
    pub fn from_record(record: &IntentRecord, cohort: Option<&str>) -> Vec<JobSummary> {
        record
            .jobs
            .iter()
            .map(|job| JobSummary {
                intent_id: record.id.clone(),
                target: job.target.clone(),
                cohort: cohort
                    .map(str::to_owned)
                    .or_else(|| record.cohort.name.clone()),
                clients: record.cohort.hosts.clone(),
                source: job.source.clone(),
                model: job.model.clone(),
                strategy: job.strategy.clone(),
                mode: job.mode,
                aggregation: job.aggregation,
                edge_aggregators: job.edge_aggregators.clone(),
                plan: job.plan.clone(),
                outcome: job.outcome.clone(),
                state: record.state,
                reason: record.reason.clone(),
                notes: record.notes.clone(),
                meters: record.meters.clone(),
                server: job.server.as_ref().map(|s| s.address.clone()),
                rounds_planned: job.rounds_planned,
                passes_planned: job.passes_planned,
                bytes: job
                    .rounds
                    .iter()
                    .map(|r| r.bytes_sent + r.bytes_received)
                    .sum(),
                satellite_bytes: None,
                rounds: job.rounds.clone(),
                initial_accuracy: job.initial_accuracy,
                final_accuracy: job.rounds.last().and_then(|r| r.accuracy),
                orchestration: record.timings.clone(),
                momo: record.momo.clone(),
            })
            .collect()
    }

    /// The name plots and tables show: the cohort, else the intent id.
    pub fn label(&self) -> String {
        match &self.cohort {
            Some(c) => format!("{c} ({})", self.intent_id),
            None => self.intent_id.clone(),
        }
    }
}

/// One row of `rounds.csv`.
#[derive(Debug, Serialize)]
struct CsvRow<'a> {
    intent_id: &'a str,
    cohort: &'a str,
    target: &'a str,
    round: u64,
    participants: usize,
    failures: usize,
    loss: Option<f64>,
    accuracy: Option<f64>,
    duration_s: f64,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Summary {
    /// Writes `summary.json` into `dir`.
    pub fn write_json(&self, dir: &Path) -> Result<(), ResultsError> {
        let path = dir.join("summary.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| results_error(&path, e))?;
        std::fs::write(&path, text + "\n").map_err(|e| results_error(&path, e))
    }

    /// Reads `summary.json` from `dir`.
    pub fn read_json(dir: &Path) -> Result<Summary, ResultsError> {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| results_error(&path, e))?;
        let summary: Summary = serde_json::from_str(&text).map_err(|e| results_error(&path, e))?;
        if summary.schema != SCHEMA_VERSION {
            return Err(results_error(
                &path,
                format!(
                    "schema {} is not the supported {SCHEMA_VERSION}; re-run the experiment with this dmo",
                    summary.schema
                ),
            ));
        }
        Ok(summary)
    }

    /// Writes `rounds.csv` (one row per job and round) into `dir`.
    pub fn write_csv(&self, dir: &Path) -> Result<(), ResultsError> {
        let path = dir.join("rounds.csv");
        let mut out = csv::Writer::from_path(&path).map_err(|e| results_error(&path, e))?;
        for job in &self.jobs {
            for r in &job.rounds {
                out.serialize(CsvRow {
                    intent_id: &job.intent_id,
                    cohort: job.cohort.as_deref().unwrap_or_default(),
                    target: &job.target,
                    round: r.round,
                    participants: r.participants,
                    failures: r.failures,
                    loss: r.loss,
                    accuracy: r.accuracy,
                    duration_s: r.duration_s,
                    bytes_sent: r.bytes_sent,
                    bytes_received: r.bytes_received,
                })
                .map_err(|e| results_error(&path, e))?;
            }
        }
        out.flush().map_err(|e| results_error(&path, e))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A summary with two jobs of three rounds each.
    pub(crate) fn sample() -> Summary {
        let job = |id: &str, cohort: &str, base: f64| JobSummary {
            intent_id: id.to_owned(),
            target: "factory.all".to_owned(),
            cohort: Some(cohort.to_owned()),
            clients: vec!["fc.10".into(), "fc.11".into()],
            source: "synthetic-images".into(),
            model: "mlp".into(),
            strategy: "FedAvg".into(),
            mode: intent::TrainingMode::Federated,
            aggregation: intent::Aggregation::Flat,
            edge_aggregators: Vec::new(),
            plan: None,
            outcome: None,
            state: IntentState::Completed,
            reason: None,
            notes: Vec::new(),
            meters: Vec::new(),
            server: Some("127.0.0.11:6000".into()),
            rounds_planned: 3,
            passes_planned: 3,
            bytes: 9000,
            satellite_bytes: None,
            rounds: (1..=3)
                .map(|r| RoundSummary {
                    round: r,
                    participants: 2,
                    failures: 0,
                    loss: Some(1.0 / r as f64),
                    accuracy: Some(base + 0.1 * r as f64),
                    duration_s: 0.5,
                    bytes_sent: 1000,
                    bytes_received: 2000,
                })
                .collect(),
            initial_accuracy: Some(0.1),
            final_accuracy: Some(base + 0.3),
            orchestration: Timings {
                momo_round_trip_s: Some(0.004),
                server_ready_s: Some(0.005),
                clients_started_s: Some(0.012),
                first_round_s: Some(0.6),
                done_s: Some(1.8),
                ..Timings::default()
            },
            momo: MomoStats::default(),
        };
        Summary {
            schema: SCHEMA_VERSION,
            scenario: "test".into(),
            seed: 0,
            started_unix_s: 0.0,
            wall_s: 3.0,
            testbed: TestbedSummary::default(),
            jobs: vec![job("a", "cohort1", 0.5), job("b", "cohort2", 0.4)],
            expectations: vec![],
            ok: true,
            host_faults: Vec::new(),
            network: None,
        }
    }

    #[test]
    fn json_and_csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = sample();
        s.write_json(dir.path()).unwrap();
        assert_eq!(Summary::read_json(dir.path()).unwrap(), s);
        s.write_csv(dir.path()).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("rounds.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(
            lines[0],
            "intent_id,cohort,target,round,participants,failures,loss,accuracy,duration_s,bytes_sent,bytes_received"
        );
        assert_eq!(
            lines[1],
            "a,cohort1,factory.all,1,2,0,1.0,0.6,0.5,1000,2000"
        );

        std::fs::write(dir.path().join("summary.json"), "{\"schema\": 9}").unwrap();
        let e = Summary::read_json(dir.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("summary.json: missing field `scenario` at line 1 column 13"),
            "{e}"
        );
    }
}
