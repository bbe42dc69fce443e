//! Runs a scenario on a testbed backend (local or netns): brings every
//! host up as a `dmo` process, sends the intents to the edge MLFO,
//! follows them, writes the results and tears everything down (also on
//! failure and on cancellation).

use crate::network::{NetworkSummary, TrafficSummary};
use crate::scenario::Scenario;
use crate::summary::{ExpectationResult, JobSummary, SCHEMA_VERSION, Summary, TestbedSummary};
use mlfo::IntentRecord;
use mlfo::record::now_unix_s;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testbed::backend::{Backend, LocalBackend, NetnsBackend};
use testbed::netns::NetnsTestbed;
use testbed::{Host, Role, Topology};

/// Which testbed backend runs the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Processes on loopback addresses; links recorded, not enforced.
    Local,
    /// Network namespaces with shaped links (root).
    Netns,
}

/// How to run.
pub struct RunOptions {
    /// The `dmo` executable that hosts run.
    pub dmo: PathBuf,
    /// Results directory.
    pub out: PathBuf,
    /// Run byte: of the loopback addresses (127.R.T.H) on the local
    /// backend, of the namespace and cgroup names on the netns backend.
    pub run_byte: u8,
    /// The backend.
    pub backend: BackendKind,
    /// Set to stop the run early (Ctrl-C).
    pub cancel: &'static AtomicBool,
}

/// What the run leaves for the caller.
pub struct RunOutcome {
    /// The results, as written to `summary.json`.
    pub summary: Summary,
    /// Peak memory (sum of proportional set sizes) of all host processes together, bytes.
    pub peak_memory_bytes: u64,
}

/// Node agent REST port.
const AGENT_PORT: u16 = 5000;
/// MLFO REST port.
const MLFO_PORT: u16 = 8000;
/// Mo-Mo port.
const MOMO_PORT: u16 = 9000;
/// Prometheus port.
const PROMETHEUS_PORT: u16 = 9090;
/// iperf3 port of the first background flow; flow `i` uses this + `i`.
const TRAFFIC_PORT: u16 = 5201;

