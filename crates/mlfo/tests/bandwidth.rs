//! An intent's `max_bandwidth_mbps` on the real kernel (root): the edge
//! MLFO asks the testbed's network controller for a meter on each cohort
//! client's link and removes them when the intent ends; a refused meter
//! fails the deployment and rolls back; without a controller the intent
//! runs and its record says the cap was not applied. The cloud MLFO is a
//! socket that never answers, so each intent waits in deployment, after
//! its cap, until the test cancels it. Run bytes 232 and 233.

use mlfo::submission::Submission;
use mlfo::{IntentRecord, IntentState, Mlfo, MlfoConfig};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testbed::Topology;
use testbed::netns::controller::Controller;
use testbed::netns::meters::{Direction, Meters};
use testbed::netns::{NetnsTestbed, RunNames, sys};

/// Clients fc.10 and fc.11 on switch sw.
fn two_clients() -> Topology {
    Topology::from_yaml(
        "two",
        "hosts:\n  - { name: fc.10, role: client }\n  - { name: fc.11, role: client }\n\
         switches:\n  - { name: sw }\n\
         links:\n  - { a: fc.10, b: sw, bandwidth_mbit: 1000 }\n  - { a: fc.11, b: sw, bandwidth_mbit: 1000 }\n",
    )
    .unwrap()
}

const CAPPED: &str = "intentID: capped\ntargets:\n  - id: t\n    operation: maximise\n    \
    operand: synthetic.images.cnn.accuracy\n    constraints:\n      privacylevel: high\n      \
    sourcekind: handmnist\n      minav: 1\n      max_bandwidth_mbps: 10\n";

/// The testbed, its controller on a root-namespace port, and a cloud MLFO
/// that accepts connections and never answers.
struct Bench {
    bed: NetnsTestbed,
    meters: Arc<Meters>,
    controller: Option<Controller>,
    controller_url: String,
    silent_cloud: TcpListener,
    dir: tempfile::TempDir,
}

