//! A user catalog overrides or extends the built-in one; bad catalogs say where.

use intent::{Catalog, CatalogError, Dataset, ModelName, StrategyKind};

const USER: &str = "
pipelines:
  - operation: maximise
    operand: robots.welding.accuracy
    pipeline:
      src: { kind: synthetic-images, runs_on: client }
      pp: { kind: normalise, runs_on: client }
      model: { kind: simple, runs_on: client }
      policy: { kind: fl.aggregate, runs_on: aggregator }
      distributor: { kind: model.broadcast, runs_on: aggregator }
      sink: { kind: robot.controller, runs_on: client }
    fl: { strategy: fedprox, rounds: 3 }
  - operation: minimise
    operand: robots.welding.energy
    pipeline:
      src: { kind: synthetic, runs_on: client }
      pp: { kind: none, runs_on: client }
      model: { kind: logreg, runs_on: client }
      policy: { kind: fl.aggregate, runs_on: aggregator }
      distributor: { kind: model.broadcast, runs_on: aggregator }
      sink: { kind: metrics.report, runs_on: aggregator }
";

#[test]
fn user_entries_replace_and_add() {
    let builtin = Catalog::builtin();
    let user = Catalog::from_yaml("user.yaml", USER).unwrap();
    let merged = builtin.clone().merge(user);
    assert_eq!(merged.entries().len(), builtin.entries().len() + 1);
    let welding = merged.find("maximise", "robots.welding.accuracy").unwrap();
    assert_eq!(welding.pipeline.src.kind, Dataset::SyntheticImages);
    assert_eq!(welding.pipeline.model.kind, ModelName::KerasMlp);
    assert_eq!(
        (welding.fl.strategy, welding.fl.rounds),
        (StrategyKind::FedProx, 3)
    );
    // Unset FL fields take the crate's defaults.
    assert_eq!((welding.fl.fracfit, welding.fl.local_epochs), (0.5, 5));
    assert!(merged.find("minimise", "robots.welding.energy").is_some());
    assert_eq!(
        merged.operations(),
        ["aggregate.global", "maximise", "minimise"]
    );
    // Untouched entries stay.
    assert_eq!(
        merged.find("maximise", "robots.cutting.accuracy"),
        builtin.find("maximise", "robots.cutting.accuracy")
    );
}

#[test]
fn a_bad_catalog_says_where() {
    let err = Catalog::from_yaml("user.yaml", &USER.replace("rounds: 3", "rounds: 0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "user.yaml: pipelines[0].fl.rounds: must be a whole number in 1..=10000, got 0"
    );
    let err =
        Catalog::from_yaml("user.yaml", &USER.replace("kind: logreg", "kind: resnet")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "user.yaml:18:14: pipelines[1].pipeline.model: unknown model \"resnet\", \
         expected one of logreg | mlp | keras-mlp | cnn | cnn-cifar (aliases: simple, complex, mobilenet)"
    );
    let twice = format!(
        "{USER}{}",
        &USER[USER.find("  - operation: minimise").unwrap()..]
    );
    let err = Catalog::from_yaml("user.yaml", &twice).unwrap_err();
    assert_eq!(
        err.to_string(),
        "user.yaml: pipelines[2].operand: must be unique for its operation, pipelines[1] has it too, got \"robots.welding.energy\""
    );
    let err = Catalog::load(std::path::Path::new("/nonexistent/catalog.yaml")).unwrap_err();
    assert!(matches!(err, CatalogError::Io { .. }));
}
