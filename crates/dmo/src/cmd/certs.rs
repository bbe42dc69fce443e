//! `dmo certs ...`: the credentials dmo's servers accept.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `dmo certs ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCmd {
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
