//! `dmo intent ...`: validate, send and follow ML intents.

use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `dmo intent ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum IntentCmd {
    /// Validate intent files and print each normalised, with its resolved pipeline.
    Validate {
        /// Intent files (YAML or JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Pipeline catalog that overrides or extends the built-in one.
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
}

/// Runs one `dmo intent` subcommand.
pub fn run(cmd: IntentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        IntentCmd::Validate { .. } => {
            eprintln!("dmo intent validate: not implemented yet (tracked in issue #2)");
            Ok(ExitCode::from(2))
        }
    }
}
