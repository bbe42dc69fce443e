//! The MLFO's domain object: configuration, catalog, store, clients and the
//! running intents. HTTP and gRPC handlers call into it.

use crate::config::{AgentEntry, MlfoConfig, Role};
use crate::cost::Choice;
use crate::metrics::Metrics;
use crate::momo::proto::orchestrate_client::OrchestrateClient;
use crate::planner::CohortRequest;
use crate::planner::select_cohort;
use crate::record::{
    CohortChoice, IntentRecord, IntentState, JobRecord, ServerRecord, Timings, now_unix_s,
};
use crate::sbi::Sbi;
use crate::store::{Store, StoreError};
use crate::submission::{Prepared, Submission, prepare};
use intent::{Catalog, FlPlan, ResolvedTarget, TrainingMode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Why a submission or an operation on an intent failed.
#[derive(Debug, thiserror::Error)]
pub enum MlfoError {
    /// The intent or the request is invalid: the text names the field and the fix (400).
    #[error("{0}")]
    Invalid(String),
    /// No intent has this id (404).
    #[error("no intent {0:?}")]
    NotFound(String),
    /// The operation does not apply in the intent's state (409).
    #[error("{0}")]
    Conflict(String),
    /// This MLFO's role does not serve the request (400).
    #[error("{0}")]
    WrongRole(String),
    /// The state database failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something of the MLFO's own failed, not the request (500).
    #[error("{0}")]
    Internal(String),
}

/// A target with its FL plan.
pub(crate) type PlannedTarget = (ResolvedTarget, FlPlan);

/// Largest number of intents the MLFO keeps running at once.
pub const MAX_ACTIVE_INTENTS: usize = 1000;

/// Most intents stored under one `intentID` (as `ID`, `ID-2`, ...).
pub const MAX_SAME_ID: u32 = 100_000;

pub(crate) struct Inner {
    pub(crate) config: MlfoConfig,
    pub(crate) catalog: Catalog,
    pub(crate) store: Store,
    pub(crate) metrics: Metrics,
    pub(crate) sbi: Sbi,
    pub(crate) parent: Option<crate::momo::ParentClient>,
    /// The tokens read from `auth:`.
    pub(crate) credentials: crate::config::Credentials,
    /// The TLS material read from `tls:`.
    pub(crate) tls: Option<crate::config::TlsMaterial>,
    /// Running intent tasks (edge).
    pub(crate) tasks: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Serialises the cloud's reads and writes of server records.
    pub(crate) placing: tokio::sync::Mutex<()>,
    /// Serialises `sameserver` Deploys (cloud), so two never start two servers to share.
    pub(crate) sharing: tokio::sync::Mutex<()>,
    /// Aggregators of FL servers being started (cloud), counted as busy.
    pub(crate) starting: Mutex<Vec<String>>,
    /// Serialises choosing an intent's id and storing it (edge).
    pub(crate) admitting: Mutex<()>,
    /// The admission queue (edge): intents waiting for an aggregator.
    pub(crate) queue: crate::queue::AdmissionQueue,
    /// Deploys of one intent run one at a time (cloud), so that repeated
    /// Deploys of an intent (per-client Mo-Mo, retries) share one server.
    pub(crate) deploying: crate::cloud::IntentLocks,
    /// The cost model's last measured inputs (edge).
    pub(crate) measured: crate::measure::Reuse,
}

/// An MLFO: cheap to clone, shared by its handlers and tasks.
#[derive(Clone)]
pub struct Mlfo {
    pub(crate) inner: Arc<Inner>,
}

impl Mlfo {
    /// Builds the MLFO from its configuration: loads the catalog (built-in,
    /// merged with the configured file) and opens the state database.
    pub fn new(config: MlfoConfig) -> Result<Mlfo, MlfoError> {
        let catalog = match &config.catalog {
            Some(path) => Catalog::builtin()
                .merge(Catalog::load(path).map_err(|e| MlfoError::Invalid(e.to_string()))?),
            None => Catalog::builtin(),
        };
        let store = Store::open(&config.state)?;
        let metrics = Metrics::new(&config.name);
        let credentials = config.auth.read().map_err(MlfoError::Invalid)?;
        let tls = config
            .tls
            .as_ref()
            .map(crate::config::TlsOptions::read)
            .transpose()
            .map_err(MlfoError::Invalid)?;
        let roots = tls.as_ref().map(|t| &t.roots);
        let sbi = Sbi::new(
            &config.timeouts,
            metrics.clone(),
            credentials.token.as_deref(),
            roots,
        )?;
        let parent = match &config.parent {
            Some(url) => {
                let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                    .map_err(|e| MlfoError::Invalid(format!("parent: {url:?}: {e}")))?
                    .connect_timeout(config.timeouts.momo())
                    .timeout(config.timeouts.momo());
                if let Some(roots) = roots {
                    let ca = tonic::transport::Certificate::from_pem(roots.pem());
                    endpoint = endpoint
                        .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(ca))
                        .map_err(|e| MlfoError::Invalid(format!("parent: TLS: {e}")))?;
                }
                let token = crate::momo::PresentToken::new(credentials.token.as_deref())?;
                Some(OrchestrateClient::with_interceptor(
                    endpoint.connect_lazy(),
                    token,
                ))
            }
            None => None,
        };
        Ok(Mlfo {
            inner: Arc::new(Inner {
                config,
                catalog,
                store,
                metrics,
                sbi,
                parent,
                credentials,
                tls,
                tasks: Mutex::new(HashMap::new()),
                placing: tokio::sync::Mutex::new(()),
                sharing: tokio::sync::Mutex::new(()),
                starting: Mutex::new(Vec::new()),
                admitting: Mutex::new(()),
                queue: crate::queue::AdmissionQueue::default(),
                deploying: crate::cloud::IntentLocks::default(),
                measured: crate::measure::Reuse::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MlfoConfig {
        &self.inner.config
    }

    /// Takes an intent (edge role): checks and resolves it, chooses its
    /// cohort, plans each job with the cost model (refusing, 409, a
    /// deadline no option meets), stores it as `accepted` and starts
    /// deploying it in the background. Returns the stored record.
    pub async fn submit(&self, submission: &Submission) -> Result<IntentRecord, MlfoError> {
        let received = now_unix_s();
        let (prepared, cohort, hosts) = self.admissible(submission)?;
        let mut notes = plan_notes(&prepared.targets, &submission.notes);
        let plans = crate::hierarchy::plans(self, &prepared.targets, &hosts, &mut notes)
            .await
            .map_err(|why| MlfoError::Conflict(format!("{}: {why}", submission.file)))?;
        let planned_s = now_unix_s() - received;
        let active = self.active_count();
        if active >= MAX_ACTIVE_INTENTS {
            return Err(MlfoError::Conflict(format!(
                "{active} intents are running, the limit is {MAX_ACTIVE_INTENTS}; wait for some to finish"
            )));
        }
        let admitting = self
            .inner
            .admitting
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let id = self.unique_id(&prepared.intent.intent_id)?;
        let now = now_unix_s();
        let record = IntentRecord {
            id,
            intent_id: prepared.intent.intent_id.clone(),
            state: IntentState::Accepted,
            reason: None,
            received_unix_s: received,
            updated_unix_s: now,
            document: serde_json::to_value(&prepared.intent).unwrap_or_default(),
            cohort: CohortChoice {
                name: cohort.name.clone(),
                hosts: hosts.iter().map(|a| a.name.clone()).collect(),
            },
            timings: Timings {
                planned_s: Some(planned_s),
                ..Timings::default()
            },
            jobs: prepared
                .targets
                .iter()
                .zip(plans)
                .map(|((t, p), choice)| job_record(t, p, choice))
                .collect(),
            meters: Vec::new(),
            notes,
            queue: None,
            momo: crate::record::MomoStats {
                mode: submission.momo.unwrap_or(self.inner.config.momo),
                ..Default::default()
            },
            skip_clients: submission.skip_clients,
        };
        self.inner.store.save_intent(&record)?;
        drop(admitting);
        tracing::info!(intent = %record.id, clients = hosts.len(), "intent accepted");
        self.spawn(
            record.id.clone(),
            crate::edge::run(self.clone(), record.clone(), prepared.targets, hosts),
        );
        Ok(record)
    }

    /// The checks of a submission before it is planned: the role, the
    /// intent itself, its cohort and each target's `minav`.
    fn admissible(
        &self,
        submission: &Submission,
    ) -> Result<(Prepared, CohortRequest, Vec<AgentEntry>), MlfoError> {
        if self.inner.config.role != Role::Edge {
            return Err(MlfoError::WrongRole(
                "this is a cloud MLFO: send intents to an edge MLFO (role: edge)".to_owned(),
            ));
        }
        let prepared = prepare(&self.inner.catalog, submission).map_err(MlfoError::Invalid)?;
        let mut cohort = submission.cohort.clone();
        let from_intent = prepared.targets.iter().find_map(|(_, p)| p.cohort.clone());
        if cohort == Default::default()
            && let Some(c) = from_intent
        {
            cohort.hosts = c.hosts;
            cohort.size = if cohort.hosts.is_empty() {
                c.size
            } else {
                None
            };
        }
        let busy = self.busy_hosts();
        let hosts: Vec<AgentEntry> = select_cohort(&self.inner.config.inventory, &cohort, &busy)
            .map_err(|e| MlfoError::Invalid(e.to_string()))?
            .into_iter()
            .cloned()
            .collect();
        for (target, plan) in &prepared.targets {
            if plan.min_available as usize > hosts.len() {
                return Err(MlfoError::Invalid(format!(
                    "{}: target {}: minav ({}) is more than the cohort's {} client(s); \
                     lower minav or choose a larger cohort",
                    submission.file,
                    target.id,
                    plan.min_available,
                    hosts.len()
                )));
            }
        }
        Ok((prepared, cohort, hosts))
    }

    /// Runs `task` for intent `id`, remembered so that it can be cancelled.
    pub(crate) fn spawn(&self, id: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|_, h| !h.is_finished());
        tasks.insert(id, handle);
    }

    fn active_count(&self) -> usize {
        let tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.values().filter(|h| !h.is_finished()).count()
    }

    /// Client hosts of intents that are not final.
    fn busy_hosts(&self) -> Vec<String> {
        self.inner
            .store
            .unfinished_intents()
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.cohort.hosts)
            .collect()
    }

    /// `intent_id`, or `intent_id-N` with the first N that is free.
    fn unique_id(&self, intent_id: &str) -> Result<String, MlfoError> {
        let clean: String = intent_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if !self.inner.store.has_intent(&clean)? {
            return Ok(clean);
        }
        for n in 2..=MAX_SAME_ID {
            let id = format!("{clean}-{n}");
            if !self.inner.store.has_intent(&id)? {
                return Ok(id);
            }
        }
        Err(MlfoError::Conflict(format!(
            "{MAX_SAME_ID} intents already have intentID {intent_id:?}; give this one another intentID"
        )))
    }

    /// Every intent, oldest first.
    pub fn intents(&self) -> Result<Vec<IntentRecord>, MlfoError> {
        let mut records = self.inner.store.intents()?;
        records
            .iter_mut()
            .for_each(|r| self.inner.queue.annotate(r));
        Ok(records)
    }

    /// One intent.
    pub fn intent(&self, id: &str) -> Result<IntentRecord, MlfoError> {
        let mut record = self
            .inner
            .store
            .intent(id)?
            .ok_or_else(|| MlfoError::NotFound(id.to_owned()))?;
        self.inner.queue.annotate(&mut record);
        Ok(record)
    }

    /// The FL servers the cloud placed (active ones and past ones).
    pub fn servers(&self) -> Result<Vec<ServerRecord>, MlfoError> {
        Ok(self.inner.store.servers(false)?)
    }

    /// Stops an intent everywhere: its task, its clients, its server (unless
    /// another intent shares it); the intent ends `cancelled`.
    pub async fn cancel(&self, id: &str) -> Result<IntentRecord, MlfoError> {
        let handle = {
            let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
            tasks.remove(id)
        };
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
        let mut record = self.intent(id)?;
        if record.state.is_final() {
            return Err(MlfoError::Conflict(format!(
                "intent {id} is already {}",
                record.state.as_str()
            )));
        }
        let problems = crate::edge::tear_down(self, &mut record).await;
        record.reason = (!problems.is_empty())
            .then(|| format!("cancelled; while stopping: {}", problems.join("; ")));
        crate::edge::finish(self, &mut record, IntentState::Cancelled);
        Ok(record)
    }

    /// Takes up the intents a previous run left unfinished: jobs still
    /// training are followed again; queued intents keep their place in the
    /// queue; intents caught placing their servers start again; intents
    /// caught starting clients are rolled back and marked `lost` with the reason.
    pub fn recover(&self) -> Result<usize, MlfoError> {
        let mut resumed = 0;
        for record in self.inner.store.unfinished_intents()? {
            if record.state == IntentState::Queued {
                self.inner.queue.join(&record.id, record.received_unix_s);
            }
            resumed += 1;
            tracing::info!(intent = %record.id, state = record.state.as_str(), "recovering intent");
            self.spawn(record.id.clone(), crate::edge::resume(self.clone(), record));
        }
        Ok(resumed)
    }

    /// A stored intent's targets and clients, resolved again (a queued intent
    /// taken up after a restart).
    pub(crate) fn prepared_again(
        &self,
        record: &IntentRecord,
    ) -> Result<(Vec<PlannedTarget>, Vec<AgentEntry>), String> {
        let document = serde_json::to_vec(&record.document).map_err(|e| e.to_string())?;
        let submission = Submission {
            file: format!("intent {}", record.id),
            document,
            ..Default::default()
        };
        let prepared = prepare(&self.inner.catalog, &submission).map_err(|e| {
            format!("after the MLFO restarted, the queued intent no longer resolves: {e}")
        })?;
        let hosts = record
            .cohort
            .hosts
            .iter()
            .map(|h| {
                self.inner
                    .config
                    .inventory
                    .iter()
                    .find(|a| &a.name == h)
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "after the MLFO restarted, client {h} is no longer in the inventory"
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok((prepared.targets, hosts))
    }

    /// OpenMetrics text of the MLFO's metrics.
    pub fn metrics_text(&self) -> Result<String, MlfoError> {
        let counts = self.inner.store.intent_counts()?;
        self.inner
            .metrics
            .encode(&counts)
            .map_err(|e| MlfoError::Internal(format!("encoding metrics: {e}")))
    }
}

/// The submission's notes, and how centralised targets read settings that
/// only federated training has.
fn plan_notes(targets: &[PlannedTarget], notes: &[String]) -> Vec<String> {
    let mut notes = notes.to_vec();
    for (target, plan) in targets {
        if target.plan.mode() != TrainingMode::Centralised {
            continue;
        }
        notes.push(format!(
            "target {}: privacylevel low, centralised training: the clients send their data to one trainer, \
             which makes {} passes over it (rounds x local_epochs x fracfit); avgalgo does not apply",
            target.id,
            plan.passes()
        ));
        if plan.same_server {
            notes.push(format!(
                "target {}: sameserver: a central trainer holds one intent's data and is never shared",
                target.id
            ));
        }
    }
    notes
}

/// A job's record as submitted; its aggregation is the plan's choice
/// where it has one.
fn job_record(target: &ResolvedTarget, plan: &FlPlan, choice: Option<Choice>) -> JobRecord {
    let mode = target.plan.mode();
    let (strategy, rounds) = match mode {
        TrainingMode::Federated => (plan.strategy.kind().to_string(), plan.rounds),
        TrainingMode::Centralised => (mode.to_string(), plan.passes()),
    };
    JobRecord {
        target: target.id.clone(),
        min_available: plan.min_available,
        mode,
        source: target.pipeline.src.kind.to_string(),
        model: target.pipeline.model.kind.to_string(),
        strategy,
        rounds_planned: u64::from(rounds),
        passes_planned: u64::from(plan.passes()),
        rounds_before: 0,
        target_accuracy: plan.target_accuracy,
        deadline_s: plan.deadline_s,
        aggregation: choice.as_ref().map_or(plan.aggregation, |c| c.chosen),
        server: None,
        edge_aggregators: Vec::new(),
        plan: choice,
        outcome: None,
        clients: Vec::new(),
        initial_accuracy: None,
        rounds: Vec::new(),
    }
}
