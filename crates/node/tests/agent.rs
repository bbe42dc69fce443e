//! The node agent as the MLFO uses it: start an agent, post the prototype's
//! forms and the JSON API over real HTTP, follow the jobs, scrape metrics.

use node::{Agent, AgentConfig};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts an agent on 127.0.0.1:0 whose FL servers start at `fl_port_base`.
async fn agent(fl_port_base: u16) -> SocketAddr {
    guarded_agent(fl_port_base, httpd::Security::default()).await
}

/// Starts an agent as [`agent`] does, admitting the callers `security` admits.
async fn guarded_agent(fl_port_base: u16, security: httpd::Security) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let agent = Agent::new(AgentConfig {
        ip: "127.0.0.1".parse().expect("ip"),
        advertise: "127.0.0.1".into(),
        fl_port_base,
        data_dir: None,
        threads: 1,
        tls_identity: None,
        tls_roots: None,
        group: None,
    });
    tokio::spawn(node::serve(
        listener,
        agent,
        httpd::Limits::default(),
        security,
        std::future::pending(),
    ));
    addr
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection.
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<(&str, String)>) -> Reply {
    http_with(addr, method, path, body, "").await
}

/// One HTTP/1.1 request with extra header lines `headers`.
async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, String)>,
    headers: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}");
    let payload = match body {
        Some((ct, b)) => {
            req += &format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len());
            b
        }
        None => String::new(),
    };
    req += "\r\n";
    req += &payload;
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("response head");
    let status = head[9..12].parse().expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Reply {
        status,
        content_type,
        body: body.to_owned(),
    }
}

