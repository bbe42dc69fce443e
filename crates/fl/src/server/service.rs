//! The tonic implementation of `flwr.proto.FlowerService/Join`: each stream
//! becomes a [`ClientProxy`] in the [`ClientManager`].

use super::client_manager::ClientManager;
use super::proxy::ClientProxy;
use crate::proto::flower_service_server::FlowerService;
use crate::proto::{ClientMessage, ServerMessage};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// The gRPC service that accepts client streams.
#[derive(Debug, Clone)]
pub struct FlowerSvc {
    manager: Arc<ClientManager>,
    arrivals: Arc<AtomicU64>,
}

impl FlowerSvc {
    /// A service registering clients in `manager`.
    pub fn new(manager: Arc<ClientManager>) -> Self {
        Self {
            manager,
            arrivals: Arc::new(AtomicU64::new(0)),
        }
    }
}

#[tonic::async_trait]
impl FlowerService for FlowerSvc {
    type JoinStream = ReceiverStream<Result<ServerMessage, Status>>;

    async fn join(
        &self,
        request: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<Self::JoinStream>, Status> {
        let peer = request.remote_addr();
        let mut stream = request.into_inner();
        let (out_tx, out_rx) = mpsc::channel(2);
        let (in_tx, in_rx) = mpsc::channel(2);
        let id = uuid::Uuid::new_v4().to_string();
        let seq = self.arrivals.fetch_add(1, Ordering::Relaxed);
        let proxy = Arc::new(ClientProxy::new(id.clone(), peer, seq, out_tx, in_rx));
        self.manager.register(proxy);
        tracing::info!(client = %id, ?peer, "client joined");
        let manager = self.manager.clone();
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(msg)) => {
                        if in_tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(client = %id, %status, "client stream error");
                        break;
                    }
                }
            }
            manager.unregister(&id);
            tracing::info!(client = %id, "client left");
        });
        Ok(Response::new(ReceiverStream::new(out_rx)))
    }
}
