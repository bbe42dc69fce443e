//! Runs a scenario on a testbed backend (local or netns): brings every
//! host up as a `dmo` process, sends the intents to the edge MLFO,
//! follows them, writes the results and tears everything down (also on
//! failure and on cancellation).

use crate::error::{RunError, io};
use crate::network::{NetworkSummary, TrafficSummary};
use crate::scenario::{ClientProcesses, Scenario};
use crate::summary::{
    ExpectationResult, HostFault, JobSummary, SCHEMA_VERSION, Summary, TestbedSummary,
};
use mlfo::IntentRecord;
use mlfo::client::MlfoClient;
use mlfo::planner::CohortRequest;
use mlfo::record::now_unix_s;
use mlfo::submission::IntentRequest;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testbed::backend::{Backend, LocalBackend, NetnsBackend};
use testbed::netns::NetnsTestbed;
use testbed::netns::measure::Measurements;
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
    /// Overrides the scenario's `security`.
    pub security: Option<crate::scenario::SecurityMode>,
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

/// Prometheus port.
const PROMETHEUS_PORT: u16 = 9090;
/// iperf3 port of the first background flow; flow `i` uses this + `i`.
const TRAFFIC_PORT: u16 = testbed::netns::measure::TRAFFIC_PORTS.start;

/// Brings up the backend `options` asks for on `topology`, once it has
/// checked that it can give what `scenario` asks of it.
pub fn start_backend(
    scenario: &Scenario,
    topology: &Topology,
    options: &RunOptions,
) -> Result<Box<dyn Backend>, RunError> {
    check_backend(scenario, options)?;
    let seed = scenario.seed;
    Ok(match options.backend {
        BackendKind::Local => Box::new(LocalBackend::new(options.run_byte)),
        BackendKind::Netns => {
            let changing = crate::schedule::changing_links(&scenario.network_schedule, topology);
            let bed = NetnsTestbed::up_changing(topology, options.run_byte, seed, &changing)?;
            let watched = testbed::netns::measure::Watched {
                fl_hosts: topology
                    .hosts_with_role(Role::Aggregator)
                    .map(|h| h.name.clone())
                    .collect(),
                traffic_senders: scenario
                    .background_traffic
                    .iter()
                    .map(|f| f.from.clone())
                    .collect(),
            };
            Box::new(NetnsBackend::new(bed, watched))
        }
    })
}

/// What the scenario asks of the backend that it cannot give, found
/// before anything is brought up.
fn check_backend(scenario: &Scenario, options: &RunOptions) -> Result<(), RunError> {
    let netns = options.backend == BackendKind::Netns;
    if !scenario.background_traffic.is_empty() && !netns {
        return Err(RunError::Scenario(
            "background_traffic: needs --backend netns (the local backend does not run traffic hosts); \
             remove it or run with --backend netns"
                .to_owned(),
        ));
    }
    if !scenario.network_schedule.is_empty() && !netns {
        return Err(RunError::Scenario(
            "network_schedule: needs --backend netns (the local backend does not enforce links); \
             remove it or run with --backend netns"
                .to_owned(),
        ));
    }
    if scenario.client_processes != ClientProcesses::Host && netns {
        return Err(RunError::Scenario(
            "client_processes: grouping client agents in processes needs the local backend (a netns host is one namespace and one process); use client_processes: host, or --backend local".to_owned(),
        ));
    }
    Ok(())
}

/// Runs `scenario` on `hosts`, a backend brought up for its topology
/// ([`start_backend`]); `progress` sees the intents after every poll. The
/// backend is shut down before this returns, whatever happens.
pub fn run(
    scenario: &Scenario,
    options: &RunOptions,
    mut hosts: Box<dyn Backend>,
    progress: &mut dyn FnMut(&[IntentRecord]),
) -> Result<RunOutcome, RunError> {
    let result = run_on(scenario, options, hosts.as_mut(), progress);
    hosts.shutdown();
    result
}

/// Where a run's hosts are and what the runner started on them.
struct Layout {
    topology: Topology,
    /// The results directory (absolute: host configurations name files in it).
    out: PathBuf,
    logs: PathBuf,
    state: PathBuf,
    /// Each host's address on the backend.
    addresses: BTreeMap<String, Ipv4Addr>,
    cloud: Host,
    edge: Host,
    /// Aggregator and client hosts with their agents' REST addresses.
    agents: Vec<(Host, SocketAddr)>,
    /// The processes the agents run in.
    processes: Vec<AgentProcess>,
    /// The run's token files, when security is on.
    secrets: Option<Secrets>,
}

/// One `dmo node` process of the run: a host's own, or a group's serving
/// many client hosts (`client_processes`).
struct AgentProcess {
    /// The host it is known by: the agent's host, or, for a group, the
    /// first member's host under the group's name (`clients-campus1`).
    host: Host,
    /// The hosts it serves, with their agents' addresses.
    members: Vec<(Host, SocketAddr)>,
    /// Whether it serves a group (`dmo node --hosts`).
    grouped: bool,
}

/// Lays the agents out in processes: every aggregator in its own, clients
/// in their own or by the group `mode` puts them in.
fn agent_processes(agents: &[(Host, SocketAddr)], mode: ClientProcesses) -> Vec<AgentProcess> {
    let mut out: Vec<AgentProcess> = Vec::new();
    let mut group_of: BTreeMap<String, usize> = BTreeMap::new();
    for (h, a) in agents {
        let key = match (mode, h.role) {
            (_, r) if r != Role::Client => None,
            (ClientProcesses::Host, _) => None,
            (ClientProcesses::Campus, _) => {
                Some(h.campus.clone().unwrap_or_else(|| "default".into()))
            }
            (ClientProcesses::Cohort, _) => {
                Some(h.cohort.clone().unwrap_or_else(|| "default".into()))
            }
        };
        let Some(key) = key else {
            out.push(AgentProcess {
                host: h.clone(),
                members: vec![(h.clone(), *a)],
                grouped: false,
            });
            continue;
        };
        match group_of.get(&key) {
            Some(&i) => out[i].members.push((h.clone(), *a)),
            None => {
                group_of.insert(key.clone(), out.len());
                out.push(AgentProcess {
                    host: Host {
                        name: format!("clients-{key}"),
                        ..h.clone()
                    },
                    members: vec![(h.clone(), *a)],
                    grouped: true,
                });
            }
        }
    }
    out
}

