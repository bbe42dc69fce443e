//! Server-side evaluation (Flower's `evaluate_fn`): global parameters scored
//! on a dataset's official test split.

use std::path::Path;

use burn::module::Module;

use crate::MlError;
use crate::datasets::{Dataset, DatasetName, registry};
use crate::engine::{self, Evaluation};
use crate::models::{ModelName, Net};
use crate::runtime::Runtime;

/// Scores parameter lists on a fixed test set.
#[derive(Debug)]
pub struct CentralEvaluator {
    model: Net,
    test: Dataset,
    runtime: Runtime,
}

impl CentralEvaluator {
    /// An evaluator for `model` on `dataset`'s official test split.
    pub fn new(
        dataset: DatasetName,
        model: ModelName,
        data_dir: Option<&Path>,
        threads: usize,
    ) -> Result<Self, MlError> {
        let test = registry::load(dataset, data_dir)?.test;
        Self::with_test_set(test, model, threads)
    }

    /// An evaluator for `model` on the given examples.
    pub fn with_test_set(test: Dataset, model: ModelName, threads: usize) -> Result<Self, MlError> {
        let runtime = Runtime::new(threads)?;
        let (shape, classes) = (test.shape(), test.num_classes());
        let model =
            runtime.install(|| Net::new(model, shape, classes, &Runtime::eval_device(), 0))?;
        Ok(Self {
            model,
            test,
            runtime,
        })
    }

    /// This evaluator as an FL server's server-side evaluation: the loss
    /// and `accuracy` of each round's global model (none when the
    /// parameters do not fit the model).
    pub fn into_evaluate_fn(mut self) -> fl::server::EvaluateFn {
        Box::new(move |_round, params| {
            let e = self.evaluate(params).ok()?;
            Some(fl::history::CentralRecord {
                loss: e.loss,
                metrics: [("accuracy".to_owned(), e.accuracy)].into(),
            })
        })
    }

    /// Number of test examples.
    pub fn num_examples(&self) -> usize {
        self.test.len()
    }

    /// Mean loss and accuracy of `parameters` (PyTorch order and layout) on the test set.
    pub fn evaluate(&mut self, parameters: &[fl::Tensor]) -> Result<Evaluation, MlError> {
        let model = self.model.clone();
        let Self { test, runtime, .. } = &*self;
        let (model, eval) = runtime.install(|| {
            let model = model.load_tensors(parameters)?;
            let eval = engine::evaluate(&model.valid(), test, &Runtime::eval_device());
            Ok::<_, MlError>((model, eval))
        })?;
        self.model = model;
        Ok(eval)
    }
}
