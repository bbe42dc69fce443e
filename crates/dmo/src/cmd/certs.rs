//! `dmo certs ...`: the credentials dmo's servers accept: a certificate
//! authority with a certificate per host (TLS), and bearer tokens.

use anyhow::{Context, bail};
use clap::Subcommand;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `dmo certs ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCmd {
    /// Make a certificate authority (DIR/ca.pem, DIR/ca.key) and, signed by
    /// it, a certificate and key per host (DIR/HOST.pem, DIR/HOST.key),
    /// valid for the host's name, its addresses, localhost and 127.0.0.1.
    /// Keys are written readable by their owner alone.
    Init {
        /// Directory to write into (created; existing files are replaced).
        dir: PathBuf,
        /// Topology file: a certificate for each of its hosts, with its address.
        #[arg(long)]
        topology: Option<PathBuf>,
        /// A host, as NAME or NAME=IP[,IP...] (repeatable).
        #[arg(long = "host", value_name = "NAME[=IP,...]")]
        hosts: Vec<String>,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
    /// Write a new random bearer token (32 random bytes, hex) to FILE,
    /// readable by its owner alone; the token itself is not printed.
    Token {
        /// The token file to write (replaced if it exists).
        file: PathBuf,
    },
}

/// Runs one `dmo certs` subcommand.
pub fn run(cmd: CertsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCmd::Init {
            dir,
            topology,
            hosts,
            days,
        } => {
            let mut wanted = Vec::new();
            if let Some(path) = &topology {
                let t = testbed::Topology::load(path)
                    .with_context(|| format!("--topology {}", path.display()))?;
                wanted.extend(
                    t.hosts
                        .iter()
                        .map(|h| (h.name.clone(), vec![IpAddr::V4(h.address)])),
                );
            }
            for h in &hosts {
                wanted.push(parse_host(h)?);
            }
            if wanted.is_empty() {
                bail!("name the hosts: --topology FILE or --host NAME[=IP,...]");
            }
            httpd::certs::init(&dir, &wanted, days)?;
            println!(
                "wrote {}/ca.pem and a certificate for each of {} host(s); give ca.pem to every client",
                dir.display(),
                wanted.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        CertsCmd::Token { file } => {
            httpd::auth::write_token_file(&file, &httpd::auth::generate())
                .with_context(|| format!("writing {}", file.display()))?;
            println!(
                "wrote a new token to {} (mode 0600); servers accept it when it is a line of their token file",
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `NAME` or `NAME=IP[,IP...]`.
fn parse_host(text: &str) -> anyhow::Result<(String, Vec<IpAddr>)> {
    let (name, ips) = text.split_once('=').unwrap_or((text, ""));
    let name = name.trim();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !valid {
        bail!(
            "--host {text:?}: the name must be letters, digits, dots and dashes, e.g. fed.1=10.0.0.11"
        );
    }
    let ips = ips
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("--host {text:?}: {s:?} is not an IP address"))
        })
        .collect::<anyhow::Result<Vec<IpAddr>>>()?;
    Ok((name.to_owned(), ips))
}
