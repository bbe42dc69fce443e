//! A `ServerMessage` framed for the wire as a list of byte pieces, with the
//! model's tensors shared rather than copied: every client of a broadcast
//! sends the same tensor buffers, and nothing per stream grows to the size
//! of the model. The bytes are exactly prost's encoding, behind the gRPC
//! length prefix.

use crate::proto::server_message::{EvaluateIns, FitIns, Msg};
use crate::proto::{Parameters, ServerMessage};
use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

/// Pieces shorter than this are copied into their neighbours instead of
/// being sent as frames of their own.
const SHARE_AT_LEAST: usize = 4096;

/// `Parameters.tensors`.
const TENSORS_FIELD: u32 = 1;
/// `FitIns.parameters` and `EvaluateIns.parameters`.
const PARAMETERS_FIELD: u32 = 1;
/// `ServerMessage.fit_ins`.
const FIT_INS_FIELD: u32 = 4;
/// `ServerMessage.evaluate_ins`.
const EVALUATE_INS_FIELD: u32 = 5;

/// One gRPC message (length prefix included) ready to send, in pieces.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Outgoing {
    /// Size of the protobuf message, without the 5-byte gRPC prefix.
    pub fn message_len(&self) -> usize {
        self.len
    }

    /// The pieces, in order; together they are the framed message.
    pub(crate) fn into_pieces(self) -> Vec<Bytes> {
        self.pieces
    }
}

impl From<ServerMessage> for Outgoing {
    fn from(message: ServerMessage) -> Self {
        match message.msg {
            Some(Msg::FitIns(FitIns {
                parameters: Some(parameters),
                config,
            })) => {
                let rest = FitIns {
                    parameters: None,
                    config,
                };
                with_parameters(FIT_INS_FIELD, parameters, &rest)
            }
            Some(Msg::EvaluateIns(EvaluateIns {
                parameters: Some(parameters),
                config,
            })) => {
                let rest = EvaluateIns {
                    parameters: None,
                    config,
                };
                with_parameters(EVALUATE_INS_FIELD, parameters, &rest)
            }
            msg => {
                let message = ServerMessage { msg };
                let len = message.encoded_len();
                let mut buf = BytesMut::with_capacity(5 + len);
                put_prefix(&mut buf, len);
                message
                    .encode(&mut buf)
                    .expect("the buffer was sized to the message");
                Self {
                    pieces: vec![buf.freeze()],
                    len,
                }
            }
        }
    }
}

/// Frames `ServerMessage { field: Ins { parameters, ..rest } }`, where
/// `rest` is the instruction without its parameters.
fn with_parameters(field: u32, parameters: Parameters, rest: &impl Message) -> Outgoing {
    let Parameters {
        tensors,
        tensor_type,
    } = parameters;
    let trailer = Parameters {
        tensors: Vec::new(),
        tensor_type,
    };
    let tensors_len: usize = tensors
        .iter()
        .map(|t| key_len(TENSORS_FIELD) + encoded_len_varint(t.len() as u64) + t.len())
        .sum();
    let parameters_len = tensors_len + trailer.encoded_len();
    let ins_len = key_len(PARAMETERS_FIELD)
        + encoded_len_varint(parameters_len as u64)
        + parameters_len
        + rest.encoded_len();
    let len = key_len(field) + encoded_len_varint(ins_len as u64) + ins_len;

    let mut out = Pieces::default();
    put_prefix(&mut out.small, len);
    encode_key(field, WireType::LengthDelimited, &mut out.small);
    encode_varint(ins_len as u64, &mut out.small);
    encode_key(PARAMETERS_FIELD, WireType::LengthDelimited, &mut out.small);
    encode_varint(parameters_len as u64, &mut out.small);
    for tensor in tensors {
        encode_key(TENSORS_FIELD, WireType::LengthDelimited, &mut out.small);
        encode_varint(tensor.len() as u64, &mut out.small);
        out.share(tensor);
    }
    trailer
        .encode(&mut out.small)
        .expect("BytesMut grows as needed");
    rest.encode(&mut out.small)
        .expect("BytesMut grows as needed");
    Outgoing {
        pieces: out.finish(),
        len,
    }
}