/// What a one-host agent process holds (measured: 200 client processes
/// came to 1.4 GB PSS).
const AGENT_PROCESS_BYTES: u64 = 8 << 20;
/// What a group's process holds before its clients: the runtime plus a
/// dataset read once (Fashion-MNIST's training images are 47 MB).
const GROUP_PROCESS_BYTES: u64 = 72 << 20;
/// What each client of a group's process holds: its examples, its agent
/// and its Flower stream (measured about 0.4 MiB with the
/// 199,210-parameter MLP; models exist only in the training slots).
const POOLED_CLIENT_BYTES: u64 = 1 << 20;
/// What the MLFOs, Prometheus and the aggregators' FL servers add.
const FIXED_BYTES: u64 = 256 << 20;
/// Clients from which a run says its estimate before it starts.
const ESTIMATE_FROM_CLIENTS: usize = 100;

/// The memory the hosts of `processes` are expected to need, bytes.
fn estimated_memory(processes: &[AgentProcess]) -> u64 {
    processes
        .iter()
        .map(|p| {
            if p.grouped {
                GROUP_PROCESS_BYTES + POOLED_CLIENT_BYTES * p.members.len() as u64
            } else {
                AGENT_PROCESS_BYTES
            }
        })
        .sum::<u64>()
        + FIXED_BYTES
}

/// Says a large run's estimated memory before anything starts, and
/// refuses a run the machine's available memory cannot hold.
fn check_memory(processes: &[AgentProcess], available: Option<u64>) -> Result<(), RunError> {
    let clients: usize = processes
        .iter()
        .flat_map(|p| &p.members)
        .filter(|(h, _)| h.role == Role::Client)
        .count();
    if clients < ESTIMATE_FROM_CLIENTS {
        return Ok(());
    }
    let need = estimated_memory(processes);
    let mib = |b: u64| b >> 20;
    let Some(available) = available else {
        eprintln!(
            "{clients} clients: estimated memory of the hosts {} MiB",
            mib(need)
        );
        return Ok(());
    };
    eprintln!(
        "{clients} clients in {} agent processes: estimated memory of the hosts {} MiB, {} MiB available",
        processes.len(),
        mib(need),
        mib(available)
    );
    if need > available / 10 * 9 {
        let hint = if processes.iter().any(|p| p.grouped) {
            "use fewer clients or free memory"
        } else {
            "set client_processes: campus (a client then costs about 1 MiB instead of 8), use fewer clients, or free memory"
        };
        return Err(RunError::Scenario(format!(
            "the hosts of {clients} clients need about {} MiB and this machine has {} MiB available; {hint}",
            mib(need),
            mib(available)
        )));
    }
    Ok(())
}

/// The credentials of a secured run, in its state directory: token files
/// and a CA with a certificate per host (keys the owner's alone).
struct Secrets {
    /// The users' token: the runner's, accepted by the MLFOs' REST APIs.
    user: PathBuf,
    /// The hosts' token: the MLFOs present it to the agents, the network
    /// controller and over Mo-Mo.
    internal: PathBuf,
    /// `ca.pem`, and `HOST.pem` with `HOST.key` for every host and for the
    /// network controller (`testbed`).
    pki: PathBuf,
}

/// The network controller's name in the run's certificates.
const CONTROLLER_CERT: &str = "testbed";

impl Secrets {
    /// New random tokens, and certificates for the hosts at `addresses`,
    /// in `state`.
    fn create(
        state: &std::path::Path,
        addresses: &BTreeMap<String, Ipv4Addr>,
    ) -> Result<Self, RunError> {
        let secrets = Self {
            user: state.join("user.token"),
            internal: state.join("internal.token"),
            pki: state.join("pki"),
        };
        for path in [&secrets.user, &secrets.internal] {
            httpd::auth::write_token_file(path, &httpd::auth::generate())
                .map_err(|e| io(path, e))?;
        }
        let mut hosts: Vec<(String, Vec<std::net::IpAddr>)> = addresses
            .iter()
            .map(|(name, ip)| (name.clone(), vec![(*ip).into()]))
            .collect();
        hosts.push((CONTROLLER_CERT.to_owned(), Vec::new()));
        httpd::certs::init(&secrets.pki, &hosts, 30)
            .map_err(|e| RunError::Internal(format!("run certificates: {e}")))?;
        Ok(secrets)
    }

    /// The certificate and key files of `host`.
    fn identity(&self, host: &str) -> (PathBuf, PathBuf) {
        (
            self.pki.join(format!("{host}.pem")),
            self.pki.join(format!("{host}.key")),
        )
    }

    /// The CA file.
    fn ca(&self) -> PathBuf {
        self.pki.join("ca.pem")
    }

    /// What a server of `host` accepting the hosts' token needs.
    fn server(&self, host: &str) -> Result<httpd::Security, RunError> {
        let fail = |e: String| RunError::Internal(format!("run credentials: {e}"));
        let tokens = httpd::auth::Tokens::read(&self.internal).map_err(|e| fail(e.to_string()))?;
        let (cert, key) = self.identity(host);
        let tls = httpd::tls::server_config(&cert, &key).map_err(|e| fail(e.to_string()))?;
        Ok(httpd::Security {
            tls: Some(tls),
            ..httpd::Security::tokens(tokens)
        })
    }

    /// The roots the runner trusts.
    fn roots(&self) -> Result<httpd::tls::Roots, RunError> {
        httpd::tls::Roots::read(&self.ca())
            .map_err(|e| RunError::Internal(format!("run credentials: {e}")))
    }
}

