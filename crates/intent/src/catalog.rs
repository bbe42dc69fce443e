//! The pipeline catalog: (operation, operand) -> Y.3172 pipeline with FL defaults.
//! A built-in catalog is embedded; a user catalog file overrides or extends it.

use crate::error::{CatalogError, FieldError, strip_location};
use crate::model::AGGREGATE_OPERATION;
use crate::names::{Dataset, ModelName};
use crate::rules::{self, MAX_DOCUMENT_BYTES};
use crate::strategy::StrategyKind;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The built-in catalog's YAML text.
const BUILTIN_YAML: &str = include_str!("../catalog/default.yaml");

/// A set of pipelines, at most one per (operation, operand).
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

/// The catalog file's shape: `pipelines: [...]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    pipelines: Vec<CatalogEntry>,
}

/// One catalog entry: the pipeline an (operation, operand) maps to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The intent operation, e.g. `maximise`.
    pub operation: String,
    /// The intent operand, e.g. `robots.welding.accuracy`.
    pub operand: String,
    /// The Y.3172 pipeline.
    pub pipeline: Pipeline,
    /// FL settings used where the intent gives none.
    #[serde(default)]
    pub fl: FlDefaults,
}

/// A Y.3172 ML pipeline: SRC -> PP -> M -> P -> D -> SINK, each placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// SRC: the dataset each client trains on.
    pub src: Stage<Dataset>,
    /// PP: preprocessing, e.g. `normalise` or `none`.
    pub pp: Stage<String>,
    /// M: the model trained.
    pub model: Stage<ModelName>,
    /// P: the policy applied to model updates, e.g. `fl.aggregate`.
    pub policy: Stage<String>,
    /// D: how the global model is distributed, e.g. `model.broadcast`.
    pub distributor: Stage<String>,
    /// SINK: what acts on the result, e.g. `robot.controller`.
    pub sink: Stage<String>,
}

/// One pipeline node: what it is and where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage<K> {
    /// The node's kind (a dataset, a model, or a free-form name).
    pub kind: K,
    /// Where the node runs.
    pub runs_on: Placement,
}

/// Where a pipeline node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// On every FL client host of the cohort.
    Client,
    /// On the FL server (aggregator) host.
    Aggregator,
}

/// Default FL settings of a catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlDefaults {
    /// Aggregation strategy.
    pub strategy: StrategyKind,
    /// Number of rounds.
    pub rounds: u32,
    /// Fraction of available clients sampled per round.
    pub fracfit: f64,
    /// Fewest clients trained per round.
    pub minfit: u32,
    /// Fewest clients connected before a round starts.
    pub minav: u32,
    /// Local epochs per round.
    pub local_epochs: u32,
    /// Local mini-batch size.
    pub batch_size: u32,
    /// Client learning rate.
    pub learning_rate: f64,
}

impl Default for FlDefaults {
    /// The prototype's experiment settings: FedAvg, 20 rounds, fracfit 0.5,
    /// minfit 1, minav 1, 5 local epochs; batch 32 and learning rate 0.01.
    fn default() -> Self {
        Self {
            strategy: StrategyKind::FedAvg,
            rounds: 20,
            fracfit: 0.5,
            minfit: 1,
            minav: 1,
            local_epochs: 5,
            batch_size: 32,
            learning_rate: 0.01,
        }
    }
}

impl Pipeline {
    /// A federated pipeline for an `aggregate.global` intent whose data and
    /// model match no catalog entry: normalise, aggregate, broadcast, and the
    /// federated model itself as the sink.
    pub(crate) fn federated(dataset: Dataset, model: ModelName) -> Pipeline {
        let client = |kind: &str| Stage {
            kind: kind.to_owned(),
            runs_on: Placement::Client,
        };
        let aggregator = |kind: &str| Stage {
            kind: kind.to_owned(),
            runs_on: Placement::Aggregator,
        };
        Pipeline {
            src: Stage {
                kind: dataset,
                runs_on: Placement::Client,
            },
            pp: client("normalise"),
            model: Stage {
                kind: model,
                runs_on: Placement::Client,
            },
            policy: aggregator("fl.aggregate"),
            distributor: aggregator("model.broadcast"),
            sink: aggregator("model.federated"),
        }
    }
}

impl Catalog {
    /// The built-in catalog (`crates/intent/catalog/default.yaml`): the
    /// prototype's three mappings plus entries on synthetic data.
    pub fn builtin() -> Catalog {
        // The embedded file is part of the crate and a test parses it.
        Catalog::from_yaml("built-in catalog", BUILTIN_YAML).expect("the built-in catalog is valid")
    }

