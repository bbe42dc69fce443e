//! Subcommand definitions and their dispatch.

mod certs;
mod datasets;
mod fl;
mod intent;
mod intent_remote;
mod mlfo;
mod node;
mod run;
mod simulate;
mod sweep;
mod testbed;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Intent-driven orchestration of federated learning over an emulated 5G network.
#[derive(Debug, Parser)]
#[command(name = "dmo", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `dmo`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole experiment: testbed, orchestrators, intents, report.
    Run(run::RunArgs),
    /// Validate, send and follow ML intents.
    #[command(subcommand)]
    Intent(intent::IntentCmd),
    /// Flower-compatible federated-learning server and client.
    #[command(subcommand)]
    Fl(Box<fl::FlCmd>),
    /// Run a node agent (REST API that starts FL servers and clients).
    Node(node::NodeArgs),
    /// Run an ML function orchestrator (edge or cloud role).
    Mlfo(mlfo::MlfoArgs),
    /// Generate, bring up and tear down network testbeds.
    #[command(subcommand)]
    Testbed(testbed::TestbedCmd),
    /// List the datasets and how to get the missing ones.
    #[command(subcommand)]
    Datasets(datasets::DatasetsCmd),
    /// Re-render an experiment's report from its summary.json.
    Report(run::ReportArgs),
    /// Run an experiment over a grid of points (axes of scenario fields), with repeats; a comparison page.
    Sweep(sweep::SweepArgs),
    /// Compare results directories on one page.
    Compare(sweep::CompareArgs),
    /// Make credentials: a certificate authority with host certificates, bearer-token files.
    #[command(subcommand)]
    Certs(certs::CertsCmd),
}

/// Sets up `tracing` on stderr at the level the `-v` flags ask for.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on Ctrl-C or SIGTERM, so that supervisors can stop services cleanly.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// [`shutdown_signal`] with its handlers installed now rather than when it
/// is first polled: made before a listener opens, it catches a signal sent
/// as soon as the port answers. Needs a tokio runtime.
pub fn armed_shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let streams = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match streams {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            _ => shutdown_signal().await,
        }
    }
}

/// Runs the chosen subcommand and returns the process exit status.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Intent(cmd) => intent::run(cmd),
        Command::Run(args) => run::run(args),
        Command::Fl(cmd) => fl::run(*cmd),
        Command::Node(args) => node::run(args),
        Command::Mlfo(args) => mlfo::run(args),
        Command::Testbed(cmd) => testbed::run(cmd),
        Command::Datasets(cmd) => datasets::run(cmd),
        Command::Report(args) => run::report(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Compare(args) => sweep::compare(args),
        Command::Certs(cmd) => certs::run(cmd),
    }
}
