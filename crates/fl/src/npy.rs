//! The `.npy` codec used for `Parameters.tensors` (`tensor_type =
//! "numpy.ndarray"`): encodes exactly what `numpy.save` writes for f32 arrays
//! and decodes f32/f64 arrays in C or Fortran order, any shape, rejecting
//! malformed input with a [`NpyError`].

use crate::tensor::Tensor;

/// The `tensor_type` string Flower uses for `.npy`-encoded tensors.
pub const TENSOR_TYPE: &str = "numpy.ndarray";

const MAGIC: &[u8; 6] = b"\x93NUMPY";
const ALIGN: usize = 64;
/// numpy reserves room in the header so the growth axis can reach 21 digits.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
/// Largest header accepted when decoding (numpy itself refuses above 10,000).
pub const MAX_HEADER_LEN: usize = 10_000;
/// Largest number of dimensions accepted (numpy's own limit).
pub const MAX_DIMS: usize = 64;

/// Why a byte string is not a valid `.npy` tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    /// The data does not start with `\x93NUMPY`.
    #[error("not a .npy tensor: bad magic (expected \\x93NUMPY)")]
    BadMagic,
    /// The input ends before the header or data is complete.
    #[error(".npy tensor truncated: {0}")]
    Truncated(String),
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {0}.{1} (expected 1.0, 2.0 or 3.0)")]
    Version(u8, u8),
    /// The header dictionary is malformed.
    #[error("bad .npy header: {0}")]
    Header(String),
    /// The dtype is not a float32 or float64.
    #[error("unsupported .npy dtype {0:?}: only float32 ('<f4') and float64 ('<f8') are accepted")]
    Dtype(String),
    /// The shape's element count does not fit in memory arithmetic.
    #[error(".npy shape {0:?} overflows the addressable size")]
    ShapeOverflow(Vec<u64>),
    /// Data length differs from what the shape and dtype require.
    #[error(
        ".npy data has {got} bytes, shape {shape:?} with {itemsize}-byte items needs {expected}"
    )]
    DataLength {
        /// Shape from the header.
        shape: Vec<usize>,
        /// Bytes per element.
        itemsize: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
}

/// Encodes a tensor as `numpy.save(buf, arr.astype(float32))` would, byte for byte.
pub fn encode(tensor: &Tensor) -> Vec<u8> {
    let header = header_text(&tensor.shape);
    let hlen = header.len() + 1;
    let pad = ALIGN - ((MAGIC.len() + 2 + 2 + hlen) % ALIGN);
    let header_len = hlen + pad;
    let mut out = Vec::with_capacity(10 + header_len + tensor.data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // The padded header is at most a few hundred bytes for MAX_DIMS dims.
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + pad, b' ');
    out.push(b'\n');
    for v in &tensor.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn header_text(shape: &[usize]) -> String {
    let shape_repr = match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_repr}, }}");
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        header.extend(std::iter::repeat_n(
            ' ',
            GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
        ));
    }
    header
}

/// Decodes a `.npy` tensor of float32 or float64 (converted to f32), in C or
/// Fortran order, returning it in C order.
pub fn decode(bytes: &[u8]) -> Result<Tensor, NpyError> {
    NpyView::parse(bytes).map(|view| view.to_tensor())
}

/// A validated `.npy` tensor still in its encoded bytes: it can be decoded,
/// or added to running sums without an intermediate copy.
#[derive(Debug, Clone)]
pub struct NpyView<B> {
    bytes: B,
    data_start: usize,
    dtype: header::Dtype,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl<B: AsRef<[u8]>> NpyView<B> {
    /// Checks magic, version, header, dtype, shape and data length.
    pub fn parse(bytes: B) -> Result<Self, NpyError> {
        let (data_start, fields) = parse_header(bytes.as_ref())?;
        let data_len = bytes.as_ref().len() - data_start;
        let count = fields
            .shape
            .iter()
            .try_fold(1usize, |acc, d| {
                usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
            })
            .ok_or_else(|| NpyError::ShapeOverflow(fields.shape.clone()))?;
        let shape: Vec<usize> = fields.shape.iter().map(|d| *d as usize).collect();
        let expected = count
            .checked_mul(fields.dtype.itemsize())
            .ok_or_else(|| NpyError::ShapeOverflow(fields.shape.clone()))?;
        if data_len != expected {
            return Err(NpyError::DataLength {
                shape,
                itemsize: fields.dtype.itemsize(),
                expected,
                got: data_len,
            });
        }
        Ok(Self {
            bytes,
            data_start,
            dtype: fields.dtype,
            fortran_order: fields.fortran_order,
            shape,
        })
    }

    /// Dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn data(&self) -> &[u8] {
        &self.bytes.as_ref()[self.data_start..]
    }

    /// Whether the elements are stored in C order already.
    fn c_ordered(&self) -> bool {
        !self.fortran_order || self.shape.len() <= 1
    }