    /// Parses a catalog from YAML text; `file` names it in errors.
    pub fn from_yaml(file: &str, text: &str) -> Result<Catalog, CatalogError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(CatalogError::Io {
                file: file.to_owned(),
                message: format!(
                    "file is {} bytes, the limit is {MAX_DOCUMENT_BYTES} bytes",
                    text.len()
                ),
            });
        }
        let parsed: CatalogFile = yaml_serde::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            CatalogError::Parse {
                file: file.to_owned(),
                line: (line > 0).then_some(line),
                column: (line > 0).then_some(column),
                message: strip_location(&e.to_string(), line, column),
            }
        })?;
        let field = |error| CatalogError::Field {
            file: file.to_owned(),
            error,
        };
        for (i, entry) in parsed.pipelines.iter().enumerate() {
            check_entry(entry, &format!("pipelines[{i}]")).map_err(field)?;
            let first = parsed.pipelines[..i]
                .iter()
                .position(|e| e.operation == entry.operation && e.operand == entry.operand);
            if let Some(first) = first {
                return Err(field(FieldError::new(
                    format!("pipelines[{i}].operand"),
                    format!("must be unique for its operation, pipelines[{first}] has it too"),
                    format!("{:?}", entry.operand),
                )));
            }
        }
        Ok(Catalog {
            entries: parsed.pipelines,
        })
    }

    /// Reads a catalog file (YAML).
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Catalog::from_yaml(&file, &text)
    }

    /// This catalog overridden by `user`: entries with the same (operation,
    /// operand) are replaced, new ones are added after the existing ones.
    pub fn merge(mut self, user: Catalog) -> Catalog {
        for entry in user.entries {
            match self
                .entries
                .iter_mut()
                .find(|e| e.operation == entry.operation && e.operand == entry.operand)
            {
                Some(existing) => *existing = entry,
                None => self.entries.push(entry),
            }
        }
        self
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entry for (operation, operand), if any.
    pub fn find(&self, operation: &str, operand: &str) -> Option<&CatalogEntry> {
        self.entries
            .iter()
            .find(|e| e.operation == operation && e.operand == operand)
    }

    /// The known operations, sorted, including `aggregate.global`.
    pub fn operations(&self) -> Vec<&str> {
        let mut ops: Vec<&str> = self.entries.iter().map(|e| e.operation.as_str()).collect();
        ops.push(AGGREGATE_OPERATION);
        ops.sort_unstable();
        ops.dedup();
        ops
    }

    /// The known operands of `operation`, sorted.
    pub fn operands(&self, operation: &str) -> Vec<&str> {
        let mut operands: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.operation == operation)
            .map(|e| e.operand.as_str())
            .collect();
        operands.sort_unstable();
        operands
    }
}

/// The rules one entry must follow (the same ranges as intents).
fn check_entry(entry: &CatalogEntry, path: &str) -> Result<(), FieldError> {
    if entry.operation == AGGREGATE_OPERATION {
        return Err(FieldError::new(
            format!("{path}.operation"),
            "is reserved for federated-aggregation intents",
            format!("{:?}", entry.operation),
        ));
    }
    for (name, value) in [("operation", &entry.operation), ("operand", &entry.operand)] {
        if value.trim().is_empty() {
            return Err(FieldError::new(
                format!("{path}.{name}"),
                "must not be empty",
                format!("{value:?}"),
            ));
        }
    }
    let fl = &entry.fl;
    let path = format!("{path}.fl");
    let floats = [
        ("fracfit", fl.fracfit, rules::FRACTION_FIT),
        ("learning_rate", fl.learning_rate, rules::LEARNING_RATE),
    ];
    for (name, value, range) in floats {
        if !range.contains(value) {
            return Err(FieldError::new(
                format!("{path}.{name}"),
                format!("must be in {range}"),
                value.to_string(),
            ));
        }
    }
    let counts = [
        ("rounds", fl.rounds, rules::ROUNDS),
        ("minfit", fl.minfit, rules::CLIENTS),
        ("minav", fl.minav, rules::CLIENTS),
        ("local_epochs", fl.local_epochs, rules::LOCAL_EPOCHS),
        ("batch_size", fl.batch_size, rules::BATCH_SIZE),
    ];
    for (name, value, range) in counts {
        if value < range.min || value > range.max {
            return Err(FieldError::new(
                format!("{path}.{name}"),
                format!("must be a whole number in {range}"),
                value.to_string(),
            ));
        }
    }
    if fl.minfit > fl.minav {
        return Err(FieldError::new(
            format!("{path}.minfit"),
            format!("must be <= minav ({})", fl.minav),
            fl.minfit.to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses() {
        let catalog = Catalog::builtin();
        assert!(catalog.entries().len() >= 6);
        assert_eq!(catalog.operations(), ["aggregate.global", "maximise"]);
    }
}
