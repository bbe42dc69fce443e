//! A client's data part on the wire, as a client of a centralised plan sends
//! it to the central trainer: its training and held-out examples with their
//! labels, so that the trainer pools exactly what the client would have
//! trained and evaluated on in federated learning.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `DMOPART` then format version `1` |
//! | 4 | header length `h` (at most [`MAX_HEADER_BYTES`]) |
//! | h | header, JSON: `sender`, `shape` `[C, H, W]`, `classes`, `train`, `test`, `values` (`u8` or `f32`) |
//! | | training features, one row of `C*H*W` values per example (bytes, or f32) |
//! | | training labels, one byte per example |
//! | | held-out features, then held-out labels, the same way |

use serde::{Deserialize, Serialize};

use crate::datasets::{Dataset, Features, InputShape};
use crate::partition::ClientData;

/// First bytes of every part: the name and the format version.
pub const MAGIC: &[u8; 8] = b"DMOPART\x01";
/// Largest header accepted.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest sender name accepted.
pub const MAX_SENDER_CHARS: usize = 200;

/// A part that cannot be read; the message says which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data part: {0}")]
pub struct PartError(String);

/// A decoded part: who sent it and its examples.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPart {
    /// The sender's name, unique among a trainer's parts (`cohort/index`).
    pub sender: String,
    /// The examples.
    pub data: ClientData,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    sender: String,
    shape: [usize; 3],
    classes: usize,
    train: usize,
    test: usize,
    values: Values,
}

#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Values {
    U8,
    F32,
}

fn values_of(d: &Dataset) -> Values {
    match d.features() {
        Features::Bytes(_) => Values::U8,
        Features::Floats(_) => Values::F32,
    }
}

