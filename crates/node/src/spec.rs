//! What a job request asks for (the JSON request bodies, which the prototype
//! forms are turned into too) and its validation into runnable specs.

use fl::server::ServerConfig;
use fl::server::edge::{EdgeOptions, MAX_LOCAL_ROUNDS};
use fl::strategy::{STRATEGY_NAMES, StrategyConfig};
use intent::TrainingMode;
use ml::ModelName;
use ml::datasets::DatasetName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A request field with a bad or missing value; its message names the field
/// and says what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field as the request spells it (`fracfit`, `fraction_fit`, ...).
    pub field: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl FieldError {
    /// `field` holds `got`, which is not `rule`.
    pub fn invalid(field: &str, rule: &str, got: &str) -> Self {
        Self {
            field: field.to_owned(),
            problem: format!("must be {rule}, got {got:?}"),
        }
    }

    /// `field` is absent but required.
    pub fn missing(field: &str, rule: &str) -> Self {
        Self {
            field: field.to_owned(),
            problem: format!("missing; must be {rule}"),
        }
    }
}

/// A nested check's error `NAME: PROBLEM` as the field `parent.NAME`.
fn prefixed(parent: &str, error: &str) -> FieldError {
    let (name, problem) = error.split_once(": ").unwrap_or(("", error));
    FieldError {
        field: if name.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{name}")
        },
        problem: problem.to_owned(),
    }
}

/// Rule of `fraction_fit` (`fracfit`).
pub const FRACTION_FIT: &str = "a number in (0, 1]";
/// Rule of `fraction_evaluate`.
pub const FRACTION_EVALUATE: &str = "a number in [0, 1]";
/// Rule of client counts and rounds.
pub const AT_LEAST_ONE: &str = "a whole number >= 1";
/// Rule of the FL server address.
pub const HOST_PORT: &str = "HOST:PORT with a port in 1..=65535";
/// Rule of label names.
pub const LABEL_NAME: &str = "a label name ([a-zA-Z_][a-zA-Z0-9_]*, not \"job\")";

/// `x` is a valid `fraction_fit`.
pub fn fraction_fit_ok(x: f64) -> bool {
    x > 0.0 && x <= 1.0
}

/// The strategy rule, listing the known names.
pub fn strategy_rule() -> String {
    format!("one of {}", STRATEGY_NAMES.join(", "))
}

/// The dataset rule, listing the names and the prototype's aliases.
pub fn dataset_rule() -> String {
    format!("a dataset: {}", DatasetName::choices())
}

/// The model rule, listing the names and the prototype's aliases.
pub fn model_rule() -> String {
    format!("a model: {}", ModelName::choices())
}

/// Server-side evaluation of the global model after every round.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// Dataset whose official test split is used.
    pub dataset: String,
    /// The model the clients train.
    pub model: String,
}

