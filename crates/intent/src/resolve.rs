//! Resolving an intent against the catalog: each target's pipeline and FL plan.

use crate::catalog::{Catalog, FlDefaults, Pipeline};
use crate::error::FieldError;
use crate::model::{
    AGGREGATE_OPERAND, AGGREGATE_OPERATION, Aggregation, Cohort, Constraints, Intent, LatencyLevel,
    PrivacyLevel, Target,
};
use crate::strategy::Strategy;
use serde::{Deserialize, Serialize};

/// An intent with every target resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    /// The intent, normalised (canonical names, typed numbers).
    pub intent: Intent,
    /// The targets resolved, in the intent's order.
    pub targets: Vec<ResolvedTarget>,
}

/// One target with its pipeline and plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedTarget {
    /// The target's id.
    pub id: String,
    /// The target's operation.
    pub operation: String,
    /// The target's operand.
    pub operand: String,
    /// The pipeline, with the intent's `sourcekind`/`modelkind` applied.
    pub pipeline: Pipeline,
    /// How to train.
    pub plan: Plan,
}

/// How a target is trained.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Plan {
    /// Federated learning (privacy level high): data stays on the clients.
    Federated(FlPlan),
    /// Centralised training (privacy level low): every client sends its
    /// data to one trainer, which trains the same model with the same
    /// settings for [`FlPlan::passes`] passes over the pooled data.
    Centralised(FlPlan),
}

/// Where the training happens: the two plans of Y.3172 that we run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingMode {
    /// On the clients, aggregated by an FL server.
    Federated,
    /// On one central trainer that the clients send their data to.
    Centralised,
}

impl TrainingMode {
    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingMode::Federated => "federated",
            TrainingMode::Centralised => "centralised",
        }
    }
}

impl std::fmt::Display for TrainingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Plan {
    /// The training settings, whichever the mode.
    pub fn settings(&self) -> &FlPlan {
        match self {
            Plan::Federated(plan) | Plan::Centralised(plan) => plan,
        }
    }

    /// Federated or centralised.
    pub fn mode(&self) -> TrainingMode {
        match self {
            Plan::Federated(_) => TrainingMode::Federated,
            Plan::Centralised(_) => TrainingMode::Centralised,
        }
    }
}

/// Every FL setting decided: the intent's constraints over the catalog's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlPlan {
    /// Aggregation strategy with its parameters.
    pub strategy: Strategy,
    /// Number of rounds.
    pub rounds: u32,
    /// Fraction of available clients sampled per round.
    pub fraction_fit: f64,
    /// Fewest clients trained per round.
    pub min_fit: u32,
    /// Fewest clients connected before a round starts.
    pub min_available: u32,
    /// Local epochs per round.
    pub local_epochs: u32,
    /// Local mini-batch size.
    pub batch_size: u32,
    /// Client learning rate.
    pub learning_rate: f64,
    /// Reuse a running FL server of the same kind.
    pub same_server: bool,
    /// The clients, when the intent chose them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort: Option<Cohort>,
    /// Stop at this accuracy, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_accuracy: Option<f64>,
    /// Give up after this many seconds, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<f64>,
    /// Bandwidth cap in Mbit/s, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bandwidth_mbps: Option<f64>,
    /// Where updates are aggregated: as the intent names it, else
    /// hierarchical for `latency: low` (the prototype's rule), else flat.
    pub aggregation: Aggregation,
    /// Differential privacy (`dp`, or `privacylevel: medium`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<crate::privacy::DifferentialPrivacy>,
}

impl FlPlan {
    /// Passes over the cohort's data that federated training makes on
    /// average, `rounds x local_epochs x fraction_fit` rounded (at least 1):
    /// how long a centralised plan trains for the same work.
    pub fn passes(&self) -> u32 {
        let passes = f64::from(self.rounds) * f64::from(self.local_epochs) * self.fraction_fit;
        (passes.round() as u32).max(1)
    }
}

