//! `dmo intent send | batch | status`: talk to an edge MLFO's JSON API and
//! follow intents with a progress bar per job.

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use intent::keys;
use mlfo::IntentRecord;
use mlfo::client::MlfoClient;
use mlfo::planner::CohortRequest;
use mlfo::submission::IntentRequest;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// First client host octet of a batch, as the prototype's sendintent.py.
pub const BATCH_IPSTART: u32 = 10;

/// One cohort of a batch file: its size, intent and the prototype's form fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCohort {
    /// Clients in the cohort.
    pub size: u32,
    /// Intent file, relative to the batch file.
    pub intent: PathBuf,
    /// Reuse a running FL server of the same kind.
    #[serde(default)]
    pub sameserver: Option<Value>,
    /// Aggregation strategy.
    #[serde(default)]
    pub avgalgo: Option<Value>,
    /// Fraction of clients per round.
    #[serde(default)]
    pub fracfit: Option<Value>,
    /// Fewest clients per round.
    #[serde(default)]
    pub minfit: Option<Value>,
    /// Fewest connected clients before a round.
    #[serde(default)]
    pub minav: Option<Value>,
    /// Rounds.
    #[serde(default)]
    pub numround: Option<Value>,
}

/// A batch file: cohorts in address order, from `ipstart` (default 10).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// First client host octet.
    #[serde(default = "default_ipstart")]
    pub ipstart: u32,
    /// The cohorts.
    pub cohorts: Vec<BatchCohort>,
}

fn default_ipstart() -> u32 {
    BATCH_IPSTART
}

impl BatchCohort {
    /// The constraint overrides this cohort sets.
    fn constraints(&self) -> Map<String, Value> {
        [
            (keys::SAME_SERVER, &self.sameserver),
            (keys::AVG_ALGO, &self.avgalgo),
            (keys::FRACTION_FIT, &self.fracfit),
            (keys::MIN_FIT, &self.minfit),
            (keys::MIN_AVAILABLE, &self.minav),
            (keys::NUM_ROUNDS, &self.numround),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
        .collect()
    }
}

/// Which MLFO to call, and the token to present.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// The edge MLFO's REST URL.
    #[arg(long, env = "DMO_MLFO", default_value = "http://127.0.0.1:8000")]
    pub mlfo: String,
    /// File whose first line is the bearer token the MLFO accepts (its
    /// `auth.user_tokens`; `dmo run` writes RESULTS/state/user.token).
    #[arg(long, env = "DMO_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// For an https:// MLFO: the CA certificate to trust (PEM, ca.pem).
    #[arg(long, env = "DMO_ROOT_CERTIFICATES")]
    pub root_certificates: Option<std::path::PathBuf>,
}

fn client(remote: &Remote) -> anyhow::Result<MlfoClient> {
    let token = remote
        .token_file
        .as_deref()
        .map(httpd::auth::read_token)
        .transpose()
        .context("--token-file")?;
    let roots = remote
        .root_certificates
        .as_deref()
        .map(httpd::tls::Roots::read)
        .transpose()
        .context("--root-certificates")?;
    MlfoClient::new(
        &remote.mlfo,
        Duration::from_secs(30),
        token.as_deref(),
        roots.as_ref(),
    )
    .with_context(|| format!("--mlfo {}", remote.mlfo))
}

fn post_intent(
    client: &MlfoClient,
    file: &Path,
    cohort: &CohortRequest,
    constraints: Map<String, Value>,
) -> anyhow::Result<IntentRecord> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read intent {}", file.display()))?;
    let request = IntentRequest {
        intent: Value::String(text),
        cohort: cohort.clone(),
        constraints,
        momo: None,
        skip_clients: false,
    };
    client
        .submit(&request)
        .with_context(|| file.display().to_string())
}

/// `dmo intent send`.
pub fn send(
    file: &Path,
    mlfo: &Remote,
    cohort: CohortRequest,
    constraints: Map<String, Value>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let client = client(mlfo)?;
    let record = post_intent(&client, file, &cohort, constraints)?;
    println!("{}", record.id);
    if wait {
        follow(&client, &[record.id])
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// `dmo intent batch`: one intent per cohort, host ranges from `ipstart`.
pub fn batch(file: &Path, mlfo: &Remote, wait: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read batch {}", file.display()))?;
    let batch: Batch = yaml_serde::from_str(&text).with_context(|| {
        format!(
            "{}: expected `cohorts:` with size and intent per cohort (see docs/mlfo.md)",
            file.display()
        )
    })?;
    if batch.cohorts.is_empty() {
        bail!("{}: cohorts: list at least one cohort", file.display());
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let client = client(mlfo)?;
    let mut ipstart = batch.ipstart;
    let mut ids = Vec::new();
    for (i, c) in batch.cohorts.iter().enumerate() {
        if c.size == 0 {
            bail!("{}: cohorts[{i}].size: must be >= 1", file.display());
        }
        let cohort = CohortRequest {
            ipstart: Some(ipstart),
            size: Some(c.size),
            ..Default::default()
        };
        let record = post_intent(&client, &dir.join(&c.intent), &cohort, c.constraints())?;
        println!(
            "{} (clients .{}-.{})",
            record.id,
            ipstart,
            ipstart + c.size - 1
        );
        ids.push(record.id);
        ipstart += c.size;
    }
    if wait {
        follow(&client, &ids)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// `dmo intent status`.
pub fn status(id: &str, mlfo: &Remote, wait: bool) -> anyhow::Result<ExitCode> {
    let client = client(mlfo)?;
    if wait {
        return follow(&client, &[id.to_owned()]);
    }
    let record = client.intent(id).with_context(|| format!("intent {id}"))?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(ExitCode::SUCCESS)
}

fn progress_line(record: &IntentRecord) -> (u64, u64, String) {
    let done: u64 = record.jobs.iter().map(|j| j.rounds.len() as u64).sum();
    let total: u64 = record.jobs.iter().map(|j| j.rounds_planned).sum();
    let accuracy = record
        .jobs
        .iter()
        .filter_map(|j| j.latest_accuracy())
        .map(|a| format!("{a:.3}"))
        .collect::<Vec<_>>();
    let msg = format!(
        "{} {}{}",
        record.state.as_str(),
        if accuracy.is_empty() {
            String::new()
        } else {
            format!("accuracy {}", accuracy.join(", "))
        },
        record
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    (done, total.max(1), msg)
}

/// Shows a progress bar per intent until every one is final; success when
/// all completed.
fn follow(client: &MlfoClient, ids: &[String]) -> anyhow::Result<ExitCode> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] round {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut pending: Vec<(String, ProgressBar)> = ids
        .iter()
        .map(|id| {
            let bar = bars.add(ProgressBar::new(1).with_style(style.clone()));
            bar.set_prefix(id.clone());
            (id.clone(), bar)
        })
        .collect();
    let mut all_completed = true;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (id, bar) in pending {
            let record = client.intent(&id).with_context(|| format!("intent {id}"))?;
            let (pos, len, msg) = progress_line(&record);
            bar.set_length(len);
            bar.set_position(pos);
            bar.set_message(msg.clone());
            if record.state.is_final() {
                bar.finish();
                if record.state != mlfo::IntentState::Completed {
                    all_completed = false;
                }
                eprintln!("{id}: {msg}");
            } else {
                still.push((id, bar));
            }
        }
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(if all_completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
