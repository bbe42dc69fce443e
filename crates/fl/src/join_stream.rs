//! The client's side of Flower's `Join` stream over a tonic channel, with
//! the message framing done here as the server does it
//! ([`crate::server`]'s service): tonic's codec keeps a model-sized buffer
//! per stream in each direction between messages, about 1.6 MB per client
//! with the MLP, which a process holding hundreds of clients cannot
//! afford. Here a message's bytes live only as long as the message.

use crate::proto::{ClientMessage, ServerMessage};
use crate::server::incoming::Assembler;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost::Message;
use std::convert::Infallible;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::transport::Channel;
use tower_service::Service;

/// The one method the client calls.
const JOIN_PATH: &str = "/flwr.proto.FlowerService/Join";

/// The server's side of an open `Join` stream: its messages, one at a time.
pub(crate) struct Inbound {
    body: Body,
    assembler: Assembler,
    ended: bool,
}

impl Inbound {
    /// The next instruction; `None` once the server ends the stream with
    /// status OK; an error naming the gRPC status otherwise.
    pub(crate) async fn message(&mut self) -> Result<Option<ServerMessage>, String> {
        loop {
            if let Some(raw) = self.assembler.next_message().map_err(|s| s.to_string())? {
                return ServerMessage::decode(raw)
                    .map(Some)
                    .map_err(|e| format!("malformed ServerMessage: {e}"));
            }
            if self.ended {
                return Ok(None);
            }
            self.read_frame().await?;
        }
    }

    /// Waits until the next message has begun to arrive (or the stream has
    /// ended) without reading on: with a small flow-control window the
    /// rest stays with the server until the client reads it.
    pub(crate) async fn arriving(&mut self) -> Result<(), String> {
        while self.assembler.pending() == 0 && !self.ended {
            self.read_frame().await?;
        }
        Ok(())
    }

    /// Reads one frame: data into the assembler, trailers as the end.
    async fn read_frame(&mut self) -> Result<(), String> {
        match self.body.frame().await {
            None => {
                if self.assembler.pending() > 0 {
                    return Err("the stream ended inside a message".to_owned());
                }
                self.ended = true;
            }
            Some(Err(status)) => return Err(status.to_string()),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => self.assembler.push(data),
                Err(frame) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        status_of(trailers)?;
                    }
                    self.ended = true;
                }
            },
        }
        Ok(())
    }
}

/// `Ok` for `grpc-status: 0` (or none), else the status and its message.
fn status_of(headers: &http::HeaderMap) -> Result<(), String> {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    if code == 0 {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decoded)
        .unwrap_or_default();
    Err(format!(
        "status: {:?}, message: {message:?}",
        tonic::Code::from_i32(code)
    ))
}

/// A `grpc-message` value with its `%XX` escapes decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One message as a gRPC frame: the uncompressed flag, its length, its bytes.
fn framed(message: &ClientMessage) -> Bytes {
    let len = message.encoded_len();
    let mut out = Vec::with_capacity(5 + len);
    out.push(0);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    message
        .encode(&mut out)
        .expect("a Vec grows to any message");
    Bytes::from(out)
}

/// Opens the `Join` stream on `channel`: the server's instructions and the
/// sender of the client's replies. Messages over `max_message_bytes` from
/// the server end the stream with an error.
pub(crate) async fn join(
    mut channel: Channel,
    max_message_bytes: usize,
) -> Result<(Inbound, mpsc::Sender<ClientMessage>), String> {
    let (tx, rx) = mpsc::channel::<ClientMessage>(2);
    let frames = ReceiverStream::new(rx).map(|m| Ok::<_, Infallible>(Frame::data(framed(&m))));
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(JOIN_PATH)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(Body::new(StreamBody::new(frames)))
        .map_err(|e| e.to_string())?;
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .map_err(|e| e.to_string())?;
    let response = channel.call(request).await.map_err(|e| e.to_string())?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("the server answered HTTP {}", response.status()));
    }
    // A trailers-only response: the server refused the stream outright.
    status_of(response.headers())?;
    let inbound = Inbound {
        body: response.into_body(),
        assembler: Assembler::new(max_message_bytes),
        ended: false,
    };
    Ok((inbound, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_reply_is_prefixed_with_its_length_and_a_refusal_is_read_from_trailers() {
        let m = ClientMessage::default();
        let f = framed(&m);
        assert_eq!(&f[..5], &[0, 0, 0, 0, 0]);
        let mut h = http::HeaderMap::new();
        assert_eq!(status_of(&h), Ok(()));
        h.insert("grpc-status", "8".parse().unwrap());
        h.insert(
            "grpc-message",
            "message%20of%20900%20bytes".parse().unwrap(),
        );
        assert_eq!(
            status_of(&h),
            Err("status: ResourceExhausted, message: \"message of 900 bytes\"".to_owned())
        );
        assert_eq!(percent_decoded("100%"), "100%");
    }
}