impl Catalog {
    /// Resolves every target of `intent` (parsed with [`crate::parse`] or
    /// [`crate::load`]): finds its pipeline, and merges its constraints over
    /// the catalog's FL defaults.
    ///
    /// Fails with every problem found: unknown operation or operand (listing
    /// the known ones), strategy parameters that do not apply, client counts
    /// that conflict with the defaults. Wrap with [`crate::IntentError::from_fields`].
    pub fn resolve(&self, intent: &Intent) -> Result<Resolved, Vec<FieldError>> {
        let mut errors = Vec::new();
        let targets: Vec<ResolvedTarget> = intent
            .targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                self.resolve_target(t, &format!("targets[{i}]"))
                    .map_err(|e| errors.extend(e))
                    .ok()
            })
            .collect();
        if errors.is_empty() {
            Ok(Resolved {
                intent: intent.clone(),
                targets,
            })
        } else {
            Err(errors)
        }
    }

    fn resolve_target(&self, t: &Target, path: &str) -> Result<ResolvedTarget, Vec<FieldError>> {
        let c = &t.constraints;
        let cpath = format!("{path}.constraints");
        let (mut pipeline, defaults, privacy) = if t.is_aggregate() {
            self.aggregate_pipeline(t, path)?
        } else {
            let entry = self.entry(t, path)?;
            // validate::intent guarantees a privacy level on other operations.
            let privacy = c.privacy_level.unwrap_or(PrivacyLevel::Low);
            (entry.pipeline.clone(), entry.fl.clone(), privacy)
        };
        if let Some(dataset) = c.source_kind {
            pipeline.src.kind = dataset;
        }
        if let Some(model) = c.model_kind {
            pipeline.model.kind = model;
        }
        let mut fl = fl_plan(c, &defaults, &cpath)?;
        fl.privacy = crate::privacy::plan(c, privacy, &cpath).map_err(|e| vec![e])?;
        if privacy == PrivacyLevel::Low && c.aggregation == Some(Aggregation::Hierarchical) {
            return Err(vec![FieldError::new(
                format!("{cpath}.aggregation"),
                "must be flat with privacylevel low: a centralised plan sends the data, \
                 not updates, so nothing is aggregated on the way"
                    .to_owned(),
                "hierarchical".to_owned(),
            )]);
        }
        let plan = match privacy {
            PrivacyLevel::High | PrivacyLevel::Medium => Plan::Federated(fl),
            PrivacyLevel::Low => Plan::Centralised(FlPlan {
                aggregation: Aggregation::Flat,
                ..fl
            }),
        };
        Ok(ResolvedTarget {
            id: t.id.clone(),
            operation: t.operation.clone(),
            operand: t.operand.clone(),
            pipeline,
            plan,
        })
    }

    /// The catalog entry of a target, or why there is none.
    fn entry(&self, t: &Target, path: &str) -> Result<&crate::CatalogEntry, Vec<FieldError>> {
        if let Some(entry) = self.find(&t.operation, &t.operand) {
            return Ok(entry);
        }
        let operands = self.operands(&t.operation);
        let error = if operands.is_empty() {
            FieldError::new(
                format!("{path}.operation"),
                format!("must be one of {}", self.operations().join(" | ")),
                format!("{:?}", t.operation),
            )
        } else {
            FieldError::new(
                format!("{path}.operand"),
                format!(
                    "must be one of {} for operation {}",
                    operands.join(" | "),
                    t.operation
                ),
                format!("{:?}", t.operand),
            )
        };
        Err(vec![error])
    }

    /// Pipeline and defaults of an `aggregate.global` target: the catalog
    /// entry with the same dataset and model, or a generic federated one.
    fn aggregate_pipeline(
        &self,
        t: &Target,
        path: &str,
    ) -> Result<(Pipeline, FlDefaults, PrivacyLevel), Vec<FieldError>> {
        let c = &t.constraints;
        let cpath = format!("{path}.constraints");
        let mut errors = Vec::new();
        if t.operand != AGGREGATE_OPERAND {
            errors.push(FieldError::new(
                format!("{path}.operand"),
                format!("must be {AGGREGATE_OPERAND} for operation {AGGREGATE_OPERATION}"),
                format!("{:?}", t.operand),
            ));
        }
        let privacy = c.privacy_level.unwrap_or(PrivacyLevel::High);
        if privacy == PrivacyLevel::Medium {
            errors.push(FieldError::new(
                format!("{cpath}.privacylevel"),
                format!(
                    "must be high (federated), low (centralised) or absent for operation {AGGREGATE_OPERATION}"
                ),
                privacy.as_str(),
            ));
        }
        let required = |field: &str| {
            FieldError::missing(
                format!("{cpath}.{field}"),
                format!("required for operation {AGGREGATE_OPERATION}"),
            )
        };
        if c.source_kind.is_none() {
            errors.push(required("sourcekind"));
        }
        if c.model_kind.is_none() {
            errors.push(required("modelkind"));
        }
        let (Some(dataset), Some(model), true) = (c.source_kind, c.model_kind, errors.is_empty())
        else {
            return Err(errors);
        };
        let (pipeline, defaults) = self
            .entries()
            .iter()
            .find(|e| e.pipeline.src.kind == dataset && e.pipeline.model.kind == model)
            .map_or_else(
                || (Pipeline::federated(dataset, model), FlDefaults::default()),
                |e| (e.pipeline.clone(), e.fl.clone()),
            );
        Ok((pipeline, defaults, privacy))
    }
}

