//! Metrics of every component: each `/metrics` passes `promtool check
//! metrics` (Debian package `prometheus`), and every query of the Grafana
//! dashboard names a metric we export.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A loopback node agent (FL ports from `fl_port_base`) running an FL
/// server made from `server` and one synthetic-data client of it with
/// `client_labels`; returns the agent and the server's and client's job ids.
async fn agent_with_fl_job(
    fl_port_base: u16,
    server: node::ServerRequest,
    client_labels: BTreeMap<String, String>,
) -> (node::Agent, String, String) {
    let agent = node::Agent::new(node::AgentConfig {
        ip: "127.0.0.1".parse().unwrap(),
        advertise: "127.0.0.1".into(),
        fl_port_base,
        data_dir: None,
        threads: 1,
        tls_identity: None,
        tls_roots: None,
        group: None,
    });
    let started = agent
        .start_server(server.into_spec(&node::spec::JSON_NAMES).unwrap())
        .await
        .unwrap();
    let client = node::ClientRequest {
        server: started.address.unwrap(),
        dataset: "synthetic".into(),
        model: "logreg".into(),
        labels: client_labels,
        ..Default::default()
    };
    let client = agent.start_client(client.into_spec(&node::spec::JSON_NAMES).unwrap());
    (agent, started.id, client.id)
}

/// A node agent's metrics after it ran a real one-round FL job (a server and a client).
fn agent_metrics() -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let labels = BTreeMap::from([("intent".to_owned(), "i1".to_owned())]);
        let server = node::ServerRequest {
            rounds: Some(1),
            min_fit: Some(1),
            min_available: Some(1),
            min_evaluate: Some(1),
            labels: labels.clone(),
            ..Default::default()
        };
        let (agent, server, client) = agent_with_fl_job(46100, server, labels).await;
        for _ in 0..600 {
            let done = [&server, &client]
                .iter()
                .all(|id| agent.job(id).unwrap().state == node::JobState::Completed);
            if done {
                return agent.metrics_text().unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the FL job did not complete: {:?}", agent.jobs());
    })
}

/// A node agent's metrics while an FL client is connected to its server
/// (which waits for a second one), so the connection families have samples.
fn agent_metrics_with_a_connection() -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = node::ServerRequest {
            min_available: Some(2),
            labels: BTreeMap::from([("intent".to_owned(), "i1".to_owned())]),
            ..Default::default()
        };
        let (agent, server, _) = agent_with_fl_job(46200, server, BTreeMap::new()).await;
        for _ in 0..300 {
            let text = agent.metrics_text().unwrap();
            if text.contains("fl_server_connection_rtt_seconds{") {
                agent.stop(&server).await.unwrap();
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the client did not connect: {:?}", agent.jobs());
    })
}

/// An MLFO's metrics with every family recorded once.
fn mlfo_metrics() -> String {
    let m = mlfo::metrics::Metrics::new("mo.1");
    m.latency("clients_started", 0.01);
    m.momo_call("client", "deploy", true);
    m.sbi_call("start_client", false);
    m.encode(&[("completed".to_owned(), 2)]).unwrap()
}

/// The netns testbed's own metrics (links, traffic hosts' TCP), as its
/// network controller serves them; no testbed needs to be up for the names.
fn testbed_metrics() -> String {
    let topology = testbed::generate(&testbed::GenOptions {
        cohorts: vec![2],
        ..testbed::GenOptions::default()
    })
    .unwrap();
    let plan =
        testbed::netns::NetPlan::new(&topology, testbed::netns::RunNames::new(254), false).unwrap();
    testbed::netns::exporter::text(&testbed::netns::exporter::registry(
        plan,
        vec!["app.1".to_owned()],
    ))
}

/// Sample names a text exposition can hold, from its `# TYPE` lines.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        for s in suffixes {
            names.insert(format!("{name}{s}"));
        }
    }
    names
}

fn promtool_check(what: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; bash .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{what}: promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_components_metrics_pass_promtool() {
    let _load = testkit::shared();
    // What /metrics serves to scrapers that do not ask for OpenMetrics.
    use fl::server::exposition::to_prometheus_text;
    promtool_check("node agent", &to_prometheus_text(&agent_metrics()));
    promtool_check(
        "node agent with an FL connection",
        &to_prometheus_text(&agent_metrics_with_a_connection()),
    );
    promtool_check("MLFO", &to_prometheus_text(&mlfo_metrics()));
    promtool_check("testbed", &to_prometheus_text(&testbed_metrics()));
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let _load = testkit::shared();
    let mut names = exported(&agent_metrics());
    names.extend(exported(&mlfo_metrics()));
    names.extend(exported(&testbed_metrics()));
    for name in [
        "testbed_link_transmit_bytes_total",
        "testbed_tcp_rtt_seconds",
        "fl_server_rounds_total",
        "fl_server_connection_rtt_seconds",
        "fl_server_connection_cwnd_segments",
        "host_network_receive_bytes_total",
    ] {
        assert!(names.contains(name), "{name} not in {names:?}");
    }
    let text = std::fs::read_to_string(format!("{REPO}/dashboards/dmo.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let tokens = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|t| {
                    ["fl_", "mlfo_", "node_", "host_", "testbed_"]
                        .iter()
                        .any(|p| t.starts_with(p))
                });
            let mut any = false;
            for token in tokens {
                any = true;
                checked += 1;
                assert!(
                    names.contains(token),
                    "panel {:?}: {token} is not exported; we export {names:?}",
                    panel["title"]
                );
            }
            assert!(
                any,
                "panel {:?} queries none of our metrics",
                panel["title"]
            );
        }
    }
    assert!(checked >= 32, "{checked}");
}
