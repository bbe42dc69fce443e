//! `dmo node`: the node agent, a REST service that starts and stops FL
//! servers and clients on this host.

use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dmo node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Address of the node agent's REST API; FL servers listen on its IP.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,
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

/// Runs the node agent until Ctrl-C.
pub fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut security = match &args.token_file {
        Some(path) => {
            httpd::Security::tokens(httpd::auth::Tokens::read(path).context("--token-file")?)
        }
        None => httpd::Security::default(),
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        security.tls = Some(httpd::tls::server_config(cert, key).context("--tls-cert/--tls-key")?);
    }
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("--listen: cannot listen on {}", args.listen))?;
        let config = node::AgentConfig {
            ip: args.listen.ip(),
            advertise: args
                .advertise
                .unwrap_or_else(|| args.listen.ip().to_string()),
            fl_port_base: args.fl_port_base,
            data_dir: args.data_dir,
            threads: args.threads,
            tls_identity: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => {
                    Some(fl::tls::ServerTls::read(cert, key).context("--tls-cert/--tls-key")?)
                }
                _ => None,
            },
            tls_roots: args
                .root_certificates
                .as_deref()
                .map(fl::tls::ClientTls::read)
                .transpose()
                .context("--root-certificates")?,
        };
        eprintln!(
            "node agent listening on {}://{} ({}; FL servers from port {})",
            security.scheme(),
            listener.local_addr()?,
            security.describe(),
            config.fl_port_base
        );
        let limits = httpd::Limits {
            max_connections: args.max_connections as usize,
            header_timeout: std::time::Duration::from_secs(args.header_timeout_s),
            ..httpd::Limits::default()
        };
        node::serve(
            listener,
            node::Agent::new(config),
            limits,
            security,
            super::shutdown_signal(),
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}
