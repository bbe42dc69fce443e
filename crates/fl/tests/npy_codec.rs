//! The .npy codec against bytes numpy 2.4 wrote, and against malformed input.

use fl::Tensor;
use fl::npy::{self, NpyError};
use proptest::prelude::*;

/// `numpy.save(buf, np.arange(6, dtype=np.float32).reshape(2, 3))`, header part.
const NUMPY_2X3_HEADER: &str = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

fn numpy_bytes(header: &str, descr_len_pad: usize, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&118u16.to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + descr_len_pad, b' ');
    v.push(b'\n');
    v.extend_from_slice(data);
    v
}

#[test]
fn encodes_exactly_what_numpy_save_writes() {
    let t = Tensor::new(vec![2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
    let data: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    // numpy pads the 60-byte dict to a 128-byte preamble (118-byte header).
    let expected = numpy_bytes(NUMPY_2X3_HEADER, 118 - 1 - NUMPY_2X3_HEADER.len(), &data);
    assert_eq!(npy::encode(&t), expected);
    assert_eq!(expected.len(), 152, "numpy wrote 152 bytes for this array");
}

#[test]
fn header_shapes_match_numpy_repr() {
    for (shape, repr, total) in [
        (vec![5], "(5,)", 148),
        (vec![], "()", 132),
        (vec![0], "(0,)", 128),
        (vec![3, 1, 2, 2], "(3, 1, 2, 2)", 176),
    ] {
        let t = Tensor::zeros(shape.clone());
        let bytes = npy::encode(&t);
        assert_eq!(bytes.len(), total, "shape {shape:?}");
        let header = std::str::from_utf8(&bytes[10..128]).unwrap();
        assert!(header.contains(&format!("'shape': {repr}, }}")), "{header}");
        assert_eq!(bytes[127], b'\n');
        assert_eq!(npy::decode(&bytes).unwrap(), t);
    }
}

fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    let hlen = header.len() + 1;
    let pad = (64 - (10 + hlen) % 64) % 64;
    v.extend_from_slice(&((hlen + pad) as u16).to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + pad, b' ');
    v.push(b'\n');
    v.extend_from_slice(data);
    v
}

#[test]
fn decodes_float64_as_f32() {
    let data: Vec<u8> = [1.5f64, -2.25, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bytes = with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        &data,
    );
    let t = npy::decode(&bytes).unwrap();
    assert_eq!(t.shape, vec![3]);
    assert_eq!(t.data, vec![1.5, -2.25, 3.0]);
}

#[test]
fn decodes_fortran_order_into_c_order() {
    // The 2x3 matrix [[0,1,2],[3,4,5]] stored column by column.
    let data: Vec<u8> = [0f32, 3., 1., 4., 2., 5.]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bytes = with_header(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
        &data,
    );
    let t = npy::decode(&bytes).unwrap();
    assert_eq!(t.data, vec![0., 1., 2., 3., 4., 5.]);
}

#[test]
fn decodes_version_2_headers() {
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
    let mut v = b"\x93NUMPY\x02\x00".to_vec();
    v.extend_from_slice(&(header.len() as u32).to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(&7.0f32.to_le_bytes());
    assert_eq!(npy::decode(&v).unwrap().data, vec![7.0]);
}

#[test]
fn rejects_malformed_tensors_with_clear_errors() {
    let good = npy::encode(&Tensor::zeros(vec![2, 2]));
    assert_eq!(
        npy::decode(b"PK\x03\x04 zip file").unwrap_err(),
        NpyError::BadMagic
    );
    assert!(matches!(
        npy::decode(b"\x93NUM").unwrap_err(),
        NpyError::Truncated(_)
    ));
    let mut v = good.clone();
    v[6] = 9;
    assert_eq!(npy::decode(&v).unwrap_err(), NpyError::Version(9, 0));
    assert_eq!(
        npy::decode(&good[..good.len() - 1])
            .unwrap_err()
            .to_string(),
        ".npy data has 15 bytes, shape [2, 2] with 4-byte items needs 16"
    );
    assert!(matches!(
        npy::decode(&good[..50]).unwrap_err(),
        NpyError::Truncated(_)
    ));
    let int = with_header(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
        &[0; 8],
    );
    assert_eq!(
        npy::decode(&int).unwrap_err().to_string(),
        "unsupported .npy dtype \"<i8\": only float32 ('<f4') and float64 ('<f8') are accepted"
    );
    let huge = with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 18446744073709551615), }",
        &[],
    );
    assert!(matches!(
        npy::decode(&huge).unwrap_err(),
        NpyError::ShapeOverflow(_)
    ));
    let missing = with_header("{'descr': '<f4', 'shape': (1,), }", &[0; 4]);
    assert_eq!(
        npy::decode(&missing).unwrap_err().to_string(),
        "bad .npy header: missing key 'fortran_order'"
    );
    let pickled = with_header(
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
        &[0; 8],
    );
    assert!(matches!(
        npy::decode(&pickled).unwrap_err(),
        NpyError::Dtype(_)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn round_trips_any_shape(shape in prop::collection::vec(0usize..5, 0..4), seed in any::<u32>()) {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|i| (i as f32) * 0.5 - seed as f32).collect();
        let t = Tensor::new(shape, data).unwrap();
        prop_assert_eq!(npy::decode(&npy::encode(&t)).unwrap(), t);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = npy::decode(&bytes);
    }

    #[test]
    fn mutated_tensors_never_panic(pos in 0usize..200, byte in any::<u8>(), cut in 0usize..200) {
        let mut v = npy::encode(&Tensor::zeros(vec![3, 4]));
        let p = pos % v.len();
        v[p] = byte;
        v.truncate(v.len().saturating_sub(cut % 8 * (cut % 3)));
        let _ = npy::decode(&v);
    }
}

