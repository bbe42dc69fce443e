//! Dataset and model names used across the system, and the prototype's aliases.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A dataset the ML crate can load or generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// MNIST handwritten digits (prototype alias `handmnist`).
    Mnist,
    /// Fashion-MNIST (prototype alias `fashionmnist`).
    FashionMnist,
    /// KMNIST (Kuzushiji-MNIST).
    Kmnist,
    /// CIFAR-10 (prototype alias `cifar`).
    Cifar10,
    /// LEAF Synthetic(alpha, beta) feature vectors; needs no download.
    Synthetic,
    /// Generated MNIST-shaped images; needs no download.
    SyntheticImages,
    /// Generated CIFAR-10-shaped images (32x32x3); needs no download.
    SyntheticCifar,
}

/// A model the ML crate can train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelName {
    /// Multinomial logistic regression.
    Logreg,
    /// MLP 784-200-200-10 (prototype alias `complex`).
    Mlp,
    /// The prototype's Keras MLP: Dense 128 relu, Dropout 0.2, Dense 10 (alias `simple`).
    KerasMlp,
    /// A small CNN for 28x28 grey images.
    Cnn,
    /// A CNN for 32x32 colour images (prototype alias `mobilenet`).
    CnnCifar,
}

impl Dataset {
    /// Every dataset, in the order they are listed to users.
    pub const ALL: [Dataset; 7] = [
        Dataset::Mnist,
        Dataset::FashionMnist,
        Dataset::Kmnist,
        Dataset::Cifar10,
        Dataset::Synthetic,
        Dataset::SyntheticImages,
        Dataset::SyntheticCifar,
    ];

    /// The canonical name, e.g. `fashion-mnist`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Kmnist => "kmnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Synthetic => "synthetic",
            Dataset::SyntheticImages => "synthetic-images",
            Dataset::SyntheticCifar => "synthetic-cifar",
        }
    }

    /// Parses a canonical name or a prototype alias (`handmnist`, `fashionmnist`, `cifar`).
    pub fn from_name(name: &str) -> Option<Dataset> {
        let canonical = resolve_source_alias(name);
        Dataset::ALL.into_iter().find(|d| d.as_str() == canonical)
    }
}

impl ModelName {
    /// Every model, in the order they are listed to users.
    pub const ALL: [ModelName; 5] = [
        ModelName::Logreg,
        ModelName::Mlp,
        ModelName::KerasMlp,
        ModelName::Cnn,
        ModelName::CnnCifar,
    ];

    /// The canonical name, e.g. `cnn-cifar`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::Logreg => "logreg",
            ModelName::Mlp => "mlp",
            ModelName::KerasMlp => "keras-mlp",
            ModelName::Cnn => "cnn",
            ModelName::CnnCifar => "cnn-cifar",
        }
    }

    /// Parses a canonical name or a prototype alias (`simple`, `complex`, `mobilenet`).
    pub fn from_name(name: &str) -> Option<ModelName> {
        let canonical = resolve_model_alias(name);
        ModelName::ALL.into_iter().find(|m| m.as_str() == canonical)
    }
}

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

/// `mnist | fashion-mnist | ... (aliases: handmnist, ...)`, for error messages.
pub(crate) fn dataset_choices() -> String {
    choices(Dataset::ALL.map(Dataset::as_str), &SOURCE_ALIASES)
}

/// `logreg | mlp | ... (aliases: simple, ...)`, for error messages.
pub(crate) fn model_choices() -> String {
    choices(ModelName::ALL.map(ModelName::as_str), &MODEL_ALIASES)
}

fn choices<const N: usize>(names: [&str; N], aliases: &[(&str, &str)]) -> String {
    let aliases: Vec<&str> = aliases.iter().map(|(a, _)| *a).collect();
    format!("{} (aliases: {})", names.join(" | "), aliases.join(", "))
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Dataset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for ModelName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Dataset::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown dataset {name:?}, expected one of {}",
                dataset_choices()
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
                model_choices()
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
        assert_eq!(Dataset::from_name("cifar"), Some(Dataset::Cifar10));
        assert_eq!(ModelName::from_name("mobilenet"), Some(ModelName::CnnCifar));
        assert_eq!(Dataset::from_name("imagenet"), None);
    }

    #[test]
    fn canonical_names_round_trip() {
        for d in Dataset::ALL {
            assert_eq!(Dataset::from_name(d.as_str()), Some(d));
        }
        for m in ModelName::ALL {
            assert_eq!(ModelName::from_name(m.as_str()), Some(m));
        }
    }
}
