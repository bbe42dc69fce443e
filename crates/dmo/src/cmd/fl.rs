//! `dmo fl server` and `dmo fl client`: the FL runtime from the command line.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use fl::Config;
use fl::client::{ClientOptions, run_client};
use fl::history::{History, RoundRecord};
use fl::server::{EdgeOptions, EvaluateFn, FlServer, ServerConfig, ServerRecorder};
use fl::strategy::{STRATEGY_NAMES, StrategyConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `dmo fl ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum FlCmd {
    /// Run a Flower-compatible FL server (Flower clients may join it).
    Server(ServerArgs),
    /// Run an FL client training a model on its part of a dataset.
    Client(ClientArgs),
    /// Run a server and a cohort of clients in this process over loopback gRPC.
    Simulate(super::simulate::SimulateArgs),
}

/// Arguments of `dmo fl server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on for Flower gRPC clients.
    #[arg(long, default_value = "127.0.0.1:6000")]
    pub listen: String,
    /// Rounds to run (with --upstream, the upstream server decides).
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// Run as an edge aggregator of this FL server (HOST:PORT): one client
    /// to it, whose every fit is --local-rounds rounds with our own clients.
    #[arg(long, conflicts_with = "evaluate_dataset")]
    pub upstream: Option<String>,
    /// With --upstream: rounds with our clients per upstream round.
    #[arg(long, default_value_t = 1, requires = "upstream",
          value_parser = clap::value_parser!(u64).range(1..=fl::server::edge::MAX_LOCAL_ROUNDS))]
    pub local_rounds: u64,
    /// Clients that must be connected before a round starts.
    #[arg(long, default_value_t = 2)]
    pub min_available: usize,
    /// Minimum clients sampled for fit.
    #[arg(long, default_value_t = 2)]
    pub min_fit: usize,
    /// Fraction of connected clients sampled for fit.
    #[arg(long, default_value_t = 1.0)]
    pub fraction_fit: f64,
    /// Fraction of connected clients sampled for evaluate (0 skips client evaluation).
    #[arg(long, default_value_t = 1.0)]
    pub fraction_evaluate: f64,
    /// Minimum clients sampled for evaluate.
    #[arg(long, default_value_t = 2)]
    pub min_evaluate: usize,
    /// Aggregation strategy (fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad, fedmedian, fedtrimmedavg, krum).
    #[arg(long, default_value = "fedavg")]
    pub strategy: String,
    /// Strategy parameters as JSON, e.g. '{"proximal_mu": 0.1}'.
    #[arg(long)]
    pub strategy_params: Option<String>,
    /// Stop the run when any client fails (default: go on with the others).
    #[arg(long)]
    pub no_accept_failures: bool,
    /// Seconds each client may take to answer in a round.
    #[arg(long)]
    pub round_timeout: Option<f64>,
    /// Seconds to wait for the minimum number of clients.
    #[arg(long, default_value_t = 300.0)]
    pub wait_timeout: f64,
    /// Seed of client sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Local epochs sent to clients (`local_epochs`).
    #[arg(long)]
    pub local_epochs: Option<i64>,
    /// Batch size sent to clients (`batch_size`).
    #[arg(long)]
    pub batch_size: Option<i64>,
    /// Learning rate sent to clients (`learning_rate`).
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Evaluate the global model on this dataset's official test split after every round.
    #[arg(long, requires = "model")]
    pub evaluate_dataset: Option<String>,
    /// The model the clients train (for server-side evaluation).
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset directory (else $DMO_DATA_DIR, then the system locations).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write the run's history as JSON to this file.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Largest gRPC message accepted or sent, in MiB (1-4095).
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_MIB,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub max_message_mb: u32,
    /// Central differential privacy: noise standard deviation per result,
    /// in clipping norms (with --dp-clipping-norm or --dp-adaptive).
    #[arg(long)]
    pub dp_noise_multiplier: Option<f64>,
    /// Central DP: L2 norm each client update is clipped to (with
    /// --dp-adaptive: the first round's).
    #[arg(long)]
    pub dp_clipping_norm: Option<f64>,
    /// Central DP with adaptive clipping (the norm follows the median
    /// update norm).
    #[arg(long)]
    pub dp_adaptive: bool,
    /// TLS: this server's certificate (PEM; `dmo certs init` writes HOST.pem).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: this server's private key (PEM, HOST.key).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServerArgs {
    /// The central DP the flags ask for, checked for `sampled` clients.
    fn dp(&self, sampled: usize) -> anyhow::Result<Option<fl::privacy::CheckedDp>> {
        let asked = self.dp_noise_multiplier.is_some()
            || self.dp_clipping_norm.is_some()
            || self.dp_adaptive;
        if !asked {
            return Ok(None);
        }
        let dp = fl::privacy::ServerDp {
            adaptive: self.dp_adaptive,
            ..fl::privacy::ServerDp::fixed(
                self.dp_noise_multiplier.unwrap_or(0.0),
                self.dp_clipping_norm.unwrap_or(0.1),
            )
        };
        if !self.dp_adaptive && self.dp_clipping_norm.is_none() {
            bail!(
                "--dp-noise-multiplier: needs --dp-clipping-norm (fixed clipping) or --dp-adaptive"
            );
        }
        let checked = dp
            .check(sampled)
            .map_err(|e| anyhow::anyhow!("--dp-{}", e.replacen('_', "-", 2)))?;
        Ok(Some(checked))
    }
}