/// Body of `POST /v1/servers`; every field is optional but `dataset` and
/// `model` of a centralised trainer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRequest {
    /// `federated` (default): an FL server; `centralised`: a central
    /// trainer that takes the clients' data parts and trains on them,
    /// `rounds` passes of `local_epochs` epochs each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<TrainingMode>,
    /// The dataset a centralised trainer's parts come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The model a centralised trainer trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// An edge aggregator (hierarchical FL) of the FL server at this
    /// `HOST:PORT`: one client to it, whose every fit is `local_rounds`
    /// rounds with this server's own clients; `rounds` is then the
    /// upstream server's to decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// With `upstream`: rounds with the own clients per upstream round
    /// (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_rounds: Option<u64>,
    /// Aggregation strategy name (default fedavg).
    pub strategy: Option<String>,
    /// Strategy parameters, e.g. `{"proximal_mu": 0.1}`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub strategy_params: serde_json::Map<String, serde_json::Value>,
    /// Rounds to run (default 3).
    pub rounds: Option<u64>,
    /// Fraction of connected clients sampled for fit (default 1).
    pub fraction_fit: Option<f64>,
    /// Minimum clients sampled for fit (default 2).
    pub min_fit: Option<usize>,
    /// Clients that must be connected before a round (default 2).
    pub min_available: Option<usize>,
    /// Clients that must be connected before rounds after the first
    /// (default: `min_available`), at most `min_available`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available_later: Option<usize>,
    /// Fraction of clients sampled for evaluate (default 1; 0 skips).
    pub fraction_evaluate: Option<f64>,
    /// Minimum clients sampled for evaluate (default 2).
    pub min_evaluate: Option<usize>,
    /// Local epochs sent to clients.
    pub local_epochs: Option<i64>,
    /// Batch size sent to clients.
    pub batch_size: Option<i64>,
    /// Learning rate sent to clients.
    pub learning_rate: Option<f64>,
    /// Seconds each client may take to answer in a round.
    pub round_timeout_s: Option<f64>,
    /// Seed of client sampling (default 0).
    pub seed: Option<u64>,
    /// Server-side evaluation, if wanted.
    pub evaluate: Option<EvaluateRequest>,
    /// Start nothing unless the server is ready by this time (seconds since
    /// the Unix epoch): a caller that gives up then knows no server is left
    /// behind (clocks of caller and agent agree on one machine or with NTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_by_unix_s: Option<f64>,
    /// Central differential privacy: the clients' updates clipped, noise
    /// added to the aggregate (fields of [`fl::privacy::ServerDp`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<fl::privacy::ServerDp>,
    /// Serve Flower over TLS with the agent's certificate (an edge
    /// aggregator also reaches its upstream over TLS, trusting the agent's
    /// roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// Extra labels of the job and its metrics (e.g. intent id, cohort).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Body of `POST /v1/clients`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// `federated` (default): join the FL server at `server`;
    /// `centralised`: send the data part to the central trainer there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<TrainingMode>,
    /// FL server (or central trainer) address, HOST:PORT.
    pub server: String,
    /// Dataset (canonical name or prototype alias).
    pub dataset: String,
    /// Model (canonical name or prototype alias).
    pub model: String,
    /// Clients in the cohort (default 1).
    pub num_clients: Option<usize>,
    /// This client's index in the cohort (default 0).
    pub index: Option<usize>,
    /// Partition scheme: iid, shards, shards:N, dirichlet:ALPHA, contiguous (default iid).
    pub partition: Option<String>,
    /// Fraction of local examples held out for evaluation (default 0.1).
    pub test_fraction: Option<f64>,
    /// Seed shared by the cohort (default 0).
    pub seed: Option<u64>,
    /// Training threads (default: the agent's `--threads`), at most
    /// [`max_threads`].
    pub threads: Option<usize>,
    /// Connection attempts before the client gives up (default 20).
    pub connect_attempts: Option<u32>,
    /// Attack the federation (`sign-flip`, `gaussian`, `label-flip`), to
    /// measure a strategy's robustness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// Local differential privacy: each update clipped and noised before
    /// it is sent (fields of [`fl::privacy::LocalDp`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_dp: Option<fl::privacy::LocalDp>,
    /// Reach the FL server over TLS, trusting the agent's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// Extra labels of the job and its metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Most training threads one client job may ask for on any machine.
pub const MAX_THREADS: usize = 64;

/// Most training threads one client job may ask for here: twice the
/// machine's cores (more only thrash), at most [`MAX_THREADS`].
pub fn max_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_mul(2)
        .min(MAX_THREADS)
}

/// Longest round timeout a request may set, seconds (a day).
pub const MAX_ROUND_TIMEOUT_S: f64 = 24.0 * 3600.0;

/// Default connection attempts of a client (about a minute of retries).
pub const DEFAULT_CONNECT_ATTEMPTS: u32 = 20;

/// A validated FL server job.
pub struct ServerSpec {
    /// The strategy with its parameters.
    pub strategy: StrategyConfig,
    /// The run's configuration.
    pub config: ServerConfig,
    /// Server-side evaluation: dataset and model.
    pub evaluate: Option<(DatasetName, ModelName)>,
    /// A centralised trainer's dataset and model; `None` for an FL server.
    pub trainer: Option<(DatasetName, ModelName)>,
    /// An edge aggregator's upstream server and local rounds; `None` for
    /// a server of its own.
    pub edge: Option<EdgeOptions>,
    /// Central differential privacy around the strategy.
    pub dp: Option<fl::privacy::CheckedDp>,
    /// Flower over TLS.
    pub tls: bool,
    /// Start nothing past this time, seconds since the Unix epoch.
    pub start_by_unix_s: Option<f64>,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// The request as given, shown in the job's `config`.
    pub shown: serde_json::Value,
}