/// Encodes `data` as sent by `sender`.
pub fn encode(sender: &str, data: &ClientData) -> Vec<u8> {
    let shape = data.train.shape();
    let header = Header {
        sender: sender.to_owned(),
        shape: [shape.channels, shape.height, shape.width],
        classes: data.train.num_classes(),
        train: data.train.len(),
        test: data.test.len(),
        values: values_of(&data.train),
    };
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + encoded_len(data));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for set in [&data.train, &data.test] {
        match set.features() {
            Features::Bytes(v) => out.extend_from_slice(v),
            Features::Floats(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        out.extend_from_slice(set.labels());
    }
    out
}

fn encoded_len(data: &ClientData) -> usize {
    [&data.train, &data.test]
        .iter()
        .map(|d| match d.features() {
            Features::Bytes(v) => v.len() + d.len(),
            Features::Floats(v) => 4 * v.len() + d.len(),
        })
        .sum()
}

/// Decodes a part, checking every size against the header and the header
/// against the limits; never panics on any input.
// Over 80 lines: the checks of an untrusted part follow its layout, each with its own message.
pub fn decode(bytes: &[u8]) -> Result<DataPart, PartError> {
    let bad = |s: String| PartError(s);
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        bad("does not start with DMOPART version 1 (is it a dist-ml-orch data part?)".into())
    })?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("ends before the header length".into()))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_HEADER_BYTES {
        return Err(bad(format!(
            "header of {len} bytes, the limit is {MAX_HEADER_BYTES}"
        )));
    }
    if rest.len() < len {
        return Err(bad(format!(
            "header of {len} bytes, only {} follow",
            rest.len()
        )));
    }
    let (header, body) = rest.split_at(len);
    let h: Header = serde_json::from_slice(header).map_err(|e| bad(format!("header: {e}")))?;
    if h.sender.is_empty() || h.sender.chars().count() > MAX_SENDER_CHARS {
        return Err(bad(format!(
            "header.sender: must be 1 to {MAX_SENDER_CHARS} characters"
        )));
    }
    if !(1..=256).contains(&h.classes) {
        return Err(bad(format!(
            "header.classes: must be in 1..=256, got {}",
            h.classes
        )));
    }
    let shape = InputShape::image(h.shape[0], h.shape[1], h.shape[2]);
    let row = h.shape[0]
        .checked_mul(h.shape[1])
        .and_then(|n| n.checked_mul(h.shape[2]))
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("header.shape: must be three sizes >= 1".into()))?;
    let width = match h.values {
        Values::U8 => 1,
        Values::F32 => 4,
    };
    let size = |n: usize| {
        n.checked_mul(row)
            .and_then(|v| v.checked_mul(width))
            .and_then(|v| v.checked_add(n))
    };
    let need = size(h.train)
        .zip(size(h.test))
        .and_then(|(a, b)| a.checked_add(b))
        .ok_or_else(|| bad("header: example counts too large".into()))?;
    if body.len() != need {
        return Err(bad(format!(
            "{} train and {} held-out examples of {shape} need {need} bytes after the header, got {}",
            h.train,
            h.test,
            body.len()
        )));
    }
    let (train, body) = body.split_at(h.train * (row * width + 1));
    let set = |bytes: &[u8], n: usize, what: &str| {
        let (values, labels) = bytes.split_at(n * row * width);
        let features = match h.values {
            Values::U8 => Features::Bytes(values.to_vec()),
            Values::F32 => Features::Floats(
                values
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
        };
        Dataset::new(features, labels.to_vec(), shape, h.classes)
            .map_err(|e| bad(format!("{what}: {e}")))
    };
    let data = ClientData {
        train: set(train, h.train, "train")?,
        test: set(body, h.test, "held-out")?,
    };
    for (what, set) in [("train", &data.train), ("held-out", &data.test)] {
        if let Features::Floats(v) = set.features()
            && v.iter().any(|x| !x.is_finite())
        {
            return Err(bad(format!("{what}: a feature value is NaN or infinite")));
        }
    }
    Ok(DataPart {
        sender: h.sender,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(values: Values) -> ClientData {
        let shape = InputShape::image(1, 2, 2);
        let set = |n: usize| {
            let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
            let features = match values {
                Values::U8 => Features::Bytes((0..n * 4).map(|i| i as u8).collect()),
                Values::F32 => Features::Floats((0..n * 4).map(|i| i as f32 * 0.5).collect()),
            };
            Dataset::new(features, labels, shape, 3).unwrap()
        };
        ClientData {
            train: set(5),
            test: set(2),
        }
    }

    #[test]
    fn parts_of_bytes_and_floats_come_back_as_sent() {
        for values in [Values::U8, Values::F32] {
            let data = part(values);
            let bytes = encode("cohort1/3", &data);
            let back = decode(&bytes).unwrap();
            assert_eq!(back.sender, "cohort1/3");
            assert_eq!(back.data, data);
        }
    }

    #[test]
    fn every_truncation_and_a_byte_too_many_are_refused() {
        let bytes = encode("c/0", &part(Values::F32));
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "{n} bytes decoded");
        }
        let mut long = bytes.clone();
        long.push(0);
        let e = decode(&long).unwrap_err().to_string();
        assert!(e.contains("need") && e.contains("got"), "{e}");
    }

    #[test]
    fn bad_headers_name_the_field() {
        let with_header = |json: &str, body: usize| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&(json.len() as u32).to_le_bytes());
            b.extend_from_slice(json.as_bytes());
            b.extend(std::iter::repeat_n(0u8, body));
            decode(&b).unwrap_err().to_string()
        };
        let e = with_header(
            r#"{"sender":"a","shape":[1,1,1],"classes":0,"train":1,"test":0,"values":"u8"}"#,
            2,
        );
        assert!(e.contains("header.classes"), "{e}");
        let e = with_header(
            r#"{"sender":"a","shape":[0,1,1],"classes":2,"train":1,"test":0,"values":"u8"}"#,
            2,
        );
        assert!(e.contains("header.shape"), "{e}");
        let e = with_header(
            r#"{"sender":"a","shape":[4294967296,4294967296,4294967296],"classes":2,"train":18446744073709551615,"test":1,"values":"f32"}"#,
            0,
        );
        assert!(e.contains("too large") || e.contains("header.shape"), "{e}");
        let e = with_header(
            r#"{"sender":"a","shape":[1,1,1],"classes":2,"train":1,"test":0,"values":"u8"}"#,
            0,
        );
        assert!(e.contains("need 2 bytes"), "{e}");
        let e = with_header(
            r#"{"sender":"a","shape":[1,1,1],"classes":2,"train":1,"test":0,"values":"u16"}"#,
            0,
        );
        assert!(e.contains("header:"), "{e}");
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&b).unwrap_err().to_string().contains("limit"));
        assert!(
            decode(b"GIF89a..")
                .unwrap_err()
                .to_string()
                .contains("DMOPART")
        );
    }

    #[test]
    fn labels_out_of_range_and_nan_features_are_refused() {
        let mut bytes = encode("c/0", &part(Values::U8));
        let label_at = bytes.len() - 2 * 4 - 2 - 5;
        bytes[label_at] = 9;
        let e = decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("train") && e.contains("label 9"), "{e}");
        let data = part(Values::F32);
        let mut bytes = encode("c/0", &data);
        let header_end = bytes.len() - encoded_len(&data);
        bytes[header_end..header_end + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        let e = decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("NaN"), "{e}");
    }
}
