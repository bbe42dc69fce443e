//! Why an experiment could not run or write its results.

use std::path::{Path, PathBuf};

/// Why an experiment could not run, or its results not be written.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario or its topology does not hold together; the text names
    /// the field and the fix.
    #[error("{0}")]
    Scenario(String),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The network-namespace testbed could not be brought up.
    #[error("netns backend: {0}")]
    Netns(#[from] testbed::netns::sys::SysError),
    /// A host process or the backend failed.
    #[error(transparent)]
    Host(#[from] testbed::local::HostError),
    /// The edge MLFO refused or failed a call about an intent.
    #[error("{context}: {source}")]
    Mlfo {
        /// Which intent, or what the runner was doing.
        context: String,
        /// The call's error.
        source: mlfo::client::ClientError,
    },
    /// Prometheus could not be found, started or asked.
    #[error("{0}")]
    Prometheus(String),
    /// The run was cancelled (Ctrl-C); every host was stopped.
    #[error("{0}")]
    Cancelled(&'static str),
    /// The run took longer than the scenario allows.
    #[error("the run took more than timeouts.run_s ({0} s)")]
    TooLong(u64),
    /// The results could not be written.
    #[error(transparent)]
    Results(#[from] crate::summary::ResultsError),
    /// The report's charts could not be drawn.
    #[error("{0}")]
    Chart(String),
    /// Something of the runner's own failed (an HTTP client, a serialiser).
    #[error("{0}")]
    Internal(String),
}

/// An I/O error on `path`.
pub(crate) fn io(path: &Path, source: std::io::Error) -> RunError {
    RunError::Io {
        path: path.to_owned(),
        source,
    }
}