/// A validated FL client job.
pub struct ClientJobSpec {
    /// Join an FL server, or send the data part to a central trainer.
    pub mode: TrainingMode,
    /// FL server (or central trainer) address.
    pub server: String,
    /// Dataset.
    pub dataset: DatasetName,
    /// Model.
    pub model: ModelName,
    /// This client's part of the dataset.
    pub partition: ml::Partition,
    /// Training threads, when the request chose.
    pub threads: Option<usize>,
    /// Connection attempts.
    pub connect_attempts: u32,
    /// How the client attacks, if it does.
    pub attack: Option<ml::attack::Attack>,
    /// Local differential privacy, checked.
    pub local_dp: Option<fl::privacy::LocalDp>,
    /// Reach the server over TLS.
    pub tls: bool,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// The request as given, shown in the job's `config`.
    pub shown: serde_json::Value,
}

/// How a request spells the fields whose checks are shared, so that errors
/// name the field the caller sent (`fracfit` in a form, `fraction_fit` in JSON).
pub struct Names {
    /// Strategy field.
    pub strategy: &'static str,
    /// Rounds field.
    pub rounds: &'static str,
    /// Fraction-fit field.
    pub fraction_fit: &'static str,
    /// Minimum fit clients field.
    pub min_fit: &'static str,
    /// Minimum available clients field.
    pub min_available: &'static str,
    /// Dataset field.
    pub dataset: &'static str,
    /// Model field.
    pub model: &'static str,
    /// Cohort size field.
    pub num_clients: &'static str,
    /// Client index field.
    pub index: &'static str,
}

/// The JSON API's field names.
pub const JSON_NAMES: Names = Names {
    strategy: "strategy",
    rounds: "rounds",
    fraction_fit: "fraction_fit",
    min_fit: "min_fit",
    min_available: "min_available",
    dataset: "dataset",
    model: "model",
    num_clients: "num_clients",
    index: "index",
};

pub(crate) fn check<T: ToString>(
    field: &str,
    rule: &str,
    value: T,
    ok: bool,
) -> Result<T, FieldError> {
    if ok {
        Ok(value)
    } else {
        Err(FieldError::invalid(field, rule, &value.to_string()))
    }
}

/// Resolves a prototype alias or canonical dataset name.
pub fn dataset(field: &str, name: &str) -> Result<DatasetName, FieldError> {
    DatasetName::from_name(name).ok_or_else(|| FieldError::invalid(field, &dataset_rule(), name))
}

/// Resolves a prototype alias or canonical model name.
pub fn model(field: &str, name: &str) -> Result<ModelName, FieldError> {
    ModelName::from_name(name).ok_or_else(|| FieldError::invalid(field, &model_rule(), name))
}

fn strategy(
    field: &str,
    name: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<StrategyConfig, FieldError> {
    let base = StrategyConfig::from_name(name)
        .ok_or_else(|| FieldError::invalid(field, &strategy_rule(), name))?;
    if params.is_empty() {
        return Ok(base);
    }
    let bad = |e: serde_json::Error| FieldError {
        field: "strategy_params".to_owned(),
        problem: format!("parameters do not fit strategy {name}: {e}"),
    };
    let mut value = serde_json::to_value(&base).map_err(bad)?;
    if let Some(obj) = value.as_object_mut() {
        obj.extend(params.clone());
    }
    serde_json::from_value(value).map_err(bad)
}

fn labels(labels: &BTreeMap<String, String>) -> Result<(), FieldError> {
    for name in labels.keys() {
        let mut chars = name.chars();
        let ok = name != "job"
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(FieldError::invalid("labels", LABEL_NAME, name));
        }
    }
    Ok(())
}

/// Checks a `HOST:PORT` server address.
pub fn server_address(field: &str, addr: &str) -> Result<String, FieldError> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    check(field, HOST_PORT, addr, ok).map(str::to_owned)
}

