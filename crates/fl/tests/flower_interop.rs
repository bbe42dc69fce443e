//! Interoperability with Flower 1.42 (Python): its NumPyClients join our
//! server and our edge aggregator, our clients and edge aggregators join
//! its server, and float64 tensors are accepted; both ways over TLS too,
//! with certificates from `httpd::certs` (what `dmo certs init` writes).
//!
//! Needs a Python with `flwr==1.42.0` and numpy: `$DMO_PYTHON`, else the
//! workspace's `.venv` (which `.ci/run` creates).

use crate::util::LineFit;
use fl::client::{ClientOptions, run_client};
use fl::server::{EdgeOptions, FlServer, ServerConfig, ServerRecorder};
use fl::strategy::StrategyConfig;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tokio::net::TcpListener;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let p = std::env::var_os("DMO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "no Python with flwr at {}: run `bash .ci/run` once, or set DMO_PYTHON to a python with flwr==1.42.0",
        p.display()
    );
    p
}

/// A Python peer that is killed if the test fails before it exits.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_py(script: &str, args: &[&str]) -> Peer {
    let child = Command::new(python())
        .arg(repo_root().join("tests/flower").join(script))
        .args(args)
        .env("FLWR_TELEMETRY_ENABLED", "0")
        .env("GRPC_VERBOSITY", "ERROR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python peer");
    Peer(child)
}

fn finish(peer: Peer) -> String {
    let mut peer = peer;
    let child = std::mem::replace(&mut peer.0, Command::new("true").spawn().unwrap());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python peer failed: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Waits for Flower's server to end and checks its history: three rounds
/// of distributed loss, falling.
fn assert_flower_loss_falls_over_three_rounds(server: Peer) {
    let out = finish(server);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("HISTORY "))
        .expect("history line");
    let h: serde_json::Value = serde_json::from_str(line).unwrap();
    let losses: Vec<f64> = h["losses_distributed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 3, "Flower recorded 3 rounds: {out}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
}

async fn run_our_server(clients: &[&[&str]]) -> fl::history::History {
    run_our_server_with(clients, None).await
}

/// A CA and a certificate for host `fed.1` on 127.0.0.1, in a new directory.
fn certificates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hosts = [("fed.1".to_owned(), vec!["127.0.0.1".parse().unwrap()])];
    httpd::certs::init(dir.path(), &hosts, 1).unwrap();
    dir
}

async fn run_our_server_with(
    clients: &[&[&str]],
    tls: Option<fl::tls::ServerTls>,
) -> fl::history::History {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = ServerConfig {
        rounds: 3,
        min_available_clients: clients.len(),
        min_fit_clients: clients.len(),
        min_evaluate_clients: clients.len(),
        tls,
        ..ServerConfig::default()
    };
    let server = FlServer::new(config, ServerRecorder::detached());
    let run = tokio::spawn(server.run(listener, StrategyConfig::Fedavg.build(), None, None));
    let peers: Vec<Peer> = clients
        .iter()
        .map(|extra| {
            let mut args = vec!["--server", addr.as_str()];
            args.extend_from_slice(extra);
            spawn_py("numpy_client.py", &args)
        })
        .collect();
    let history = run.await.unwrap().expect("our server completes");
    for p in peers {
        assert!(finish(p).contains("client done"));
    }
    history
}

