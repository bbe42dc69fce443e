//! `dmo testbed ...`: generate topologies; bring them up on network
//! namespaces and down again.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use testbed::netns::controller::Controller;
use testbed::netns::{NetnsTestbed, down_all, down_run};
use testbed::{GenOptions, Topology, generate, topology::even_split};

/// `dmo testbed ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum TestbedCmd {
    /// Write the prototype-shaped topology (YAML) for the given cohorts.
    Gen {
        /// Number of cohorts, the clients split evenly (with --clients).
        #[arg(long, conflicts_with = "split")]
        cohorts: Option<usize>,
        /// Total clients (with --cohorts).
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// Cohort sizes, e.g. 30,10,10 (default 30,10,10).
        #[arg(long, value_delimiter = ',')]
        split: Vec<usize>,
        /// Delay of each of the two satellite hops, ms.
        #[arg(long, default_value_t = 12.0)]
        satellite_delay_ms: f64,
        /// Loss on the satellite hops, percent.
        #[arg(long, default_value_t = 0.0)]
        satellite_loss_pct: f64,
        /// Jitter of the satellite hops, ms (uniform, at most the delay).
        #[arg(long, default_value_t = 0.0)]
        satellite_jitter_ms: f64,
        /// Bandwidth of every link, Mbit/s.
        #[arg(long, default_value_t = 500.0)]
        bandwidth_mbit: f64,
        /// Bandwidth of the two satellite hops, Mbit/s (default: --bandwidth-mbit).
        #[arg(long)]
        satellite_bandwidth_mbit: Option<f64>,
        /// Bandwidth of the campus links (campus hosts to their switch, the
        /// switch to edgesw), Mbit/s (default: --bandwidth-mbit).
        #[arg(long)]
        campus_bandwidth_mbit: Option<f64>,
        /// One edge aggregator host `fla.N` per campus (hierarchical FL).
        #[arg(long)]
        edge_aggregators: bool,
        /// Clients per campus switch.
        #[arg(long, default_value_t = 10)]
        campus_size: usize,
        /// Write here instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Bring a topology up on network namespaces (root) and hold it until
    /// Ctrl-C or SIGTERM, then tear it down. Hosts are namespaces
    /// `dmo-R-HOST`: run programs in them with `ip netns exec dmo-R-HOST ...`.
    Up {
        /// Topology file (YAML, docs/topology.md); the prototype's shape
        /// with 30,10,10 clients when omitted.
        topology: Option<PathBuf>,
        /// Run byte R of the namespace and cgroup names (2..=254).
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..=254))]
        run_byte: Option<u8>,
        /// Seed of the delay lines' loss draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Token file: the bearer tokens the network controller accepts
        /// (the MLFOs'); unset, anyone on the machine may set meters.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// HTTPS for the network controller: its certificate (PEM).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// HTTPS for the network controller: its private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Remove what a testbed left: its processes, namespaces (with their
    /// links, bridges and qdiscs) and cgroups; also after the process that
    /// brought it up was killed.
    Down {
        /// The run byte of the testbed to remove.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        run: Option<u8>,
        /// Remove every testbed of dmo on this machine.
        #[arg(long)]
        all: bool,
    },
}

/// Runs one `dmo testbed` subcommand.
pub fn run(cmd: TestbedCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TestbedCmd::Gen {
            cohorts,
            clients,
            split,
            satellite_delay_ms,
            satellite_loss_pct,
            satellite_jitter_ms,
            bandwidth_mbit,
            satellite_bandwidth_mbit,
            campus_bandwidth_mbit,
            edge_aggregators,
            campus_size,
            out,
        } => {
            let sizes = match (cohorts, split.is_empty()) {
                (Some(n), _) => even_split(clients, n),
                (None, false) => split,
                (None, true) => GenOptions::default().cohorts,
            };
            let topology = generate(&GenOptions {
                cohorts: sizes,
                satellite_delay_ms,
                satellite_loss_pct,
                satellite_jitter_ms,
                bandwidth_mbit,
                satellite_bandwidth_mbit,
                campus_bandwidth_mbit,
                edge_aggregators,
                campus_size,
                ..GenOptions::default()
            })
            .map_err(anyhow::Error::msg)?;
            let text = topology.to_yaml();
            match out {
                Some(path) => std::fs::write(&path, text)?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        TestbedCmd::Up {
            topology,
            run_byte,
            seed,
            token_file,
            tls_cert,
            tls_key,
        } => {
            let tls = tls_cert.zip(tls_key);
            up(topology, run_byte, seed, token_file.as_deref(), tls)
        }
        TestbedCmd::Down { run, all } => {
            let removed = match run {
                Some(r) if !all => {
                    down_run(r)?;
                    vec![r]
                }
                _ => down_all()?,
            };
            if removed.is_empty() {
                println!("no dmo testbed was up");
            }
            for r in removed {
                println!("removed testbed run {r}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `dmo testbed up`: builds the topology, prints its hosts, waits for
/// Ctrl-C or SIGTERM, tears it down.
fn up(
    path: Option<PathBuf>,
    run_byte: Option<u8>,
    seed: u64,
    token_file: Option<&std::path::Path>,
    tls: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<ExitCode> {
    let security = match token_file {
        Some(p) => httpd::Security::tokens(httpd::auth::Tokens::read(p).context("--token-file")?),
        None => httpd::Security::default(),
    };
    let mut security = security;
    if let Some((cert, key)) = &tls {
        security.tls = Some(httpd::tls::server_config(cert, key).context("--tls-cert/--tls-key")?);
    }
    let topology = match &path {
        Some(p) => Topology::load(p)?,
        None => generate(&GenOptions::default()).map_err(anyhow::Error::msg)?,
    };
    let run = run_byte.unwrap_or_else(testbed::local::default_run_byte);
    let started = std::time::Instant::now();
    let mut bed = NetnsTestbed::up(&topology, run, seed)?;
    let plan = bed.plan();
    println!(
        "testbed run {run} up in {:.2} s: {} hosts, {} switches, {} links; delay and loss by the {}",
        started.elapsed().as_secs_f64(),
        plan.hosts.len(),
        plan.bridges.len(),
        plan.links.len(),
        bed.impairment().as_str()
    );
    for h in &plan.hosts {
        let cpus = h.cpus.map(|c| format!(", {c} CPUs")).unwrap_or_default();
        println!(
            "  {:<14} {:<12} ip netns exec {}{cpus}",
            h.name, h.address, h.ns
        );
    }
    let traffic = topology
        .hosts_with_role(testbed::Role::Traffic)
        .map(|h| h.name.clone())
        .collect();
    let (described, scheme) = (security.describe(), security.scheme());
    let (controller, controller_addr) = Controller::for_testbed(&bed, &[], traffic, security)?;
    println!(
        "network controller (meters, ONOS meter and flow shapes, /metrics): {scheme}://{controller_addr} ({described})"
    );
    println!(
        "Ctrl-C (or SIGTERM) tears it down; `dmo testbed down --run {run}` removes it if this process is killed."
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?
        .block_on(super::shutdown_signal());
    drop(controller);
    bed.down()?;
    println!("testbed run {run} removed");
    Ok(ExitCode::SUCCESS)
}
