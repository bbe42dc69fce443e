//! Hostile request bodies (no network): any JSON value in any field of
//! `POST /v1/servers`, `/v1/clients` and `/v1/probes/training`, and any
//! form field of `/serv` and `/cli`, is turned into a job spec or a field
//! error naming the field, never a panic. The values include numbers at
//! the ends of f64's range, negative and fractional counts, and strings.

use node::api_form::{client_request, server_request};
use node::spec::{ClientRequest, JSON_NAMES, ServerRequest};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::HashMap;

const SERVER_FIELDS: [&str; 16] = [
    "rounds",
    "fraction_fit",
    "min_fit",
    "min_available",
    "min_available_later",
    "fraction_evaluate",
    "min_evaluate",
    "local_epochs",
    "batch_size",
    "learning_rate",
    "round_timeout_s",
    "seed",
    "start_by_unix_s",
    "local_rounds",
    "upstream",
    "strategy",
];
const CLIENT_FIELDS: [&str; 9] = [
    "server",
    "dataset",
    "model",
    "num_clients",
    "index",
    "partition",
    "test_fraction",
    "threads",
    "attack",
];

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!(f64::MAX)),
        Just(json!(-0.0)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(0)),
        Just(json!(0.5)),
        Just(json!("")),
        Just(json!("fedavg")),
        Just(json!("127.0.0.1:0")),
        Just(json!("sign-flip")),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(|x| json!(x)),
        "[a-z0-9:.\\-]{0,12}".prop_map(|s| json!(s)),
    ]
}

/// A body with some of `fields` set to hostile values.
fn body(fields: &'static [&'static str]) -> impl Strategy<Value = serde_json::Map<String, Value>> {
    prop::collection::vec((0..fields.len(), hostile_value()), 0..6).prop_map(move |pairs| {
        pairs
            .into_iter()
            .map(|(i, v)| (fields[i].to_owned(), v))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn server_bodies_never_panic(mut fields in body(&SERVER_FIELDS)) {
        fields.insert("dataset".into(), json!("synthetic"));
        if let Ok(request) = serde_json::from_value::<ServerRequest>(Value::Object(fields))
            && let Err(e) = request.into_spec(&JSON_NAMES)
        {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn client_bodies_never_panic(mut fields in body(&CLIENT_FIELDS)) {
        for (k, v) in [("server", "127.0.0.1:6000"), ("dataset", "synthetic"), ("model", "logreg")] {
            fields.entry(k.to_owned()).or_insert(json!(v));
        }
        if let Ok(request) = serde_json::from_value::<ClientRequest>(Value::Object(fields))
            && let Err(e) = request.into_spec(&JSON_NAMES)
        {
            let text = e.to_string();
            prop_assert!(CLIENT_FIELDS.iter().any(|f| text.starts_with(f)), "{text}");
        }
    }

    #[test]
    fn forms_never_panic(values in prop::collection::vec("[a-zA-Z0-9.:\\-e+]{0,24}", 10)) {
        let keys = ["algo", "fracfit", "minfit", "minav", "numround", "server", "source", "model", "cohsize", "part"];
        let form: HashMap<String, String> = keys.iter().map(|k| (*k).to_owned()).zip(values).collect();
        if let Ok(r) = server_request(&form) {
            let _ = r.into_spec(&JSON_NAMES);
        }
        if let Ok(r) = client_request(&form) {
            let _ = r.into_spec(&JSON_NAMES);
        }
    }
}