/// `http` or `https`, as the run is secured.
fn scheme(layout: &Layout) -> &'static str {
    if layout.secrets.is_some() {
        "https"
    } else {
        "http"
    }
}

impl Layout {
    fn addr(&self, h: &Host, port: u16) -> SocketAddr {
        SocketAddr::new(self.addresses[&h.name].into(), port)
    }

    fn log(&self, h: &Host) -> PathBuf {
        self.logs.join(format!("{}.log", h.name))
    }

    fn traffic_log(&self, i: usize) -> PathBuf {
        self.logs.join(format!("traffic-{i}.log"))
    }
}

/// The hosts as the runner reaches them once they are ready.
struct Started {
    /// Prometheus's host, its address as the runner reaches it, and the
    /// number of targets it scrapes.
    prometheus: Option<(Host, SocketAddr, usize)>,
    /// The edge MLFO's REST URL as the runner reaches it.
    edge_url: String,
    /// The token file the edge MLFO needs, when security is on.
    user_token: Option<PathBuf>,
    /// The roots its certificate is signed by, when security is on.
    roots: Option<httpd::tls::Roots>,
    /// The node agents' hosts: one that ends is a fault the orchestrators
    /// handle (recorded in the summary), not the end of the run.
    agents: Vec<String>,
}

fn run_on(
    scenario: &Scenario,
    options: &RunOptions,
    hosts: &mut dyn Backend,
    progress: &mut dyn FnMut(&[IntentRecord]),
) -> Result<RunOutcome, RunError> {
    let started_at = Instant::now();
    let started_unix_s = now_unix_s();
    let layout = lay_out(scenario, options, hosts)?;
    let controller = start_controller(scenario, &layout, hosts)?;
    let configs = mlfo_configs(scenario, &layout, controller.as_ref().map(|(url, _)| url))?;
    start_traffic_servers(scenario, &layout, hosts)?;
    start_agents(options, &layout, hosts)?;
    let mlfos = start_mlfos(options, &layout, hosts, configs)?;
    let prometheus = start_prometheus(scenario, &layout, hosts, &mlfos, controller.is_some())?;
    let started = wait_ready(scenario, options, &layout, hosts, mlfos, prometheus)?;
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| RunError::Internal(format!("HTTP client: {e}")))?;
    let ready = Duration::from_secs_f64(scenario.timeouts.ready_s);
    if let Some((_, a, count)) = &started.prometheus {
        crate::prometheus::wait_targets(&http, *a, *count, ready)?;
    }
    start_traffic(scenario, &layout, hosts)?;
    let network = hosts.link_control();
    traffic_alone(scenario, options)?;
    let fl_start_s = network
        .as_ref()
        .map(|(_, clock)| clock.elapsed().as_secs_f64());
    let schedule = match network {
        Some((control, clock)) if !scenario.network_schedule.is_empty() => {
            Some(crate::schedule::Running::start(
                &scenario.network_schedule,
                &layout.topology,
                control,
                clock,
            ))
        }
        _ => None,
    };
    let followed = follow_intents(scenario, options, hosts, &started, started_at, progress);
    let events = NetworkEvents {
        changes: schedule.map(|s| s.stop()).unwrap_or_default(),
        fl_start_s,
    };
    let followed = followed?;
    if let Some((_, a, _)) = &started.prometheus {
        save_prometheus(scenario, &layout, &http, *a)?;
    }
    let summary = collect(
        scenario,
        &layout,
        hosts,
        &followed,
        events,
        started_unix_s,
        started_at,
    )?;
    Ok(RunOutcome {
        summary,
        peak_memory_bytes: followed.peak_memory_bytes,
    })
}

/// Clears the results directory's state, logs and time series (a run
/// starts from scratch) and finds the hosts the run needs.
fn lay_out(
    scenario: &Scenario,
    options: &RunOptions,
    hosts: &dyn Backend,
) -> Result<Layout, RunError> {
    let topology = scenario.topology().map_err(RunError::Scenario)?;
    let out = std::path::absolute(&options.out).map_err(|e| io(&options.out, e))?;
    let (logs, state) = (out.join("logs"), out.join("state"));
    for dir in [&logs, &state, &out.join("prometheus")] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
        }
    }
    for dir in [&logs, &state] {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let addresses = topology
        .hosts
        .iter()
        .map(|h| (h.name.clone(), hosts.address(h)))
        .collect();
    let first = |role: Role, name: &str| {
        topology
            .hosts_with_role(role)
            .next()
            .cloned()
            .ok_or_else(|| RunError::Scenario(format!("topology: needs a host with role {name}")))
    };
    let (cloud, edge) = (
        first(Role::MlfoCloud, "mlfo-cloud")?,
        first(Role::MlfoEdge, "mlfo-edge")?,
    );
    let security = options
        .security
        .unwrap_or(scenario.security)
        .on(options.backend == BackendKind::Netns);
    let secrets = security
        .then(|| Secrets::create(&state, &addresses))
        .transpose()?;
    let mut layout = Layout {
        topology,
        out,
        logs,
        state,
        addresses,
        cloud,
        edge,
        agents: Vec::new(),
        processes: Vec::new(),
        secrets,
    };
    layout.agents = layout
        .topology
        .hosts
        .iter()
        .filter(|h| {
            matches!(
                h.role,
                Role::Aggregator | Role::Client | Role::EdgeAggregator
            )
        })
        .map(|h| (h.clone(), layout.addr(h, node::DEFAULT_PORT)))
        .collect();
    layout.processes = agent_processes(&layout.agents, scenario.client_processes);
    check_memory(&layout.processes, testbed::limits::available_memory_bytes())?;
    Ok(layout)
}

