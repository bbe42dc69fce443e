//! The agent's jobs: FL servers and clients running as tokio tasks, kept in
//! a small registry with their state, config and results.

use crate::metrics::NodeMetrics;
use crate::spec::{ClientJobSpec, ServerSpec};
use fl::client::{ClientOptions, ClientSummary, run_client};
use fl::history::History;
use fl::server::{ClientManager, FlServer, Labels};
use intent::TrainingMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// Most servers (FL servers and central trainers) one agent runs at once.
pub const MAX_SERVERS: usize = 64;
/// How many ports above the base the agent tries for FL servers.
const PORT_RANGE: u16 = 1000;
/// Longest wait between a client's connection attempts: with the default
/// attempts, an unreachable server fails the client within about a minute.
const CONNECT_MAX_BACKOFF: Duration = Duration::from_secs(3);
/// Flow-control window of a grouped client's connection: what the server
/// may send it ahead of its turn to train.
const GROUPED_FLOW_WINDOW: u32 = 64 * 1024;
/// How long `stop` waits for a stopped server's port to be free again.
const PORT_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Where the agent runs and what its jobs get by default.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent's own IP; FL servers listen on it.
    pub ip: IpAddr,
    /// Host put in the FL server addresses the agent replies with.
    pub advertise: String,
    /// First FL server port; the next servers take the next free ones.
    pub fl_port_base: u16,
    /// Dataset directory (else `$DMO_DATA_DIR`, then the system locations).
    pub data_dir: Option<PathBuf>,
    /// Training threads per client when a request does not say.
    pub threads: usize,
    /// The certificate and key of FL servers asked for with `tls`.
    pub tls_identity: Option<fl::tls::ServerTls>,
    /// The roots FL clients (and edge aggregators upstream) asked for
    /// with `tls` trust.
    pub tls_roots: Option<fl::tls::ClientTls>,
    /// The process's group when it serves many hosts: clients then connect
    /// from `ip`, share the dataset and training threads, hold a model
    /// only while they train, and train in the group's slots.
    pub group: Option<crate::Group>,
}

/// Why a job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No job has this id.
    #[error("no job {0:?}")]
    NotFound(String),
    /// Every port in the FL range is taken.
    #[error("no free FL port on {ip} in {from}..{to}")]
    NoFreePort {
        /// The agent's IP.
        ip: IpAddr,
        /// First port tried.
        from: u16,
        /// Last port tried, exclusive.
        to: u16,
    },
    /// Server-side evaluation could not be set up (e.g. dataset missing).
    #[error("evaluate: {0}")]
    Evaluate(String),
    /// The agent already runs as many servers as it may.
    #[error(
        "{running} servers run on this agent, the limit is {limit}; stop one or use another agent"
    )]
    TooManyServers {
        /// Servers running.
        running: usize,
        /// The limit.
        limit: usize,
    },
    /// A request asks for TLS that this agent was not given.
    #[error("tls: {0}")]
    NoTls(&'static str),
    /// The server could not be started by the request's `start_by_unix_s`
    /// (its caller has stopped waiting), so nothing was started.
    #[error("not started: ready {late_s:.3} s after start_by_unix_s, the caller has given up")]
    TooLate {
        /// Seconds past the limit.
        late_s: f64,
    },
}

/// What a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// An FL server.
    Server,
    /// An FL client.
    Client,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Preparing (a client loading its data).
    Starting,
    /// Serving or training.
    Running,
    /// Finished normally.
    Completed,
    /// Finished with an error (see `reason`).
    Failed,
    /// Stopped on request.
    Stopped,
}

impl JobState {
    /// Every state, for metrics.
    pub const ALL: [JobState; 5] = [
        JobState::Starting,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
        JobState::Stopped,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Stopped => "stopped",
        }
    }

    fn active(self) -> bool {
        matches!(self, JobState::Starting | JobState::Running)
    }
}

