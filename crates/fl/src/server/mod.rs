//! The FL server: accepts Flower clients over gRPC and runs the rounds
//! (sample, fit, aggregate, evaluate), recording a [`History`].

mod client_manager;
pub mod edge;
pub mod exposition;
pub(crate) mod incoming;
mod metrics;
mod outgoing;
mod proxy;
mod rounds;
mod service;
mod tcp_info;

pub use client_manager::ClientManager;
pub use edge::EdgeOptions;
pub use metrics::{FlServerMetrics, Labels, ServerRecorder};
pub use outgoing::Outgoing;
pub use proxy::{ClientProxy, Exchange, RequestError};
pub use service::FlowerSvc;

use crate::config::Config;
use crate::history::{CentralRecord, History};
use crate::strategy::Strategy;
use crate::tensor::Tensor;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

/// Default gRPC message size limit: large enough for a 100 MB model (Flower allows 2 GiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;
/// Largest HTTP/2 frame our server and client accept from their peer (the
/// protocol's default is 16 KiB): a model then crosses in a few large reads
/// and writes instead of thousands of small ones.
pub const MAX_FRAME_BYTES: u32 = 1 << 20;
/// Default HTTP/2 keepalive interval, as Flower's server (210 s).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(210);

/// How the server runs its rounds.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Rounds to run.
    pub rounds: u64,
    /// Clients that must be connected before a round starts.
    pub min_available_clients: usize,
    /// Clients that must be connected before rounds after the first, when
    /// fewer than `min_available_clients` will do (`None`: the same). A
    /// hierarchical job's cloud server waits for every campus before round
    /// 1 and goes on without a campus that is lost later.
    pub min_available_later: Option<usize>,
    /// Fraction of connected clients sampled for fit.
    pub fraction_fit: f64,
    /// Lower bound on the clients sampled for fit.
    pub min_fit_clients: usize,
    /// Fraction of connected clients sampled for evaluate (0 skips the phase).
    pub fraction_evaluate: f64,
    /// Lower bound on the clients sampled for evaluate.
    pub min_evaluate_clients: usize,
    /// Go on when some clients fail, as long as at least one result arrived.
    pub accept_failures: bool,
    /// Limit on each client's answer within a round; none waits forever.
    pub round_timeout: Option<Duration>,
    /// How long to wait for `min_available_clients` before giving up.
    pub wait_timeout: Duration,
    /// Seed of the client-sampling RNG.
    pub seed: u64,
    /// Configuration sent with every `FitIns` (strategy keys are added).
    pub fit_config: Config,
    /// Configuration sent with every `EvaluateIns`.
    pub evaluate_config: Config,
    /// gRPC message size limit in bytes, both directions.
    pub max_message_bytes: usize,
    /// HTTP/2 keepalive interval.
    pub keepalive: Duration,
    /// Most examples a client may report for one fit; a `FitRes` over it
    /// fails that client's part of the round (its weight would swamp the
    /// others').
    pub max_num_examples: u64,
    /// TLS with this certificate and key; `None`: plain h2c.
    pub tls: Option<crate::tls::ServerTls>,
}

/// Default of [`ServerConfig::max_num_examples`]: far above any data set a
/// client trains on here, far below what would let one client outweigh
/// all others by accident or on purpose.
pub const DEFAULT_MAX_NUM_EXAMPLES: u64 = 1_000_000_000;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            rounds: 3,
            min_available_clients: 2,
            min_available_later: None,
            fraction_fit: 1.0,
            min_fit_clients: 2,
            fraction_evaluate: 1.0,
            min_evaluate_clients: 2,
            accept_failures: true,
            round_timeout: None,
            wait_timeout: Duration::from_secs(300),
            seed: 0,
            fit_config: Config::new(),
            evaluate_config: Config::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            keepalive: DEFAULT_KEEPALIVE,
            max_num_examples: DEFAULT_MAX_NUM_EXAMPLES,
            tls: None,
        }
    }
}

/// Server-side evaluation of the global model (Flower's `evaluate_fn`):
/// given the round (0 for the initial model) and parameters, a loss and metrics.
pub type EvaluateFn = Box<dyn FnMut(u64, &[Tensor]) -> Option<CentralRecord> + Send>;

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// Not enough clients connected in time.
    #[error("only {connected} of the {needed} required clients connected within {waited:?}")]
    NotEnoughClients {
        /// Clients required.
        needed: usize,
        /// Clients connected at the deadline.
        connected: usize,
        /// How long the server waited.
        waited: Duration,
    },
    /// No initial parameters: none given and the asked client failed.
    #[error("could not get initial parameters: {0}")]
    InitialParameters(String),
    /// A round could not complete.
    #[error("round {round}: {reason}")]
    Round {
        /// Round number.
        round: u64,
        /// Why.
        reason: String,
    },
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(String),
    /// An edge aggregator lost its upstream server.
    #[error("upstream server: {0}")]
    Upstream(String),
}