/// Arguments of `dmo fl client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// FL server address, HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// Dataset (mnist, fashion-mnist, cifar10, synthetic, synthetic-images, ...).
    #[arg(long, default_value = "synthetic")]
    pub dataset: String,
    /// Model (logreg, mlp, keras-mlp, cnn, cnn-cifar).
    #[arg(long, default_value = "logreg")]
    pub model: String,
    /// Clients in the cohort (the prototype's `cohsize`).
    #[arg(long, default_value_t = 1)]
    pub num_clients: usize,
    /// This client's index in the cohort (the prototype's `part`).
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Partition scheme: iid, shards, shards:N, dirichlet:ALPHA.
    #[arg(long, default_value = "iid")]
    pub partition: String,
    /// Fraction of this client's examples held out for evaluation.
    #[arg(long, default_value_t = 0.1)]
    pub test_fraction: f64,
    /// Seed shared by the cohort (partition, initial weights).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads for training (0: one per core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Dataset directory (else $DMO_DATA_DIR, then the system locations).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Attack the federation, to measure a strategy's robustness:
    /// sign-flip, gaussian or label-flip.
    #[arg(long, value_parser = parse_attack)]
    pub attack: Option<ml::attack::Attack>,
    /// Connection attempts before giving up.
    #[arg(long, default_value_t = 30)]
    pub connect_attempts: u32,
    /// Local differential privacy: epsilon of each update (with
    /// --local-dp-delta and --local-dp-clipping-norm).
    #[arg(long, requires_all = ["local_dp_delta", "local_dp_clipping_norm"])]
    pub local_dp_epsilon: Option<f64>,
    /// Local DP: delta of each update.
    #[arg(long, requires = "local_dp_epsilon")]
    pub local_dp_delta: Option<f64>,
    /// Local DP: L2 norm each update is clipped to.
    #[arg(long, requires = "local_dp_epsilon")]
    pub local_dp_clipping_norm: Option<f64>,
    /// TLS: connect with TLS, trusting these root certificates (PEM, the
    /// CA's ca.pem), as Flower's `root_certificates`.
    #[arg(long)]
    pub root_certificates: Option<PathBuf>,
    /// TLS: the name the server's certificate must hold (default: the
    /// host of --server).
    #[arg(long, requires = "root_certificates")]
    pub tls_domain: Option<String>,
    /// Largest gRPC message accepted or sent, in MiB (1-4095).
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_MIB,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub max_message_mb: u32,
}

/// `--max-message-mb` default: the library's limit, in MiB.
const DEFAULT_MAX_MESSAGE_MIB: u32 = (fl::server::DEFAULT_MAX_MESSAGE_BYTES >> 20) as u32;

/// Bytes in `mib` MiB.
fn mib(mib: u32) -> usize {
    (mib as usize) << 20
}

/// Runs one `dmo fl` subcommand.
pub fn run(cmd: FlCmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd {
        FlCmd::Server(args) => rt.block_on(server(args)),
        FlCmd::Client(args) => rt.block_on(client(args)),
        FlCmd::Simulate(args) => rt.block_on(super::simulate::simulate(args)),
    }
}

/// The strategy named `name` with optional JSON parameters.
pub fn strategy_from_args(name: &str, params: Option<&str>) -> anyhow::Result<StrategyConfig> {
    let Some(base) = StrategyConfig::from_name(name) else {
        bail!(
            "--strategy: unknown strategy {name:?}; known: {}",
            STRATEGY_NAMES.join(", ")
        );
    };
    let Some(json) = params else { return Ok(base) };
    let mut value = serde_json::to_value(&base)?;
    let extra: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).context("--strategy-params: expected a JSON object")?;
    if let Some(obj) = value.as_object_mut() {
        obj.extend(extra);
    }
    serde_json::from_value(value).context("--strategy-params: parameters do not fit the strategy")
}

