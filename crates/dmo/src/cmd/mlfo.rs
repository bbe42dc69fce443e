//! `dmo mlfo`: an ML function orchestrator, edge or cloud role.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dmo mlfo`.
#[derive(Debug, Args)]
pub struct MlfoArgs {
    /// MLFO configuration file (role, listen addresses, parent, inventory,
    /// catalog, state database); see docs/mlfo.md.
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs the MLFO until Ctrl-C or SIGTERM.
pub fn run(args: MlfoArgs) -> anyhow::Result<ExitCode> {
    let config = mlfo::MlfoConfig::load(&args.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let name = config.name.clone();
        let listen = config.listen;
        let momo = config.momo_listen;
        let orchestrator = mlfo::Mlfo::new(config).context("--config")?;
        eprintln!(
            "MLFO {name} listening on http://{listen}{}",
            momo.map(|m| format!(" (Mo-Mo on {m})")).unwrap_or_default()
        );
        mlfo::serve(orchestrator, super::shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}