/// The network controller (netns): inside the MLFOs' and Prometheus's
/// namespaces on their own loopback, and published for the runner.
fn start_controller(
    scenario: &Scenario,
    layout: &Layout,
    hosts: &mut dyn Backend,
) -> Result<Option<(String, SocketAddr)>, RunError> {
    let t = &layout.topology;
    let prometheus = t
        .hosts_with_role(Role::Prometheus)
        .next()
        .filter(|_| scenario.prometheus.enabled);
    let inside: Vec<&Host> = [Some(&layout.cloud), Some(&layout.edge), prometheus]
        .into_iter()
        .flatten()
        .collect();
    let traffic: Vec<&Host> = t.hosts_with_role(Role::Traffic).collect();
    let security = match &layout.secrets {
        Some(s) => s.server(CONTROLLER_CERT)?,
        None => httpd::Security::default(),
    };
    Ok(hosts.network_controller(&inside, &traffic, security)?)
}

/// FL servers an aggregator host may run at once in `dmo run`: a generated
/// topology has one aggregator per cohort, and this leaves room on it for
/// intents that share servers or run again centralised.
const AGGREGATOR_CAPACITY: usize = 4;

/// The node agents the cloud MLFO (aggregators) and the edge MLFO (clients
/// and edge aggregators) may use.
fn inventories(layout: &Layout) -> (Vec<mlfo::AgentEntry>, Vec<mlfo::AgentEntry>) {
    let scheme = scheme(layout);
    let entry = |h: &Host, a: SocketAddr, role, capacity| mlfo::AgentEntry {
        name: h.name.clone(),
        url: format!("{scheme}://{a}"),
        role,
        cohort: h.cohort.clone(),
        campus: h.campus.clone(),
        capacity,
    };
    let mut cloud_inventory = Vec::new();
    let mut edge_inventory = Vec::new();
    for (h, a) in &layout.agents {
        match h.role {
            Role::Aggregator => cloud_inventory.push(entry(
                h,
                *a,
                mlfo::AgentRole::Aggregator,
                AGGREGATOR_CAPACITY,
            )),
            Role::EdgeAggregator => edge_inventory.push(entry(
                h,
                *a,
                mlfo::AgentRole::EdgeAggregator,
                AGGREGATOR_CAPACITY,
            )),
            _ => edge_inventory.push(entry(h, *a, mlfo::AgentRole::Client, 1)),
        }
    }
    (cloud_inventory, edge_inventory)
}

/// The cloud and edge MLFOs' configurations.
fn mlfo_configs(
    scenario: &Scenario,
    layout: &Layout,
    controller: Option<&String>,
) -> Result<[mlfo::MlfoConfig; 2], RunError> {
    let (cloud_inventory, edge_inventory) = inventories(layout);
    let catalog = scenario
        .catalog_file(&layout.state)
        .map_err(RunError::Scenario)?;
    let timeouts = mlfo::config::Timeouts {
        poll_s: 0.25,
        job_s: scenario.timeouts.run_s,
        ..Default::default()
    };
    let cloud_momo = layout.addr(&layout.cloud, mlfo::DEFAULT_MOMO_PORT);
    let base = |h: &Host, role, inventory| mlfo::MlfoConfig {
        name: h.name.clone(),
        role,
        listen: layout.addr(h, mlfo::DEFAULT_REST_PORT),
        momo_listen: None,
        parent: None,
        state: layout.state.join(match role {
            mlfo::Role::Cloud => "cloud.sqlite",
            mlfo::Role::Edge => "edge.sqlite",
        }),
        catalog: catalog.clone(),
        inventory,
        timeouts: timeouts.clone(),
        http: mlfo::config::HttpOptions::default(),
        auth: layout
            .secrets
            .as_ref()
            .map(|s| mlfo::config::AuthOptions {
                user_tokens: Some(s.user.clone()),
                peer_tokens: Some(s.internal.clone()),
                token: Some(s.internal.clone()),
            })
            .unwrap_or_default(),
        tls: layout.secrets.as_ref().map(|s| {
            let (cert, key) = s.identity(&h.name);
            mlfo::config::TlsOptions {
                cert,
                key,
                ca: s.ca(),
            }
        }),
        server: mlfo::config::ServerOptions::default(),
        client: mlfo::config::ClientOptions::default(),
        momo: mlfo::MomoMode::default(),
        network_controller: None,
        network: None,
    };
    let cloud = mlfo::MlfoConfig {
        momo_listen: Some(cloud_momo),
        server: mlfo::config::ServerOptions {
            central_evaluation: scenario.central_evaluation,
            federated_evaluation: scenario.federated_evaluation,
            seed: scenario.seed,
            ..Default::default()
        },
        ..base(&layout.cloud, mlfo::Role::Cloud, cloud_inventory)
    };
    let edge = mlfo::MlfoConfig {
        parent: Some(format!("{}://{cloud_momo}", scheme(layout))),
        network_controller: controller.cloned(),
        network: declared_network(&layout.topology),
        momo: scenario.momo,
        client: mlfo::config::ClientOptions {
            partition: scenario.partition.clone(),
            seed: scenario.seed,
            attack: scenario.attack.clone(),
            ..Default::default()
        },
        ..base(&layout.edge, mlfo::Role::Edge, edge_inventory)
    };
    Ok([cloud, edge])
}

fn traffic_port(i: usize) -> String {
    (TRAFFIC_PORT + i as u16).to_string()
}

/// An iperf3 server on each background flow's receiving host.
fn start_traffic_servers(
    scenario: &Scenario,
    layout: &Layout,
    hosts: &mut dyn Backend,
) -> Result<(), RunError> {
    for (i, f) in scenario.background_traffic.iter().enumerate() {
        let to = layout
            .topology
            .host(&f.to)
            .ok_or_else(|| RunError::Scenario("background_traffic: unknown host".to_owned()))?;
        let mut c = Command::new("iperf3");
        c.args(["-s", "-f", "m", "-p", &traffic_port(i), "-B"])
            .arg(layout.addr(to, 0).ip().to_string());
        hosts.spawn(to, c, &layout.logs.join(format!("traffic-{i}-server.log")))?;
    }
    Ok(())
}

