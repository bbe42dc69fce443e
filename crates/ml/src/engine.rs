//! The training and evaluation loops over a [`Dataset`]: batches, loss,
//! optimiser steps, FedProx's proximal term, accuracy.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::datasets::Dataset;
use crate::fit_config::FitConfig;
use crate::models::{Net, layers, sgd};

/// Examples per batch when evaluating.
pub const EVAL_BATCH_SIZE: usize = 256;

/// Mean loss and accuracy over a set of examples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of examples whose highest logit is their label.
    pub accuracy: f64,
    /// Examples seen.
    pub num_examples: usize,
}

#[derive(Default)]
struct Tally {
    loss_sum: f64,
    correct: usize,
    examples: usize,
}

impl Tally {
    fn add(&mut self, mean_loss: f32, correct: usize, examples: usize) {
        self.loss_sum += f64::from(mean_loss) * examples as f64;
        self.correct += correct;
        self.examples += examples;
    }

    fn finish(self) -> Evaluation {
        let n = self.examples.max(1) as f64;
        Evaluation {
            loss: self.loss_sum / n,
            accuracy: self.correct as f64 / n,
            num_examples: self.examples,
        }
    }
}

/// The examples at `indices` as an input batch `[b, features]`, and their
/// labels `[b]` as a tensor and as values.
fn batch(
    data: &Dataset,
    indices: &[usize],
    device: &Device,
) -> (Tensor<2>, Tensor<1, Int>, Vec<i64>) {
    let features = data.shape().features();
    let mut x = Vec::with_capacity(indices.len() * features);
    let mut y = Vec::with_capacity(indices.len());
    for &i in indices {
        data.push_features(i, &mut x);
        y.push(i64::from(data.labels()[i]));
    }
    (
        Tensor::from_data(TensorData::new(x, [indices.len(), features]), device),
        Tensor::from_data(TensorData::new(y.clone(), [indices.len()]), device),
        y,
    )
}

/// Mean cross-entropy of logits `[b, classes]` against labels `[b]`.
pub(crate) fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    layers::cross_entropy(logits, labels)
}

/// How many rows' highest logit (the first, on a tie) is their label.
fn correct(logits: Tensor<2>, labels: &[i64]) -> usize {
    let [_, classes] = logits.dims();
    let values = logits
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    values
        .chunks_exact(classes.max(1))
        .zip(labels)
        .filter(|(row, label)| {
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                });
            i64::try_from(best.0).is_ok_and(|b| b == **label)
        })
        .count()
}

/// Trains `model` on `data` as `cfg` says, shuffling each epoch with `rng`
/// (which also draws dropout masks), all on `device` (an autodiff device).
/// Returns the trained model and the loss and accuracy over the last epoch,
/// measured on each batch before its step.
pub(crate) fn train(
    mut model: Net,
    data: &Dataset,
    cfg: &FitConfig,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> (Net, Evaluation) {
    // FedProx: the received weights, held fixed (no gradient) during the fit.
    let global = (cfg.proximal_mu > 0.0).then(|| model.clone().no_grad());
    // Plain SGD steps in one fused pass; anything else is burn's optimiser.
    let mut optim = (!cfg.is_plain_sgd()).then(|| cfg.optimizer());
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut last = Tally::default();
    for _ in 0..cfg.local_epochs {
        order.shuffle(rng);
        let mut tally = Tally::default();
        for chunk in order.chunks(cfg.batch_size) {
            let (x, y, labels) = batch(data, chunk, device);
            let logits = model.forward(x, Some(rng));
            let ce = cross_entropy(logits.clone(), y);
            tally.add(
                ce.clone().into_scalar(),
                correct(logits.detach(), &labels),
                chunk.len(),
            );
            let loss = match &global {
                Some(g) => ce + model.squared_distance(g).mul_scalar(cfg.proximal_mu / 2.0),
                None => ce,
            };
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = match optim.as_mut() {
                Some(optim) => optim.step(cfg.learning_rate, model, grads),
                None => model.map(&mut sgd::PlainSgd {
                    grads,
                    lr: cfg.learning_rate,
                }),
            };
        }
        last = tally;
    }
    (model, last.finish())
}

/// Evaluates `model` (on a plain, non-autodiff `device`) on every example of `data`.
pub(crate) fn evaluate(model: &Net, data: &Dataset, device: &Device) -> Evaluation {
    let mut tally = Tally::default();
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(EVAL_BATCH_SIZE) {
        let (x, y, labels) = batch(data, chunk, device);
        let logits = model.forward(x, None);
        let ce = cross_entropy(logits.clone(), y);
        tally.add(ce.into_scalar(), correct(logits, &labels), chunk.len());
    }
    tally.finish()
}
