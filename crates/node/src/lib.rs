//! Node agent: a REST service that starts and stops FL servers and clients
//! on its host, and the central trainers of centralised plans with the
//! clients that send them data. It serves the prototype's form endpoints (`POST /serv`,
//! `POST /cli`) beside a JSON API (`/v1/servers`, `/v1/clients`,
//! `/v1/jobs`, `/v1/probes/training`), plus `/healthz` and OpenMetrics at `/metrics` (jobs, FL
//! servers and their connections' TCP statistics, the host's interfaces).
//!
//! Jobs run as tokio tasks in the agent's process; [`Agent`] is the domain
//! (it knows nothing of HTTP), [`router`] maps requests onto it.

#![warn(missing_docs)]

pub mod api_form;
pub mod api_json;
pub mod central;
pub mod error;
pub mod group;
pub mod host;
pub mod jobs;
pub mod metrics;
pub mod probe;
pub mod router;
pub mod spec;

pub use group::Group;
pub use jobs::{Agent, AgentConfig, JobError, JobKind, JobState, JobView, Started};
pub use router::router;
pub use spec::{ClientRequest, FieldError, ServerRequest};

/// The prototype's node agent REST port.
pub const DEFAULT_PORT: u16 = 5000;
/// The first FL server port; later servers take the next free ones.
pub const DEFAULT_FL_PORT_BASE: u16 = 6000;

/// Serves the agent's API on `listener` within `limits` (connections,
/// header and body timeouts), to the callers `security` admits (its
/// MLFO's bearer token), until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    agent: Agent,
    limits: httpd::Limits,
    security: httpd::Security,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    httpd::serve(listener, router(agent), limits, security, shutdown).await
}
