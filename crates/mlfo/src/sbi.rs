//! The southbound interface: calls to node agents' JSON API with time
//! limits and retries.

use crate::config::{AgentEntry, Timeouts};
use crate::metrics::Metrics;
use node::probe::{TrainingProbe, TrainingProbeRequest};
use node::{ClientRequest, JobView, ServerRequest, Started};
use reqwest::StatusCode;
use std::time::Duration;

/// A node agent call that failed, naming the host.
#[derive(Debug, Clone, thiserror::Error)]
#[error("agent {host} ({url}): {problem}")]
pub struct SbiError {
    /// Host name from the inventory.
    pub host: String,
    /// The agent's URL.
    pub url: String,
    /// What went wrong.
    pub problem: String,
    /// The HTTP status the agent answered with; `None` when no answer came
    /// (unreachable, timed out) or it could not be read.
    pub status: Option<StatusCode>,
    /// Nothing accepted the connection, every attempt (the agent's process
    /// is gone, or its host).
    pub unreachable: bool,
}

impl SbiError {
    /// The agent said the job does not exist (HTTP 404).
    pub fn not_found(&self) -> bool {
        self.status == Some(StatusCode::NOT_FOUND)
    }

    /// The agent is gone: unreachable, or it no longer knows the job.
    pub fn gone(&self) -> bool {
        self.unreachable || self.not_found()
    }
}

/// One direction of one link of a measured path.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MeasuredHop {
    /// The link, `a-b`.
    pub link: String,
    /// Its available bandwidth in this direction, Mbit/s.
    pub available_mbit: Option<f64>,
    /// The rate it is shaped to in this direction, Mbit/s, when known.
    #[serde(default)]
    pub rate_mbit: Option<f64>,
}

/// The parts of the network controller's `GET /v1/paths` reply the cost
/// model reads.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MeasuredPath {
    /// Hops from the campus host to the cloud.
    pub forward: Vec<MeasuredHop>,
    /// Hops back.
    pub reverse: Vec<MeasuredHop>,
    /// The probed RTT, ms.
    pub rtt_ms: Option<f64>,
}

/// A client for the node agents' API.
#[derive(Clone)]
pub struct Sbi {
    http: reqwest::Client,
    attempts: u32,
    metrics: Metrics,
}

/// Pause between attempts of a call that could not connect.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

impl Sbi {
    /// A client with the limits of `timeouts`, presenting `token` (the
    /// agents' and the network controller's bearer token) when given,
    /// trusting `roots` for https:// agents.
    pub fn new(
        timeouts: &Timeouts,
        metrics: Metrics,
        token: Option<&str>,
        roots: Option<&httpd::tls::Roots>,
    ) -> Result<Self, crate::MlfoError> {
        let headers = httpd::auth::client_headers(token)
            .map_err(|e| crate::MlfoError::Invalid(format!("auth.token: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .timeout(timeouts.sbi())
            .connect_timeout(timeouts.sbi())
            .pool_idle_timeout(Duration::from_secs(30))
            .default_headers(headers);
        if let Some(roots) = roots {
            builder = roots
                .client(builder)
                .map_err(|e| crate::MlfoError::Invalid(format!("tls.ca: {e}")))?;
        }
        let http = builder
            .build()
            .map_err(|e| crate::MlfoError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            attempts: timeouts.sbi_attempts,
            metrics,
        })
    }

    /// Starts an FL server on `agent`.
    pub async fn start_server(
        &self,
        agent: &AgentEntry,
        request: &ServerRequest,
    ) -> Result<Started, SbiError> {
        let url = format!("{}/v1/servers", agent.url);
        self.call("start_server", agent, || self.http.post(&url).json(request))
            .await
    }

    /// Starts an FL client on `agent`.
    pub async fn start_client(
        &self,
        agent: &AgentEntry,
        request: &ClientRequest,
    ) -> Result<Started, SbiError> {
        let url = format!("{}/v1/clients", agent.url);
        self.call("start_client", agent, || self.http.post(&url).json(request))
            .await
    }

    /// Every job of `agent`.
    pub async fn jobs(&self, agent: &AgentEntry) -> Result<Vec<JobView>, SbiError> {
        let url = format!("{}/v1/jobs", agent.url);
        self.call("list_jobs", agent, || self.http.get(&url)).await
    }

    /// A job's state and history.
    pub async fn job(&self, agent: &AgentEntry, id: &str) -> Result<JobView, SbiError> {
        let url = format!("{}/v1/jobs/{id}", agent.url);
        self.call("get_job", agent, || self.http.get(&url)).await
    }

    /// Stops a job; a job the agent no longer knows counts as stopped.
    pub async fn stop(&self, agent: &AgentEntry, id: &str) -> Result<(), SbiError> {
        let url = format!("{}/v1/jobs/{id}", agent.url);
        match self
            .call::<JobView>("stop_job", agent, || self.http.delete(&url))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Asks the network controller at `controller` for a meter of
    /// `rate_mbit` on both directions of host `host`'s link; returns its id.
    pub async fn create_meter(
        &self,
        controller: &str,
        host: &str,
        rate_mbit: f64,
    ) -> Result<u32, String> {
        let url = format!("{}/v1/meters", controller.trim_end_matches('/'));
        let body = serde_json::json!({ "host": host, "direction": "both", "rate_mbit": rate_mbit });
        let reply = self.http.post(&url).json(&body).send().await;
        let reply = reply.map_err(|e| {
            self.metrics.sbi_call("create_meter", false);
            format!("network controller {url}: {e}")
        })?;
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        self.metrics.sbi_call("create_meter", status.is_success());
        if !status.is_success() {
            let why = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| Some(v.get("error")?.as_str()?.to_owned()))
                .unwrap_or_else(|| text.trim().to_owned());
            return Err(format!(
                "network controller {url}: meter on {host} refused ({status}): {why}"
            ));
        }
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("id")?.as_u64())
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| format!("network controller {url}: no meter id in {text:?}"))
    }

