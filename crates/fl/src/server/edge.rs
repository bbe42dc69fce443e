//! An edge aggregator (hierarchical FL): a Flower server to the clients of
//! its campus and, at once, one Flower client of the cloud's server, both
//! over grpc-bidi. On each `FitIns` from upstream it runs
//! [`EdgeOptions::local_rounds`] rounds with its own clients under its own
//! strategy and failure rules, starting from the upstream model, and
//! answers one `FitRes`: the aggregate, with the examples its clients
//! trained on in the last local round, so that the cloud's FedAvg weighs
//! campuses by their data. `EvaluateIns` passes down the same way, and
//! `GetParametersIns` goes to one of its clients. The upstream server sees
//! one client per campus; whatever fails below (clients that drop, time
//! out, send bad tensors) is the edge's to handle, and only an edge round
//! with no result at all reaches upstream, as a failed `FitRes`.
//!
//! The edge answers through the ordinary client loop
//! ([`crate::client::run_client`]): its [`Trainer`] drives the edge's
//! rounds on the runtime from the blocking thread the loop trains on.

use super::ServerError;
use super::rounds::{GlobalModel, RoundRunner, Traffic};
use crate::client::{ClientOptions, run_client};
use crate::config::{Config, Scalar};
use crate::history::{PhaseRecord, RoundRecord};
use crate::tensor::Tensor;
use crate::trainer::{EvaluateOutcome, FitOutcome, Trainer, TrainerError};
use std::time::Instant;

/// Most local rounds an edge runs per upstream `FitIns`.
pub const MAX_LOCAL_ROUNDS: u64 = 1000;

/// How an edge aggregator works with its upstream server.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// The upstream (cloud) FL server, `HOST:PORT`.
    pub upstream: String,
    /// Rounds with the edge's own clients per upstream `FitIns`, 1 to
    /// [`MAX_LOCAL_ROUNDS`].
    pub local_rounds: u64,
    /// How the edge connects to its upstream server.
    pub client: ClientOptions,
}

impl EdgeOptions {
    /// One local round per upstream round, default connection options.
    pub fn new(upstream: impl Into<String>) -> Self {
        Self {
            upstream: upstream.into(),
            local_rounds: 1,
            client: ClientOptions::default(),
        }
    }
}

/// Joins the upstream server and answers it with `runner`'s clients until
/// it sends the edge away.
pub(super) async fn run(runner: RoundRunner, edge: &EdgeOptions) -> Result<(), ServerError> {
    if !(1..=MAX_LOCAL_ROUNDS).contains(&edge.local_rounds) {
        return Err(ServerError::Upstream(format!(
            "local_rounds must be 1 to {MAX_LOCAL_ROUNDS}, got {}",
            edge.local_rounds
        )));
    }
    let mut trainer = EdgeTrainer {
        handle: tokio::runtime::Handle::current(),
        started: Instant::now(),
        runner,
        local_rounds: edge.local_rounds,
        rounds_done: 0,
    };
    trainer.runner.begin_edge();
    run_client(&edge.upstream, Box::new(trainer), &edge.client)
        .await
        .map(|_| ())
        .map_err(|e| ServerError::Upstream(e.to_string()))
}

/// The edge seen from upstream: a client whose training is its own rounds.
struct EdgeTrainer {
    handle: tokio::runtime::Handle,
    started: Instant,
    runner: RoundRunner,
    local_rounds: u64,
    rounds_done: u64,
}

/// The upstream round an instruction belongs to (`server_round`; 0 when
/// the upstream server did not say).
fn upstream_round(config: &Config) -> u64 {
    match config.get("server_round") {
        Some(Scalar::Sint64(r)) => u64::try_from(*r).unwrap_or(0),
        Some(Scalar::Uint64(r)) => *r,
        _ => 0,
    }
}

fn as_config(metrics: &std::collections::BTreeMap<String, f64>) -> Config {
    metrics
        .iter()
        .map(|(k, v)| (k.clone(), Scalar::Double(*v)))
        .collect()
}

/// Why no client of the edge gave a result in a phase.
fn nobody(phase: &str, record: &PhaseRecord) -> String {
    let reasons: Vec<&str> = record.failures.iter().map(|f| f.reason.as_str()).collect();
    format!(
        "no client of the edge aggregator completed {phase} ({} sampled; {})",
        record.sampled,
        if reasons.is_empty() {
            "none answered".to_owned()
        } else {
            reasons.join("; ")
        }
    )
}

