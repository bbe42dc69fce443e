//! `dmo run` end to end on the local backend: the CI scenario (3 cohorts,
//! 8 clients, 3 rounds) as real processes; results checked, and nothing
//! left running or listening afterwards.

use crate::util::REPO;
use std::path::Path;
use std::process::Command;

const RUN_BYTE: u8 = 71;

/// `dmo node` and `dmo mlfo` processes of a run: their command line names
/// its loopback addresses (agents) or its results directory (MLFOs).
fn leftover(run: u8, out: &Path) -> Vec<String> {
    let needle = format!("127.{run}.");
    let out = out.display().to_string();
    all_processes()
        .into_iter()
        .filter(|c| c.contains(&needle) || c.contains(&out))
        .collect()
}

fn all_processes() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("dmo") && (c.contains(" node ") || c.contains(" mlfo ")))
        .collect()
}

#[test]
fn the_ci_scenario_runs_reports_and_cleans_up() {
    let _load = testkit::shared();
    let cwd = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args(["run", &format!("{REPO}/scenarios/ci-small.yaml")])
        .args(["--out", "results", "--run-byte", &RUN_BYTE.to_string()])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let out = cwd.path().join("results");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("recorded, not enforced"), "{stderr}");

    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.as_path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["schema"], 1);
    assert_eq!(s["scenario"], "ci-small");
    assert_eq!(s["ok"], true);
    assert_eq!(s["testbed"]["backend"], "local");
    assert_eq!(s["testbed"]["clients"], 8);
    let jobs = s["jobs"].as_array().unwrap();
    let cohorts: Vec<(&str, usize)> = jobs
        .iter()
        .map(|j| {
            (
                j["cohort"].as_str().unwrap(),
                j["clients"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(cohorts, [("cohort1", 4), ("cohort2", 2), ("cohort3", 2)]);
    for j in jobs {
        assert_eq!(j["state"], "completed", "{j:#}");
        let rounds = j["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 3);
        for r in rounds {
            assert!(r["participants"].as_u64().unwrap() >= 1);
            assert!(r["bytes_sent"].as_u64().unwrap() > 0);
        }
        let initial = j["initial_accuracy"].as_f64().unwrap();
        let last = j["final_accuracy"].as_f64().unwrap();
        assert!(last > initial, "accuracy rose: {initial} -> {last}");
        let t = &j["orchestration"];
        for key in [
            "momo_round_trip_s",
            "clients_started_s",
            "first_round_s",
            "done_s",
        ] {
            assert!(t[key].as_f64().unwrap() > 0.0, "{key}: {t}");
        }
    }
    let csv = std::fs::read_to_string(out.as_path().join("rounds.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 9);
    let html = std::fs::read_to_string(out.as_path().join("report.html")).unwrap();
    // Accuracy, loss, round durations, the timeline, the topology with
    // the plans, the wide-area bytes per round.
    assert_eq!(html.matches("<svg").count(), 6);
    assert!(html.contains("<h2>Topology and plan</h2>"));
    assert!(html.contains("<h2>Plan and outcome</h2>"));
    assert!(Path::new(&out.as_path().join("logs/mo.1.log")).exists());
    assert!(Path::new(&out.as_path().join("logs/fc.10.log")).exists());

    let left = leftover(RUN_BYTE, out.as_path());
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(
        testbed::local::listeners_in_run(RUN_BYTE).is_empty(),
        "still listening: {:?}",
        testbed::local::listeners_in_run(RUN_BYTE)
    );

    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .arg("report")
        .arg(out.as_path())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(out.as_path().join("report.html")).unwrap(),
        html
    );
}

#[test]
fn ctrl_c_stops_the_run_and_every_host() {
    let _load = testkit::shared();
    stops_on_signal("-INT", 73);
}

#[test]
fn sigterm_stops_the_run_and_every_host_as_ctrl_c_does() {
    let _load = testkit::shared();
    stops_on_signal("-TERM", 77);
}

/// Starts a long run on run byte `r`, sends it `signal` (a `kill` flag)
/// once a job trains, and checks that it ends cancelled with every host
/// stopped.
fn stops_on_signal(signal: &str, r: u8) {
    let dir = tempfile::tempdir().unwrap();
    let long = std::fs::read_to_string(format!("{REPO}/scenarios/ci-small.yaml"))
        .unwrap()
        .replace("numround: \"3\"", "numround: \"5000\"");
    let scenario = dir.path().join("long.yaml");
    std::fs::write(&scenario, long).unwrap();
    let out = dir.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .args(["--run-byte", &r.to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the edge MLFO has a job training.
    let start = std::time::Instant::now();
    loop {
        let log = std::fs::read_to_string(out.join("logs/mo.1.log")).unwrap_or_default();
        if log.contains("HTTP Intent took") {
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "no intent deployed: {log}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!testbed::local::listeners_in_run(r).is_empty());
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    assert!(
        testbed::local::listeners_in_run(r).is_empty(),
        "still listening: {:?}",
        testbed::local::listeners_in_run(r)
    );
    let left = leftover(r, &out);
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn a_real_prometheus_scrapes_every_host_of_a_secured_run_and_its_answers_are_saved() {
    let _load = testkit::shared();
    assert!(
        Path::new("/usr/bin/prometheus").exists(),
        "Prometheus is missing: apt-get install prometheus (bash .ci/run does)"
    );
    const R: u8 = 74;
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::fs::read_to_string(format!("{REPO}/scenarios/ci-small.yaml")).unwrap()
        + "prometheus: { enabled: true, scrape_interval_s: 0.5 }\n";
    let path = dir.path().join("prom.yaml");
    std::fs::write(&path, scenario).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .args(["--run-byte", &R.to_string()])
        // Tokens on: Prometheus still scrapes /metrics, which stays open.
        .args(["--security", "on"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["testbed"]["authenticated"], true);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    let rounds = m["fl_server_rounds_total"].as_array().unwrap();
    let mut per_intent: Vec<(String, f64)> = rounds
        .iter()
        .map(|s| {
            assert_eq!(s["metric"]["job"], "node", "{s}");
            (
                s["metric"]["intent"].as_str().unwrap().to_owned(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    per_intent.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        per_intent,
        [
            ("edgeintent01".to_owned(), 3.0),
            ("edgeintent02".to_owned(), 3.0),
            ("edgeintent03".to_owned(), 3.0)
        ]
    );
    let latency = m["mlfo_orchestration_latency_seconds_count"]
        .as_array()
        .unwrap();
    let started = latency
        .iter()
        .find(|s| s["metric"]["phase"] == "clients_started")
        .unwrap_or_else(|| panic!("{latency:?}"));
    assert_eq!(started["metric"]["mlfo"], "mo.1");
    assert_eq!(started["metric"]["host"], "mo.1");
    assert_eq!(started["value"], 3.0);
    assert!(testbed::local::listeners_in_run(R).is_empty());
    assert!(out.join("prometheus").is_dir(), "the time series are kept");
}

#[test]
fn a_bandwidth_cap_on_the_local_backend_is_noted_not_applied() {
    let _load = testkit::shared();
    const R: u8 = 75;
    let cwd = tempfile::tempdir().unwrap();
    crate::util::capped_ci_scenario(cwd.path());
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args(["run", "capped.yaml", "--out", "results", "--run-byte"])
        .arg(R.to_string())
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.path().join("results/summary.json")).unwrap())
            .unwrap();
    let job = &s["jobs"][0];
    assert_eq!(job["state"], "completed");
    let note = job["notes"][0].as_str().unwrap();
    assert!(
        note.starts_with("max_bandwidth_mbps 10: not applied"),
        "{note}"
    );
    assert!(s["jobs"][1]["notes"].is_null(), "{}", s["jobs"][1]);
    let report = std::fs::read_to_string(cwd.path().join("results/report.html")).unwrap();
    assert!(report.contains("not applied"));
}

#[test]
fn privacy_medium_trains_under_central_dp_and_a_tiny_local_epsilon_drowns_the_updates() {
    let _load = testkit::shared();
    const R: u8 = 76;
    let cwd = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(format!("{REPO}/scenarios/ci-small.yaml")).unwrap();
    let base = r#"constraints: { avgalgo: FedAvg, fracfit: "0.5", minfit: "1", minav: "1", numround: "3" }"#;
    assert_eq!(text.matches(base).count(), 3, "the CI scenario's intents");
    // Cohort 1: privacylevel medium (central DP, adaptive clipping);
    // cohort 2: local DP with epsilon 0.01 (noise std ~ 485 per weight).
    let text = text
        .replacen(
            base,
            r#"constraints: { fracfit: "1", minfit: "4", minav: "4", numround: "8", privacylevel: medium }"#,
            1,
        )
        .replacen(
            base,
            r#"constraints: { fracfit: "1", minfit: "2", minav: "2", numround: "8", dp: local, dp_epsilon: 0.01 }"#,
            1,
        );
    let text = text.replace(
        "min_final_accuracy: { all: 0.5 }",
        "min_final_accuracy: { cohort1: 0.7 }",
    );
    std::fs::write(cwd.path().join("dp.yaml"), text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args(["run", "dp.yaml", "--out", "results", "--run-byte"])
        .arg(R.to_string())
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.path().join("results/summary.json")).unwrap())
            .unwrap();
    let accuracies = |k: usize| -> Vec<f64> {
        s["jobs"][k]["rounds"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["accuracy"].as_f64())
            .collect()
    };
    let central = accuracies(0);
    assert_eq!(central.len(), 8);
    assert!(
        central[7] > 0.7 && central[7] > central[0] + 0.2,
        "central DP with noise multiplier 0.1 still learns: {central:?}"
    );
    let local = accuracies(1);
    assert!(
        local.iter().all(|a| *a < 0.5),
        "epsilon 0.01 noise leaves nothing to learn: {local:?}"
    );
    let log = std::fs::read_to_string(cwd.path().join("results/logs/fed.1.log"))
        .unwrap_or_default()
        + &std::fs::read_to_string(cwd.path().join("results/logs/fed.2.log")).unwrap_or_default();
    assert!(
        log.contains("central DP round"),
        "the cloud's server clipped and noised"
    );
}
