//! The round loop: sampling, concurrent fit and evaluate, failure
//! accounting, aggregation and the per-round record.

use super::client_manager::ClientManager;
use super::metrics::ServerRecorder;
use super::outgoing::Outgoing;
use super::proxy::{ClientProxy, Exchange, RequestError};
use super::{EvaluateFn, ServerConfig, ServerError};
use crate::config::Config;
use crate::history::{Failure, History, PhaseRecord, RoundRecord, weighted_metrics};
use crate::npy::NpyView;
use crate::proto::client_message::Msg as ClientMsg;
use crate::proto::server_message::{EvaluateIns, FitIns, GetParametersIns, Msg as ServerMsg};
use crate::proto::{Code, Parameters, ServerMessage};
use crate::strategy::aggregate::MeanAccumulator;
use crate::strategy::{FitResult, Strategy};
use crate::tensor::Tensor;
use crate::wire;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Runs the rounds of one server.
pub(super) struct RoundRunner {
    config: ServerConfig,
    manager: Arc<ClientManager>,
    history: Arc<RwLock<History>>,
    progress: tokio::sync::watch::Sender<u64>,
    recorder: ServerRecorder,
    strategy: Box<dyn Strategy>,
    evaluate_fn: Option<EvaluateFn>,
    rng: ChaCha8Rng,
    started: Instant,
}

/// The global model, and its wire encoding once made: a round's
/// evaluate phase and the next round's fit phase send the same model.
pub(super) struct GlobalModel {
    tensors: Vec<Tensor>,
    encoded: Option<Parameters>,
}

impl GlobalModel {
    pub(super) fn new(tensors: Vec<Tensor>) -> Self {
        Self {
            tensors,
            encoded: None,
        }
    }

    pub(super) fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// The model's tensors, taken out.
    pub(super) fn into_tensors(self) -> Vec<Tensor> {
        self.tensors
    }

    /// Replaces the model (after aggregation).
    fn set(&mut self, tensors: Vec<Tensor>) {
        self.tensors = tensors;
        self.encoded = None;
    }

    /// The model as `Parameters`, encoded once per model; clones share
    /// the tensor bytes.
    fn encoded(&mut self) -> Parameters {
        self.encoded
            .get_or_insert_with(|| wire::parameters_to_proto(&self.tensors))
            .clone()
    }
}

/// One evaluation answer.
struct EvalResult {
    loss: f32,
    num_examples: u64,
    metrics: Config,
}

/// Outcome of one client's part in a phase.
struct Reply<T> {
    client: String,
    result: Result<T, String>,
    bytes_sent: u64,
    bytes_received: u64,
}

