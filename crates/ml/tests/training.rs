//! A client's trainer, built as an FL client builds it, really learns:
//! on synthetic data and on Fashion-MNIST (the Debian package CI installs).

use std::path::Path;

use fl::{Config, Scalar, Trainer};
use ml::datasets::{DatasetName, registry};
use ml::partition::{Partition, Scheme};
use ml::{CentralEvaluator, ClientSpec, ModelName, build_trainer};

fn config(pairs: &[(&str, Scalar)]) -> Config {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn spec(dataset: DatasetName, model: ModelName, partition: Partition) -> ClientSpec {
    ClientSpec {
        dataset,
        model,
        data_dir: None,
        partition,
        threads: 2,
        seed: 42,
        attack: None,
        local_dp: None,
        pooled: false,
    }
}

/// Fits `rounds` times from the trainer's own parameters; returns the held-out accuracy.
fn train_and_evaluate(trainer: &mut dyn Trainer, cfg: &Config, rounds: usize) -> f64 {
    let mut params = trainer.get_parameters(&Config::new()).expect("parameters");
    for _ in 0..rounds {
        let fit = trainer.fit(params, cfg).expect("fit");
        let loss = fit.metrics["train_loss"].as_f64().expect("train_loss");
        assert!(loss.is_finite(), "train loss {loss}");
        params = fit.parameters;
    }
    let eval = trainer.evaluate(params, &Config::new()).expect("evaluate");
    eval.metrics["accuracy"].as_f64().expect("accuracy")
}

#[test]
fn mlp_learns_synthetic_images() {
    let mut trainer = build_trainer(&spec(
        DatasetName::SyntheticImages,
        ModelName::Mlp,
        Partition::iid(4, 1, 5),
    ))
    .expect("trainer");
    let cfg = config(&[
        ("local_epochs", Scalar::Sint64(2)),
        ("batch_size", Scalar::Sint64(20)),
    ]);
    let acc = train_and_evaluate(&mut trainer, &cfg, 2);
    assert!(acc > 0.9, "held-out accuracy {acc}");
}

#[test]
fn cnn_learns_synthetic_cifar() {
    let mut trainer = build_trainer(&spec(
        DatasetName::SyntheticCifar,
        ModelName::CnnCifar,
        Partition::iid(3, 0, 5),
    ))
    .expect("trainer");
    let cfg = config(&[
        ("local_epochs", Scalar::Sint64(3)),
        ("batch_size", Scalar::Sint64(16)),
        ("optimizer", Scalar::String("adam".into())),
        ("learning_rate", Scalar::Double(0.003)),
    ]);
    let acc = train_and_evaluate(&mut trainer, &cfg, 1);
    assert!(acc > 0.8, "held-out accuracy {acc}");
}

#[test]
fn logreg_learns_a_leaf_synthetic_device() {
    // 30 clients, contiguous: client 3 holds exactly LEAF device 3.
    let partition = Partition {
        scheme: Scheme::Contiguous,
        num_clients: 30,
        index: 3,
        seed: 1,
        test_fraction: 0.2,
    };
    let mut trainer = build_trainer(&spec(DatasetName::Synthetic, ModelName::LogReg, partition))
        .expect("trainer");
    let cfg = config(&[
        ("local_epochs", Scalar::Sint64(10)),
        ("batch_size", Scalar::Sint64(10)),
        ("learning_rate", Scalar::Double(0.01)),
        ("momentum", Scalar::Double(0.9)),
    ]);
    let acc = train_and_evaluate(&mut trainer, &cfg, 1);
    assert!(acc > 0.6, "held-out accuracy {acc}");
}

#[test]
fn fedprox_keeps_weights_near_the_global_model() {
    let distance = |mu: f64| {
        let mut trainer = build_trainer(&spec(
            DatasetName::SyntheticImages,
            ModelName::LogReg,
            Partition::iid(10, 0, 5),
        ))
        .expect("trainer");
        let start = trainer.get_parameters(&Config::new()).expect("parameters");
        let cfg = config(&[
            ("local_epochs", Scalar::Sint64(2)),
            ("proximal_mu", Scalar::Double(mu)),
        ]);
        let fit = trainer.fit(start.clone(), &cfg).expect("fit");
        fit.parameters
            .iter()
            .zip(&start)
            .flat_map(|(a, b)| {
                a.data
                    .iter()
                    .zip(&b.data)
                    .map(|(x, y)| f64::from(x - y).powi(2))
            })
            .sum::<f64>()
    };
    let (free, held) = (distance(0.0), distance(1.0));
    assert!(held < free * 0.8, "mu=1 moved {held}, mu=0 moved {free}");
}

#[test]
fn bad_config_values_name_their_key() {
    let mut trainer = build_trainer(&spec(
        DatasetName::Synthetic,
        ModelName::LogReg,
        Partition::iid(30, 0, 1),
    ))
    .expect("trainer");
    let params = trainer.get_parameters(&Config::new()).expect("parameters");
    for (key, value, says) in [
        (
            "batch_size",
            Scalar::Sint64(0),
            "`batch_size` must be a positive integer, got 0",
        ),
        (
            "local_epochs",
            Scalar::String("two".into()),
            "`local_epochs` must be an integer",
        ),
        (
            "learning_rate",
            Scalar::Double(-0.1),
            "`learning_rate` must be a positive number",
        ),
        (
            "momentum",
            Scalar::Double(1.5),
            "`momentum` must be in [0, 1)",
        ),
        (
            "weight_decay",
            Scalar::Double(f64::NAN),
            "`weight_decay` must be zero or positive",
        ),
        (
            "proximal_mu",
            Scalar::Bool(true),
            "`proximal_mu` must be a number",
        ),
        (
            "optimizer",
            Scalar::String("rmsprop".into()),
            "`optimizer` must be \"sgd\" or \"adam\"",
        ),
    ] {
        let err = trainer
            .fit(params.clone(), &config(&[(key, value)]))
            .expect_err("bad value");
        assert!(err.to_string().contains(says), "{key}: {err}");
    }
    let err = trainer
        .fit(params[..1].to_vec(), &Config::new())
        .expect_err("too few tensors");
    assert!(
        err.to_string().contains("has 2 parameter tensors, got 1"),
        "{err}"
    );
}

/// Where CI's `dataset-fashion-mnist` package puts Fashion-MNIST.
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn mlp_learns_fashion_mnist_and_the_server_evaluates_it() {
    assert!(
        Path::new(FASHION_DIR).is_dir(),
        "{FASHION_DIR} is missing: install it with `apt-get install dataset-fashion-mnist` \
         (CI installs it; this test must not skip)"
    );
    let info = registry::describe(DatasetName::FashionMnist, Some(Path::new("/nonexistent")));
    assert!(info.present, "fashion-mnist not usable: {:?}", info.problem);
    assert_eq!(
        (info.train_examples, info.test_examples),
        (Some(60_000), Some(10_000))
    );

    // Client 0 of 10 (IID): 5,400 training and 600 held-out examples.
    let mut trainer = build_trainer(&spec(
        DatasetName::FashionMnist,
        ModelName::Mlp,
        Partition::iid(10, 0, 7),
    ))
    .expect("trainer");
    let cfg = config(&[
        ("local_epochs", Scalar::Sint64(5)),
        ("batch_size", Scalar::Sint64(32)),
        ("learning_rate", Scalar::Double(0.1)),
    ]);
    let mut params = trainer.get_parameters(&Config::new()).expect("parameters");
    let fit = trainer.fit(params, &cfg).expect("fit");
    assert_eq!(fit.num_examples, 5_400);
    params = fit.parameters;
    let eval = trainer
        .evaluate(params.clone(), &Config::new())
        .expect("evaluate");
    let acc = eval.metrics["accuracy"].as_f64().expect("accuracy");
    assert_eq!(eval.num_examples, 600);
    assert!(acc > 0.78, "held-out accuracy {acc}");

    let mut server = CentralEvaluator::new(DatasetName::FashionMnist, ModelName::Mlp, None, 2)
        .expect("evaluator");
    assert_eq!(server.num_examples(), 10_000);
    let central = server.evaluate(&params).expect("evaluate");
    assert!(
        central.accuracy > 0.78,
        "test-split accuracy {}",
        central.accuracy
    );
    assert!(central.loss < 0.65, "test-split loss {}", central.loss);
}

#[test]
fn timing_steps_leaves_the_model_as_it_was_and_scales_with_the_batch() {
    let mut trainer = build_trainer(&spec(
        DatasetName::SyntheticImages,
        ModelName::Mlp,
        Partition::iid(2, 0, 5),
    ))
    .expect("trainer");
    let before = trainer.get_parameters(&Config::new()).expect("parameters");
    let small = trainer.time_steps(4, 5).expect("timed");
    let large = trainer.time_steps(128, 5).expect("timed");
    assert!(small > 0.0 && large > 0.0, "{small} {large}");
    assert!(
        large > small,
        "a step of 128 examples ({large} s) outlasts one of 4 ({small} s)"
    );
    let after = trainer.get_parameters(&Config::new()).expect("parameters");
    assert_eq!(before, after, "timing trains a copy");
}

#[test]
fn attacking_clients_send_what_their_attack_says() {
    use ml::attack::Attack;
    let honest_spec = spec(
        DatasetName::SyntheticImages,
        ModelName::Mlp,
        Partition::iid(4, 0, 5),
    );
    let cfg = config(&[("local_epochs", Scalar::Sint64(1))]);
    let mut honest = build_trainer(&honest_spec).expect("trainer");
    let global = honest.get_parameters(&Config::new()).expect("parameters");
    let trained = honest.fit(global.clone(), &cfg).expect("fit").parameters;

    let attacker = |attack| {
        let s = ClientSpec {
            attack: Some(attack),
            ..honest_spec.clone()
        };
        ml::build_fl_trainer(&s).expect("trainer")
    };
    // Sign-flip: the global model minus four times the honest update.
    let flipped = attacker(Attack::SignFlip)
        .fit(global.clone(), &cfg)
        .expect("fit")
        .parameters;
    for ((f, t), g) in flipped.iter().zip(&trained).zip(&global) {
        for ((f, t), g) in f.data.iter().zip(&t.data).zip(&g.data) {
            assert!((f - (g - 4.0 * (t - g))).abs() < 1e-4, "{f} {t} {g}");
        }
    }
    // Gaussian: noise of standard deviation 1 around the global model.
    let noisy = attacker(Attack::Gaussian)
        .fit(global.clone(), &cfg)
        .expect("fit")
        .parameters;
    let diffs: Vec<f32> = noisy
        .iter()
        .zip(&global)
        .flat_map(|(n, g)| {
            n.data
                .iter()
                .zip(&g.data)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>()
        })
        .collect();
    let var = diffs.iter().map(|d| d * d).sum::<f32>() / diffs.len() as f32;
    assert!((0.9..1.1).contains(&var), "variance {var}");
    // Label-flip trains on labels 9 - y (its held-out set keeps the true ones).
    let mut flip = ml::build_trainer(&ClientSpec {
        attack: Some(Attack::LabelFlip),
        ..honest_spec.clone()
    })
    .expect("trainer");
    let first = flip.data().train.labels()[0];
    let plain = build_trainer(&honest_spec).expect("trainer");
    assert_eq!(first, 9 - plain.data().train.labels()[0]);
    assert_eq!(flip.data().test.labels(), plain.data().test.labels());
    assert!(flip.fit(global, &cfg).is_ok());
}

#[test]
fn a_pooled_client_holds_the_same_examples_and_trains_the_same_weights() {
    for dataset in [DatasetName::FashionMnist, DatasetName::SyntheticImages] {
        for (scheme, index) in [
            (Scheme::Iid, 0),
            (Scheme::Iid, 299),
            (Scheme::Shards { per_client: 2 }, 17),
        ] {
            let alone = ClientSpec {
                partition: Partition {
                    scheme,
                    num_clients: 300,
                    index,
                    seed: 9,
                    test_fraction: 0.1,
                },
                ..spec(dataset, ModelName::LogReg, Partition::iid(1, 0, 0))
            };
            let pooled = ClientSpec {
                pooled: true,
                ..alone.clone()
            };
            let (a, b) = (
                ml::load_client_data(&alone).expect("data"),
                ml::load_client_data(&pooled).expect("pooled data"),
            );
            assert!(!a.train.is_empty(), "{dataset} {index}: no examples");
            assert_eq!(a, b, "{dataset} client {index} of 300 ({scheme:?})");
        }
    }
    let alone = spec(
        DatasetName::SyntheticImages,
        ModelName::Mlp,
        Partition::iid(20, 3, 5),
    );
    let pooled = ClientSpec {
        pooled: true,
        ..alone.clone()
    };
    let cfg = config(&[("local_epochs", Scalar::Sint64(2))]);
    let mut plain = build_trainer(&alone).expect("trainer");
    let mut lean = build_trainer(&pooled).expect("pooled trainer");
    assert!(plain.model().is_some());
    assert!(
        lean.model().is_none(),
        "a pooled trainer holds no model before a round"
    );
    let start = plain.get_parameters(&Config::new()).expect("parameters");
    assert_eq!(
        lean.get_parameters(&Config::new()).expect("parameters"),
        start
    );
    let (x, y) = (
        plain.fit(start.clone(), &cfg).expect("fit"),
        lean.fit(start, &cfg).expect("pooled fit"),
    );
    assert_eq!(x.parameters, y.parameters);
    assert_eq!(x.num_examples, y.num_examples);
    assert!(
        lean.model().is_none(),
        "a pooled trainer drops its model after fit"
    );
    let e = lean
        .evaluate(y.parameters, &Config::new())
        .expect("evaluate");
    assert!(e.num_examples > 0);
    assert!(lean.model().is_none(), "and after evaluate");
}
