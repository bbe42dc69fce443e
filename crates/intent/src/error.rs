//! Errors about intents and catalogs, with the place a person must fix.

use std::fmt;

/// One semantic problem with a field: where it is, the rule it breaks, and
/// the offending value (absent when the field is missing).
///
/// Displays as `targets[0].constraints.fracfit: must be in (0, 1], got 1.5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the document, e.g. `targets[0].constraints.fracfit`.
    pub path: String,
    /// The rule, phrased as what the value must be, e.g. `must be in (0, 1]`.
    pub rule: String,
    /// The value as the user wrote it (strings quoted), if there was one.
    pub got: Option<String>,
}

impl FieldError {
    /// A field that breaks `rule` with the value `got`.
    pub fn new(path: impl Into<String>, rule: impl Into<String>, got: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            rule: rule.into(),
            got: Some(got.into()),
        }
    }

    /// A field that is required but missing.
    pub fn missing(path: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            rule: rule.into(),
            got: None,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.rule)?;
        if let Some(got) = &self.got {
            write!(f, ", got {got}")?;
        }
        Ok(())
    }
}

/// One problem found in an intent document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(String),
    /// The document is larger than [`crate::MAX_DOCUMENT_BYTES`].
    #[error("document is {size} bytes, the limit is {limit} bytes")]
    TooLarge {
        /// Size of the document in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The document is not well-formed YAML or JSON.
    #[error("{}syntax error: {message}", location_prefix(*.line, *.column))]
    Syntax {
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        /// What the parser found.
        message: String,
    },
    /// A field breaks a rule.
    #[error("{0}")]
    Field(FieldError),
}

fn location_prefix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{l}:{c}: "),
        (Some(l), None) => format!("{l}: "),
        _ => String::new(),
    }
}

/// Drops a parser's own ` at line L column C` from its message (we print
/// `file:L:C:` instead).
pub(crate) fn strip_location(message: &str, line: usize, column: usize) -> String {
    message
        .replacen(&format!(" at line {line} column {column}"), "", 1)
        .trim()
        .to_owned()
}

/// `:line:col: ` after a file name when the location is known, else `: `.
fn file_separator(line: Option<usize>, column: Option<usize>) -> String {
    match location_prefix(line, column).as_str() {
        "" => ": ".to_owned(),
        prefix => format!(":{prefix}"),
    }
}

/// Everything wrong with one intent document, tagged with its file name.
///
/// Displays one problem per line, each prefixed by the file name:
/// `intent.yaml: targets[0].constraints.fracfit: must be in (0, 1], got 1.5`
/// or, for syntax errors, `intent.yaml:3:7: syntax error: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentError {
    /// The file (or other source) name the problems refer to.
    pub file: String,
    /// The problems, in document order where possible; never empty.
    pub problems: Vec<Problem>,
}

impl IntentError {
    /// Wraps field errors (e.g. from [`crate::Catalog::resolve`]) with a file name.
    pub fn from_fields(file: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            file: file.into(),
            problems: errors.into_iter().map(Problem::Field).collect(),
        }
    }
}

impl fmt::Display for IntentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            // Syntax errors read `file:line:col: ...`, the others `file: ...`.
            match problem {
                Problem::Syntax {
                    line,
                    column,
                    message,
                } => write!(
                    f,
                    "{}{}syntax error: {message}",
                    self.file,
                    file_separator(*line, *column)
                )?,
                other => write!(f, "{}: {other}", self.file)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for IntentError {}

/// A pipeline catalog that cannot be read or breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// The catalog file.
        file: String,
        /// Why.
        message: String,
    },
    /// The file is not a well-formed catalog (YAML syntax, shape or names);
    /// the message names the field where the parser knows it.
    #[error("{file}{}{message}", file_separator(*.line, *.column))]
    Parse {
        /// The catalog file.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What the parser found.
        message: String,
    },
    /// An entry breaks a rule.
    #[error("{file}: {error}")]
    Field {
        /// The catalog file.
        file: String,
        /// The field and rule.
        error: FieldError,
    },
}