impl Bench {
    fn up(run: u8) -> Bench {
        let bed = NetnsTestbed::up(&two_clients(), run, 1).unwrap();
        let meters = Arc::new(Meters::new(bed.plan().clone()));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let controller_url = format!("http://{}", listener.local_addr().unwrap());
        let controller = Controller::start(
            meters.clone(),
            Vec::new(),
            vec![listener],
            httpd::Security::default(),
        )
        .unwrap();
        Bench {
            bed,
            meters,
            controller: Some(controller),
            controller_url,
            silent_cloud: TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// An edge MLFO over `clients`, with the controller when `controlled`.
    fn edge(&self, name: &str, clients: &[&str], controlled: bool) -> Mlfo {
        let mut yaml = format!(
            "name: {name}\nrole: edge\nlisten: 127.0.0.1:0\nparent: http://{}\nstate: {}\n\
             timeouts: {{ sbi_s: 5, sbi_attempts: 1, momo_s: 20 }}\ninventory:\n",
            self.silent_cloud.local_addr().unwrap(),
            self.dir.path().join(format!("{name}.sqlite")).display(),
        );
        for c in clients {
            yaml += &format!("  - {{ name: {c}, url: 'http://127.0.0.1:1', role: client }}\n");
        }
        if controlled {
            yaml += &format!("network_controller: {}\n", self.controller_url);
        }
        Mlfo::new(MlfoConfig::from_yaml("edge.yaml", &yaml).unwrap()).unwrap()
    }
}

async fn submit(mlfo: &Mlfo) -> IntentRecord {
    mlfo.submit(&Submission {
        file: "capped.yaml".into(),
        document: CAPPED.as_bytes().to_vec(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Waits until `done` holds for the intent's record.
async fn wait_for(mlfo: &Mlfo, id: &str, done: impl Fn(&IntentRecord) -> bool) -> IntentRecord {
    let start = Instant::now();
    loop {
        let record = mlfo.intent(id).unwrap();
        if done(&record) {
            return record;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "intent {id} stuck: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The htb classes on `dev` in `ns`.
fn classes(ns: &str, dev: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "tc", "class", "show", "dev", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_cap_meters_each_client_until_the_intent_ends() {
    testkit::require_root();
    let run = 232;
    {
        let bench = Bench::up(run);
        let mlfo = bench.edge("mo.1", &["fc.10", "fc.11"], true);
        let id = submit(&mlfo).await.id;
        let record = wait_for(&mlfo, &id, |r| r.meters.len() == 2).await;
        assert!(record.notes.is_empty(), "{:?}", record.notes);
        let meters = bench.meters.list();
        let hosts: Vec<_> = meters.iter().filter_map(|m| m.spec.host.clone()).collect();
        assert_eq!(hosts.len(), 2);
        assert!(hosts.contains(&"fc.10".to_owned()) && hosts.contains(&"fc.11".to_owned()));
        for m in &meters {
            assert_eq!(m.spec.direction, Some(Direction::Both));
            assert_eq!(m.spec.rate_mbit, 10.0);
            assert_eq!(m.applied_on.len(), 2, "{m:?}");
        }
        let host_ns = bench.bed.plan().host("fc.10").unwrap().ns.clone();
        assert!(classes(&host_ns, "eth0").contains("rate 10Mbit"));

        let cancelled = mlfo.cancel(&id).await.unwrap();
        assert_eq!(cancelled.state, IntentState::Cancelled);
        // The Deploy was sent, so a Release is too; the silent cloud never answers it.
        let reason = cancelled.reason.unwrap_or_default();
        assert!(
            reason.starts_with("cancelled; while stopping: cloud MLFO (Mo-Mo Release): "),
            "{reason}"
        );
        assert!(bench.meters.list().is_empty(), "meters left after cancel");
        assert!(!classes(&host_ns, "eth0").contains("rate 10Mbit"));

        // A client the controller does not know: the deployment fails with
        // the controller's reason and the other client's meter is removed.
        let mlfo = bench.edge("mo.2", &["fc.10", "ghost"], true);
        let id = submit(&mlfo).await.id;
        let failed = wait_for(&mlfo, &id, |r| r.state.is_final()).await;
        assert_eq!(failed.state, IntentState::Failed);
        let reason = failed.reason.unwrap_or_default();
        assert!(
            reason.starts_with("bandwidth cap of 10 Mbit/s: ") && reason.contains("\"ghost\""),
            "{reason}"
        );
        assert!(bench.meters.list().is_empty(), "rolled back");
    }
    assert!(!sys::namespaces().iter().any(|n| RunNames::new(run).owns(n)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_controller_the_cap_is_noted_and_a_dead_one_fails_the_intent() {
    testkit::require_root();
    let run = 233;
    {
        let mut bench = Bench::up(run);
        let mlfo = bench.edge("mo.1", &["fc.10"], false);
        let id = submit(&mlfo).await.id;
        let record = wait_for(&mlfo, &id, |r| !r.notes.is_empty()).await;
        assert!(
            record.notes[0].contains("max_bandwidth_mbps 10: not applied"),
            "{:?}",
            record.notes
        );
        assert!(!record.state.is_final());
        assert!(bench.meters.list().is_empty());
        mlfo.cancel(&id).await.unwrap();

        bench.controller = None;
        let mlfo = bench.edge("mo.2", &["fc.10"], true);
        let id = submit(&mlfo).await.id;
        let failed = wait_for(&mlfo, &id, |r| r.state.is_final()).await;
        assert_eq!(failed.state, IntentState::Failed);
        let reason = failed.reason.unwrap_or_default();
        assert!(
            reason.contains("network controller") && reason.contains(&bench.controller_url),
            "{reason}"
        );
    }
    assert!(!sys::namespaces().iter().any(|n| RunNames::new(run).owns(n)));
}
