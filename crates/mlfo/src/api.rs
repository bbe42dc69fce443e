//! The MLFO's REST API: the prototype's `POST /receive` (multipart), the
//! JSON API under `/v1`, `/healthz` and `/metrics`.

use crate::planner::CohortRequest;
use crate::record::{IntentRecord, ServerRecord};
use crate::service::{Mlfo, MlfoError};
use crate::submission::{IntentRequest, Submission};
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value};

/// Largest request body: an intent (1 MiB) plus the form fields.
pub const BODY_LIMIT_BYTES: usize = intent::MAX_DOCUMENT_BYTES + 64 * 1024;

/// An error reply: a status and a text saying what to fix.
pub struct ApiError(StatusCode, String);

impl From<MlfoError> for ApiError {
    fn from(e: MlfoError) -> Self {
        let status = match &e {
            MlfoError::Invalid(_) | MlfoError::WrongRole(_) => StatusCode::BAD_REQUEST,
            MlfoError::NotFound(_) => StatusCode::NOT_FOUND,
            MlfoError::Conflict(_) => StatusCode::CONFLICT,
            MlfoError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

fn bad_request(text: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, text)
}

/// Every route of the MLFO, sharing `mlfo`.
pub fn router(mlfo: Mlfo) -> Router {
    Router::new()
        .route("/receive", post(receive))
        .route("/v1/intents", post(create_intent).get(list_intents))
        .route("/v1/intents/{id}", get(get_intent).delete(cancel_intent))
        .route("/v1/servers", get(list_servers))
        .route("/v1/inventory", get(inventory))
        .route("/", get(dashboard))
        .route("/dashboard", get(dashboard))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(mlfo)
}

/// The prototype's form fields that set constraints, and the constraint each sets.
const FORM_CONSTRAINTS: [(&str, &str); 6] = [
    ("sameserver", "sameserv"),
    ("avgalgo", "avgalgo"),
    ("fracfit", "fracfit"),
    ("minfit", "minfit"),
    ("minav", "minav"),
    ("numround", "numround"),
];

async fn text_field(field: Field<'_>, name: &str) -> Result<String, ApiError> {
    field
        .text()
        .await
        .map_err(|e| bad_request(format!("{name}: cannot read the form field: {e}")))
}

fn form_number(name: &str, value: &str) -> Result<u32, ApiError> {
    value.trim().parse().map_err(|_| {
        bad_request(format!(
            "{name}: must be a whole number >= 0, got {value:?}"
        ))
    })
}

/// `POST /receive`: the prototype's multipart form (`file` plus ipstart,
/// cohortsize, sameserver, avgalgo, fracfit, minfit, minav, numround).
async fn receive(
    State(mlfo): State<Mlfo>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|e| {
        bad_request(format!(
            "the body must be a multipart form with the intent in field `file` \
             (curl -F file=@intent.yaml ...): {}",
            e.body_text()
        ))
    })?;
    let mut file = None;
    let mut cohort = CohortRequest::default();
    let mut constraints = Map::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad_request(format!("reading the multipart form: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or("file").to_owned();
                let bytes = field.bytes().await.map_err(|e| {
                    bad_request(format!("file: cannot read the upload: {}", e.body_text()))
                })?;
                file = Some((file_name, bytes.to_vec()));
            }
            "ipstart" | "cohortsize" => {
                let value = text_field(field, &name).await?;
                if !value.trim().is_empty() {
                    let n = form_number(&name, &value)?;
                    if name == "ipstart" {
                        cohort.ipstart = Some(n);
                    } else {
                        cohort.size = Some(n);
                    }
                }
            }
            _ => {
                let Some((_, key)) = FORM_CONSTRAINTS.iter().find(|(f, _)| *f == name) else {
                    return Err(bad_request(format!(
                        "{name}: unknown form field; the fields are file, ipstart, cohortsize, {}",
                        FORM_CONSTRAINTS.map(|(f, _)| f).join(", ")
                    )));
                };
                let value = text_field(field, &name).await?;
                if !value.trim().is_empty() {
                    constraints.insert((*key).to_owned(), Value::String(value));
                }
            }
        }
    }
    let Some((file, document)) = file else {
        return Err(bad_request(
            "file: missing; send the intent YAML as form field `file` (curl -F file=@intent.yaml ...)"
                .to_owned(),
        ));
    };
    if cohort.ipstart.is_some() != cohort.size.is_some() {
        return Err(bad_request(
            "ipstart and cohortsize: give both (clients are the hosts whose last address octet is in [ipstart, ipstart+cohortsize)) or neither".to_owned(),
        ));
    }
    let record = mlfo.submit(&Submission {
        file,
        document,
        cohort,
        constraints,
    })?;
    Ok((
        StatusCode::OK,
        [(LOCATION, format!("/v1/intents/{}", record.id))],
        format!("OK {}\n", record.id),
    )
        .into_response())
}

/// `POST /v1/intents`: an intent with its cohort and constraint overrides.
async fn create_intent(
    State(mlfo): State<Mlfo>,
    body: Result<Json<IntentRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|e| bad_request(e.body_text()))?;
    let submission = request.into_submission().map_err(bad_request)?;
    let record = mlfo.submit(&submission)?;
    Ok((
        StatusCode::ACCEPTED,
        [(LOCATION, format!("/v1/intents/{}", record.id))],
        Json(record),
    )
        .into_response())
}

async fn list_intents(State(mlfo): State<Mlfo>) -> Result<Json<Vec<IntentRecord>>, ApiError> {
    Ok(Json(mlfo.intents()?))
}

async fn get_intent(
    State(mlfo): State<Mlfo>,
    Path(id): Path<String>,
) -> Result<Json<IntentRecord>, ApiError> {
    Ok(Json(mlfo.intent(&id)?))
}

async fn cancel_intent(
    State(mlfo): State<Mlfo>,
    Path(id): Path<String>,
) -> Result<Json<IntentRecord>, ApiError> {
    Ok(Json(mlfo.cancel(&id).await?))
}

async fn list_servers(State(mlfo): State<Mlfo>) -> Result<Json<Vec<ServerRecord>>, ApiError> {
    Ok(Json(mlfo.servers()?))
}

async fn inventory(State(mlfo): State<Mlfo>) -> Json<Vec<crate::config::AgentEntry>> {
    Json(mlfo.config().inventory.clone())
}

/// The live dashboard: one HTML page, no external assets, polling `/v1/intents`.
const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");

async fn dashboard() -> axum::response::Html<&'static str> {
    axum::response::Html(DASHBOARD_HTML)
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the
/// Prometheus text format.
async fn metrics(
    State(mlfo): State<Mlfo>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let (content_type, body) = fl::server::exposition::negotiate(accept, mlfo.metrics_text()?);
    Ok(([(CONTENT_TYPE, content_type)], body).into_response())
}
