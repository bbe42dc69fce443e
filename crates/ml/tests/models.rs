//! Models: parameter counts, PyTorch layout, weights on the wire, and
//! weights that still train after being set.

use burn::tensor::{Tensor, TensorData};
use fl::Trainer;
use ml::datasets::{Dataset, Features, InputShape};
use ml::models::WeightsError;
use ml::partition::ClientData;
use ml::{FitConfig, LocalTrainer, ModelName, Net, Runtime, build_model};

fn mnist_model(name: ModelName, seed: u64) -> Net {
    build_model(
        name,
        InputShape::image(1, 28, 28),
        10,
        &Runtime::train_device(),
        seed,
    )
    .expect("model builds for 28x28x1")
}

#[test]
fn parameter_counts_match_the_fedavg_paper() {
    assert_eq!(mnist_model(ModelName::Cnn, 0).parameter_count(), 1_663_370);
    assert_eq!(mnist_model(ModelName::Mlp, 0).parameter_count(), 199_210);
    assert_eq!(mnist_model(ModelName::LogReg, 0).parameter_count(), 7_850);
    assert_eq!(
        mnist_model(ModelName::KerasMlp, 0).parameter_count(),
        101_770
    );
    let cifar = build_model(
        ModelName::CnnCifar,
        InputShape::image(3, 32, 32),
        10,
        &Runtime::train_device(),
        0,
    )
    .expect("cnn-cifar builds for 32x32x3");
    assert_eq!(cifar.parameter_count(), 62_006);
}

#[test]
fn architectures_count_the_parameters_their_nets_have() {
    let shapes = [
        InputShape::image(1, 28, 28),
        InputShape::image(3, 32, 32),
        InputShape::vector(60),
    ];
    for name in ModelName::ALL {
        for input in shapes {
            let built = build_model(name, input, 10, &Runtime::train_device(), 0).ok();
            let counted = name.architecture().parameter_count(input, 10);
            assert_eq!(
                counted,
                built.map(|n| n.parameter_count()),
                "{name} on {input:?}"
            );
        }
    }
}

#[test]
fn parameters_come_in_pytorch_order_and_layout() {
    let cnn = mnist_model(ModelName::Cnn, 0);
    assert_eq!(
        cnn.parameter_names(),
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias"
        ]
    );
    assert_eq!(
        cnn.parameter_shapes(),
        vec![
            vec![32, 1, 5, 5],
            vec![32],
            vec![64, 32, 5, 5],
            vec![64],
            vec![512, 3136],
            vec![512],
            vec![10, 512],
            vec![10],
        ]
    );
}

#[test]
fn weights_round_trip_bit_for_bit() {
    for name in [
        ModelName::Cnn,
        ModelName::Mlp,
        ModelName::KerasMlp,
        ModelName::LogReg,
    ] {
        let source = mnist_model(name, 1).to_tensors().expect("readable");
        // Awkward values: subnormals, negative zero, huge and tiny magnitudes.
        let mut tricky = source.clone();
        let specials = [f32::MIN_POSITIVE / 3.0, -0.0, 3.0e38, -1.0e-30, 1.0 / 3.0];
        for (t, v) in tricky.iter_mut().zip(specials.iter().cycle()) {
            t.data[0] = *v;
        }
        for tensors in [source, tricky] {
            let target = mnist_model(name, 2)
                .load_tensors(&tensors)
                .expect("shapes fit");
            let back = target.to_tensors().expect("readable");
            assert_eq!(back.len(), tensors.len());
            for (a, b) in tensors.iter().zip(&back) {
                assert_eq!(a.shape, b.shape);
                let bits = |t: &fl::Tensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{name}: values changed in the round trip");
            }
        }
    }
}

#[test]
fn a_linear_layer_reads_weights_as_pytorch_out_by_in() {
    // logreg with 3 inputs and 2 classes is one nn.Linear(3, 2).
    let net = build_model(
        ModelName::LogReg,
        InputShape::vector(3),
        2,
        &Runtime::eval_device(),
        0,
    )
    .expect("builds");
    let weight = fl::Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).expect("2x3");
    let bias = fl::Tensor::new(vec![2], vec![0.5, -1.0]).expect("2");
    let net = net.load_tensors(&[weight, bias]).expect("shapes fit");
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 0.0, -1.0, 2.0, 1.0, 0.5], [2, 3]),
        &Runtime::eval_device(),
    );
    let y: Vec<f32> = net
        .forward(x, None)
        .into_data()
        .try_into_vec()
        .expect("f32");
    // row 1: [1*1 + 2*0 + 3*-1 + 0.5, 4*1 + 5*0 + 6*-1 - 1] = [-1.5, -3]
    // row 2: [1*2 + 2*1 + 3*0.5 + 0.5, 4*2 + 5*1 + 6*0.5 - 1] = [6, 15]
    assert_eq!(y, vec![-1.5, -3.0, 6.0, 15.0]);
}

