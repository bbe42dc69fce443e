//! HTTP/1.1 serving with limits, for every REST API of dmo (the MLFO's,
//! the node agent's, the testbed controller's): at most
//! [`Limits::max_connections`] open connections (one more waits in the
//! kernel's accept queue for up to [`Limits::queue_wait`], then is answered
//! `503` and closed, so that it cannot hold a file descriptor), a
//! header-read timeout that also closes a keep-alive connection left idle,
//! a time limit on reading a request's body, and a graceful shutdown that
//! waits a bounded time for the requests in flight.

#![warn(missing_docs)]

pub mod auth;
pub mod certs;
pub mod tls;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// What one server allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers, and that a
    /// keep-alive connection may stay idle.
    pub header_timeout: Duration,
    /// Seconds a client may take to send a request's body.
    pub body_timeout: Duration,
    /// Seconds a connection over the cap waits for one to close before it
    /// is refused.
    pub queue_wait: Duration,
    /// Seconds a shutdown waits for the requests in flight.
    pub shutdown_grace: Duration,
}

/// Most connections by default: well under the 1,024 file descriptors a
/// process gets by default, leaving room for the jobs' sockets.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            queue_wait: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Who may use a server and how it is reached: the bearer tokens it
/// accepts (none: anyone who can reach it) and its TLS configuration
/// (none: plain HTTP).
#[derive(Clone, Default)]
pub struct Security {
    /// Tokens accepted on every route but [`auth::OPEN_PATHS`].
    pub tokens: Option<Arc<auth::Tokens>>,
    /// HTTPS with this configuration ([`tls::server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl Security {
    /// A server that needs one of `tokens`.
    pub fn tokens(tokens: auth::Tokens) -> Self {
        Self {
            tokens: Some(Arc::new(tokens)),
            tls: None,
        }
    }

    /// How a client reaches it, for a startup line.
    pub fn describe(&self) -> &'static str {
        match (self.tokens.is_some(), self.tls.is_some()) {
            (true, true) => "HTTPS, bearer tokens",
            (true, false) => "plain HTTP, bearer tokens",
            (false, true) => "HTTPS, no authentication",
            (false, false) => "plain HTTP, no authentication",
        }
    }

    /// The URL scheme clients use: `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// The answer to a connection over the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 56\r\nConnection: close\r\n\r\ntoo many open connections to this server; try again soon";

/// Answers a connection over the cap and closes it.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(BUSY)).await;
    let _ = stream.shutdown().await;
}

/// Serves `app` on `listener` within `limits`, to the callers `security`
/// admits, until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    security: Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = security.tls.map(tokio_rustls::TlsAcceptor::from);
    let app = auth::require(app, security.tokens).layer(
        tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_timeout),
    );
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it
                // was taken: wait a little rather than spin.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap, the next connections wait in the kernel's queue
        // while this one waits for a slot; a slow or idle client frees one
        // within the header timeout.
        let waited = tokio::time::timeout(limits.queue_wait, permits.clone().acquire_owned()).await;
        let Ok(Ok(permit)) = waited else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        match &acceptor {
            None => {
                let connection =
                    graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                // The handshake is bounded like the headers; a failed one
                // (a plain-HTTP client, a wrong CA) just closes.
                let (acceptor, builder) = (acceptor.clone(), builder.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let shaken =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await;
                    if let Ok(Ok(tls)) = shaken {
                        let connection =
                            watcher.watch(builder.serve_connection(TokioIo::new(tls), service));
                        let _ = connection.await;
                    }
                    drop(permit);
                });
            }
        }
    }
    let _ = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await;
    Ok(())
}
