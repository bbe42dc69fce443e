//! Reading an intent document: size limit, YAML or JSON syntax, then the
//! fields, each typed and range-checked with its path.

use crate::error::{FieldError, IntentError, Problem, strip_location};
use crate::keys;
use crate::model::{Aggregation, Cohort, Constraints, Intent, LatencyLevel, PrivacyLevel, Target};
use crate::names::{self, Dataset, ModelName};
use crate::number::{self, Count, Interval, Refusal};
use crate::rules::{self, MAX_DOCUMENT_BYTES};
use crate::strategy::{StrategyKind, StrategyParams};
use crate::validate;
use std::io::Read;
use std::path::Path;
use yaml_serde::{Mapping, Value};

/// Reads, parses and validates the intent in `path` (YAML or JSON).
///
/// Errors name the file as `path` displays.
pub fn load(path: &Path) -> Result<Intent, IntentError> {
    let file = path.display().to_string();
    let io = |e: std::io::Error| IntentError {
        file: file.clone(),
        problems: vec![Problem::Io(e.to_string())],
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        // One byte over the limit is enough to refuse without reading a huge file.
        .take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len(), |m| m.len() as usize);
        return Err(too_large(file, size));
    }
    parse(&file, &bytes)
}

/// Parses and validates an intent from `bytes`; `file` names it in errors and
/// chooses the syntax (`.json` is JSON, `.yaml`/`.yml` YAML, anything else
/// JSON when it starts with `{`, else YAML).
///
/// Checks everything that needs no catalog; [`crate::Catalog::resolve`] checks the rest.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Intent, IntentError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(file.to_owned(), bytes.len()));
    }
    let tree = syntax_tree(file, bytes).map_err(|p| IntentError {
        file: file.to_owned(),
        problems: vec![p],
    })?;
    let mut reader = Reader::default();
    let intent = reader.intent(&tree);
    let mut errors = reader.errors;
    if let (true, Some(intent)) = (errors.is_empty(), &intent) {
        errors = validate::intent(intent);
    }
    match intent {
        Some(intent) if errors.is_empty() => Ok(intent),
        _ => Err(IntentError::from_fields(file, errors)),
    }
}

fn too_large(file: String, size: usize) -> IntentError {
    IntentError {
        file,
        problems: vec![Problem::TooLarge {
            size,
            limit: MAX_DOCUMENT_BYTES,
        }],
    }
}

/// The document as a tree, or the syntax problem with its line and column.
fn syntax_tree(file: &str, bytes: &[u8]) -> Result<Value, Problem> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(&bytes[..e.valid_up_to()]);
        Problem::Syntax {
            line: Some(line),
            column: Some(column),
            message: "not UTF-8 text".to_owned(),
        }
    })?;
    let lower = file.to_ascii_lowercase();
    let json = lower.ends_with(".json")
        || !(lower.ends_with(".yaml") || lower.ends_with(".yml"))
            && text.trim_start().starts_with('{');
    if json {
        serde_json::from_str::<Value>(text).map_err(|e| Problem::Syntax {
            line: (e.line() > 0).then_some(e.line()),
            column: (e.line() > 0).then_some(e.column().max(1)),
            message: strip_location(&e.to_string(), e.line(), e.column()),
        })
    } else {
        yaml_serde::from_str::<Value>(text).map_err(|e| {
            let mut message = e.to_string();
            let (line, column) = match (e.location(), byte_offset(&message)) {
                // Errors of libyaml's reader carry only a byte offset, in the message.
                (_, Some((offset, suffix))) => {
                    message.truncate(message.len() - suffix);
                    let (line, column) = line_column(&bytes[..offset.min(bytes.len())]);
                    (Some(line), Some(column))
                }
                (Some(l), None) => (Some(l.line()), Some(l.column())),
                (None, None) => (None, None),
            };
            Problem::Syntax {
                line,
                column,
                message: strip_location(&message, line.unwrap_or(0), column.unwrap_or(0)),
            }
        })
    }
}

/// The byte offset at the end of a message ending ` at position N`, and
/// the length of that suffix.
fn byte_offset(message: &str) -> Option<(usize, usize)> {
    const MARK: &str = " at position ";
    let start = message.rfind(MARK)?;
    let offset = message[start + MARK.len()..].parse().ok()?;
    Some((offset, message.len() - start))
}

