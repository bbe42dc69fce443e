//! The `dmo` binary as a user runs it: help, honest placeholders, intent
//! validation exit codes, and argument errors that name the flag.

use std::process::{Command, Output};

fn dmo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args(args)
        .output()
        .expect("run dmo")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_lists_every_subcommand_and_version_prints() {
    let _load = testkit::shared();
    let out = dmo(&["--help"]);
    assert!(out.status.success());
    let help = text(&out);
    for sub in [
        "run", "intent", "fl", "node", "mlfo", "testbed", "datasets", "report", "certs",
    ] {
        assert!(
            help.contains(&format!("  {sub} ")),
            "missing {sub} in {help}"
        );
        assert!(dmo(&[sub, "--help"]).status.success(), "{sub} --help");
    }
    let version = text(&dmo(&["--version"]));
    assert_eq!(version.trim(), format!("dmo {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn certs_token_writes_a_private_token_that_the_agent_takes_and_a_bad_file_is_named() {
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.token");
    let out = dmo(&["certs", "token", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let token = std::fs::read_to_string(&file).unwrap();
    assert_eq!(token.trim().len(), 64);
    assert!(
        !text(&out).contains(token.trim()),
        "the token is not printed"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bad = dir.path().join("bad.token");
    std::fs::write(&bad, "short\n").unwrap();
    let out = dmo(&[
        "node",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("--token-file") && said.contains("line 1"),
        "{said}"
    );
    assert!(said.contains("dmo certs token"), "{said}");
}

#[test]
fn certs_init_writes_a_ca_and_a_private_key_per_host_and_names_a_bad_host() {
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let c = certs.to_str().unwrap();
    let out = dmo(&[
        "certs",
        "init",
        c,
        "--host",
        "fed.1=10.0.0.11",
        "--host",
        "mo.1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    for f in ["ca.pem", "fed.1.pem", "mo.1.pem"] {
        let pem = std::fs::read_to_string(certs.join(f)).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{f}");
    }
    for f in ["ca.key", "fed.1.key", "mo.1.key"] {
        let mode = std::fs::metadata(certs.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let out = dmo(&["certs", "init", c, "--host", "fed 1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--host \"fed 1\""), "{}", text(&out));
    let out = dmo(&["certs", "init", c, "--host", "fed.1=10.0.0.300"]);
    assert!(
        text(&out).contains("is not an IP address"),
        "{}",
        text(&out)
    );
    let out = dmo(&["certs", "init", c]);
    assert!(
        text(&out).contains("--topology FILE or --host"),
        "{}",
        text(&out)
    );
    // A server given a key that is no key says which file.
    let out = dmo(&[
        "fl",
        "server",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        certs.join("fed.1.pem").to_str().unwrap(),
        "--tls-key",
        certs.join("fed.1.pem").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a PEM file with a PRIVATE KEY block"),
        "{}",
        text(&out)
    );
}

#[test]
fn testbed_down_needs_a_run_or_all_and_up_names_a_bad_file() {
    let _load = testkit::shared();
    let out = dmo(&["testbed", "down"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--run"), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("topo.yaml");
    std::fs::write(&bad, "hosts: [ { name: a, role: robot } ]\n").unwrap();
    let out = dmo(&["testbed", "up", bad.to_str().unwrap(), "--run-byte", "249"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("\"robot\" is not a role"),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_files_name_the_problem() {
    let _load = testkit::shared();
    let out = dmo(&["mlfo", "--config", "/nonexistent/mlfo.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("/nonexistent/mlfo.yaml"),
        "{}",
        text(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dmo(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("summary.json"), "{}", text(&out));
    let bad = dir.path().join("s.yaml");
    std::fs::write(
        &bad,
        "name: x\ntopology: { generate: { cohorts: [2] } }\nintents: []\n",
    )
    .unwrap();
    let out = dmo(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("s.yaml: intents: list at least one intent"),
        "{}",
        text(&out)
    );
}

#[test]
fn testbed_gen_writes_the_prototype_shape() {
    let _load = testkit::shared();
    let out = dmo(&["testbed", "gen", "--split", "6,2,2"]);
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(yaml.matches("role: client").count(), 10);
    assert_eq!(yaml.matches("role: aggregator").count(), 3);
    assert!(yaml.contains("address: 10.0.1.19"));
    let out = dmo(&["testbed", "gen", "--split", "9000,1001"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn intent_validate_accepts_the_seeds_and_rejects_bad_files() {
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("intent.yaml");
    std::fs::write(
        &good,
        "intentID: edgeintent01\ntargets:\n  - id: factory.all\n    operation: maximise\n    operand: robots.welding.accuracy\n    constraints:\n      privacylevel: high\n",
    )
    .unwrap();
    let out = dmo(&["intent", "validate", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"mnist\"") && stdout.contains("\"mlp\""),
        "{stdout}"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "intentID: x\ntargets:\n  - id: a\n    operation: maximise\n    operand: robots.welding.accuracy\n    constraints:\n      privacylevel: high\n      fracfit: 1.5\n",
    )
    .unwrap();
    let out = dmo(&[
        "intent",
        "validate",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("targets[0].constraints.fracfit: must be in (0, 1], got 1.5"),
        "{err}"
    );
}

#[test]
fn fl_arguments_are_checked_with_the_flag_named() {
    let _load = testkit::shared();
    let out = dmo(&["fl", "server", "--strategy", "fedsgd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("--strategy: unknown strategy \"fedsgd\"; known: fedavg,"),
        "{}",
        text(&out)
    );
    let out = dmo(&["fl", "simulate", "--fraction-fit", "0"]);
    assert!(
        text(&out).contains("--fraction-fit: must be in (0, 1], got 0"),
        "{}",
        text(&out)
    );
    let out = dmo(&[
        "fl",
        "client",
        "--server",
        "127.0.0.1:1",
        "--dataset",
        "imagenet",
    ]);
    assert!(text(&out).contains("--dataset"), "{}", text(&out));
    for (flag, value) in [
        ("--wait-timeout=-1", "-1"),
        ("--round-timeout=1e300", "1e300"),
    ] {
        let out = dmo(&["fl", "server", "--listen", "127.0.0.1:0", flag]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let name = flag.split('=').next().unwrap();
        assert!(
            text(&out).contains(&format!(
                "{name}: must be seconds in (0, 86400], got {value}"
            )),
            "{}",
            text(&out)
        );
    }
    let out = dmo(&["fl", "server", "--max-message-mb", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("invalid value '0' for '--max-message-mb <MAX_MESSAGE_MB>'")
            && text(&out).contains("1..=4095"),
        "{}",
        text(&out)
    );
}

#[test]
fn fl_server_and_clients_run_as_processes() {
    let _load = testkit::shared();
    let addr = testkit::free_loopback_addr();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.json");
    let server = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args([
            "fl",
            "server",
            "--listen",
            &addr,
            "--rounds",
            "3",
            "--min-available",
            "2",
            "--min-fit",
            "2",
        ])
        .args([
            "--history",
            history.to_str().unwrap(),
            "--strategy",
            "fedprox",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let clients: Vec<_> = (0..2)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_dmo"))
                .args([
                    "fl",
                    "client",
                    "--server",
                    &addr,
                    "--dataset",
                    "synthetic",
                    "--model",
                    "logreg",
                ])
                .args(["--num-clients", "2", "--index", &i.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let clients: Vec<Output> = clients
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success());
    for c in &clients {
        assert!(c.status.success(), "{}", text(c));
        assert!(
            text(c).contains("3 fits, 3 evaluates, 0 errors"),
            "{}",
            text(c)
        );
    }
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[2].starts_with("round 3/3  fit 2/2 ok"), "{lines:?}");
    let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&history).unwrap()).unwrap();
    assert_eq!(h["strategy"], "fedprox");
    assert_eq!(h["rounds"].as_array().unwrap().len(), 3);
}

#[test]
fn an_fl_server_stopped_by_sigterm_still_writes_its_history() {
    use std::io::BufRead;
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.json");
    // Port 0: no other test's server can answer in its place.
    let mut server = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args([
            "fl",
            "server",
            "--listen",
            "127.0.0.1:0",
            "--min-available",
            "2",
        ])
        .args(["--history", history.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let mut log = Vec::new();
    while !log
        .iter()
        .any(|l: &String| l.contains("FL server listening on"))
    {
        let line = seen
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("the server never listened ({e}): {log:?}"));
        log.push(line);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = server.wait().unwrap();
    log.extend(seen.try_iter());
    assert_eq!(status.code(), Some(143), "{log:?}");
    let h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&history).expect("history written")).unwrap();
    assert_eq!(h["error"], "stopped by a signal (SIGTERM or Ctrl-C)");
    assert_eq!(h["rounds"].as_array().unwrap().len(), 0);
}

#[test]
fn an_edge_aggregator_runs_between_a_server_and_its_clients_as_processes() {
    let _load = testkit::shared();
    let (cloud, edge) = (testkit::free_loopback_addr(), testkit::free_loopback_addr());
    let dmo_cmd = || Command::new(env!("CARGO_BIN_EXE_dmo"));
    let server = dmo_cmd()
        .args(["fl", "server", "--listen", &cloud, "--rounds", "2"])
        .args([
            "--min-available",
            "1",
            "--min-fit",
            "1",
            "--min-evaluate",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let aggregator = dmo_cmd()
        .args(["fl", "server", "--listen", &edge, "--upstream", &cloud])
        .args([
            "--local-rounds",
            "2",
            "--min-available",
            "2",
            "--min-fit",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let clients: Vec<_> = (0..2)
        .map(|i| {
            dmo_cmd()
                .args(["fl", "client", "--server", &edge, "--dataset", "synthetic"])
                .args([
                    "--model",
                    "logreg",
                    "--num-clients",
                    "2",
                    "--index",
                    &i.to_string(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let cloud_lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        cloud_lines.contains("round 2/2  fit 1/1 ok"),
        "{cloud_lines}"
    );
    let edge_out = aggregator.wait_with_output().unwrap();
    assert!(edge_out.status.success(), "{}", text(&edge_out));
    assert!(
        text(&edge_out).contains(&format!("edge aggregator of {cloud}")),
        "{}",
        text(&edge_out)
    );
    let edge_lines: Vec<String> = String::from_utf8_lossy(&edge_out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        edge_lines.len(),
        4,
        "two local rounds per upstream round: {edge_lines:?}"
    );
    assert!(
        edge_lines[3].starts_with("round 4  fit 2/2 ok"),
        "{edge_lines:?}"
    );
    for c in clients {
        let c = c.wait_with_output().unwrap();
        assert!(c.status.success(), "{}", text(&c));
        assert!(
            text(&c).contains("4 fits, 2 evaluates, 0 errors"),
            "{}",
            text(&c)
        );
    }
    let out = dmo(&["fl", "server", "--local-rounds", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--upstream"), "{}", text(&out));
}

#[test]
fn node_hosts_files_are_checked_and_each_problem_named() {
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[]", "lists 0 hosts; give 1 to 10000"),
        (
            "{ name: a }",
            "expected a list of { name, listen, tls_cert, tls_key }",
        ),
        (
            "[{ name: a, listen: 127.0.0.1:1 }, { name: b, listen: 127.0.0.1:1 }]",
            "hosts[1].listen: 127.0.0.1:1 is listed twice; give each host its own address",
        ),
        (
            "[{ name: a, listen: 127.0.0.1:1, tls_cert: a.pem }]",
            "hosts[0] (a): give tls_cert and tls_key together",
        ),
        (
            "[{ name: a, listen: 127.0.0.1:1, colour: red }]",
            "unknown field `colour`",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("hosts{i}.yaml"));
        std::fs::write(&path, body).unwrap();
        let out = dmo(&["node", "--hosts", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{body}");
        let t = text(&out);
        assert!(t.contains(want), "{body}: {t}");
    }
    let out = dmo(&["node", "--hosts", "/nonexistent/h.yaml"]);
    assert!(text(&out).contains("--hosts: reading /nonexistent/h.yaml"));
    let out = dmo(&["node", "--training-slots", "2"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--hosts"), "{}", text(&out));
}

#[test]
fn testbed_gen_places_clients_past_the_edge_tier_in_the_extra_blocks() {
    let _load = testkit::shared();
    let out = dmo(&[
        "testbed",
        "gen",
        "--split",
        "600,200,200",
        "--campus-size",
        "100",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(yaml.contains("name: fc.250"), "{yaml}");
    let t = testbed::Topology::from_yaml("gen.yaml", &yaml).unwrap();
    assert_eq!(t.hosts_with_role(testbed::Role::Client).count(), 1000);
    assert_eq!(t.host("fc.250").unwrap().address.to_string(), "10.0.64.1");
    assert_eq!(t.host("fc.1009").unwrap().address.to_string(), "10.0.67.10");
    assert_eq!(
        t.host("fc.1009").unwrap().campus.as_deref(),
        Some("campus10")
    );
    let out = dmo(&["testbed", "gen", "--clients", "10001", "--cohorts", "3"]);
    assert!(
        text(&out).contains("clients: 10001 is more than the 10000 clients the generator places")
    );
}
