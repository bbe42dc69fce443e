//! Our server and our clients on loopback: rounds complete, loss falls,
//! failures are counted, and the history records every round.

use crate::util::{Broken, LineFit, listener};
use fl::client::{ClientOptions, run_client};
use fl::history::CentralRecord;
use fl::server::{FlServer, ServerConfig, ServerRecorder};
use fl::strategy::StrategyConfig;
use fl::{Config, EvaluateOutcome, FitOutcome, Tensor, Trainer, TrainerError};
use std::time::Duration;

/// A client that answers with a model of the wrong shape.
struct WrongShape;

impl Trainer for WrongShape {
    fn get_parameters(&mut self, _: &Config) -> Result<Vec<Tensor>, TrainerError> {
        Ok(vec![Tensor::zeros(vec![2])])
    }
    fn fit(&mut self, _: Vec<Tensor>, _: &Config) -> Result<FitOutcome, TrainerError> {
        Ok(FitOutcome {
            parameters: vec![Tensor::zeros(vec![2, 2]), Tensor::zeros(vec![1])],
            num_examples: 5,
            metrics: Config::new(),
        })
    }
    fn evaluate(&mut self, _: Vec<Tensor>, _: &Config) -> Result<EvaluateOutcome, TrainerError> {
        Ok(EvaluateOutcome {
            loss: 1.0,
            num_examples: 1,
            metrics: Config::new(),
        })
    }
}

/// A client that answers fit with NaN weights, or an absurd example count.
struct Poisoned {
    nan: bool,
}

impl Trainer for Poisoned {
    fn get_parameters(&mut self, _: &Config) -> Result<Vec<Tensor>, TrainerError> {
        Ok(vec![Tensor::zeros(vec![1, 1]), Tensor::zeros(vec![1])])
    }
    fn fit(&mut self, _: Vec<Tensor>, _: &Config) -> Result<FitOutcome, TrainerError> {
        let w = if self.nan { f32::NAN } else { 5.0 };
        Ok(FitOutcome {
            parameters: vec![
                Tensor::new(vec![1, 1], vec![w]).unwrap(),
                Tensor::zeros(vec![1]),
            ],
            num_examples: if self.nan { 5 } else { 1_000_000_000_000 },
            metrics: Config::new(),
        })
    }
    fn evaluate(&mut self, _: Vec<Tensor>, _: &Config) -> Result<EvaluateOutcome, TrainerError> {
        Ok(EvaluateOutcome {
            loss: 1.0,
            num_examples: 1,
            metrics: Config::new(),
        })
    }
}

