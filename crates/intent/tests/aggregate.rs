//! The edge MLFO's federated-aggregation intent: produced from a resolved
//! high-privacy intent, and valid input that resolves to the same plan.

use intent::{AGGREGATE_OPERAND, AGGREGATE_OPERATION, Catalog, Dataset, ModelName, Plan};

#[test]
fn aggregate_intent_carries_the_plan_and_resolves_to_it() {
    let text = "intentID: edgeintent01\ntargets:\n  - id: factory.all\n    operation: maximise\n    \
                operand: robots.welding.accuracy\n    constraints:\n      privacylevel: high\n      \
                avgalgo: FedAvgM\n      server_lr: 0.5\n      numround: 7\n      cohort: {size: 10}\n      \
                local_epochs: 2\n      target_accuracy: 0.9\n";
    let catalog = Catalog::builtin();
    let edge = catalog
        .resolve(&intent::parse("intent.yaml", text.as_bytes()).unwrap())
        .unwrap();
    let target = &edge.targets[0];
    let aggregate = target.to_aggregate_intent("edgeintent01");
    let t = &aggregate.targets[0];
    assert_eq!(
        (t.operation.as_str(), t.operand.as_str()),
        (AGGREGATE_OPERATION, AGGREGATE_OPERAND)
    );
    assert_eq!(t.constraints.source_kind, Some(Dataset::Mnist));
    assert_eq!(t.constraints.model_kind, Some(ModelName::Mlp));
    assert_eq!(t.constraints.num_rounds, Some(7));

    // Over the wire as YAML, then parsed and resolved by the cloud MLFO.
    let wire = yaml_serde::to_string(&aggregate).unwrap();
    let cloud_intent = intent::parse("momo", wire.as_bytes()).unwrap();
    assert_eq!(cloud_intent, aggregate);
    let cloud = catalog.resolve(&cloud_intent).unwrap();
    assert_eq!(cloud.targets[0].plan, target.plan);
    assert_eq!(cloud.targets[0].pipeline, target.pipeline);
}

#[test]
fn prototype_aggregate_intent_with_string_numbers_and_aliases_is_valid() {
    let text = "intentID: edgeintent01\ntargets:\n  - id: factory.all\n    operation: aggregate.global\n    \
                operand: model.federated\n    constraints:\n      sourcekind: handmnist\n      \
                modelkind: complex\n      avgalgo: FedAvg\n      fracfit: \"0.5\"\n      minfit: \"1\"\n      \
                minav: \"1\"\n      numround: \"20\"\n      sameserv: \"false\"\n";
    let intent = intent::parse("momo.yaml", text.as_bytes()).unwrap();
    let resolved = Catalog::builtin().resolve(&intent).unwrap();
    let target = &resolved.targets[0];
    assert_eq!(target.pipeline.src.kind, Dataset::Mnist);
    let Plan::Federated(fl) = &target.plan else {
        panic!("aggregate.global without privacylevel is federated");
    };
    assert_eq!(
        (fl.rounds, fl.fraction_fit, fl.min_fit, fl.min_available),
        (20, 0.5, 1, 1)
    );
    assert!(!fl.same_server);
}
