//! Bearer tokens: the tokens a server accepts, the token a client presents,
//! and the layer that refuses a request without one (`401`) or with one the
//! server does not accept (`403`).
//!
//! A token file holds one token per line; blank lines and lines starting
//! with `#` are skipped. A token is 16 to 256 visible ASCII characters.
//! Tokens are compared in constant time and never shown: their `Debug` is
//! redacted, and refusals name the file to check, not the token.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Fewest characters of a token.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Most characters of a token.
pub const MAX_TOKEN_CHARS: usize = 256;
/// Largest token file read.
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;
/// Paths served without a token: liveness and the metrics Prometheus
/// scrapes (numbers only, never a token).
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/metrics"];

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("{path}: cannot read the token file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_TOKEN_FILE_BYTES`].
    #[error("{path}: a token file holds at most {MAX_TOKEN_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line is not a token.
    #[error(
        "{path}: line {line}: a token is {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} visible ASCII characters \
         without spaces; make one with `dmo certs token`"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The file holds no token.
    #[error("{path}: holds no token; write one per line (`dmo certs token` makes one)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The tokens a server accepts.
#[derive(Clone)]
pub struct Tokens {
    accepted: Vec<String>,
    /// Where they came from, named in refusals.
    source: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tokens({} from {}, redacted)",
            self.accepted.len(),
            self.source
        )
    }
}

/// Whether `token` has the shape of a token.
fn well_formed(token: &str) -> bool {
    (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_graphic())
}

/// The tokens of a token file, in order.
fn read_lines(path: &Path) -> Result<Vec<String>, TokenError> {
    let read = |source| TokenError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_TOKEN_FILE_BYTES {
        return Err(TokenError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !well_formed(line) {
            return Err(TokenError::Malformed {
                path: path.to_owned(),
                line: i + 1,
            });
        }
        tokens.push(line.to_owned());
    }
    if tokens.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tokens)
}

impl Tokens {
    /// The tokens of the token file at `path`.
    pub fn read(path: &Path) -> Result<Self, TokenError> {
        Ok(Self {
            accepted: read_lines(path)?,
            source: path.display().to_string(),
        })
    }

    /// Whether `presented` is one of the tokens (constant time in the
    /// token's characters).
    pub fn accepts(&self, presented: &str) -> bool {
        self.accepted.iter().fold(false, |found, t| {
            found | bool::from(t.as_bytes().ct_eq(presented.as_bytes()))
        })
    }

    /// Checks a request's `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Refusal> {
        let Some(value) = authorization else {
            return Err(Refusal::Missing);
        };
        let presented = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(Refusal::Missing)?;
        if self.accepts(presented.trim()) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }

    /// Where the tokens came from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token: `401`.
    Missing,
    /// A token this server does not accept: `403`.
    Wrong,
}

impl Refusal {
    /// What the caller is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => {
                "this API needs a bearer token: send `Authorization: Bearer TOKEN` \
                 (dmo commands take --token-file)"
            }
            Refusal::Wrong => "the bearer token is not one this server accepts",
        }
    }
}

/// The first token of the token file at `path`: the one a client presents.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let mut tokens = read_lines(path)?;
    Ok(tokens.swap_remove(0))
}

/// A new random token: 32 random bytes, hex.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `token` as the only token of a new file at `path`, readable by
/// its owner alone (also when it existed).
pub fn write_token_file(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{token}")
}

/// The `Authorization` header value presenting `token`, marked sensitive
/// so that HTTP clients leave it out of their logs.
pub fn bearer(token: &str) -> Result<HeaderValue, TokenError> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| TokenError::Malformed {
            path: PathBuf::from("(token)"),
            line: 1,
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Default headers of an HTTP client presenting `token` (none without one).
pub fn client_headers(token: Option<&str>) -> Result<HeaderMap, TokenError> {
    let mut headers = HeaderMap::new();
    if let Some(t) = token {
        headers.insert(header::AUTHORIZATION, bearer(t)?);
    }
    Ok(headers)
}

async fn guard(tokens: Arc<Tokens>, request: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match tokens.check(authorization) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refused(refusal),
    }
}

fn refused(refusal: Refusal) -> Response {
    let status = match refusal {
        Refusal::Missing => StatusCode::UNAUTHORIZED,
        Refusal::Wrong => StatusCode::FORBIDDEN,
    };
    let mut response = (status, refusal.message()).into_response();
    if refusal == Refusal::Missing {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// `app` with every route but [`OPEN_PATHS`] needing one of `tokens`;
/// `app` unchanged without tokens.
pub fn require(app: Router, tokens: Option<Arc<Tokens>>) -> Router {
    match tokens {
        Some(tokens) => app.layer(axum::middleware::from_fn(move |request, next| {
            guard(tokens.clone(), request, next)
        })),
        None => app,
    }
}
