//! What the MLFO knows about each intent and FL server: the records it
//! stores, serves on its API and re-reads after a restart.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where an intent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentState {
    /// Validated and stored; work has not begun.
    Accepted,
    /// Waiting, first in first out, for an aggregator with free capacity.
    Queued,
    /// Choosing clients and asking the cloud for a server.
    Planning,
    /// Starting the FL server and the clients.
    Deploying,
    /// The job runs its rounds.
    Training,
    /// Every job finished its rounds.
    Completed,
    /// Something failed; `reason` says what. Whatever was started was stopped.
    Failed,
    /// The MLFO lost track of the job (e.g. it restarted and the agent no longer knows it).
    Lost,
    /// Stopped on request (`DELETE`).
    Cancelled,
}

impl IntentState {
    /// Every state, for metrics.
    pub const ALL: [IntentState; 9] = [
        IntentState::Accepted,
        IntentState::Queued,
        IntentState::Planning,
        IntentState::Deploying,
        IntentState::Training,
        IntentState::Completed,
        IntentState::Failed,
        IntentState::Lost,
        IntentState::Cancelled,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentState::Accepted => "accepted",
            IntentState::Queued => "queued",
            IntentState::Planning => "planning",
            IntentState::Deploying => "deploying",
            IntentState::Training => "training",
            IntentState::Completed => "completed",
            IntentState::Failed => "failed",
            IntentState::Lost => "lost",
            IntentState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more will happen to the intent.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            IntentState::Completed
                | IntentState::Failed
                | IntentState::Lost
                | IntentState::Cancelled
        )
    }
}

/// Seconds from the intent's arrival to each orchestration milestone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Until the jobs were planned (the cost model's figures measured),
    /// before the intent was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_s: Option<f64>,
    /// Seconds spent in the admission queue waiting for an aggregator (live
    /// while queued; absent when the intent never queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_s: Option<f64>,
    /// Duration of the Mo-Mo Deploy call (edge to cloud and back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momo_round_trip_s: Option<f64>,
    /// Until the FL server's address was known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ready_s: Option<f64>,
    /// Until every client was started: the prototype's "HTTP Intent took".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients_started_s: Option<f64>,
    /// Until the first round's results were seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_round_s: Option<f64>,
    /// Until the intent reached a final state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_s: Option<f64>,
}

/// An intent's place in the admission queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// When it entered the queue, seconds since the Unix epoch (orders the queue).
    pub since_unix_s: f64,
    /// 1-based position in the queue, filled in when the record is read
    /// (1: the next to be placed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// Why it waits: the cloud's answer to the last placement attempt.
    pub waiting_for: String,
}

/// How an intent's FL servers were asked for over Mo-Mo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MomoStats {
    /// `aggregated` (one Deploy per target) or `per-client` (one per client).
    pub mode: crate::config::MomoMode,
    /// Mo-Mo calls made for the intent (Deploy and Release).
    pub messages: u64,
    /// Protobuf bytes of those calls, requests and replies.
    pub bytes: u64,
}

/// Where a job's FL server runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerPlacement {
    /// Address the clients join, HOST:PORT.
    pub address: String,
    /// The server's job id on its agent.
    pub job_id: String,
    /// The aggregator's host name.
    pub agent_host: String,
    /// The aggregator agent's REST URL.
    pub agent_url: String,
    /// Whether an earlier intent's server was reused (`sameserver`).
    pub reused: bool,
}

impl ServerPlacement {
    /// The aggregator agent that runs the server.
    pub fn agent(&self) -> crate::config::AgentEntry {
        crate::config::AgentEntry::placed(
            &self.agent_host,
            &self.agent_url,
            crate::config::AgentRole::Aggregator,
        )
    }
}

/// One FL client of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientPlacement {
    /// Host name.
    pub host: String,
    /// Its agent's REST URL.
    pub agent_url: String,
    /// Partition index within the cohort.
    pub index: usize,
    /// The client's job id, once started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The campus (switch) of its host, when the inventory names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campus: Option<String>,
    /// When (seconds from the intent's arrival) and why its agent was
    /// found gone (it refused the connection, or no longer knew the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<(f64, String)>,
}