fn io(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// Brings up the backend `options` asks for on `topology`.
pub fn start_backend(
    topology: &Topology,
    options: &RunOptions,
    seed: u64,
) -> Result<Box<dyn Backend>, String> {
    Ok(match options.backend {
        BackendKind::Local => Box::new(LocalBackend::new(options.run_byte)),
        BackendKind::Netns => {
            let bed = NetnsTestbed::up(topology, options.run_byte, seed)
                .map_err(|e| format!("netns backend: {e}"))?;
            let aggregators = topology
                .hosts_with_role(Role::Aggregator)
                .map(|h| h.name.clone())
                .collect();
            Box::new(NetnsBackend::new(bed, aggregators))
        }
    })
}

/// Runs `scenario` on `hosts`, a backend brought up for its topology
/// ([`start_backend`]); `progress` sees the intents after every poll. The
/// backend is shut down before this returns, whatever happens.
pub fn run(
    scenario: &Scenario,
    options: &RunOptions,
    mut hosts: Box<dyn Backend>,
    progress: &mut dyn FnMut(&[IntentRecord]),
) -> Result<RunOutcome, String> {
    let result = run_on(scenario, options, hosts.as_mut(), progress);
    hosts.shutdown();
    result
}

fn run_on(
    scenario: &Scenario,
    options: &RunOptions,
    hosts: &mut dyn Backend,
    progress: &mut dyn FnMut(&[IntentRecord]),
) -> Result<RunOutcome, String> {
    let started = Instant::now();
    let started_unix_s = now_unix_s();
    let topology = scenario.topology()?;
    // Absolute, since the hosts' configurations name files in it.
    let out = &std::path::absolute(&options.out).map_err(|e| io(&options.out, e))?;
    let logs = out.join("logs");
    let state = out.join("state");
    // A run starts from scratch: an earlier run's state, logs and time
    // series in the same directory are replaced.
    for dir in [&logs, &state, &out.join("prometheus")] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
        }
    }
    for dir in [&logs, &state] {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let addresses: std::collections::BTreeMap<&str, std::net::Ipv4Addr> = topology
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), hosts.address(h)))
        .collect();
    let addr = |h: &Host, port| SocketAddr::new(addresses[h.name.as_str()].into(), port);
    let catalog = scenario.catalog_file(&state)?;
    let catalog_line = catalog
        .map(|c| format!("catalog: '{}'\n", c.display()))
        .unwrap_or_default();
    let cloud = topology
        .hosts_with_role(Role::MlfoCloud)
        .next()
        .ok_or("topology: needs a host with role mlfo-cloud")?;
    let edge = topology
        .hosts_with_role(Role::MlfoEdge)
        .next()
        .ok_or("topology: needs a host with role mlfo-edge")?;
    let mut cloud_inv = String::new();
    let mut edge_inv = String::new();
    let mut agents: Vec<(&Host, SocketAddr)> = Vec::new();
    for h in &topology.hosts {
        let a = addr(h, AGENT_PORT);
        let cohort = h
            .cohort
            .as_ref()
            .map(|c| format!(", cohort: {c}"))
            .unwrap_or_default();
        match h.role {
            Role::Aggregator => {
                cloud_inv += &format!(
                    "  - {{ name: '{}', url: 'http://{a}', role: aggregator, capacity: 4{cohort} }}\n",
                    h.name
                );
                agents.push((h, a));
            }
            Role::Client => {
                edge_inv += &format!(
                    "  - {{ name: '{}', url: 'http://{a}', role: client{cohort} }}\n",
                    h.name
                );
                agents.push((h, a));
            }
            _ => {}
        }
    }
    let cloud_rest = addr(cloud, MLFO_PORT);
    let cloud_momo = addr(cloud, MOMO_PORT);
    let edge_rest = addr(edge, MLFO_PORT);
    let timeouts = format!(
        "timeouts: {{ poll_s: 0.25, job_s: {} }}\n",
        scenario.timeouts.run_s
    );
    // The network controller (netns): inside the MLFOs' and Prometheus's
    // namespaces on their own loopback, and published for the runner.
    let prom_host = topology.hosts_with_role(Role::Prometheus).next();
    let inside: Vec<&Host> = [
        Some(cloud),
        Some(edge),
        prom_host.filter(|_| scenario.prometheus.enabled),
    ]
    .into_iter()
    .flatten()
    .collect();
    let traffic: Vec<&Host> = topology.hosts_with_role(Role::Traffic).collect();
    let controller = hosts
        .network_controller(&inside, &traffic)
        .map_err(|e| e.to_string())?;
    let controller_line = controller
        .as_ref()
        .map(|(url, _)| format!("network_controller: '{url}'\n"))
        .unwrap_or_default();
    let configs = [
        (
            cloud,
            cloud_rest,
            format!(
                "name: '{}'\nrole: cloud\nlisten: {cloud_rest}\nmomo_listen: {cloud_momo}\nstate: '{}'\n{catalog_line}{timeouts}\
                 server: {{ central_evaluation: {}, seed: {} }}\ninventory:\n{cloud_inv}",
                cloud.name,
                state.join("cloud.sqlite").display(),
                scenario.central_evaluation,
                scenario.seed
            ),
        ),
        (
            edge,
            edge_rest,
            format!(
                "name: '{}'\nrole: edge\nlisten: {edge_rest}\nparent: http://{cloud_momo}\nstate: '{}'\n{catalog_line}{timeouts}{controller_line}\
                 momo: {}\nclient: {{ partition: '{}', seed: {} }}\ninventory:\n{edge_inv}",
                edge.name,
                state.join("edge.sqlite").display(),
                scenario.momo.as_str(),
                scenario.partition,
                scenario.seed
            ),
        ),
    ];
    let log = |h: &Host| logs.join(format!("{}.log", h.name));
    if !scenario.background_traffic.is_empty() && !hosts.links_enforced() {
        return Err(
            "background_traffic: needs --backend netns (the local backend does not run traffic hosts); \
             remove it or run with --backend netns"
                .to_owned(),
        );
    }
    let traffic_log = |i: usize| logs.join(format!("traffic-{i}.log"));
    let traffic_port = |i: usize| (TRAFFIC_PORT + i as u16).to_string();
    for (i, f) in scenario.background_traffic.iter().enumerate() {
        let to = topology
            .host(&f.to)
            .ok_or("background_traffic: unknown host")?;
        let mut c = Command::new("iperf3");
        c.args(["-s", "-f", "m", "-p", &traffic_port(i), "-B"])
            .arg(addr(to, 0).ip().to_string());
        hosts
            .spawn(to, c, &logs.join(format!("traffic-{i}-server.log")))
            .map_err(|e| e.to_string())?;
    }
    for (h, a) in &agents {
        let mut c = Command::new(&options.dmo);
        c.args(["-v", "node", "--listen", &a.to_string(), "--threads", "1"]);
        hosts.spawn(h, c, &log(h)).map_err(|e| e.to_string())?;
    }
    for (h, _, text) in &configs {
        let path = state.join(format!("{}.yaml", h.name));
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        let mut c = Command::new(&options.dmo);
        c.args(["-v", "mlfo", "--config", &path.display().to_string()]);
        hosts.spawn(h, c, &log(h)).map_err(|e| e.to_string())?;
    }
    let prom = if scenario.prometheus.enabled {
        let host = topology
            .hosts_with_role(Role::Prometheus)
            .next()
            .ok_or("prometheus.enabled: the topology has no host with role prometheus")?;
        let listen = addr(host, PROMETHEUS_PORT);
        let mut targets: Vec<(String, SocketAddr, &str)> = agents
            .iter()
            .map(|(h, a)| (h.name.clone(), *a, "node"))
            .chain(configs.iter().map(|(h, a, _)| (h.name.clone(), *a, "mlfo")))
            .collect();
        if controller.is_some() {
            // The controller listens on Prometheus's own loopback.
            let local =
                SocketAddr::from(([127, 0, 0, 1], testbed::netns::controller::CONTROLLER_PORT));
            targets.push(("testbed".to_owned(), local, "testbed"));
        }
        let config = crate::prometheus::config(scenario.prometheus.scrape_interval_s, &targets);
        let target_count = targets.len();
        let path = state.join("prometheus.yml");
        std::fs::write(&path, config).map_err(|e| io(&path, e))?;
        let mut c = Command::new(crate::prometheus::binary()?);
        c.arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                out.join("prometheus").display()
            ))
            .arg(format!("--web.listen-address={listen}"));
        hosts
            .spawn(host, c, &log(host))
            .map_err(|e| e.to_string())?;
        Some((host, listen, target_count))
    } else {
        None
    };
    let ready = Duration::from_secs_f64(scenario.timeouts.ready_s);
    for (h, a) in agents
        .iter()
        .copied()
        .chain(configs.iter().map(|(h, a, _)| (*h, *a)))
    {
        if options.cancel.load(Ordering::Relaxed) {
            return Err("cancelled".to_owned());
        }
        hosts
            .wait_ready(h, a, "/healthz", ready)
            .map_err(|e| e.to_string())?;
    }
    // The runner's own way in: published ports on the netns backend.
    let prom = match prom {
        Some((h, a, count)) => {
            hosts
                .wait_ready(h, a, "/-/ready", ready)
                .map_err(|e| e.to_string())?;
            let local = hosts
                .publish(h, a, PROMETHEUS_PORT)
                .map_err(|e| e.to_string())?;
            Some((h, local, count))
        }
        None => None,
    };
    let edge_rest = hosts
        .publish(edge, edge_rest, MLFO_PORT)
        .map_err(|e| e.to_string())?;
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    if let Some((_, a, count)) = &prom {
        crate::prometheus::wait_targets(&http, *a, *count, ready)?;
    }
    for (i, f) in scenario.background_traffic.iter().enumerate() {
        let (from, to) = (topology.host(&f.from), topology.host(&f.to));
        let (Some(from), Some(to)) = (from, to) else {
            return Err(format!("background_traffic[{i}]: unknown host"));
        };
        let mut c = Command::new("iperf3");
        c.args(["-c", &addr(to, 0).ip().to_string(), "-p", &traffic_port(i)])
            .args(["-b", &format!("{}K", (f.rate_mbit * 1000.0).round() as u64)])
            .args(["-t", "86400", "-i", "1", "-f", "m", "--forceflush"]);
        hosts
            .spawn(from, c, &traffic_log(i))
            .map_err(|e| e.to_string())?;
    }
    let edge_url = format!("http://{edge_rest}");
    let posts = scenario.posts();
    // Per post: its intent's id and cohort once sent, and whether it ended.
    let mut sent: Vec<Option<(String, String)>> = vec![None; posts.len()];
    let mut ended = vec![false; posts.len()];
    let deadline = Duration::from_secs_f64(scenario.timeouts.run_s);
    let mut peak_memory = 0;
    let (records, ids) = loop {
        for (k, post) in posts.iter().enumerate() {
            if sent[k].is_none() && post.after.is_none_or(|a| ended[a]) {
                sent[k] = Some(post_intent(&http, &edge_url, scenario, post)?);
            }
        }
        peak_memory = peak_memory.max(hosts.total_memory_bytes());
        let mut records = Vec::new();
        for (k, (id, _)) in sent
            .iter()
            .enumerate()
            .filter_map(|(k, s)| Some((k, s.as_ref()?)))
        {
            let r: IntentRecord = http
                .get(format!("{edge_url}/v1/intents/{id}"))
                .send()
                .and_then(|r| r.json())
                .map_err(|e| format!("following intent {id}: {e}"))?;
            ended[k] = r.state.is_final();
            records.push(r);
        }
        progress(&records);
        if ended.iter().all(|e| *e) {
            break (records, sent.into_iter().flatten().collect::<Vec<_>>());
        }
        hosts.check_alive().map_err(|e| e.to_string())?;
        if options.cancel.load(Ordering::Relaxed) {
            return Err("cancelled; every host was stopped".to_owned());
        }
        if started.elapsed() > deadline {
            return Err(format!(
                "the run took more than timeouts.run_s ({} s)",
                deadline.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    if let Some((_, a, _)) = &prom {
        // Two more scrapes so that the final values are in, then save the queries.
        std::thread::sleep(Duration::from_secs_f64(
            2.0 * scenario.prometheus.scrape_interval_s + 0.5,
        ));
        let saved = crate::prometheus::query_all(&http, *a, &scenario.prometheus.queries)?;
        let path = out.join("metrics.json");
        let text = serde_json::to_string_pretty(&saved).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    let measurements = hosts.take_measurements();
    let mut network = measurements
        .as_ref()
        .map(|m| NetworkSummary::new(m, &topology.links));
    hosts.shutdown();
    if let Some(n) = &mut network {
        for (i, f) in scenario.background_traffic.iter().enumerate() {
            let output = std::fs::read_to_string(traffic_log(i)).unwrap_or_default();
            n.background.push(TrafficSummary::from_iperf3(
                &f.from,
                &f.to,
                f.rate_mbit,
                &output,
            ));
        }
    }
    if let Some(n) = &network {
        n.write_csv(out).map_err(|e| e.to_string())?;
    }
    let satellite = satellite_links(&topology);
    let jobs: Vec<JobSummary> = records
        .iter()
        .zip(&ids)
        .flat_map(|(r, (_, cohort))| {
            let bytes = measurements
                .as_ref()
                .filter(|_| !satellite.is_empty())
                .and_then(|m| {
                    crate::network::bytes_between(
                        m,
                        &satellite,
                        r.received_unix_s,
                        r.updated_unix_s,
                    )
                })
                .map(|sum| sum / satellite.len() as u64);
            JobSummary::from_record(r, Some(cohort))
                .into_iter()
                .map(move |j| JobSummary {
                    satellite_bytes: bytes,
                    ..j
                })
        })
        .collect();
    let expectations = check(scenario, &jobs);
    let ok = jobs.iter().all(|j| j.state == "completed") && expectations.iter().all(|e| e.ok);
    let summary = Summary {
        schema: SCHEMA_VERSION,
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        started_unix_s,
        wall_s: started.elapsed().as_secs_f64(),
        testbed: TestbedSummary {
            backend: hosts.name().to_owned(),
            links_enforced: hosts.links_enforced(),
            hosts: topology.hosts.len(),
            clients: topology.hosts_with_role(Role::Client).count(),
            aggregators: topology.hosts_with_role(Role::Aggregator).count(),
            links: topology.links.clone(),
        },
        jobs,
        expectations,
        ok,
        network,
    };
    summary.write_json(out).map_err(|e| e.to_string())?;
    summary.write_csv(out).map_err(|e| e.to_string())?;
    crate::report::write(&summary, out).map_err(|e| e.to_string())?;
    Ok(RunOutcome {
        summary,
        peak_memory_bytes: peak_memory,
    })
}

/// The satellite hops: links between two switches that have a delay (in
/// the generated topology aggsw - satsw and satsw - edgesw).
fn satellite_links(topology: &Topology) -> Vec<usize> {
    let switch = |name: &str| topology.switches.iter().any(|s| s.name == name);
    topology
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| switch(&l.a) && switch(&l.b) && l.delay_ms.is_some_and(|d| d > 0.0))
        .map(|(i, _)| i)
        .collect()
}

/// Sends one intent to the edge MLFO; its id and cohort.
fn post_intent(
    http: &reqwest::blocking::Client,
    edge_url: &str,
    scenario: &Scenario,
    post: &crate::scenario::IntentPost,
) -> Result<(String, String), String> {
    let i = post.intent;
    let cohort = scenario.intents[i].cohort.clone();
    let body = serde_json::json!({
        "intent": scenario.intent_text(i)?,
        "cohort": { "name": cohort },
        "constraints": scenario.post_constraints(post),
    });
    let reply = http
        .post(format!("{edge_url}/v1/intents"))
        .json(&body)
        .send()
        .map_err(|e| format!("sending intents[{i}] to the edge MLFO: {e}"))?;
    let status = reply.status();
    let text = reply.text().unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "intents[{i}]{}: the edge MLFO refused it ({status}): {}",
            if post.centralised {
                " (centralised)"
            } else {
                ""
            },
            text.trim()
        ));
    }
    let record: IntentRecord = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok((record.id, cohort))
}

/// Checks the scenario's expectations against the jobs.
fn check(scenario: &Scenario, jobs: &[JobSummary]) -> Vec<ExpectationResult> {
    let mut results = Vec::new();
    for job in jobs {
        let cohort = job.cohort.clone().unwrap_or_default();
        let min = scenario
            .expect
            .min_final_accuracy
            .get(&cohort)
            .or_else(|| scenario.expect.min_final_accuracy.get("all"));
        if let Some(min) = min {
            results.push(ExpectationResult {
                check: format!("{cohort}: final accuracy >= {min}"),
                actual: job.final_accuracy,
                ok: job.final_accuracy.is_some_and(|a| a >= *min),
            });
        }
    }
    results
}
