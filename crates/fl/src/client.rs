//! The FL client loop: joins a Flower server (ours or Python's), answers
//! each instruction through a [`Trainer`], and leaves on `ReconnectIns`.

use crate::config::Config;
use crate::join_stream::Inbound;
use crate::proto::client_message::{
    DisconnectRes, EvaluateRes, FitRes, GetParametersRes, GetPropertiesRes, Msg as ClientMsg,
};
use crate::proto::server_message::Msg as ServerMsg;
use crate::proto::{ClientMessage, Code, Reason, Status};
use crate::server::{DEFAULT_KEEPALIVE, DEFAULT_MAX_MESSAGE_BYTES};
use crate::trainer::{Trainer, TrainerError};
use crate::wire;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// gRPC message size limit in bytes, both directions.
    pub max_message_bytes: usize,
    /// Connection attempts before giving up (each Join counts).
    pub connect_attempts: u32,
    /// First wait between attempts; doubles each time up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// HTTP/2 keepalive interval.
    pub keepalive: Duration,
    /// TLS, trusting these roots; `None`: plain h2c.
    pub tls: Option<crate::tls::ClientTls>,
    /// The local address the connection is made from (a host's own
    /// address where one process holds many hosts' clients); `None`: the
    /// kernel's choice.
    pub local_address: Option<IpAddr>,
    /// Slots of the process's training pool: each instruction waits for
    /// one before the trainer runs, so many clients in one process train a
    /// bounded number at a time; `None`: no bound.
    pub training_slots: Option<Arc<Semaphore>>,
    /// HTTP/2 flow-control window of the connection and of the stream,
    /// bytes: what the server may send before the client reads it. With
    /// training slots, the client reads an instruction only once it holds
    /// a slot, so a small window keeps waiting clients from each holding a
    /// model; `None`: hyper's defaults (2 MiB a stream, 5 MiB a connection).
    pub flow_window_bytes: Option<u32>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            connect_attempts: 30,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            keepalive: DEFAULT_KEEPALIVE,
            tls: None,
            local_address: None,
            training_slots: None,
            flow_window_bytes: None,
        }
    }
}

/// What the client did during its session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSummary {
    /// Fit instructions answered successfully.
    pub fits: u64,
    /// Evaluate instructions answered successfully.
    pub evaluates: u64,
    /// Instructions that failed locally and were reported in `Status`.
    pub errors: u64,
    /// Seconds spent in local training.
    pub train_seconds: f64,
    /// Examples used in local training, summed over fits.
    pub train_examples: u64,
    /// Latest metrics from evaluate.
    pub last_evaluate: Option<Config>,
}

/// Why the client stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `server` is not a usable address.
    #[error("invalid server address {0:?}: expected HOST:PORT")]
    Address(String),
    /// Could not reach the server after all attempts.
    #[error("could not connect to {server} after {attempts} attempts: {last}")]
    Connect {
        /// Server address.
        server: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        last: String,
    },
    /// The stream broke mid-session.
    #[error("stream to {server} failed: {status}")]
    Stream {
        /// Server address.
        server: String,
        /// gRPC status.
        status: String,
    },
    /// The TLS settings cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Joins the Flower server at `server` (`HOST:PORT`) and serves it until it
