//! The prototype's three intents validate and resolve to its mapping.

use intent::{Catalog, Dataset, ModelName, Placement, Plan, StrategyKind};

const SEEDS: [(&str, &str); 3] = [
    ("intent.yaml", include_str!("data/intent.yaml")),
    ("2intent.yaml", include_str!("data/2intent.yaml")),
    ("3intent.yaml", include_str!("data/3intent.yaml")),
];

#[test]
fn seed_intents_resolve_to_the_prototype_mapping() {
    let catalog = Catalog::builtin();
    let expected = [
        (
            "edgeintent01",
            "robots.welding.accuracy",
            Dataset::Mnist,
            ModelName::Mlp,
        ),
        (
            "edgeintent02",
            "robots.drilling.accuracy",
            Dataset::FashionMnist,
            ModelName::Mlp,
        ),
        (
            "edgeintent03",
            "robots.cutting.accuracy",
            Dataset::Cifar10,
            ModelName::CnnCifar,
        ),
    ];
    for ((file, text), (id, operand, dataset, model)) in SEEDS.into_iter().zip(expected) {
        let intent = intent::parse(file, text.as_bytes()).unwrap();
        assert_eq!(intent.intent_id, id);
        let resolved = catalog.resolve(&intent).unwrap();
        let target = &resolved.targets[0];
        assert_eq!(
            (target.id.as_str(), target.operation.as_str()),
            ("factory.all", "maximise")
        );
        assert_eq!(target.operand, operand);
        let p = &target.pipeline;
        assert_eq!(p.src.kind, dataset, "{file}");
        assert_eq!(p.model.kind, model, "{file}");
        assert_eq!(p.sink.kind, "robot.controller");
        assert_eq!(p.src.runs_on, Placement::Client);
        assert_eq!(p.policy.runs_on, Placement::Aggregator);
        let Plan::Federated(fl) = &target.plan else {
            panic!("{file}: privacylevel high must plan federated learning");
        };
        assert_eq!(fl.strategy.kind(), StrategyKind::FedAvg);
        assert_eq!(
            (fl.rounds, fl.fraction_fit, fl.min_fit, fl.min_available),
            (20, 0.5, 1, 1)
        );
        assert_eq!((fl.local_epochs, fl.batch_size), (5, 32));
    }
}

#[test]
fn prototype_aliases_name_the_same_pipeline_nodes() {
    let text = "intentID: a\ntargets:\n  - id: t\n    operation: maximise\n    \
                operand: robots.welding.accuracy\n    constraints:\n      \
                privacylevel: high\n      sourcekind: cifar\n      modelkind: mobilenet\n";
    let intent = intent::parse("alias.yaml", text.as_bytes()).unwrap();
    let resolved = Catalog::builtin().resolve(&intent).unwrap();
    let p = &resolved.targets[0].pipeline;
    assert_eq!(
        (p.src.kind, p.model.kind),
        (Dataset::Cifar10, ModelName::CnnCifar)
    );
    assert_eq!(intent::resolve_source_alias("handmnist"), "mnist");
    assert_eq!(intent::resolve_model_alias("simple"), "keras-mlp");
}

#[test]
fn json_intents_and_string_numbers_are_accepted() {
    let text = r#"{"intentID": "j1", "targets": [{"id": "t", "operation": "maximise",
        "operand": "synthetic.logreg.accuracy",
        "constraints": {"privacylevel": "High", "fracfit": "0.25", "minfit": "2",
                        "minav": 3, "numround": "5", "sameserv": "true", "avgalgo": "fedprox",
                        "proximal_mu": "0.1", "cohort": {"size": 3}, "deadline_s": 600}}]}"#;
    let intent = intent::parse("request", text.as_bytes()).unwrap();
    let fl = Catalog::builtin().resolve(&intent).unwrap().targets[0]
        .plan
        .federated()
        .cloned()
        .unwrap();
    assert_eq!(fl.fraction_fit, 0.25);
    assert_eq!((fl.min_fit, fl.min_available, fl.rounds), (2, 3, 5));
    assert!(fl.same_server);
    assert_eq!(fl.strategy, intent::Strategy::FedProx { proximal_mu: 0.1 });
    assert_eq!(fl.deadline_s, Some(600.0));
}

#[test]
fn low_privacy_plans_centralised_training_which_is_unsupported() {
    let text = SEEDS[0]
        .1
        .replace("privacylevel: high", "privacylevel: low");
    let intent = intent::parse("low.yaml", text.as_bytes()).unwrap();
    let resolved = Catalog::builtin().resolve(&intent).unwrap();
    let target = &resolved.targets[0];
    assert_eq!(
        target.plan,
        Plan::CentralisedUnsupported {
            privacy_level: intent::PrivacyLevel::Low
        }
    );
    assert!(target.to_aggregate_intent("x").is_none());
}

#[test]
fn normalised_json_parses_back_to_the_same_intent() {
    let text = "intentID: n1\ntargets:\n  - id: t\n    operation: maximise\n    \
                operand: synthetic.images.cnn.accuracy\n    constraints:\n      \
                privacylevel: high\n      sourcekind: handmnist\n      fracfit: '0.5'\n      \
                avgalgo: krum\n      byzantine_clients: 1\n      cohort: {hosts: [fc.11, fc.12, fc.13]}\n      \
                max_bandwidth_mbps: 100\n";
    let intent = intent::parse("n.yaml", text.as_bytes()).unwrap();
    let json = serde_json::to_string(&intent).unwrap();
    assert!(json.contains(r#""sourcekind":"mnist""#), "{json}");
    assert!(json.contains(r#""avgalgo":"Krum""#), "{json}");
    assert_eq!(intent::parse("n.json", json.as_bytes()).unwrap(), intent);
}
