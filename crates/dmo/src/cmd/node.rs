//! `dmo node`: the node agent, a REST service that starts and stops FL
//! servers and clients on this host.

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dmo node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Address of the node agent's REST API; FL servers listen on its IP.
    #[arg(long, default_value = "127.0.0.1:5000", conflicts_with = "hosts")]
    pub listen: SocketAddr,
    /// Serve many hosts from this one process: a YAML list of `{ name,
    /// listen, tls_cert, tls_key }` (certificate and key optional). Each
    /// host gets its own agent on its own address; their clients share
    /// the dataset, the training threads and `--training-slots`.
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// With `--hosts`: how many of the process's clients train at once
    /// (default: one per core).
    #[arg(long, requires = "hosts", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub training_slots: Option<u32>,
    /// Host named in the FL server addresses the agent replies with (default: the listen IP).
    #[arg(long)]
    pub advertise: Option<String>,
    /// First FL server port; later servers take the next free ones.
    #[arg(long, default_value_t = node::DEFAULT_FL_PORT_BASE)]
    pub fl_port_base: u16,
    /// Dataset directory (else $DMO_DATA_DIR, then the system locations).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Training threads per FL client when a request does not say (0: one per core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// HTTP connections open at once; one more waits up to 2 s for a slot,
    /// then is answered 503 and closed.
    #[arg(long, default_value_t = httpd::DEFAULT_MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,
    /// Seconds a client may take to send a request's headers, and that an
    /// idle keep-alive connection stays open.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_s: u64,
    /// Token file: the bearer tokens this agent accepts (its MLFO's), one
    /// per line; every route but /healthz and /metrics needs one. Unset:
    /// anyone who can reach the port may start and stop jobs.
    #[arg(long, env = "DMO_NODE_TOKENS")]
    pub token_file: Option<PathBuf>,
    /// HTTPS: this agent's certificate (PEM; `dmo certs init` writes HOST.pem).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// HTTPS: this agent's private key (PEM, HOST.key). The certificate
    /// and key also serve the FL servers a request asks TLS of.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA (PEM, ca.pem) that FL clients and edge aggregators asked for
    /// TLS trust for their server.
    #[arg(long)]
    pub root_certificates: Option<PathBuf>,
}

/// One host of `dmo node --hosts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    name: String,
    listen: SocketAddr,
    #[serde(default)]
    tls_cert: Option<PathBuf>,
    #[serde(default)]
    tls_key: Option<PathBuf>,
}

/// Most hosts one `dmo node --hosts` process serves.
const MAX_GROUP_HOSTS: usize = 10_000;
/// Blocking threads of a process serving many hosts.
const GROUP_BLOCKING_THREADS: usize = 32;
/// File descriptors a grouped host may hold: its listener, an FL
/// connection, the REST connections of its MLFO and Prometheus.
const FDS_PER_HOST: u64 = 6;

/// Reads and checks a `--hosts` file.
fn read_hosts(path: &std::path::Path) -> anyhow::Result<Vec<HostEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--hosts: reading {}", path.display()))?;
    let hosts: Vec<HostEntry> = yaml_serde::from_str(&text).with_context(|| {
        format!(
            "--hosts {}: expected a list of {{ name, listen, tls_cert, tls_key }}",
            path.display()
        )
    })?;
    if hosts.is_empty() || hosts.len() > MAX_GROUP_HOSTS {
        anyhow::bail!(
            "--hosts {}: lists {} hosts; give 1 to {MAX_GROUP_HOSTS}",
            path.display(),
            hosts.len()
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, h) in hosts.iter().enumerate() {
        if !seen.insert(h.listen) {
            anyhow::bail!(
                "--hosts {}: hosts[{i}].listen: {} is listed twice; give each host its own address",
                path.display(),
                h.listen
            );
        }
        if h.tls_cert.is_some() != h.tls_key.is_some() {
            anyhow::bail!(
                "--hosts {}: hosts[{i}] ({}): give tls_cert and tls_key together",
                path.display(),
                h.name
            );
        }
    }
    Ok(hosts)
}

