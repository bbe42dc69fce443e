//! Orchestration latency: intent received to all clients started, for 10,
//! 50 and 200 client agents on loopback. Everything runs in this process:
//! a cloud and an edge MLFO over real Mo-Mo gRPC, one aggregator agent and N
//! client agents, each its own axum server on its own 127.88.T.H address,
//! all reached over real HTTP. Clients load their data after they are
//! started, so their start-up is excluded, as the benchmark asks.
//!
//! Run: `cargo run --release -p mlfo --example orchestration_latency`
//! (optionally the sizes: `-- 10 50 200`). Prints a Markdown table.

use mlfo::{Mlfo, MlfoConfig};
use node::{Agent, AgentConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const REPEATS: usize = 10;

fn agent_addr(tier: u8, host: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 88, tier, host)), 5000)
}

async fn start_agent(addr: SocketAddr, stop: &tokio::sync::watch::Receiver<bool>) {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind agent");
    let agent = Agent::new(AgentConfig {
        ip: addr.ip(),
        advertise: addr.ip().to_string(),
        fl_port_base: 6000,
        data_dir: None,
        threads: 1,
        tls_identity: None,
        tls_roots: None,
        group: None,
    });
    let mut stop = stop.clone();
    tokio::spawn(node::serve(
        listener,
        agent,
        httpd::Limits::default(),
        httpd::Security::default(),
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    ));
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn measure(clients: u8, dir: &std::path::Path) -> Vec<f64> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    start_agent(agent_addr(0, 11), &stop_rx).await;
    let mut inventory =
        "  - { name: fed.1, url: 'http://127.88.0.11:5000', role: aggregator, capacity: 1000 }\n"
            .to_owned();
    for k in 0..clients {
        let (tier, host) = (1 + k / 200, 10 + k % 200);
        start_agent(agent_addr(tier, host), &stop_rx).await;
        inventory += &format!(
            "  - {{ name: fc.{k}, url: 'http://127.88.{tier}.{host}:5000', role: client }}\n"
        );
    }
    let cloud = MlfoConfig::from_yaml(
        "cloud",
        &format!(
            "role: cloud\nlisten: 127.88.0.1:8000\nmomo_listen: 127.88.0.1:9000\nstate: {}/cloud-{clients}.sqlite\ninventory:\n{inventory}",
            dir.display()
        ),
    )
    .expect("cloud config");
    let edge = MlfoConfig::from_yaml(
        "edge",
        &format!(
            "role: edge\nlisten: 127.88.1.1:8000\nparent: http://127.88.0.1:9000\nstate: {}/edge-{clients}.sqlite\ninventory:\n{inventory}",
            dir.display()
        ),
    )
    .expect("edge config");
    for config in [cloud, edge.clone()] {
        let mlfo = Mlfo::new(config).expect("mlfo");
        let mut stop = stop_rx.clone();
        tokio::spawn(mlfo::serve(mlfo, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = reqwest::Client::new();
    let intent = "intentID: bench\ntargets:\n  - id: all\n    operation: maximise\n    operand: synthetic.logreg.accuracy\n    constraints: {privacylevel: high, numround: 1, minav: 1, local_epochs: 1}\n";
    let mut took = Vec::new();
    for _ in 0..REPEATS {
        let reply: serde_json::Value = http
            .post("http://127.88.1.1:8000/v1/intents")
            .json(&serde_json::json!({ "intent": intent }))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("reply");
        let id = reply["id"].as_str().expect("id").to_owned();
        loop {
            let v: serde_json::Value = http
                .get(format!("http://127.88.1.1:8000/v1/intents/{id}"))
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            let state = v["state"].as_str().unwrap_or_default();
            if ["completed", "failed", "lost", "cancelled"].contains(&state) {
                assert_eq!(state, "completed", "{v:#}");
                took.push(v["timings"]["clients_started_s"].as_f64().expect("timing"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = stop_tx.send(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    took
}

#[tokio::main]
async fn main() {
    let sizes: Vec<u8> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("client counts up to 255"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 50, 200]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().expect("tempdir");
    println!("| client agents | intents | median ms | p90 ms | max ms |");
    println!("|---:|---:|---:|---:|---:|");
    for n in sizes {
        let mut took = measure(n, dir.path()).await;
        took.sort_by(f64::total_cmp);
        println!(
            "| {n} | {} | {:.1} | {:.1} | {:.1} |",
            took.len(),
            percentile(&took, 0.5) * 1e3,
            percentile(&took, 0.9) * 1e3,
            took.last().copied().unwrap_or_default() * 1e3
        );
    }
}
