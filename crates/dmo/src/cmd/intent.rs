//! `dmo intent ...`: validate, send and follow ML intents.

use anyhow::Context;
use clap::Subcommand;
use intent::{Catalog, IntentError};
use std::path::{Path, PathBuf};
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
        IntentCmd::Validate { files, catalog } => validate(&files, catalog.as_deref()),
    }
}

/// Prints each valid intent, normalised with its resolved targets, as JSON on
/// stdout (in argument order), and each invalid one's problems on stderr,
/// prefixed by its file name; exit status 1 if any is invalid.
fn validate(files: &[PathBuf], catalog: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut cat = Catalog::builtin();
    if let Some(path) = catalog {
        cat = cat.merge(Catalog::load(path)?);
    }
    let mut ok = true;
    for path in files {
        let file = path.display().to_string();
        let resolved = intent::load(path).and_then(|intent| {
            cat.resolve(&intent)
                .map_err(|e| IntentError::from_fields(&file, e))
        });
        match resolved {
            Ok(resolved) => {
                let text = serde_json::to_string_pretty(&resolved)
                    .with_context(|| format!("{file}: cannot print as JSON"))?;
                println!("{text}");
            }
            Err(err) => {
                ok = false;
                eprintln!("{err}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