impl JobKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Server => "server",
            JobKind::Client => "client",
        }
    }
}

/// What a client did, as reported in its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// Fit instructions answered.
    pub fits: u64,
    /// Evaluate instructions answered.
    pub evaluates: u64,
    /// Instructions that failed locally.
    pub errors: u64,
    /// Seconds of local training.
    pub train_seconds: f64,
    /// Examples trained on, summed over fits (a centralised client: the
    /// training examples it sent).
    pub train_examples: u64,
    /// Bytes of data a centralised client sent to the central trainer.
    #[serde(default)]
    pub uploaded_bytes: u64,
}

impl From<&ClientSummary> for ClientReport {
    fn from(s: &ClientSummary) -> Self {
        Self {
            fits: s.fits,
            evaluates: s.evaluates,
            errors: s.errors,
            train_seconds: s.train_seconds,
            train_examples: s.train_examples,
            uploaded_bytes: 0,
        }
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Server or client.
    pub kind: JobKind,
    /// Current state.
    pub state: JobState,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A server's address, HOST:PORT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The request that started it.
    pub config: serde_json::Value,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Start time, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// End time, seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_unix_s: Option<f64>,
    /// A server's live history: rounds with participants, loss, accuracy, durations, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// A client's summary, once it finished its session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<ClientReport>,
}

/// A started job: its id and, for servers, the address clients join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    /// Job id.
    pub id: String,
    /// A server's address, HOST:PORT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

struct Job {
    kind: JobKind,
    state: JobState,
    reason: Option<String>,
    address: Option<String>,
    port: Option<u16>,
    config: serde_json::Value,
    labels: BTreeMap<String, String>,
    started: f64,
    finished: Option<f64>,
    history: Option<Arc<RwLock<History>>>,
    clients: Option<Arc<ClientManager>>,
    summary: Option<ClientReport>,
    task: Option<JoinHandle<()>>,
    /// Set on stop: a central trainer's training thread ends at its next pass.
    cancel: Arc<AtomicBool>,
}

impl Job {
    fn view(&self, id: u64) -> JobView {
        JobView {
            id: job_id(id),
            kind: self.kind,
            state: self.state,
            reason: self.reason.clone(),
            address: self.address.clone(),
            config: self.config.clone(),
            labels: self.labels.clone(),
            started_unix_s: self.started,
            finished_unix_s: self.finished,
            history: self
                .history
                .as_ref()
                .map(|h| h.read().unwrap_or_else(PoisonError::into_inner).clone()),
            summary: self.summary.clone(),
        }
    }
}

/// The jobs of one agent, by number.
pub struct JobRegistry {
    next: u64,
    jobs: BTreeMap<u64, Job>,
}

/// Job numbers of one agent process start at its start time (in
/// milliseconds since the Unix epoch) times this, so that an agent restarted
/// later never hands out an id an MLFO still holds for a job of the earlier
/// process (unless that one started more than this many jobs a millisecond).
const IDS_PER_MILLISECOND: u64 = 1 << 10;

impl Default for JobRegistry {
    fn default() -> Self {
        Self {
            next: ((now() * 1e3) as u64).saturating_mul(IDS_PER_MILLISECOND),
            jobs: BTreeMap::new(),
        }
    }
}

impl JobRegistry {
    fn insert(&mut self, job: Job) -> u64 {
        self.next += 1;
        self.jobs.insert(self.next, job);
        self.next
    }

    fn ports_in_use(&self) -> Vec<u16> {
        self.jobs
            .values()
            .filter(|j| j.state.active())
            .filter_map(|j| j.port)
            .collect()
    }

