//! `POST /v1/intents` bodies from any JSON, or the seed's body with a byte
//! changed: the body is refused, or read, turned into a submission and
//! prepared against the built-in catalog with a field error, never a panic.

use mlfo::submission::{IntentRequest, prepare};
use proptest::prelude::*;
use serde_json::{Value, json};

fn seed_body() -> Vec<u8> {
    json!({
        "intent": "intentID: weld\ntargets:\n  - id: factory.all\n    operation: maximise\n    operand: robots.welding.accuracy\n    constraints: { privacylevel: medium, dp_noise_multiplier: 0.5 }\n",
        "cohort": {"size": 4, "ipstart": 10},
        "constraints": {"numround": "5", "fracfit": 0.5, "dp": "central", "dp_clipping_norm": 1.0}
    })
    .to_string()
    .into_bytes()
}

fn read(bytes: &[u8]) {
    let Ok(request) = serde_json::from_slice::<IntentRequest>(bytes) else {
        return;
    };
    if let Ok(submission) = request.into_submission() {
        let _ = prepare(&intent::Catalog::builtin(), &submission);
    }
}

/// JSON values up to a small depth, numbers at their extremes included.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(-0.0),
            Just(1e300),
            any::<f64>()
        ]
        .prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        "[a-z_ :{}0-9.-]{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("intent".to_owned()),
                    Just("cohort".to_owned()),
                    Just("constraints".to_owned()),
                    Just("dp".to_owned()),
                    Just("numround".to_owned()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_json_body_never_panics(body in any_json()) {
        read(body.to_string().as_bytes());
    }

    #[test]
    fn a_changed_byte_of_the_seed_body_never_panics(pos in 0usize..1000, byte in any::<u8>()) {
        let mut bytes = seed_body();
        let at = pos % bytes.len();
        bytes[at] = byte;
        read(&bytes);
    }
}

#[test]
fn the_seed_body_prepares_with_central_dp() {
    let request: IntentRequest = serde_json::from_slice(&seed_body()).unwrap();
    let prepared = prepare(
        &intent::Catalog::builtin(),
        &request.into_submission().unwrap(),
    )
    .unwrap();
    let plan = &prepared.targets[0].1;
    assert_eq!(
        plan.privacy,
        Some(intent::privacy::DifferentialPrivacy::Central {
            noise_multiplier: 0.5,
            clipping_norm: Some(1.0)
        })
    );
}