impl EdgeTrainer {
    /// One upstream round: `local_rounds` rounds with the edge's clients.
    async fn train(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<FitOutcome, String> {
        let round = upstream_round(config);
        self.runner.pass_down(Some(config.clone()), None);
        let mut model = GlobalModel::new(parameters);
        let mut last = PhaseRecord::default();
        for _ in 0..self.local_rounds {
            self.runner
                .wait_for_clients()
                .await
                .map_err(|e| e.to_string())?;
            let started_s = self.runner.elapsed_s();
            let start = Instant::now();
            let mut traffic = Traffic::default();
            let fit = self
                .runner
                .fit_round(round, &mut model, &mut traffic)
                .await
                .map_err(|e| format!("edge aggregator: {e}"))?;
            if fit.completed == 0 {
                return Err(nobody("fit", &fit));
            }
            self.rounds_done += 1;
            last = fit.clone();
            self.runner.record_round(RoundRecord {
                round: self.rounds_done,
                started_s,
                fit,
                bytes_sent: traffic.sent,
                bytes_received: traffic.received,
                duration_s: start.elapsed().as_secs_f64(),
                ..RoundRecord::default()
            });
        }
        self.note_duration();
        Ok(FitOutcome {
            parameters: model.into_tensors(),
            num_examples: last.num_examples,
            metrics: as_config(&last.metrics),
        })
    }

    /// Has the edge's clients evaluate the upstream model.
    async fn evaluate_below(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<EvaluateOutcome, String> {
        let round = upstream_round(config);
        self.runner.pass_down(None, Some(config.clone()));
        self.runner
            .wait_for_clients()
            .await
            .map_err(|e| e.to_string())?;
        let mut model = GlobalModel::new(parameters);
        let mut traffic = Traffic::default();
        let phase = self
            .runner
            .evaluate_round(round, &mut model, &mut traffic)
            .await;
        let loss = match phase.loss {
            Some(loss) if phase.num_examples > 0 => loss,
            _ => return Err(nobody("evaluate", &phase)),
        };
        let outcome = EvaluateOutcome {
            loss: loss as f32,
            num_examples: phase.num_examples,
            metrics: as_config(&phase.metrics),
        };
        // The evaluation belongs to the last local round of this upstream round.
        self.runner.update_history(|h| {
            if let Some(last) = h.rounds.last_mut() {
                last.evaluate = Some(phase);
                last.bytes_sent += traffic.sent;
                last.bytes_received += traffic.received;
            }
        });
        self.note_duration();
        Ok(outcome)
    }

    /// Initial parameters from one of the edge's clients.
    async fn parameters(&mut self) -> Result<Vec<Tensor>, String> {
        self.runner
            .wait_for_clients()
            .await
            .map_err(|e| e.to_string())?;
        self.runner
            .initial_from_client()
            .await
            .map_err(|e| e.to_string())
    }

    fn note_duration(&self) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.runner.update_history(|h| h.duration_s = Some(elapsed));
    }
}

impl Trainer for EdgeTrainer {
    fn get_parameters(&mut self, _config: &Config) -> Result<Vec<Tensor>, TrainerError> {
        let handle = self.handle.clone();
        handle
            .block_on(self.parameters())
            .map_err(TrainerError::msg)
    }

    fn fit(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<FitOutcome, TrainerError> {
        let handle = self.handle.clone();
        handle
            .block_on(self.train(parameters, config))
            .map_err(TrainerError::msg)
    }

    fn evaluate(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<EvaluateOutcome, TrainerError> {
        let handle = self.handle.clone();
        handle
            .block_on(self.evaluate_below(parameters, config))
            .map_err(TrainerError::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_round_comes_from_server_round() {
        let mut c = Config::new();
        assert_eq!(upstream_round(&c), 0);
        c.insert("server_round".into(), Scalar::Sint64(7));
        assert_eq!(upstream_round(&c), 7);
        c.insert("server_round".into(), Scalar::Sint64(-1));
        assert_eq!(upstream_round(&c), 0);
    }
}
