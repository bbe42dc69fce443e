//! `flwr.proto.FlowerService/Join` as a tower service under tonic's server:
//! each stream becomes a [`ClientProxy`] in the [`ClientManager`]. The
//! message framing is ours ([`Outgoing`], [`Assembler`]) so that a
//! broadcast shares one copy of the model across all streams and no stream
//! keeps a model-sized buffer between messages.

use super::client_manager::ClientManager;
use super::incoming::Assembler;
use super::outgoing::Outgoing;
use super::proxy::ClientProxy;
use crate::proto::ClientMessage;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;

/// The one method of the service.
const JOIN_PATH: &str = "/flwr.proto.FlowerService/Join";

/// The gRPC service that accepts client streams.
#[derive(Debug, Clone)]
pub struct FlowerSvc {
    manager: Arc<ClientManager>,
    arrivals: Arc<AtomicU64>,
    max_message_bytes: usize,
}

impl FlowerSvc {
    /// A service registering clients in `manager`, refusing messages over
    /// `max_message_bytes` in either direction.
    pub fn new(manager: Arc<ClientManager>, max_message_bytes: usize) -> Self {
        Self {
            manager,
            arrivals: Arc::new(AtomicU64::new(0)),
            max_message_bytes,
        }
    }

    fn join(&self, request: http::Request<Body>) -> http::Response<Body> {
        let peer = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr);
        let (out_tx, out_rx) = mpsc::channel(2);
        let (in_tx, in_rx) = mpsc::channel(2);
        let (error_tx, error_rx) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        let seq = self.arrivals.fetch_add(1, Ordering::Relaxed);
        let proxy = ClientProxy::new(id.clone(), peer, seq, self.max_message_bytes, out_tx, in_rx);
        self.manager.register(Arc::new(proxy));
        tracing::info!(client = %id, ?peer, "client joined");
        let reader = StreamReader {
            id,
            manager: self.manager.clone(),
            assembler: Assembler::new(self.max_message_bytes),
            replies: in_tx,
        };
        tokio::spawn(reader.run(request.into_body(), error_tx));
        let mut response = http::Response::new(Body::new(ResponseBody {
            messages: out_rx,
            error: Some(error_rx),
            pieces: VecDeque::new(),
            ended: false,
        }));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        response
    }
}

impl NamedService for FlowerSvc {
    const NAME: &'static str = "flwr.proto.FlowerService";
}

impl tower_service::Service<http::Request<Body>> for FlowerSvc {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        std::future::ready(Ok(if request.uri().path() == JOIN_PATH {
            self.join(request)
        } else {
            Status::unimplemented(format!(
                "no method {} here; this server has {JOIN_PATH}",
                request.uri().path()
            ))
            .into_http()
        }))
    }
}

/// Reads one client's request stream and hands its messages to the proxy.
struct StreamReader {
    id: String,
    manager: Arc<ClientManager>,
    assembler: Assembler,
    replies: mpsc::Sender<ClientMessage>,
}

impl StreamReader {
    /// Runs until the client closes its side, breaks the protocol or the
    /// proxy is gone; a protocol error ends the call with that status.
    async fn run(mut self, mut body: Body, error: oneshot::Sender<Status>) {
        let outcome = self.read(&mut body).await;
        self.manager.unregister(&self.id);
        match outcome {
            Ok(()) => tracing::info!(client = %self.id, "client left"),
            Err(status) => {
                tracing::warn!(client = %self.id, %status, "client stream refused");
                let _ = error.send(status);
            }
        }
    }

    async fn read(&mut self, body: &mut Body) -> Result<(), Status> {
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                Err(status) => {
                    tracing::debug!(client = %self.id, %status, "client stream error");
                    return Ok(());
                }
            };
            self.assembler.push(data);
            while let Some(raw) = self.assembler.next_message()? {
                let message = ClientMessage::decode(raw).map_err(|e| {
                    Status::invalid_argument(format!("malformed ClientMessage: {e}"))
                })?;
                if self.replies.send(message).await.is_err() {
                    return Ok(());
                }
            }
        }
        if self.assembler.pending() > 0 {
            tracing::debug!(
                client = %self.id,
                bytes = self.assembler.pending(),
                "stream ended inside a message"
            );
        }
        Ok(())
    }
}

/// The response stream: each outgoing message's pieces as data frames,
/// then the status as trailers (OK once the proxy is dropped).
struct ResponseBody {
    messages: mpsc::Receiver<Outgoing>,
    error: Option<oneshot::Receiver<Status>>,
    pieces: VecDeque<Bytes>,
    ended: bool,
}

impl ResponseBody {
    fn trailers(&mut self, status: &Status) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.ended = true;
        let mut trailers = http::HeaderMap::new();
        if let Err(e) = status.add_header(&mut trailers) {
            tracing::warn!(error = %e, "status trailers");
            let _ = Status::internal("").add_header(&mut trailers);
        }
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if let Some(piece) = this.pieces.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(error) = this.error.as_mut() {
                match Pin::new(error).poll(cx) {
                    Poll::Ready(Ok(status)) => return this.trailers(&status),
                    Poll::Ready(Err(_)) => this.error = None,
                    Poll::Pending => {}
                }
            }
            match this.messages.poll_recv(cx) {
                Poll::Ready(Some(message)) => this.pieces = message.into_pieces().into(),
                Poll::Ready(None) => return this.trailers(&Status::ok("")),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.pieces.is_empty()
    }
}
