//! The record of an FL run, round by round, readable while it runs.

use crate::config::{Config, Scalar};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One client that failed in a phase, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Server-assigned client id.
    pub client: String,
    /// What went wrong (dropped stream, error status, bad tensors, timeout).
    pub reason: String,
}

/// What happened in one phase (fit or evaluate) of a round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// Clients the server sent instructions to.
    pub sampled: usize,
    /// Clients that answered successfully.
    pub completed: usize,
    /// Clients that failed.
    pub failures: Vec<Failure>,
    /// Wall time of the phase in seconds.
    pub duration_s: f64,
    /// Example-weighted mean loss (evaluate phase; fit phase when clients report `train_loss`).
    pub loss: Option<f64>,
    /// Example-weighted means of the numeric metrics the clients reported.
    #[serde(deserialize_with = "metrics_or_nan")]
    pub metrics: BTreeMap<String, f64>,
    /// Examples the successful clients reported.
    pub num_examples: u64,
}

/// Server-side (centralised) evaluation of the global model after a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentralRecord {
    /// Loss on the server's evaluation data.
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
    /// Metrics, such as `accuracy`.
    #[serde(deserialize_with = "metrics_or_nan")]
    pub metrics: BTreeMap<String, f64>,
}

/// A number as JSON holds it: serde_json writes NaN and infinities as
/// `null` (a model gone to NaN has a NaN loss), read back here as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Metrics as JSON holds them, `null` read back as NaN (see [`f64_or_nan`]).
fn metrics_or_nan<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, f64>, D::Error> {
    let metrics = BTreeMap::<String, Option<f64>>::deserialize(d)?;
    Ok(metrics
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

/// Everything recorded about one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number, from 1.
    pub round: u64,
    /// Seconds since the run started when this round began.
    pub started_s: f64,
    /// Fit phase.
    pub fit: PhaseRecord,
    /// Evaluate phase (absent when no client was asked to evaluate).
    pub evaluate: Option<PhaseRecord>,
    /// Server-side evaluation, when configured.
    pub central: Option<CentralRecord>,
    /// Bytes the server sent to clients this round (protobuf message sizes).
    pub bytes_sent: u64,
    /// Bytes the server received from clients this round.
    pub bytes_received: u64,
    /// Wall time of the whole round in seconds.
    pub duration_s: f64,
}

/// The record of a whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Strategy name.
    pub strategy: String,
    /// Rounds planned.
    pub rounds_planned: u64,
    /// Completed rounds, in order.
    pub rounds: Vec<RoundRecord>,
    /// Server-side evaluation of the initial model (round 0), when configured.
    pub initial_central: Option<CentralRecord>,
    /// Total wall time in seconds, once finished.
    pub duration_s: Option<f64>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

impl History {
    /// Latest accuracy: server-side when available, else the clients' evaluate mean.
    pub fn latest_accuracy(&self) -> Option<f64> {
        self.rounds.iter().rev().find_map(RoundRecord::accuracy)
    }
}

impl RoundRecord {
    /// This round's accuracy: server-side when available, else the clients' mean.
    pub fn accuracy(&self) -> Option<f64> {
        self.central
            .as_ref()
            .and_then(|c| c.metrics.get("accuracy").copied())
            .or_else(|| {
                self.evaluate
                    .as_ref()
                    .and_then(|e| e.metrics.get("accuracy").copied())
            })
    }

    /// This round's loss: server-side when available, else the clients' evaluate mean.
    pub fn loss(&self) -> Option<f64> {
        self.central
            .as_ref()
            .map(|c| c.loss)
            .or_else(|| self.evaluate.as_ref().and_then(|e| e.loss))
    }
}

/// Example-weighted means of the numeric metrics in `(num_examples, metrics)` pairs.
pub fn weighted_metrics<'a>(
    results: impl IntoIterator<Item = (u64, &'a Config)>,
) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (n, metrics) in results {
        for (k, v) in metrics {
            if let Some(x) = numeric(v) {
                let e = sums.entry(k.clone()).or_default();
                e.0 += x * n as f64;
                e.1 += n as f64;
            }
        }
    }
    sums.into_iter()
        .filter(|(_, (_, w))| *w > 0.0)
        .map(|(k, (s, w))| (k, s / w))
        .collect()
}

fn numeric(v: &Scalar) -> Option<f64> {
    match v {
        Scalar::Bool(_) | Scalar::String(_) | Scalar::Bytes(_) => None,
        other => other.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_with_nan_losses_and_metrics_reads_back() {
        let nan = CentralRecord {
            loss: f64::NAN,
            metrics: [
                ("accuracy".to_owned(), 0.1),
                ("x".to_owned(), f64::INFINITY),
            ]
            .into(),
        };
        let history = History {
            rounds: vec![RoundRecord {
                round: 1,
                fit: PhaseRecord {
                    loss: Some(f64::NAN),
                    metrics: [("train_loss".to_owned(), f64::NAN)].into(),
                    ..PhaseRecord::default()
                },
                central: Some(nan),
                ..RoundRecord::default()
            }],
            ..History::default()
        };
        let json = serde_json::to_string(&history).unwrap();
        let back: History = serde_json::from_str(&json).unwrap();
        let central = back.rounds[0].central.as_ref().unwrap();
        assert!(central.loss.is_nan() && central.metrics["x"].is_nan());
        assert_eq!(central.metrics["accuracy"], 0.1);
        assert!(back.rounds[0].fit.metrics["train_loss"].is_nan());
        assert_eq!(back.rounds[0].fit.loss, None);
    }
}