    /// Jobs per kind and state.
    pub fn counts(&self) -> Vec<(JobKind, JobState, usize)> {
        let mut out = Vec::new();
        for kind in [JobKind::Server, JobKind::Client] {
            for state in JobState::ALL {
                let n = self
                    .jobs
                    .values()
                    .filter(|j| j.kind == kind && j.state == state)
                    .count();
                out.push((kind, state, n));
            }
        }
        out
    }
}

/// The name a centralised client's part goes by at the trainer: its cohort
/// and index, so that a part sent twice replaces the first.
fn sender_name(labels: &BTreeMap<String, String>, id: u64, index: usize) -> String {
    match (labels.get("intent"), labels.get("cohort")) {
        (_, Some(cohort)) | (Some(cohort), None) => format!("{cohort}/{index}"),
        (None, None) => format!("job {}/{index}", job_id(id)),
    }
}

fn job_id(n: u64) -> String {
    format!("j{n}")
}

fn parse_id(id: &str) -> Result<u64, JobError> {
    id.strip_prefix('j')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| JobError::NotFound(id.to_owned()))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The node agent: starts, lists and stops jobs.
#[derive(Clone)]
pub struct Agent {
    config: Arc<AgentConfig>,
    jobs: Arc<Mutex<JobRegistry>>,
    metrics: Arc<NodeMetrics>,
    probing: Arc<tokio::sync::Mutex<()>>,
}

impl Agent {
    /// An agent with no jobs yet.
    pub fn new(config: AgentConfig) -> Self {
        Self {
            config: Arc::new(config),
            jobs: Arc::default(),
            metrics: Arc::new(NodeMetrics::new()),
            probing: Arc::default(),
        }
    }

    /// Held while a training probe runs: one at a time.
    pub(crate) fn probing(&self) -> &tokio::sync::Mutex<()> {
        &self.probing
    }

    /// `spec` with the agent's certificate (and, for an edge aggregator,
    /// its roots) when it asks for TLS; an error naming the missing flag.
    fn with_tls(&self, mut spec: ServerSpec) -> Result<ServerSpec, JobError> {
        if !spec.tls {
            return Ok(spec);
        }
        spec.config.tls = Some(self.config.tls_identity.clone().ok_or(JobError::NoTls(
            "this agent has no certificate for FL servers; start it with --tls-cert and --tls-key",
        ))?);
        if let Some(edge) = &mut spec.edge {
            edge.client.tls = Some(self.config.tls_roots.clone().ok_or(JobError::NoTls(
                "this agent has no roots for its upstream server; start it with --root-certificates",
            ))?);
        }
        Ok(spec)
    }