impl ServerRequest {
    /// Validates the request; errors name fields as `names` spells them.
    // Over 80 lines: one check per request field, in the request's order, each naming its field; split up, the rules would be read in several places.
    pub fn into_spec(self, names: &Names) -> Result<ServerSpec, FieldError> {
        let shown = serde_json::to_value(&self).unwrap_or_default();
        let strategy = strategy(
            names.strategy,
            self.strategy.as_deref().unwrap_or("fedavg"),
            &self.strategy_params,
        )?;
        let d = ServerConfig::default();
        let rounds = self.rounds.unwrap_or(d.rounds);
        check(names.rounds, AT_LEAST_ONE, rounds, rounds >= 1)?;
        let fraction_fit = self.fraction_fit.unwrap_or(d.fraction_fit);
        check(
            names.fraction_fit,
            FRACTION_FIT,
            fraction_fit,
            fraction_fit_ok(fraction_fit),
        )?;
        let min_fit = self.min_fit.unwrap_or(d.min_fit_clients);
        check(names.min_fit, AT_LEAST_ONE, min_fit, min_fit >= 1)?;
        let min_available = self.min_available.unwrap_or(d.min_available_clients);
        check(
            names.min_available,
            AT_LEAST_ONE,
            min_available,
            min_available >= 1,
        )?;
        let min_available_later = self.min_available_later(min_available)?;
        let fraction_evaluate = self.fraction_evaluate.unwrap_or(d.fraction_evaluate);
        check(
            "fraction_evaluate",
            FRACTION_EVALUATE,
            fraction_evaluate,
            (0.0..=1.0).contains(&fraction_evaluate),
        )?;
        let round_timeout = match self.round_timeout_s {
            Some(s) if s.is_finite() && s > 0.0 && s <= MAX_ROUND_TIMEOUT_S => {
                Some(Duration::from_secs_f64(s))
            }
            Some(s) => {
                return Err(FieldError::invalid(
                    "round_timeout_s",
                    &format!("seconds in (0, {MAX_ROUND_TIMEOUT_S}]"),
                    &format!("{s:?}"),
                ));
            }
            None => None,
        };
        if let Some(v) = self.local_epochs {
            check("local_epochs", AT_LEAST_ONE, v, v >= 1)?;
        }
        if let Some(v) = self.batch_size {
            check("batch_size", AT_LEAST_ONE, v, v >= 1)?;
        }
        if let Some(v) = self.learning_rate {
            check("learning_rate", "a number > 0", v, v.is_finite() && v > 0.0)?;
        }
        let fit_config =
            ml::FitConfig::given(self.local_epochs, self.batch_size, self.learning_rate);
        let evaluate = match &self.evaluate {
            Some(e) => Some((
                dataset("evaluate.dataset", &e.dataset)?,
                model("evaluate.model", &e.model)?,
            )),
            None => None,
        };
        let trainer = self.central_trainer()?;
        let edge = self.edge(trainer.is_some(), evaluate.is_some())?;
        labels(&self.labels)?;
        let sampled = min_fit.max((fraction_fit * min_available as f64).ceil() as usize);
        let dp = self.dp(trainer.is_some(), sampled)?;
        Ok(ServerSpec {
            strategy,
            config: ServerConfig {
                rounds,
                min_available_clients: min_available,
                min_available_later,
                fraction_fit,
                min_fit_clients: min_fit,
                fraction_evaluate,
                min_evaluate_clients: self.min_evaluate.unwrap_or(d.min_evaluate_clients),
                round_timeout,
                seed: self.seed.unwrap_or(d.seed),
                fit_config,
                ..d
            },
            evaluate,
            trainer,
            edge,
            dp,
            tls: self.tls.unwrap_or(false),
            start_by_unix_s: self.start_by_unix_s.filter(|t| t.is_finite()),
            labels: self.labels,
            shown,
        })
    }
}

impl ServerRequest {
    /// A centralised trainer's dataset and model, checked; `None` for an
    /// FL server.
    fn central_trainer(&self) -> Result<Option<(DatasetName, ModelName)>, FieldError> {
        if self.mode.unwrap_or(TrainingMode::Federated) == TrainingMode::Federated {
            return Ok(None);
        }
        let need = "required by mode centralised";
        let d = self.dataset.as_deref().ok_or_else(|| {
            FieldError::missing("dataset", &format!("{} ({need})", dataset_rule()))
        })?;
        let m = self
            .model
            .as_deref()
            .ok_or_else(|| FieldError::missing("model", &format!("{} ({need})", model_rule())))?;
        Ok(Some((dataset("dataset", d)?, model("model", m)?)))
    }

    /// Central DP, checked for `sampled` clients per round; not for a
    /// central trainer.
    fn dp(
        &self,
        centralised: bool,
        sampled: usize,
    ) -> Result<Option<fl::privacy::CheckedDp>, FieldError> {
        match &self.dp {
            Some(_) if centralised => Err(FieldError {
                field: "dp".to_owned(),
                problem: "goes with an FL server, not mode centralised (a central trainer gets the data itself)".to_owned(),
            }),
            Some(dp) => Ok(Some(dp.check(sampled).map_err(|e| prefixed("dp", &e))?)),
            None => Ok(None),
        }
    }

