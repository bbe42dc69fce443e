//! The cloud MLFO's side of Mo-Mo: place an FL server for each
//! federated-aggregation intent (or reuse one with `sameserver`), and stop
//! it when no intent needs it any more.

use crate::momo::{proto, to_document};
use crate::planner::choose_aggregator;
use crate::record::{ServerPlacement, ServerRecord, now_unix_s};
use crate::service::Mlfo;
use intent::{FlPlan, ResolvedTarget, Strategy};
use node::spec::EvaluateRequest;
use node::{JobState, ServerRequest};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
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
    /// Handles Mo-Mo `Deploy`: resolves the aggregation intent and places its server.
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
        let plan = target.plan.federated().ok_or_else(|| {
            Status::invalid_argument("momo: only federated (privacy high) targets get an FL server")
        })?;
        let placing = self.inner.placing.lock().await;
        let active = self.refresh_servers().await;
        let source = target.pipeline.src.kind.to_string();
        let model = target.pipeline.model.kind.to_string();
        let strategy = plan.strategy.kind().to_string();
        if plan.same_server
            && let Some(mut shared) = active
                .iter()
                .find(|s| s.source == source && s.model == model && s.strategy == strategy)
                .cloned()
        {
            shared.intents.push(message.intent_id.clone());
            self.save_server(&shared)?;
            tracing::info!(intent = %message.intent_id, server = %shared.placement.address, "sameserver: reusing FL server");
            return Ok(status(&shared.placement, true));
        }
        let mut busy: Vec<String> = active
            .iter()
            .map(|s| s.placement.agent_host.clone())
            .collect();
        busy.extend(self.lock_starting().iter().cloned());
        let agent = choose_aggregator(&self.inner.config.inventory, &busy)
            .map_err(Status::resource_exhausted)?
            .clone();
        // The slot is taken while the agent starts the server, so other
        // placements need not wait (unless they may share this server).
        let _slot = Starting::take(self, &agent.name);
        if !plan.same_server {
            drop(placing);
        }
        let request = self.server_request(&message.intent_id, target, plan);
        let started = self
            .inner
            .sbi
            .start_server(&agent, &request)
            .await
            .map_err(|e| Status::unavailable(format!("FL server: {e}")))?;
        let placement = ServerPlacement {
            address: started.address.unwrap_or_default(),
            job_id: started.id,
            agent_host: agent.name.clone(),
            agent_url: agent.url.clone(),
            reused: false,
        };
        let record = ServerRecord {
            placement,
            source,
            model,
            strategy,
            intents: vec![message.intent_id.clone()],
            active: true,
            placed_unix_s: now_unix_s(),
        };
        self.save_server(&record)?;
        Ok(status(&record.placement, false))
    }

    fn lock_starting(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.inner
            .starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Active servers, after marking inactive those whose job has ended.
    async fn refresh_servers(&self) -> Vec<ServerRecord> {
        let mut active = Vec::new();
        for mut record in self.inner.store.servers(true).unwrap_or_default() {
            let running = match self
                .inner
                .sbi
                .job(&record.placement.agent(), &record.placement.job_id)
                .await
            {
                Ok(view) => matches!(view.state, JobState::Starting | JobState::Running),
                Err(e) => !e.not_found,
            };
            if running {
                active.push(record);
            } else {
                record.active = false;
                if let Err(e) = self.inner.store.save_server(&record) {
                    tracing::error!("cannot save server record: {e}");
                }
            }
        }
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
        ServerRequest {
            strategy: Some(strategy.to_owned()),
            strategy_params: params,
            rounds: Some(u64::from(plan.rounds)),
            fraction_fit: Some(plan.fraction_fit),
            min_fit: Some(plan.min_fit as usize),
            min_available: Some(plan.min_available as usize),
            fraction_evaluate: None,
            min_evaluate: Some(plan.min_fit as usize),
            local_epochs: Some(i64::from(plan.local_epochs)),
            batch_size: Some(i64::from(plan.batch_size)),
            learning_rate: Some(plan.learning_rate),
            round_timeout_s: options.round_timeout_s,
            seed: Some(options.seed),
            evaluate: options.central_evaluation.then(|| EvaluateRequest {
                dataset: target.pipeline.src.kind.to_string(),
                model: target.pipeline.model.kind.to_string(),
            }),
            labels: BTreeMap::from([("intent".to_owned(), intent_id.to_owned())]),
        }
    }

    /// Handles Mo-Mo `Release`: the intent no longer needs its server; a
    /// server no intent needs is stopped.
    async fn release(&self, intent_id: &str) -> Result<proto::Status, Status> {
        let _placing = self.inner.placing.lock().await;
        let mut released = 0;
        for mut record in self.inner.store.servers(true).map_err(internal)? {
            let before = record.intents.len();
            record.intents.retain(|i| i != intent_id);
            if record.intents.len() == before {
                continue;
            }
            released += 1;
            if record.intents.is_empty() {
                self.inner
                    .sbi
                    .stop(&record.placement.agent(), &record.placement.job_id)
                    .await
                    .map_err(|e| Status::unavailable(format!("stopping FL server: {e}")))?;
                record.active = false;
            }
            self.save_server(&record)?;
        }
        Ok(proto::Status {
            status: format!("released {released} server(s)"),
            ..Default::default()
        })
    }
}

/// An aggregator slot held while its FL server starts; freed on drop.
struct Starting<'a> {
    mlfo: &'a Mlfo,
    host: String,
}

impl<'a> Starting<'a> {
    fn take(mlfo: &'a Mlfo, host: &str) -> Self {
        mlfo.lock_starting().push(host.to_owned());
        Self {
            mlfo,
            host: host.to_owned(),
        }
    }
}

impl Drop for Starting<'_> {
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

/// The node agent's strategy name and parameters for an intent's strategy.
fn strategy_request(strategy: &Strategy) -> (&'static str, Map<String, Value>) {
    let params = match *strategy {
        Strategy::FedAvg => json!({}),
        Strategy::FedMedian => json!({}),
        Strategy::FedProx { proximal_mu } => json!({ "proximal_mu": proximal_mu }),
        Strategy::FedAvgM {
            server_lr,
            server_momentum,
        } => json!({ "server_lr": server_lr, "momentum": server_momentum }),
        Strategy::FedAdam { server_lr } => json!({ "eta": server_lr }),
        Strategy::FedTrimmedAvg { trim_fraction } => json!({ "beta": trim_fraction }),
        Strategy::Krum { byzantine_clients } => json!({ "num_malicious": byzantine_clients }),
    };
    let name = match strategy {
        Strategy::FedAvg => "fedavg",
        Strategy::FedMedian => "fedmedian",
        Strategy::FedProx { .. } => "fedprox",
        Strategy::FedAvgM { .. } => "fedavgm",
        Strategy::FedAdam { .. } => "fedadam",
        Strategy::FedTrimmedAvg { .. } => "fedtrimmedavg",
        Strategy::Krum { .. } => "krum",
    };
    (name, params.as_object().cloned().unwrap_or_default())
}