/// What every host of the process shares: tokens, roots and job defaults.
struct Common {
    tokens: Option<httpd::auth::Tokens>,
    roots: Option<fl::tls::ClientTls>,
    limits: httpd::Limits,
}

/// The agent of one host listening on `listen` with `cert`/`key`.
async fn host_agent(
    args: &NodeArgs,
    common: &Common,
    listen: SocketAddr,
    tls: Option<(&std::path::Path, &std::path::Path)>,
    group: Option<node::Group>,
) -> anyhow::Result<node::group::GroupHost> {
    let mut security = match &common.tokens {
        Some(tokens) => httpd::Security::tokens(tokens.clone()),
        None => httpd::Security::default(),
    };
    let mut tls_identity = None;
    if let Some((cert, key)) = tls {
        security.tls = Some(httpd::tls::server_config(cert, key).context("--tls-cert/--tls-key")?);
        tls_identity = Some(fl::tls::ServerTls::read(cert, key).context("--tls-cert/--tls-key")?);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {listen}"))?;
    let config = node::AgentConfig {
        ip: listen.ip(),
        advertise: match (&args.advertise, &group) {
            (Some(a), None) => a.clone(),
            _ => listen.ip().to_string(),
        },
        fl_port_base: args.fl_port_base,
        data_dir: args.data_dir.clone(),
        threads: args.threads,
        tls_identity,
        tls_roots: common.roots.clone(),
        group,
    };
    Ok(node::group::GroupHost {
        agent: node::Agent::new(config),
        listener,
        security,
    })
}

/// Runs the node agent (or, with `--hosts`, one per host) until Ctrl-C.
pub fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if args.hosts.is_some() {
        // Many clients load their data and train on blocking threads: a
        // few dozen serve them in turn (training waits for its slot anyway).
        builder.max_blocking_threads(GROUP_BLOCKING_THREADS);
    }
    let rt = builder.enable_all().build()?;
    let common = Common {
        tokens: args
            .token_file
            .as_deref()
            .map(httpd::auth::Tokens::read)
            .transpose()
            .context("--token-file")?,
        roots: args
            .root_certificates
            .as_deref()
            .map(fl::tls::ClientTls::read)
            .transpose()
            .context("--root-certificates")?,
        limits: httpd::Limits {
            max_connections: args.max_connections as usize,
            header_timeout: std::time::Duration::from_secs(args.header_timeout_s),
            ..httpd::Limits::default()
        },
    };
    rt.block_on(async {
        match &args.hosts {
            Some(path) => serve_group(&args, &common, path).await,
            None => serve_one(&args, &common).await,
        }
    })
}

async fn serve_one(args: &NodeArgs, common: &Common) -> anyhow::Result<ExitCode> {
    let tls = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
    let host = host_agent(args, common, args.listen, tls, None).await?;
    eprintln!(
        "node agent listening on {}://{} ({}; FL servers from port {})",
        host.security.scheme(),
        host.listener.local_addr()?,
        host.security.describe(),
        args.fl_port_base
    );
    node::serve(
        host.listener,
        host.agent,
        common.limits,
        host.security,
        super::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn serve_group(
    args: &NodeArgs,
    common: &Common,
    path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let entries = read_hosts(path)?;
    let needed = 64 + FDS_PER_HOST * entries.len() as u64;
    testbed::limits::ensure_open_files(needed, &format!("--hosts with {} hosts", entries.len()))
        .map_err(anyhow::Error::msg)?;
    let slots = args.training_slots.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        |n| n as usize,
    );
    let group = node::Group::new(slots);
    let mut hosts = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let tls = e.tls_cert.as_deref().zip(e.tls_key.as_deref());
        let host = host_agent(args, common, e.listen, tls, Some(group.clone()))
            .await
            .with_context(|| format!("--hosts: hosts[{i}] ({})", e.name))?;
        hosts.push(host);
    }
    let scheme = hosts.first().map_or("http", |h| h.security.scheme());
    eprintln!(
        "node agents of {} hosts listening ({scheme}; {} to {}), training {slots} at a time",
        hosts.len(),
        entries[0].listen,
        entries[entries.len() - 1].listen
    );
    node::group::serve(hosts, common.limits, super::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