    /// The tensor in C order, as f32.
    pub fn to_tensor(&self) -> Tensor {
        let mut values = vec![0.0f32; self.len()];
        self.dtype
            .apply(self.data(), &mut values, |slot, v| *slot = v as f32);
        let data = if self.c_ordered() {
            values
        } else {
            fortran_to_c(&values, &self.shape)
        };
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// The index (in storage order) of the first element that is NaN,
    /// infinite, or beyond the range of f32 (it would become infinite in
    /// the model); `None` when every element is a usable weight.
    pub fn first_unusable(&self) -> Option<usize> {
        let mut slots = vec![(); self.len()];
        let (mut index, mut found) = (0usize, None);
        self.dtype.apply(self.data(), &mut slots, |_, v| {
            let usable = v.is_finite() && v.abs() <= f64::from(f32::MAX);
            if found.is_none() && !usable {
                found = Some(index);
            }
            index += 1;
        });
        found
    }

    /// Adds `weight` times each element (in C order) to `sums`, which must
    /// hold [`len`](Self::len) values.
    pub fn add_scaled_to(&self, sums: &mut [f64], weight: f64) {
        if self.c_ordered() {
            self.dtype
                .apply(self.data(), sums, |sum, v| *sum += weight * v);
        } else {
            for (s, v) in sums.iter_mut().zip(self.to_tensor().data) {
                *s += weight * f64::from(v);
            }
        }
    }
}

/// Reads magic, version and header: the offset of the data and the fields.
fn parse_header(bytes: &[u8]) -> Result<(usize, header::Fields), NpyError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            NpyError::Truncated(format!("{} bytes, no complete magic", bytes.len()))
        } else {
            NpyError::BadMagic
        });
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err(NpyError::Truncated("no version bytes".into())),
    };
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(NpyError::Version(major, minor)),
    };
    let len_bytes = bytes
        .get(8..8 + len_size)
        .ok_or_else(|| NpyError::Truncated("no header length".into()))?;
    let header_len = len_bytes
        .iter()
        .rev()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::Header(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
        )));
    }
    let start = 8 + len_size;
    let header_bytes = bytes.get(start..start + header_len).ok_or_else(|| {
        NpyError::Truncated(format!(
            "header says {header_len} bytes, only {} present",
            bytes.len() - start
        ))
    })?;
    let header = if utf8 {
        std::str::from_utf8(header_bytes)
            .map_err(|_| NpyError::Header("header is not UTF-8".into()))?
    } else if header_bytes.is_ascii() {
        // ASCII is valid UTF-8.
        std::str::from_utf8(header_bytes)
            .map_err(|_| NpyError::Header("header is not ASCII".into()))?
    } else {
        return Err(NpyError::Header("header is not ASCII".into()));
    };
    Ok((start + header_len, header::parse(header)?))
}

