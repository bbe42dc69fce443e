//! Why a dataset could not be read, found or generated.

use std::path::PathBuf;

/// A dataset could not be read, found or generated; file errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file does not start with the magic number of its format.
    #[error("{path}: bad magic number: expected {expected}, got {got}")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What the format requires.
        expected: String,
        /// What the file holds.
        got: String,
    },
    /// The file ends before the data its header announces.
    #[error("{path} is truncated: expected {expected} bytes, got {got}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header announces (or the format needs).
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The file (or what it announces) is larger than this reader accepts.
    #[error("{path}: {what} is {size}, above the limit of {limit}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What is too large (bytes, examples, ...).
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is readable but its content is wrong.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or folder).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The dataset is not on this machine.
    #[error("dataset `{dataset}` not found (looked in {}); to get it: {how_to_get}", searched_list(.searched))]
    Missing {
        /// The dataset's name.
        dataset: String,
        /// Folders searched, in order.
        searched: Vec<PathBuf>,
        /// How to install it.
        how_to_get: String,
    },
    /// No dataset has that name.
    #[error("unknown dataset `{name}`; known: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
}

fn searched_list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no folder".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl DataError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Invalid content in `path`.
    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
