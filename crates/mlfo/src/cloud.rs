//! The cloud MLFO's side of Mo-Mo: place an FL server for each
//! federated-aggregation intent (or reuse one with `sameserver`), and stop
//! it when no intent needs it any more.

use crate::config::AgentEntry;
use crate::momo::{proto, to_document};
use crate::planner::choose_aggregator;
use crate::record::{ServerPlacement, ServerRecord, now_unix_s};
use crate::service::Mlfo;
use fl::strategy::StrategyConfig;
use intent::{FlPlan, ResolvedTarget, Strategy, TrainingMode};
use node::spec::EvaluateRequest;
use node::{JobState, ServerRequest};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The Mo-Mo gRPC service of a cloud MLFO.
pub struct MomoService {
    mlfo: Mlfo,
}

impl MomoService {
    /// The service, backed by `mlfo`.
    pub fn new(mlfo: Mlfo) -> Self {
        Self { mlfo }
    }
}

#[tonic::async_trait]
impl proto::orchestrate_server::Orchestrate for MomoService {
    async fn deploy(
        &self,
        request: Request<proto::Intent>,
    ) -> Result<Response<proto::Status>, Status> {
        let started = std::time::Instant::now();
        let result = self.mlfo.deploy(request.get_ref()).await;
        let took = started.elapsed().as_secs_f64();
        let metrics = &self.mlfo.inner.metrics;
        metrics.momo_call("server", "deploy", result.is_ok());
        metrics.latency("momo_deploy", took);
        tracing::info!(intent = %request.get_ref().intent_id, ok = result.is_ok(), "MoMo Intent took {:.3} ms", took * 1000.0);
        result.map(Response::new)
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::Status>, Status> {
        let result = self.mlfo.release(&request.get_ref().intent_id).await;
        self.mlfo
            .inner
            .metrics
            .momo_call("server", "release", result.is_ok());
        result.map(Response::new)
    }
}

impl Mlfo {
    /// Handles Mo-Mo `Deploy`: resolves the aggregation intent and places its
    /// server, or answers with the server this intent's target already has.
    // Over 80 lines: the placement decision holds the target's lock throughout: own server, shared server, or a new one.
    async fn deploy(&self, message: &proto::Intent) -> Result<proto::Status, Status> {
        let doc = to_document(message).map_err(Status::invalid_argument)?;
        let intent =
            intent::parse("momo", &doc).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let resolved = self.inner.catalog.resolve(&intent).map_err(|errors| {
            Status::invalid_argument(intent::IntentError::from_fields("momo", errors).to_string())
        })?;
        let [target] = resolved.targets.as_slice() else {
            return Err(Status::invalid_argument(format!(
                "momo: an aggregation intent has exactly one target, got {}",
                resolved.targets.len()
            )));
        };
        let plan = target.plan.settings();
        let mode = target.plan.mode();
        let key = format!("{}/{}", message.intent_id, target.id);
        let _this_target = self.inner.deploying.lock(&key).await;
        // A central trainer holds one intent's data: it is never shared.
        let sharing = if plan.same_server && mode == TrainingMode::Federated {
            Some(self.inner.sharing.lock().await)
        } else {
            None
        };
        let stored = self.inner.store.servers(true).map_err(internal)?;
        if let Some(own) = stored.iter().find(|s| s.targets.contains(&key)) {
            tracing::info!(intent = %message.intent_id, client = %message.client, server = %own.placement.address, "Deploy again: the target's FL server");
            return Ok(status(&own.placement, true));
        }
        let source = target.pipeline.src.kind.to_string();
        let model = target.pipeline.model.kind.to_string();
        let strategy = match mode {
            TrainingMode::Federated => plan.strategy.kind().to_string(),
            TrainingMode::Centralised => mode.to_string(),
        };
        if sharing.is_some() {
            let _placing = self.inner.placing.lock().await;
            if let Some(mut shared) = self
                .refresh_servers()
                .await
                .into_iter()
                .find(|s| s.source == source && s.model == model && s.strategy == strategy)
            {
                shared.intents.push(message.intent_id.clone());
                shared.targets.push(key);
                self.save_server(&shared)?;
                tracing::info!(intent = %message.intent_id, server = %shared.placement.address, "sameserver: reusing FL server");
                return Ok(status(&shared.placement, true));
            }
        }
        let (agent, slot) = {
            let _placing = self.inner.placing.lock().await;
            let stored = self.inner.store.servers(true).map_err(internal)?;
            match self.reserve_aggregator(&stored) {
                Ok(reserved) => reserved,
                // Records may still count servers that have ended: look again.
                Err(_) => {
                    let active = self.refresh_servers().await;
                    self.reserve_aggregator(&active)
                        .map_err(Status::resource_exhausted)?
                }
            }
        };
        let record = ServerRecord {
            placement: ServerPlacement {
                address: String::new(),
                job_id: String::new(),
                agent_host: agent.name.clone(),
                agent_url: agent.url.clone(),
                reused: false,
            },
            source,
            model,
            strategy,
            intents: vec![message.intent_id.clone()],
            targets: vec![key],
            active: true,
            placed_unix_s: now_unix_s(),
        };
        let request = self.server_request(&message.intent_id, target, plan);
        self.start_server(agent, slot, request, record).await
    }