/// sends `ReconnectIns` or closes the stream. Trainer errors are reported
/// to the server in `Status`, and the client goes on.
pub async fn run_client(
    server: &str,
    trainer: Box<dyn Trainer>,
    options: &ClientOptions,
) -> Result<ClientSummary, ClientError> {
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let uri = format!("{scheme}://{server}");
    let mut endpoint = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|_| ClientError::Address(server.to_owned()))?;
    if let Some(tls) = &options.tls {
        let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        endpoint = endpoint
            .tls_config(tls.config(host))
            .map_err(|e| ClientError::Tls(e.to_string()))?;
    }
    let endpoint = endpoint
        .http2_keep_alive_interval(options.keepalive)
        .tcp_nodelay(true)
        .max_frame_size(crate::server::MAX_FRAME_BYTES)
        .connect_timeout(Duration::from_secs(5))
        .initial_stream_window_size(options.flow_window_bytes)
        .initial_connection_window_size(options.flow_window_bytes)
        .local_address(options.local_address);
    let mut trainer = trainer;
    let mut summary = ClientSummary::default();
    let mut attempt = 0;
    let mut backoff = options.initial_backoff;
    loop {
        attempt += 1;
        let (mut inbound, tx) = match join(&endpoint, options).await {
            Ok(s) => s,
            Err(last) if attempt >= options.connect_attempts => {
                return Err(ClientError::Connect {
                    server: server.to_owned(),
                    attempts: attempt,
                    last,
                });
            }
            Err(last) => {
                tracing::debug!(attempt, %last, "connect failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
                continue;
            }
        };
        attempt = 0;
        backoff = options.initial_backoff;
        let slots = options.training_slots.as_deref();
        match serve(server, &mut inbound, &tx, trainer, slots, &mut summary).await? {
            SessionEnd::Finished => return Ok(summary),
            SessionEnd::Reconnect(back) => trainer = back,
        }
    }
}

/// Connects and opens the `Join` stream: the server's instructions and
/// the sender of the client's replies.
async fn join(
    endpoint: &tonic::transport::Endpoint,
    options: &ClientOptions,
) -> Result<(Inbound, mpsc::Sender<ClientMessage>), String> {
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    crate::join_stream::join(channel, options.max_message_bytes).await
}

/// How a session with the server ended.
enum SessionEnd {
    /// The server is done with this client.
    Finished,
    /// The server asked the client to come back; the trainer goes on.
    Reconnect(Box<dyn Trainer>),
}

/// Answers the server's instructions on one stream until it ends.
async fn serve(
    server: &str,
    inbound: &mut Inbound,
    tx: &mpsc::Sender<ClientMessage>,
    mut trainer: Box<dyn Trainer>,
    slots: Option<&Semaphore>,
    summary: &mut ClientSummary,
) -> Result<SessionEnd, ClientError> {
    let stream_error = |status: String| ClientError::Stream {
        server: server.to_owned(),
        status,
    };
    loop {
        // With training slots, take one as the next instruction begins to
        // arrive, and only then read it whole.
        let slot = match slots {
            Some(s) => {
                inbound.arriving().await.map_err(stream_error)?;
                Some(
                    s.acquire()
                        .await
                        .map_err(|_| stream_error("the training pool closed".into()))?,
                )
            }
            None => None,
        };
        let message = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(SessionEnd::Finished),
            Err(status) => return Err(stream_error(status)),
        };
        let Some(msg) = message.msg else { continue };
        if let ServerMsg::ReconnectIns(r) = msg {
            let reason = if r.seconds > 0 {
                Reason::Reconnect
            } else {
                Reason::Ack
            };
            let bye = ClientMessage {
                msg: Some(ClientMsg::DisconnectRes(DisconnectRes {
                    reason: reason as i32,
                })),
            };
            let _ = tx.send(bye).await;
            if r.seconds <= 0 {
                return Ok(SessionEnd::Finished);
            }
            tokio::time::sleep(Duration::from_secs(r.seconds.unsigned_abs())).await;
            return Ok(SessionEnd::Reconnect(trainer));
        }
        let (back, reply) = tokio::task::spawn_blocking(move || {
            let mut t = trainer;
            let reply = answer(t.as_mut(), msg);
            (t, reply)
        })
        .await
        .map_err(|e| stream_error(format!("trainer panicked: {e}")))?;
        drop(slot);
        trainer = back;
        summary.record(&reply);
        if tx.send(reply.message).await.is_err() {
            return Err(stream_error("server closed the stream".into()));
        }
    }
}

/// A reply and what it says about the client's work.
struct Answer {
    message: ClientMessage,
    fit: Option<(f64, u64)>,
    evaluate: Option<Config>,
    failed: bool,
}

impl ClientSummary {
    fn record(&mut self, a: &Answer) {
        if a.failed {
            self.errors += 1;
        }
        if let Some((secs, n)) = a.fit {
            self.fits += 1;
            self.train_seconds += secs;
            self.train_examples += n;
        }
        if let Some(m) = &a.evaluate {
            self.evaluates += 1;
            self.last_evaluate = Some(m.clone());
        }
    }
}

