//! `dmo intent ...`: validate, send and follow ML intents.

use super::intent_remote;
use anyhow::Context;
use clap::Subcommand;
use intent::{Catalog, IntentError};
use mlfo::planner::CohortRequest;
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
    /// Send an intent to an edge MLFO and print its id.
    Send {
        /// Intent file (YAML or JSON).
        file: PathBuf,
        #[command(flatten)]
        mlfo: intent_remote::Remote,
        /// Cohort named in the MLFO's inventory.
        #[arg(long, conflicts_with_all = ["hosts", "ipstart"])]
        cohort: Option<String>,
        /// Client hosts, comma-separated (e.g. fc.10,fc.11).
        #[arg(long, value_delimiter = ',', conflicts_with = "ipstart")]
        hosts: Vec<String>,
        /// The prototype's selection: clients whose last address octet is in [ipstart, ipstart+size).
        #[arg(long, requires = "size")]
        ipstart: Option<u32>,
        /// Number of clients (with --ipstart: the prototype's cohortsize).
        #[arg(long)]
        size: Option<u32>,
        /// Constraint overrides, KEY=VALUE in the intent format (e.g. numround=20 fracfit=0.5).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Follow the intent to the end with a progress bar; exit 1 unless it completes.
        #[arg(long)]
        wait: bool,
    },
    /// Send one intent per cohort from a batch file (the prototype's sendintent.py).
    Batch {
        /// Batch file (YAML): `cohorts:` with size, intent, and optional
        /// sameserver, avgalgo, fracfit, minfit, minav, numround.
        file: PathBuf,
        #[command(flatten)]
        mlfo: intent_remote::Remote,
        /// Follow the intents to the end; exit 1 unless all complete.
        #[arg(long)]
        wait: bool,
    },
    /// Show an intent's state, or follow it with --wait.
    Status {
        /// The intent's id (as `send` printed it).
        id: String,
        #[command(flatten)]
        mlfo: intent_remote::Remote,
        /// Follow the intent to the end; exit 1 unless it completes.
        #[arg(long)]
        wait: bool,
    },
}

/// Runs one `dmo intent` subcommand.
pub fn run(cmd: IntentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        IntentCmd::Validate { files, catalog } => validate(&files, catalog.as_deref()),
        IntentCmd::Send {
            file,
            mlfo,
            cohort,
            hosts,
            ipstart,
            size,
            set,
            wait,
        } => {
            let cohort = CohortRequest {
                name: cohort,
                hosts,
                ipstart,
                size,
            };
            intent_remote::send(&file, &mlfo, cohort, overrides(&set)?, wait)
        }
        IntentCmd::Batch { file, mlfo, wait } => intent_remote::batch(&file, &mlfo, wait),
        IntentCmd::Status { id, mlfo, wait } => intent_remote::status(&id, &mlfo, wait),
    }
}

/// `KEY=VALUE` pairs as constraint overrides (values stay text; the MLFO checks them).
fn overrides(pairs: &[String]) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((
                k.trim().to_owned(),
                serde_json::Value::String(v.trim().to_owned()),
            )),
            _ => anyhow::bail!("--set {p:?}: expected KEY=VALUE, e.g. --set numround=20"),
        })
        .collect()
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