/// Two FedAvg rounds with all three `trainers` as clients; the history.
async fn two_rounds_of_three(trainers: Vec<Box<dyn Trainer>>) -> fl::history::History {
    let (l, addr) = listener().await;
    let config = ServerConfig {
        rounds: 2,
        min_available_clients: 3,
        min_fit_clients: 3,
        min_evaluate_clients: 3,
        ..ServerConfig::default()
    };
    let initial = vec![Tensor::zeros(vec![1, 1]), Tensor::zeros(vec![1])];
    let run = tokio::spawn(FlServer::new(config, ServerRecorder::detached()).run(
        l,
        StrategyConfig::Fedavg.build(),
        Some(initial),
        None,
    ));
    let clients: Vec<_> = trainers
        .into_iter()
        .map(|t| {
            let addr = addr.clone();
            tokio::spawn(async move { run_client(&addr, t, &ClientOptions::default()).await })
        })
        .collect();
    let history = run.await.unwrap().unwrap();
    for c in clients {
        c.await.unwrap().unwrap();
    }
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_weights_and_absurd_example_counts_fail_only_that_client() {
    let history = two_rounds_of_three(vec![
        Box::new(LineFit::new(0.0)),
        Box::new(Poisoned { nan: true }),
        Box::new(Poisoned { nan: false }),
    ])
    .await;
    for r in &history.rounds {
        assert_eq!(r.fit.completed, 1, "only the honest client's update counts");
        let mut reasons: Vec<&str> = r.fit.failures.iter().map(|f| f.reason.as_str()).collect();
        reasons.sort();
        assert_eq!(
            reasons,
            vec![
                "num_examples 1000000000000 is over the server's limit of 1000000000: the update is refused",
                "tensor 0 holds a NaN, an infinite value or one beyond f32's range at element 0: the update is refused",
            ]
        );
        assert!(r.fit.num_examples < 100, "{}", r.fit.num_examples);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedavg_rounds_reduce_loss_and_record_history() {
    let (l, addr) = listener().await;
    let config = ServerConfig {
        rounds: 4,
        min_available_clients: 3,
        min_fit_clients: 2,
        fraction_fit: 1.0,
        min_evaluate_clients: 3,
        seed: 7,
        ..ServerConfig::default()
    };
    let server = FlServer::new(config, ServerRecorder::detached());
    let live = server.history();
    let evaluate_fn: fl::server::EvaluateFn = Box::new(|round, p: &[Tensor]| {
        let loss = LineFit::new(0.0).loss(p[0].data[0], p[1].data[0]);
        Some(CentralRecord {
            loss: f64::from(loss),
            metrics: [("round".to_owned(), round as f64)].into(),
        })
    });
    let run = tokio::spawn(server.run(l, StrategyConfig::Fedavg.build(), None, Some(evaluate_fn)));
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                run_client(
                    &addr,
                    Box::new(LineFit::new(i as f32)),
                    &ClientOptions::default(),
                )
                .await
            })
        })
        .collect();
    let history = run.await.unwrap().unwrap();
    for c in clients {
        let summary = c.await.unwrap().unwrap();
        assert_eq!(summary.fits, 4);
        assert_eq!(summary.evaluates, 4);
        assert_eq!(summary.train_examples, 80);
    }
    assert_eq!(history.rounds.len(), 4);
    assert_eq!(history.strategy, "fedavg");
    let initial = history.initial_central.as_ref().unwrap().loss;
    let losses: Vec<f64> = history
        .rounds
        .iter()
        .map(|r| r.central.as_ref().unwrap().loss)
        .collect();
    assert!(losses[0] < initial, "{initial} -> {losses:?}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    for r in &history.rounds {
        assert_eq!(r.fit.sampled, 3);
        assert_eq!(r.fit.completed, 3);
        assert!(r.fit.failures.is_empty());
        assert_eq!(r.fit.num_examples, 60);
        let eval = r.evaluate.as_ref().unwrap();
        assert_eq!(eval.completed, 3);
        assert!(eval.loss.unwrap() > 0.0);
        assert!(r.fit.metrics.contains_key("train_loss"));
        assert!(
            r.bytes_sent > 6 * 2 * 128,
            "two small tensors to 3 clients twice: {}",
            r.bytes_sent
        );
        assert!(r.bytes_received > 3 * 2 * 128);
    }
    assert_eq!(
        *live.read().unwrap(),
        history,
        "the live handle sees the same history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_clients_are_counted_and_the_round_goes_on() {
    let history = two_rounds_of_three(vec![
        Box::new(LineFit::new(0.0)),
        Box::new(Broken),
        Box::new(WrongShape),
    ])
    .await;
    for r in &history.rounds {
        assert_eq!(r.fit.completed, 1);
        let mut reasons: Vec<&str> = r.fit.failures.iter().map(|f| f.reason.as_str()).collect();
        reasons.sort();
        assert_eq!(
            reasons,
            vec![
                "client status FIT_NOT_IMPLEMENTED: fit failed: out of memory",
                "tensor 0 has shape [2, 2], the model has [1, 1]",
            ]
        );
        let eval = r.evaluate.as_ref().unwrap();
        assert_eq!(eval.completed, 2);
        assert_eq!(eval.failures.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_failures_stops_the_run_with_a_reason() {
    let (l, addr) = listener().await;
    let config = ServerConfig {
        rounds: 2,
        min_available_clients: 2,
        accept_failures: false,
        ..ServerConfig::default()
    };
    let initial = vec![Tensor::zeros(vec![1, 1]), Tensor::zeros(vec![1])];
    let run = tokio::spawn(FlServer::new(config, ServerRecorder::detached()).run(
        l,
        StrategyConfig::Fedavg.build(),
        Some(initial),
        None,
    ));
    let a = tokio::spawn({
        let addr = addr.clone();
        async move {
            run_client(
                &addr,
                Box::new(LineFit::new(0.0)),
                &ClientOptions::default(),
            )
            .await
        }
    });
    let b = tokio::spawn(async move {
        run_client(&addr, Box::new(Broken), &ClientOptions::default()).await
    });
    let err = run.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "round 1: fit: 1 of 2 clients failed (client status FIT_NOT_IMPLEMENTED: fit failed: out of memory)"
    );
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_clients_times_out_clearly() {
    let (l, _addr) = listener().await;
    let config = ServerConfig {
        min_available_clients: 2,
        wait_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let err = FlServer::new(config, ServerRecorder::detached())
        .run(l, StrategyConfig::Fedavg.build(), None, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "only 0 of the 2 required clients connected within 200ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_respects_fraction_and_minimum() {
    let (l, addr) = listener().await;
    let config = ServerConfig {
        rounds: 3,
        min_available_clients: 5,
        fraction_fit: 0.4,
        min_fit_clients: 1,
        fraction_evaluate: 0.0,
        seed: 42,
        ..ServerConfig::default()
    };
    let run = tokio::spawn(FlServer::new(config, ServerRecorder::detached()).run(
        l,
        StrategyConfig::Fedavg.build(),
        Some(vec![Tensor::zeros(vec![1, 1]), Tensor::zeros(vec![1])]),
        None,
    ));
    let clients: Vec<_> = (0..5)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                run_client(
                    &addr,
                    Box::new(LineFit::new(i as f32)),
                    &ClientOptions::default(),
                )
                .await
            })
        })
        .collect();
    let history = run.await.unwrap().unwrap();
    let mut fits = 0;
    for c in clients {
        fits += c.await.unwrap().unwrap().fits;
    }
    assert_eq!(fits, 6, "2 of 5 clients per round, 3 rounds");
    assert!(
        history
            .rounds
            .iter()
            .all(|r| r.fit.sampled == 2 && r.evaluate.is_none())
    );
}

#[tokio::test]
async fn client_gives_up_after_its_attempts() {
    let (l, addr) = listener().await;
    drop(l);
    let options = ClientOptions {
        connect_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    };
    let err = run_client(&addr, Box::new(Broken), &options)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("could not connect to {addr} after 2 attempts")),
        "{err}"
    );
}