/// The gRPC prefix: not compressed, then the length (big-endian u32).
fn put_prefix(buf: &mut BytesMut, len: usize) {
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

/// Collects pieces: small writes go to one buffer, large shared buffers are
/// kept as they are.
#[derive(Default)]
struct Pieces {
    done: Vec<Bytes>,
    small: BytesMut,
}

impl Pieces {
    fn share(&mut self, bytes: Bytes) {
        if bytes.len() < SHARE_AT_LEAST {
            self.small.put_slice(&bytes);
            return;
        }
        if !self.small.is_empty() {
            self.done.push(self.small.split().freeze());
        }
        self.done.push(bytes);
    }

    fn finish(mut self) -> Vec<Bytes> {
        if !self.small.is_empty() {
            self.done.push(self.small.freeze());
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Scalar;
    use crate::proto::scalar::Scalar as S;
    use crate::proto::server_message::{GetParametersIns, ReconnectIns};
    use std::collections::HashMap;

    fn framed(message: &ServerMessage) -> Vec<u8> {
        let body = message.encode_to_vec();
        let mut v = vec![0];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(&body);
        v
    }

    fn joined(out: &Outgoing) -> Vec<u8> {
        out.pieces.iter().flat_map(|p| p.iter().copied()).collect()
    }

    fn parameters(sizes: &[usize]) -> Parameters {
        Parameters {
            tensors: sizes
                .iter()
                .enumerate()
                .map(|(i, n)| Bytes::from(vec![i as u8 + 1; *n]))
                .collect(),
            tensor_type: "numpy.ndarray".into(),
        }
    }

    fn config() -> HashMap<String, Scalar> {
        HashMap::from([(
            "server_round".to_owned(),
            Scalar {
                scalar: Some(S::Sint64(3)),
            },
        )])
    }

    #[test]
    fn framing_equals_prost_for_every_kind_of_message() {
        let messages = [
            ServerMessage {
                msg: Some(Msg::FitIns(FitIns {
                    parameters: Some(parameters(&[10, 200_000, 0, 5000, 300])),
                    config: config(),
                })),
            },
            ServerMessage {
                msg: Some(Msg::EvaluateIns(EvaluateIns {
                    parameters: Some(parameters(&[70_000])),
                    config: HashMap::new(),
                })),
            },
            ServerMessage {
                msg: Some(Msg::FitIns(FitIns {
                    parameters: Some(parameters(&[])),
                    config: config(),
                })),
            },
            ServerMessage {
                msg: Some(Msg::FitIns(FitIns {
                    parameters: None,
                    config: config(),
                })),
            },
            ServerMessage {
                msg: Some(Msg::ReconnectIns(ReconnectIns { seconds: 5 })),
            },
            ServerMessage {
                msg: Some(Msg::GetParametersIns(GetParametersIns { config: config() })),
            },
            ServerMessage { msg: None },
        ];
        for message in messages {
            let out = Outgoing::from(message.clone());
            assert_eq!(joined(&out), framed(&message), "{message:?}");
            assert_eq!(out.message_len(), message.encoded_len());
        }
    }

    #[test]
    fn large_tensors_are_shared_not_copied() {
        let p = parameters(&[200_000, 100, 80_000]);
        let big = [p.tensors[0].as_ptr(), p.tensors[2].as_ptr()];
        let out = Outgoing::from(ServerMessage {
            msg: Some(Msg::FitIns(FitIns {
                parameters: Some(p),
                config: config(),
            })),
        });
        let shared: Vec<*const u8> = out
            .pieces
            .iter()
            .filter(|piece| piece.len() >= SHARE_AT_LEAST)
            .map(|piece| piece.as_ptr())
            .collect();
        assert_eq!(shared, big);
        // Prefix and keys, tensor 0; its key, tensor 1 and key; tensor 2; the rest.
        assert_eq!(out.pieces.len(), 5);
    }
}
