//! End-to-end orchestration with real processes on loopback addresses: a
//! cloud MLFO, an edge MLFO, aggregator and client node agents, each a
//! `dmo` process bound to its own 127.R.T.H address (R differs per test so
//! the tests run side by side). Intents go in as the prototype's scripts
//! sent them (multipart `POST /receive`, by a Python script) and through
//! `dmo intent batch`; FL jobs train for real on generated data.

use reqwest::blocking::{Client, multipart};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn dmo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dmo"))
}

/// The processes of one test's testbed; all are killed when it drops.
struct Testbed {
    dir: tempfile::TempDir,
    r: u8,
    procs: Vec<(String, Child)>,
    http: Client,
}

impl Testbed {
    /// Aggregators fed.1.. at 127.R.0.(11..), clients fc.10.. at
    /// 127.R.1.(10..); `missing` clients are listed in the inventory but
    /// not started.
    fn start(r: u8, aggregators: u8, clients: u8, missing: &[u8]) -> Testbed {
        Self::start_with(r, aggregators, 1, clients, missing, "")
    }

    /// As [`Testbed::start`], with `capacity` servers per aggregator and
    /// `edge_extra` appended to the edge MLFO's configuration.
    fn start_with(
        r: u8,
        aggregators: u8,
        capacity: usize,
        clients: u8,
        missing: &[u8],
        edge_extra: &str,
    ) -> Testbed {
        let mut tb = Testbed {
            dir: tempfile::tempdir().unwrap(),
            r,
            procs: Vec::new(),
            http: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        let catalog = Path::new(REPO).join("tests/mlfo/catalog.yaml");
        let mut cloud_inv = String::new();
        for k in 1..=aggregators {
            let ip = format!("127.{r}.0.{}", 10 + k);
            tb.spawn_node(&format!("fed.{k}"), &ip);
            cloud_inv += &format!(
                "  - {{ name: fed.{k}, url: 'http://{ip}:5000', role: aggregator, capacity: {capacity} }}\n"
            );
        }
        let mut edge_inv = String::new();
        for octet in 10..10 + clients {
            let ip = format!("127.{r}.1.{octet}");
            if !missing.contains(&octet) {
                tb.spawn_node(&format!("fc.{octet}"), &ip);
            }
            edge_inv +=
                &format!("  - {{ name: fc.{octet}, url: 'http://{ip}:5000', role: client }}\n");
        }
        let common = format!(
            "catalog: {}\ntimeouts: {{ poll_s: 0.2, sbi_s: 5, sbi_attempts: 2, job_s: 300 }}\n",
            catalog.display()
        );
        tb.write(
            "cloud.yaml",
            &format!(
                "name: mlfo.cloud\nrole: cloud\nlisten: 127.{r}.0.1:8000\nmomo_listen: 127.{r}.0.1:9000\n\
                 state: cloud.sqlite\nserver: {{ central_evaluation: true }}\n{common}inventory:\n{cloud_inv}"
            ),
        );
        tb.write(
            "edge.yaml",
            &format!(
                "name: mo.1\nrole: edge\nlisten: 127.{r}.1.1:8000\nparent: http://127.{r}.0.1:9000\n\
                 state: edge.sqlite\n{edge_extra}{common}inventory:\n{edge_inv}"
            ),
        );
        tb.spawn_mlfo("cloud");
        tb.spawn_mlfo("edge");
        for (name, _) in &tb.procs {
            tb.wait_healthy(name);
        }
        tb
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap()
    }

    fn spawn_node(&mut self, name: &str, ip: &str) {
        let child = dmo()
            .args([
                "-v",
                "node",
                "--listen",
                &format!("{ip}:5000"),
                "--threads",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(self.log(name))
            .spawn()
            .unwrap();
        self.procs.push((name.to_owned(), child));
    }

    fn spawn_mlfo(&mut self, role: &str) {
        let config = self.dir.path().join(format!("{role}.yaml"));
        let child = dmo()
            .args(["-v", "mlfo", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(self.log(&format!("mlfo-{role}-{}", self.procs.len())))
            .spawn()
            .unwrap();
        self.procs.push((format!("mlfo-{role}"), child));
    }

    fn url_of(&self, name: &str) -> String {
        let r = self.r;
        match name {
            "mlfo-cloud" => format!("http://127.{r}.0.1:8000"),
            "mlfo-edge" => format!("http://127.{r}.1.1:8000"),
            n if n.starts_with("fed.") => {
                format!(
                    "http://127.{r}.0.{}:5000",
                    10 + n[4..].parse::<u8>().unwrap()
                )
            }
            n => format!("http://127.{r}.1.{}:5000", &n[3..]),
        }
    }

    fn edge(&self) -> String {
        self.url_of("mlfo-edge")
    }

    fn wait_healthy(&self, name: &str) {
        let url = format!("{}/healthz", self.url_of(name));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self
                .http
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name} did not become healthy at {url}\n{}", self.logs());
    }

    fn get(&self, url: &str) -> Value {
        self.http.get(url).send().unwrap().json().unwrap()
    }

    fn intent(&self, id: &str) -> Value {
        self.get(&format!("{}/v1/intents/{id}", self.edge()))
    }

    /// Polls an intent until it is final.
    /// Waits (at most 60 s) until intent `id` is training.
    fn wait_training(&self, id: &str) {
        let start = Instant::now();
        while self.intent(id)["state"] != "training" {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{}",
                self.intent(id)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_final(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.intent(id);
            let state = v["state"].as_str().unwrap_or_default().to_owned();
            if ["completed", "failed", "lost", "cancelled"].contains(&state.as_str()) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(240),
                "intent {id} still {state} after 240 s: {v:#}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Jobs still starting or running on any live agent.
    fn active_jobs(&self) -> Vec<String> {
        let mut active = Vec::new();
        for (name, _) in self.procs.iter().filter(|(n, _)| !n.starts_with("mlfo")) {
            let jobs = self.get(&format!("{}/v1/jobs", self.url_of(name)));
            for j in jobs.as_array().unwrap() {
                let state = j["state"].as_str().unwrap();
                if state == "starting" || state == "running" {
                    active.push(format!("{name}: {} {state}", j["id"]));
                }
            }
        }
        active
    }

    /// Waits for every agent to be idle (clients end shortly after their server).
    fn assert_nothing_running(&self) {
        let start = Instant::now();
        loop {
            let active = self.active_jobs();
            if active.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "jobs still running: {active:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Posts `file` and form `fields` to the edge's `/receive` as the
    /// prototype's scripts did; returns the status and the reply's text.
    fn receive(&self, file: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut form = multipart::Form::new().file("file", file).unwrap();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let reply = self
            .http
            .post(format!("{}/receive", self.edge()))
            .multipart(form)
            .send()
            .unwrap();
        (reply.status().as_u16(), reply.text().unwrap())
    }

    /// Runs `dmo intent send FILE` at the edge with `--size size` and each
    /// `--set KEY=VALUE` of `sets`.
    fn send(&self, file: &str, size: usize, sets: &[&str]) -> std::process::Output {
        let mut c = dmo();
        c.args(["intent", "send", file, "--mlfo", &self.edge()])
            .args(["--size", &size.to_string()]);
        for s in sets {
            c.args(["--set", s]);
        }
        c.output().unwrap()
    }

    /// Posts an intent to `/receive`, expects it accepted, returns its id.
    fn submit(&self, file: &str, fields: &[(&str, &str)]) -> String {
        let (status, text) = self.receive(file, fields);
        assert_eq!(status, 200, "{text}");
        text.trim().trim_start_matches("OK ").to_owned()
    }

    fn kill(&mut self, name: &str) {
        let (_, mut child) = self
            .procs
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| self.procs.remove(i))
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                out += &format!("--- {}\n", path.display());
                for line in tail.into_iter().rev() {
                    out += line;
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn intent_file(name: &str) -> String {
    format!("{REPO}/tests/mlfo/intents/{name}.yaml")
}

fn python() -> String {
    std::env::var("DMO_PYTHON").unwrap_or_else(|_| format!("{REPO}/.venv/bin/python"))
}

/// Asserts an intent completed and its accuracy rose from the initial model's.
fn assert_learned(v: &Value) {
    assert_eq!(v["state"], "completed", "{v:#}");
    let job = &v["jobs"][0];
    let rounds = job["rounds"].as_array().unwrap();
    assert_eq!(
        rounds.len() as u64,
        job["rounds_planned"].as_u64().unwrap(),
        "{v:#}"
    );
    let initial = job["initial_accuracy"].as_f64().unwrap();
    let last = rounds.last().unwrap()["accuracy"].as_f64().unwrap();
    assert!(last > initial + 0.2, "accuracy {initial} -> {last}: {v:#}");
    let t = &v["timings"];
    let (rtt, started, done) = (
        t["momo_round_trip_s"].as_f64().unwrap(),
        t["clients_started_s"].as_f64().unwrap(),
        t["done_s"].as_f64().unwrap(),
    );
    assert!(rtt > 0.0 && rtt <= started && started <= done, "{t}");
}

#[test]
fn seed_intents_complete_from_the_prototype_script_and_from_dmo_intent_batch() {
    let _load = testkit::shared();
    let tb = Testbed::start(61, 3, 10, &[]);
    let cohorts = serde_json::json!([
        { "size": 6, "file": intent_file("welding") },
        { "size": 2, "file": intent_file("drilling") },
        { "size": 2, "file": intent_file("cutting") },
    ]);
    let out = Command::new(python())
        .args([
            &format!("{REPO}/tests/mlfo/sendintent.py"),
            &tb.edge(),
            &cohorts.to_string(),
        ])
        .output()
        .expect("python with requests (the .venv that .ci/run makes)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<&str> = stdout
        .lines()
        .map(|l| {
            l.strip_prefix("200 OK ")
                .unwrap_or_else(|| panic!("reply {l:?}"))
        })
        .collect();
    assert_eq!(ids, ["edgeintent01", "edgeintent02", "edgeintent03"]);
    let expect_hosts = [
        vec!["fc.10", "fc.11", "fc.12", "fc.13", "fc.14", "fc.15"],
        vec!["fc.16", "fc.17"],
        vec!["fc.18", "fc.19"],
    ];
    let mut servers = Vec::new();
    for (id, hosts) in ids.iter().zip(&expect_hosts) {
        let v = tb.wait_final(id);
        assert_learned(&v);
        assert_eq!(v["cohort"]["hosts"], serde_json::json!(hosts));
        servers.push(
            v["jobs"][0]["server"]["address"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    servers.sort();
    servers.dedup();
    assert_eq!(servers.len(), 3, "one FL server per intent: {servers:?}");

    // The same cohorts through `dmo intent batch`.
    let batch = tb.write(
        "batch.yaml",
        &format!(
            "cohorts:\n  - {{ size: 6, intent: {}, numround: 2 }}\n  - {{ size: 2, intent: {}, numround: 2 }}\n  - {{ size: 2, intent: {}, numround: 2 }}\n",
            intent_file("welding"),
            intent_file("drilling"),
            intent_file("cutting")
        ),
    );
    let out = dmo()
        .args([
            "intent",
            "batch",
            batch.to_str().unwrap(),
            "--mlfo",
            &tb.edge(),
            "--wait",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tb.logs()
    );
    let batch_ids: Vec<&str> = stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        batch_ids,
        ["edgeintent01-2", "edgeintent02-2", "edgeintent03-2"]
    );
    for id in batch_ids {
        assert_learned(&tb.intent(id));
    }

    let all = tb.get(&format!("{}/v1/intents", tb.edge()));
    assert_eq!(all.as_array().unwrap().len(), 6);
    let placed = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    let placed = placed.as_array().unwrap();
    assert_eq!(placed.len(), 6);
    assert!(placed.iter().all(|s| s["active"] == false), "{placed:?}");
    tb.assert_nothing_running();

    let metrics = tb
        .http
        .get(format!("{}/metrics", tb.edge()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("mlfo_intents{mlfo=\"mo.1\",state=\"completed\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "mlfo_orchestration_latency_seconds_count{mlfo=\"mo.1\",phase=\"clients_started\"} 6"
        ),
        "{metrics}"
    );
}

#[test]
fn sameserver_makes_two_cohorts_share_one_fl_server() {
    let _load = testkit::shared();
    let tb = Testbed::start(62, 2, 4, &[]);
    let ids: Vec<String> = ["10", "12"]
        .iter()
        .map(|ipstart| {
            tb.submit(
                &intent_file("drilling"),
                &[
                    ("ipstart", ipstart),
                    ("cohortsize", "2"),
                    ("sameserver", "yes"),
                    ("numround", "4"),
                    ("minav", "1"),
                ],
            )
        })
        .collect();
    let a = tb.wait_final(&ids[0]);
    let b = tb.wait_final(&ids[1]);
    assert_eq!(a["state"], "completed", "{a:#}");
    assert_eq!(b["state"], "completed", "{b:#}");
    let (sa, sb) = (&a["jobs"][0]["server"], &b["jobs"][0]["server"]);
    assert_eq!(sa["address"], sb["address"]);
    let mut reused = [sa["reused"].as_bool(), sb["reused"].as_bool()];
    reused.sort();
    assert_eq!(
        reused,
        [Some(false), Some(true)],
        "the later intent reuses the server"
    );
    let placed = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    assert_eq!(placed.as_array().unwrap().len(), 1, "{placed:#}");
    assert_eq!(
        placed[0]["intents"].as_array().unwrap().len(),
        0,
        "both released"
    );
    tb.assert_nothing_running();
}

#[test]
fn bad_intents_get_400_and_an_unreachable_client_fails_the_job_leaving_nothing_running() {
    let _load = testkit::shared();
    // fc.13 is in the inventory but its agent never starts.
    let tb = Testbed::start(63, 1, 4, &[13]);
    let (status, text) = tb.receive(&intent_file("welding"), &[("fracfit", "1.5")]);
    assert_eq!(status, 400);
    assert!(text.contains("targets[0].constraints.fracfit:"), "{text}");

    let broken = tb.write("broken.yaml", "intentID: x\ntargets: [\n");
    let (status, text) = tb.receive(broken.to_str().unwrap(), &[]);
    assert_eq!(status, 400);
    assert!(text.starts_with("broken.yaml:"), "{text}");

    let (status, text) = tb.receive(
        &intent_file("welding"),
        &[("ipstart", "10"), ("cohortsize", "9")],
    );
    assert_eq!(status, 400);
    assert!(
        text.starts_with("ipstart: [10, 19) selects 4 client agent(s)"),
        "{text}"
    );

    let id = tb.submit(
        &intent_file("welding"),
        &[("ipstart", "12"), ("cohortsize", "2")],
    );
    let v = tb.wait_final(&id);
    assert_eq!(v["state"], "failed", "{v:#}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("client fc.13: agent fc.13 (http://127.63.1.13:5000)"),
        "{reason}"
    );
    tb.assert_nothing_running();
    let placed = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    assert_eq!(
        placed[0]["active"], false,
        "the server was rolled back: {placed:#}"
    );

    // DELETE stops a running intent everywhere.
    let id = tb.submit(
        &intent_file("drilling"),
        &[("ipstart", "10"), ("cohortsize", "2"), ("numround", "1000")],
    );
    tb.wait_training(&id);
    let reply = tb
        .http
        .delete(format!("{}/v1/intents/{id}", tb.edge()))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let v: Value = reply.json().unwrap();
    assert_eq!(v["state"], "cancelled", "{v:#}");
    tb.assert_nothing_running();
    let reply = tb
        .http
        .delete(format!("{}/v1/intents/{id}", tb.edge()))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 409);
    let reply = tb
        .http
        .get(format!("{}/v1/intents/nope", tb.edge()))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 404);
}

#[test]
fn a_client_agent_killed_mid_job_fails_the_intent_at_once_when_the_server_cannot_go_on() {
    let _load = testkit::shared();
    let mut tb = Testbed::start(73, 1, 2, &[]);
    let id = tb.submit(
        &intent_file("drilling"),
        &[
            ("ipstart", "10"),
            ("cohortsize", "2"),
            ("numround", "1000"),
            ("minav", "2"),
        ],
    );
    tb.wait_training(&id);
    tb.kill("fc.11");
    let killed = Instant::now();
    let v = tb.wait_final(&id);
    let took = killed.elapsed();
    assert_eq!(v["state"], "failed", "{v:#}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "1 of 2 clients left, fewer than the 2 (minav) the server waits for: lost fc.11 at "
        ),
        "{reason}"
    );
    assert!(
        reason.contains("its node agent refuses connections"),
        "{reason}"
    );
    assert!(
        took < Duration::from_secs(30),
        "noticed after {took:?}, not at the 300 s deadline"
    );
    let lost = &v["jobs"][0]["clients"][1];
    assert_eq!(lost["host"], "fc.11");
    assert!(lost["lost"][0].as_f64().unwrap() > 0.0, "{lost}");
    assert!(v["jobs"][0]["clients"][0].get("lost").is_none());
}

#[test]
fn an_edge_mlfo_killed_mid_job_takes_the_intent_up_again_after_restart() {
    let _load = testkit::shared();
    let mut tb = Testbed::start(64, 1, 2, &[]);
    let out = dmo()
        .args([
            "intent",
            "send",
            &intent_file("welding"),
            "--mlfo",
            &tb.edge(),
        ])
        .args(["--set", "numround=40", "--size", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let start = Instant::now();
    while tb.intent(&id)["jobs"][0]["rounds"]
        .as_array()
        .is_none_or(|r| r.is_empty())
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no round: {}",
            tb.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = tb.intent(&id);
    assert_eq!(before["state"], "training", "{before:#}");
    tb.kill("mlfo-edge");
    tb.spawn_mlfo("edge");
    tb.wait_healthy("mlfo-edge");
    let v = tb.wait_final(&id);
    let state = v["state"].as_str().unwrap();
    assert!(
        state == "completed" || (state == "lost" && v["reason"].is_string()),
        "{v:#}"
    );
    assert_eq!(
        state, "completed",
        "the agents kept running, so the job is re-attached: {v:#}"
    );
    assert_eq!(v["jobs"][0]["rounds"].as_array().unwrap().len(), 40);
    tb.assert_nothing_running();
}

fn chromium(user_data: &Path, args: &[&str]) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", user_data.display()))
        .args(args)
        .output()
        .expect("chromium (Debian package chromium; bash .ci/run installs it)")
}

#[test]
fn the_dashboard_shows_a_running_job_and_its_chart_in_a_browser() {
    let _load = testkit::shared();
    let tb = Testbed::start(65, 1, 2, &[]);
    let id = tb.submit(
        &intent_file("welding"),
        &[("ipstart", "10"), ("cohortsize", "2"), ("numround", "5000")],
    );
    let start = Instant::now();
    while tb.intent(&id)["jobs"][0]["rounds"]
        .as_array()
        .is_none_or(|r| r.len() < 3)
    {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", tb.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}/dashboard", tb.edge());
    let o = chromium(profile.path(), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dom.contains(&format!("id=\"intent-{id}\"")), "{dom}");
    assert!(dom.contains(&format!("id=\"chart-{id}\"")), "{dom}");
    let points: Vec<usize> = dom
        .match_indices("data-points=\"")
        .map(|(i, m)| {
            let rest = &dom[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert!(
        points.len() >= 2 && points[0] >= 3,
        "accuracy points: {points:?}"
    );
    assert!(dom.matches("<circle").count() >= points.iter().sum::<usize>());
    assert!(
        dom.contains(">training<") || dom.contains("training"),
        "{dom}"
    );

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let o = chromium(
        profile.path(),
        &[
            "--window-size=1200,900",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot saved"
    );

    let reply = tb
        .http
        .delete(format!("{}/v1/intents/{id}", tb.edge()))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    tb.assert_nothing_running();
}

/// Posts configuration `name` of the prototype's `sendintent.py` as that
/// script does; returns the intent ids of the replies, in order.
fn send_prototype_configuration(tb: &Testbed, name: &str) -> Vec<String> {
    let out = Command::new(python())
        .args([
            &format!("{REPO}/tests/mlfo/prototype/send_configuration.py"),
            &tb.edge(),
            &format!("{REPO}/tests/mlfo/prototype/configurations.json"),
            name,
        ])
        .output()
        .expect("python with requests (the .venv that .ci/run makes)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            l.strip_prefix("200 OK ")
                .unwrap_or_else(|| panic!("{name}: reply {l:?}\n{}", tb.logs()))
                .to_owned()
        })
        .collect()
}

#[test]
fn every_cohort_configuration_of_the_prototype_script_completes_unchanged() {
    let _load = testkit::shared();
    // The prototype's 50 clients; three aggregators of capacity 1, so the
    // configurations with more cohorts than aggregators queue.
    let tb = Testbed::start(69, 3, 50, &[]);
    let configurations: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{REPO}/tests/mlfo/prototype/configurations.json"))
            .unwrap(),
    )
    .unwrap();
    let mut queued = 0;
    for (name, c) in configurations["configurations"].as_object().unwrap() {
        let ids = send_prototype_configuration(&tb, name);
        let sizes = c["cohortdistr"].as_array().unwrap();
        assert_eq!(ids.len(), sizes.len(), "{name}");
        let mut first_host = 10;
        for (k, (id, size)) in ids.iter().zip(sizes).enumerate() {
            let v = tb.wait_final(id);
            assert_eq!(v["state"], "completed", "{name}, cohort {k}: {v:#}");
            let rounds = v["jobs"][0]["rounds"].as_array().unwrap();
            assert_eq!(rounds.len(), 20, "{name}, cohort {k}: numround 20");
            let size = size.as_u64().unwrap();
            let hosts: Vec<String> = (first_host..first_host + size)
                .map(|o| format!("fc.{o}"))
                .collect();
            assert_eq!(v["cohort"]["hosts"], serde_json::json!(hosts), "{name}");
            first_host += size;
            let notes = v["notes"].to_string();
            if k == 0 {
                assert!(
                    notes.contains(
                        "sameserver \\\"nor\\\" is not yes, true, no or false: read as no"
                    ),
                    "{name}: {notes}"
                );
            }
            assert_eq!(v["jobs"][0]["server"]["reused"], false, "{name}: {v:#}");
            queued += usize::from(v["timings"]["queued_s"].is_number());
        }
    }
    assert!(
        queued >= 9 + 5 + 2,
        "12, 8 and 5 cohorts on 3 aggregators: at least 16 intents waited, {queued} did"
    );
    tb.assert_nothing_running();
}

/// Posts `count` one-client intents at once from as many threads; returns their ids.
fn post_at_once(tb: &Testbed, count: usize, fields: &[(&str, &str)]) -> Vec<String> {
    std::thread::scope(|s| {
        let posts: Vec<_> = (0..count)
            .map(|_| s.spawn(|| tb.receive(&intent_file("cutting"), fields)))
            .collect();
        posts
            .into_iter()
            .map(|p| {
                let (status, text) = p.join().unwrap();
                assert_eq!(status, 200, "{text}");
                text.trim().trim_start_matches("OK ").to_owned()
            })
            .collect()
    })
}

#[test]
fn intents_wait_in_a_fifo_queue_for_capacity_survive_a_restart_and_can_be_cancelled() {
    let _load = testkit::shared();
    let mut tb = Testbed::start(66, 3, 6, &[]);
    let ids: Vec<String> = (0..6)
        .map(|k| {
            let ipstart = (10 + k).to_string();
            let rounds = if k < 3 { "150" } else { "5" };
            tb.submit(
                &intent_file("cutting"),
                &[
                    ("ipstart", ipstart.as_str()),
                    ("cohortsize", "1"),
                    ("numround", rounds),
                ],
            )
        })
        .collect();
    // Three run, three wait in arrival order.
    let start = Instant::now();
    let positions = loop {
        let all: Vec<Value> = ids.iter().map(|id| tb.intent(id)).collect();
        let queued: Vec<(String, u64)> = all
            .iter()
            .filter(|v| v["state"] == "queued")
            .map(|v| {
                (
                    v["id"].as_str().unwrap().to_owned(),
                    v["queue"]["position"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        if queued.len() == 3 {
            break queued;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "expected three queued: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whichever three got the aggregators, the others wait in arrival order.
    let order: Vec<usize> = positions
        .iter()
        .map(|(id, _)| ids.iter().position(|i| i == id).unwrap())
        .collect();
    assert!(order.is_sorted(), "{positions:?}");
    let at: Vec<u64> = positions.iter().map(|(_, p)| *p).collect();
    assert_eq!(at, [1, 2, 3], "{positions:?}");
    let queued_ids: Vec<String> = positions.iter().map(|(id, _)| id.clone()).collect();
    let waiting = tb.intent(&queued_ids[0]);
    assert!(
        waiting["queue"]["waiting_for"]
            .as_str()
            .unwrap()
            .contains("no aggregator has free capacity"),
        "{waiting:#}"
    );
    assert!(waiting["timings"]["queued_s"].as_f64().unwrap() >= 0.0);

    // A seventh queues behind them; DELETE takes it out.
    let seventh = tb.submit(
        &intent_file("cutting"),
        &[("ipstart", "10"), ("cohortsize", "1")],
    );
    // Accepted first; its task asks the cloud and then joins the queue.
    let start = Instant::now();
    let seventh_record = loop {
        let v = tb.intent(&seventh);
        if v["state"] != "accepted" && v["state"] != "planning" {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{v:#}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(seventh_record["state"], "queued", "{seventh_record:#}");
    assert_eq!(seventh_record["queue"]["position"], 4);
    let cancelled: Value = tb
        .http
        .delete(format!("{}/v1/intents/{seventh}", tb.edge()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled:#}");

    // The edge MLFO restarts while three train and three wait: the queue is
    // rebuilt in the same order.
    let start = Instant::now();
    while !ids
        .iter()
        .filter(|id| !queued_ids.contains(id))
        .all(|id| tb.intent(id)["state"] == "training")
    {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", tb.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    tb.kill("mlfo-edge");
    tb.spawn_mlfo("edge");
    tb.wait_healthy("mlfo-edge");
    let after: Vec<Value> = queued_ids.iter().map(|id| tb.intent(id)).collect();
    if after.iter().all(|v| v["state"] == "queued") {
        let positions: Vec<&Value> = after.iter().map(|v| &v["queue"]["position"]).collect();
        assert_eq!(positions, [1, 2, 3], "{after:#?}");
    }
    for id in &ids {
        let v = tb.wait_final(id);
        assert_eq!(v["state"], "completed", "{v:#}");
    }
    for id in &ids {
        let waited = tb.intent(id)["timings"]["queued_s"].is_number();
        assert_eq!(waited, queued_ids.contains(id), "{id}: {:#}", tb.intent(id));
    }
    let placed = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    assert_eq!(placed.as_array().unwrap().len(), 6, "{placed:#}");
    tb.assert_nothing_running();
}

#[test]
fn a_burst_of_200_intents_ends_with_every_intent_final_none_lost_and_no_orphan_server() {
    let _load = testkit::shared();
    let tb = Testbed::start_with(67, 3, 20, 10, &[], "");
    let ids = post_at_once(&tb, 200, &[("cohortsize", "1"), ("numround", "2")]);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200, "every intent has its own id");
    let mut states = std::collections::BTreeMap::new();
    let mut per_host = std::collections::BTreeMap::new();
    for id in &ids {
        let v = tb.wait_final(id);
        *states
            .entry(v["state"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        *per_host
            .entry(v["cohort"]["hosts"][0].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(
        states.get("completed"),
        Some(&200),
        "{states:?}\n{}",
        tb.logs()
    );
    let most = per_host.values().max().copied().unwrap_or(0);
    assert!(
        most <= 40,
        "cohorts by size spread over the 10 client hosts: {per_host:?}"
    );
    let all = tb.get(&format!("{}/v1/intents", tb.edge()));
    assert_eq!(all.as_array().unwrap().len(), 200);
    let placed = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    let still: Vec<String> = placed
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["active"] != false)
        .map(|s| {
            let id = s["intents"][0].as_str().unwrap_or_default();
            format!("{s:#}\nat the edge: {:#}", tb.intent(id))
        })
        .collect();
    assert!(
        still.is_empty(),
        "servers still active:\n{}",
        still.join("\n")
    );
    tb.assert_nothing_running();
}

#[test]
fn the_hierfl_branch_form_switches_per_client_momo_and_the_management_plane_alone() {
    let _load = testkit::shared();
    let tb = Testbed::start(68, 2, 4, &[]);
    // mlfostatus disabled: one Mo-Mo Deploy per client, all answered with one server.
    let per_client = tb.submit(
        &intent_file("cutting"),
        &[
            ("nodesperedge", "2"),
            ("clipernode", "2"),
            ("mlfostatus", "disabled"),
            ("flstatus", "enabled"),
            ("hierflstatus", "disabled"),
            ("numround", "3"),
        ],
    );
    let v = tb.wait_final(&per_client);
    assert_eq!(v["state"], "completed", "{v:#}");
    assert_eq!(v["cohort"]["hosts"].as_array().unwrap().len(), 4, "{v:#}");
    assert_eq!(v["momo"]["mode"], "per-client");
    assert_eq!(
        v["momo"]["messages"],
        4 + 1,
        "four Deploys and a Release: {v:#}"
    );
    assert!(v["momo"]["bytes"].as_u64().unwrap() > 4 * 40, "{v:#}");
    let servers = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    assert_eq!(
        servers.as_array().unwrap().len(),
        1,
        "one shared server: {servers:#}"
    );

    // mlfostatus enabled: one Deploy; flstatus disabled: no client starts.
    let plane = tb.submit(
        &intent_file("cutting"),
        &[
            ("ipstart", "10"),
            ("cohortsize", "4"),
            ("mlfostatus", "enabled"),
            ("flstatus", "disabled"),
        ],
    );
    let v = tb.wait_final(&plane);
    assert_eq!(v["state"], "completed", "{v:#}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .starts_with("flstatus disabled"),
        "{v:#}"
    );
    assert_eq!(v["momo"]["mode"], "aggregated");
    assert_eq!(v["momo"]["messages"], 2, "a Deploy and a Release: {v:#}");
    let clients = v["jobs"][0]["clients"].as_array().unwrap();
    assert!(clients.iter().all(|c| c["job_id"].is_null()), "{v:#}");
    let servers = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    assert_eq!(servers.as_array().unwrap().len(), 2, "{servers:#}");
    assert!(
        servers
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["active"] == false)
    );

    let (status, text) = tb.receive(&intent_file("cutting"), &[("mlfostatus", "maybe")]);
    assert_eq!(
        (status, text.trim()),
        (
            400,
            "mlfostatus: must be enabled or disabled, got \"maybe\""
        )
    );
    let (status, text) = tb.receive(&intent_file("cutting"), &[("nodesperedge", "2")]);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with("nodesperedge and clipernode: give both"),
        "{text}"
    );
    tb.assert_nothing_running();
}

#[test]
fn a_privacy_low_intent_trains_centrally_on_the_data_its_clients_send() {
    let _load = testkit::shared();
    let tb = Testbed::start(70, 1, 4, &[]);
    let send = |level: &str| {
        let level = format!("privacylevel={level}");
        tb.send(
            &intent_file("welding"),
            4,
            &[&level, "numround=6", "sameserv=yes"],
        )
    };
    // Differential privacy is for updates; a centralised plan sends data.
    let refused = tb.send(
        &intent_file("welding"),
        4,
        &["privacylevel=low", "dp=central", "numround=6"],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("constraints.dp: must be off with privacylevel low"),
        "{stderr}"
    );
    let out = send("low");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let v = tb.wait_final(&id);
    assert_learned(&v);
    let job = &v["jobs"][0];
    assert_eq!(job["mode"], "centralised", "{v:#}");
    assert_eq!(job["strategy"], "centralised");
    // 6 rounds x 1 local epoch x fracfit 0.5: 3 passes over the pooled data.
    assert_eq!(
        (
            job["rounds_planned"].as_u64(),
            job["passes_planned"].as_u64()
        ),
        (Some(3), Some(3))
    );
    let rounds = job["rounds"].as_array().unwrap();
    assert_eq!(
        rounds[0]["participants"], 4,
        "every client's part is pooled"
    );
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("centralised training") && notes.contains("never shared"),
        "{notes}"
    );
    // Every client sent its part over the network; the trainer counted them all.
    let mut sent = 0;
    for client in job["clients"].as_array().unwrap() {
        let url = format!(
            "{}/v1/jobs/{}",
            client["agent_url"].as_str().unwrap(),
            client["job_id"].as_str().unwrap()
        );
        let agent_job = tb.get(&url);
        assert_eq!(agent_job["state"], "completed", "{agent_job:#}");
        assert_eq!(agent_job["config"]["mode"], "centralised");
        sent += agent_job["summary"]["uploaded_bytes"].as_u64().unwrap();
    }
    assert!(sent > 0);
    assert_eq!(rounds[0]["bytes_received"].as_u64(), Some(sent));
    let placed = tb.get(&format!("{}/v1/servers", tb.url_of("mlfo-cloud")));
    assert_eq!(placed[0]["strategy"], "centralised", "{placed:#}");
    tb.assert_nothing_running();
}

#[test]
fn an_intent_ends_at_its_target_accuracy_or_fails_at_its_deadline() {
    let _load = testkit::shared();
    let tb = Testbed::start(71, 2, 4, &[]);
    let send = |sets: &[&str]| {
        let out = tb.send(&intent_file("welding"), 2, sets);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let early = send(&["numround=200", "target_accuracy=0.5"]);
    let late = send(&["numround=10000", "deadline_s=3"]);
    let v = tb.wait_final(&early);
    assert_eq!(v["state"], "completed", "{v:#}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("target accuracy reached at round"),
        "{reason}"
    );
    let rounds = v["jobs"][0]["rounds"].as_array().unwrap();
    assert!(rounds.len() < 200 && rounds.last().unwrap()["accuracy"].as_f64().unwrap() >= 0.5);
    let v = tb.wait_final(&late);
    assert_eq!(v["state"], "failed", "{v:#}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("deadline of 3 s passed at round"),
        "{reason}"
    );
    tb.assert_nothing_running();
}

#[test]
fn an_intent_that_joins_a_running_shared_server_counts_only_its_own_rounds() {
    let _load = testkit::shared();
    let tb = Testbed::start(72, 1, 4, &[]);
    let first = tb.submit(
        &intent_file("drilling"),
        &[
            ("ipstart", "10"),
            ("cohortsize", "2"),
            ("sameserver", "yes"),
            ("numround", "400"),
            ("minav", "1"),
        ],
    );
    let start = Instant::now();
    while tb.intent(&first)["jobs"][0]["rounds"]
        .as_array()
        .is_none_or(|r| r.len() < 5)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no rounds: {}",
            tb.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = tb.submit(
        &intent_file("drilling"),
        &[
            ("ipstart", "12"),
            ("cohortsize", "2"),
            ("sameserver", "yes"),
            ("numround", "3"),
            ("minav", "1"),
        ],
    );
    let b = tb.wait_final(&second);
    assert_eq!(b["state"], "completed", "{b:#}");
    let job = &b["jobs"][0];
    assert!(job["server"]["reused"].as_bool().unwrap(), "{b:#}");
    let before = job["rounds_before"].as_u64().expect("rounds_before");
    assert!(before >= 5, "{b:#}");
    let rounds = job["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3, "its own 3 rounds, not the server's: {b:#}");
    assert_eq!(rounds[0]["round"].as_u64(), Some(before + 1));
    assert!(job["initial_accuracy"].as_f64().is_some());
    // The first intent still has the server, and goes on.
    let a = tb.intent(&first);
    assert_eq!(a["state"], "training", "{a:#}");
    let cancelled = tb
        .http
        .delete(format!("{}/v1/intents/{first}", tb.edge()))
        .send()
        .unwrap();
    assert!(cancelled.status().is_success());
    tb.wait_final(&first);
    tb.assert_nothing_running();
}
