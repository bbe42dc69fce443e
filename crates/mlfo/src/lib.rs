//! ML function orchestrator (MLFO, after ITU-T Y.3172), edge or cloud role.
//!
//! An edge MLFO takes intents from users (`POST /receive` as the prototype,
//! or `POST /v1/intents`), resolves them against the pipeline catalog, asks
//! its cloud MLFO over Mo-Mo ([`momo`]) for an FL server, starts the
//! cohort's FL clients through the node agents ([`sbi`]), follows the job's
//! rounds and keeps everything in SQLite ([`store`]). A cloud MLFO answers
//! Mo-Mo by placing FL servers on its aggregators ([`cloud`]).

#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod cloud;
pub mod config;
pub mod cost;
mod edge;
mod hierarchy;
mod measure;
pub mod metrics;
pub mod momo;
pub mod planner;
pub mod privacy;
mod queue;
pub mod record;
pub mod sbi;
pub mod service;
pub mod store;
pub mod submission;

pub use config::{AgentEntry, AgentRole, MlfoConfig, MomoMode, Role};
pub use record::{IntentRecord, IntentState};
pub use service::{Mlfo, MlfoError};

use std::future::Future;

/// The MLFO's REST port in the prototype.
pub const DEFAULT_REST_PORT: u16 = 8000;
/// The Mo-Mo port in the prototype.
pub const DEFAULT_MOMO_PORT: u16 = 9000;

/// Why the MLFO could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// REST or Mo-Mo.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The REST server failed.
    #[error("REST server: {0}")]
    Rest(std::io::Error),
    /// The Mo-Mo server failed.
    #[error("Mo-Mo server: {0}")]
    Momo(#[from] tonic::transport::Error),
    /// Recovering the stored intents failed.
    #[error(transparent)]
    Recover(#[from] MlfoError),
}

/// Runs `mlfo`: binds its REST (and, where configured, Mo-Mo) listeners,
/// takes up the intents a previous run left unfinished, and serves until
/// `shutdown` resolves.
pub async fn serve(
    mlfo: Mlfo,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = mlfo.config().clone();
    let rest = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            what: "REST",
            source,
        })?;
    let momo = match config.momo_listen {
        Some(addr) => Some((
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr,
                    what: "Mo-Mo",
                    source,
                })?,
            addr,
        )),
        None => None,
    };
    let resumed = mlfo.recover()?;
    tracing::info!(
        name = %config.name,
        role = ?config.role,
        rest = %config.listen,
        momo = ?config.momo_listen,
        rest_auth = if mlfo.inner.credentials.users.is_some() { "bearer tokens" } else { "no authentication" },
        tls = mlfo.inner.tls.is_some(),
        momo_auth = if mlfo.inner.credentials.peers.is_some() { "bearer tokens" } else { "no authentication" },
        resumed,
        "MLFO serving"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let credentials = mlfo.inner.credentials.clone();
    let tls = mlfo.inner.tls.clone();
    let rest_security = httpd::Security {
        tokens: credentials.users.map(std::sync::Arc::new),
        tls: tls.as_ref().map(|t| t.server.clone()),
    };
    let rest_server = httpd::serve(
        rest,
        api::router(mlfo.clone()),
        config.http.limits(),
        rest_security,
        stopped(stop_rx.clone()),
    );
    match momo {
        Some((listener, _)) => {
            let check = momo::CheckToken(credentials.peers.map(std::sync::Arc::new));
            let service = momo::proto::orchestrate_server::OrchestrateServer::with_interceptor(
                cloud::MomoService::new(mlfo),
                check,
            );
            let incoming = tokio_stream_incoming(listener);
            let mut builder = tonic::transport::Server::builder();
            if let Some(t) = &tls {
                let identity = tonic::transport::Identity::from_pem(&t.identity.0, &t.identity.1);
                builder = builder
                    .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
            }
            let grpc = builder
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, stopped(stop_rx));
            let (rest_result, grpc_result) = tokio::join!(rest_server, grpc);
            rest_result.map_err(ServeError::Rest)?;
            grpc_result?;
        }
        None => rest_server.await.map_err(ServeError::Rest)?,
    }
    Ok(())
}

fn tokio_stream_incoming(
    listener: tokio::net::TcpListener,
) -> tokio_stream::wrappers::TcpListenerStream {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}