/// A node agent on every aggregator and client host: each in its own
/// process, or a group's in one (`dmo node --hosts`).
fn start_agents(
    options: &RunOptions,
    layout: &Layout,
    hosts: &mut dyn Backend,
) -> Result<(), RunError> {
    for p in &layout.processes {
        let mut c = Command::new(&options.dmo);
        c.args(["-v", "node", "--threads", "1"]);
        if p.grouped {
            let file = layout.state.join(format!("{}.yaml", p.host.name));
            write_group_hosts(layout, p, &file)?;
            c.arg("--hosts").arg(file);
        } else {
            c.arg("--listen").arg(p.members[0].1.to_string());
        }
        if let Some(s) = &layout.secrets {
            c.arg("--token-file").arg(&s.internal);
            c.arg("--root-certificates").arg(s.ca());
            if !p.grouped {
                let (cert, key) = s.identity(&p.host.name);
                c.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            }
        }
        hosts.spawn(&p.host, c, &layout.log(&p.host))?;
    }
    Ok(())
}

/// The `--hosts` file of a group's process: each member's name, address
/// and (security on) certificate.
fn write_group_hosts(layout: &Layout, p: &AgentProcess, file: &Path) -> Result<(), RunError> {
    let entries: Vec<serde_json::Value> = p
        .members
        .iter()
        .map(|(h, a)| {
            let mut e = serde_json::json!({ "name": h.name, "listen": a.to_string() });
            if let Some(s) = &layout.secrets {
                let (cert, key) = s.identity(&h.name);
                e["tls_cert"] = cert.display().to_string().into();
                e["tls_key"] = key.display().to_string().into();
            }
            e
        })
        .collect();
    let text = serde_json::to_string_pretty(&entries)
        .map_err(|e| RunError::Internal(format!("{}: {e}", file.display())))?;
    std::fs::write(file, text).map_err(|e| io(file, e))
}

/// Writes the MLFOs' configurations and starts them; their hosts and REST
/// addresses.
fn start_mlfos(
    options: &RunOptions,
    layout: &Layout,
    hosts: &mut dyn Backend,
    configs: [mlfo::MlfoConfig; 2],
) -> Result<[(Host, SocketAddr); 2], RunError> {
    let [cloud, edge] = configs;
    let mut started = Vec::new();
    for (h, config) in [(&layout.cloud, cloud), (&layout.edge, edge)] {
        let path = layout.state.join(format!("{}.yaml", h.name));
        let text = yaml_serde::to_string(&config)
            .map_err(|e| RunError::Internal(format!("{}: {e}", path.display())))?;
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        let mut c = Command::new(&options.dmo);
        c.args(["-v", "mlfo", "--config", &path.display().to_string()]);
        hosts.spawn(h, c, &layout.log(h))?;
        started.push((h.clone(), config.listen));
    }
    let [cloud, edge]: [(Host, SocketAddr); 2] = started
        .try_into()
        .map_err(|_| RunError::Internal("two MLFOs".to_owned()))?;
    Ok([cloud, edge])
}

/// Prometheus on its host when the scenario enables it, scraping every
/// agent, both MLFOs and the network controller.
fn start_prometheus(
    scenario: &Scenario,
    layout: &Layout,
    hosts: &mut dyn Backend,
    mlfos: &[(Host, SocketAddr); 2],
    controller: bool,
) -> Result<Option<(Host, SocketAddr, usize)>, RunError> {
    if !scenario.prometheus.enabled {
        return Ok(None);
    }
    let host = layout
        .topology
        .hosts_with_role(Role::Prometheus)
        .next()
        .ok_or_else(|| {
            RunError::Scenario(
                "prometheus.enabled: the topology has no host with role prometheus".to_owned(),
            )
        })?;
    let listen = layout.addr(host, PROMETHEUS_PORT);
    let mut targets: Vec<(String, SocketAddr, &str)> = layout
        .agents
        .iter()
        .map(|(h, a)| (h.name.clone(), *a, "node"))
        .chain(mlfos.iter().map(|(h, a)| (h.name.clone(), *a, "mlfo")))
        .collect();
    if controller {
        // The controller listens on Prometheus's own loopback.
        let local = SocketAddr::from(([127, 0, 0, 1], testbed::netns::controller::CONTROLLER_PORT));
        targets.push(("testbed".to_owned(), local, "testbed"));
    }
    let ca = layout.secrets.as_ref().map(Secrets::ca);
    let config = crate::prometheus::config(
        scenario.prometheus.scrape_interval_s,
        &targets,
        ca.as_deref(),
    );
    let path = layout.state.join("prometheus.yml");
    std::fs::write(&path, config).map_err(|e| io(&path, e))?;
    let mut c = Command::new(crate::prometheus::binary()?);
    c.arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            layout.out.join("prometheus").display()
        ))
        .arg(format!("--web.listen-address={listen}"));
    hosts.spawn(host, c, &layout.log(host))?;
    Ok(Some((host.clone(), listen, targets.len())))
}

/// Waits until every agent, MLFO and Prometheus answers, then publishes
/// the ports the runner uses (netns backend).
fn wait_ready(
    scenario: &Scenario,
    options: &RunOptions,
    layout: &Layout,
    hosts: &mut dyn Backend,
    mlfos: [(Host, SocketAddr); 2],
    prometheus: Option<(Host, SocketAddr, usize)>,
) -> Result<Started, RunError> {
    let ready = Duration::from_secs_f64(scenario.timeouts.ready_s);
    let agents = layout
        .processes
        .iter()
        .flat_map(|p| p.members.iter().map(|(_, a)| (&p.host, a)));
    for (h, a) in agents.chain(mlfos.iter().map(|(h, a)| (h, a))) {
        if options.cancel.load(Ordering::Relaxed) {
            return Err(RunError::Cancelled("cancelled"));
        }
        // An HTTPS server is ready once it accepts connections.
        let path = if layout.secrets.is_some() {
            ""
        } else {
            "/healthz"
        };
        hosts.wait_ready(h, *a, path, ready)?;
    }
    let prometheus = match prometheus {
        Some((h, a, count)) => {
            hosts.wait_ready(&h, a, "/-/ready", ready)?;
            let local = hosts.publish(&h, a, PROMETHEUS_PORT)?;
            Some((h, local, count))
        }
        None => None,
    };
    let (edge, edge_rest) = &mlfos[1];
    let edge_rest = hosts.publish(edge, *edge_rest, mlfo::DEFAULT_REST_PORT)?;
    Ok(Started {
        prometheus,
        edge_url: format!("{}://{edge_rest}", scheme(layout)),
        user_token: layout.secrets.as_ref().map(|s| s.user.clone()),
        roots: layout.secrets.as_ref().map(Secrets::roots).transpose()?,
        agents: layout
            .processes
            .iter()
            .map(|p| p.host.name.clone())
            .collect(),
    })
}