/// 1-based line and column (in characters) just after `prefix`.
fn line_column(prefix: &[u8]) -> (usize, usize) {
    let line = 1 + prefix.iter().filter(|&&b| b == b'\n').count();
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let chars = prefix[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count();
    (line, chars + 1)
}

/// Walks the tree into the model, collecting every field error on the way.
#[derive(Default)]
struct Reader {
    errors: Vec<FieldError>,
}

const INTENT_FIELDS: [&str; 2] = ["intentID", "targets"];
const TARGET_FIELDS: [&str; 4] = ["id", "operation", "operand", "constraints"];
const CONSTRAINT_FIELDS: [&str; 29] = [
    keys::PRIVACY_LEVEL,
    keys::SOURCE_KIND,
    keys::MODEL_KIND,
    keys::AVG_ALGO,
    keys::FRACTION_FIT,
    keys::MIN_FIT,
    keys::MIN_AVAILABLE,
    keys::NUM_ROUNDS,
    keys::SAME_SERVER,
    "proximal_mu",
    "server_lr",
    "server_momentum",
    "trim_fraction",
    "byzantine_clients",
    "min_completion_rate",
    "cohort",
    "local_epochs",
    "batch_size",
    "learning_rate",
    "target_accuracy",
    "deadline_s",
    "max_bandwidth_mbps",
    "aggregation",
    "latency",
    "dp",
    "dp_noise_multiplier",
    "dp_clipping_norm",
    "dp_epsilon",
    "dp_delta",
];
const COHORT_FIELDS: [&str; 2] = ["size", "hosts"];

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// A mapping's value for `key`, with null read as absent.
fn get<'v>(m: &'v Mapping, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| !v.is_null())
}

impl Reader {
    fn refused(&mut self, path: &str, r: Refusal) {
        self.errors.push(FieldError::new(path, r.rule, r.got));
    }