#[test]
fn views_fold_into_running_sums_as_their_decoded_tensors_do() {
    use fl::npy::NpyView;
    use fl::strategy::aggregate::MeanAccumulator;
    // [[0,1,2],[3,4,5]] column by column, [[6..11]] as big-endian float64,
    // and [[-6..-1]] as numpy writes float32.
    let fortran: Vec<u8> = [0f32, 3., 1., 4., 2., 5.]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let fortran = with_header(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
        &fortran,
    );
    let big: Vec<u8> = (6..12).flat_map(|v| f64::from(v).to_be_bytes()).collect();
    let big = with_header(
        "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3), }",
        &big,
    );
    let plain = npy::encode(&Tensor::new(vec![2, 3], (-6..0).map(|v| v as f32).collect()).unwrap());
    let shapes = [vec![2, 3]];
    let (mut from_views, mut from_tensors) =
        (MeanAccumulator::new(&shapes), MeanAccumulator::new(&shapes));
    for (weight, bytes) in [(1, &fortran), (2, &big), (3, &plain)] {
        let view = NpyView::parse(bytes.as_slice()).unwrap();
        assert_eq!(view.shape(), [2, 3]);
        from_views.add(&[view], weight);
        from_tensors.add(&[npy::decode(bytes).unwrap()], weight);
    }
    let mean = from_views.mean();
    assert_eq!(mean, from_tensors.mean());
    // (1 * i + 2 * (i + 6) + 3 * (i - 6)) / 6 = i - 1
    let expected: Vec<f32> = (0..6).map(|i| i as f32 - 1.0).collect();
    assert_eq!(mean[0].data, expected);
}

#[test]
fn unusable_weights_are_found_where_they_stand() {
    let f64s = |values: &[f64]| {
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
            &data,
        )
    };
    let view = |bytes: Vec<u8>| npy::NpyView::parse(bytes).unwrap().first_unusable();
    assert_eq!(view(f64s(&[1.0, -2.0, 3.0])), None);
    assert_eq!(view(f64s(&[1.0, f64::NAN, 3.0])), Some(1));
    assert_eq!(view(f64s(&[1.0, 2.0, f64::NEG_INFINITY])), Some(2));
    assert_eq!(
        view(f64s(&[1e300, 2.0, 3.0])),
        Some(0),
        "beyond f32's range"
    );
    let f32s = npy::encode(&Tensor::new(vec![2], vec![0.5, f32::INFINITY]).unwrap());
    assert_eq!(view(f32s), Some(1));
    let fine = npy::encode(&Tensor::new(vec![2], vec![f32::MAX, f32::MIN]).unwrap());
    assert_eq!(view(fine), None, "the extremes of f32 are still weights");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any bytes a peer sends as a Flower `ClientMessage`: decoding fails or
    /// gives a message whose parameters are checked tensor by tensor, never
    /// a panic.
    #[test]
    fn flower_client_messages_from_any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        use prost::Message;
        if let Ok(msg) = fl::proto::ClientMessage::decode(bytes.as_slice())
            && let Some(fl::proto::client_message::Msg::FitRes(res)) = msg.msg
            && let Ok(views) = fl::wire::parameter_views(res.parameters.as_ref())
        {
            for v in views {
                let _ = v.first_unusable();
                let _ = v.to_tensor();
            }
        }
    }

    /// A valid FitRes with bytes flipped anywhere.
    #[test]
    fn mutated_fit_results_never_panic(pos in 0usize..400, byte in any::<u8>()) {
        use prost::Message;
        let tensor = Tensor::new(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let res = fl::proto::client_message::FitRes {
            parameters: Some(fl::wire::parameters_to_proto(&[tensor])),
            num_examples: 7,
            ..Default::default()
        };
        let msg = fl::proto::ClientMessage {
            msg: Some(fl::proto::client_message::Msg::FitRes(res)),
        };
        let mut bytes = msg.encode_to_vec();
        let at = pos % bytes.len();
        bytes[at] = byte;
        if let Ok(m) = fl::proto::ClientMessage::decode(bytes.as_slice())
            && let Some(fl::proto::client_message::Msg::FitRes(res)) = m.msg
            && let Ok(views) = fl::wire::parameter_views(res.parameters.as_ref())
        {
            for v in views {
                let _ = v.first_unusable();
                let _ = v.to_tensor();
            }
        }
    }
}
