//! An FL server and a cohort of clients in one process, speaking real gRPC
//! over loopback (`dmo fl simulate`): every client trains its own part of
//! the dataset, the server evaluates each global model on the test split.

use std::path::PathBuf;

use fl::client::{ClientOptions, run_client};
use fl::history::History;
use fl::server::{FlServer, ServerConfig, ServerRecorder};
use fl::strategy::StrategyConfig;

use crate::datasets::{DatasetName, registry};
use crate::{CentralEvaluator, FitConfig, LocalTrainer, MlError, ModelName, Partition, Scheme};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Clients in the cohort (at least 1).
    pub clients: usize,
    /// Rounds to run.
    pub rounds: u64,
    /// The dataset the cohort splits.
    pub dataset: DatasetName,
    /// The model.
    pub model: ModelName,
    /// How the dataset is dealt to the clients.
    pub scheme: Scheme,
    /// The aggregation strategy.
    pub strategy: StrategyConfig,
    /// Fraction of clients sampled for fit each round, in (0, 1].
    pub fraction_fit: f64,
    /// Local epochs per round.
    pub local_epochs: i64,
    /// Local batch size.
    pub batch_size: i64,
    /// Local learning rate.
    pub learning_rate: f64,
    /// Seed of the partition, initial weights and sampling.
    pub seed: u64,
    /// Dataset directory (else `$DMO_DATA_DIR`, then the system locations).
    pub data_dir: Option<PathBuf>,
}

/// Why a simulation did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    /// Data, model or trainer could not be built.
    #[error(transparent)]
    Ml(#[from] MlError),
    /// The loopback listener could not be bound.
    #[error("listening on loopback: {0}")]
    Listen(#[from] std::io::Error),
    /// The FL server stopped with an error.
    #[error("FL run failed: {0}")]
    Server(String),
    /// A client stopped with an error.
    #[error("client {index}: {reason}")]
    Client {
        /// The client's index in the cohort.
        index: usize,
        /// Why.
        reason: String,
    },
}

impl Simulation {
    /// Builds the clients' trainers and the evaluator, then runs the
    /// rounds; `started` gets the server's address, `on_round` the history
    /// after every round. Returns the whole history.
    // Over 80 lines: builds the cohort, starts server and clients, and follows the rounds in one scope that owns them.
    pub async fn run(
        self,
        started: impl FnOnce(&str),
        mut on_round: impl FnMut(&History) + Send + 'static,
    ) -> Result<History, SimulationError> {
        let splits =
            registry::load(self.dataset, self.data_dir.as_deref()).map_err(MlError::from)?;
        let mut trainers = Vec::with_capacity(self.clients);
        for index in 0..self.clients {
            let partition = Partition {
                scheme: self.scheme,
                num_clients: self.clients,
                index,
                seed: self.seed,
                test_fraction: 0.1,
            };
            let data =
                crate::partition::client_data(&splits.train, &partition).map_err(MlError::from)?;
            trainers.push(LocalTrainer::new(self.model, data, 1, self.seed)?);
        }
        let evaluator = CentralEvaluator::with_test_set(splits.test, self.model, 0)?;
        let initial = match trainers.first_mut() {
            Some(t) => fl::Trainer::get_parameters(t, &fl::Config::new())
                .map_err(|e| SimulationError::Server(format!("initial parameters: {e}")))?,
            None => return Err(SimulationError::Server("no clients".to_owned())),
        };
        let config = ServerConfig {
            rounds: self.rounds,
            min_available_clients: self.clients,
            min_fit_clients: 1,
            fraction_fit: self.fraction_fit,
            fraction_evaluate: 0.0,
            min_evaluate_clients: 0,
            seed: self.seed,
            fit_config: FitConfig::given(
                Some(self.local_epochs),
                Some(self.batch_size),
                Some(self.learning_rate),
            ),
            ..ServerConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        started(&addr);
        let server = FlServer::new(config, ServerRecorder::detached());
        let (mut progress, live) = (server.progress(), server.history());
        let run = tokio::spawn(server.run(
            listener,
            self.strategy.build(),
            Some(initial),
            Some(evaluator.into_evaluate_fn()),
        ));
        let clients: Vec<_> = trainers
            .into_iter()
            .map(|t| {
                let addr = addr.clone();
                tokio::spawn(async move {
                    run_client(&addr, Box::new(t), &ClientOptions::default()).await
                })
            })
            .collect();
        let watcher = tokio::spawn(async move {
            while progress.changed().await.is_ok() {
                on_round(&live.read().map(|h| h.clone()).unwrap_or_default());
            }
        });
        let history = run
            .await
            .map_err(|e| SimulationError::Server(e.to_string()));
        watcher.abort();
        let history = history?.map_err(|e| SimulationError::Server(e.to_string()))?;
        for (index, c) in clients.into_iter().enumerate() {
            let reason = match c.await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            return Err(SimulationError::Client { index, reason });
        }
        Ok(history)
    }
}
