//! Mo-Mo, the MLFO-to-MLFO gRPC interface (`package momo`), and the
//! conversion between its all-string messages and the intent model.

use intent::keys;
use serde_json::{Map, Value};

/// Code generated from `proto/momo/momo.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("momo");
}

/// The edge MLFO's client of its cloud's Mo-Mo service, presenting its token.
pub type ParentClient = proto::orchestrate_client::OrchestrateClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, PresentToken>,
>;

/// Adds `authorization: Bearer TOKEN` to every Mo-Mo call (nothing
/// without a token).
#[derive(Clone)]
pub struct PresentToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl PresentToken {
    /// Presents `token`, or nothing.
    pub fn new(token: Option<&str>) -> Result<Self, crate::MlfoError> {
        let value = token
            .map(|t| {
                let mut v: tonic::metadata::MetadataValue<_> = format!("Bearer {t}")
                    .parse()
                    .map_err(|_| crate::MlfoError::Invalid("auth.token: not a token".into()))?;
                v.set_sensitive(true);
                Ok::<_, crate::MlfoError>(v)
            })
            .transpose()?;
        Ok(Self(value))
    }
}

impl tonic::service::Interceptor for PresentToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// Lets a Mo-Mo call through only with one of the tokens (every call
/// without tokens): `UNAUTHENTICATED` without one, `PERMISSION_DENIED`
/// with a wrong one.
#[derive(Clone)]
pub struct CheckToken(pub Option<std::sync::Arc<httpd::auth::Tokens>>);

impl tonic::service::Interceptor for CheckToken {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(tokens) = &self.0 else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match tokens.check(presented) {
            Ok(()) => Ok(request),
            Err(refusal @ httpd::auth::Refusal::Missing) => {
                Err(tonic::Status::unauthenticated(refusal.message()))
            }
            Err(refusal @ httpd::auth::Refusal::Wrong) => {
                Err(tonic::Status::permission_denied(refusal.message()))
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The Mo-Mo message of an intent: the prototype's fields as strings, every
/// other constraint in `extensions_json`.
pub fn to_message(intent: &intent::Intent) -> proto::Intent {
    let targets = intent
        .targets
        .iter()
        .map(|t| {
            let mut fields = match serde_json::to_value(&t.constraints) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            let mut take = |key: &str| fields.remove(key).map(|v| text(&v)).unwrap_or_default();
            let mut c = proto::Constraints {
                privacylevel: take(keys::PRIVACY_LEVEL),
                sourcekind: take(keys::SOURCE_KIND),
                modelkind: take(keys::MODEL_KIND),
                fracfit: take(keys::FRACTION_FIT),
                minfit: take(keys::MIN_FIT),
                minav: take(keys::MIN_AVAILABLE),
                numround: take(keys::NUM_ROUNDS),
                sameserv: take(keys::SAME_SERVER),
                avgalgo: take(keys::AVG_ALGO),
                extensions_json: String::new(),
            };
            if !fields.is_empty() {
                c.extensions_json = Value::Object(fields).to_string();
            }
            proto::Target {
                id: t.id.clone(),
                operation: t.operation.clone(),
                operand: t.operand.clone(),
                constraints: Some(c),
            }
        })
        .collect();
    proto::Intent {
        intent_id: intent.intent_id.clone(),
        targets,
        client: String::new(),
    }
}

/// The intent document (JSON, intent format) a Mo-Mo message carries, for
/// [`intent::parse`] to read and check; empty prototype fields are absent.
pub fn to_document(message: &proto::Intent) -> Result<Vec<u8>, String> {
    let mut targets = Vec::new();
    for (i, t) in message.targets.iter().enumerate() {
        let mut constraints = Map::new();
        if let Some(c) = &t.constraints {
            if !c.extensions_json.is_empty() {
                match serde_json::from_str::<Value>(&c.extensions_json) {
                    Ok(Value::Object(map)) => constraints.extend(map),
                    _ => {
                        return Err(format!(
                            "Targets[{i}].Constraints.extensions_json: must be a JSON object"
                        ));
                    }
                }
            }
            let values = [
                &c.privacylevel,
                &c.sourcekind,
                &c.modelkind,
                &c.fracfit,
                &c.minfit,
                &c.minav,
                &c.numround,
                &c.sameserv,
                &c.avgalgo,
            ];
            for (key, value) in intent::keys::PROTOTYPE.iter().zip(values) {
                if value.is_empty() {
                    continue;
                }
                // The prototype sent any word (`nor`) and ignored it: a new server.
                let value = if *key == keys::SAME_SERVER {
                    Value::Bool(intent::flag_word(value).unwrap_or(false))
                } else {
                    Value::String(value.clone())
                };
                constraints.insert((*key).to_owned(), value);
            }
        }
        let mut target = Map::new();
        target.insert("id".into(), Value::String(t.id.clone()));
        target.insert("operation".into(), Value::String(t.operation.clone()));
        target.insert("operand".into(), Value::String(t.operand.clone()));
        target.insert("constraints".into(), Value::Object(constraints));
        targets.push(Value::Object(target));
    }
    let doc = serde_json::json!({ "intentID": message.intent_id, "targets": targets });
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn an_aggregate_intent_survives_the_trip() {
        let yaml = "intentID: e1\ntargets:\n  - id: factory.all\n    operation: aggregate.global\n    operand: model.federated\n    constraints: {sourcekind: mnist, modelkind: mlp, avgalgo: FedProx, proximal_mu: 0.1, fracfit: 0.5, minfit: 1, minav: 1, numround: 3, sameserv: true, local_epochs: 2, cohort: {size: 2}}\n";
        let intent = intent::parse("a.yaml", yaml.as_bytes()).unwrap();
        let message = to_message(&intent);
        let c = message.targets[0].constraints.as_ref().unwrap();
        assert_eq!(
            (c.fracfit.as_str(), c.numround.as_str(), c.sameserv.as_str()),
            ("0.5", "3", "true")
        );
        assert!(
            c.extensions_json.contains("proximal_mu"),
            "{}",
            c.extensions_json
        );
        let wire = message.encode_to_vec();
        let back = proto::Intent::decode(&wire[..]).unwrap();
        let doc = to_document(&back).unwrap();
        let again = intent::parse("momo.json", &doc).unwrap();
        assert_eq!(again, intent);
    }

    #[test]
    fn a_sameserv_word_other_than_a_flag_means_a_new_server() {
        let yaml = "intentID: e1\ntargets:\n  - id: t\n    operation: aggregate.global\n    operand: model.federated\n    constraints: {sameserv: true}\n";
        let mut message = to_message(&intent::parse("a.yaml", yaml.as_bytes()).unwrap());
        message.targets[0].constraints.as_mut().unwrap().sameserv = "nor".into();
        let again = intent::parse("momo.json", &to_document(&message).unwrap()).unwrap();
        assert_eq!(again.targets[0].constraints.same_server, Some(false));
    }

    #[test]
    fn bad_extensions_are_named() {
        let message = proto::Intent {
            intent_id: "x".into(),
            targets: vec![proto::Target {
                constraints: Some(proto::Constraints {
                    extensions_json: "[1]".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            to_document(&message).unwrap_err(),
            "Targets[0].Constraints.extensions_json: must be a JSON object"
        );
    }
}
