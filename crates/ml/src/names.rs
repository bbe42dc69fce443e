//! The names of datasets and models as every layer writes them: the
//! canonical names, the prototype's aliases (`handmnist`, `complex`, ...),
//! the lists error messages show, and serde in those names. The intent
//! catalog, the node agent and the CLI all use these types.

use crate::datasets::DatasetName;
use crate::models::ModelName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prototype's source aliases and the datasets they stand for.
const SOURCE_ALIASES: [(&str, &str); 3] = [
    ("handmnist", "mnist"),
    ("fashionmnist", "fashion-mnist"),
    ("cifar", "cifar10"),
];

/// The prototype's model aliases and the models they stand for.
const MODEL_ALIASES: [(&str, &str); 3] = [
    ("simple", "keras-mlp"),
    ("complex", "mlp"),
    ("mobilenet", "cnn-cifar"),
];

/// Maps a prototype source alias to its dataset name; any other name is returned as is.
///
/// `resolve_source_alias("handmnist") == "mnist"`, `resolve_source_alias("mnist") == "mnist"`.
pub fn resolve_source_alias(name: &str) -> &str {
    lookup(&SOURCE_ALIASES, name)
}

/// Maps a prototype model alias to its model name; any other name is returned as is.
///
/// `resolve_model_alias("complex") == "mlp"`, `resolve_model_alias("cnn") == "cnn"`.
pub fn resolve_model_alias(name: &str) -> &str {
    lookup(&MODEL_ALIASES, name)
}

fn lookup<'a>(table: &[(&'static str, &'static str)], name: &'a str) -> &'a str {
    table
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical)
}

impl DatasetName {
    /// Parses a canonical name or a prototype alias (`handmnist`, `fashionmnist`, `cifar`).
    pub fn from_name(name: &str) -> Option<DatasetName> {
        let canonical = resolve_source_alias(name);
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == canonical)
    }

    /// `mnist | fashion-mnist | ... (aliases: handmnist, ...)`, for error messages.
    pub fn choices() -> String {
        choices(DatasetName::ALL.map(DatasetName::as_str), &SOURCE_ALIASES)
    }
}

impl ModelName {
    /// Parses a canonical name or a prototype alias (`simple`, `complex`, `mobilenet`).
    pub fn from_name(name: &str) -> Option<ModelName> {
        let canonical = resolve_model_alias(name);
        ModelName::ALL.into_iter().find(|m| m.as_str() == canonical)
    }

    /// `logreg | mlp | ... (aliases: simple, ...)`, for error messages.
    pub fn choices() -> String {
        choices(ModelName::ALL.map(ModelName::as_str), &MODEL_ALIASES)
    }
}

fn choices<const N: usize>(names: [&str; N], aliases: &[(&str, &str)]) -> String {
    let aliases: Vec<&str> = aliases.iter().map(|(a, _)| *a).collect();
    format!("{} (aliases: {})", names.join(" | "), aliases.join(", "))
}

impl Serialize for DatasetName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for ModelName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DatasetName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        DatasetName::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown dataset {name:?}, expected one of {}",
                DatasetName::choices()
            ))
        })
    }
}

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ModelName::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown model {name:?}, expected one of {}",
                ModelName::choices()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prototype_aliases_resolve() {
        assert_eq!(resolve_source_alias("handmnist"), "mnist");
        assert_eq!(resolve_source_alias("fashionmnist"), "fashion-mnist");
        assert_eq!(resolve_source_alias("cifar"), "cifar10");
        assert_eq!(resolve_source_alias("synthetic"), "synthetic");
        assert_eq!(resolve_model_alias("simple"), "keras-mlp");
        assert_eq!(resolve_model_alias("complex"), "mlp");
        assert_eq!(resolve_model_alias("mobilenet"), "cnn-cifar");
        assert_eq!(resolve_model_alias("cnn"), "cnn");
        assert_eq!(DatasetName::from_name("cifar"), Some(DatasetName::Cifar10));
        assert_eq!(ModelName::from_name("mobilenet"), Some(ModelName::CnnCifar));
        assert_eq!(DatasetName::from_name("imagenet"), None);
    }

    #[test]
    fn canonical_names_round_trip() {
        for d in DatasetName::ALL {
            assert_eq!(DatasetName::from_name(d.as_str()), Some(d));
        }
        for m in ModelName::ALL {
            assert_eq!(ModelName::from_name(m.as_str()), Some(m));
        }
    }
}
