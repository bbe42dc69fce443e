//! `dmo fl simulate`: an FL server and a cohort of clients in one process,
//! speaking real gRPC over loopback, with live progress and a history file.

use super::fl::{round_line, strategy_from_args};
use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ml::simulation::Simulation;
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
    let simulation = Simulation {
        clients: args.clients,
        rounds: args.rounds,
        dataset: args.dataset.parse().context("--dataset")?,
        model: args.model.parse().context("--model")?,
        scheme: args.partition.parse().context("--partition")?,
        strategy: strategy_from_args(&args.strategy, args.strategy_params.as_deref())?,
        fraction_fit: args.fraction_fit,
        local_epochs: args.local_epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        seed: args.seed,
        data_dir: args.data_dir.clone(),
    };
    let (dataset, model) = (simulation.dataset, simulation.model);
    let strategy = simulation.strategy.build().name().to_owned();
    let started = Instant::now();
    let bar = ProgressBar::new(args.rounds).with_style(
        ProgressStyle::with_template("{spinner} round {pos}/{len} [{bar:30}] {msg} ({elapsed})")?
            .progress_chars("=> "),
    );
    let shown = bar.clone();
    let history = simulation
        .run(
            |addr| {
                eprintln!(
                    "simulating {} clients on {} ({}, {} partition) with {strategy} over gRPC at {addr}",
                    args.clients,
                    dataset.as_str(),
                    model.as_str(),
                    args.partition,
                )
            },
            move |h| show_round(&shown, h),
        )
        .await;
    bar.finish_and_clear();
    let history = history?;
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

/// Moves the bar to the latest round and prints its line.
fn show_round(bar: &ProgressBar, h: &fl::history::History) {
    let Some(r) = h.rounds.last() else {
        return;
    };
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