fn central_evaluator(args: &ServerArgs) -> anyhow::Result<Option<EvaluateFn>> {
    let (Some(dataset), Some(model)) = (&args.evaluate_dataset, &args.model) else {
        return Ok(None);
    };
    let dataset: ml::datasets::DatasetName = dataset.parse().context("--evaluate-dataset")?;
    let model: ml::ModelName = model.parse().context("--model")?;
    let evaluator = ml::CentralEvaluator::new(dataset, model, args.data_dir.as_deref(), 0)?;
    Ok(Some(evaluator.into_evaluate_fn()))
}

fn fit_config(args: &ServerArgs) -> Config {
    ml::FitConfig::given(args.local_epochs, args.batch_size, args.learning_rate)
}

/// `value` seconds as a duration, or an error naming `flag`.
fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= node::spec::MAX_ROUND_TIMEOUT_S) {
        bail!(
            "{flag}: must be seconds in (0, {}], got {value:?}",
            node::spec::MAX_ROUND_TIMEOUT_S
        );
    }
    Ok(Duration::from_secs_f64(value))
}

/// One line describing a finished round.
pub fn round_line(r: &RoundRecord, planned: u64) -> String {
    let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.4}"));
    // An edge aggregator plans no rounds: its upstream server decides.
    let of = if planned > 0 {
        format!("/{planned}")
    } else {
        String::new()
    };
    format!(
        "round {}{of}  fit {}/{} ok  loss {}  accuracy {}  {:.2} s  {:.1} MB",
        r.round,
        r.fit.completed,
        r.fit.sampled,
        fmt(r.loss()),
        fmt(r.accuracy()),
        r.duration_s,
        (r.bytes_sent + r.bytes_received) as f64 / 1e6
    )
}

// Over 80 lines: the command's steps in order: checks, configuration, listener, printer, run, history.
/// The server's configuration from `args`, checked.
fn server_config(args: &ServerArgs) -> anyhow::Result<ServerConfig> {
    if !(args.fraction_fit > 0.0 && args.fraction_fit <= 1.0) {
        bail!(
            "--fraction-fit: must be in (0, 1], got {}",
            args.fraction_fit
        );
    }
    if !(0.0..=1.0).contains(&args.fraction_evaluate) {
        bail!(
            "--fraction-evaluate: must be in [0, 1], got {}",
            args.fraction_evaluate
        );
    }
    Ok(ServerConfig {
        rounds: args.rounds,
        min_available_clients: args.min_available,
        min_fit_clients: args.min_fit,
        fraction_fit: args.fraction_fit,
        fraction_evaluate: args.fraction_evaluate,
        min_evaluate_clients: args.min_evaluate,
        accept_failures: !args.no_accept_failures,
        round_timeout: args
            .round_timeout
            .map(|s| seconds("--round-timeout", s))
            .transpose()?,
        wait_timeout: seconds("--wait-timeout", args.wait_timeout)?,
        seed: args.seed,
        fit_config: fit_config(args),
        max_message_bytes: mib(args.max_message_mb),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                Some(fl::tls::ServerTls::read(cert, key).context("--tls-cert/--tls-key")?)
            }
            _ => None,
        },
        ..ServerConfig::default()
    })
}

