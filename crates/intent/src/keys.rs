//! The constraint keys that the prototype's intents, forms and Mo-Mo
//! messages share, spelled once. The intent model's serde names
//! ([`crate::Constraints`]) are the same words; a test holds them equal.

/// `privacylevel`: high (federated), low (centralised).
pub const PRIVACY_LEVEL: &str = "privacylevel";
/// `sourcekind`: the data set.
pub const SOURCE_KIND: &str = "sourcekind";
/// `modelkind`: the model.
pub const MODEL_KIND: &str = "modelkind";
/// `fracfit`: the fraction of clients sampled per round.
pub const FRACTION_FIT: &str = "fracfit";
/// `minfit`: the fewest clients a round trains.
pub const MIN_FIT: &str = "minfit";
/// `minav`: the clients that must connect before round 1.
pub const MIN_AVAILABLE: &str = "minav";
/// `numround`: the number of rounds.
pub const NUM_ROUNDS: &str = "numround";
/// `sameserv`: join the running FL server of the same pipeline.
pub const SAME_SERVER: &str = "sameserv";
/// `avgalgo`: the aggregation strategy.
pub const AVG_ALGO: &str = "avgalgo";

/// The prototype's constraints, in the order of its `momo.Constraints`.
pub const PROTOTYPE: [&str; 9] = [
    PRIVACY_LEVEL,
    SOURCE_KIND,
    MODEL_KIND,
    FRACTION_FIT,
    MIN_FIT,
    MIN_AVAILABLE,
    NUM_ROUNDS,
    SAME_SERVER,
    AVG_ALGO,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Constraints, ModelName};

    #[test]
    fn the_model_serialises_under_these_keys() {
        let c = Constraints {
            privacy_level: Some(crate::PrivacyLevel::High),
            source_kind: Some(crate::Dataset::Mnist),
            model_kind: Some(ModelName::Mlp),
            avg_algo: Some(crate::StrategyKind::FedAvg),
            fraction_fit: Some(0.5),
            min_fit: Some(1),
            min_available: Some(1),
            num_rounds: Some(1),
            same_server: Some(true),
            ..Constraints::default()
        };
        let value = serde_json::to_value(&c).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = PROTOTYPE.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }
}