    /// Starts the server in a task of its own, so that it is recorded, or
    /// stopped, even when the Deploy that asked for it is abandoned (the edge
    /// timed out or went away): no server is left running that no record holds.
    async fn start_server(
        &self,
        agent: AgentEntry,
        slot: Starting,
        request: ServerRequest,
        record: ServerRecord,
    ) -> Result<proto::Status, Status> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let mlfo = self.clone();
        tokio::spawn(async move {
            let token = request
                .labels
                .get(PLACEMENT_LABEL)
                .cloned()
                .unwrap_or_default();
            let called = std::time::Instant::now();
            let started = mlfo.inner.sbi.start_server(&agent, &request).await;
            let retried = called.elapsed() >= mlfo.inner.config.timeouts.sbi();
            let mut record = record;
            let outcome = match started {
                Ok(started) => {
                    record.placement.address = started.address.unwrap_or_default();
                    record.placement.job_id = started.id;
                    if retried {
                        mlfo.sweep_later(
                            &agent,
                            &token,
                            &request,
                            Some(record.placement.job_id.clone()),
                        );
                    }
                    mlfo.record_or_stop(record, slot, reply).await;
                    return;
                }
                Err(e) => {
                    mlfo.sweep_later(&agent, &token, &request, None);
                    Err(Status::unavailable(format!("FL server: {e}")))
                }
            };
            drop(slot);
            let _ = reply.send(outcome);
        });
        answer.await.unwrap_or_else(|_| {
            Err(Status::internal(
                "the placement task ended without an answer",
            ))
        })
    }

    /// Saves a started server's record and answers the Deploy; stops the
    /// server instead when nobody waits for the answer any more.
    async fn record_or_stop(
        &self,
        record: ServerRecord,
        slot: Starting,
        reply: tokio::sync::oneshot::Sender<Result<proto::Status, Status>>,
    ) {
        let placing = self.inner.placing.lock().await;
        let abandoned = reply.is_closed() || {
            if let Err(e) = self.inner.store.save_server(&record) {
                let _ = reply.send(Err(internal(e)));
                true
            } else {
                reply.send(Ok(status(&record.placement, false))).is_err()
            }
        };
        // The record counts the aggregator's load from now on, not the slot.
        drop(slot);
        drop(placing);
        if abandoned {
            tracing::warn!(intents = ?record.intents, server = %record.placement.address, "Deploy abandoned while its FL server started: stopping it");
            if let Err(e) = self
                .inner
                .sbi
                .stop(&record.placement.agent(), &record.placement.job_id)
                .await
            {
                tracing::error!("cannot stop the abandoned FL server: {e}");
            }
            let mut record = record;
            record.active = false;
            if let Err(e) = self.inner.store.save_server(&record) {
                tracing::error!("cannot save server record: {e}");
            }
        }
    }