/// An edge aggregator of a hierarchical job: the FL server of one campus's
/// clients and one client of the job's cloud server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgePlacement {
    /// The campus it serves.
    pub campus: String,
    /// Its host (an edge-aggregator node agent on the campus).
    pub host: String,
    /// That agent's REST URL.
    pub agent_url: String,
    /// Clients of the job on the campus.
    pub clients: usize,
    /// Its job id, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Address its clients join, HOST:PORT, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// When it was found lost (seconds since the intent arrived) and why:
    /// its campus no longer takes part, the others go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<(f64, String)>,
}

impl EdgePlacement {
    /// The edge-aggregator agent that runs it.
    pub fn agent(&self) -> crate::config::AgentEntry {
        crate::config::AgentEntry::placed(
            &self.host,
            &self.agent_url,
            crate::config::AgentRole::EdgeAggregator,
        )
    }
}

impl ClientPlacement {
    /// The client agent that runs the client.
    pub fn agent(&self) -> crate::config::AgentEntry {
        crate::config::AgentEntry::placed(
            &self.host,
            &self.agent_url,
            crate::config::AgentRole::Client,
        )
    }
}

/// One round of a job as the MLFO reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    /// Round number, from 1.
    pub round: u64,
    /// Clients whose fit results were aggregated.
    pub participants: usize,
    /// Clients that failed in the round (fit and evaluate).
    pub failures: usize,
    /// Loss: the server's evaluation when it has one, else the clients' weighted loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Accuracy, chosen like `loss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Seconds the round took.
    pub duration_s: f64,
    /// Bytes the server sent in the round.
    pub bytes_sent: u64,
    /// Bytes the server received in the round.
    pub bytes_received: u64,
}

impl RoundSummary {
    /// Summarises one round of an FL server's history.
    pub fn from_round(r: &fl::history::RoundRecord) -> Self {
        let evaluate = r.evaluate.as_ref();
        let (loss, accuracy) = match &r.central {
            Some(c) => (Some(c.loss), c.metrics.get("accuracy").copied()),
            None => (
                evaluate.and_then(|e| e.loss),
                evaluate.and_then(|e| e.metrics.get("accuracy").copied()),
            ),
        };
        Self {
            round: r.round,
            participants: r.fit.completed,
            failures: r.fit.failures.len() + evaluate.map_or(0, |e| e.failures.len()),
            loss,
            accuracy,
            duration_s: r.duration_s,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
        }
    }
}

/// One job of an intent: a target with its server (an FL server, or a
/// centralised plan's trainer) and clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The intent target it serves.
    pub target: String,
    /// Clients the plan needs connected before a round (`minav`).
    #[serde(default = "one")]
    pub min_available: u32,
    /// Federated (an FL server) or centralised (a central trainer that the
    /// clients send their data to; its rounds are passes over the data).
    #[serde(default = "federated")]
    pub mode: intent::TrainingMode,
    /// Dataset.
    pub source: String,
    /// Model.
    pub model: String,
    /// Aggregation strategy (`centralised` for a centralised plan).
    pub strategy: String,
    /// Rounds planned (a centralised plan: passes over the pooled data).
    pub rounds_planned: u64,
    /// Passes over the cohort's data the plan makes, `rounds x local_epochs
    /// x fracfit` (the same for both modes of one intent): what puts
    /// federated rounds and centralised passes on one axis.
    #[serde(default)]
    pub passes_planned: u64,
    /// Rounds a shared (`sameserver`) server had done when this intent
    /// joined it: the intent's own rounds are the ones after.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rounds_before: u64,
    /// Stop once the accuracy reaches this (the target's `target_accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_accuracy: Option<f64>,
    /// Give up after this many seconds from arrival (the target's `deadline_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<f64>,
    /// Flat (the clients join the server) or hierarchical (through an
    /// edge aggregator per campus).
    #[serde(default)]
    pub aggregation: intent::Aggregation,
    /// The FL server, once placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerPlacement>,
    /// A hierarchical job's edge aggregators, one per campus that has an
    /// edge-aggregator host; the clients of other campuses join the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_aggregators: Vec<EdgePlacement>,
    /// For `aggregation: auto`: every option with its predicted round time
    /// and wide-area bytes, the inputs with their sources, and the choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::cost::Choice>,
    /// What was measured once the job ended, to put beside the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The clients.
    pub clients: Vec<ClientPlacement>,
    /// Accuracy of the initial global model (server-side evaluation), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_accuracy: Option<f64>,
    /// Rounds done so far.
    pub rounds: Vec<RoundSummary>,
}