    /// `min_available_later`, checked against `min_available`.
    fn min_available_later(&self, min_available: usize) -> Result<Option<usize>, FieldError> {
        if let Some(later) = self.min_available_later {
            let rule = format!("a whole number in 1..={min_available} (min_available)");
            check(
                "min_available_later",
                &rule,
                later,
                (1..=min_available).contains(&later),
            )?;
        }
        Ok(self.min_available_later)
    }

    /// The edge aggregator the request asks for, checked: `upstream` a
    /// `HOST:PORT`, `local_rounds` in range and only with it, neither with
    /// a centralised trainer or server-side evaluation.
    fn edge(&self, centralised: bool, evaluated: bool) -> Result<Option<EdgeOptions>, FieldError> {
        let Some(upstream) = &self.upstream else {
            if self.local_rounds.is_some() {
                return Err(FieldError {
                    field: "local_rounds".to_owned(),
                    problem: "goes with upstream (an edge aggregator); drop it or give upstream"
                        .to_owned(),
                });
            }
            return Ok(None);
        };
        let upstream = server_address("upstream", upstream)?;
        if centralised || evaluated {
            return Err(FieldError {
                field: "upstream".to_owned(),
                problem: "an edge aggregator has no central trainer and no server-side \
                          evaluation (its upstream server evaluates); drop mode centralised \
                          or evaluate"
                    .to_owned(),
            });
        }
        let local_rounds = self.local_rounds.unwrap_or(1);
        let rule = format!("a whole number in 1..={MAX_LOCAL_ROUNDS}");
        check(
            "local_rounds",
            &rule,
            local_rounds,
            (1..=MAX_LOCAL_ROUNDS).contains(&local_rounds),
        )?;
        Ok(Some(EdgeOptions {
            local_rounds,
            ..EdgeOptions::new(upstream)
        }))
    }
}

impl ClientRequest {
    /// Validates the request; errors name fields as `names` spells them.
    pub fn into_spec(self, names: &Names) -> Result<ClientJobSpec, FieldError> {
        let shown = serde_json::to_value(&self).unwrap_or_default();
        let server = server_address("server", &self.server)?;
        let dataset = dataset(names.dataset, &self.dataset)?;
        let model = model(names.model, &self.model)?;
        let num_clients = self.num_clients.unwrap_or(1);
        check(
            names.num_clients,
            AT_LEAST_ONE,
            num_clients,
            num_clients >= 1,
        )?;
        let index = self.index.unwrap_or(0);
        let index_rule = format!("a whole number below {} ({num_clients})", names.num_clients);
        check(names.index, &index_rule, index, index < num_clients)?;
        let scheme_text = self.partition.as_deref().unwrap_or("iid");
        let scheme: ml::Scheme = scheme_text.parse().map_err(|_| {
            FieldError::invalid(
                "partition",
                "iid, shards, shards:N, dirichlet:ALPHA or contiguous",
                scheme_text,
            )
        })?;
        let test_fraction = self.test_fraction.unwrap_or(0.1);
        check(
            "test_fraction",
            "a number in [0, 1)",
            test_fraction,
            (0.0..1.0).contains(&test_fraction),
        )?;
        let connect_attempts = self.connect_attempts.unwrap_or(DEFAULT_CONNECT_ATTEMPTS);
        check(
            "connect_attempts",
            AT_LEAST_ONE,
            connect_attempts,
            connect_attempts >= 1,
        )?;
        if let Some(t) = self.threads {
            let most = max_threads();
            let rule = format!(
                "a whole number in 0..={most} (0: one per core; at most twice this machine's cores)"
            );
            check("threads", &rule, t, t <= most)?;
        }
        labels(&self.labels)?;
        let attack = match self.attack.as_deref() {
            None => None,
            Some(name) => Some(ml::attack::Attack::from_name(name).ok_or_else(|| {
                FieldError::invalid(
                    "attack",
                    &format!("one of {}", ml::attack::Attack::NAMES.join(", ")),
                    name,
                )
            })?),
        };
        if let Some(dp) = &self.local_dp {
            dp.check().map_err(|e| prefixed("local_dp", &e))?;
        }
        Ok(ClientJobSpec {
            local_dp: self.local_dp,
            tls: self.tls.unwrap_or(false),
            mode: self.mode.unwrap_or(TrainingMode::Federated),
            server,
            dataset,
            model,
            partition: ml::Partition {
                scheme,
                num_clients,
                index,
                seed: self.seed.unwrap_or(0),
                test_fraction,
            },
            threads: self.threads,
            connect_attempts,
            attack,
            labels: self.labels,
            shown,
        })
    }
}