/// An FL server ready to run: its clients, its live history and metrics.
pub struct FlServer {
    config: ServerConfig,
    manager: Arc<ClientManager>,
    history: Arc<RwLock<History>>,
    progress: tokio::sync::watch::Sender<u64>,
    recorder: ServerRecorder,
}

impl FlServer {
    /// A server with `config`, recording metrics with `recorder`.
    pub fn new(config: ServerConfig, recorder: ServerRecorder) -> Self {
        Self {
            config,
            manager: Arc::new(ClientManager::default()),
            history: Arc::new(RwLock::new(History::default())),
            progress: tokio::sync::watch::channel(0).0,
            recorder,
        }
    }

    /// A handle on the history, readable while the server runs.
    pub fn history(&self) -> Arc<RwLock<History>> {
        self.history.clone()
    }

    /// Rounds completed so far; changes after each round is recorded.
    pub fn progress(&self) -> tokio::sync::watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// The connected clients.
    pub fn clients(&self) -> Arc<ClientManager> {
        self.manager.clone()
    }

    /// Serves clients on `listener` and runs all rounds with `strategy`,
    /// starting from `initial` (or from one client's parameters when `None`).
    /// Ends by sending `ReconnectIns` to every client; returns the history,
    /// which records the error too when the run stopped early.
    pub async fn run(
        self,
        listener: TcpListener,
        strategy: Box<dyn Strategy>,
        initial: Option<Vec<Tensor>>,
        evaluate_fn: Option<EvaluateFn>,
    ) -> Result<History, ServerError> {
        let transport = self.serve(listener);
        let mut runner = self.runner(strategy, evaluate_fn);
        let outcome = runner.run(initial).await;
        self.finish(transport, outcome).await
    }

    /// Serves clients on `listener` as an edge aggregator of the FL server
    /// at `edge.upstream`: to that server it is one client, whose every
    /// `FitIns` it answers with `edge.local_rounds` rounds of its own
    /// clients under `strategy`, and whose `EvaluateIns` it passes down
    /// (see [`edge`]). Ends when the upstream server sends it away, by
    /// sending `ReconnectIns` to its own clients; returns its history, one
    /// record per local round.
    pub async fn run_edge(
        self,
        listener: TcpListener,
        strategy: Box<dyn Strategy>,
        edge: EdgeOptions,
    ) -> Result<History, ServerError> {
        let transport = self.serve(listener);
        let runner = self.runner(strategy, None);
        let outcome = edge::run(runner, &edge).await;
        if let Err(e) = &outcome {
            let mut h = self
                .history
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            h.error = Some(e.to_string());
        }
        self.finish(transport, outcome).await
    }

    /// The gRPC transport serving Flower clients on `listener`, until the
    /// returned sender fires.
    fn serve(&self, listener: TcpListener) -> Transport {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let svc = FlowerSvc::new(self.manager.clone(), self.config.max_message_bytes);
        let recorder = self.recorder.clone();
        let incoming = TcpListenerStream::new(listener).map(move |accepted| {
            accepted.map(|stream| {
                // `serve_with_incoming` ignores the builder's TCP options.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY");
                }
                // Listed in the connection statistics until the connection closes.
                recorder.track(stream)
            })
        });
        let builder = tonic::transport::Server::builder();
        let builder = match &self.config.tls {
            Some(tls) => builder.tls_config(tls.config()),
            None => Ok(builder),
        };
        let task = match builder {
            Ok(builder) => tokio::spawn(
                builder
                    .http2_keepalive_interval(Some(self.config.keepalive))
                    .max_frame_size(Some(MAX_FRAME_BYTES))
                    .add_service(svc)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stop_rx.await;
                    }),
            ),
            Err(e) => tokio::spawn(async move { Err(e) }),
        };
        Transport { stop, task }
    }

    fn runner(
        &self,
        strategy: Box<dyn Strategy>,
        evaluate_fn: Option<EvaluateFn>,
    ) -> rounds::RoundRunner {
        rounds::RoundRunner::new(
            self.config.clone(),
            self.manager.clone(),
            self.history.clone(),
            self.progress.clone(),
            self.recorder.clone(),
            strategy,
            evaluate_fn,
        )
    }

    /// Sends every client away, stops the transport, and returns the
    /// history (or the run's error).
    async fn finish(
        self,
        transport: Transport,
        outcome: Result<(), ServerError>,
    ) -> Result<History, ServerError> {
        let bye = Outgoing::from(crate::proto::ServerMessage {
            msg: Some(crate::proto::server_message::Msg::ReconnectIns(
                crate::proto::server_message::ReconnectIns { seconds: 0 },
            )),
        });
        for client in self.manager.clear() {
            // A client that already left needs no goodbye.
            let _ = client.send(bye.clone()).await;
        }
        // Give clients a moment to read ReconnectIns before the streams close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = transport.stop.send(());
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(5), transport.task).await {
            return Err(ServerError::Transport(e.to_string()));
        }
        let history = self
            .history
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        outcome.map(|()| history)
    }
}

/// A running gRPC transport and the means to stop it.
struct Transport {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}
