//! The JSON API: `/v1/servers`, `/v1/clients` and `/v1/jobs`.

use crate::error::ApiError;
use crate::jobs::{Agent, JobView, Started};
use crate::spec::{ClientRequest, JSON_NAMES, ServerRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// `POST /v1/servers`: 201 with the job id and the server address.
pub async fn create_server(
    State(agent): State<Agent>,
    Json(request): Json<ServerRequest>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let spec = request.into_spec(&JSON_NAMES)?;
    let started = agent.start_server(spec).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

/// `POST /v1/clients`: 201 with the job id.
pub async fn create_client(
    State(agent): State<Agent>,
    Json(request): Json<ClientRequest>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let spec = request.into_spec(&JSON_NAMES)?;
    Ok((StatusCode::CREATED, Json(agent.start_client(spec))))
}

/// `GET /v1/jobs`: every job, oldest first.
pub async fn list_jobs(State(agent): State<Agent>) -> Json<Vec<JobView>> {
    Json(agent.jobs())
}

/// `GET /v1/jobs/{id}`: one job with its state, config and results.
pub async fn get_job(
    State(agent): State<Agent>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(agent.job(&id)?))
}

/// `DELETE /v1/jobs/{id}`: stops the job; 200 with its final state.
pub async fn stop_job(
    State(agent): State<Agent>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(agent.stop(&id).await?))
}