    /// The mapping at `path`, reporting keys outside `known`.
    fn mapping<'v>(&mut self, v: &'v Value, path: &str, known: &[&str]) -> Option<&'v Mapping> {
        let Value::Mapping(m) = v else {
            let at = if path.is_empty() { "document" } else { path };
            let rule = format!("must be a mapping with fields {}", known.join(", "));
            self.errors
                .push(FieldError::new(at, rule, number::describe(v)));
            return None;
        };
        for key in m.keys() {
            match key {
                Value::String(k) if known.contains(&k.as_str()) => {}
                Value::String(k) => self.errors.push(FieldError::missing(
                    child(path, k),
                    format!("unknown field, expected one of {}", known.join(", ")),
                )),
                other => self.errors.push(FieldError::new(
                    if path.is_empty() { "document" } else { path },
                    "field names must be text",
                    number::describe(other),
                )),
            }
        }
        Some(m)
    }

    fn required_text(&mut self, m: &Mapping, path: &str, key: &str) -> Option<String> {
        let path = child(path, key);
        match get(m, key) {
            None => {
                self.errors
                    .push(FieldError::missing(path, "required, must be text"));
                None
            }
            Some(v) => number::text(v).map_err(|r| self.refused(&path, r)).ok(),
        }
    }

    fn intent(&mut self, v: &Value) -> Option<Intent> {
        let m = self.mapping(v, "", &INTENT_FIELDS)?;
        let intent_id = self.required_text(m, "", "intentID");
        let targets = match get(m, "targets") {
            None => {
                self.errors.push(FieldError::missing(
                    "targets",
                    "required, must be a list of at least one target",
                ));
                None
            }
            Some(Value::Sequence(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| self.target(t, &format!("targets[{i}]")))
                    .collect::<Vec<_>>(),
            ),
            Some(other) => {
                self.errors.push(FieldError::new(
                    "targets",
                    "must be a list of targets",
                    number::describe(other),
                ));
                None
            }
        };
        Some(Intent {
            intent_id: intent_id?,
            targets: targets?,
        })
    }

    fn target(&mut self, v: &Value, path: &str) -> Option<Target> {
        let m = self.mapping(v, path, &TARGET_FIELDS)?;
        let id = self.required_text(m, path, "id");
        let operation = self.required_text(m, path, "operation");
        let operand = self.required_text(m, path, "operand");
        let constraints = match get(m, "constraints") {
            None => Some(Constraints::default()),
            Some(c) => self.constraints(c, &child(path, "constraints")),
        };
        Some(Target {
            id: id?,
            operation: operation?,
            operand: operand?,
            constraints: constraints?,
        })
    }

    /// Reads the optional field `key` with `read`, reporting a refusal.
    fn opt<T>(
        &mut self,
        m: &Mapping,
        path: &str,
        key: &str,
        read: impl FnOnce(&Value) -> Result<T, Refusal>,
    ) -> Option<T> {
        let v = get(m, key)?;
        read(v).map_err(|r| self.refused(&child(path, key), r)).ok()
    }

    fn float(&mut self, m: &Mapping, path: &str, key: &str, range: Interval) -> Option<f64> {
        self.opt(m, path, key, |v| number::float_in(v, range))
    }

    fn count(&mut self, m: &Mapping, path: &str, key: &str, range: Count) -> Option<u32> {
        self.opt(m, path, key, |v| number::count_in(v, range))
    }

    fn constraints(&mut self, v: &Value, path: &str) -> Option<Constraints> {
        let m = self.mapping(v, path, &CONSTRAINT_FIELDS)?;
        let errors_before = self.errors.len();
        let c = Constraints {
            privacy_level: self.opt(m, path, keys::PRIVACY_LEVEL, |v| {
                choice(v, PrivacyLevel::from_name, "low | medium | high")
            }),
            source_kind: self.opt(m, path, keys::SOURCE_KIND, |v| {
                choice(v, Dataset::from_name, &names::dataset_choices())
            }),
            model_kind: self.opt(m, path, keys::MODEL_KIND, |v| {
                choice(v, ModelName::from_name, &names::model_choices())
            }),
            avg_algo: self.opt(m, path, keys::AVG_ALGO, |v| {
                choice(v, StrategyKind::from_name, &StrategyKind::choices())
            }),
            fraction_fit: self.float(m, path, keys::FRACTION_FIT, rules::FRACTION_FIT),
            min_fit: self.count(m, path, keys::MIN_FIT, rules::CLIENTS),
            min_available: self.count(m, path, keys::MIN_AVAILABLE, rules::CLIENTS),
            num_rounds: self.count(m, path, keys::NUM_ROUNDS, rules::ROUNDS),
            same_server: self.opt(m, path, keys::SAME_SERVER, number::flag),
            strategy_params: StrategyParams {
                proximal_mu: self.float(m, path, "proximal_mu", rules::PROXIMAL_MU),
                server_lr: self.float(m, path, "server_lr", rules::SERVER_LR),
                server_momentum: self.float(m, path, "server_momentum", rules::SERVER_MOMENTUM),
                trim_fraction: self.float(m, path, "trim_fraction", rules::TRIM_FRACTION),
                byzantine_clients: self.count(m, path, "byzantine_clients", rules::BYZANTINE),
                min_completion_rate: self.float(
                    m,
                    path,
                    "min_completion_rate",
                    rules::COMPLETION_RATE,
                ),
            },
            cohort: get(m, "cohort").and_then(|c| self.cohort(c, &child(path, "cohort"))),
            local_epochs: self.count(m, path, "local_epochs", rules::LOCAL_EPOCHS),
            batch_size: self.count(m, path, "batch_size", rules::BATCH_SIZE),
            learning_rate: self.float(m, path, "learning_rate", rules::LEARNING_RATE),
            target_accuracy: self.float(m, path, "target_accuracy", rules::ACCURACY),
            deadline_s: self.float(m, path, "deadline_s", rules::DEADLINE_S),
            max_bandwidth_mbps: self.float(m, path, "max_bandwidth_mbps", rules::BANDWIDTH_MBPS),
            aggregation: self.opt(m, path, "aggregation", |v| {
                choice(v, Aggregation::from_name, "flat | hierarchical | auto")
            }),
            latency: self.opt(m, path, "latency", |v| {
                choice(v, LatencyLevel::from_name, "low | medium | high")
            }),
            dp: self.opt(m, path, "dp", |v| {
                choice(
                    v,
                    crate::privacy::DpKind::from_name,
                    "off | central | local",
                )
            }),
            dp_noise_multiplier: self.float(
                m,
                path,
                "dp_noise_multiplier",
                rules::NOISE_MULTIPLIER,
            ),
            dp_clipping_norm: self.float(m, path, "dp_clipping_norm", rules::CLIPPING_NORM),
            dp_epsilon: self.float(m, path, "dp_epsilon", rules::EPSILON),
            dp_delta: self.float(m, path, "dp_delta", rules::DELTA),
        };
        (self.errors.len() == errors_before).then_some(c)
    }

    fn cohort(&mut self, v: &Value, path: &str) -> Option<Cohort> {
        let m = self.mapping(v, path, &COHORT_FIELDS)?;
        let size = self.count(m, path, "size", rules::CLIENTS);
        let hosts = match get(m, "hosts") {
            None => Vec::new(),
            Some(Value::Sequence(items)) => {
                let hosts_path = child(path, "hosts");
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| {
                        number::text(h)
                            .map_err(|r| self.refused(&format!("{hosts_path}[{i}]"), r))
                            .ok()
                    })
                    .collect()
            }
            Some(other) => {
                self.errors.push(FieldError::new(
                    child(path, "hosts"),
                    "must be a list of host names",
                    number::describe(other),
                ));
                Vec::new()
            }
        };
        Some(Cohort { size, hosts })
    }
}

/// A name from a fixed set, listing the set when the value is not in it.
fn choice<T>(v: &Value, parse: impl Fn(&str) -> Option<T>, choices: &str) -> Result<T, Refusal> {
    let refusal = || Refusal {
        rule: format!("must be one of {choices}"),
        got: number::describe(v),
    };
    match v {
        Value::String(s) => parse(s).ok_or_else(refusal),
        _ => Err(refusal()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column(b""), (1, 1));
        assert_eq!(line_column(b"ab\ncd"), (2, 3));
    }
}