#[test]
fn wrong_shapes_are_refused_naming_the_tensor() {
    let net = mnist_model(ModelName::Mlp, 0);
    let mut tensors = net.to_tensors().expect("readable");
    tensors[2] = fl::Tensor::zeros(vec![200, 199]);
    let err = net.clone().load_tensors(&tensors).expect_err("wrong shape");
    assert!(matches!(err, WeightsError::Shape { index: 2, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "parameter tensor 2 (fc2.weight): expected shape [200, 200], got [200, 199]"
    );
    let err = net
        .clone()
        .load_tensors(&tensors[..3])
        .expect_err("too few");
    assert_eq!(
        err.to_string(),
        "model `mlp` has 6 parameter tensors, got 3"
    );
    let mut ragged = net.to_tensors().expect("readable");
    ragged[5].data.pop();
    let err = net
        .load_tensors(&ragged)
        .expect_err("data does not fill the shape");
    assert!(err.to_string().contains("tensor 5 (fc3.bias)"), "{err}");
    assert!(err.to_string().contains("holding 9 values"), "{err}");
}

#[test]
fn cnns_refuse_flat_inputs() {
    let err = build_model(
        ModelName::Cnn,
        InputShape::vector(60),
        10,
        &Runtime::eval_device(),
        0,
    )
    .expect_err("no image");
    assert!(err.to_string().contains("cnn"), "{err}");
    assert!("resnet".parse::<ModelName>().is_err());
}

/// Four well-separated classes of 8 features.
fn blobs(n: usize) -> Dataset {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = i % 4;
        for f in 0..8 {
            let centre = if f / 2 == c { 2.0 } else { 0.0 };
            x.push(centre + ((i * 7 + f * 13) % 10) as f32 / 20.0);
        }
        y.push(c as u8);
    }
    Dataset::new(Features::Floats(x), y, InputShape::vector(8), 4).expect("consistent")
}

#[test]
fn weights_set_through_fit_still_train() {
    let data = ClientData {
        train: blobs(200),
        test: blobs(40),
    };
    let mut trainer = LocalTrainer::new(ModelName::Mlp, data, 1, 7).expect("trainer");
    let start = trainer.get_parameters(&fl::Config::new()).expect("params");
    // Set weights from outside (all zero but the first bias), as a server would.
    let zeros: Vec<fl::Tensor> = start
        .iter()
        .map(|t| fl::Tensor::zeros(t.shape.clone()))
        .collect();
    let before = trainer
        .evaluate(start.clone(), &fl::Config::new())
        .expect("evaluate");
    let config = fl::Config::from([
        ("local_epochs".to_owned(), fl::Scalar::Sint64(5)),
        ("batch_size".to_owned(), fl::Scalar::Sint64(10)),
    ]);
    let fit = trainer.fit(start.clone(), &config).expect("fit");
    assert_ne!(fit.parameters, start, "parameters did not move");
    assert_eq!(fit.num_examples, 200);
    let after = trainer
        .evaluate(fit.parameters.clone(), &fl::Config::new())
        .expect("evaluate");
    assert!(
        after.loss < before.loss,
        "loss {} -> {}",
        before.loss,
        after.loss
    );
    let acc = after.metrics["accuracy"].as_f64().expect("number");
    assert!(acc > 0.9, "accuracy {acc}");
    // All-zero weights are a valid starting point too (gradients flow to the output bias).
    let fit = trainer.fit(zeros.clone(), &config).expect("fit from zeros");
    assert_ne!(fit.parameters, zeros);
}

#[test]
fn train_locally_is_reproducible_for_a_seed() {
    let run = || {
        let data = ClientData {
            train: blobs(120),
            test: blobs(20),
        };
        let mut t = LocalTrainer::new(ModelName::KerasMlp, data, 1, 3).expect("trainer");
        t.train_locally(&FitConfig {
            local_epochs: 2,
            batch_size: 16,
            ..FitConfig::default()
        })
        .expect("trained");
        t.model().expect("kept").to_tensors().expect("readable")
    };
    assert_eq!(run(), run());
}

#[test]
fn a_dedicated_pool_confines_rayon() {
    let rt = Runtime::new(1).expect("pool");
    assert_eq!(rt.threads(), 1);
    assert_eq!(rt.install(rayon::current_num_threads), 1);
}
