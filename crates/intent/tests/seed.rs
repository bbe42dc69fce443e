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
        .settings()
        .clone();
    assert_eq!(fl.fraction_fit, 0.25);
    assert_eq!((fl.min_fit, fl.min_available, fl.rounds), (2, 3, 5));
    assert!(fl.same_server);
    assert_eq!(fl.strategy, intent::Strategy::FedProx { proximal_mu: 0.1 });
    assert_eq!(fl.deadline_s, Some(600.0));
}

#[test]
fn low_privacy_plans_centralised_training_with_the_same_settings() {
    let high = intent::parse("high.yaml", SEEDS[0].1.as_bytes()).unwrap();
    let text = SEEDS[0]
        .1
        .replace("privacylevel: high", "privacylevel: low");
    let low = intent::parse("low.yaml", text.as_bytes()).unwrap();
    let federated = Catalog::builtin().resolve(&high).unwrap().targets.remove(0);
    let target = Catalog::builtin().resolve(&low).unwrap().targets.remove(0);
    assert_eq!(target.plan.mode(), intent::TrainingMode::Centralised);
    let Plan::Centralised(settings) = &target.plan else {
        panic!("{:?}", target.plan)
    };
    // Nothing is aggregated on the way when the data is sent.
    let flat = intent::FlPlan {
        aggregation: intent::Aggregation::Flat,
        ..federated.plan.settings().clone()
    };
    assert_eq!(settings, &flat);
    // The Mo-Mo intent says low, and resolves back to the same plan.
    let aggregate = target.to_aggregate_intent("x");
    assert_eq!(
        aggregate.targets[0].constraints.privacy_level,
        Some(intent::PrivacyLevel::Low)
    );
    let back = Catalog::builtin().resolve(&aggregate).unwrap();
    assert_eq!(back.targets[0].plan, target.plan);
}

/// The first seed intent with `privacylevel: LEVEL` and `extra` constraints.
fn seed_with(level: &str, extra: &str) -> String {
    let mut text = SEEDS[0]
        .1
        .replace("privacylevel: high", &format!("privacylevel: {level}"));
    for (k, v) in extra.split(',').filter_map(|kv| kv.split_once('=')) {
        text = text.replace(
            &format!("privacylevel: {level}"),
            &format!("privacylevel: {level}\n        {}: {}", k.trim(), v.trim()),
        );
    }
    text
}

fn resolve(text: &str) -> Result<intent::Resolved, String> {
    let parsed = intent::parse("dp.yaml", text.as_bytes()).map_err(|e| e.to_string())?;
    Catalog::builtin()
        .resolve(&parsed)
        .map_err(|e| intent::IntentError::from_fields("dp.yaml", e).to_string())
}

#[test]
fn medium_privacy_is_federated_learning_with_central_dp_and_its_aggregate_intent_keeps_it() {
    use intent::privacy::DifferentialPrivacy;
    let resolved = resolve(&seed_with("medium", "")).unwrap();
    let target = &resolved.targets[0];
    assert_eq!(target.plan.mode(), intent::TrainingMode::Federated);
    assert_eq!(
        target.plan.settings().privacy,
        Some(DifferentialPrivacy::Central {
            noise_multiplier: 0.1,
            clipping_norm: None
        })
    );
    let local = resolve(&seed_with(
        "high",
        "dp=local, dp_epsilon=4, dp_delta=0.0001, dp_clipping_norm=2",
    ))
    .unwrap();
    let plan = local.targets[0].plan.clone();
    assert_eq!(
        plan.settings().privacy,
        Some(DifferentialPrivacy::Local {
            clipping_norm: 2.0,
            epsilon: 4.0,
            delta: 1e-4
        })
    );
    // Over Mo-Mo to the cloud and resolved there: the same DP.
    let aggregate = local.targets[0].to_aggregate_intent("edgeintent01");
    let wire = yaml_serde::to_string(&aggregate).unwrap();
    let back = Catalog::builtin()
        .resolve(&intent::parse("momo", wire.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(back.targets[0].plan, plan);
    let fixed = resolve(&seed_with(
        "medium",
        "dp_noise_multiplier=0.5, dp_clipping_norm=3",
    ))
    .unwrap();
    assert_eq!(
        fixed.targets[0].plan.settings().privacy,
        Some(DifferentialPrivacy::Central {
            noise_multiplier: 0.5,
            clipping_norm: Some(3.0)
        })
    );
    assert_eq!(
        resolve(&seed_with("high", "")).unwrap().targets[0]
            .plan
            .settings()
            .privacy,
        None
    );
}

#[test]
fn dp_that_does_not_fit_the_plan_is_refused_naming_the_field() {
    let cases = [
        (
            "low",
            "dp=central",
            "constraints.dp: must be off with privacylevel low",
        ),
        (
            "medium",
            "dp=off",
            "constraints.dp: must be central or local with privacylevel medium",
        ),
        (
            "high",
            "dp_epsilon=1",
            "constraints.dp_epsilon: applies only with dp: central or local",
        ),
        (
            "medium",
            "dp_epsilon=1",
            "constraints.dp_epsilon: does not apply to dp: central",
        ),
        (
            "high",
            "dp=local, dp_noise_multiplier=1",
            "constraints.dp_noise_multiplier: does not apply to dp: local",
        ),
        (
            "high",
            "dp=secret",
            "constraints.dp: must be one of off | central | local",
        ),
        (
            "high",
            "dp=local, dp_delta=1",
            "constraints.dp_delta: must be",
        ),
        (
            "medium",
            "dp_clipping_norm=0",
            "constraints.dp_clipping_norm: must be",
        ),
        (
            "medium",
            "dp_noise_multiplier=-1",
            "constraints.dp_noise_multiplier: must be",
        ),
    ];
    for (level, extra, expected) in cases {
        let message = resolve(&seed_with(level, extra)).unwrap_err();
        assert!(message.contains(expected), "{level} {extra}: {message}");
    }
}

#[test]
fn passes_are_the_work_of_federated_training_over_the_data() {
    let intent = intent::parse("high.yaml", SEEDS[0].1.as_bytes()).unwrap();
    let target = Catalog::builtin()
        .resolve(&intent)
        .unwrap()
        .targets
        .remove(0);
    let mut plan = target.plan.settings().clone();
    (plan.rounds, plan.local_epochs, plan.fraction_fit) = (20, 1, 0.5);
    assert_eq!(plan.passes(), 10);
    (plan.rounds, plan.local_epochs, plan.fraction_fit) = (3, 2, 1.0);
    assert_eq!(plan.passes(), 6);
    (plan.rounds, plan.local_epochs, plan.fraction_fit) = (1, 1, 0.1);
    assert_eq!(plan.passes(), 1);
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