fn error_status(code: Code, what: &str, e: &TrainerError) -> Option<Status> {
    Some(Status {
        code: code as i32,
        message: format!("{what} failed: {e}"),
    })
}

fn reply(msg: ClientMsg) -> ClientMessage {
    ClientMessage { msg: Some(msg) }
}

/// Answers one instruction with the trainer (blocking).
// Over 80 lines: one arm per Flower instruction, each with its reply and error status.
fn answer(trainer: &mut dyn Trainer, msg: ServerMsg) -> Answer {
    let mut out = Answer {
        message: ClientMessage { msg: None },
        fit: None,
        evaluate: None,
        failed: false,
    };
    out.message = match msg {
        ServerMsg::GetPropertiesIns(_) => reply(ClientMsg::GetPropertiesRes(GetPropertiesRes {
            status: Some(wire::status_ok()),
            properties: Default::default(),
        })),
        ServerMsg::GetParametersIns(ins) => {
            let config = wire::config_from_proto(&ins.config);
            match trainer.get_parameters(&config) {
                Ok(p) => reply(ClientMsg::GetParametersRes(GetParametersRes {
                    status: Some(wire::status_ok()),
                    parameters: Some(wire::parameters_to_proto(&p)),
                })),
                Err(e) => {
                    out.failed = true;
                    reply(ClientMsg::GetParametersRes(GetParametersRes {
                        status: error_status(
                            Code::GetParametersNotImplemented,
                            "get_parameters",
                            &e,
                        ),
                        parameters: None,
                    }))
                }
            }
        }
        ServerMsg::FitIns(ins) => {
            let config = wire::config_from_proto(&ins.config);
            let start = Instant::now();
            let result = wire::parameters_from_proto(ins.parameters.as_ref())
                .map_err(|e| TrainerError::msg(format!("bad parameters from server: {e}")))
                .and_then(|p| trainer.fit(p, &config));
            match result {
                Ok(f) => {
                    out.fit = Some((start.elapsed().as_secs_f64(), f.num_examples));
                    reply(ClientMsg::FitRes(FitRes {
                        status: Some(wire::status_ok()),
                        parameters: Some(wire::parameters_to_proto(&f.parameters)),
                        num_examples: i64::try_from(f.num_examples).unwrap_or(i64::MAX),
                        metrics: wire::config_to_proto(&f.metrics),
                    }))
                }
                Err(e) => {
                    out.failed = true;
                    tracing::warn!(error = %e, "fit failed");
                    reply(ClientMsg::FitRes(FitRes {
                        status: error_status(Code::FitNotImplemented, "fit", &e),
                        ..FitRes::default()
                    }))
                }
            }
        }
        ServerMsg::EvaluateIns(ins) => {
            let config = wire::config_from_proto(&ins.config);
            let result = wire::parameters_from_proto(ins.parameters.as_ref())
                .map_err(|e| TrainerError::msg(format!("bad parameters from server: {e}")))
                .and_then(|p| trainer.evaluate(p, &config));
            match result {
                Ok(e) => {
                    out.evaluate = Some(e.metrics.clone());
                    reply(ClientMsg::EvaluateRes(EvaluateRes {
                        status: Some(wire::status_ok()),
                        loss: e.loss,
                        num_examples: i64::try_from(e.num_examples).unwrap_or(i64::MAX),
                        metrics: wire::config_to_proto(&e.metrics),
                    }))
                }
                Err(e) => {
                    out.failed = true;
                    tracing::warn!(error = %e, "evaluate failed");
                    reply(ClientMsg::EvaluateRes(EvaluateRes {
                        status: error_status(Code::EvaluateNotImplemented, "evaluate", &e),
                        ..EvaluateRes::default()
                    }))
                }
            }
        }
        ServerMsg::ReconnectIns(_) => reply(ClientMsg::DisconnectRes(DisconnectRes {
            reason: Reason::Ack as i32,
        })),
    };
    out
}
