//! `dmo run` at scale on the local backend: 300 clients whose agents run
//! one process per campus (`client_processes: campus`), on Fashion-MNIST;
//! every cohort learns, each client keeps its own agent and address, and
//! nothing is left running or listening afterwards.

use crate::util::REPO;
use std::process::Command;

const RUN_BYTE: u8 = 78;

#[test]
fn three_hundred_clients_in_campus_processes_learn_and_leave_nothing_behind() {
    let _load = testkit::shared();
    let cwd = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(format!("{REPO}/scenarios/scale-1000.yaml")).unwrap();
    let text = text
        .replace(
            "generate: { cohorts: [500, 250, 250], campus_size: 250 }",
            "generate: { cohorts: [150, 75, 75], campus_size: 50 }",
        )
        .replace("numround: \"5\"", "numround: \"3\"")
        .replace("minav: \"500\"", "minav: \"150\"")
        .replace("minav: \"250\"", "minav: \"75\"")
        .replace("model: { kind: mlp,", "model: { kind: logreg,");
    assert!(
        text.contains("campus_size: 50"),
        "the scale scenario's topology"
    );
    std::fs::write(cwd.path().join("scale.yaml"), text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args(["run", "scale.yaml", "--out", "results", "--run-byte"])
        .arg(RUN_BYTE.to_string())
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("300 clients in 9 agent processes: estimated memory of the hosts"),
        "{stderr}"
    );
    let out = cwd.path().join("results");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["testbed"]["clients"], 300);
    let jobs = s["jobs"].as_array().unwrap();
    let sizes: Vec<usize> = jobs
        .iter()
        .map(|j| j["clients"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [150, 75, 75]);
    for j in jobs {
        assert_eq!(j["state"], "completed", "{j:#}");
        let initial = j["initial_accuracy"].as_f64().unwrap();
        let last = j["final_accuracy"].as_f64().unwrap();
        assert!(
            last > initial + 0.2,
            "{}: accuracy {initial} -> {last}",
            j["cohort"]
        );
        for r in j["rounds"].as_array().unwrap() {
            let sampled = r["participants"].as_u64().unwrap();
            let cohort = j["clients"].as_array().unwrap().len() as u64;
            assert_eq!(sampled, cohort / 2, "fraction fit 0.5 of {cohort}");
        }
    }
    // Six campus processes served the 300 clients, each from its own address.
    for n in 1..=6 {
        let log = std::fs::read_to_string(out.join(format!("logs/clients-campus{n}.log"))).unwrap();
        assert!(log.contains("node agents of 50 hosts listening"), "{log}");
        let hosts =
            std::fs::read_to_string(out.join(format!("state/clients-campus{n}.yaml"))).unwrap();
        assert_eq!(hosts.matches("\"listen\"").count(), 50);
        assert!(hosts.contains(&format!("\"127.{RUN_BYTE}.")), "{hosts}");
    }
    assert!(!out.join("logs/fc.10.log").exists());
    // Clients past the edge tier's 240 sit in the extra blocks (fc.250 at 10.0.64.1).
    let last = std::fs::read_to_string(out.join("state/clients-campus5.yaml")).unwrap();
    assert!(
        last.contains(&format!("\"127.{RUN_BYTE}.64.1:5000\"")),
        "{last}"
    );
    let clients: Vec<&str> = jobs[0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let names: Vec<String> = (10..160).map(|h| format!("fc.{h}")).collect();
    assert_eq!(clients, names, "cohort1's clients, each its own host");
    assert!(
        testbed::local::listeners_in_run(RUN_BYTE).is_empty(),
        "still listening: {:?}",
        testbed::local::listeners_in_run(RUN_BYTE)
    );
}

#[test]
fn grouped_clients_on_the_netns_backend_are_refused_before_anything_is_built() {
    let _load = testkit::shared();
    let cwd = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args(["run", &format!("{REPO}/scenarios/scale-1000.yaml")])
        .args(["--backend", "netns", "--out", "results", "--run-byte", "79"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains(
            "client_processes: grouping client agents in processes needs the local backend"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("1008 hosts"),
        "nothing was brought up: {stderr}"
    );
}
