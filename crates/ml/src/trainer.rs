//! The local trainer an FL client calls: [`fl::Trainer`] on a model and the
//! client's own train and held-out data.

use burn::module::Module;
use fl::{Config, EvaluateOutcome, FitOutcome, Scalar, Tensor, Trainer, TrainerError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

use crate::MlError;
use crate::engine::{self, Evaluation};
use crate::fit_config::FitConfig;
use crate::models::{ModelName, Net};
use crate::partition::ClientData;
use crate::runtime::Runtime;

/// Trains and evaluates one model on one client's data, on its own thread
/// pool (or, pooled, the process's).
///
/// `fit` reads [`FitConfig`]'s keys and returns `train_loss` and
/// `train_accuracy` (over the last local epoch); `evaluate` returns the mean
/// loss and `accuracy` on the client's held-out set. Shuffling and dropout
/// draw from one ChaCha8 stream seeded once, so a client replays exactly.
#[derive(Debug)]
pub struct LocalTrainer {
    /// The model; `None` between a pooled trainer's rounds.
    model: Option<Net>,
    name: ModelName,
    seed: u64,
    /// Whether the model is kept between `fit` and `evaluate` calls.
    keep_model: bool,
    data: ClientData,
    runtime: Arc<Runtime>,
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
        let mut trainer = Self::with_runtime(name, data, Arc::new(Runtime::new(threads)?), seed);
        trainer.keep_model = true;
        trainer.current()?;
        Ok(trainer)
    }

    /// A trainer for one of many clients in this process: it trains on the
    /// process's pool of `threads` threads ([`Runtime::shared`]) and holds
    /// its model only while it trains or evaluates (the server sends the
    /// weights each round). Trains exactly as [`LocalTrainer::new`] does.
    pub fn pooled(
        name: ModelName,
        data: ClientData,
        threads: usize,
        seed: u64,
    ) -> Result<Self, MlError> {
        Ok(Self::with_runtime(
            name,
            data,
            Runtime::shared(threads)?,
            seed,
        ))
    }

    fn with_runtime(name: ModelName, data: ClientData, runtime: Arc<Runtime>, seed: u64) -> Self {
        Self {
            model: None,
            name,
            seed,
            keep_model: false,
            data,
            runtime,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The model, built from the seed when the trainer holds none.
    fn current(&mut self) -> Result<&mut Net, MlError> {
        let net = match self.model.take() {
            Some(net) => net,
            None => {
                let (shape, classes) = (self.data.train.shape(), self.data.train.num_classes());
                let (name, seed) = (self.name, self.seed);
                self.runtime
                    .install(|| Net::new(name, shape, classes, &Runtime::train_device(), seed))?
            }
        };
        Ok(self.model.insert(net))
    }

    /// Drops the model of a pooled trainer once a call is answered.
    fn release(&mut self) {
        if !self.keep_model {
            self.model = None;
        }
    }

    /// The client's data.
    pub fn data(&self) -> &ClientData {
        &self.data
    }

    /// The model as it stands (`None` between a pooled trainer's rounds).
    pub fn model(&self) -> Option<&Net> {
        self.model.as_ref()
    }

    /// Trains the current model locally as `cfg` says (no FL round involved);
    /// returns the loss and accuracy over the last epoch.
    pub fn train_locally(&mut self, cfg: &FitConfig) -> Result<Evaluation, MlError> {
        let current = self.current()?.clone();
        let Self {
            model,
            data,
            runtime,
            rng,
            ..
        } = self;
        let (trained, stats) = runtime
            .install(|| engine::train(current, &data.train, cfg, rng, &Runtime::train_device()));
        *model = Some(trained);
        Ok(stats)
    }

    /// Evaluates the current model on the held-out set.
    pub fn evaluate_locally(&mut self) -> Result<Evaluation, MlError> {
        let model = self.current()?.valid();
        Ok(self
            .runtime
            .install(|| engine::evaluate(&model, &self.data.test, &Runtime::eval_device())))
    }

    /// Times local training at `batch_size` on the client's own data: one
    /// step to warm up, then `steps` steps (fewer when the data holds
    /// fewer batches), on a copy of the model, so that nothing the trainer
    /// holds changes. Returns seconds per step.
    pub fn time_steps(&mut self, batch_size: usize, steps: usize) -> Result<f64, MlError> {
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
        let model = self.current()?.clone();
        let step_s = self.runtime.install(|| {
            let (model, _) = engine::train(model, &warm, &cfg, &mut rng, &device);
            let start = std::time::Instant::now();
            drop(engine::train(model, &timed, &cfg, &mut rng, &device));
            start.elapsed().as_secs_f64() / timed_steps as f64
        });
        self.release();
        Ok(step_s)
    }

    fn load(&mut self, parameters: &[Tensor]) -> Result<(), TrainerError> {
        let model = self.current().map_err(TrainerError::msg)?.clone();
        let loaded = self
            .runtime
            .install(|| model.load_tensors(parameters))
            .map_err(TrainerError::msg)?;
        self.model = Some(loaded);
        Ok(())
    }

    fn parameters(&mut self) -> Result<Vec<Tensor>, TrainerError> {
        let runtime = Arc::clone(&self.runtime);
        let model = self.current().map_err(TrainerError::msg)?;
        runtime
            .install(|| model.to_tensors())
            .map_err(TrainerError::msg)
    }
}

impl Trainer for LocalTrainer {
    fn get_parameters(&mut self, _config: &Config) -> Result<Vec<Tensor>, TrainerError> {
        let parameters = self.parameters();
        self.release();
        parameters
    }

    fn fit(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<FitOutcome, TrainerError> {
        let cfg = FitConfig::from_config(config).map_err(TrainerError::msg)?;
        self.load(&parameters)?;
        let stats = self.train_locally(&cfg).map_err(TrainerError::msg)?;
        let parameters = self.parameters();
        self.release();
        Ok(FitOutcome {
            parameters: parameters?,
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
        let eval = self.evaluate_locally().map_err(TrainerError::msg);
        self.release();
        let eval = eval?;
        Ok(EvaluateOutcome {
            loss: eval.loss as f32,
            num_examples: eval.num_examples as u64,
            metrics: Config::from([("accuracy".to_owned(), Scalar::Double(eval.accuracy))]),
        })
    }
}