    /// After a start that failed or needed retries, stops on `agent` every
    /// server of placement `token` but `keep` once the agent can no longer
    /// start one (its `start_by_unix_s` has passed).
    fn sweep_later(
        &self,
        agent: &AgentEntry,
        token: &str,
        request: &ServerRequest,
        keep: Option<String>,
    ) {
        let (mlfo, agent, token) = (self.clone(), agent.clone(), token.to_owned());
        let wait = request
            .start_by_unix_s
            .map_or(0.0, |t| (t - now_unix_s()).max(0.0))
            + SWEEP_MARGIN_S;
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
            for attempt in 0..SWEEP_ATTEMPTS {
                match mlfo.inner.sbi.jobs(&agent).await {
                    Ok(jobs) => {
                        for job in jobs.iter().filter(|j| {
                            j.labels.get(PLACEMENT_LABEL) == Some(&token)
                                && Some(&j.id) != keep.as_ref()
                                && matches!(j.state, JobState::Starting | JobState::Running)
                        }) {
                            tracing::warn!(agent = %agent.name, job = %job.id, "stopping an FL server whose start was given up");
                            if let Err(e) = mlfo.inner.sbi.stop(&agent, &job.id).await {
                                tracing::error!("{e}");
                            }
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(attempt, "sweep of {}: {e}", agent.name);
                        tokio::time::sleep(std::time::Duration::from_secs(1 << attempt.min(5)))
                            .await;
                    }
                }
            }
        });
    }

    /// Chooses the aggregator for a new server, given the active servers'
    /// records and the servers being started, and holds a slot on it.
    fn reserve_aggregator(
        &self,
        active: &[ServerRecord],
    ) -> Result<(AgentEntry, Starting), String> {
        let mut starting = self.lock_starting();
        let mut busy: Vec<String> = active
            .iter()
            .map(|s| s.placement.agent_host.clone())
            .collect();
        busy.extend(starting.iter().cloned());
        let agent = choose_aggregator(&self.inner.config.inventory, &busy)?.clone();
        starting.push(agent.name.clone());
        let slot = Starting {
            mlfo: self.clone(),
            host: agent.name.clone(),
        };
        Ok((agent, slot))
    }

    fn lock_starting(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.inner
            .starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Active servers, after marking inactive those whose job has ended.
    async fn refresh_servers(&self) -> Vec<ServerRecord> {
        let mut checks = tokio::task::JoinSet::new();
        for record in self.inner.store.servers(true).unwrap_or_default() {
            let sbi = self.inner.sbi.clone();
            checks.spawn(async move {
                let running = match sbi
                    .job(&record.placement.agent(), &record.placement.job_id)
                    .await
                {
                    Ok(view) => matches!(view.state, JobState::Starting | JobState::Running),
                    Err(e) => !e.not_found(),
                };
                (record, running)
            });
        }
        let mut active = Vec::new();
        while let Some(Ok((mut record, running))) = checks.join_next().await {
            if running {
                active.push(record);
            } else {
                record.active = false;
                if let Err(e) = self.inner.store.save_server(&record) {
                    tracing::error!("cannot save server record: {e}");
                }
            }
        }
        active.sort_by(|a, b| a.placed_unix_s.total_cmp(&b.placed_unix_s));
        active
    }

    fn save_server(&self, record: &ServerRecord) -> Result<(), Status> {
        self.inner.store.save_server(record).map_err(internal)
    }

    /// What the aggregator's agent is asked to run.
    fn server_request(
        &self,
        intent_id: &str,
        target: &ResolvedTarget,
        plan: &FlPlan,
    ) -> ServerRequest {
        let options = &self.inner.config.server;
        let (strategy, params) = strategy_request(&plan.strategy);
        let (dataset, model) = (
            target.pipeline.src.kind.to_string(),
            target.pipeline.model.kind.to_string(),
        );
        let centralised = target.plan.mode() == TrainingMode::Centralised;
        // A centralised trainer makes the passes FL would make, one epoch each.
        let (rounds, local_epochs) = if centralised {
            (plan.passes(), 1)
        } else {
            (plan.rounds, plan.local_epochs)
        };
        ServerRequest {
            mode: centralised.then_some(TrainingMode::Centralised),
            dataset: centralised.then(|| dataset.clone()),
            model: centralised.then(|| model.clone()),
            upstream: None,
            local_rounds: None,
            strategy: Some(strategy.to_owned()),
            strategy_params: params,
            rounds: Some(u64::from(rounds)),
            fraction_fit: Some(plan.fraction_fit),
            min_fit: Some(plan.min_fit as usize),
            min_available: Some(plan.min_available as usize),
            // A hierarchical job waits for every campus before round 1 and
            // goes on without one that is lost later.
            min_available_later: (plan.aggregation == intent::Aggregation::Hierarchical)
                .then_some(1),
            fraction_evaluate: (!options.federated_evaluation).then_some(0.0),
            min_evaluate: Some(plan.min_fit as usize),
            local_epochs: Some(i64::from(local_epochs)),
            batch_size: Some(i64::from(plan.batch_size)),
            learning_rate: Some(plan.learning_rate),
            round_timeout_s: options.round_timeout_s,
            seed: Some(options.seed),
            evaluate: options
                .central_evaluation
                .then_some(EvaluateRequest { dataset, model }),
            start_by_unix_s: Some(now_unix_s() + self.start_window_s()),
            tls: (!centralised && self.inner.tls.is_some()).then_some(true),
            dp: if centralised {
                None
            } else {
                crate::privacy::server_dp(plan)
            },
            labels: BTreeMap::from([
                ("intent".to_owned(), intent_id.to_owned()),
                (PLACEMENT_LABEL.to_owned(), placement_token(intent_id)),
            ]),
        }
    }

    /// Seconds an agent has to start a server: every attempt of the SBI call.
    fn start_window_s(&self) -> f64 {
        let t = &self.inner.config.timeouts;
        t.sbi_s * f64::from(t.sbi_attempts)
    }

    /// Handles Mo-Mo `Release`: the intent no longer needs its server; a
    /// server no intent needs is stopped.
    async fn release(&self, intent_id: &str) -> Result<proto::Status, Status> {
        let placing = self.inner.placing.lock().await;
        let own = format!("{intent_id}/");
        let mut to_stop = Vec::new();
        for mut record in self.inner.store.servers(true).map_err(internal)? {
            let before = record.intents.len();
            record.intents.retain(|i| i != intent_id);
            if record.intents.len() == before {
                continue;
            }
            record.targets.retain(|t| !t.starts_with(&own));
            self.save_server(&record)?;
            if record.intents.is_empty() {
                to_stop.push(record);
            }
        }
        drop(placing);
        let released = to_stop.len();
        for record in to_stop {
            self.stop_server(record).await;
        }
        Ok(proto::Status {
            status: format!("released {released} server(s)"),
            ..Default::default()
        })
    }

    /// Stops a server no intent needs and marks its record inactive; an
    /// agent that cannot be reached now is tried again in the background.
    async fn stop_server(&self, record: ServerRecord) {
        if self.try_stop(&record).await {
            return self.mark_inactive(record).await;
        }
        let mlfo = self.clone();
        tokio::spawn(async move {
            for attempt in 0..SWEEP_ATTEMPTS {
                tokio::time::sleep(std::time::Duration::from_secs(1 << attempt.min(5))).await;
                if mlfo.try_stop(&record).await {
                    return mlfo.mark_inactive(record).await;
                }
            }
            tracing::error!("gave up stopping FL server {}", record.placement.address);
        });
    }

    async fn try_stop(&self, record: &ServerRecord) -> bool {
        let agent = record.placement.agent();
        match self.inner.sbi.stop(&agent, &record.placement.job_id).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("stopping FL server {}: {e}", record.placement.address);
                false
            }
        }
    }

    async fn mark_inactive(&self, mut record: ServerRecord) {
        let _placing = self.inner.placing.lock().await;
        record.active = false;
        if let Err(e) = self.inner.store.save_server(&record) {
            tracing::error!("cannot save server record: {e}");
        }
    }
}