/// Reorders Fortran-ordered (column-major) elements into C order.
fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let n = values.len();
    let mut out = vec![0.0f32; n];
    // Strides of the Fortran layout: the first axis varies fastest.
    let mut f_strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        f_strides[k] = f_strides[k - 1] * shape[k - 1];
    }
    let mut index = vec![0usize; shape.len()];
    for slot in out.iter_mut() {
        let src: usize = index.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
        *slot = values[src];
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

mod header {
    //! A parser for the Python dict literal in a `.npy` header.

    use super::{MAX_DIMS, NpyError};

    /// Element types this codec reads.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Dtype {
        F32 { big_endian: bool },
        F64 { big_endian: bool },
    }

    impl Dtype {
        pub(super) fn itemsize(self) -> usize {
            match self {
                Dtype::F32 { .. } => 4,
                Dtype::F64 { .. } => 8,
            }
        }

        /// Applies `op(slot, value)` to each element of `data` and the
        /// matching slot of `out`, in order.
        pub(super) fn apply<T>(self, data: &[u8], out: &mut [T], mut op: impl FnMut(&mut T, f64)) {
            match self {
                Dtype::F32 { big_endian: false } => {
                    for (o, c) in out.iter_mut().zip(data.chunks_exact(4)) {
                        op(o, f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                    }
                }
                Dtype::F32 { big_endian: true } => {
                    for (o, c) in out.iter_mut().zip(data.chunks_exact(4)) {
                        op(o, f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]])));
                    }
                }
                Dtype::F64 { big_endian } => {
                    for (o, c) in out.iter_mut().zip(data.chunks_exact(8)) {
                        let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                        op(
                            o,
                            if big_endian {
                                f64::from_be_bytes(b)
                            } else {
                                f64::from_le_bytes(b)
                            },
                        );
                    }
                }
            }
        }
    }

    /// The three fields every `.npy` header carries.
    pub(super) struct Fields {
        pub(super) dtype: Dtype,
        pub(super) fortran_order: bool,
        pub(super) shape: Vec<u64>,
    }

    enum Value {
        Str(String),
        Bool(bool),
        Tuple(Vec<u64>),
    }

    struct Cursor<'a> {
        s: &'a [u8],
        pos: usize,
    }

    fn err(msg: impl Into<String>) -> NpyError {
        NpyError::Header(msg.into())
    }

    impl Cursor<'_> {
        fn skip_ws(&mut self) {
            while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
        }

        fn peek(&mut self) -> Option<u8> {
            self.skip_ws();
            self.s.get(self.pos).copied()
        }

        fn expect(&mut self, c: u8) -> Result<(), NpyError> {
            match self.peek() {
                Some(got) if got == c => {
                    self.pos += 1;
                    Ok(())
                }
                Some(got) => Err(err(format!(
                    "expected '{}' at offset {}, found '{}'",
                    c as char, self.pos, got as char
                ))),
                None => Err(err(format!("expected '{}', header ended", c as char))),
            }
        }

        fn string(&mut self) -> Result<String, NpyError> {
            let quote = self
                .peek()
                .ok_or_else(|| err("expected a string, header ended"))?;
            if quote != b'\'' && quote != b'"' {
                return Err(err(format!(
                    "expected a quoted string at offset {}",
                    self.pos
                )));
            }
            self.pos += 1;
            let start = self.pos;
            while self.pos < self.s.len() && self.s[self.pos] != quote {
                self.pos += 1;
            }
            if self.pos >= self.s.len() {
                return Err(err("unterminated string"));
            }
            let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
            self.pos += 1;
            Ok(text)
        }

        fn word(&mut self) -> &[u8] {
            self.skip_ws();
            let start = self.pos;
            while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                self.pos += 1;
            }
            &self.s[start..self.pos]
        }

        fn tuple(&mut self) -> Result<Vec<u64>, NpyError> {
            self.expect(b'(')?;
            let mut dims = Vec::new();
            loop {
                if self.peek() == Some(b')') {
                    self.pos += 1;
                    return Ok(dims);
                }
                let digits = self.word();
                let text = std::str::from_utf8(digits)
                    .unwrap_or_default()
                    .trim_end_matches('L');
                let dim: u64 = text.parse().map_err(|_| {
                    err(format!(
                        "shape entry {text:?} is not a non-negative integer"
                    ))
                })?;
                dims.push(dim);
                if dims.len() > MAX_DIMS {
                    return Err(err(format!("shape has more than {MAX_DIMS} dimensions")));
                }
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => {}
                    _ => return Err(err("expected ',' or ')' in shape")),
                }
            }
        }

        fn value(&mut self) -> Result<Value, NpyError> {
            match self.peek() {
                Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
                Some(b'(') => Ok(Value::Tuple(self.tuple()?)),
                Some(_) => match self.word() {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    other => Err(err(format!(
                        "unexpected value {:?}",
                        String::from_utf8_lossy(other)
                    ))),
                },
                None => Err(err("expected a value, header ended")),
            }
        }
    }

    fn dtype(descr: &str) -> Result<Dtype, NpyError> {
        match descr {
            "<f4" | "=f4" | "f4" => Ok(Dtype::F32 { big_endian: false }),
            ">f4" => Ok(Dtype::F32 { big_endian: true }),
            "<f8" | "=f8" | "f8" => Ok(Dtype::F64 { big_endian: false }),
            ">f8" => Ok(Dtype::F64 { big_endian: true }),
            other => Err(NpyError::Dtype(other.to_owned())),
        }
    }

    /// Parses `{'descr': ..., 'fortran_order': ..., 'shape': (...), }`.
    pub(super) fn parse(text: &str) -> Result<Fields, NpyError> {
        let mut c = Cursor {
            s: text.as_bytes(),
            pos: 0,
        };
        c.expect(b'{')?;
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        loop {
            if c.peek() == Some(b'}') {
                c.pos += 1;
                break;
            }
            let key = c.string()?;
            c.expect(b':')?;
            let value = c.value()?;
            match (key.as_str(), value) {
                ("descr", Value::Str(s)) => descr = Some(dtype(&s)?),
                ("fortran_order", Value::Bool(b)) => fortran = Some(b),
                ("shape", Value::Tuple(t)) => shape = Some(t),
                (k @ ("descr" | "fortran_order" | "shape"), _) => {
                    return Err(err(format!("key '{k}' has a value of the wrong type")));
                }
                (k, _) => return Err(err(format!("unexpected key '{k}'"))),
            }
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b'}') => {}
                _ => return Err(err("expected ',' or '}' after a value")),
            }
        }
        let rest = &text.as_bytes()[c.pos..];
        if !rest.iter().all(u8::is_ascii_whitespace) {
            return Err(err("unexpected text after the header dictionary"));
        }
        Ok(Fields {
            dtype: descr.ok_or_else(|| err("missing key 'descr'"))?,
            fortran_order: fortran.ok_or_else(|| err("missing key 'fortran_order'"))?,
            shape: shape.ok_or_else(|| err("missing key 'shape'"))?,
        })
    }
}
