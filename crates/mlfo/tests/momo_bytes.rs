//! Mo-Mo `Deploy` messages from any bytes, or from a valid message with a
//! byte changed: decoding fails, or the intent document they carry is read
//! and checked like any other (a parse error naming the field), never a
//! panic.

use mlfo::momo::{proto, to_document, to_message};
use proptest::prelude::*;
use prost::Message;

/// The seed's welding intent as the edge MLFO sends it.
fn welding() -> Vec<u8> {
    let text = "intentID: edgeintent01\ntargets:\n  - id: factory.all\n    operation: maximise\n    \
                operand: robots.welding.accuracy\n    constraints: { privacylevel: high, numround: 5 }\n";
    let intent = intent::parse("welding.yaml", text.as_bytes()).unwrap();
    to_message(&intent).encode_to_vec()
}

fn read(bytes: &[u8]) {
    if let Ok(message) = proto::Intent::decode(bytes)
        && let Ok(document) = to_document(&message)
    {
        let _ = intent::parse("momo", &document);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        read(&bytes);
    }

    #[test]
    fn a_changed_byte_never_panics(pos in 0usize..1000, byte in any::<u8>()) {
        let mut bytes = welding();
        let at = pos % bytes.len();
        bytes[at] = byte;
        read(&bytes);
    }
}

#[test]
fn the_unchanged_message_reads_back() {
    let message = proto::Intent::decode(welding().as_slice()).unwrap();
    let document = to_document(&message).unwrap();
    let back = intent::parse("momo", &document).unwrap();
    assert_eq!(back.intent_id, "edgeintent01");
}
