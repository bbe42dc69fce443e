//! Plans made at submission (no root): an edge MLFO with the network's
//! declared figures and edge-aggregator hosts records each job's plan, and
//! refuses with 409 a deadline that no option can meet, before anything
//! starts. The agents and the cloud are addresses nothing listens on.

use serde_json::{Value, json};
use std::time::Duration;

/// An edge MLFO over two campuses of `per_campus` clients, each campus with
/// an edge-aggregator host, the satellite declared at `wan_mbit`.
fn config(dir: &std::path::Path, listen: &str, per_campus: usize, wan_mbit: f64) -> String {
    let mut yaml = format!(
        "name: mo.1\nrole: edge\nlisten: {listen}\nparent: http://127.0.0.1:1\nstate: {}\n\
         timeouts: {{ sbi_s: 2, sbi_attempts: 1 }}\n\
         network: {{ wan_mbit: {wan_mbit}, rtt_ms: 48, campus_mbit: 500, train_s: 0.5 }}\ninventory:\n",
        dir.join("edge.sqlite").display()
    );
    for campus in 1..=2 {
        yaml += &format!(
            "  - {{ name: fla.{campus}, url: 'http://127.0.0.1:1', role: edge-aggregator, campus: campus{campus} }}\n"
        );
        for i in 0..per_campus {
            yaml += &format!(
                "  - {{ name: fc.{campus}{i}, url: 'http://127.0.0.1:1', role: client, campus: campus{campus} }}\n"
            );
        }
    }
    yaml
}

const WELDING: &str = "intentID: weld\ntargets:\n  - id: factory.all\n    operation: maximise\n    \
    operand: robots.welding.accuracy\n    constraints: { privacylevel: high }\n";

async fn post(base: &str, body: Value) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .post(format!("{base}/v1/intents"))
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_no_option_meets_is_refused_with_409_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let listen = format!("127.0.0.1:{port}");
    let yaml = config(dir.path(), &listen, 10, 20.0);
    let mlfo = mlfo::Mlfo::new(mlfo::MlfoConfig::from_yaml("edge.yaml", &yaml).unwrap()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mlfo::serve(mlfo, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{listen}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/v1/intents")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 100 rounds of at least 0.5 s of training cannot end within 10 s.
    let (status, body) = post(
        &base,
        json!({"intent": WELDING, "constraints": {"numround": 100, "deadline_s": 10}}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("deadline_s 10: no option meets it; the fastest (hierarchical on campus1, campus2) is predicted at"),
        "{text}"
    );
    let (_, intents) = post_get(&base).await;
    assert_eq!(intents, json!([]), "nothing was stored or started");

    // One that fits is accepted with its plan: hierarchical over the slow
    // satellite, every combination of the two campuses predicted.
    let (status, record) = post(
        &base,
        json!({"intent": WELDING, "constraints": {"numround": 2, "deadline_s": 600}}),
    )
    .await;
    assert_eq!(status, 202, "{record}");
    let job = &record["jobs"][0];
    assert_eq!(job["aggregation"], "hierarchical", "{job}");
    let plan = &job["plan"];
    assert_eq!(plan["requested"], "auto");
    assert_eq!(plan["edge_campuses"], json!(["campus1", "campus2"]));
    assert_eq!(plan["options"].as_array().unwrap().len(), 4);
    let sources: Vec<&str> = plan["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.iter().all(|s| *s == "declared"),
        "no controller, no agent: {plan}"
    );
    let _ = stop.send(());
    let _ = server.await;
}

async fn post_get(base: &str) -> (u16, Value) {
    let reply = reqwest::get(format!("{base}/v1/intents")).await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}