    /// Times local training steps on `agent` for a client like `request`.
    pub async fn probe_training(
        &self,
        agent: &AgentEntry,
        request: &TrainingProbeRequest,
    ) -> Result<TrainingProbe, SbiError> {
        let url = format!("{}/v1/probes/training", agent.url);
        self.call("probe_training", agent, || {
            self.http.post(&url).json(request)
        })
        .await
    }

    /// What the network controller measures of the path from host `from`
    /// to host `to` (names or addresses): each link's available bandwidth,
    /// both directions, and the probed RTT.
    pub async fn path(
        &self,
        controller: &str,
        from: &str,
        to: &str,
    ) -> Result<MeasuredPath, String> {
        let url = format!("{}/v1/paths", controller.trim_end_matches('/'));
        let fail = |why: String| {
            self.metrics.sbi_call("get_path", false);
            format!("network controller {url} from {from} to {to}: {why}")
        };
        let reply = self
            .http
            .get(&url)
            .query(&[("from", from), ("to", to)])
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = reply.status();
        let text = reply.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {}", text.trim())));
        }
        let path: MeasuredPath = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        self.metrics.sbi_call("get_path", true);
        Ok(path)
    }

    /// Removes meter `id` at the network controller; one it no longer
    /// knows counts as removed.
    pub async fn delete_meter(&self, controller: &str, id: u32) -> Result<(), String> {
        let url = format!("{}/v1/meters/{id}", controller.trim_end_matches('/'));
        let reply = self.http.delete(&url).send().await.map_err(|e| {
            self.metrics.sbi_call("delete_meter", false);
            format!("network controller {url}: {e}")
        })?;
        let ok = reply.status().is_success() || reply.status() == StatusCode::NOT_FOUND;
        self.metrics.sbi_call("delete_meter", ok);
        if ok {
            Ok(())
        } else {
            Err(format!("network controller {url}: {}", reply.status()))
        }
    }

    /// Sends a request, retrying when the agent cannot be reached, and decodes
    /// a 2xx JSON reply; other replies become an error with the agent's text.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        agent: &AgentEntry,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, SbiError> {
        let fail = |problem: String, status: Option<StatusCode>| SbiError {
            host: agent.name.clone(),
            url: agent.url.clone(),
            problem,
            status,
            unreachable: false,
        };
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match request().send().await {
                Ok(reply) => break Ok(reply),
                // Nothing reached the agent: safe to try again, even a start.
                Err(e) if e.is_connect() && attempt < self.attempts => {
                    tokio::time::sleep(RETRY_PAUSE * attempt).await;
                }
                Err(e) => break Err(e),
            }
        };
        let outcome = match result {
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "cannot connect (is its node agent running?)".to_owned()
                } else {
                    e.to_string()
                };
                Err(SbiError {
                    unreachable: e.is_connect(),
                    ..fail(
                        format!("{operation}: {what} after {attempt} attempt(s)"),
                        None,
                    )
                })
            }
            Ok(reply) => {
                let status = reply.status();
                if status.is_success() {
                    reply.json::<T>().await.map_err(|e| {
                        fail(
                            format!("{operation}: reply is not the expected JSON: {e}"),
                            Some(status),
                        )
                    })
                } else {
                    let text = reply.text().await.unwrap_or_default();
                    let hint = match status {
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            "; the agent takes only its MLFO's token: this MLFO's auth.token \
                             must be in the agent's --token-file"
                        }
                        _ => "",
                    };
                    Err(fail(
                        format!(
                            "{operation}: HTTP {}: {}{hint}",
                            status.as_u16(),
                            text.trim()
                        ),
                        Some(status),
                    ))
                }
            }
        };
        self.metrics.sbi_call(operation, outcome.is_ok());
        outcome
    }
}
