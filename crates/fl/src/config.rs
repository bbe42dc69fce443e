//! Flower-style configuration and metric values (`map<string, Scalar>`).

use std::collections::BTreeMap;

/// One configuration or metric value, as Flower's `Scalar` oneof holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A float (Python `float`).
    Double(f64),
    /// An unsigned integer above `i64::MAX` (Python `int` that big).
    Uint64(u64),
    /// A signed integer (Python `int`).
    Sint64(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

/// Configuration sent with `FitIns`/`EvaluateIns`, or metrics sent back.
pub type Config = BTreeMap<String, Scalar>;

impl Scalar {
    /// The value as a float when it is numeric (integers are converted).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Double(v) => Some(*v),
            Scalar::Sint64(v) => Some(*v as f64),
            Scalar::Uint64(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The value as an integer when it is an integer, or a float with no fraction.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Scalar::Sint64(v) => Some(*v),
            Scalar::Uint64(v) => i64::try_from(*v).ok(),
            Scalar::Double(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(*v as i64),
            _ => None,
        }
    }
}

impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Double(v)
    }
}

impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Sint64(v)
    }
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

impl From<&str> for Scalar {
    fn from(v: &str) -> Self {
        Scalar::String(v.to_owned())
    }
}

/// Reads a numeric config key, falling back to `default` when absent.
/// Returns an error message naming the key when present with a non-numeric value.
pub fn get_f64(config: &Config, key: &str, default: f64) -> Result<f64, String> {
    match config.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("config key `{key}` must be a number, got {v:?}")),
    }
}

/// Reads an integer config key, falling back to `default` when absent.
pub fn get_i64(config: &Config, key: &str, default: i64) -> Result<i64, String> {
    match config.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("config key `{key}` must be an integer, got {v:?}")),
    }
}
