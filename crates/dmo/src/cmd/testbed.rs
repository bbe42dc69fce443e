//! `dmo testbed ...`: generate topologies; bring them up and down.

use super::pending;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use testbed::{GenOptions, generate, topology::even_split};

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
        /// Bandwidth of every link, Mbit/s.
        #[arg(long, default_value_t = 500.0)]
        bandwidth_mbit: f64,
        /// Write here instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Bring a topology up on network namespaces (issue #7).
    Up,
    /// Tear a topology down (issue #7).
    Down,
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
            bandwidth_mbit,
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
                bandwidth_mbit,
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
        TestbedCmd::Up => pending::not_yet("testbed up", 7),
        TestbedCmd::Down => pending::not_yet("testbed down", 7),
    }
}