    /// What the ML side needs to build the trainer of client job `spec`.
    pub(crate) fn ml_spec(&self, spec: &ClientJobSpec) -> ml::ClientSpec {
        let per_client = spec.threads.unwrap_or(self.config.threads);
        ml::ClientSpec {
            dataset: spec.dataset,
            model: spec.model,
            data_dir: self.config.data_dir.clone(),
            seed: spec
                .partition
                .seed
                .wrapping_add(spec.partition.index as u64),
            partition: spec.partition,
            threads: self
                .config
                .group
                .as_ref()
                .map_or(per_client, |g| g.pool_threads(per_client)),
            attack: spec.attack,
            local_dp: spec.local_dp.clone(),
            pooled: self.config.group.is_some(),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, JobRegistry> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn metric_labels(id: u64, labels: &BTreeMap<String, String>) -> Labels {
        let mut l = vec![("job".to_owned(), job_id(id))];
        l.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        l
    }

    /// Binds the next free FL port and starts an FL server job on it, or a
    /// centralised plan's trainer when the spec names one.
    // Over 80 lines: one registry lock covers binding the port and recording the job, for both kinds of server.
    pub async fn start_server(&self, spec: ServerSpec) -> Result<Started, JobError> {
        let spec = self.with_tls(spec)?;
        let mut evaluator = match spec.evaluate {
            Some((dataset, model)) => {
                let dir = self.config.data_dir.clone();
                let built = tokio::task::spawn_blocking(move || {
                    ml::CentralEvaluator::new(dataset, model, dir.as_deref(), 0)
                })
                .await
                .map_err(|e| JobError::Evaluate(e.to_string()))?
                .map_err(|e| JobError::Evaluate(e.to_string()))?;
                Some(built)
            }
            None => None,
        };
        if let Some(limit) = spec.start_by_unix_s
            && now() > limit
        {
            return Err(JobError::TooLate {
                late_s: now() - limit,
            });
        }
        let mut registry = self.registry();
        let running = registry.ports_in_use().len();
        if running >= MAX_SERVERS {
            return Err(JobError::TooManyServers {
                running,
                limit: MAX_SERVERS,
            });
        }
        let (listener, port) = self.bind_fl_port(&registry.ports_in_use())?;
        let address = format!("{}:{port}", self.config.advertise);
        let id = registry.next + 1;
        let mut job = Job {
            kind: JobKind::Server,
            state: JobState::Running,
            reason: None,
            address: Some(address.clone()),
            port: Some(port),
            config: spec.shown,
            labels: spec.labels.clone(),
            started: now(),
            finished: None,
            history: None,
            clients: None,
            summary: None,
            task: None,
            cancel: Arc::default(),
        };
        let agent = self.clone();
        let task = if let Some((dataset, model)) = spec.trainer {
            let trainer = self.trainer_job(&spec.config, evaluator.take(), dataset, model)?;
            let history = Arc::new(RwLock::new(History {
                strategy: "centralised".to_owned(),
                rounds_planned: spec.config.rounds,
                ..History::default()
            }));
            job.history = Some(history.clone());
            let cancel = job.cancel.clone();
            tokio::spawn(async move {
                let result = crate::central::trainer::run(listener, trainer, history, cancel).await;
                agent.finish(id, result, None);
            })
        } else {
            let seed = spec.config.seed;
            let server = FlServer::new(
                spec.config,
                self.metrics
                    .fl
                    .for_server(Self::metric_labels(id, &spec.labels)),
            );
            job.history = Some(server.history());
            job.clients = Some(server.clients());
            let strategy = match &spec.dp {
                Some(dp) => dp.wrap(spec.strategy.build(), seed),
                None => spec.strategy.build(),
            };
            let evaluate_fn = evaluator.map(ml::CentralEvaluator::into_evaluate_fn);
            let edge = spec.edge;
            tokio::spawn(async move {
                let outcome = match edge {
                    Some(edge) => server.run_edge(listener, strategy, edge).await,
                    None => server.run(listener, strategy, None, evaluate_fn).await,
                };
                let result = match outcome {
                    Ok(h) => h.error.map_or(Ok(()), Err),
                    Err(e) => Err(e.to_string()),
                };
                agent.finish(id, result, None);
            })
        };
        job.task = Some(task);
        registry.insert(job);
        tracing::info!(job = %job_id(id), %address, central = spec.trainer.is_some(), "server started");
        Ok(Started {
            id: job_id(id),
            address: Some(address),
        })
    }

    /// A central trainer's settings from a server's configuration.
    fn trainer_job(
        &self,
        config: &fl::server::ServerConfig,
        evaluator: Option<ml::CentralEvaluator>,
        dataset: ml::datasets::DatasetName,
        model: ml::ModelName,
    ) -> Result<crate::central::TrainerJob, JobError> {
        let fit = ml::FitConfig::from_config(&config.fit_config)
            .map_err(|e| JobError::Evaluate(e.to_string()))?;
        Ok(crate::central::TrainerJob {
            dataset,
            model,
            fit,
            passes: config.rounds,
            parts_wanted: config.min_available_clients,
            evaluator,
            seed: config.seed,
            threads: self.config.threads,
        })
    }

    fn bind_fl_port(&self, taken: &[u16]) -> Result<(tokio::net::TcpListener, u16), JobError> {
        let from = self.config.fl_port_base;
        let to = from.saturating_add(PORT_RANGE);
        for port in (from..to).filter(|p| !taken.contains(p)) {
            let Ok(std_listener) =
                std::net::TcpListener::bind(SocketAddr::new(self.config.ip, port))
            else {
                continue;
            };
            if std_listener.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) {
                return Ok((listener, port));
            }
        }
        Err(JobError::NoFreePort {
            ip: self.config.ip,
            from,
            to,
        })
    }

    /// Starts a client job: it loads its data, then joins the FL server, or
    /// (centralised mode) sends its data to the central trainer.
    pub fn start_client(&self, spec: ClientJobSpec) -> Started {
        let ml_spec = self.ml_spec(&spec);
        let mut registry = self.registry();
        let id = registry.next + 1;
        let labels = Self::metric_labels(id, &spec.labels);
        let sender = sender_name(&spec.labels, id, spec.partition.index);
        let agent = self.clone();
        let (server, attempts, tls) = (spec.server, spec.connect_attempts, spec.tls);
        let task = match spec.mode {
            TrainingMode::Federated => tokio::spawn(async move {
                let result = agent
                    .run_fl_client(id, &server, ml_spec, attempts, tls)
                    .await;
                if let Ok(summary) = &result {
                    agent.metrics.client_trained(&labels, summary);
                }
                let report = result.as_ref().ok().map(ClientReport::from);
                agent.finish(id, result.map(drop), report);
            }),
            TrainingMode::Centralised => tokio::spawn(async move {
                let result = agent
                    .send_part(id, &server, &sender, ml_spec, attempts)
                    .await;
                let report = result.as_ref().ok().cloned();
                agent.finish(id, result.map(drop), report);
            }),
        };
        registry.insert(Job {
            kind: JobKind::Client,
            state: JobState::Starting,
            reason: None,
            address: None,
            port: None,
            config: spec.shown,
            labels: spec.labels,
            started: now(),
            finished: None,
            history: None,
            clients: None,
            summary: None,
            task: Some(task),
            cancel: Arc::default(),
        });
        Started {
            id: job_id(id),
            address: None,
        }
    }

    /// Builds the trainer, then takes part in the FL session at `server`.
    async fn run_fl_client(
        &self,
        id: u64,
        server: &str,
        spec: ml::ClientSpec,
        connect_attempts: u32,
        tls: bool,
    ) -> Result<ClientSummary, String> {
        let tls = match (tls, &self.config.tls_roots) {
            (false, _) => None,
            (true, Some(roots)) => Some(roots.clone()),
            (true, None) => {
                return Err(
                    "tls: this agent has no roots to trust the FL server with; start it with --root-certificates"
                        .to_owned(),
                );
            }
        };
        let trainer = tokio::task::spawn_blocking(move || ml::build_fl_trainer(&spec))
            .await
            .map_err(|e| e.to_string())
            .and_then(|built| built.map_err(|e| e.to_string()))
            .map_err(|e| format!("preparing the trainer: {e}"))?;
        self.set_running(id);
        let group = self.config.group.as_ref();
        let options = ClientOptions {
            connect_attempts,
            max_backoff: CONNECT_MAX_BACKOFF,
            tls,
            local_address: group
                .map(|_| self.config.ip)
                .filter(|ip| !ip.is_unspecified()),
            training_slots: group.map(|g| Arc::clone(&g.training_slots)),
            flow_window_bytes: group.map(|_| GROUPED_FLOW_WINDOW),
            ..ClientOptions::default()
        };
        run_client(server, trainer, &options)
            .await
            .map_err(|e| e.to_string())
    }

    /// Loads the client's data part and sends it to the trainer at `server`.
    async fn send_part(
        &self,
        id: u64,
        server: &str,
        sender: &str,
        spec: ml::ClientSpec,
        connect_attempts: u32,
    ) -> Result<ClientReport, String> {
        let name = sender.to_owned();
        let (part, examples) = tokio::task::spawn_blocking(move || {
            ml::load_client_data(&spec)
                .map(|data| (ml::data_part::encode(&name, &data), data.train.len()))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|loaded| loaded.map_err(|e| e.to_string()))
        .map_err(|e| format!("loading the data part: {e}"))?;
        self.set_running(id);
        let bytes = part.len() as u64;
        let receipt =
            crate::central::upload::send_part(server, part, connect_attempts, CONNECT_MAX_BACKOFF)
                .await?;
        tracing::info!(job = %job_id(id), bytes, parts = receipt.parts, wanted = receipt.wanted, "data part sent");
        Ok(ClientReport {
            fits: 0,
            evaluates: 0,
            errors: 0,
            train_seconds: 0.0,
            train_examples: examples as u64,
            uploaded_bytes: bytes,
        })
    }

    fn set_running(&self, id: u64) {
        if let Some(job) = self.registry().jobs.get_mut(&id)
            && job.state == JobState::Starting
        {
            job.state = JobState::Running;
        }
    }

    fn finish(&self, id: u64, result: Result<(), String>, summary: Option<ClientReport>) {
        let mut registry = self.registry();
        let Some(job) = registry.jobs.get_mut(&id) else {
            return;
        };
        job.task = None;
        job.summary = summary;
        if !job.state.active() {
            return;
        }
        job.finished = Some(now());
        match result {
            Ok(()) => job.state = JobState::Completed,
            Err(reason) => {
                tracing::warn!(job = %job_id(id), %reason, "job failed");
                job.state = JobState::Failed;
                job.reason = Some(reason);
            }
        }
    }

    /// All jobs, oldest first.
    pub fn jobs(&self) -> Vec<JobView> {
        self.registry()
            .jobs
            .iter()
            .map(|(id, j)| j.view(*id))
            .collect()
    }

    /// One job.
    pub fn job(&self, id: &str) -> Result<JobView, JobError> {
        let n = parse_id(id)?;
        self.registry()
            .jobs
            .get(&n)
            .map(|j| j.view(n))
            .ok_or_else(|| JobError::NotFound(id.to_owned()))
    }

    /// Stops a job (a no-op on a finished one) and, for a server, waits
    /// until its port is free; returns its final state.
    pub async fn stop(&self, id: &str) -> Result<JobView, JobError> {
        let n = parse_id(id)?;
        let (task, clients, port) = {
            let mut registry = self.registry();
            let job = registry
                .jobs
                .get_mut(&n)
                .ok_or_else(|| JobError::NotFound(id.to_owned()))?;
            if job.state.active() {
                job.state = JobState::Stopped;
                job.finished = Some(now());
            }
            job.cancel.store(true, Ordering::Relaxed);
            (job.task.take(), job.clients.clone(), job.port)
        };
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        if let Some(clients) = clients {
            drop(clients.clear());
        }
        if let Some(port) = port {
            self.wait_port_free(port).await;
        }
        self.job(id)
    }

    async fn wait_port_free(&self, port: u16) {
        let deadline = tokio::time::Instant::now() + PORT_RELEASE_WAIT;
        while tokio::time::Instant::now() < deadline {
            if std::net::TcpListener::bind(SocketAddr::new(self.config.ip, port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(port, "FL port still busy after stopping its server");
    }

    /// The agent's metrics in OpenMetrics text.
    pub fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let counts = self.registry().counts();
        self.metrics.encode(&counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_agent_numbers_its_jobs_after_the_earlier_process() {
        let mut before = JobRegistry::default();
        let earlier: Vec<u64> = (0..1000)
            .map(|_| {
                before.next += 1;
                before.next
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        let after = JobRegistry::default();
        assert!(
            after.next + 1 > *earlier.last().unwrap(),
            "{} {:?}",
            after.next,
            earlier.last()
        );
        assert_eq!(parse_id(&job_id(after.next + 1)).unwrap(), after.next + 1);
    }
}