/// Starts each background flow's iperf3 client.
fn start_traffic(
    scenario: &Scenario,
    layout: &Layout,
    hosts: &mut dyn Backend,
) -> Result<(), RunError> {
    for (i, f) in scenario.background_traffic.iter().enumerate() {
        let t = &layout.topology;
        let (Some(from), Some(to)) = (t.host(&f.from), t.host(&f.to)) else {
            return Err(RunError::Scenario(format!(
                "background_traffic[{i}]: unknown host"
            )));
        };
        let mut c = Command::new("iperf3");
        c.args([
            "-c",
            &layout.addr(to, 0).ip().to_string(),
            "-p",
            &traffic_port(i),
        ])
        .args(["-b", &format!("{}K", (f.rate_mbit * 1000.0).round() as u64)])
        .args(["-t", "86400", "-i", "1", "-f", "m", "--forceflush"]);
        hosts.spawn(from, c, &layout.traffic_log(i))?;
    }
    Ok(())
}

/// What happened to the network while the intents ran.
struct NetworkEvents {
    /// The link schedule's changes as applied.
    changes: Vec<crate::schedule::AppliedChange>,
    /// When the first intent was sent, on the network charts' clock.
    fl_start_s: Option<f64>,
}

/// Lets the background traffic run alone for the scenario's
/// `background_lead_s` before the first intent (Ctrl-C ends the wait).
fn traffic_alone(scenario: &Scenario, options: &RunOptions) -> Result<(), RunError> {
    let end = Instant::now() + Duration::from_secs_f64(scenario.background_lead_s);
    while Instant::now() < end {
        if options.cancel.load(Ordering::Relaxed) {
            return Err(RunError::Cancelled("cancelled; every host was stopped"));
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    Ok(())
}

/// The intents as they ended.
struct Followed {
    /// Each sent intent's final record, in the order of the posts.
    records: Vec<IntentRecord>,
    /// Their ids and cohorts.
    ids: Vec<(String, String)>,
    /// Peak memory of all host processes together, bytes.
    peak_memory_bytes: u64,
    /// Node agents whose process ended while the intents ran.
    host_faults: Vec<HostFault>,
}

/// Sends the intents (each centralised twin once its intent has ended) and
/// follows them until all are final.
fn follow_intents(
    scenario: &Scenario,
    options: &RunOptions,
    hosts: &mut dyn Backend,
    started: &Started,
    started_at: Instant,
    progress: &mut dyn FnMut(&[IntentRecord]),
) -> Result<Followed, RunError> {
    let token = match &started.user_token {
        Some(path) => Some(
            httpd::auth::read_token(path)
                .map_err(|e| RunError::Internal(format!("run tokens: {e}")))?,
        ),
        None => None,
    };
    let edge = MlfoClient::new(
        &started.edge_url,
        Duration::from_secs(30),
        token.as_deref(),
        started.roots.as_ref(),
    )
    .map_err(|source| RunError::Mlfo {
        context: "the edge MLFO".to_owned(),
        source,
    })?;
    let posts = scenario.posts();
    // Per post: its intent's id and cohort once sent, and whether it ended.
    let mut sent: Vec<Option<(String, String)>> = vec![None; posts.len()];
    let mut ended = vec![false; posts.len()];
    let deadline = Duration::from_secs_f64(scenario.timeouts.run_s);
    let mut peak_memory_bytes = 0;
    let mut host_faults: Vec<HostFault> = Vec::new();
    loop {
        for (k, post) in posts.iter().enumerate() {
            if sent[k].is_none() && post.after.is_none_or(|a| ended[a]) {
                sent[k] = Some(post_intent(&edge, scenario, post)?);
            }
        }
        peak_memory_bytes = peak_memory_bytes.max(hosts.total_memory_bytes());
        let mut records = Vec::new();
        for (k, (id, _)) in sent
            .iter()
            .enumerate()
            .filter_map(|(k, s)| Some((k, s.as_ref()?)))
        {
            let r = edge.intent(id).map_err(|source| RunError::Mlfo {
                context: format!("following intent {id}"),
                source,
            })?;
            ended[k] = r.state.is_final();
            records.push(r);
        }
        progress(&records);
        if ended.iter().all(|e| *e) {
            return Ok(Followed {
                records,
                ids: sent.into_iter().flatten().collect(),
                peak_memory_bytes,
                host_faults,
            });
        }
        note_host_faults(hosts, started, started_at, &mut host_faults)?;
        if options.cancel.load(Ordering::Relaxed) {
            return Err(RunError::Cancelled("cancelled; every host was stopped"));
        }
        if started_at.elapsed() > deadline {
            return Err(RunError::TooLong(deadline.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Records each node agent whose process ended (once); fails the run when
/// any other host's did (an MLFO, Prometheus, a traffic endpoint).
fn note_host_faults(
    hosts: &mut dyn Backend,
    started: &Started,
    started_at: Instant,
    faults: &mut Vec<HostFault>,
) -> Result<(), RunError> {
    for ended in hosts.failures() {
        if !started.agents.contains(&ended.host) {
            return Err(ended.into());
        }
        if faults.iter().all(|f| f.host != ended.host) {
            eprintln!(
                "node agent {} ended; the run goes on: {}",
                ended.host, ended.problem
            );
            faults.push(HostFault {
                host: ended.host,
                at_s: started_at.elapsed().as_secs_f64(),
                problem: ended.problem,
            });
        }
    }
    Ok(())
}

/// Saves the scenario's Prometheus queries after two more scrapes, so
/// that the final values are in.
fn save_prometheus(
    scenario: &Scenario,
    layout: &Layout,
    http: &reqwest::blocking::Client,
    prometheus: SocketAddr,
) -> Result<(), RunError> {
    std::thread::sleep(Duration::from_secs_f64(
        2.0 * scenario.prometheus.scrape_interval_s + 0.5,
    ));
    let saved = crate::prometheus::query_all(http, prometheus, &scenario.prometheus.queries)?;
    let path = layout.out.join("metrics.json");
    let text =
        serde_json::to_string_pretty(&saved).map_err(|e| RunError::Internal(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| io(&path, e))
}

/// Stops the hosts and writes the results: `summary.json`, `rounds.csv`,
/// the network's CSV files and `report.html`.
fn collect(
    scenario: &Scenario,
    layout: &Layout,
    hosts: &mut dyn Backend,
    followed: &Followed,
    events: NetworkEvents,
    started_unix_s: f64,
    started_at: Instant,
) -> Result<Summary, RunError> {
    let topology = &layout.topology;
    let measurements = hosts.take_measurements();
    let mut network = measurements
        .as_ref()
        .map(|m| NetworkSummary::new(m, &topology.links));
    hosts.shutdown();
    if let (Some(n), Some(m)) = (&mut network, &measurements) {
        n.changes = events.changes;
        n.fl_start_s = events.fl_start_s;
        for (i, f) in scenario.background_traffic.iter().enumerate() {
            let output = std::fs::read_to_string(layout.traffic_log(i)).unwrap_or_default();
            n.background.push(
                TrafficSummary::from_iperf3(&f.from, &f.to, f.rate_mbit, &output).with_rtt(
                    &m.samples,
                    TRAFFIC_PORT + i as u16,
                    events.fl_start_s,
                ),
            );
        }
        n.write_csv(&layout.out)?;
    }
    let jobs = job_summaries(topology, followed, measurements.as_ref());
    let expectations = check(scenario, &jobs);
    let ok = jobs.iter().all(|j| j.state == mlfo::IntentState::Completed)
        && expectations.iter().all(|e| e.ok);
    let summary = Summary {
        schema: SCHEMA_VERSION,
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        started_unix_s,
        wall_s: started_at.elapsed().as_secs_f64(),
        testbed: TestbedSummary {
            backend: hosts.name().to_owned(),
            links_enforced: hosts.links_enforced(),
            hosts: topology.hosts.len(),
            clients: topology.hosts_with_role(Role::Client).count(),
            aggregators: topology.hosts_with_role(Role::Aggregator).count(),
            links: topology.links.clone(),
            topology_hosts: topology.hosts.clone(),
            switches: topology.switches.iter().map(|s| s.name.clone()).collect(),
            authenticated: layout.secrets.is_some(),
            encrypted: layout.secrets.is_some(),
        },
        jobs,
        expectations,
        ok,
        host_faults: followed.host_faults.clone(),
        network,
    };
    let out = &layout.out;
    summary.write_json(out)?;
    summary.write_csv(out)?;
    crate::report::write(&summary, out)?;
    Ok(summary)
}

/// The jobs of the followed intents, each with the bytes that crossed the
/// satellite hops while its intent ran (netns backend).
fn job_summaries(
    topology: &Topology,
    followed: &Followed,
    measurements: Option<&Measurements>,
) -> Vec<JobSummary> {
    let satellite = crate::schedule::satellite_links(topology);
    followed
        .records
        .iter()
        .zip(&followed.ids)
        .flat_map(|(r, (_, cohort))| {
            let bytes = measurements
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
        .collect()
}

/// The topology's figures of the path from the campuses to the cloud, for
/// the edge MLFO's cost model. The wide-area part is every switch-to-switch
/// link that no campus has to itself (in the generated topology the two
/// satellite hops): its smallest bandwidth, and twice its delays for the
/// RTT. A campus link is the slower of a client's link and its campus
/// switch's uplink. `None` where no such link declares a bandwidth.
fn declared_network(topology: &Topology) -> Option<mlfo::config::NetworkFigures> {
    let switch = |name: &str| topology.switches.iter().any(|s| s.name == name);
    let campuses: Vec<&str> = topology
        .hosts_with_role(Role::Client)
        .filter_map(|h| h.campus.as_deref())
        .collect();
    let (uplinks, wide): (Vec<&testbed::Link>, Vec<&testbed::Link>) = topology
        .links
        .iter()
        .filter(|l| switch(&l.a) && switch(&l.b))
        .partition(|l| campuses.contains(&l.a.as_str()) || campuses.contains(&l.b.as_str()));
    let wan_mbit = wide
        .iter()
        .filter_map(|l| l.bandwidth_mbit)
        .min_by(f64::total_cmp)?;
    let client_link = topology
        .hosts_with_role(Role::Client)
        .next()
        .and_then(|c| {
            topology
                .links
                .iter()
                .find(|l| l.a == c.name || l.b == c.name)
        })
        .and_then(|l| l.bandwidth_mbit);
    let campus_mbit = client_link
        .into_iter()
        .chain(uplinks.iter().filter_map(|l| l.bandwidth_mbit))
        .min_by(f64::total_cmp)
        .unwrap_or(wan_mbit);
    Some(mlfo::config::NetworkFigures {
        wan_mbit,
        rtt_ms: 2.0 * wide.iter().filter_map(|l| l.delay_ms).sum::<f64>(),
        campus_mbit,
        train_s: 0.0,
        // Every host of the testbed runs on this machine's cores.
        shared_cores: std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as f64),
    })
}

/// Sends one intent to the edge MLFO; its id and cohort.
fn post_intent(
    edge: &MlfoClient,
    scenario: &Scenario,
    post: &crate::scenario::IntentPost,
) -> Result<(String, String), RunError> {
    let i = post.intent;
    let cohort = scenario.intents[i].cohort.clone();
    let request = IntentRequest {
        intent: Value::String(scenario.intent_text(i).map_err(RunError::Scenario)?),
        cohort: CohortRequest {
            name: Some(cohort.clone()),
            ..CohortRequest::default()
        },
        constraints: scenario.post_constraints(post),
        momo: None,
        skip_clients: false,
    };
    let twin = if post.centralised {
        " (centralised)"
    } else {
        ""
    };
    let record = edge.submit(&request).map_err(|source| RunError::Mlfo {
        context: format!("intents[{i}]{twin}"),
        source,
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn agents_of(t: &Topology) -> Vec<(Host, SocketAddr)> {
        t.hosts
            .iter()
            .filter(|h| matches!(h.role, Role::Aggregator | Role::Client))
            .map(|h| (h.clone(), SocketAddr::new(h.address.into(), 5000)))
            .collect()
    }

    #[test]
    fn client_agents_are_grouped_by_campus_or_cohort_and_aggregators_stay_alone() {
        let t = testbed::generate(&testbed::GenOptions {
            cohorts: vec![150, 75, 75],
            campus_size: 50,
            ..Default::default()
        })
        .unwrap();
        let agents = agents_of(&t);
        let summary = |mode| -> Vec<(String, usize, bool)> {
            agent_processes(&agents, mode)
                .iter()
                .map(|p| (p.host.name.clone(), p.members.len(), p.grouped))
                .collect()
        };
        let alone = summary(ClientProcesses::Host);
        assert_eq!(alone.len(), 303);
        assert!(alone.iter().all(|(_, n, g)| *n == 1 && !g));
        let by_campus = summary(ClientProcesses::Campus);
        assert_eq!(
            &by_campus[..3],
            &[
                ("fed.1".to_owned(), 1, false),
                ("fed.2".to_owned(), 1, false),
                ("fed.3".to_owned(), 1, false)
            ]
        );
        let campuses: Vec<(String, usize, bool)> = (1..=6)
            .map(|n| (format!("clients-campus{n}"), 50, true))
            .collect();
        assert_eq!(&by_campus[3..], &campuses[..]);
        let by_cohort = summary(ClientProcesses::Cohort);
        assert_eq!(
            by_cohort[3..]
                .iter()
                .map(|(n, k, _)| (n.as_str(), *k))
                .collect::<Vec<_>>(),
            vec![
                ("clients-cohort1", 150),
                ("clients-cohort2", 75),
                ("clients-cohort3", 75)
            ]
        );
        // Each member keeps its own address, in topology order.
        let groups = agent_processes(&agents, ClientProcesses::Campus);
        let first = &groups[3];
        assert_eq!(first.members[0].0.name, "fc.10");
        assert_eq!(first.members[49].1, "10.0.1.59:5000".parse().unwrap());
    }

    #[test]
    fn a_link_schedule_is_refused_on_the_local_backend_before_anything_starts() {
        static CANCEL: AtomicBool = AtomicBool::new(false);
        let text = crate::scenario::DEFAULT_SCENARIO.to_owned()
            + "\nnetwork_schedule: [ { at_s: 5, links: satellite, bandwidth_mbit: 20 } ]\n";
        let scenario = Scenario::from_yaml("s.yaml", &text, std::path::Path::new(".")).unwrap();
        let options = |backend| RunOptions {
            dmo: PathBuf::from("dmo"),
            out: PathBuf::from("results"),
            run_byte: 9,
            backend,
            security: None,
            cancel: &CANCEL,
        };
        let e = check_backend(&scenario, &options(BackendKind::Local)).unwrap_err();
        assert!(
            e.to_string()
                .contains("network_schedule: needs --backend netns"),
            "{e}"
        );
        assert!(check_backend(&scenario, &options(BackendKind::Netns)).is_ok());
    }

    #[test]
    fn a_large_run_is_refused_when_its_estimate_exceeds_the_memory_available() {
        let t = testbed::generate(&testbed::GenOptions {
            cohorts: vec![500, 250, 250],
            campus_size: 250,
            ..Default::default()
        })
        .unwrap();
        let agents = agents_of(&t);
        let alone = agent_processes(&agents, ClientProcesses::Host);
        let grouped = agent_processes(&agents, ClientProcesses::Campus);
        assert_eq!(
            estimated_memory(&alone),
            (3 + 1000) * (8 << 20) + (256 << 20)
        );
        assert_eq!(
            estimated_memory(&grouped),
            3 * (8 << 20) + 4 * (72 << 20) + 1000 * (1 << 20) + (256 << 20)
        );
        let e = check_memory(&alone, Some(4 << 30)).unwrap_err().to_string();
        assert_eq!(
            e,
            "the hosts of 1000 clients need about 8280 MiB and this machine has 4096 MiB available; set client_processes: campus (a client then costs about 1 MiB instead of 8), use fewer clients, or free memory"
        );
        check_memory(&grouped, Some(4 << 30)).unwrap();
        check_memory(&alone, None).unwrap();
        assert!(
            check_memory(&grouped, Some(1 << 29))
                .unwrap_err()
                .to_string()
                .ends_with("use fewer clients or free memory")
        );
    }

    #[test]
    fn the_declared_network_is_the_satellite_path_and_a_campus_link() {
        let figures = |options: testbed::GenOptions| {
            declared_network(&testbed::generate(&options).unwrap()).unwrap()
        };
        let seed = figures(testbed::GenOptions::default());
        assert_eq!(
            (seed.wan_mbit, seed.rtt_ms, seed.campus_mbit),
            (500.0, 48.0, 500.0)
        );
        let slow = figures(testbed::GenOptions {
            satellite_bandwidth_mbit: Some(20.0),
            satellite_delay_ms: 0.0,
            ..Default::default()
        });
        assert_eq!(
            (slow.wan_mbit, slow.rtt_ms, slow.campus_mbit),
            (20.0, 0.0, 500.0)
        );
    }
}