impl RoundRunner {
    pub(super) fn new(
        config: ServerConfig,
        manager: Arc<ClientManager>,
        history: Arc<RwLock<History>>,
        progress: tokio::sync::watch::Sender<u64>,
        recorder: ServerRecorder,
        strategy: Box<dyn Strategy>,
        evaluate_fn: Option<EvaluateFn>,
    ) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Self {
            config,
            manager,
            history,
            progress,
            recorder,
            strategy,
            evaluate_fn,
            rng,
            started: Instant::now(),
        }
    }

    pub(super) fn update_history(&self, f: impl FnOnce(&mut History)) {
        let mut h = self
            .history
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut h);
    }

    pub(super) async fn run(&mut self, initial: Option<Vec<Tensor>>) -> Result<(), ServerError> {
        self.started = Instant::now();
        let (name, rounds) = (self.strategy.name().to_owned(), self.config.rounds);
        self.update_history(|h| {
            h.strategy = name;
            h.rounds_planned = rounds;
        });
        let result = self.run_rounds(initial).await;
        let elapsed = self.started.elapsed().as_secs_f64();
        let error = result.as_ref().err().map(ToString::to_string);
        self.update_history(|h| {
            h.duration_s = Some(elapsed);
            h.error = error;
        });
        result
    }

    pub(super) async fn wait_for_clients(&mut self) -> Result<(), ServerError> {
        self.wait_for(self.config.min_available_clients).await
    }

    /// Waits until `needed` (at least one) clients are connected.
    async fn wait_for(&mut self, needed: usize) -> Result<(), ServerError> {
        let needed = needed.max(1);
        if !self
            .manager
            .wait_for(needed, self.config.wait_timeout)
            .await
        {
            return Err(ServerError::NotEnoughClients {
                needed,
                connected: self.manager.len(),
                waited: self.config.wait_timeout,
            });
        }
        self.recorder.connected(self.manager.len());
        Ok(())
    }

    async fn run_rounds(&mut self, initial: Option<Vec<Tensor>>) -> Result<(), ServerError> {
        self.wait_for_clients().await?;
        let mut parameters = GlobalModel::new(match initial {
            Some(p) => p,
            None => self.initial_from_client().await?,
        });
        if let Some(eval) = self.evaluate_fn.as_mut() {
            let record = eval(0, parameters.tensors());
            self.update_history(|h| h.initial_central = record);
        }
        for round in 1..=self.config.rounds {
            let needed = match self.config.min_available_later {
                Some(later) if round > 1 => later,
                _ => self.config.min_available_clients,
            };
            self.wait_for(needed).await?;
            let record = self.round(round, &mut parameters).await?;
            self.record_round(record);
        }
        Ok(())
    }

    /// Logs a finished round, counts it in the metrics, appends it to the
    /// history and announces it.
    pub(super) fn record_round(&mut self, record: RoundRecord) {
        tracing::info!(
            round = record.round,
            participants = record.fit.completed,
            failures = record.fit.failures.len(),
            loss = ?record.loss(),
            accuracy = ?record.accuracy(),
            "round done"
        );
        self.recorder.round(
            record.duration_s,
            record.fit.completed,
            record.bytes_sent,
            record.bytes_received,
        );
        self.recorder.quality(record.loss(), record.accuracy());
        let round = record.round;
        self.update_history(|h| h.rounds.push(record));
        self.progress.send_replace(round);
    }

    /// The configuration of the instructions to come, as an upstream server
    /// sent it: an edge aggregator passes its server's `FitIns` and
    /// `EvaluateIns` configuration down to its clients.
    pub(super) fn pass_down(&mut self, fit: Option<Config>, evaluate: Option<Config>) {
        if let Some(c) = fit {
            self.config.fit_config = c;
        }
        if let Some(c) = evaluate {
            self.config.evaluate_config = c;
        }
    }

    /// Starts the clock and names the strategy for an edge aggregator, whose
    /// rounds its upstream server decides (none planned here).
    pub(super) fn begin_edge(&mut self) {
        self.started = Instant::now();
        let name = self.strategy.name().to_owned();
        self.update_history(|h| h.strategy = name);
    }

    /// Seconds since the run started.
    pub(super) fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub(super) async fn initial_from_client(&mut self) -> Result<Vec<Tensor>, ServerError> {
        let client = self
            .manager
            .all()
            .into_iter()
            .next()
            .ok_or_else(|| ServerError::InitialParameters("no client connected".into()))?;
        let ask = ServerMessage {
            msg: Some(ServerMsg::GetParametersIns(GetParametersIns {
                config: Default::default(),
            })),
        };
        let exchange = client
            .request(ask.into(), self.config.round_timeout)
            .await
            .map_err(|e| ServerError::InitialParameters(e.to_string()))?;
        match exchange.reply.msg {
            Some(ClientMsg::GetParametersRes(res)) => {
                check_status(res.status.as_ref()).map_err(ServerError::InitialParameters)?;
                wire::parameters_from_proto(res.parameters.as_ref())
                    .map_err(|e| ServerError::InitialParameters(e.to_string()))
            }
            _ => Err(ServerError::InitialParameters(
                "client answered GetParametersIns with another message".into(),
            )),
        }
    }

    fn sample_size(&self, fraction: f64, minimum: usize) -> usize {
        let available = self.manager.len();
        let wanted = ((available as f64) * fraction).floor() as usize;
        wanted.max(minimum).min(available)
    }

    /// One round, as Flower's `fit_round` then `evaluate_round`: fit and
    /// aggregate, server-side evaluation, client-side evaluation.
    async fn round(
        &mut self,
        round: u64,
        parameters: &mut GlobalModel,
    ) -> Result<RoundRecord, ServerError> {
        let round_start = Instant::now();
        let mut record = RoundRecord {
            round,
            started_s: self.started.elapsed().as_secs_f64(),
            ..RoundRecord::default()
        };
        let mut traffic = Traffic::default();
        record.fit = self.fit_round(round, parameters, &mut traffic).await?;
        if let Some(eval) = self.evaluate_fn.as_mut() {
            record.central = eval(round, parameters.tensors());
        }
        if self.config.fraction_evaluate > 0.0 {
            record.evaluate = Some(self.evaluate_round(round, parameters, &mut traffic).await);
        }
        (record.bytes_sent, record.bytes_received) = (traffic.sent, traffic.received);
        record.duration_s = round_start.elapsed().as_secs_f64();
        Ok(record)
    }

    /// The fit instruction of `round`: the global model and the config.
    fn fit_message(&mut self, round: u64, parameters: &mut GlobalModel) -> ServerMessage {
        let mut fit_config = self.config.fit_config.clone();
        fit_config.extend(self.strategy.fit_config());
        fit_config.insert("server_round".into(), (round as i64).into());
        ServerMessage {
            msg: Some(ServerMsg::FitIns(FitIns {
                parameters: Some(parameters.encoded()),
                config: wire::config_to_proto(&fit_config),
            })),
        }
    }

    /// Samples clients, sends them the model to train and aggregates what
    /// they send back into `parameters`; fails the round when no client
    /// answered, or any failed and failures are not accepted.
    // Over 80 lines: the streaming fold of fit replies keeps the sampled clients, the accumulator and the results in one scope, so that each model is dropped as soon as it is folded.
    pub(super) async fn fit_round(
        &mut self,
        round: u64,
        parameters: &mut GlobalModel,
        traffic: &mut Traffic,
    ) -> Result<PhaseRecord, ServerError> {
        let fit_start = Instant::now();
        let n = self.sample_size(self.config.fraction_fit, self.config.min_fit_clients);
        let clients = self.manager.sample(n, &mut self.rng);
        let fit_msg = self.fit_message(round, parameters);
        let max_num_examples = self.config.max_num_examples;
        let shapes: Vec<Vec<usize>> = parameters
            .tensors()
            .iter()
            .map(|t| t.shape.clone())
            .collect();
        let mut fit = PhaseRecord {
            sampled: clients.len(),
            ..PhaseRecord::default()
        };
        // Mean-based strategies get each model folded into running sums as
        // it arrives; the others get every result at the end.
        let mut mean = self
            .strategy
            .mean_based()
            .then(|| MeanAccumulator::new(&shapes));
        let mut kept: Vec<FitResult> = Vec::new();
        let mut done: Vec<(u64, Config)> = Vec::new();
        broadcast(
            self.config.round_timeout,
            &clients,
            fit_msg,
            |msg| parse_fit(msg, &shapes, max_num_examples),
            |reply| {
                traffic.add(reply.bytes_sent, reply.bytes_received);
                match reply.result {
                    Ok((parameters, num_examples, metrics)) => {
                        match mean.as_mut() {
                            Some(sum) => sum.add(&parameters, num_examples),
                            None => kept.push(FitResult {
                                client: reply.client,
                                parameters: parameters.iter().map(NpyView::to_tensor).collect(),
                                num_examples,
                                metrics: metrics.clone(),
                            }),
                        }
                        done.push((num_examples, metrics));
                    }
                    Err(reason) => fit.failures.push(Failure {
                        client: reply.client,
                        reason,
                    }),
                }
            },
        )
        .await;
        fit.failures.sort_by(|a, b| a.client.cmp(&b.client));
        kept.sort_by(|a, b| a.client.cmp(&b.client));
        fit.completed = done.len();
        fit.num_examples = done.iter().map(|(n, _)| n).sum();
        fit.metrics = weighted_metrics(done.iter().map(|(n, m)| (*n, m)));
        fit.loss = fit.metrics.get("train_loss").copied();
        self.recorder.failures("fit", fit.failures.len());
        let left = RequestError::Disconnected.to_string();
        if done.is_empty()
            && self.config.accept_failures
            && !fit.failures.is_empty()
            && fit.failures.iter().all(|f| f.reason == left)
        {
            // Every sampled client left (an intent sharing the server ended,
            // or their hosts went away): as in Flower, the model stays as it
            // was, and the next round samples the clients still connected.
            fit.duration_s = fit_start.elapsed().as_secs_f64();
            return Ok(fit);
        }
        self.check_fit(round, &fit, done.is_empty())?;
        if let Err(why) = self.strategy.keeps_round(fit.completed, fit.failures.len()) {
            tracing::warn!(round, "{why}");
            fit.duration_s = fit_start.elapsed().as_secs_f64();
            return Ok(fit);
        }
        let next = match mean {
            Some(sum) => self
                .strategy
                .aggregate_mean(parameters.tensors(), sum.mean()),
            None => self.strategy.aggregate_fit(parameters.tensors(), &kept),
        };
        parameters.set(next.map_err(|e| ServerError::Round {
            round,
            reason: e.to_string(),
        })?);
        fit.duration_s = fit_start.elapsed().as_secs_f64();
        Ok(fit)
    }

    /// Fails the round when no client answered its fit, or any failed and
    /// failures are not accepted.
    fn check_fit(&self, round: u64, fit: &PhaseRecord, none_done: bool) -> Result<(), ServerError> {
        if none_done || (!fit.failures.is_empty() && !self.config.accept_failures) {
            let reasons: Vec<String> = fit.failures.iter().map(|f| f.reason.clone()).collect();
            return Err(ServerError::Round {
                round,
                reason: format!(
                    "fit: {} of {} clients failed ({})",
                    fit.failures.len(),
                    fit.sampled,
                    reasons.join("; ")
                ),
            });
        }
        Ok(())
    }

    /// Samples clients and has them evaluate the global model on their own
    /// data; their example-weighted loss and metrics.
    pub(super) async fn evaluate_round(
        &mut self,
        round: u64,
        parameters: &mut GlobalModel,
        traffic: &mut Traffic,
    ) -> PhaseRecord {
        let eval_start = Instant::now();
        let n = self.sample_size(
            self.config.fraction_evaluate,
            self.config.min_evaluate_clients,
        );
        let clients = self.manager.sample(n, &mut self.rng);
        let mut eval_config = self.config.evaluate_config.clone();
        eval_config.insert("server_round".into(), (round as i64).into());
        let msg = ServerMessage {
            msg: Some(ServerMsg::EvaluateIns(EvaluateIns {
                parameters: Some(parameters.encoded()),
                config: wire::config_to_proto(&eval_config),
            })),
        };
        let mut phase = PhaseRecord {
            sampled: clients.len(),
            ..PhaseRecord::default()
        };
        let mut ok = Vec::new();
        broadcast(
            self.config.round_timeout,
            &clients,
            msg,
            parse_evaluate,
            |reply| {
                traffic.add(reply.bytes_sent, reply.bytes_received);
                match reply.result {
                    Ok(r) => ok.push((reply.client, r)),
                    Err(reason) => phase.failures.push(Failure {
                        client: reply.client,
                        reason,
                    }),
                }
            },
        )
        .await;
        phase.failures.sort_by(|a, b| a.client.cmp(&b.client));
        // Sums in client order, so that runs reproduce.
        ok.sort_by(|a, b| a.0.cmp(&b.0));
        let ok: Vec<EvalResult> = ok.into_iter().map(|(_, r)| r).collect();
        phase.completed = ok.len();
        phase.num_examples = ok.iter().map(|r| r.num_examples).sum();
        if phase.num_examples > 0 {
            let weighted: f64 = ok
                .iter()
                .map(|r| f64::from(r.loss) * r.num_examples as f64)
                .sum();
            phase.loss = Some(weighted / phase.num_examples as f64);
        }
        phase.metrics = weighted_metrics(ok.iter().map(|r| (r.num_examples, &r.metrics)));
        phase.duration_s = eval_start.elapsed().as_secs_f64();
        self.recorder.failures("evaluate", phase.failures.len());
        phase
    }
}

