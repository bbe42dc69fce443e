//! Splits a client's request stream (HTTP/2 data chunks) into gRPC
//! messages: the 5-byte prefix, the size limit, then the message bytes.
//! A message that lies in one chunk is passed on without a copy; one that
//! spans chunks is copied once into a buffer of exactly its size, which is
//! freed as soon as the message is.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use tonic::Status;

/// Bytes of the gRPC message prefix: a compression flag and a u32 length.
const PREFIX_LEN: usize = 5;

/// Assembles gRPC messages from the chunks of one stream.
#[derive(Debug)]
pub struct Assembler {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    limit: usize,
    expected: Option<usize>,
}

impl Assembler {
    /// An assembler refusing messages over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            buffered: 0,
            limit,
            expected: None,
        }
    }

    /// Adds the next chunk of the stream.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Bytes received that are not yet part of a complete message.
    pub fn pending(&self) -> usize {
        self.buffered
    }

    /// The next complete message, if it is all in; an error status when the
    /// stream breaks the protocol or the limit.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        let len = match self.expected {
            Some(len) => len,
            None => {
                if self.buffered < PREFIX_LEN {
                    return Ok(None);
                }
                let mut prefix = self.take(PREFIX_LEN);
                let (flag, len) = (prefix.get_u8(), prefix.get_u32() as usize);
                match flag {
                    0 => {}
                    1 => {
                        return Err(Status::unimplemented(
                            "compressed messages are not supported: send them uncompressed \
                             (grpc-encoding identity)",
                        ));
                    }
                    other => {
                        return Err(Status::internal(format!(
                            "invalid gRPC message flag {other} (expected 0 or 1)"
                        )));
                    }
                }
                if len > self.limit {
                    return Err(Status::resource_exhausted(format!(
                        "message of {len} bytes is over the server's limit of {} bytes; \
                         raise the server's max_message_bytes or send a smaller model",
                        self.limit
                    )));
                }
                self.expected = Some(len);
                len
            }
        };
        if self.buffered < len {
            return Ok(None);
        }
        self.expected = None;
        Ok(Some(self.take(len)))
    }

    /// Removes the first `n` buffered bytes (`n <= buffered`).
    fn take(&mut self, n: usize) -> Bytes {
        self.buffered -= n;
        if n == 0 {
            return Bytes::new();
        }
        let front = self.chunks.front_mut().expect("n bytes are buffered");
        if front.len() >= n {
            let out = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let front = self.chunks.front_mut().expect("n bytes are buffered");
            let want = (n - out.len()).min(front.len());
            out.extend_from_slice(&front[..want]);
            front.advance(want);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn framed(flag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn messages_come_out_whole_however_the_chunks_fall() {
        let bodies: Vec<Vec<u8>> =
            vec![b"one".to_vec(), Vec::new(), vec![7; 10_000], b"x".to_vec()];
        let stream: Vec<u8> = bodies.iter().flat_map(|b| framed(0, b)).collect();
        for chunk in [1, 2, 5, 6, 4096, stream.len()] {
            let mut asm = Assembler::new(1 << 20);
            let mut got = Vec::new();
            for part in stream.chunks(chunk) {
                asm.push(Bytes::copy_from_slice(part));
                while let Some(m) = asm.next_message().unwrap() {
                    got.push(m.to_vec());
                }
            }
            assert_eq!(got, bodies, "chunks of {chunk}");
            assert_eq!(asm.pending(), 0);
        }
    }

    #[test]
    fn a_message_within_one_chunk_is_not_copied() {
        let chunk = Bytes::from(framed(0, &[9; 100]));
        let start = chunk.as_ptr();
        let mut asm = Assembler::new(1000);
        asm.push(chunk);
        let m = asm.next_message().unwrap().unwrap();
        assert_eq!(m.as_ptr(), start.wrapping_add(PREFIX_LEN));
    }

    #[test]
    fn oversized_compressed_and_bad_flags_are_refused_with_a_reason() {
        let mut asm = Assembler::new(10);
        asm.push(Bytes::from(framed(0, &[0; 11])));
        let e = asm.next_message().unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert!(e.message().contains("11 bytes") && e.message().contains("limit of 10"));

        let mut asm = Assembler::new(10);
        asm.push(Bytes::from(framed(1, &[0; 3])));
        assert_eq!(asm.next_message().unwrap_err().code(), Code::Unimplemented);

        let mut asm = Assembler::new(10);
        asm.push(Bytes::from(framed(9, &[0; 3])));
        let e = asm.next_message().unwrap_err();
        assert_eq!(e.code(), Code::Internal);
        assert!(e.message().contains("flag 9"));
    }

    #[test]
    fn an_incomplete_message_waits_and_counts_as_pending() {
        let mut asm = Assembler::new(100);
        let whole = framed(0, &[1; 50]);
        asm.push(Bytes::copy_from_slice(&whole[..30]));
        assert_eq!(asm.next_message().unwrap(), None);
        assert_eq!(asm.pending(), 25);
        asm.push(Bytes::copy_from_slice(&whole[30..]));
        assert_eq!(asm.next_message().unwrap().unwrap().len(), 50);
    }
}
