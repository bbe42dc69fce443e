//! The MLFO's REST API: the prototype's `POST /receive` (multipart), the
//! JSON API under `/v1`, `/healthz` and `/metrics`.

use crate::config::MomoMode;
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
use intent::Aggregation;
use serde_json::{Map, Value};

/// Largest request body: an intent (1 MiB) plus the form fields.
pub const BODY_LIMIT_BYTES: usize = intent::MAX_DOCUMENT_BYTES + 64 * 1024;

/// An error reply: a status and a text saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The orchestrator refused or failed the operation.
    #[error(transparent)]
    Mlfo(#[from] MlfoError),
    /// The request itself is malformed (400): a form field, a body.
    #[error("{0}")]
    BadRequest(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::Mlfo(MlfoError::Invalid(_) | MlfoError::WrongRole(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Mlfo(MlfoError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Mlfo(MlfoError::Conflict(_)) => StatusCode::CONFLICT,
            ApiError::Mlfo(MlfoError::Store(_) | MlfoError::Internal(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), format!("{self}\n")).into_response()
    }
}

fn bad_request(text: String) -> ApiError {
    ApiError::BadRequest(text)
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
const FORM_CONSTRAINTS: [(&str, &str); 5] = [
    ("avgalgo", "avgalgo"),
    ("fracfit", "fracfit"),
    ("minfit", "minfit"),
    ("minav", "minav"),
    ("numround", "numround"),
];

/// Every form field `/receive` takes: the thesis script's (`sendintent.py`)
/// and those of the prototype's later branches (`hybrid_sendintent.py`).
const FORM_FIELDS: &str = "file, ipstart, cohortsize, sameserver, avgalgo, fracfit, minfit, \
     minav, numround, nodesperedge, clipernode, mlfostatus, flstatus, hierflstatus";

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

/// `enabled` or `disabled` (any case), as the prototype's status switches.
fn form_switch(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "enabled" => Ok(true),
        "disabled" => Ok(false),
        _ => Err(bad_request(format!(
            "{name}: must be enabled or disabled, got {value:?}"
        ))),
    }
}

/// The form of `POST /receive` as read so far.
#[derive(Default)]
struct ReceiveForm {
    file: Option<(String, Vec<u8>)>,
    cohort: CohortRequest,
    nodes_per_edge: Option<u32>,
    clients_per_node: Option<u32>,
    constraints: Map<String, Value>,
    notes: Vec<String>,
    momo: Option<MomoMode>,
    skip_clients: bool,
}

impl ReceiveForm {
    /// Takes one text field of the form.
    fn text(&mut self, name: &str, value: &str) -> Result<(), ApiError> {
        if value.trim().is_empty() {
            return Ok(());
        }
        match name {
            "ipstart" => self.cohort.ipstart = Some(form_number(name, value)?),
            "cohortsize" => self.cohort.size = Some(form_number(name, value)?),
            "nodesperedge" => self.nodes_per_edge = Some(form_number(name, value)?),
            "clipernode" => self.clients_per_node = Some(form_number(name, value)?),
            "sameserver" => self.same_server(value),
            "mlfostatus" => {
                self.momo = Some(if form_switch(name, value)? {
                    MomoMode::Aggregated
                } else {
                    MomoMode::PerClient
                });
            }
            "flstatus" => self.skip_clients = !form_switch(name, value)?,
            "hierflstatus" => {
                let how = if form_switch(name, value)? {
                    Aggregation::Hierarchical
                } else {
                    Aggregation::Flat
                };
                self.constraints
                    .insert("aggregation".to_owned(), Value::String(how.to_string()));
            }
            _ => {
                let Some((_, key)) = FORM_CONSTRAINTS.iter().find(|(f, _)| *f == name) else {
                    return Err(bad_request(format!(
                        "{name}: unknown form field; the fields are {FORM_FIELDS}"
                    )));
                };
                self.constraints
                    .insert((*key).to_owned(), Value::String(value.to_owned()));
            }
        }
        Ok(())
    }

    /// `sameserver`: yes/true/no/false as intents read them; any other value
    /// means a new server, as the prototype (which ignored the field) did.
    fn same_server(&mut self, value: &str) {
        let shared = intent::flag_word(value).unwrap_or_else(|| {
            self.notes.push(format!(
                "sameserver {value:?} is not yes, true, no or false: read as no (a new FL server), as the prototype did"
            ));
            false
        });
        self.constraints
            .insert(intent::keys::SAME_SERVER.to_owned(), Value::Bool(shared));
    }

    /// The submission, once every field is read.
    fn into_submission(mut self) -> Result<Submission, ApiError> {
        let Some((file, document)) = self.file else {
            return Err(bad_request(
                "file: missing; send the intent YAML as form field `file` (curl -F file=@intent.yaml ...)"
                    .to_owned(),
            ));
        };
        match (self.nodes_per_edge, self.clients_per_node) {
            (None, None) => {}
            (Some(nodes), Some(clients)) if self.cohort == CohortRequest::default() => {
                self.cohort.size = Some(nodes.saturating_mul(clients));
                self.notes.push(format!(
                    "nodesperedge {nodes} x clipernode {clients}: a cohort of {} client(s)",
                    nodes.saturating_mul(clients)
                ));
            }
            (Some(_), Some(_)) => {
                return Err(bad_request(
                    "nodesperedge and clipernode: give them instead of ipstart and cohortsize, not with them"
                        .to_owned(),
                ));
            }
            _ => {
                return Err(bad_request(
                    "nodesperedge and clipernode: give both (the cohort is nodesperedge x clipernode clients) or neither"
                        .to_owned(),
                ));
            }
        }
        if self.cohort.ipstart.is_some() && self.cohort.size.is_none() {
            return Err(bad_request(
                "ipstart and cohortsize: give both (clients are the hosts whose last address octet is in [ipstart, ipstart+cohortsize)) or neither".to_owned(),
            ));
        }
        Ok(Submission {
            file,
            document,
            cohort: self.cohort,
            constraints: self.constraints,
            notes: self.notes,
            momo: self.momo,
            skip_clients: self.skip_clients,
        })
    }
}

/// `POST /receive`: the prototype's multipart form (`file` plus ipstart,
/// cohortsize, sameserver, avgalgo, fracfit, minfit, minav, numround; the
/// later branches' nodesperedge, clipernode, mlfostatus, flstatus, hierflstatus).
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
    let mut form = ReceiveForm::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad_request(format!("reading the multipart form: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if form.file.is_some() {
                return Err(bad_request(
                    "file: given twice; send one intent per POST /receive".to_owned(),
                ));
            }
            let file_name = field.file_name().unwrap_or("file").to_owned();
            let bytes = field.bytes().await.map_err(|e| {
                bad_request(format!("file: cannot read the upload: {}", e.body_text()))
            })?;
            form.file = Some((file_name, bytes.to_vec()));
        } else {
            let value = text_field(field, &name).await?;
            form.text(&name, &value)?;
        }
    }
    let record = mlfo.submit(&form.into_submission()?).await?;
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
    let record = mlfo.submit(&submission).await?;
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
