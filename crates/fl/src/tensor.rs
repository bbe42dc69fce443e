//! Dense f32 tensors: the unit of model parameters exchanged in FL rounds.

/// A dense, C-ordered (row-major) f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// Elements in C order; `data.len()` equals the product of `shape`.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` holds exactly `shape`'s elements.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, ShapeMismatch> {
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(ShapeMismatch {
                shape,
                len: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros with the given shape.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// `data` does not hold as many elements as `shape` says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tensor shape {shape:?} needs {} elements, got {len}", shape.iter().product::<usize>())]
pub struct ShapeMismatch {
    /// The shape asked for.
    pub shape: Vec<usize>,
    /// The number of elements given.
    pub len: usize,
}

/// Total number of elements across a list of tensors (a model's parameter count).
pub fn parameter_count(tensors: &[Tensor]) -> usize {
    tensors.iter().map(Tensor::len).sum()
}