async fn server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let config = server_config(&args)?;
    let strategy = strategy_from_args(&args.strategy, args.strategy_params.as_deref())?;
    let evaluate_fn = central_evaluator(&args)?;
    let sampled = args
        .min_fit
        .max((args.fraction_fit * args.min_available as f64).ceil() as usize);
    let dp = args.dp(sampled)?;
    // One connection per client, plus the runtime's own files.
    testbed::limits::ensure_open_files(
        args.min_available as u64 + 256,
        &format!("--min-available {}", args.min_available),
    )
    .map_err(anyhow::Error::msg)?;
    let build = || match &dp {
        Some(dp) => dp.wrap(strategy.build(), args.seed),
        None => strategy.build(),
    };
    // Handlers first: a SIGTERM sent once the port answers must still
    // write the history.
    let stop = super::armed_shutdown_signal();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {}", args.listen))?;
    eprintln!(
        "FL server listening on {} ({}{}{}{})",
        listener.local_addr()?,
        strategy_name(&strategy),
        if dp.is_some() { ", central DP" } else { "" },
        if args.tls_cert.is_some() {
            ", TLS"
        } else {
            ", plain h2c, no TLS"
        },
        args.upstream
            .as_ref()
            .map(|u| format!(", edge aggregator of {u}"))
            .unwrap_or_default()
    );
    let server = FlServer::new(config, ServerRecorder::detached());
    let mut progress = server.progress();
    let live = server.history();
    let printer = tokio::spawn(async move {
        let mut printed = 0;
        while progress.changed().await.is_ok() {
            let h: History = live.read().map(|h| h.clone()).unwrap_or_default();
            for r in h.rounds.iter().skip(printed) {
                println!("{}", round_line(r, h.rounds_planned));
            }
            printed = h.rounds.len();
        }
    });
    let record = server.history();
    let outcome = tokio::select! {
        result = async {
            match &args.upstream {
                Some(upstream) => {
                    let edge = EdgeOptions {
                        local_rounds: args.local_rounds,
                        client: ClientOptions {
                            max_message_bytes: mib(args.max_message_mb),
                            ..ClientOptions::default()
                        },
                        ..EdgeOptions::new(upstream.clone())
                    };
                    server.run_edge(listener, build(), edge).await
                }
                None => server.run(listener, build(), None, evaluate_fn).await,
            }
        } => Some(result),
        () = stop => None,
    };
    printer.abort();
    // The history is written however the run ended, with the rounds done.
    const SIGNALLED: &str = "stopped by a signal (SIGTERM or Ctrl-C)";
    let (history, failure) = match outcome {
        Some(Ok(h)) => (h, None),
        Some(Err(e)) => (snapshot(&record, None), Some(format!("FL run failed: {e}"))),
        None => (snapshot(&record, Some(SIGNALLED)), None),
    };
    if let Some(path) = &args.history {
        std::fs::write(path, serde_json::to_vec_pretty(&history)?)
            .with_context(|| format!("--history: cannot write {}", path.display()))?;
    }
    if let Some(why) = failure {
        bail!(why);
    }
    if history.error.as_deref() == Some(SIGNALLED) {
        eprintln!("{SIGNALLED}; {} round(s) done", history.rounds.len());
        // As a shell reports SIGTERM: 128 + 15.
        return Ok(ExitCode::from(143));
    }
    Ok(ExitCode::SUCCESS)
}

/// The server's history as it stands, with `error` set when given.
fn snapshot(history: &std::sync::RwLock<History>, error: Option<&str>) -> History {
    let mut h = history.read().map(|h| h.clone()).unwrap_or_default();
    if let Some(e) = error {
        h.error = Some(e.to_owned());
    }
    h
}

fn parse_attack(name: &str) -> Result<ml::attack::Attack, String> {
    ml::attack::Attack::from_name(name)
        .ok_or_else(|| format!("must be one of {}", ml::attack::Attack::NAMES.join(", ")))
}

fn strategy_name(s: &StrategyConfig) -> &'static str {
    s.build().name()
}

async fn client(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let spec = ml::ClientSpec {
        dataset: args.dataset.parse().context("--dataset")?,
        model: args.model.parse().context("--model")?,
        data_dir: args.data_dir.clone(),
        partition: ml::Partition {
            scheme: args.partition.parse().context("--partition")?,
            num_clients: args.num_clients,
            index: args.index,
            seed: args.seed,
            test_fraction: args.test_fraction,
        },
        threads: args.threads,
        seed: args.seed.wrapping_add(args.index as u64),
        attack: args.attack,
        local_dp: match (
            args.local_dp_epsilon,
            args.local_dp_delta,
            args.local_dp_clipping_norm,
        ) {
            (Some(epsilon), Some(delta), Some(clipping_norm)) => {
                let dp = fl::privacy::LocalDp {
                    clipping_norm,
                    epsilon,
                    delta,
                };
                dp.check()
                    .map_err(|e| anyhow::anyhow!("--local-dp-{}", e.replacen('_', "-", 1)))?;
                Some(dp)
            }
            _ => None,
        },
        pooled: false,
    };
    let trainer = tokio::task::spawn_blocking(move || ml::build_fl_trainer(&spec)).await??;
    let tls = match &args.root_certificates {
        Some(roots) => {
            let mut tls = fl::tls::ClientTls::read(roots).context("--root-certificates")?;
            tls.domain.clone_from(&args.tls_domain);
            Some(tls)
        }
        None => None,
    };
    let options = ClientOptions {
        connect_attempts: args.connect_attempts,
        max_message_bytes: mib(args.max_message_mb),
        tls,
        ..ClientOptions::default()
    };
    let summary = run_client(&args.server, trainer, &options).await?;
    eprintln!(
        "client {} done: {} fits, {} evaluates, {} errors, {:.2} s training",
        args.index, summary.fits, summary.evaluates, summary.errors, summary.train_seconds
    );
    Ok(if summary.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
