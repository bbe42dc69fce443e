//! One connected client as the server sees it: a `Join` stream on which
//! the server sends one instruction and awaits its answer.

use super::outgoing::Outgoing;
use crate::proto::ClientMessage;
use prost::Message;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};

/// Why a request to a client got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The client's stream ended or broke.
    #[error("client disconnected")]
    Disconnected,
    /// No answer within the round timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The instruction is over the server's message size limit.
    #[error(
        "instruction of {len} bytes is over the message limit of {limit} bytes; raise max_message_bytes"
    )]
    TooLarge {
        /// Encoded size of the instruction.
        len: usize,
        /// The server's limit.
        limit: usize,
    },
}

/// A client's answer and the bytes that crossed the wire for it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The client's message.
    pub reply: ClientMessage,
    /// Encoded size of the instruction sent.
    pub bytes_sent: u64,
    /// Encoded size of the reply received.
    pub bytes_received: u64,
}

/// The server's handle on one client stream.
#[derive(Debug)]
pub struct ClientProxy {
    id: String,
    peer: Option<SocketAddr>,
    seq: u64,
    max_message_bytes: usize,
    outbound: mpsc::Sender<Outgoing>,
    inbound: Mutex<mpsc::Receiver<ClientMessage>>,
}

impl ClientProxy {
    /// A proxy over the given channels; `seq` orders clients by arrival.
    pub(crate) fn new(
        id: String,
        peer: Option<SocketAddr>,
        seq: u64,
        max_message_bytes: usize,
        outbound: mpsc::Sender<Outgoing>,
        inbound: mpsc::Receiver<ClientMessage>,
    ) -> Self {
        Self {
            id,
            peer,
            seq,
            max_message_bytes,
            outbound,
            inbound: Mutex::new(inbound),
        }
    }

    /// The server-assigned id (a UUID).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client's socket address, when known.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Arrival order among the clients of this server.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Sends one instruction and waits for the answer; one at a time per client.
    pub async fn request(
        &self,
        message: Outgoing,
        timeout: Option<Duration>,
    ) -> Result<Exchange, RequestError> {
        let mut inbound = self.inbound.lock().await;
        let bytes_sent = self.check_size(&message)?;
        self.outbound
            .send(message)
            .await
            .map_err(|_| RequestError::Disconnected)?;
        let reply = match timeout {
            Some(limit) => tokio::time::timeout(limit, inbound.recv())
                .await
                .map_err(|_| RequestError::Timeout(limit))?,
            None => inbound.recv().await,
        }
        .ok_or(RequestError::Disconnected)?;
        Ok(Exchange {
            bytes_received: reply.encoded_len() as u64,
            reply,
            bytes_sent,
        })
    }

    /// Sends an instruction without waiting for an answer (used for
    /// `ReconnectIns`); returns its size.
    pub async fn send(&self, message: Outgoing) -> Result<u64, RequestError> {
        let n = self.check_size(&message)?;
        self.outbound
            .send(message)
            .await
            .map_err(|_| RequestError::Disconnected)?;
        Ok(n)
    }

    fn check_size(&self, message: &Outgoing) -> Result<u64, RequestError> {
        let len = message.message_len();
        if len > self.max_message_bytes {
            return Err(RequestError::TooLarge {
                len,
                limit: self.max_message_bytes,
            });
        }
        Ok(len as u64)
    }
}
