//! Dataset and model names: the ML crate's types, which own them (with the
//! prototype's aliases), under the names the intent model uses.

pub use ml::ModelName;
pub use ml::datasets::DatasetName as Dataset;
pub use ml::names::{resolve_model_alias, resolve_source_alias};

/// `mnist | fashion-mnist | ... (aliases: handmnist, ...)`, for error messages.
pub(crate) fn dataset_choices() -> String {
    Dataset::choices()
}

/// `logreg | mlp | ... (aliases: simple, ...)`, for error messages.
pub(crate) fn model_choices() -> String {
    ModelName::choices()
}
