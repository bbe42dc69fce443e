//! The aggregation strategies' names, defined once: as intents write them
//! (`FedAvg`), as the node API and the CLI take them (`fedavg`), and their
//! aliases (`MultiKrum`), all matched case-insensitively. Built without the
//! runtime, so that the intent crate shares this vocabulary.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An aggregation strategy, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// Federated averaging, weighted by examples (the prototype's only one).
    FedAvg,
    /// FedAvg with a proximal term on the clients.
    FedProx,
    /// FedAvg with server momentum.
    FedAvgM,
    /// Adam on the server.
    FedAdam,
    /// Yogi on the server.
    FedYogi,
    /// Adagrad on the server.
    FedAdagrad,
    /// Coordinate-wise median.
    FedMedian,
    /// Coordinate-wise trimmed mean.
    FedTrimmedAvg,
    /// (Multi-)Krum.
    Krum,
    /// Bulyan: Krum selection, then a trimmed mean around the median.
    Bulyan,
    /// FedAvg keeping only rounds where enough fits completed.
    FaultTolerantFedAvg,
}

impl StrategyKind {
    /// Every strategy.
    pub const ALL: [StrategyKind; 11] = [
        StrategyKind::FedAvg,
        StrategyKind::FedProx,
        StrategyKind::FedAvgM,
        StrategyKind::FedAdam,
        StrategyKind::FedYogi,
        StrategyKind::FedAdagrad,
        StrategyKind::FedMedian,
        StrategyKind::FedTrimmedAvg,
        StrategyKind::Krum,
        StrategyKind::Bulyan,
        StrategyKind::FaultTolerantFedAvg,
    ];

    /// Every strategy's API name, in [`Self::ALL`] order.
    pub const API_NAMES: [&'static str; 11] = {
        let mut names = [""; 11];
        let mut i = 0;
        while i < names.len() {
            names[i] = Self::ALL[i].api_name();
            i += 1;
        }
        names
    };

    /// The name as intents write it, e.g. `FedProx`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StrategyKind::FedAvg => "FedAvg",
            StrategyKind::FedProx => "FedProx",
            StrategyKind::FedAvgM => "FedAvgM",
            StrategyKind::FedAdam => "FedAdam",
            StrategyKind::FedYogi => "FedYogi",
            StrategyKind::FedAdagrad => "FedAdagrad",
            StrategyKind::FedMedian => "FedMedian",
            StrategyKind::FedTrimmedAvg => "FedTrimmedAvg",
            StrategyKind::Krum => "Krum",
            StrategyKind::Bulyan => "Bulyan",
            StrategyKind::FaultTolerantFedAvg => "FaultTolerantFedAvg",
        }
    }

    /// The name as the node API and the CLI write it, e.g. `fedprox`.
    pub const fn api_name(self) -> &'static str {
        match self {
            StrategyKind::FedAvg => "fedavg",
            StrategyKind::FedProx => "fedprox",
            StrategyKind::FedAvgM => "fedavgm",
            StrategyKind::FedAdam => "fedadam",
            StrategyKind::FedYogi => "fedyogi",
            StrategyKind::FedAdagrad => "fedadagrad",
            StrategyKind::FedMedian => "fedmedian",
            StrategyKind::FedTrimmedAvg => "fedtrimmedavg",
            StrategyKind::Krum => "krum",
            StrategyKind::Bulyan => "bulyan",
            StrategyKind::FaultTolerantFedAvg => "faulttolerantfedavg",
        }
    }

    /// Other names a strategy goes by.
    pub const fn aliases(self) -> &'static [&'static str] {
        match self {
            StrategyKind::Krum => &["MultiKrum", "Multi-Krum"],
            _ => &[],
        }
    }

    /// The strategy a name or alias means, ignoring case and surrounding
    /// blanks.
    pub fn from_name(name: &str) -> Option<StrategyKind> {
        let name = name.trim();
        Self::ALL.into_iter().find(|k| {
            k.as_str().eq_ignore_ascii_case(name)
                || k.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }

    /// `FedAvg | FedProx | ...`, for error messages.
    pub fn choices() -> String {
        Self::ALL.map(Self::as_str).join(" | ")
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StrategyKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StrategyKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        StrategyKind::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown strategy {name:?}, expected one of {}",
                StrategyKind::choices()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_alias_and_api_name_finds_its_strategy() {
        for kind in StrategyKind::ALL {
            for name in [kind.as_str(), kind.api_name()]
                .into_iter()
                .chain(kind.aliases().iter().copied())
            {
                assert_eq!(StrategyKind::from_name(name), Some(kind), "{name}");
                let upper = format!(" {} ", name.to_ascii_uppercase());
                assert_eq!(StrategyKind::from_name(&upper), Some(kind), "{upper}");
            }
        }
        assert_eq!(StrategyKind::from_name("fedsgd"), None);
        assert_eq!(StrategyKind::API_NAMES[8], "krum");
    }
}
