//! Bearer tokens on the MLFOs (no root): the REST API takes only its
//! users' tokens (401 without, 403 wrong, /healthz open), and the cloud's
//! Mo-Mo takes only its peers' tokens, so an edge MLFO with a wrong token
//! has its Deploy refused and its intent fails saying so, while one with a
//! right token gets past authentication (to wait for an aggregator).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn token_file(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let token = httpd::auth::generate();
    httpd::auth::write_token_file(&path, &token).unwrap();
    (path, token)
}

/// Serves the MLFO of `yaml` until the returned sender is dropped.
fn serve(yaml: &str) -> tokio::sync::oneshot::Sender<()> {
    let config = mlfo::MlfoConfig::from_yaml("mlfo.yaml", yaml).unwrap();
    let mlfo = mlfo::Mlfo::new(config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mlfo::serve(mlfo, async {
        let _ = stopped.await;
    }));
    stop
}

async fn wait_up(base: &str) {
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not come up");
}

async fn post_intent(base: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/v1/intents"))
        .json(&json!({"intent": "intentID: weld\ntargets:\n  - id: factory.all\n    operation: maximise\n    operand: robots.welding.accuracy\n    constraints: { privacylevel: high, numround: 1 }\n"}));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Follows intent `id` until `done` holds for its record; the record.
async fn follow(base: &str, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let record: Value = reqwest::Client::new()
            .get(format!("{base}/v1/intents/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&record) {
            return record;
        }
        last = record;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("intent {id} did not get there: {last}");
}

fn edge_yaml(
    dir: &Path,
    name: &str,
    listen: &str,
    momo: &str,
    users: &Path,
    token: &Path,
) -> String {
    format!(
        "name: {name}\nrole: edge\nlisten: {listen}\nparent: http://{momo}\nstate: {}\n\
         timeouts: {{ sbi_s: 2, sbi_attempts: 1, momo_s: 5 }}\n\
         auth: {{ user_tokens: {}, token: {} }}\n\
         inventory:\n  - {{ name: fc.10, url: 'http://127.0.0.1:1', role: client, cohort: cohort1 }}\n",
        dir.join(format!("{name}.sqlite")).display(),
        users.display(),
        token.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_need_their_token_and_an_edge_with_a_wrong_peer_token_is_refused_by_the_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (users, user_token) = token_file(d, "users.token");
    let (peers, _) = token_file(d, "peers.token");
    let (stranger, _) = token_file(d, "stranger.token");
    let [cloud_rest, momo, edge_a, edge_b] =
        [0; 4].map(|_| format!("127.0.0.1:{}", testkit::free_port()));
    let cloud = format!(
        "name: mo.cloud\nrole: cloud\nlisten: {cloud_rest}\nmomo_listen: {momo}\nstate: {}\n\
         auth: {{ user_tokens: {}, peer_tokens: {} }}\n",
        d.join("cloud.sqlite").display(),
        users.display(),
        peers.display()
    );
    let _stops = [
        serve(&cloud),
        serve(&edge_yaml(d, "mo.a", &edge_a, &momo, &users, &stranger)),
        serve(&edge_yaml(d, "mo.b", &edge_b, &momo, &users, &peers)),
    ];
    let (cloud_base, a, b) = (
        format!("http://{cloud_rest}"),
        format!("http://{edge_a}"),
        format!("http://{edge_b}"),
    );
    for base in [&cloud_base, &a, &b] {
        wait_up(base).await;
    }

    let (status, body) = post_intent(&a, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post_intent(&a, Some(&httpd::auth::generate())).await;
    assert_eq!(status, 403, "{body}");
    let listed = reqwest::get(format!("{cloud_base}/v1/intents"))
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 401, "the cloud's REST API too");

    // The stranger's Deploy is refused for its token.
    let (status, record) = post_intent(&a, Some(&user_token)).await;
    assert_eq!(status, 202, "{record}");
    let id = record["id"].as_str().unwrap();
    let failed = follow(&a, &user_token, id, |r| r["state"] == "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("refused this edge MLFO's token"),
        "{reason}"
    );
    assert!(reason.contains("auth.peer_tokens"), "{reason}");

    // The peer's Deploy gets through, to wait in the queue for an aggregator.
    let (status, record) = post_intent(&b, Some(&user_token)).await;
    assert_eq!(status, 202, "{record}");
    let id = record["id"].as_str().unwrap();
    let queued = follow(&b, &user_token, id, |r| {
        !r["queue"]["waiting_for"].is_null()
    })
    .await;
    let waiting = queued["queue"]["waiting_for"].as_str().unwrap();
    assert!(
        waiting.contains("the inventory has no aggregator"),
        "{waiting}"
    );
}

/// Serves a node agent over HTTPS with `cert`/`key` (its FL servers
/// too), taking `token`.
async fn https_agent(cert: &Path, key: &Path, tokens: &Path) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let agent = node::Agent::new(node::AgentConfig {
        ip: "127.0.0.1".parse().unwrap(),
        advertise: "127.0.0.1".into(),
        fl_port_base: testkit::free_port(),
        data_dir: None,
        threads: 1,
        tls_identity: Some(fl::tls::ServerTls::read(cert, key).unwrap()),
        tls_roots: None,
        group: None,
    });
    let security = httpd::Security {
        tokens: Some(std::sync::Arc::new(
            httpd::auth::Tokens::read(tokens).unwrap(),
        )),
        tls: Some(httpd::tls::server_config(cert, key).unwrap()),
    };
    tokio::spawn(node::serve(
        listener,
        agent,
        httpd::Limits::default(),
        security,
        std::future::pending(),
    ));
    format!("https://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_edge_reaches_its_cloud_and_the_cloud_its_https_aggregator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = [("host".to_owned(), vec!["127.0.0.1".parse().unwrap()])];
    httpd::certs::init(&d.join("pki"), &hosts, 1).unwrap();
    let (cert, key, ca) = (
        d.join("pki/host.pem"),
        d.join("pki/host.key"),
        d.join("pki/ca.pem"),
    );
    let (users, user_token) = token_file(d, "users.token");
    let (peers, _) = token_file(d, "peers.token");
    let aggregator = https_agent(&cert, &key, &peers).await;
    let tls = format!(
        "tls: {{ cert: {}, key: {}, ca: {} }}\n",
        cert.display(),
        key.display(),
        ca.display()
    );
    let [cloud_rest, momo, edge_rest] =
        [0; 3].map(|_| format!("127.0.0.1:{}", testkit::free_port()));
    let cloud = format!(
        "name: mo.cloud\nrole: cloud\nlisten: {cloud_rest}\nmomo_listen: {momo}\nstate: {}\n\
         auth: {{ user_tokens: {}, peer_tokens: {}, token: {} }}\n{tls}\
         inventory:\n  - {{ name: fed.1, url: '{aggregator}', role: aggregator }}\n",
        d.join("cloud.sqlite").display(),
        users.display(),
        peers.display(),
        peers.display(),
    );
    let edge = edge_yaml(d, "mo.1", &edge_rest, &momo, &users, &peers).replace(
        &format!("parent: http://{momo}"),
        &format!("parent: https://{momo}"),
    ) + &tls;
    let _stops = [serve(&cloud), serve(&edge)];
    let base = format!("https://{edge_rest}");
    let roots = httpd::tls::Roots::read(&ca).unwrap();
    let client = roots
        .client(reqwest::Client::builder())
        .unwrap()
        .build()
        .unwrap();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reqwest::get(format!("http://{edge_rest}/healthz"))
            .await
            .is_err(),
        "plain HTTP gets no answer from an HTTPS MLFO"
    );
    let body = json!({"intent": "intentID: weld\ntargets:\n  - id: factory.all\n    operation: maximise\n    operand: robots.welding.accuracy\n    constraints: { privacylevel: high, numround: 1 }\n"});
    let reply = client
        .post(format!("{base}/v1/intents"))
        .bearer_auth(&user_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 202);
    // Over Mo-Mo with TLS the cloud places the server on its HTTPS agent;
    // the edge's own client agent does not exist, so the intent fails there.
    let mut record = Value::Null;
    for _ in 0..200 {
        record = client
            .get(format!("{base}/v1/intents/weld"))
            .bearer_auth(&user_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if record["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = &record["jobs"][0]["server"];
    assert_eq!(server["agent_host"], "fed.1", "{record}");
    assert!(
        server["agent_url"]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{record}"
    );
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("fc.10"), "{reason}");
}
