//! A client of an edge MLFO's JSON API (`POST /v1/intents`, `GET
//! /v1/intents/{id}`), shared by `dmo intent` and the experiment runner.
//! Blocking: call it outside an async runtime.

use crate::record::IntentRecord;
use crate::submission::IntentRequest;
use std::time::Duration;

/// Why a call to the MLFO failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The MLFO could not be reached, or did not answer in time.
    #[error("cannot reach the MLFO at {url}: {source}")]
    Unreachable {
        /// The MLFO's URL.
        url: String,
        /// The transport's error.
        source: reqwest::Error,
    },
    /// The MLFO answered with an error status; `text` says why.
    #[error("the MLFO refused it ({status}): {text}")]
    Refused {
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// The MLFO's explanation.
        text: String,
    },
    /// The answer is not an intent record.
    #[error("the MLFO's answer is not an intent record: {0}")]
    Reply(reqwest::Error),
    /// The token cannot be sent.
    #[error("token: {0}")]
    Token(httpd::auth::TokenError),
    /// The roots cannot be used.
    #[error("root certificates: {0}")]
    Tls(httpd::tls::TlsError),
}

/// The JSON API of one MLFO.
pub struct MlfoClient {
    http: reqwest::blocking::Client,
    url: String,
}

impl MlfoClient {
    /// A client of the MLFO at `url` (`http://HOST:PORT` or `https://`),
    /// each call limited to `timeout`, presenting `token` when given and
    /// trusting `roots` (else no https:// server).
    pub fn new(
        url: &str,
        timeout: Duration,
        token: Option<&str>,
        roots: Option<&httpd::tls::Roots>,
    ) -> Result<Self, ClientError> {
        let url = url.trim_end_matches('/').to_owned();
        let headers = httpd::auth::client_headers(token).map_err(ClientError::Token)?;
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .default_headers(headers);
        if let Some(roots) = roots {
            builder = roots.blocking_client(builder).map_err(ClientError::Tls)?;
        }
        let http = builder.build().map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
        Ok(Self { http, url })
    }

    /// Submits an intent; its record as accepted.
    pub fn submit(&self, request: &IntentRequest) -> Result<IntentRecord, ClientError> {
        self.record(
            self.http
                .post(format!("{}/v1/intents", self.url))
                .json(request),
        )
    }

    /// The record of intent `id` now.
    pub fn intent(&self, id: &str) -> Result<IntentRecord, ClientError> {
        self.record(self.http.get(format!("{}/v1/intents/{id}", self.url)))
    }

    fn record(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<IntentRecord, ClientError> {
        let reply = request.send().map_err(|source| ClientError::Unreachable {
            url: self.url.clone(),
            source,
        })?;
        let status = reply.status();
        if !status.is_success() {
            let text = reply.text().unwrap_or_default().trim().to_owned();
            return Err(ClientError::Refused { status, text });
        }
        reply.json().map_err(ClientError::Reply)
    }
}
