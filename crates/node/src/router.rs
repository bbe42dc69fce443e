//! The agent's routes: prototype forms, JSON API, health and metrics.

use crate::error::ApiError;
use crate::jobs::Agent;
use crate::{api_form, api_json, probe};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// Largest request body accepted (forms and JSON are small).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// All routes of the agent, sharing `agent`.
pub fn router(agent: Agent) -> Router {
    Router::new()
        .route("/serv", post(api_form::serv))
        .route("/cli", post(api_form::cli))
        .route("/v1/servers", post(api_json::create_server))
        .route("/v1/clients", post(api_json::create_client))
        .route("/v1/probes/training", post(probe::training))
        .route("/v1/jobs", get(api_json::list_jobs))
        .route(
            "/v1/jobs/{id}",
            get(api_json::get_job).delete(api_json::stop_job),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(agent)
}

async fn healthz() -> &'static str {
    "ok"
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the
/// Prometheus text format.
async fn metrics(
    State(agent): State<Agent>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let (content_type, body) = fl::server::exposition::negotiate(accept, agent.metrics_text()?);
    Ok(([(CONTENT_TYPE, content_type)], body))
}
