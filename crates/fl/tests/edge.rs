//! Edge aggregators (hierarchical FL) over real gRPC on loopback: FedAvg
//! over campuses weighted by their examples is flat FedAvg, failures below
//! an edge stay there unless nothing is left, local rounds multiply the
//! clients' work, and bad options are refused.

use crate::util::{Broken, LineFit, listener};
use fl::client::{ClientOptions, ClientSummary, run_client};
use fl::history::{CentralRecord, History};
use fl::server::{EdgeOptions, EvaluateFn, FlServer, ServerConfig, ServerError, ServerRecorder};
use fl::strategy::StrategyConfig;
use fl::{Tensor, Trainer};
use std::time::Duration;
use tokio::task::JoinHandle;

type Run = JoinHandle<Result<History, ServerError>>;
type Clients = Vec<JoinHandle<Result<ClientSummary, fl::client::ClientError>>>;

fn initial() -> Vec<Tensor> {
    vec![Tensor::zeros(vec![1, 1]), Tensor::zeros(vec![1])]
}

/// Every one of `clients` samples in every phase.
fn all_of(clients: usize, rounds: u64) -> ServerConfig {
    ServerConfig {
        rounds,
        min_available_clients: clients,
        min_fit_clients: clients,
        min_evaluate_clients: clients,
        round_timeout: Some(Duration::from_secs(60)),
        seed: 3,
        ..ServerConfig::default()
    }
}

/// Central loss on forty points from 0, after every round.
fn central() -> EvaluateFn {
    Box::new(|_, p: &[Tensor]| {
        Some(CentralRecord {
            loss: f64::from(LineFit::sized(0.0, 40).loss(p[0].data[0], p[1].data[0])),
            metrics: Default::default(),
        })
    })
}

fn join_all(addr: &str, trainers: Vec<Box<dyn Trainer>>) -> Clients {
    trainers
        .into_iter()
        .map(|t| {
            let addr = addr.to_owned();
            tokio::spawn(async move { run_client(&addr, t, &ClientOptions::default()).await })
        })
        .collect()
}

/// A cloud server for `clients` clients over `rounds` rounds, and its address.
async fn cloud(clients: usize, rounds: u64) -> (Run, String) {
    let (l, addr) = listener().await;
    let server = FlServer::new(all_of(clients, rounds), ServerRecorder::detached());
    let run = tokio::spawn(server.run(
        l,
        StrategyConfig::Fedavg.build(),
        Some(initial()),
        Some(central()),
    ));
    (run, addr)
}

/// An edge aggregator of `upstream` with `trainers` as its clients.
async fn edge(
    upstream: &str,
    local_rounds: u64,
    trainers: Vec<Box<dyn Trainer>>,
) -> (Run, Clients) {
    let (l, addr) = listener().await;
    let server = FlServer::new(all_of(trainers.len(), 0), ServerRecorder::detached());
    let options = EdgeOptions {
        local_rounds,
        ..EdgeOptions::new(upstream)
    };
    let run = tokio::spawn(server.run_edge(l, StrategyConfig::Fedavg.build(), options));
    (run, join_all(&addr, trainers))
}

fn lines(specs: &[(f32, usize)]) -> Vec<Box<dyn Trainer>> {
    specs
        .iter()
        .map(|&(offset, n)| Box::new(LineFit::sized(offset, n)) as Box<dyn Trainer>)
        .collect()
}

async fn summaries(clients: Clients) -> Vec<ClientSummary> {
    let mut out = Vec::new();
    for c in clients {
        out.push(c.await.unwrap().expect("client ends cleanly"));
    }
    out
}

fn central_losses(h: &History) -> Vec<f64> {
    h.rounds
        .iter()
        .map(|r| r.central.as_ref().unwrap().loss)
        .collect()
}

fn evaluate_losses(h: &History) -> Vec<f64> {
    h.rounds
        .iter()
        .map(|r| r.evaluate.as_ref().unwrap().loss.unwrap())
        .collect()
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1e-3), "{a:?} vs {b:?}");
    }
}

