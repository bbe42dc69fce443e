//! How domain errors become HTTP responses: a status and a plain-text body
//! that says what to fix.

use crate::jobs::JobError;
use crate::spec::FieldError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is bad: 400.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A job operation failed: 404, 503 or 400.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A training probe could not run (its data or model): 500.
    #[error("training probe: {0}")]
    Probe(String),
    /// Metrics could not be encoded: 500.
    #[error("encoding metrics: {0}")]
    Metrics(#[from] std::fmt::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Field(_) | ApiError::Job(JobError::Evaluate(_) | JobError::NoTls(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Job(JobError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Job(
                JobError::NoFreePort { .. }
                | JobError::TooLate { .. }
                | JobError::TooManyServers { .. },
            ) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Metrics(_) | ApiError::Probe(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), self.to_string()).into_response()
    }
}
