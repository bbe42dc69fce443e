//! An intent as a user submits it: the document, the cohort selection and
//! constraint overrides (the prototype's form fields), checked and resolved.

use crate::config::MomoMode;
use crate::planner::CohortRequest;
use intent::{Catalog, FlPlan, Intent, ResolvedTarget};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Body of `POST /v1/intents`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentRequest {
    /// The intent: its YAML/JSON text, or the document as a JSON object.
    pub intent: Value,
    /// Which clients take part (default: the intent's `cohort`, else every client agent).
    #[serde(default)]
    pub cohort: CohortRequest,
    /// Constraints set on every target over the document's, in the intent
    /// format (e.g. `{"fracfit": 0.5, "numround": 20, "sameserv": true}`).
    #[serde(default)]
    pub constraints: Map<String, Value>,
    /// Mo-Mo mode for this intent, over the MLFO's `momo` setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momo: Option<MomoMode>,
    /// Place the servers but start no client (the management plane alone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_clients: bool,
}

/// A submission the MLFO can work on.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// Name of the document in errors (the uploaded file's name).
    pub file: String,
    /// The document's bytes (YAML or JSON).
    pub document: Vec<u8>,
    /// Which clients take part.
    pub cohort: CohortRequest,
    /// Constraint overrides applied to every target.
    pub constraints: Map<String, Value>,
    /// How lenient form values were read, kept in the record's notes.
    pub notes: Vec<String>,
    /// Mo-Mo mode for this intent (the prototype's `mlfostatus`), else the MLFO's.
    pub momo: Option<MomoMode>,
    /// Start no FL client (the prototype's `flstatus: disabled`).
    pub skip_clients: bool,
}

impl IntentRequest {
    /// The submission this request makes.
    pub fn into_submission(self) -> Result<Submission, String> {
        let document = match self.intent {
            Value::String(text) => text.into_bytes(),
            doc @ Value::Object(_) => serde_json::to_vec(&doc).map_err(|e| e.to_string())?,
            other => {
                return Err(format!(
                    "intent: must be the intent's YAML text or a JSON object, got {}",
                    kind(&other)
                ));
            }
        };
        Ok(Submission {
            file: "intent".to_owned(),
            document,
            cohort: self.cohort,
            constraints: self.constraints,
            notes: Vec::new(),
            momo: self.momo,
            skip_clients: self.skip_clients,
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An intent checked and resolved: every target federated.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The intent with the overrides applied.
    pub intent: Intent,
    /// Its targets with their pipelines and FL plans.
    pub targets: Vec<(ResolvedTarget, FlPlan)>,
}

/// Parses the document, applies the overrides, resolves it against
/// `catalog` and checks that every target can be federated. The error text
/// names the file, the field and the fix.
pub fn prepare(catalog: &Catalog, submission: &Submission) -> Result<Prepared, String> {
    let file = &submission.file;
    let mut intent = intent::parse(file, &submission.document).map_err(|e| e.to_string())?;
    if !submission.constraints.is_empty() {
        let mut doc = serde_json::to_value(&intent).map_err(|e| e.to_string())?;
        if let Some(targets) = doc.get_mut("targets").and_then(Value::as_array_mut) {
            for target in targets {
                if let Some(c) = target.get_mut("constraints").and_then(Value::as_object_mut) {
                    c.extend(submission.constraints.clone());
                }
            }
        }
        let bytes = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
        intent = intent::parse(file, &bytes).map_err(|e| e.to_string())?;
    }
    let resolved = catalog
        .resolve(&intent)
        .map_err(|errors| intent::IntentError::from_fields(file, errors).to_string())?;
    let targets = resolved
        .targets
        .into_iter()
        .map(|target| {
            let plan = target.plan.settings().clone();
            (target, plan)
        })
        .collect();
    Ok(Prepared { intent, targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WELDING: &str = "intentID: edgeintent01\ntargets:\n  - id: factory.all\n    operation: maximise\n    operand: robots.welding.accuracy\n    constraints:\n      privacylevel: high\n";

    fn submission(doc: &str, constraints: Value) -> Submission {
        Submission {
            file: "welding.yaml".into(),
            document: doc.as_bytes().to_vec(),
            constraints: constraints.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn form_fields_override_the_catalog() {
        let s = submission(
            WELDING,
            serde_json::json!({"fracfit": "0.5", "numround": "7", "sameserv": "yes"}),
        );
        let p = prepare(&Catalog::builtin(), &s).unwrap();
        let plan = &p.targets[0].1;
        assert_eq!(
            (plan.fraction_fit, plan.rounds, plan.same_server),
            (0.5, 7, true)
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let s = submission(WELDING, serde_json::json!({"fracfit": "1.5"}));
        let e = prepare(&Catalog::builtin(), &s).unwrap_err();
        assert!(
            e.starts_with("welding.yaml: targets[0].constraints.fracfit:"),
            "{e}"
        );

        let low = WELDING.replace("high", "low");
        let e = prepare(
            &Catalog::builtin(),
            &submission(&low, serde_json::json!({"dp": "local"})),
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "welding.yaml: targets[0].constraints.dp: must be off with privacylevel low"
            ),
            "{e}"
        );
        let low = WELDING.replace("high", "low");
        let p = prepare(&Catalog::builtin(), &submission(&low, Value::Null)).unwrap();
        assert_eq!(
            p.targets[0].0.plan.mode(),
            intent::TrainingMode::Centralised
        );

        let r: IntentRequest = serde_json::from_value(serde_json::json!({"intent": 3})).unwrap();
        assert_eq!(
            r.into_submission().unwrap_err(),
            "intent: must be the intent's YAML text or a JSON object, got a number"
        );
    }
}
