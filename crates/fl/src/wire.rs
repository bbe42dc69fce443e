//! Conversions between the generated protocol types and the crate's own
//! ([`Tensor`], [`Config`]), in one place for server and client.

use crate::config::{Config, Scalar};
use crate::npy::{self, NpyError, NpyView};
use crate::proto;
use crate::tensor::Tensor;
use bytes::Bytes;
use std::collections::HashMap;

/// Converts a protocol `Scalar`; `None` when its oneof is unset.
pub fn scalar_from_proto(s: &proto::Scalar) -> Option<Scalar> {
    use proto::scalar::Scalar as S;
    Some(match s.scalar.as_ref()? {
        S::Double(v) => Scalar::Double(*v),
        S::Uint64(v) => Scalar::Uint64(*v),
        S::Sint64(v) => Scalar::Sint64(*v),
        S::Bool(v) => Scalar::Bool(*v),
        S::String(v) => Scalar::String(v.clone()),
        S::Bytes(v) => Scalar::Bytes(v.clone()),
    })
}

/// Converts a crate `Scalar` to the protocol's.
pub fn scalar_to_proto(s: &Scalar) -> proto::Scalar {
    use proto::scalar::Scalar as S;
    let inner = match s {
        Scalar::Double(v) => S::Double(*v),
        Scalar::Uint64(v) => S::Uint64(*v),
        Scalar::Sint64(v) => S::Sint64(*v),
        Scalar::Bool(v) => S::Bool(*v),
        Scalar::String(v) => S::String(v.clone()),
        Scalar::Bytes(v) => S::Bytes(v.clone()),
    };
    proto::Scalar {
        scalar: Some(inner),
    }
}

/// Converts a protocol config/metrics map, dropping entries with no value.
pub fn config_from_proto(map: &HashMap<String, proto::Scalar>) -> Config {
    map.iter()
        .filter_map(|(k, v)| Some((k.clone(), scalar_from_proto(v)?)))
        .collect()
}

/// Converts a config/metrics map to the protocol's.
pub fn config_to_proto(config: &Config) -> HashMap<String, proto::Scalar> {
    config
        .iter()
        .map(|(k, v)| (k.clone(), scalar_to_proto(v)))
        .collect()
}

/// Why a `Parameters` message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParametersError {
    /// The message had no `Parameters` at all.
    #[error("message carries no parameters")]
    Missing,
    /// `tensor_type` is not `numpy.ndarray`.
    #[error("tensor_type {0:?} is not supported (expected \"numpy.ndarray\")")]
    TensorType(String),
    /// One tensor is not valid `.npy`.
    #[error("tensor {index}: {source}")]
    Tensor {
        /// Position of the bad tensor.
        index: usize,
        /// What is wrong with it.
        source: NpyError,
    },
}

/// Encodes tensors as `Parameters` (`numpy.ndarray`).
pub fn parameters_to_proto(tensors: &[Tensor]) -> proto::Parameters {
    proto::Parameters {
        tensors: tensors.iter().map(|t| npy::encode(t).into()).collect(),
        tensor_type: npy::TENSOR_TYPE.to_owned(),
    }
}

/// Decodes `Parameters` into tensors.
pub fn parameters_from_proto(
    p: Option<&proto::Parameters>,
) -> Result<Vec<Tensor>, ParametersError> {
    Ok(parameter_views(p)?.iter().map(NpyView::to_tensor).collect())
}

/// Validates `Parameters` and returns its tensors still encoded, sharing
/// the message's bytes.
pub fn parameter_views(
    p: Option<&proto::Parameters>,
) -> Result<Vec<NpyView<Bytes>>, ParametersError> {
    let p = p.ok_or(ParametersError::Missing)?;
    if p.tensor_type != npy::TENSOR_TYPE && !(p.tensor_type.is_empty() && p.tensors.is_empty()) {
        return Err(ParametersError::TensorType(p.tensor_type.clone()));
    }
    p.tensors
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            NpyView::parse(bytes.clone())
                .map_err(|source| ParametersError::Tensor { index, source })
        })
        .collect()
}

/// A `Status` with code OK, as the Python client sends it.
pub fn status_ok() -> proto::Status {
    proto::Status {
        code: proto::Code::Ok as i32,
        message: "Success".to_owned(),
    }
}
