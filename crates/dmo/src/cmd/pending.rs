//! Subcommands whose implementation has not landed yet say so and exit
//! non-zero instead of pretending.

use std::process::ExitCode;

/// Reports that `what` is not implemented yet, naming the issue that tracks it.
pub fn not_yet(what: &str, issue: u32) -> anyhow::Result<ExitCode> {
    eprintln!("dmo {what}: not implemented yet (tracked in issue #{issue})");
    Ok(ExitCode::from(2))
}
