//! Our training against PyTorch's, step by step: from the same initial
//! weights and batches, one epoch of plain SGD gives the same loss curve as
//! PyTorch's (`tests/fixtures/torch_loss_curves.json`, recorded by
//! `bench/torch_loss_curve.py`, which states the formulas for the data and
//! weights), within [`TOLERANCE`].

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Deserialize;

use crate::FitConfig;
use crate::datasets::InputShape;
use crate::engine::cross_entropy;
use crate::models::sgd::PlainSgd;
use crate::models::{ModelName, Net};
use crate::runtime::Runtime;

/// The largest difference allowed between a loss of ours and PyTorch's.
/// Both run in `f32` and sum in different orders; measured, the curves part
/// by at most a few units in the seventh digit (3e-7 for the MLP).
const TOLERANCE: f64 = 1e-5;

#[derive(Deserialize)]
struct Fixture {
    examples: usize,
    batch_size: usize,
    learning_rate: f64,
    curves: Vec<Curve>,
}

#[derive(Deserialize)]
struct Curve {
    model: String,
    param_scales: Vec<f64>,
    losses: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("../tests/fixtures/torch_loss_curves.json"))
        .expect("the fixture parses")
}

fn input_shape(model: ModelName) -> InputShape {
    match model {
        ModelName::CnnCifar => InputShape {
            channels: 3,
            height: 32,
            width: 32,
        },
        _ => InputShape {
            channels: 1,
            height: 28,
            width: 28,
        },
    }
}

/// The model with the fixture's initial weights.
fn initial_net(curve: &Curve, device: &Device) -> Net {
    let model: ModelName = curve.model.parse().expect("a known model");
    let net = Net::new(model, input_shape(model), 10, device, 0).expect("builds");
    let shapes = net.parameter_shapes();
    assert_eq!(shapes.len(), curve.param_scales.len(), "{}", curve.model);
    let tensors: Vec<fl::Tensor> = shapes
        .into_iter()
        .zip(&curve.param_scales)
        .enumerate()
        .map(|(j, (shape, scale))| {
            let len = shape.iter().product::<usize>();
            let values = (0..len)
                .map(|k| (scale * (0.7 * k as f64 + 1.1 * j as f64 + 0.3).sin()) as f32)
                .collect();
            fl::Tensor::new(shape, values).expect("sized to its shape")
        })
        .collect();
    net.load_tensors(&tensors).expect("shapes match")
}

/// Examples `start..start + len` as a batch.
fn batch(
    start: usize,
    len: usize,
    features: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<1, Int>) {
    let x: Vec<f32> = (start..start + len)
        .flat_map(|n| {
            (0..features).map(move |i| (0.5 + 0.5 * (0.1 * i as f64 + 1.3 * n as f64).sin()) as f32)
        })
        .collect();
    let y: Vec<i64> = (start..start + len)
        .map(|n| ((7 * n + 3) % 10) as i64)
        .collect();
    (
        Tensor::from_data(TensorData::new(x, [len, features]), device),
        Tensor::from_data(TensorData::new(y, [len]), device),
    )
}

fn our_losses(curve: &Curve, f: &Fixture) -> Vec<f64> {
    let device = Runtime::train_device();
    let mut net = initial_net(curve, &device);
    let features = net.input_shape().features();
    let cfg = FitConfig {
        learning_rate: f.learning_rate,
        ..FitConfig::default()
    };
    assert!(cfg.is_plain_sgd(), "training steps with the fused update");
    let mut losses = Vec::new();
    for start in (0..f.examples).step_by(f.batch_size) {
        let (x, y) = batch(start, f.batch_size, features, &device);
        let loss = cross_entropy(net.forward(x, None), y);
        losses.push(f64::from(loss.clone().into_scalar::<f32>()));
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = net.map(&mut PlainSgd {
            grads,
            lr: cfg.learning_rate,
        });
    }
    losses
}

#[test]
fn every_model_follows_pytorchs_loss_curve() {
    let f = fixture();
    for curve in &f.curves {
        let ours = our_losses(curve, &f);
        assert_eq!(ours.len(), curve.losses.len(), "{}", curve.model);
        for (step, (a, b)) in ours.iter().zip(&curve.losses).enumerate() {
            assert!(
                (a - b).abs() <= TOLERANCE,
                "{} step {step}: ours {a}, PyTorch {b} (ours {ours:?})",
                curve.model
            );
        }
    }
}

#[test]
fn evaluation_without_autodiff_gives_the_first_loss_too() {
    let f = fixture();
    let device = Runtime::eval_device();
    for curve in &f.curves {
        let net = initial_net(curve, &device);
        let (x, y) = batch(0, f.batch_size, net.input_shape().features(), &device);
        let loss = f64::from(cross_entropy(net.forward(x, None), y).into_scalar::<f32>());
        assert!(
            (loss - curve.losses[0]).abs() <= TOLERANCE,
            "{}: {loss}",
            curve.model
        );
    }
}
