//! `dmo fl simulate`: an FL server and a cohort of clients in one process,
//! speaking real gRPC over loopback, with live progress and a history file.

use super::fl::{round_line, strategy_from_args};
use anyhow::{Context, bail};
use clap::Args;
use fl::client::{ClientOptions, run_client};
use fl::history::CentralRecord;
use fl::server::{EvaluateFn, FlServer, ServerConfig, ServerRecorder};
use fl::{Config, Scalar};
use indicatif::{ProgressBar, ProgressStyle};
use ml::datasets::registry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `dmo fl simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Clients in the cohort.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Rounds to run.
    #[arg(long, default_value_t = 10)]
    pub rounds: u64,
    /// Dataset (synthetic needs no download; fashion-mnist after `apt-get install dataset-fashion-mnist`).
    #[arg(long, default_value = "synthetic-images")]
    pub dataset: String,
    /// Model (logreg, mlp, keras-mlp, cnn, cnn-cifar).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Partition scheme: iid, shards, shards:N, dirichlet:ALPHA, contiguous.
    #[arg(long, default_value = "iid")]
    pub partition: String,
    /// Aggregation strategy.
    #[arg(long, default_value = "fedavg")]
    pub strategy: String,
    /// Strategy parameters as JSON.
    #[arg(long)]
    pub strategy_params: Option<String>,
    /// Fraction of clients sampled for fit each round.
    #[arg(long, default_value_t = 0.5)]
    pub fraction_fit: f64,
    /// Local epochs per round.
    #[arg(long, default_value_t = 1)]
    pub local_epochs: i64,
    /// Local batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: i64,
    /// Local learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub learning_rate: f64,
    /// Seed of the partition, initial weights and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dataset directory (else $DMO_DATA_DIR, then the system locations).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory for history.json.
    #[arg(long, default_value = "results/simulate")]
    pub out: PathBuf,
}

/// Runs the simulation.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    if args.clients == 0 {
        bail!("--clients: must be at least 1");
    }
    if !(args.fraction_fit > 0.0 && args.fraction_fit <= 1.0) {
        bail!(
            "--fraction-fit: must be in (0, 1], got {}",
            args.fraction_fit
        );
    }
    let strategy = strategy_from_args(&args.strategy, args.strategy_params.as_deref())?;
    let dataset: ml::datasets::DatasetName = args.dataset.parse().context("--dataset")?;
    let model: ml::ModelName = args.model.parse().context("--model")?;
    let scheme: ml::Scheme = args.partition.parse().context("--partition")?;
    let started = Instant::now();
    let splits = registry::load(dataset, args.data_dir.as_deref())?;
    let mut trainers = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let partition = ml::Partition {
            scheme,
            num_clients: args.clients,
            index,
            seed: args.seed,
            test_fraction: 0.1,
        };
        let data = ml::partition::client_data(&splits.train, &partition)?;
        trainers.push(ml::LocalTrainer::new(model, data, 1, args.seed)?);
    }
    let mut evaluator = ml::CentralEvaluator::with_test_set(splits.test, model, 0)?;
    let evaluate_fn: EvaluateFn = Box::new(move |_, params| {
        let e = evaluator.evaluate(params).ok()?;
        Some(CentralRecord {
            loss: e.loss,
            metrics: [("accuracy".to_owned(), e.accuracy)].into(),
        })
    });
    let fit_config = Config::from([
        ("local_epochs".to_owned(), Scalar::Sint64(args.local_epochs)),
        ("batch_size".to_owned(), Scalar::Sint64(args.batch_size)),
        (
            "learning_rate".to_owned(),
            Scalar::Double(args.learning_rate),
        ),
    ]);
    let config = ServerConfig {
        rounds: args.rounds,
        min_available_clients: args.clients,
        min_fit_clients: 1,
        fraction_fit: args.fraction_fit,
        fraction_evaluate: 0.0,
        min_evaluate_clients: 0,
        seed: args.seed,
        fit_config,
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    eprintln!(
        "simulating {} clients on {} ({}, {} partition) with {} over gRPC at {addr}",
        args.clients,
        dataset.as_str(),
        model.as_str(),
        args.partition,
        strategy.build().name()
    );
    let server = FlServer::new(config, ServerRecorder::detached());
    let (mut progress, live) = (server.progress(), server.history());
    let bar = ProgressBar::new(args.rounds).with_style(
        ProgressStyle::with_template("{spinner} round {pos}/{len} [{bar:30}] {msg} ({elapsed})")?
            .progress_chars("=> "),
    );
    let first_initial = trainers
        .first_mut()
        .map(|t| fl::Trainer::get_parameters(t, &Config::new()));
    let initial = match first_initial {
        Some(Ok(p)) => p,
        Some(Err(e)) => bail!("initial parameters: {e}"),
        None => bail!("no clients"),
    };
    let run =
        tokio::spawn(server.run(listener, strategy.build(), Some(initial), Some(evaluate_fn)));
    let clients: Vec<_> = trainers
        .into_iter()
        .map(|t| {
            let addr = addr.clone();
            tokio::spawn(
                async move { run_client(&addr, Box::new(t), &ClientOptions::default()).await },
            )
        })
        .collect();
    let watcher = {
        let bar = bar.clone();
        tokio::spawn(async move {
            while progress.changed().await.is_ok() {
                let h = live.read().map(|h| h.clone()).unwrap_or_default();
                if let Some(r) = h.rounds.last() {
                    bar.set_position(r.round);
                    bar.set_message(format!(
                        "accuracy {:.4} loss {:.4}",
                        r.accuracy().unwrap_or(f64::NAN),
                        r.loss().unwrap_or(f64::NAN)
                    ));
                    let line = round_line(r, h.rounds_planned);
                    if bar.is_hidden() {
                        println!("{line}");
                    } else {
                        bar.println(line);
                    }
                }
            }
        })
    };
    let history = run.await?;
    watcher.abort();
    bar.finish_and_clear();
    let history = history.context("FL run failed")?;
    for c in clients {
        c.await??;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out: cannot create {}", args.out.display()))?;
    let path = args.out.join("history.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&history)?)?;
    let initial_acc = history
        .initial_central
        .as_ref()
        .and_then(|c| c.metrics.get("accuracy").copied());
    eprintln!(
        "done in {:.1} s: accuracy {} -> {} on {} test examples; history in {}",
        started.elapsed().as_secs_f64(),
        initial_acc.map_or("-".into(), |a| format!("{a:.4}")),
        history
            .latest_accuracy()
            .map_or("-".into(), |a| format!("{a:.4}")),
        dataset.as_str(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