/// The label that ties a server job to the placement that asked for it.
const PLACEMENT_LABEL: &str = "placement";
/// Seconds past an agent's start limit before a sweep looks for late servers.
const SWEEP_MARGIN_S: f64 = 1.0;
/// Times a sweep tries to reach the agent.
const SWEEP_ATTEMPTS: u32 = 8;

/// A token unique to one placement attempt.
fn placement_token(intent_id: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{intent_id}#{}-{n}", std::process::id())
}

/// One async lock per key, made on first use and dropped when unused.
#[derive(Default)]
pub(crate) struct IntentLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl IntentLocks {
    /// Waits for and holds the lock of `key`.
    pub(crate) async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(key.to_owned()).or_default().clone()
        };
        KeyGuard {
            _guard: lock.lock_owned().await,
            _locks: self,
        }
    }
}

/// A held [`IntentLocks`] lock.
pub(crate) struct KeyGuard<'a> {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    _locks: &'a IntentLocks,
}

/// An aggregator slot held while its FL server starts; freed on drop.
struct Starting {
    mlfo: Mlfo,
    host: String,
}

impl Drop for Starting {
    fn drop(&mut self) {
        let mut starting = self.mlfo.lock_starting();
        if let Some(i) = starting.iter().position(|h| *h == self.host) {
            starting.swap_remove(i);
        }
    }
}

