//! The testbed controller's REST API, served while a netns testbed runs:
//! meters (`/v1/meters`), the switches and their ports (`/v1/switches`),
//! what a path between two hosts offers now (`/v1/paths?from=A&to=B`),
//! the ONOS request shapes of the prototype's `sendmeter.py`
//! (`/onos/v1/meters/{device}`, `/onos/v1/flows/{device}`), and the
//! testbed's own metrics (`/metrics`). It runs on its own thread and
//! runtime, on listeners its caller opened (inside namespaces, e.g.
//! 127.0.0.1:8181 of each MLFO host, and on the root namespace's loopback).

use super::NetnsTestbed;
use super::exporter;
use super::meters::{MeterError, MeterSpec, Meters, OnosMeter, device_id};
use super::paths::{self, PathError};
use super::sys::{SysError, bind_loopback};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The controller's port inside namespaces, and on the root namespace's
/// loopback when free (ONOS's REST port, as the prototype used).
pub const CONTROLLER_PORT: u16 = 8181;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

struct Shared {
    meters: Arc<Meters>,
    metrics: Registry,
}

type AppState = Arc<Shared>;

/// A running controller; dropping it stops it.
pub struct Controller {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl Controller {
    /// Serves the API for `meters` on every listener, with the testbed's
    /// metrics (links, and the TCP connections of `traffic_hosts`), to the
    /// callers `security` admits.
    pub fn start(
        meters: Arc<Meters>,
        traffic_hosts: Vec<String>,
        listeners: Vec<std::net::TcpListener>,
        security: httpd::Security,
    ) -> Result<Controller, SysError> {
        let fail =
            |e: std::io::Error| SysError::new("starting the testbed controller", e.to_string());
        for l in &listeners {
            l.set_nonblocking(true).map_err(fail)?;
        }
        let shared = Arc::new(Shared {
            metrics: exporter::registry(meters.plan().clone(), traffic_hosts),
            meters,
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?;
        let thread = std::thread::Builder::new()
            .name("testbed controller".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let app = router(shared);
                    let mut servers = tokio::task::JoinSet::new();
                    for l in listeners {
                        let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                            continue;
                        };
                        let (app, mut stopped) = (app.clone(), stopped.clone());
                        let security = security.clone();
                        servers.spawn(async move {
                            let stop = async move {
                                let _ = stopped.wait_for(|s| *s).await;
                            };
                            let _ = httpd::serve(l, app, httpd::Limits::default(), security, stop)
                                .await;
                        });
                    }
                    while servers.join_next().await.is_some() {}
                });
            })
            .map_err(fail)?;
        Ok(Controller {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Controller {
    /// The controller of testbed `bed`: listening on
    /// 127.0.0.1:[`CONTROLLER_PORT`] inside each host of `inside` (their own
    /// loopback) and on the root namespace's loopback (that port when
    /// free, whose address is returned); reporting the TCP connections of
    /// the hosts `traffic`; admitting the callers `security` admits.
    pub fn for_testbed(
        bed: &NetnsTestbed,
        inside: &[&str],
        traffic: Vec<String>,
        security: httpd::Security,
    ) -> Result<(Controller, SocketAddr), SysError> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, CONTROLLER_PORT));
        let mut listeners = Vec::new();
        for host in inside {
            let bound = bed.in_host(host, || std::net::TcpListener::bind(loopback))?;
            listeners.push(bound.map_err(|e| {
                SysError::new(
                    format!("network controller on {host}"),
                    format!("{loopback}: {e}"),
                )
            })?);
        }
        let fail = |e: std::io::Error| SysError::new("network controller", e.to_string());
        let root = bind_loopback(CONTROLLER_PORT).map_err(fail)?;
        let published = root.local_addr().map_err(fail)?;
        listeners.push(root);
        let meters = Arc::new(Meters::new(bed.plan().clone()));
        Ok((
            Controller::start(meters, traffic, listeners, security)?,
            published,
        ))
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The routes.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/meters", get(list_meters).post(create_meter))
        .route("/v1/meters/{id}", delete(delete_meter))
        .route("/v1/switches", get(switches))
        .route("/v1/paths", get(path))
        .route("/onos/v1/meters", get(onos_meters))
        .route("/onos/v1/meters/{device}", post(onos_meter))
        .route("/onos/v1/meters/{device}/{id}", delete(onos_meter_delete))
        .route("/onos/v1/flows", get(onos_flows))
        .route("/onos/v1/flows/{device}", post(onos_flow))
        .route("/onos/v1/flows/{device}/{id}", delete(onos_flow_delete))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Why a request failed; answered as JSON `{"error": ...}` with its status.
#[derive(Debug, thiserror::Error)]
enum ControllerError {
    /// The request is malformed (400); the text names the field.
    #[error("{0}")]
    BadRequest(String),
    /// A meter operation failed (400, 404 or 500 by its kind).
    #[error(transparent)]
    Meter(#[from] MeterError),
    /// A path's host is unknown or unreachable (404).
    #[error(transparent)]
    Path(#[from] PathError),
    /// The controller itself failed (500).
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ControllerError {
    fn into_response(self) -> Response {
        let status = match &self {
            ControllerError::BadRequest(_) | ControllerError::Meter(MeterError::Invalid { .. }) => {
                StatusCode::BAD_REQUEST
            }
            ControllerError::Meter(MeterError::NotFound(_)) | ControllerError::Path(_) => {
                StatusCode::NOT_FOUND
            }
            ControllerError::Meter(MeterError::Kernel(_)) | ControllerError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

type Reply = Result<Response, ControllerError>;

fn bad_request(message: impl Into<String>) -> ControllerError {
    ControllerError::BadRequest(message.into())
}

/// `201 Created` with the new resource's `Location` and its body.
fn created(location: String, body: impl IntoResponse) -> Response {
    (StatusCode::CREATED, [(header::LOCATION, location)], body).into_response()
}

/// A numeric id from the path; a 400 naming `field` when it is not one.
fn path_id(id: &str, field: &str, what: &str) -> Result<u32, ControllerError> {
    id.parse()
        .map_err(|_| bad_request(format!("{field}: {id:?} is not a {what}")))
}

/// Runs a meter operation (it calls tc) off the async workers.
async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, MeterError> + Send + 'static,
) -> Result<T, ControllerError> {
    tokio::task::spawn_blocking(operation)
        .await
        .map_err(|e| ControllerError::Internal(e.to_string()))?
        .map_err(ControllerError::from)
}

/// Parses a JSON body, naming the field that is wrong.
fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ControllerError> {
    serde_json::from_str(body)
        .map_err(|e| bad_request(format!("request body: {e}; see docs/topology.md, Meters")))
}

async fn list_meters(State(s): State<AppState>) -> Response {
    Json(s.meters.list()).into_response()
}

async fn create_meter(State(s): State<AppState>, body: String) -> Reply {
    let spec: MeterSpec = parse(&body)?;
    let meters = s.meters.clone();
    let m = blocking(move || meters.create(spec)).await?;
    Ok(created(format!("/v1/meters/{}", m.id), Json(m)))
}

async fn delete_meter(State(s): State<AppState>, Path(id): Path<String>) -> Reply {
    let id = path_id(&id, "id", "meter id")?;
    let meters = s.meters.clone();
    Ok(Json(blocking(move || meters.delete(id)).await?).into_response())
}

/// The query of `GET /v1/paths`.
#[derive(Debug, serde::Deserialize)]
struct PathQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn path(State(s): State<AppState>, Query(q): Query<PathQuery>) -> Reply {
    let (Some(from), Some(to)) = (q.from, q.to) else {
        return Err(bad_request(
            "from, to: both are needed, host names or addresses, e.g. /v1/paths?from=fla.1&to=10.0.0.1",
        ));
    };
    let report = tokio::task::spawn_blocking(move || paths::measure(s.meters.plan(), &from, &to))
        .await
        .map_err(|e| ControllerError::Internal(e.to_string()))??;
    Ok(Json(report).into_response())
}

async fn switches(State(s): State<AppState>) -> Response {
    let plan = s.meters.plan();
    let list: Vec<Value> = plan
        .bridges
        .iter()
        .map(|b| {
            let mut ports: Vec<(u32, &str)> = plan
                .links
                .iter()
                .filter_map(|l| {
                    let (own, other) = if l.a.node == b.switch {
                        (&l.a, &l.b)
                    } else if l.b.node == b.switch {
                        (&l.b, &l.a)
                    } else {
                        return None;
                    };
                    Some((own.port?, other.node.as_str()))
                })
                .collect();
            ports.sort_unstable();
            json!({
                "switch": b.switch,
                "number": b.number,
                "deviceId": device_id(b.number),
                "ports": ports.iter().map(|(p, peer)| json!({ "port": p, "peer": peer })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(list).into_response()
}

/// A number that ONOS clients send as a number or a string.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

async fn onos_meter(State(s): State<AppState>, Path(device): Path<String>, body: String) -> Reply {
    let v: Value = parse(&body)?;
    if let Some(unit) = v.get("unit").and_then(Value::as_str)
        && unit != "KB_PER_SEC"
    {
        return Err(bad_request(format!(
            "unit: {unit:?} is not supported; use KB_PER_SEC"
        )));
    }
    let band = v.get("bands").and_then(|b| b.get(0));
    let rate = band
        .and_then(|b| b.get("rate"))
        .and_then(number)
        .ok_or_else(|| bad_request("bands[0].rate: give the DROP band's rate in KB/s"))?;
    let m = s.meters.onos_meter(&device, rate)?;
    Ok(created(
        format!("/onos/v1/meters/{}/{}", m.device_id, m.id),
        Json(onos_meter_json(&m)),
    ))
}

/// An ONOS meter as ONOS writes it.
fn onos_meter_json(m: &OnosMeter) -> Value {
    json!({
        "id": m.id.to_string(),
        "deviceId": m.device_id,
        "unit": "KB_PER_SEC",
        "burst": true,
        "state": "ADDED",
        "bands": [{ "type": "DROP", "rate": m.rate_kbytes, "burstSize": m.rate_kbytes }],
    })
}

async fn onos_meters(State(s): State<AppState>) -> Response {
    let list: Vec<Value> = s.meters.onos_meters().iter().map(onos_meter_json).collect();
    Json(json!({ "meters": list })).into_response()
}

async fn onos_meter_delete(
    State(s): State<AppState>,
    Path((device, id)): Path<(String, String)>,
) -> Reply {
    let id = path_id(&id, "meterId", "meter id")?;
    s.meters.onos_meter_delete(&device, id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn onos_flows(State(s): State<AppState>) -> Response {
    Json(json!({ "flows": s.meters.onos_flows() })).into_response()
}

/// The criterion or instruction of `kind` in list `list` of `v`.
fn find<'a>(v: &'a Value, path: [&str; 2], kind: &str) -> Option<&'a Value> {
    v.get(path[0])?
        .get(path[1])?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

async fn onos_flow(State(s): State<AppState>, Path(device): Path<String>, body: String) -> Reply {
    let v: Value = parse(&body)?;
    let instruction = |kind, key| find(&v, ["treatment", "instructions"], kind)?.get(key);
    let criterion = |kind, key| find(&v, ["selector", "criteria"], kind)?.get(key);
    let whole = |x: &f64| *x >= 1.0 && x.fract() == 0.0;
    let output = instruction("OUTPUT", "port")
        .and_then(number)
        .filter(whole)
        .ok_or_else(|| {
            bad_request("treatment.instructions: give an OUTPUT instruction with a port number")
        })?;
    let meter = instruction("METER", "meterId")
        .and_then(number)
        .filter(whole)
        .ok_or_else(|| {
            bad_request(
                "treatment.instructions: give a METER instruction with a meterId (flows without one are not applied)",
            )
        })?;
    let in_port = criterion("IN_PORT", "port")
        .and_then(number)
        .map(|p| p as u32);
    let dst = criterion("IPV4_DST", "ip")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let meters = s.meters.clone();
    let f = blocking(move || meters.onos_flow(&device, in_port, output as u32, dst, meter as u32))
        .await?;
    Ok(created(
        format!("/onos/v1/flows/{}/{}", f.device_id, f.id),
        Json(f),
    ))
}

async fn onos_flow_delete(
    State(s): State<AppState>,
    Path((_device, id)): Path<(String, String)>,
) -> Reply {
    let id = path_id(&id, "flowId", "flow id")?;
    let meters = s.meters.clone();
    blocking(move || meters.onos_flow_delete(id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn metrics(State(s): State<AppState>) -> Response {
    let shared = s.clone();
    let text = tokio::task::spawn_blocking(move || exporter::text(&shared.metrics))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
