//! The local trainer an FL client calls: [`fl::Trainer`] on a model and the
//! client's own train and held-out data.

use burn::module::Module;
use fl::{Config, EvaluateOutcome, FitOutcome, Scalar, Tensor, Trainer, TrainerError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::MlError;
use crate::engine::{self, Evaluation};
use crate::fit_config::FitConfig;
use crate::models::{ModelName, Net};
use crate::partition::ClientData;
use crate::runtime::Runtime;

/// Trains and evaluates one model on one client's data, on its own thread pool.
///
/// `fit` reads [`FitConfig`]'s keys and returns `train_loss` and
/// `train_accuracy` (over the last local epoch); `evaluate` returns the mean
/// loss and `accuracy` on the client's held-out set. Shuffling and dropout
/// draw from one ChaCha8 stream seeded once, so a client replays exactly.
#[derive(Debug)]
pub struct LocalTrainer {
    model: Net,
    data: ClientData,
    runtime: Runtime,
    rng: ChaCha8Rng,
}

impl LocalTrainer {
    /// A trainer for model `name` on `data`, using `threads` threads (0: one
    /// per core); `seed` fixes the initial weights, shuffling and dropout.
    pub fn new(
        name: ModelName,
        data: ClientData,
        threads: usize,
        seed: u64,
    ) -> Result<Self, MlError> {
        let runtime = Runtime::new(threads)?;
        let (shape, classes) = (data.train.shape(), data.train.num_classes());
        let model =
            runtime.install(|| Net::new(name, shape, classes, &Runtime::train_device(), seed))?;
        Ok(Self {
            model,
            data,
            runtime,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// The client's data.
    pub fn data(&self) -> &ClientData {
        &self.data
    }

    /// The model as it stands.
    pub fn model(&self) -> &Net {
        &self.model
    }

    /// Trains the current model locally as `cfg` says (no FL round involved);
    /// returns the loss and accuracy over the last epoch.
    pub fn train_locally(&mut self, cfg: &FitConfig) -> Evaluation {
        let Self {
            model,
            data,
            runtime,
            rng,
        } = self;
        let current = model.clone();
        let (trained, stats) = runtime
            .install(|| engine::train(current, &data.train, cfg, rng, &Runtime::train_device()));
        *model = trained;
        stats
    }

    /// Evaluates the current model on the held-out set.
    pub fn evaluate_locally(&self) -> Evaluation {
        let model = self.model.valid();
        self.runtime
            .install(|| engine::evaluate(&model, &self.data.test, &Runtime::eval_device()))
    }

    /// Times local training at `batch_size` on the client's own data: one
    /// step to warm up, then `steps` steps (fewer when the data holds
    /// fewer batches), on a copy of the model, so that nothing the trainer
    /// holds changes. Returns seconds per step.
    pub fn time_steps(&self, batch_size: usize, steps: usize) -> f64 {
        let batch = batch_size.max(1);
        let cfg = FitConfig {
            batch_size: batch,
            ..FitConfig::default()
        };
        let take = |n: usize| {
            let rows: Vec<usize> = (0..(n * batch).min(self.data.train.len())).collect();
            self.data.train.subset(&rows)
        };
        let (warm, timed) = (take(1), take(steps.max(1)));
        let timed_steps = timed.len().div_ceil(batch).max(1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let device = Runtime::train_device();
        self.runtime.install(|| {
            let (model, _) = engine::train(self.model.clone(), &warm, &cfg, &mut rng, &device);
            let start = std::time::Instant::now();
            drop(engine::train(model, &timed, &cfg, &mut rng, &device));
            start.elapsed().as_secs_f64() / timed_steps as f64
        })
    }

    fn load(&mut self, parameters: &[Tensor]) -> Result<(), TrainerError> {
        let model = self.model.clone();
        self.model = self
            .runtime
            .install(|| model.load_tensors(parameters))
            .map_err(TrainerError::msg)?;
        Ok(())
    }

    fn parameters(&self) -> Result<Vec<Tensor>, TrainerError> {
        self.runtime
            .install(|| self.model.to_tensors())
            .map_err(TrainerError::msg)
    }
}

impl Trainer for LocalTrainer {
    fn get_parameters(&mut self, _config: &Config) -> Result<Vec<Tensor>, TrainerError> {
        self.parameters()
    }

    fn fit(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<FitOutcome, TrainerError> {
        let cfg = FitConfig::from_config(config).map_err(TrainerError::msg)?;
        self.load(&parameters)?;
        let stats = self.train_locally(&cfg);
        Ok(FitOutcome {
            parameters: self.parameters()?,
            num_examples: self.data.train.len() as u64,
            metrics: Config::from([
                ("train_loss".to_owned(), Scalar::Double(stats.loss)),
                ("train_accuracy".to_owned(), Scalar::Double(stats.accuracy)),
            ]),
        })
    }

    fn evaluate(
        &mut self,
        parameters: Vec<Tensor>,
        _config: &Config,
    ) -> Result<EvaluateOutcome, TrainerError> {
        self.load(&parameters)?;
        let eval = self.evaluate_locally();
        Ok(EvaluateOutcome {
            loss: eval.loss as f32,
            num_examples: eval.num_examples as u64,
            metrics: Config::from([("accuracy".to_owned(), Scalar::Double(eval.accuracy))]),
        })
    }
}