fn status(placement: &ServerPlacement, reused: bool) -> proto::Status {
    proto::Status {
        status: placement.address.clone(),
        job_id: placement.job_id.clone(),
        agent_url: placement.agent_url.clone(),
        agent_host: placement.agent_host.clone(),
        reused,
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// The node agent's strategy name and parameters for an intent's strategy:
/// the FL runtime's own configuration, so that its field names are used.
fn strategy_request(strategy: &Strategy) -> (&'static str, Map<String, Value>) {
    let mut config = StrategyConfig::of(strategy.kind());
    match (&mut config, strategy.clone()) {
        (StrategyConfig::Fedprox { proximal_mu }, Strategy::FedProx { proximal_mu: mu }) => {
            *proximal_mu = mu;
        }
        (
            StrategyConfig::Fedavgm {
                server_lr,
                momentum,
            },
            Strategy::FedAvgM {
                server_lr: lr,
                server_momentum,
            },
        ) => {
            *server_lr = lr as f32;
            *momentum = server_momentum as f32;
        }
        (
            StrategyConfig::Fedadam(p) | StrategyConfig::Fedyogi(p) | StrategyConfig::Fedadagrad(p),
            Strategy::FedAdam { server_lr }
            | Strategy::FedYogi { server_lr }
            | Strategy::FedAdagrad { server_lr },
        ) => p.eta = server_lr as f32,
        (StrategyConfig::Fedtrimmedavg { beta }, Strategy::FedTrimmedAvg { trim_fraction }) => {
            *beta = trim_fraction as f32;
        }
        (
            StrategyConfig::Krum { num_malicious, .. } | StrategyConfig::Bulyan { num_malicious },
            Strategy::Krum { byzantine_clients } | Strategy::Bulyan { byzantine_clients },
        ) => *num_malicious = byzantine_clients as usize,
        (
            StrategyConfig::Faulttolerantfedavg {
                min_completion_rate_fit,
            },
            Strategy::FaultTolerantFedAvg {
                min_completion_rate,
            },
        ) => *min_completion_rate_fit = min_completion_rate,
        _ => {}
    }
    let mut params = match serde_json::to_value(&config) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    params.remove("name");
    (strategy.kind().api_name(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_intent_strategy_reaches_the_agent_with_its_parameters() {
        let cases = [
            (Strategy::FedAvg, StrategyConfig::Fedavg),
            (
                Strategy::FedProx { proximal_mu: 0.3 },
                StrategyConfig::Fedprox { proximal_mu: 0.3 },
            ),
            (
                Strategy::FedAvgM {
                    server_lr: 0.5,
                    server_momentum: 0.8,
                },
                StrategyConfig::Fedavgm {
                    server_lr: 0.5,
                    momentum: 0.8,
                },
            ),
            (
                Strategy::FedTrimmedAvg {
                    trim_fraction: 0.25,
                },
                StrategyConfig::Fedtrimmedavg { beta: 0.25 },
            ),
            (
                Strategy::Krum {
                    byzantine_clients: 2,
                },
                StrategyConfig::Krum {
                    num_malicious: 2,
                    num_to_keep: 1,
                },
            ),
        ];
        for (strategy, expected) in cases {
            let (name, params) = strategy_request(&strategy);
            let spec = ServerRequest {
                strategy: Some(name.to_owned()),
                strategy_params: params,
                ..ServerRequest::default()
            }
            .into_spec(&node::spec::JSON_NAMES)
            .unwrap();
            assert_eq!(spec.strategy, expected, "{strategy:?}");
        }
        for strategy in [
            Strategy::FedAdam { server_lr: 0.5 },
            Strategy::FedYogi { server_lr: 0.5 },
            Strategy::FedAdagrad { server_lr: 0.5 },
        ] {
            let (name, params) = strategy_request(&strategy);
            assert_eq!(name, strategy.kind().api_name());
            assert_eq!(params["eta"], 0.5, "{strategy:?}: {params:?}");
        }
    }
}