fn eval_losses(h: &fl::history::History) -> Vec<f64> {
    h.rounds
        .iter()
        .map(|r| r.evaluate.as_ref().unwrap().loss.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flower_numpy_clients_train_on_our_server() {
    let history = run_our_server(&[&["--offset", "0"], &["--offset", "1"]]).await;
    assert_eq!(history.rounds.len(), 3);
    for r in &history.rounds {
        assert_eq!(r.fit.completed, 2, "{r:?}");
        assert!(r.fit.failures.is_empty());
        assert_eq!(r.fit.num_examples, 40);
        assert!(
            r.evaluate
                .as_ref()
                .unwrap()
                .metrics
                .contains_key("accuracy")
        );
    }
    let losses = eval_losses(&history);
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "loss must fall: {losses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flower_clients_with_root_certificates_train_on_our_tls_server() {
    let certs = certificates();
    let d = certs.path();
    let tls = fl::tls::ServerTls::read(&d.join("fed.1.pem"), &d.join("fed.1.key")).unwrap();
    let ca = d.join("ca.pem").display().to_string();
    let history = run_our_server_with(
        &[
            &["--offset", "0", "--root-certificates", &ca],
            &["--offset", "1", "--root-certificates", &ca],
        ],
        Some(tls),
    )
    .await;
    assert_eq!(history.rounds.len(), 3);
    assert!(history.rounds.iter().all(|r| r.fit.completed == 2));
    let losses = eval_losses(&history);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_tls_clients_train_on_flowers_tls_server_and_a_plain_client_is_refused() {
    let certs = certificates();
    let d = certs.path();
    let port = testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let files = ["ca.pem", "fed.1.pem", "fed.1.key"].map(|f| d.join(f).display().to_string());
    let server = spawn_py(
        "flower_server.py",
        &[
            "--address",
            &addr,
            "--rounds",
            "3",
            "--certificates",
            &files[0],
            &files[1],
            &files[2],
        ],
    );
    let plain = ClientOptions {
        connect_attempts: 3,
        ..ClientOptions::default()
    };
    let refused = run_client(&addr, Box::new(LineFit::new(0.0)), &plain).await;
    assert!(refused.is_err(), "a plain client cannot join a TLS server");
    let tls = fl::tls::ClientTls::read(&d.join("ca.pem")).unwrap();
    let clients: Vec<_> = (0..2)
        .map(|i| {
            let (addr, tls) = (addr.clone(), tls.clone());
            tokio::spawn(async move {
                let options = ClientOptions {
                    tls: Some(tls),
                    ..ClientOptions::default()
                };
                run_client(&addr, Box::new(LineFit::new(i as f32)), &options).await
            })
        })
        .collect();
    for c in clients {
        let s = c.await.unwrap().expect("our TLS client finishes cleanly");
        assert_eq!((s.fits, s.evaluates, s.errors), (3, 3, 0));
    }
    assert_flower_loss_falls_over_three_rounds(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flower_client_sending_float64_works() {
    let history = run_our_server(&[&["--float64"], &["--offset", "0.5"]]).await;
    assert_eq!(history.rounds.len(), 3);
    assert!(
        history
            .rounds
            .iter()
            .all(|r| r.fit.completed == 2 && r.fit.failures.is_empty())
    );
    let losses = eval_losses(&history);
    assert!(losses[2] < losses[0], "{losses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_clients_train_on_flowers_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = spawn_py("flower_server.py", &["--address", &addr, "--rounds", "3"]);
    let clients: Vec<_> = (0..2)
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
    for c in clients {
        let s = c.await.unwrap().expect("our client finishes cleanly");
        assert_eq!((s.fits, s.evaluates, s.errors), (3, 3, 0));
    }
    assert_flower_loss_falls_over_three_rounds(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flower_numpy_clients_train_under_our_edge_aggregator() {
    let cloud_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cloud_addr = cloud_listener.local_addr().unwrap().to_string();
    let cloud = FlServer::new(
        ServerConfig {
            rounds: 3,
            min_available_clients: 1,
            min_fit_clients: 1,
            min_evaluate_clients: 1,
            ..ServerConfig::default()
        },
        ServerRecorder::detached(),
    );
    let cloud = tokio::spawn(cloud.run(cloud_listener, StrategyConfig::Fedavg.build(), None, None));
    let edge_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let edge_addr = edge_listener.local_addr().unwrap().to_string();
    let edge = FlServer::new(
        ServerConfig {
            min_available_clients: 2,
            min_fit_clients: 2,
            min_evaluate_clients: 2,
            ..ServerConfig::default()
        },
        ServerRecorder::detached(),
    );
    let edge = tokio::spawn(edge.run_edge(
        edge_listener,
        StrategyConfig::Fedavg.build(),
        EdgeOptions::new(cloud_addr),
    ));
    let peers: Vec<Peer> = ["0", "1"]
        .iter()
        .map(|offset| {
            spawn_py(
                "numpy_client.py",
                &["--server", &edge_addr, "--offset", offset],
            )
        })
        .collect();
    let history = cloud.await.unwrap().expect("our cloud server completes");
    let edge = edge.await.unwrap().expect("our edge aggregator completes");
    for p in peers {
        assert!(finish(p).contains("client done"));
    }
    for r in &history.rounds {
        assert_eq!((r.fit.completed, r.fit.num_examples), (1, 40), "{r:?}");
    }
    let losses = eval_losses(&history);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    assert_eq!(edge.rounds.len(), 3);
    assert!(edge.rounds.iter().all(|r| r.fit.completed == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_edge_aggregators_train_on_flowers_server() {
    let addr = testkit::free_loopback_addr();
    let server = spawn_py("flower_server.py", &["--address", &addr, "--rounds", "3"]);
    let mut edges = Vec::new();
    for campus in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let edge_addr = listener.local_addr().unwrap().to_string();
        let edge = FlServer::new(
            ServerConfig {
                min_available_clients: 1,
                min_fit_clients: 1,
                min_evaluate_clients: 1,
                ..ServerConfig::default()
            },
            ServerRecorder::detached(),
        );
        edges.push(tokio::spawn(edge.run_edge(
            listener,
            StrategyConfig::Fedavg.build(),
            EdgeOptions::new(addr.clone()),
        )));
        tokio::spawn(async move {
            run_client(
                &edge_addr,
                Box::new(LineFit::new(campus as f32)),
                &ClientOptions::default(),
            )
            .await
        });
    }
    for e in edges {
        let h = e
            .await
            .unwrap()
            .expect("edge ends when Flower sends it away");
        assert_eq!(h.rounds.len(), 3);
    }
    assert_flower_loss_falls_over_three_rounds(server);
}
