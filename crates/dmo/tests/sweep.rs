//! `dmo sweep` and `dmo compare` as users run them: a 2x2 sweep of the CI
//! scenario on the local backend, its CSV and page, a rerun that reuses
//! every finished point, and a bad sweep refused before anything runs.

use crate::util::REPO;
use std::process::Command;

#[test]
fn a_two_by_two_sweep_of_the_ci_scenario_writes_its_csv_and_page_and_resumes() {
    let _load = testkit::shared();
    let cwd = tempfile::tempdir().unwrap();
    let sweep = format!(
        "base: {REPO}/scenarios/ci-small.yaml\naxes:\n  - {{ name: topology.generate.bandwidth_mbit, values: [100, 500] }}\n  - {{ name: strategy, values: [FedAvg, FedMedian] }}\n"
    );
    std::fs::write(cwd.path().join("s.yaml"), sweep).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_dmo"))
            .args(["sweep", "s.yaml", "--out", "out", "--run-byte", "81"])
            .current_dir(cwd.path())
            .output()
            .unwrap()
    };
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = cwd.path().join("out");
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with(
        "point,repeat,topology.generate.bandwidth_mbit,strategy,wall_s,final_accuracy"
    ));
    let points: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.split(',').take(4).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        points,
        [
            "0,0,100,FedAvg",
            "1,0,100,FedMedian",
            "2,0,500,FedAvg",
            "3,0,500,FedMedian"
        ]
    );
    for l in &lines[1..] {
        let accuracy: f64 = l.split(',').nth(5).unwrap().parse().unwrap();
        assert!(accuracy > 0.5, "{l}");
        assert!(l.contains(",true,"), "{l}");
    }
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("points/p001-r0/summary.json")).unwrap())
            .unwrap();
    assert!(
        s["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["strategy"] == "FedMedian")
    );
    let html = std::fs::read_to_string(out.join("sweep.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        8,
        "four measures against two axes"
    );
    assert!(
        html.contains("<h2>Against strategy</h2>") && html.contains("1 = FedAvg, 2 = FedMedian")
    );
    // A rerun reuses every finished point.
    let before = std::fs::metadata(out.join("points/p000-r0/summary.json"))
        .unwrap()
        .modified()
        .unwrap();
    let o = run();
    assert!(o.status.success());
    let after = std::fs::metadata(out.join("points/p000-r0/summary.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "not run again");
    // Compare any runs on one page.
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args([
            "compare",
            "out/points/p000-r0",
            "out/points/p003-r0",
            "--out",
            "c.html",
        ])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(cwd.path().join("c.html")).unwrap();
    // The runs' own sweep axes, read from their point.json.
    for axis in [
        "Against strategy",
        "Against topology.generate.bandwidth_mbit",
    ] {
        assert!(page.contains(axis), "{axis}");
    }
    assert!(page.contains("FedMedian") && page.contains("<svg"));
}

#[test]
fn a_sweep_whose_point_breaks_the_scenario_is_refused_naming_it() {
    let _load = testkit::shared();
    let cwd = tempfile::tempdir().unwrap();
    let sweep = format!(
        "base: {REPO}/scenarios/ci-small.yaml\naxes:\n  - {{ name: satellite_loss_pct, values: [0, 120] }}\n"
    );
    std::fs::write(cwd.path().join("s.yaml"), sweep).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args(["sweep", "s.yaml", "--out", "out"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("point 1 (satellite_loss_pct=120): topology.generate.satellite_loss_pct: must be a percentage in [0, 100], got 120"),
        "{stderr}"
    );
    assert!(!cwd.path().join("out/points").exists(), "nothing ran");
}
