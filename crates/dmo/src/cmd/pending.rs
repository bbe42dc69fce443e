//! Argument shapes of the subcommands whose implementation has not landed
//! yet. Each of them says so and exits non-zero instead of pretending.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dmo run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (YAML); the built-in default scenario when omitted.
    pub scenario: Option<PathBuf>,
    /// Directory for summary.json, rounds.csv, report.html and logs/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// `dmo testbed ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum TestbedCmd {
    /// Write the prototype-shaped topology for N cohorts.
    Gen,
    /// Bring a topology up.
    Up,
    /// Tear a topology down.
    Down,
}

/// Arguments of `dmo report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results directory holding summary.json.
    pub dir: PathBuf,
}

/// Reports that `what` is not implemented yet, naming the issue that tracks it.
pub fn not_yet(what: &str, issue: u32) -> anyhow::Result<ExitCode> {
    eprintln!("dmo {what}: not implemented yet (tracked in issue #{issue})");
    Ok(ExitCode::from(2))
}
