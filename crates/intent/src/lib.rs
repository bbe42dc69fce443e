//! ML intents (ITU-T Y.3172): the intent model, its validation, and the
//! pipeline catalog that maps an intent's targets to pipelines and FL plans.
//!
//! ```
//! let text = "intentID: i1\ntargets:\n  - id: factory.all\n    operation: maximise\n    \
//!             operand: robots.welding.accuracy\n    constraints: { privacylevel: high }\n";
//! let intent = intent::parse("intent.yaml", text.as_bytes()).unwrap();
//! let resolved = intent::Catalog::builtin().resolve(&intent).unwrap();
//! assert_eq!(resolved.targets[0].pipeline.src.kind, intent::Dataset::Mnist);
//! ```

#![warn(missing_docs)]

mod aggregate;
mod catalog;
mod error;
pub mod keys;
mod model;
mod names;
mod number;
mod parse;
pub mod privacy;
mod resolve;
mod rules;
mod strategy;
mod validate;

pub use catalog::{Catalog, CatalogEntry, FlDefaults, Pipeline, Placement, Stage};
pub use error::{CatalogError, FieldError, IntentError, Problem};
pub use model::{
    AGGREGATE_OPERAND, AGGREGATE_OPERATION, Aggregation, Cohort, Constraints, Intent, LatencyLevel,
    PrivacyLevel, Target,
};
pub use names::{Dataset, ModelName, resolve_model_alias, resolve_source_alias};
pub use number::flag_word;
pub use parse::{load, parse};
pub use resolve::{FlPlan, Plan, Resolved, ResolvedTarget, TrainingMode};
pub use rules::{MAX_CLIENTS, MAX_DOCUMENT_BYTES, MAX_ROUNDS};
pub use strategy::{Strategy, StrategyKind, StrategyParams};
