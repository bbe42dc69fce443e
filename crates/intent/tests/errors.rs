//! Every invalid case, with the exact message a person sees.

use intent::{Catalog, IntentError};

/// The prototype's welding intent with `constraints` replaced by `extra` lines.
fn with_constraints(extra: &str) -> String {
    let mut text = String::from(
        "intentID: edgeintent01\ntargets:\n    - id: factory.all\n      operation: maximise\n      \
         operand: robots.welding.accuracy\n      constraints:\n        privacylevel: high\n",
    );
    for line in extra.lines() {
        text.push_str("        ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The messages of parsing then resolving `text` as `file`, one per line.
fn errors(file: &str, text: &str) -> String {
    let result = intent::parse(file, text.as_bytes()).and_then(|intent| {
        Catalog::builtin()
            .resolve(&intent)
            .map_err(|e| IntentError::from_fields(file, e))
    });
    match result {
        Ok(_) => panic!("{file} should be invalid:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn constraint_error(extra: &str) -> String {
    errors("intent.yaml", &with_constraints(extra))
}

#[test]
fn fraction_out_of_range() {
    assert_eq!(
        constraint_error("fracfit: 1.5"),
        "intent.yaml: targets[0].constraints.fracfit: must be in (0, 1], got 1.5"
    );
    assert_eq!(
        constraint_error("fracfit: \"0\""),
        "intent.yaml: targets[0].constraints.fracfit: must be in (0, 1], got 0"
    );
    assert_eq!(
        constraint_error("trim_fraction: 0.5\navgalgo: FedTrimmedAvg"),
        "intent.yaml: targets[0].constraints.trim_fraction: must be in [0, 0.5), got 0.5"
    );
}

#[test]
fn minfit_above_minav() {
    assert_eq!(
        constraint_error("minfit: 5\nminav: \"2\""),
        "intent.yaml: targets[0].constraints.minfit: must be <= minav (2), got 5"
    );
    // minav from the catalog (1).
    assert_eq!(
        constraint_error("minfit: 3"),
        "intent.yaml: targets[0].constraints.minfit: must be <= minav (1, the catalog's default), got 3"
    );
}

#[test]
fn zero_or_absurd_round_counts() {
    assert_eq!(
        constraint_error("numround: 0"),
        "intent.yaml: targets[0].constraints.numround: must be a whole number in 1..=10000, got 0"
    );
    assert_eq!(
        constraint_error("numround: \"1000000\""),
        "intent.yaml: targets[0].constraints.numround: must be a whole number in 1..=10000, got 1000000"
    );
    assert_eq!(
        constraint_error("numround: 2.5"),
        "intent.yaml: targets[0].constraints.numround: must be a whole number in 1..=10000, got 2.5"
    );
}

#[test]
fn unknown_privacy_level() {
    let text = with_constraints("").replace("privacylevel: high", "privacylevel: secret");
    assert_eq!(
        errors("intent.yaml", &text),
        "intent.yaml: targets[0].constraints.privacylevel: must be one of low | medium | high, got \"secret\""
    );
    let text = with_constraints("").replace("privacylevel: high", "fracfit: 0.5");
    assert_eq!(
        errors("intent.yaml", &text),
        "intent.yaml: targets[0].constraints.privacylevel: required, must be one of low | medium | high"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        constraint_error("fracfit: half"),
        "intent.yaml: targets[0].constraints.fracfit: must be a number in (0, 1], got \"half\""
    );
    assert_eq!(
        constraint_error("sameserv: [1]"),
        "intent.yaml: targets[0].constraints.sameserv: must be true or false (or yes or no), got a list"
    );
    assert_eq!(
        errors("intent.yaml", "intentID: x\ntargets: factory.all\n"),
        "intent.yaml: targets: must be a list of targets, got \"factory.all\""
    );
    assert_eq!(
        errors("intent.yaml", "- intentID: x\n"),
        "intent.yaml: document: must be a mapping with fields intentID, targets, got a list"
    );
    assert_eq!(
        errors("intent.json", r#"{"intentID": {"a": 1}, "targets": []}"#),
        "intent.json: intentID: must be text, got a mapping"
    );
}

#[test]
fn empty_or_missing_targets() {
    assert_eq!(
        errors("intent.yaml", "intentID: x\ntargets: []\n"),
        "intent.yaml: targets: must list at least one target, got []"
    );
    assert_eq!(
        errors("intent.yaml", "intentID: x\n"),
        "intent.yaml: targets: required, must be a list of at least one target"
    );
    assert_eq!(
        errors("intent.yaml", ""),
        "intent.yaml: document: must be a mapping with fields intentID, targets, got null"
    );
}

#[test]
fn duplicate_target_ids() {
    let text = "intentID: x\ntargets:\n  - id: factory.all\n    operation: maximise\n    \
                operand: robots.welding.accuracy\n    constraints: {privacylevel: high}\n  \
                - id: factory.all\n    operation: maximise\n    \
                operand: robots.cutting.accuracy\n    constraints: {privacylevel: high}\n";
    assert_eq!(
        errors("intent.yaml", text),
        "intent.yaml: targets[1].id: must be unique, targets[0] has it too, got \"factory.all\""
    );
}

#[test]
fn unknown_operation_or_operand_lists_the_catalog() {
    let text = with_constraints("").replace("operation: maximise", "operation: minimise");
    assert_eq!(
        errors("intent.yaml", &text),
        "intent.yaml: targets[0].operation: must be one of aggregate.global | maximise, got \"minimise\""
    );
    let text = with_constraints("").replace("robots.welding.accuracy", "robots.painting.accuracy");
    assert_eq!(
        errors("intent.yaml", &text),
        "intent.yaml: targets[0].operand: must be one of robots.cutting.accuracy | \
         robots.drilling.accuracy | robots.welding.accuracy | robots.welding.synthetic.accuracy | \
         synthetic.images.cnn.accuracy | synthetic.images.mlp.accuracy | synthetic.logreg.accuracy \
         for operation maximise, got \"robots.painting.accuracy\""
    );
}

#[test]
fn unknown_names_list_the_known_ones() {
    assert_eq!(
        constraint_error("sourcekind: imagenet"),
        "intent.yaml: targets[0].constraints.sourcekind: must be one of mnist | fashion-mnist | \
         kmnist | cifar10 | synthetic | synthetic-images | synthetic-hard | synthetic-cifar (aliases: handmnist, fashionmnist, cifar), got \"imagenet\""
    );
    assert_eq!(
        constraint_error("modelkind: resnet"),
        "intent.yaml: targets[0].constraints.modelkind: must be one of logreg | mlp | keras-mlp | \
         cnn | cnn-cifar (aliases: simple, complex, mobilenet), got \"resnet\""
    );
    assert_eq!(
        constraint_error("avgalgo: FedSGD"),
        "intent.yaml: targets[0].constraints.avgalgo: must be one of FedAvg | FedProx | FedAvgM | \
         FedAdam | FedYogi | FedAdagrad | FedMedian | FedTrimmedAvg | Krum | Bulyan | \
         FaultTolerantFedAvg, got \"FedSGD\""
    );
}

#[test]
fn unknown_fields_are_named() {
    assert_eq!(
        errors("intent.yaml", "intentID: x\ntarget: []\n"),
        "intent.yaml: target: unknown field, expected one of intentID, targets\n\
         intent.yaml: targets: required, must be a list of at least one target"
    );
}

#[test]
fn strategy_parameters_must_fit_the_strategy() {
    assert_eq!(
        constraint_error("proximal_mu: 0.1"),
        "intent.yaml: targets[0].constraints.proximal_mu: does not apply to avgalgo FedAvg (the catalog's default)"
    );
    assert_eq!(
        constraint_error("avgalgo: Krum\nserver_lr: 0.5"),
        "intent.yaml: targets[0].constraints.server_lr: does not apply to avgalgo Krum"
    );
}

#[test]
fn cohort_rules() {
    assert_eq!(
        constraint_error("cohort: {size: 2, hosts: [fc.11]}"),
        "intent.yaml: targets[0].constraints.cohort.size: must equal the number of hosts (1), got 2"
    );
    assert_eq!(
        constraint_error("cohort: {hosts: [fc.11, fc.11]}"),
        "intent.yaml: targets[0].constraints.cohort.hosts[1]: must be unique, hosts[0] has it too, got \"fc.11\""
    );
    assert_eq!(
        constraint_error("cohort: {}"),
        "intent.yaml: targets[0].constraints.cohort: must give size or hosts (or both)"
    );
    assert_eq!(
        constraint_error("cohort: {size: 2}\nminav: 3"),
        "intent.yaml: targets[0].constraints.minav: must be <= the cohort's 2 clients, got 3"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    assert_eq!(
        constraint_error("fracfit: 2\nnumround: 0"),
        "intent.yaml: targets[0].constraints.fracfit: must be in (0, 1], got 2\n\
         intent.yaml: targets[0].constraints.numround: must be a whole number in 1..=10000, got 0"
    );
}

#[test]
fn syntax_errors_give_file_line_and_column() {
    assert_eq!(
        errors("intent.yaml", "intentID: x\ntargets:\n  - id: [a\n"),
        "intent.yaml:4:1: syntax error: did not find expected ',' or ']', \
         while parsing a flow sequence at line 3 column 9"
    );
    assert_eq!(
        errors("intent.json", "{\"intentID\": \"x\",\n \"targets\": [}\n"),
        "intent.json:2:14: syntax error: expected value"
    );
    assert_eq!(
        errors("intent.yaml", "intentID: x\nintentID: y\n"),
        "intent.yaml:1:1: syntax error: duplicate entry with key \"intentID\""
    );
    assert_eq!(
        errors("intent.yaml", "intentID: x\n\u{0}"),
        "intent.yaml:2:1: syntax error: control characters are not allowed"
    );
    let mut bytes = b"intentID: x\n  ta".to_vec();
    bytes.push(0xff);
    let err = intent::parse("intent.yaml", &bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "intent.yaml:2:5: syntax error: not UTF-8 text"
    );
}

#[test]
fn oversized_documents_are_refused() {
    let text = format!("intentID: x\n#{}\n", "x".repeat(intent::MAX_DOCUMENT_BYTES));
    assert_eq!(
        errors("big.yaml", &text),
        "big.yaml: document is 1048590 bytes, the limit is 1048576 bytes"
    );
}

#[test]
fn aggregate_intents_need_their_kinds() {
    let text = "intentID: x\ntargets:\n  - id: t\n    operation: aggregate.global\n    \
                operand: model.local\n    constraints: {privacylevel: medium}\n";
    assert_eq!(
        errors("agg.yaml", text),
        "agg.yaml: targets[0].operand: must be model.federated for operation aggregate.global, got \"model.local\"\n\
         agg.yaml: targets[0].constraints.privacylevel: must be high (federated), low (centralised) or absent for operation aggregate.global, got medium\n\
         agg.yaml: targets[0].constraints.sourcekind: required for operation aggregate.global\n\
         agg.yaml: targets[0].constraints.modelkind: required for operation aggregate.global"
    );
}

#[test]
fn unreadable_files_say_why() {
    let err = intent::load(std::path::Path::new("/nonexistent/intent.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/intent.yaml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn aggregation_names_its_options_and_needs_federated_learning() {
    assert_eq!(
        constraint_error("aggregation: tree"),
        "intent.yaml: targets[0].constraints.aggregation: must be one of flat | hierarchical | auto, got \"tree\""
    );
    assert_eq!(
        constraint_error("latency: 5"),
        "intent.yaml: targets[0].constraints.latency: must be one of low | medium | high, got 5"
    );
    let centralised = with_constraints("aggregation: hierarchical").replace("high", "low");
    assert_eq!(
        errors("intent.yaml", &centralised),
        "intent.yaml: targets[0].constraints.aggregation: must be flat with privacylevel low: a \
         centralised plan sends the data, not updates, so nothing is aggregated on the way, got hierarchical"
    );
}

#[test]
fn latency_low_means_hierarchical_unless_the_intent_says_otherwise() {
    let plan = |extra: &str| {
        let intent = intent::parse("i.yaml", with_constraints(extra).as_bytes()).unwrap();
        let resolved = Catalog::builtin().resolve(&intent).unwrap();
        resolved.targets[0].plan.settings().aggregation
    };
    assert_eq!(plan(""), intent::Aggregation::Auto, "the MLFO chooses");
    assert_eq!(plan("latency: low"), intent::Aggregation::Hierarchical);
    assert_eq!(
        plan("latency: low\naggregation: flat"),
        intent::Aggregation::Flat
    );
    assert_eq!(
        plan("aggregation: Hierarchical"),
        intent::Aggregation::Hierarchical
    );
}