/// The intent's FL constraints over the catalog's defaults, checked together.
fn fl_plan(c: &Constraints, d: &FlDefaults, path: &str) -> Result<FlPlan, Vec<FieldError>> {
    const DEFAULT: &str = ", the catalog's default";
    let mut errors = Vec::new();
    let kind = c.avg_algo.unwrap_or(d.strategy);
    let strategy = Strategy::build(kind, &c.strategy_params).map_err(|param| {
        let from = if c.avg_algo.is_some() {
            ""
        } else {
            " (the catalog's default)"
        };
        errors.push(FieldError::missing(
            format!("{path}.{param}"),
            format!("does not apply to avgalgo {kind}{from}"),
        ));
    });
    let min_fit = c.min_fit.unwrap_or(d.minfit);
    let min_available = c.min_available.unwrap_or(d.minav);
    if min_fit > min_available {
        // Both given in the intent is caught by validation; here one is a default.
        errors.push(match c.min_fit {
            Some(fit) => FieldError::new(
                format!("{path}.minfit"),
                format!("must be <= minav ({min_available}{DEFAULT})"),
                fit.to_string(),
            ),
            None => FieldError::new(
                format!("{path}.minav"),
                format!("must be >= minfit ({min_fit}{DEFAULT})"),
                min_available.to_string(),
            ),
        });
    }
    if let (Some(cohort), None) = (&c.cohort, c.min_available) {
        let clients = cohort.client_count();
        if min_available as usize > clients {
            errors.push(FieldError::new(
                format!("{path}.cohort"),
                format!("must have at least minav ({min_available}{DEFAULT}) clients"),
                clients.to_string(),
            ));
        }
    }
    match strategy {
        Ok(strategy) if errors.is_empty() => Ok(FlPlan {
            strategy,
            rounds: c.num_rounds.unwrap_or(d.rounds),
            fraction_fit: c.fraction_fit.unwrap_or(d.fracfit),
            min_fit,
            min_available,
            local_epochs: c.local_epochs.unwrap_or(d.local_epochs),
            batch_size: c.batch_size.unwrap_or(d.batch_size),
            learning_rate: c.learning_rate.unwrap_or(d.learning_rate),
            same_server: c.same_server.unwrap_or(false),
            cohort: c.cohort.clone(),
            target_accuracy: c.target_accuracy,
            deadline_s: c.deadline_s,
            max_bandwidth_mbps: c.max_bandwidth_mbps,
            aggregation: c.aggregation.unwrap_or(match c.latency {
                Some(LatencyLevel::Low) => Aggregation::Hierarchical,
                _ => Aggregation::Auto,
            }),
            privacy: None,
        }),
        _ => Err(errors),
    }
}