const CAMPUS_A: [(f32, usize); 2] = [(0.0, 10), (0.5, 30)];
const CAMPUS_B: [(f32, usize); 2] = [(1.0, 20), (0.2, 5)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campuses_weighted_by_their_examples_make_flat_fedavg() {
    let (flat_run, addr) = cloud(4, 3).await;
    let flat_clients = join_all(&addr, lines(&[CAMPUS_A, CAMPUS_B].concat()));
    let flat = flat_run.await.unwrap().unwrap();
    summaries(flat_clients).await;

    let (cloud_run, addr) = cloud(2, 3).await;
    let (edge_a, clients_a) = edge(&addr, 1, lines(&CAMPUS_A)).await;
    let (edge_b, clients_b) = edge(&addr, 1, lines(&CAMPUS_B)).await;
    let hier = cloud_run.await.unwrap().unwrap();
    let (a, b) = (
        edge_a.await.unwrap().unwrap(),
        edge_b.await.unwrap().unwrap(),
    );

    assert_close(&central_losses(&hier), &central_losses(&flat));
    assert_close(&evaluate_losses(&hier), &evaluate_losses(&flat));
    let losses = central_losses(&hier);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    for r in &hier.rounds {
        assert_eq!((r.fit.sampled, r.fit.completed), (2, 2), "{r:?}");
        assert_eq!(r.fit.num_examples, 65, "the campuses' examples");
        assert_eq!(r.evaluate.as_ref().unwrap().num_examples, 65);
        assert!(r.fit.metrics.contains_key("train_loss"), "{r:?}");
    }
    for (edge, examples) in [(&a, 40), (&b, 25)] {
        assert_eq!(edge.strategy, "fedavg");
        assert_eq!(edge.rounds.len(), 3);
        for (i, r) in edge.rounds.iter().enumerate() {
            assert_eq!(r.round, i as u64 + 1);
            assert_eq!((r.fit.completed, r.fit.num_examples), (2, examples));
            assert_eq!(r.evaluate.as_ref().unwrap().completed, 2);
            assert!(r.bytes_sent > 0 && r.bytes_received > 0);
        }
        assert!(edge.duration_s.is_some() && edge.error.is_none());
    }
    for s in summaries(clients_a)
        .await
        .iter()
        .chain(&summaries(clients_b).await)
    {
        assert_eq!((s.fits, s.evaluates, s.errors), (3, 3, 0), "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_below_an_edge_stay_there_until_nothing_is_left() {
    let (cloud_run, addr) = cloud(2, 2).await;
    let mixed: Vec<Box<dyn Trainer>> = vec![Box::new(LineFit::new(0.0)), Box::new(Broken)];
    let (edge_a, clients_a) = edge(&addr, 1, mixed).await;
    let (edge_b, clients_b) = edge(&addr, 1, vec![Box::new(Broken)]).await;
    let hier = cloud_run.await.unwrap().unwrap();
    let (a, b) = (
        edge_a.await.unwrap().unwrap(),
        edge_b.await.unwrap().unwrap(),
    );
    summaries(clients_a).await;
    summaries(clients_b).await;
    for r in &hier.rounds {
        assert_eq!(r.fit.completed, 1, "{r:?}");
        assert_eq!(r.fit.num_examples, 20);
        assert_eq!(r.fit.failures.len(), 1);
        assert_eq!(
            r.fit.failures[0].reason,
            format!(
                "client status FIT_NOT_IMPLEMENTED: fit failed: edge aggregator: round {}: fit: \
                 1 of 1 clients failed (client status FIT_NOT_IMPLEMENTED: fit failed: out of memory)",
                r.round
            )
        );
        assert_eq!(r.evaluate.as_ref().unwrap().completed, 1);
    }
    for r in &a.rounds {
        assert_eq!((r.fit.completed, r.fit.failures.len()), (1, 1));
    }
    assert!(b.rounds.is_empty(), "no edge round of B had a result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_rounds_run_between_upstream_rounds() {
    let (cloud_run, addr) = cloud(1, 2).await;
    let (edge_run, clients) = edge(&addr, 3, lines(&CAMPUS_A)).await;
    let hier = cloud_run.await.unwrap().unwrap();
    let e = edge_run.await.unwrap().unwrap();
    assert_eq!(hier.rounds.len(), 2);
    assert_eq!(e.rounds.len(), 6, "three local rounds per upstream round");
    let evaluated: Vec<bool> = e.rounds.iter().map(|r| r.evaluate.is_some()).collect();
    assert_eq!(evaluated, [false, false, true, false, false, true]);
    for s in summaries(clients).await {
        assert_eq!((s.fits, s.evaluates), (6, 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_local_rounds_are_refused() {
    let (_upstream, addr) = listener().await;
    let (edge_run, _) = edge(&addr, 0, Vec::new()).await;
    let err = edge_run.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "upstream server: local_rounds must be 1 to 1000, got 0"
    );
}