/// Bytes a round sent to and received from its clients.
#[derive(Default)]
pub(super) struct Traffic {
    pub(super) sent: u64,
    pub(super) received: u64,
}

impl Traffic {
    fn add(&mut self, sent: u64, received: u64) {
        self.sent += sent;
        self.received += received;
    }
}

/// Sends `msg` to every client concurrently, parses each answer with
/// `parse`, turning transport problems into failure reasons, and hands
/// each reply to `on_reply` as soon as it is in, so that a caller can fold
/// it in and drop it. The requests run inside the calling task: an answer
/// wakes this task directly, with no task in between.
async fn broadcast<T>(
    timeout: Option<std::time::Duration>,
    clients: &[Arc<ClientProxy>],
    msg: ServerMessage,
    parse: impl Fn(ClientMsg) -> Result<T, String>,
    mut on_reply: impl FnMut(Reply<T>),
) {
    let msg = Outgoing::from(msg);
    let mut pending: FuturesUnordered<_> = clients
        .iter()
        .map(|client| {
            let msg = msg.clone();
            async move { (client.id(), client.request(msg, timeout).await) }
        })
        .collect();
    while let Some((id, outcome)) = pending.next().await {
        on_reply(match outcome {
            Ok(Exchange {
                reply,
                bytes_sent,
                bytes_received,
            }) => Reply {
                client: id.to_owned(),
                result: reply
                    .msg
                    .ok_or_else(|| "empty client message".to_owned())
                    .and_then(&parse),
                bytes_sent,
                bytes_received,
            },
            Err(e) => Reply {
                client: id.to_owned(),
                result: Err(e.to_string()),
                bytes_sent: 0,
                bytes_received: 0,
            },
        });
    }
}