async fn form(addr: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Reply {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    http(
        addr,
        "POST",
        path,
        Some(("application/x-www-form-urlencoded", body)),
    )
    .await
}

async fn post_json(addr: SocketAddr, path: &str, body: Value) -> Reply {
    http(
        addr,
        "POST",
        path,
        Some(("application/json", body.to_string())),
    )
    .await
}

/// Polls a job until it leaves starting/running, or panics after `limit`.
async fn wait_done(addr: SocketAddr, id: &str, limit: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let job = http(addr, "GET", &format!("/v1/jobs/{id}"), None)
            .await
            .json();
        let state = job["state"].as_str().unwrap_or_default().to_owned();
        if state != "starting" && state != "running" {
            return job;
        }
        assert!(t0.elapsed() < limit, "job {id} still {state}: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn with_tokens_every_form_and_json_route_needs_the_mlfos_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("agent.tokens");
    let token = httpd::auth::generate();
    httpd::auth::write_token_file(&file, &token).expect("token file");
    let tokens = httpd::auth::Tokens::read(&file).expect("tokens");
    let addr = guarded_agent(testkit::free_port(), httpd::Security::tokens(tokens)).await;
    let form_body = || {
        Some((
            "application/x-www-form-urlencoded",
            "server=127.0.0.1:9&cohort=cohort1&cohortsize=1&dataset=synthetic".to_owned(),
        ))
    };
    // A cross-site form post carries no Authorization header: refused before
    // the agent opens any connection.
    let cli = http(addr, "POST", "/cli", form_body()).await;
    assert_eq!(cli.status, 401, "{}", cli.body);
    assert!(cli.body.contains("bearer token"), "{}", cli.body);
    let wrong = format!("Authorization: Bearer {}\r\n", httpd::auth::generate());
    let serv = http_with(addr, "POST", "/serv", form_body(), &wrong).await;
    assert_eq!(serv.status, 403, "{}", serv.body);
    let stop = http(addr, "DELETE", "/v1/jobs/j1", None).await;
    assert_eq!(stop.status, 401, "stopping a job needs the token too");
    let right = format!("Authorization: Bearer {token}\r\n");
    let jobs = http_with(addr, "GET", "/v1/jobs", None, &right).await;
    assert_eq!(jobs.status, 200, "{}", jobs.body);
    assert_eq!(
        jobs.json(),
        json!([]),
        "nothing was started by the refused posts"
    );
    assert_eq!(http(addr, "GET", "/healthz", None).await.status, 200);
    let metrics = http(addr, "GET", "/metrics", None).await;
    assert_eq!(metrics.status, 200, "Prometheus scrapes without a token");
    assert!(
        !metrics.body.contains(&token),
        "metrics never show the token"
    );
}

#[tokio::test]
async fn differential_privacy_settings_out_of_range_are_refused_naming_the_field() {
    let addr = agent(testkit::free_port()).await;
    let cases = [
        (
            "/v1/servers",
            json!({"dp": {"noise_multiplier": 1.0, "clipping_norm": -1.0}}),
            "dp.clipping_norm: must be a number in (0",
        ),
        (
            "/v1/servers",
            json!({"min_fit": 2, "min_available": 2, "dp": {"noise_multiplier": 1.0, "clipping_norm": 0.1, "adaptive": true}}),
            "dp.clipped_count_stddev: 0.1 (default: the 2 sampled clients / 20) is too low",
        ),
        (
            "/v1/servers",
            json!({"dp": {"noise_multiplier": 1.0, "clipping_norm": 1.0, "sigma": 2}}),
            "unknown field `sigma`",
        ),
        (
            "/v1/clients",
            json!({"server": "127.0.0.1:9", "dataset": "synthetic", "model": "logreg",
                   "local_dp": {"clipping_norm": 1.0, "epsilon": 0.0, "delta": 1e-5}}),
            "local_dp.epsilon: must be a number in (0, 10000]",
        ),
    ];
    for (path, body, expected) in cases {
        let reply = post_json(addr, path, body.clone()).await;
        assert!(
            reply.status == 400 || reply.status == 422,
            "{body}: {}",
            reply.body
        );
        assert!(reply.body.contains(expected), "{body}: {}", reply.body);
    }
    let jobs = http(addr, "GET", "/v1/jobs", None).await.json();
    assert_eq!(jobs, json!([]), "nothing started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prototype_forms_run_a_federation_to_completion() {
    let base = testkit::free_port();
    let agent = agent(base).await;
    assert_eq!(http(agent, "GET", "/healthz", None).await.body, "ok");

    let serv = form(
        agent,
        "/serv",
        &[
            ("algo", "fedavg"),
            ("fracfit", "1"),
            ("minfit", "2"),
            ("minav", "2"),
            ("numround", "2"),
        ],
    )
    .await;
    assert_eq!(serv.status, 200, "{}", serv.body);
    assert_eq!(serv.body, format!("127.0.0.1:{base}"));

    let mut clients = Vec::new();
    for part in ["0", "1"] {
        let cli = form(
            agent,
            "/cli",
            &[
                ("source", "synthetic"),
                ("model", "logreg"),
                ("server", &serv.body),
                ("cohsize", "2"),
                ("part", part),
            ],
        )
        .await;
        assert_eq!(cli.status, 200, "{}", cli.body);
        clients.push(cli.body);
    }

    let jobs = http(agent, "GET", "/v1/jobs", None).await.json();
    let server = jobs
        .as_array()
        .and_then(|js| js.iter().find(|j| j["kind"] == "server"))
        .expect("a server job");
    let server_id = server["id"].as_str().expect("id").to_owned();
    assert_eq!(server["address"], serv.body.as_str());

    let done = wait_done(agent, &server_id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "completed", "{done}");
    let rounds = done["history"]["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{done}");
    let last = &rounds[1];
    assert_eq!(last["fit"]["completed"], 2, "{last}");
    assert!(
        last.to_string().contains("\"accuracy\""),
        "no accuracy in {last}"
    );

    for id in &clients {
        let job = wait_done(agent, id, Duration::from_secs(20)).await;
        assert_eq!(job["state"], "completed", "{job}");
        assert_eq!(job["kind"], "client");
        assert_eq!(job["summary"]["fits"], 2, "{job}");
    }

    let metrics = http(agent, "GET", "/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.content_type, "text/plain; version=0.0.4; charset=utf-8",
        "without Accept: the Prometheus text format"
    );
    assert!(
        metrics
            .body
            .contains("# TYPE fl_server_rounds_total counter")
    );
    let rounds_line = format!("fl_server_rounds_total{{job=\"{server_id}\"}} 2");
    assert!(
        metrics.body.contains(&rounds_line),
        "no {rounds_line:?} in\n{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("node_jobs{kind=\"client\",state=\"completed\"} 2"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains(&format!(
        "fl_client_train_examples_total{{job=\"{}\"}}",
        clients[0]
    )));
}

#[tokio::test]
async fn bad_form_values_get_a_400_that_names_the_field() {
    let agent = agent(testkit::free_port()).await;
    let serv = form(
        agent,
        "/serv",
        &[
            ("algo", "fedavg"),
            ("fracfit", "abc"),
            ("minfit", "1"),
            ("minav", "1"),
            ("numround", "2"),
        ],
    )
    .await;
    assert_eq!(serv.status, 400);
    assert_eq!(
        serv.body,
        r#"fracfit: must be a number in (0, 1], got "abc""#
    );

    let serv = form(agent, "/serv", &[("algo", "fedavg"), ("fracfit", "0.5")]).await;
    assert_eq!(serv.status, 400);
    assert_eq!(serv.body, "minfit: missing; must be a whole number >= 1");

    let cli = form(
        agent,
        "/cli",
        &[
            ("source", "imagenet"),
            ("model", "simple"),
            ("server", "10.0.0.3:6000"),
            ("cohsize", "2"),
            ("part", "0"),
        ],
    )
    .await;
    assert_eq!(cli.status, 400);
    assert!(
        cli.body.starts_with(r#"source: must be a dataset: mnist"#),
        "{}",
        cli.body
    );
    assert!(cli.body.ends_with(r#"got "imagenet""#), "{}", cli.body);

    let cli = form(
        agent,
        "/cli",
        &[
            ("source", "handmnist"),
            ("model", "simple"),
            ("server", "10.0.0.3:6000"),
            ("cohsize", "2"),
            ("part", "2"),
        ],
    )
    .await;
    assert_eq!(cli.status, 400);
    assert_eq!(
        cli.body,
        r#"part: must be a whole number below cohsize (2), got "2""#
    );

    let big = "x".repeat(node::router::BODY_LIMIT_BYTES + 1);
    let too_big = form(agent, "/serv", &[("algo", &big)]).await;
    assert_eq!(too_big.status, 413);
    assert_eq!(http(agent, "GET", "/v1/jobs/j99", None).await.status, 404);
    assert_eq!(http(agent, "GET", "/v1/jobs", None).await.body, "[]");
}

#[tokio::test]
async fn deleting_a_running_server_stops_it_and_frees_its_port() {
    let agent = agent(testkit::free_port()).await;
    let created = post_json(
        agent,
        "/v1/servers",
        json!({"strategy": "fedprox", "strategy_params": {"proximal_mu": 0.5}, "rounds": 1,
               "min_available": 5, "labels": {"intent": "edgeintent01"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let id = created["id"].as_str().expect("id");
    let address = created["address"].as_str().expect("address");

    let job = http(agent, "GET", &format!("/v1/jobs/{id}"), None)
        .await
        .json();
    assert_eq!(job["state"], "running", "{job}");
    assert_eq!(job["config"]["strategy_params"]["proximal_mu"], 0.5);

    let stopped = http(agent, "DELETE", &format!("/v1/jobs/{id}"), None).await;
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    let stopped = stopped.json();
    assert_eq!(stopped["state"], "stopped");
    assert!(stopped["finished_unix_s"].as_f64().is_some());
    std::net::TcpListener::bind(address).expect("the stopped server's port is free");
}

#[tokio::test]
async fn a_client_of_an_unreachable_server_fails_naming_it() {
    let agent = agent(testkit::free_port()).await;
    let server = format!("127.0.0.1:{}", testkit::free_port());
    let created = post_json(
        agent,
        "/v1/clients",
        json!({"server": server, "dataset": "synthetic", "model": "logreg", "connect_attempts": 2}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let job = wait_done(agent, &id, Duration::from_secs(20)).await;
    assert_eq!(job["state"], "failed", "{job}");
    let reason = job["reason"].as_str().expect("reason");
    assert!(reason.contains(&server), "{reason}");

    let bad = post_json(
        agent,
        "/v1/clients",
        json!({"server": "nowhere", "dataset": "mnist", "model": "mlp"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        r#"server: must be HOST:PORT with a port in 1..=65535, got "nowhere""#
    );
}

/// The samples of `name` in a Prometheus text body: their labels and values.
fn samples(body: &str, name: &str) -> Vec<(String, f64)> {
    body.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once("} ")?;
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_show_each_fl_connections_tcp_statistics_while_it_is_open() {
    let base = testkit::free_port();
    let agent = agent(base).await;
    // The server waits for a second client, so the first stays connected.
    let created = post_json(
        agent,
        "/v1/servers",
        json!({"rounds": 1, "min_available": 2, "labels": {"intent": "i1"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let server_id = created["id"].as_str().expect("id").to_owned();
    let address = created["address"].as_str().expect("address").to_owned();
    let client = post_json(
        agent,
        "/v1/clients",
        json!({"server": address, "dataset": "synthetic", "model": "logreg"}),
    )
    .await;
    assert_eq!(client.status, 201, "{}", client.body);

    let series = format!("job=\"{server_id}\",intent=\"i1\",peer=\"127.0.0.1:");
    let t0 = Instant::now();
    let (body, rtt) = loop {
        let body = http(agent, "GET", "/metrics", None).await.body;
        let rtt = samples(&body, "fl_server_connection_rtt_seconds");
        if !rtt.is_empty() {
            break (body, rtt);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no connection in\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rtt.len(), 1, "one client, one connection: {rtt:?}");
    let (labels, rtt) = &rtt[0];
    let port: u16 = labels
        .strip_prefix(&series)
        .and_then(|p| p.strip_suffix('"'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("labels {labels:?}, expected {series}PORT\""));
    assert_ne!(port, base, "the peer is the client's end");
    assert!(*rtt > 0.0 && *rtt < 1.0, "loopback RTT {rtt} s");
    let cwnd = samples(&body, "fl_server_connection_cwnd_segments");
    assert!(
        cwnd.iter().any(|(l, c)| l == labels && *c >= 1.0),
        "{cwnd:?}"
    );
    let received = samples(&body, "fl_server_connection_received_bytes_total");
    assert!(
        received.iter().any(|(l, b)| l == labels && *b > 0.0),
        "{received:?}"
    );
    let lo = samples(&body, "host_network_receive_bytes_total");
    assert!(
        lo.iter().any(|(l, b)| l == "interface=\"lo\"" && *b > 0.0),
        "the agent's host interfaces: {lo:?}"
    );

    let stopped = http(agent, "DELETE", &format!("/v1/jobs/{server_id}"), None).await;
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    let t0 = Instant::now();
    loop {
        let body = http(agent, "GET", "/metrics", None).await.body;
        if !body.contains(labels.as_str()) {
            assert!(body.contains("# TYPE fl_server_connection_rtt_seconds gauge"));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the closed connection is still described:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every dataset, model and strategy name any layer takes, aliases
/// included, resolves in every other layer: the intent catalog, the ML
/// crate, the node agent's requests and the FL runtime.
#[test]
fn every_name_resolves_in_every_layer() {
    let aliases = ["handmnist", "fashionmnist", "cifar"];
    let intent_datasets = intent::Dataset::ALL.map(intent::Dataset::as_str);
    for name in intent_datasets.iter().copied().chain(aliases) {
        let ml = node::spec::dataset("dataset", name)
            .unwrap_or_else(|e| panic!("intent dataset {name}: {e}"));
        assert_eq!(
            intent::Dataset::from_name(name).map(|d| d.as_str()),
            Some(ml.as_str()),
            "{name}"
        );
    }
    for d in ml::datasets::DatasetName::ALL {
        assert!(
            intent::Dataset::from_name(d.as_str()).is_some(),
            "the catalog cannot name ml's dataset {}",
            d.as_str()
        );
    }
    let model_aliases = ["simple", "complex", "mobilenet"];
    let intent_models = intent::ModelName::ALL.map(intent::ModelName::as_str);
    for name in intent_models.iter().copied().chain(model_aliases) {
        let ml =
            node::spec::model("model", name).unwrap_or_else(|e| panic!("intent model {name}: {e}"));
        assert_eq!(
            intent::ModelName::from_name(name).map(|m| m.as_str()),
            Some(ml.as_str()),
            "{name}"
        );
    }
    for m in ml::ModelName::ALL {
        assert!(
            intent::ModelName::from_name(m.as_str()).is_some(),
            "the catalog cannot name ml's model {}",
            m.as_str()
        );
    }
    for kind in intent::StrategyKind::ALL {
        assert!(
            fl::strategy::StrategyConfig::from_name(kind.as_str()).is_some(),
            "the FL runtime has no strategy {kind}"
        );
    }
    for name in fl::strategy::STRATEGY_NAMES
        .iter()
        .copied()
        .chain(["multikrum", "multi-krum"])
    {
        assert!(
            fl::strategy::StrategyConfig::from_name(name).is_some(),
            "{name}"
        );
        assert!(
            intent::StrategyKind::from_name(name).is_some(),
            "an intent cannot name the FL runtime's strategy {name}"
        );
    }
}

/// Posts raw bytes to a central trainer's parts endpoint.
async fn post_part(address: &str, body: Vec<u8>) -> (u16, String) {
    let reply = reqwest::Client::new()
        .post(format!("http://{address}{}", node::central::PARTS_PATH))
        .body(body)
        .send()
        .await
        .expect("post");
    (reply.status().as_u16(), reply.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_centralised_trainer_pools_the_clients_parts_and_trains_pass_by_pass() {
    let agent = agent(testkit::free_port()).await;
    let created = post_json(
        agent,
        "/v1/servers",
        json!({"mode": "centralised", "dataset": "synthetic", "model": "logreg", "rounds": 3,
               "min_available": 3, "local_epochs": 1, "batch_size": 16, "learning_rate": 0.05,
               "evaluate": {"dataset": "synthetic", "model": "logreg"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let server = created["id"].as_str().expect("id").to_owned();
    let address = created["address"].as_str().expect("address").to_owned();

    // Not a part, and a part of the wrong dataset: refused, nothing held.
    let (status, why) = post_part(&address, b"hello".to_vec()).await;
    assert_eq!((status, why.contains("DMOPART")), (400, true), "{why}");
    let images = ml::datasets::registry::load(ml::datasets::DatasetName::SyntheticImages, None)
        .expect("generated");
    let rows: Vec<usize> = (0..10).collect();
    let wrong = ml::ClientData {
        train: images.train.subset(&rows),
        test: images.test.subset(&rows),
    };
    let (status, why) = post_part(&address, ml::data_part::encode("x/0", &wrong)).await;
    assert_eq!(status, 422, "{why}");
    assert!(why.contains("this trainer trains on synthetic"), "{why}");

    let mut clients = Vec::new();
    for index in 0..3 {
        let started = post_json(
            agent,
            "/v1/clients",
            json!({"mode": "centralised", "server": address, "dataset": "synthetic",
                   "model": "logreg", "num_clients": 3, "index": index,
                   "labels": {"cohort": "c1"}}),
        )
        .await;
        assert_eq!(started.status, 201, "{}", started.body);
        clients.push(started.json()["id"].as_str().expect("id").to_owned());
    }
    let (mut examples, mut uploaded) = (0, 0);
    for id in &clients {
        let job = wait_done(agent, id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "completed", "{job}");
        examples += job["summary"]["train_examples"].as_u64().expect("examples");
        uploaded += job["summary"]["uploaded_bytes"].as_u64().expect("bytes");
    }
    let job = wait_done(agent, &server, Duration::from_secs(120)).await;
    assert_eq!(job["state"], "completed", "{job}");
    let history = &job["history"];
    let rounds = history["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 3, "{history}");
    assert_eq!(history["strategy"], "centralised");
    assert_eq!(rounds[0]["fit"]["num_examples"].as_u64(), Some(examples));
    assert_eq!(rounds[0]["fit"]["completed"], 3);
    assert_eq!(rounds[0]["bytes_received"].as_u64(), Some(uploaded));
    assert_eq!(rounds[1]["bytes_received"], 0);
    let accuracy = |r: &Value| {
        r["central"]["metrics"]["accuracy"]
            .as_f64()
            .expect("accuracy")
    };
    let initial = history["initial_central"]["metrics"]["accuracy"]
        .as_f64()
        .expect("initial");
    assert!(
        accuracy(&rounds[2]) > initial + 0.2,
        "{initial} -> {history}"
    );
    assert!(
        rounds[2]["evaluate"]["metrics"]["accuracy"]
            .as_f64()
            .is_some()
    );

    // A part that comes after training started is refused, and its client fails saying so.
    let late = post_json(
        agent,
        "/v1/clients",
        json!({"mode": "centralised", "server": address, "dataset": "synthetic",
               "model": "logreg", "connect_attempts": 1}),
    )
    .await;
    let id = late.json()["id"].as_str().expect("id").to_owned();
    let job = wait_done(agent, &id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "failed", "{job}");
    let reason = job["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&address) || reason.contains("refused"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_centralised_trainer_needs_its_dataset_and_model() {
    let agent = agent(testkit::free_port()).await;
    let bad = post_json(
        agent,
        "/v1/servers",
        json!({"mode": "centralised", "model": "logreg"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.starts_with("dataset: missing; must be a dataset:")
            && bad.body.ends_with("(required by mode centralised)"),
        "{}",
        bad.body
    );
    let bad = post_json(agent, "/v1/servers", json!({"mode": "central"})).await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body.contains("federated") && bad.body.contains("centralised"),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn a_stopped_trainer_frees_its_port_while_it_waits_for_parts() {
    let agent = agent(testkit::free_port()).await;
    let created = post_json(
        agent,
        "/v1/servers",
        json!({"mode": "centralised", "dataset": "synthetic", "model": "logreg",
               "min_available": 2}),
    )
    .await
    .json();
    let id = created["id"].as_str().expect("id");
    let stopped = http(agent, "DELETE", &format!("/v1/jobs/{id}"), None).await;
    assert_eq!(stopped.json()["state"], "stopped");
    std::net::TcpListener::bind(created["address"].as_str().expect("address"))
        .expect("the stopped trainer's port is free");
}

#[tokio::test]
async fn huge_or_negative_round_timeouts_are_refused_naming_the_limit() {
    let agent = agent(testkit::free_port()).await;
    for bad in ["1e300", "-1", "0"] {
        let body: Value = serde_json::from_str(&format!("{{\"round_timeout_s\": {bad}}}")).unwrap();
        let reply = post_json(agent, "/v1/servers", body).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(
            reply
                .body
                .starts_with("round_timeout_s: must be seconds in (0, 86400]"),
            "{}",
            reply.body
        );
    }
    // The agent still answers.
    assert_eq!(http(agent, "GET", "/healthz", None).await.status, 200);
}

#[tokio::test]
async fn an_agent_limits_threads_per_client_and_servers_at_once() {
    let agent = agent(testkit::free_port()).await;
    let bad = post_json(
        agent,
        "/v1/clients",
        json!({"server": "127.0.0.1:1", "dataset": "synthetic", "model": "logreg", "threads": 2000}),
    )
    .await;
    assert_eq!(bad.status, 400);
    let most = node::spec::max_threads();
    assert_eq!(
        bad.body,
        format!(
            r#"threads: must be a whole number in 0..={most} (0: one per core; at most twice this machine's cores), got "2000""#
        )
    );
    // Twice the cores is allowed, one more is not.
    let over = post_json(
        agent,
        "/v1/clients",
        json!({"server": "127.0.0.1:1", "dataset": "synthetic", "model": "logreg", "threads": most + 1}),
    )
    .await;
    assert_eq!(over.status, 400, "{}", over.body);
    for _ in 0..node::jobs::MAX_SERVERS {
        let ok = post_json(agent, "/v1/servers", json!({"min_available": 2})).await;
        assert_eq!(ok.status, 201, "{}", ok.body);
    }
    let full = post_json(agent, "/v1/servers", json!({"min_available": 2})).await;
    assert_eq!(full.status, 503);
    assert!(
        full.body
            .starts_with("64 servers run on this agent, the limit is 64"),
        "{}",
        full.body
    );
    // A stopped server makes room again.
    let jobs = http(agent, "GET", "/v1/jobs", None).await.json();
    let first = jobs[0]["id"].as_str().expect("id").to_owned();
    http(agent, "DELETE", &format!("/v1/jobs/{first}"), None).await;
    let again = post_json(agent, "/v1/servers", json!({"min_available": 2})).await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edge_aggregator_job_serves_its_clients_as_one_client_upstream() {
    let agent = agent(testkit::free_port()).await;
    let cloud = post_json(
        agent,
        "/v1/servers",
        json!({"rounds": 2, "min_available": 1, "min_fit": 1, "min_evaluate": 1}),
    )
    .await;
    assert_eq!(cloud.status, 201, "{}", cloud.body);
    let cloud = cloud.json();
    let edge = post_json(
        agent,
        "/v1/servers",
        json!({"upstream": cloud["address"], "local_rounds": 2,
               "min_available": 2, "min_fit": 2, "min_evaluate": 2}),
    )
    .await;
    assert_eq!(edge.status, 201, "{}", edge.body);
    let edge = edge.json();
    for index in 0..2 {
        let client = post_json(
            agent,
            "/v1/clients",
            json!({"server": edge["address"], "dataset": "synthetic", "model": "logreg",
                   "num_clients": 2, "index": index}),
        )
        .await;
        assert_eq!(client.status, 201, "{}", client.body);
    }
    let cloud_id = cloud["id"].as_str().expect("id");
    let done = wait_done(agent, cloud_id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "completed", "{done}");
    let rounds = done["history"]["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2);
    assert!(rounds.iter().all(|r| r["fit"]["completed"] == 1), "{done}");
    let edge_done = wait_done(
        agent,
        edge["id"].as_str().expect("id"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(edge_done["state"], "completed", "{edge_done}");
    let local = edge_done["history"]["rounds"].as_array().expect("rounds");
    assert_eq!(local.len(), 4, "two local rounds per upstream round");
    assert!(
        local.iter().all(|r| r["fit"]["completed"] == 2),
        "{edge_done}"
    );
}

#[tokio::test]
async fn edge_aggregator_requests_name_the_field_at_fault() {
    let agent = agent(testkit::free_port()).await;
    for (body, start) in [
        (
            json!({"upstream": "nowhere"}),
            "upstream: must be HOST:PORT",
        ),
        (
            json!({"upstream": "127.0.0.1:1", "local_rounds": 0}),
            "local_rounds: must be a whole number in 1..=1000, got \"0\"",
        ),
        (
            json!({"local_rounds": 2}),
            "local_rounds: goes with upstream (an edge aggregator)",
        ),
        (
            json!({"upstream": "127.0.0.1:1", "evaluate": {"dataset": "synthetic", "model": "logreg"}}),
            "upstream: an edge aggregator has no central trainer",
        ),
    ] {
        let reply = post_json(agent, "/v1/servers", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.body.starts_with(start), "{body}: {}", reply.body);
    }
}

#[tokio::test]
async fn a_training_probe_times_steps_of_the_clients_data_part() {
    let agent = agent(testkit::free_port()).await;
    let probe = |body: Value| post_json(agent, "/v1/probes/training", body);
    let reply = probe(json!({
        "dataset": "synthetic-images", "model": "mlp", "num_clients": 4, "index": 1,
        "batch_size": 16, "steps": 3
    }))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let p = reply.json();
    let examples = p["examples"].as_u64().unwrap();
    assert!(examples > 0, "{p}");
    assert_eq!(
        p["steps_per_epoch"].as_u64().unwrap(),
        examples.div_ceil(16)
    );
    let (step, epoch) = (
        p["step_s"].as_f64().unwrap(),
        p["epoch_s"].as_f64().unwrap(),
    );
    assert!(step > 0.0, "{p}");
    assert!(
        (epoch - step * examples.div_ceil(16) as f64).abs() < 1e-9,
        "{p}"
    );
    assert_eq!(p["threads"], 1, "the agent's --threads");

    for (body, field) in [
        (
            json!({"dataset": "synthetic-images", "model": "mlp", "steps": 0}),
            "steps:",
        ),
        (
            json!({"dataset": "synthetic-images", "model": "mlp", "batch_size": 100000}),
            "batch_size:",
        ),
        (json!({"dataset": "nosuch", "model": "mlp"}), "dataset:"),
        (
            json!({"dataset": "synthetic-images", "model": "mlp", "index": 3}),
            "index:",
        ),
    ] {
        let reply = probe(body).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.body.starts_with(field), "{field}: {}", reply.body);
    }
}
