//! Benchmark peer: one process running many FL clients (tokio tasks) whose
//! trainer does no training. Each client answers `fit` with the parameters it
//! received plus a small fixed noise, and `evaluate` with a constant loss.
//!
//! Usage: `echo_clients SERVER_ADDR [CLIENTS] [MODEL]` (default 50 clients),
//! e.g. `cargo run --release -p fl --example echo_clients -- 127.0.0.1:6000 50`.
//! MODEL `mlp` (default): a 784-200-200-10 MLP as float32 tensors (199,210
//! parameters); `logreg`: 784-10 (7,850 parameters).

use fl::client::{ClientOptions, run_client};
use fl::{Config, EvaluateOutcome, FitOutcome, Tensor, Trainer, TrainerError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::process::ExitCode;

/// Tensor shapes of the 784-200-200-10 MLP (weights `[out, in]`, then biases).
const MLP: &[&[usize]] = &[&[200, 784], &[200], &[200, 200], &[200], &[10, 200], &[10]];
/// Tensor shapes of logistic regression on 784 features, 10 classes.
const LOGREG: &[&[usize]] = &[&[10, 784], &[10]];

/// Examples each client claims per fit and evaluate (FedAvg weights by it).
const NUM_EXAMPLES: u64 = 1200;

/// A trainer that echoes the parameters it receives plus a fixed small noise.
struct EchoTrainer {
    /// Initial parameters, returned by `get_parameters`.
    initial: Vec<Tensor>,
    /// Per-tensor noise added on each fit, drawn once.
    noise: Vec<Vec<f32>>,
}

impl EchoTrainer {
    fn new(seed: u64, shapes: &[&[usize]]) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = |n: usize, scale: f32| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(-scale..scale)).collect()
        };
        let initial = shapes
            .iter()
            .map(|s| Tensor {
                shape: s.to_vec(),
                data: draw(s.iter().product(), 0.05),
            })
            .collect::<Vec<_>>();
        let noise = initial.iter().map(|t| draw(t.len(), 1e-3)).collect();
        Self { initial, noise }
    }
}

impl Trainer for EchoTrainer {
    fn get_parameters(&mut self, _config: &Config) -> Result<Vec<Tensor>, TrainerError> {
        Ok(self.initial.clone())
    }

    fn fit(
        &mut self,
        mut parameters: Vec<Tensor>,
        _config: &Config,
    ) -> Result<FitOutcome, TrainerError> {
        if parameters.len() != self.noise.len() {
            return Err(TrainerError::msg(format!(
                "expected {} tensors, got {}",
                self.noise.len(),
                parameters.len()
            )));
        }
        for (t, noise) in parameters.iter_mut().zip(&self.noise) {
            if t.len() != noise.len() {
                return Err(TrainerError::msg(format!("unexpected shape {:?}", t.shape)));
            }
            for (p, n) in t.data.iter_mut().zip(noise) {
                *p += n;
            }
        }
        Ok(FitOutcome {
            parameters,
            num_examples: NUM_EXAMPLES,
            metrics: Config::new(),
        })
    }

    fn evaluate(
        &mut self,
        _parameters: Vec<Tensor>,
        _config: &Config,
    ) -> Result<EvaluateOutcome, TrainerError> {
        Ok(EvaluateOutcome {
            loss: 1.0,
            num_examples: NUM_EXAMPLES,
            metrics: Config::new(),
        })
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(server) = args.first().cloned() else {
        eprintln!("usage: echo_clients SERVER_ADDR [CLIENTS] [mlp|logreg]");
        return ExitCode::from(2);
    };
    let clients: u64 = match args.get(1).map(|s| s.parse()) {
        None => 50,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("CLIENTS: {e}");
            return ExitCode::from(2);
        }
    };
    let shapes = match args.get(2).map(String::as_str) {
        None | Some("mlp") => MLP,
        Some("logreg") => LOGREG,
        Some(other) => {
            eprintln!("MODEL: {other:?} is not mlp or logreg");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|i| {
                let server = server.clone();
                tokio::spawn(async move {
                    let trainer = Box::new(EchoTrainer::new(i, shapes));
                    run_client(&server, trainer, &ClientOptions::default()).await
                })
            })
            .collect();
        let mut failed = 0;
        for task in tasks {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    eprintln!("client failed: {e}");
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("client task failed: {e}");
                    failed += 1;
                }
            }
        }
        failed
    });
    eprintln!(
        "{} of {clients} echo clients finished cleanly",
        clients - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