/// A job's measured figures, beside its plan's predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Median round time, seconds.
    pub median_round_s: f64,
    /// Bytes the job's server exchanged per round (mean): for a cohort
    /// behind the wide-area path, the bytes that crossed it (protobuf
    /// message sizes).
    pub wan_bytes_per_round: f64,
    /// Accuracy after the last round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_accuracy: Option<f64>,
}

impl Outcome {
    /// The outcome of `job`'s rounds; `None` before any round.
    pub fn of(job: &JobRecord) -> Option<Outcome> {
        if job.rounds.is_empty() {
            return None;
        }
        let mut durations: Vec<f64> = job.rounds.iter().map(|r| r.duration_s).collect();
        durations.sort_by(f64::total_cmp);
        let mid = durations.len() / 2;
        let median_round_s = if durations.len().is_multiple_of(2) {
            (durations[mid - 1] + durations[mid]) / 2.0
        } else {
            durations[mid]
        };
        let bytes: u64 = job
            .rounds
            .iter()
            .map(|r| r.bytes_sent + r.bytes_received)
            .sum();
        Some(Outcome {
            median_round_s,
            wan_bytes_per_round: bytes as f64 / job.rounds.len() as f64,
            final_accuracy: job.latest_accuracy(),
        })
    }
}

fn one() -> u32 {
    1
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn federated() -> intent::TrainingMode {
    intent::TrainingMode::Federated
}

impl JobRecord {
    /// The latest round with an accuracy.
    pub fn latest_accuracy(&self) -> Option<f64> {
        self.rounds.iter().rev().find_map(|r| r.accuracy)
    }
}

/// How the clients of an intent were chosen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CohortChoice {
    /// Cohort name, when chosen by name (or given by the user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The client hosts, in partition order.
    pub hosts: Vec<String>,
}

/// Everything about one intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentRecord {
    /// The MLFO's id of the intent (its `intentID`, made unique).
    pub id: String,
    /// The document's `intentID`.
    pub intent_id: String,
    /// Current state.
    pub state: IntentState,
    /// Why it failed or was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Arrival time, seconds since the Unix epoch.
    pub received_unix_s: f64,
    /// Last change, seconds since the Unix epoch.
    pub updated_unix_s: f64,
    /// The intent as validated, with the request's overrides applied.
    pub document: serde_json::Value,
    /// The clients chosen.
    pub cohort: CohortChoice,
    /// Orchestration milestones.
    pub timings: Timings,
    /// The FL jobs, one per federated target.
    pub jobs: Vec<JobRecord>,
    /// Ids of the meters the network controller set for the intent's
    /// bandwidth cap (removed when it ends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meters: Vec<u32>,
    /// Things worth knowing that are not failures, e.g. a cap not applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Its place in the admission queue while `queued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueEntry>,
    /// The Mo-Mo traffic it caused.
    #[serde(default)]
    pub momo: MomoStats,
    /// FL clients are not started: the prototype's `flstatus: disabled`, the
    /// management plane alone (servers placed, then released).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_clients: bool,
}

impl IntentRecord {
    /// Seconds since the intent arrived.
    pub fn elapsed_s(&self) -> f64 {
        (now_unix_s() - self.received_unix_s).max(0.0)
    }
}

/// An FL server the cloud MLFO placed, and the intents that use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The placement.
    pub placement: ServerPlacement,
    /// Dataset.
    pub source: String,
    /// Model.
    pub model: String,
    /// Strategy.
    pub strategy: String,
    /// Intents that use the server and have not released it.
    pub intents: Vec<String>,
    /// The `intent/target` pairs it serves, so a repeated Deploy (a retry, or
    /// per-client Mo-Mo) gets the same server.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Whether the server is still wanted (some intent uses it).
    pub active: bool,
    /// Placement time, seconds since the Unix epoch.
    pub placed_unix_s: f64,
}

/// Now, in seconds since the Unix epoch.
pub fn now_unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