fn check_status(status: Option<&crate::proto::Status>) -> Result<(), String> {
    match status {
        Some(s) if s.code != Code::Ok as i32 => {
            let code = Code::try_from(s.code)
                .map_or_else(|_| s.code.to_string(), |c| c.as_str_name().to_owned());
            Err(format!("client status {code}: {}", s.message))
        }
        _ => Ok(()),
    }
}

/// A fit answer: its tensors (validated, still encoded), examples and metrics.
type FitParts = (Vec<NpyView<Bytes>>, u64, Config);

fn parse_fit(
    msg: ClientMsg,
    shapes: &[Vec<usize>],
    max_num_examples: u64,
) -> Result<FitParts, String> {
    let ClientMsg::FitRes(res) = msg else {
        return Err("client answered FitIns with another message".into());
    };
    check_status(res.status.as_ref())?;
    let params = wire::parameter_views(res.parameters.as_ref()).map_err(|e| e.to_string())?;
    if params.len() != shapes.len() {
        return Err(format!(
            "client returned {} tensors, the model has {}",
            params.len(),
            shapes.len()
        ));
    }
    if let Some((i, (t, s))) = params
        .iter()
        .zip(shapes)
        .enumerate()
        .find(|(_, (t, s))| t.shape() != s.as_slice())
    {
        return Err(format!(
            "tensor {i} has shape {:?}, the model has {s:?}",
            t.shape()
        ));
    }
    if let Some((i, at)) = params
        .iter()
        .enumerate()
        .find_map(|(i, t)| Some((i, t.first_unusable()?)))
    {
        return Err(format!(
            "tensor {i} holds a NaN, an infinite value or one beyond f32's range at element {at}: the update is refused"
        ));
    }
    let n = u64::try_from(res.num_examples)
        .map_err(|_| format!("negative num_examples {}", res.num_examples))?;
    if n > max_num_examples {
        return Err(format!(
            "num_examples {n} is over the server's limit of {max_num_examples}: the update is refused"
        ));
    }
    Ok((params, n, wire::config_from_proto(&res.metrics)))
}

fn parse_evaluate(msg: ClientMsg) -> Result<EvalResult, String> {
    let ClientMsg::EvaluateRes(res) = msg else {
        return Err("client answered EvaluateIns with another message".into());
    };
    check_status(res.status.as_ref())?;
    let n = u64::try_from(res.num_examples)
        .map_err(|_| format!("negative num_examples {}", res.num_examples))?;
    if !res.loss.is_finite() {
        return Err(format!("client reported a non-finite loss {}", res.loss));
    }
    Ok(EvalResult {
        loss: res.loss,
        num_examples: n,
        metrics: wire::config_from_proto(&res.metrics),
    })
}
