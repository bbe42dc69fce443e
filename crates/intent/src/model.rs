//! The intent document: the prototype's fields, typed, plus our optional extensions.
//!
//! Serialises (JSON or YAML) in the prototype's format with canonical names, so a
//! serialised intent parses back to the same value.

use crate::names::{Dataset, ModelName};
use crate::strategy::{StrategyKind, StrategyParams};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The operation of the prototype's federated-aggregation intent.
pub const AGGREGATE_OPERATION: &str = "aggregate.global";
/// The operand of the prototype's federated-aggregation intent.
pub const AGGREGATE_OPERAND: &str = "model.federated";

/// An ML intent: an id and the targets it asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Intent {
    /// Unique id of the intent (`intentID`).
    #[serde(rename = "intentID")]
    pub intent_id: String,
    /// What to achieve; never empty in a parsed intent.
    pub targets: Vec<Target>,
}

/// One target: an operation on an operand under constraints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Id of the target, unique within the intent (e.g. `factory.all`).
    pub id: String,
    /// What to do, e.g. `maximise` or `aggregate.global`.
    pub operation: String,
    /// What to do it to, e.g. `robots.welding.accuracy`.
    pub operand: String,
    /// How: privacy, data and model kinds, FL settings.
    pub constraints: Constraints,
}

impl Target {
    /// Whether this is a federated-aggregation target (`aggregate.global` on `model.federated`).
    pub fn is_aggregate(&self) -> bool {
        self.operation == AGGREGATE_OPERATION
    }
}

/// Constraints of a target. Every field is optional; the catalog fills the gaps.
///
/// The first group are the prototype's fields (names as the prototype wrote
/// them); the rest are our extensions, in snake_case.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Constraints {
    /// `privacylevel`: `high` means data stays on the clients (federated).
    #[serde(rename = "privacylevel", skip_serializing_if = "Option::is_none")]
    pub privacy_level: Option<PrivacyLevel>,
    /// `sourcekind`: the dataset (prototype aliases accepted).
    #[serde(rename = "sourcekind", skip_serializing_if = "Option::is_none")]
    pub source_kind: Option<Dataset>,
    /// `modelkind`: the model (prototype aliases accepted).
    #[serde(rename = "modelkind", skip_serializing_if = "Option::is_none")]
    pub model_kind: Option<ModelName>,
    /// `avgalgo`: the aggregation strategy.
    #[serde(rename = "avgalgo", skip_serializing_if = "Option::is_none")]
    pub avg_algo: Option<StrategyKind>,
    /// `fracfit`: fraction of available clients sampled per round, in (0, 1].
    #[serde(rename = "fracfit", skip_serializing_if = "Option::is_none")]
    pub fraction_fit: Option<f64>,
    /// `minfit`: fewest clients trained per round.
    #[serde(rename = "minfit", skip_serializing_if = "Option::is_none")]
    pub min_fit: Option<u32>,
    /// `minav`: fewest clients connected before a round starts; at least `minfit`.
    #[serde(rename = "minav", skip_serializing_if = "Option::is_none")]
    pub min_available: Option<u32>,
    /// `numround`: number of FL rounds.
    #[serde(rename = "numround", skip_serializing_if = "Option::is_none")]
    pub num_rounds: Option<u32>,
    /// `sameserv`: reuse a running FL server of the same kind.
    #[serde(rename = "sameserv", skip_serializing_if = "Option::is_none")]
    pub same_server: Option<bool>,
    /// Parameters of the strategy (`proximal_mu`, `server_lr`, ...).
    #[serde(flatten)]
    pub strategy_params: StrategyParams,
    /// Which clients take part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort: Option<Cohort>,
    /// Local epochs per round on each client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_epochs: Option<u32>,
    /// Local mini-batch size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Client learning rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// Stop once the global model reaches this accuracy, in (0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_accuracy: Option<f64>,
    /// Give up after this many seconds of training.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<f64>,
    /// Most bandwidth the job's traffic may use, in Mbit/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bandwidth_mbps: Option<f64>,
    /// Where updates are aggregated: flat (clients to the cloud server) or
    /// hierarchical (through each campus's edge aggregator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<Aggregation>,
    /// The latency the target demands (the prototype's `latency: low`
    /// asks for hierarchical aggregation when none is named).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyLevel>,
    /// Differential privacy: central, local or off (`privacylevel: medium`:
    /// central unless this says local).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp: Option<crate::privacy::DpKind>,
    /// Central DP: noise standard deviation per result, in clipping norms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp_noise_multiplier: Option<f64>,
    /// DP clipping norm of each update (central: fixed instead of adaptive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp_clipping_norm: Option<f64>,
    /// Local DP: epsilon of each update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp_epsilon: Option<f64>,
    /// Local DP: delta of each update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp_delta: Option<f64>,
}

/// Where a federated plan aggregates the clients' updates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Every client sends its update to the cloud's FL server.
    #[default]
    Flat,
    /// Each campus's clients send theirs to an edge aggregator on the
    /// campus, which sends one aggregate to the cloud's server per round.
    Hierarchical,
    /// The edge MLFO chooses, from its cost model of the network.
    Auto,
}

impl Aggregation {
    /// Every option.
    pub const ALL: [Aggregation; 3] = [
        Aggregation::Flat,
        Aggregation::Hierarchical,
        Aggregation::Auto,
    ];

    /// The option as written in intents.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Flat => "flat",
            Aggregation::Hierarchical => "hierarchical",
            Aggregation::Auto => "auto",
        }
    }

    /// Parses an option, ignoring case.
    pub fn from_name(name: &str) -> Option<Aggregation> {
        Aggregation::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latency a target demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyLevel {
    /// Short rounds matter: aggregate near the clients.
    Low,
    /// No demand.
    Medium,
    /// Rounds may be long.
    High,
}

impl LatencyLevel {
    /// Every level.
    pub const ALL: [LatencyLevel; 3] =
        [LatencyLevel::Low, LatencyLevel::Medium, LatencyLevel::High];

    /// The level as written in intents.
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyLevel::Low => "low",
            LatencyLevel::Medium => "medium",
            LatencyLevel::High => "high",
        }
    }

    /// Parses a level, ignoring case.
    pub fn from_name(name: &str) -> Option<LatencyLevel> {
        LatencyLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// The privacy a target demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivacyLevel {
    /// Data may be collected centrally: centralised training.
    Low,
    /// Refused when resolved: no plan of its own (use `high` or `low`).
    Medium,
    /// Data must not leave the clients: federated learning.
    High,
}

impl PrivacyLevel {
    /// Every level.
    pub const ALL: [PrivacyLevel; 3] =
        [PrivacyLevel::Low, PrivacyLevel::Medium, PrivacyLevel::High];

    /// The level as written in intents.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyLevel::Low => "low",
            PrivacyLevel::Medium => "medium",
            PrivacyLevel::High => "high",
        }
    }

    /// Parses a level, ignoring case.
    pub fn from_name(name: &str) -> Option<PrivacyLevel> {
        PrivacyLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for PrivacyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The clients that take part: a count, explicit hosts, or both (then they agree).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cohort {
    /// Number of clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Host names of the clients (e.g. `fc.11`), unique.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl Cohort {
    /// The number of clients: `size`, or the number of hosts.
    pub fn client_count(&self) -> usize {
        self.size.map_or(self.hosts.len(), |s| s as usize)
    }
}
