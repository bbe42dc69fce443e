//! A model's parameters as `fl::Tensor`s in PyTorch's `state_dict` order and
//! layout, so a PyTorch client with the same layers can join the same job.
//!
//! Order: each convolution's weight `[out, in, kh, kw]` and bias `[out]`,
//! then each linear layer's weight `[out, in]` and bias `[out]`, input side
//! first. burn stores a linear weight as `[in, out]`; it is transposed here,
//! both ways, exactly (a copy, no arithmetic).

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};

use super::Net;

/// Parameters that do not fit a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    /// Wrong number of tensors.
    #[error("model `{model}` has {expected} parameter tensors, got {got}")]
    Count {
        /// The model.
        model: String,
        /// Tensors it has.
        expected: usize,
        /// Tensors given.
        got: usize,
    },
    /// A tensor has the wrong shape (or its data does not fill its shape).
    #[error("parameter tensor {index} ({name}): expected shape {expected:?}, got {got:?}{detail}")]
    Shape {
        /// Position in the list.
        index: usize,
        /// PyTorch-style name, e.g. `fc1.weight`.
        name: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The given shape.
        got: Vec<usize>,
        /// Extra detail (empty, or a note on the data length).
        detail: String,
    },
    /// A parameter could not be read back from the backend.
    #[error("cannot read parameter tensor {index} ({name}): {message}")]
    Read {
        /// Position in the list.
        index: usize,
        /// PyTorch-style name.
        name: String,
        /// The backend's reason.
        message: String,
    },
}

/// Where a parameter tensor lives in the network.
#[derive(Debug, Clone, Copy)]
enum Slot {
    ConvWeight(usize),
    ConvBias(usize),
    LinearWeight(usize),
    LinearBias(usize),
}

impl Net {
    /// The linear layers, input side first (hidden layers, then the output).
    fn linears(&self) -> impl Iterator<Item = &Linear> {
        self.hidden.iter().chain(std::iter::once(&self.output))
    }

    /// Every parameter tensor's slot, PyTorch-style name and PyTorch shape, in wire order.
    fn slots(&self) -> Vec<(Slot, String, Vec<usize>)> {
        let mut out = Vec::new();
        for (i, conv) in self.convs.iter().enumerate() {
            let dims = conv.weight.lazy_shape().to_vec();
            out.push((
                Slot::ConvWeight(i),
                format!("conv{}.weight", i + 1),
                dims.clone(),
            ));
            if conv.bias.is_some() {
                out.push((
                    Slot::ConvBias(i),
                    format!("conv{}.bias", i + 1),
                    vec![dims[0]],
                ));
            }
        }
        for (j, lin) in self.linears().enumerate() {
            let dims = lin.weight.lazy_shape().to_vec();
            let (d_in, d_out) = (dims[0], dims[1]);
            out.push((
                Slot::LinearWeight(j),
                format!("fc{}.weight", j + 1),
                vec![d_out, d_in],
            ));
            if lin.bias.is_some() {
                out.push((
                    Slot::LinearBias(j),
                    format!("fc{}.bias", j + 1),
                    vec![d_out],
                ));
            }
        }
        out
    }

    /// The shapes of [`Net::to_tensors`]'s tensors, in order.
    pub fn parameter_shapes(&self) -> Vec<Vec<usize>> {
        self.slots().into_iter().map(|(_, _, s)| s).collect()
    }

    /// The PyTorch-style names (`conv1.weight`, `fc1.bias`, ...), in order.
    pub fn parameter_names(&self) -> Vec<String> {
        self.slots().into_iter().map(|(_, n, _)| n).collect()
    }

    /// Total number of scalar parameters.
    pub fn parameter_count(&self) -> usize {
        self.parameter_shapes()
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum()
    }

    /// The parameters as `fl::Tensor`s in PyTorch's order and layout.
    pub fn to_tensors(&self) -> Result<Vec<fl::Tensor>, WeightsError> {
        self.slots()
            .into_iter()
            .enumerate()
            .map(
                |(index, (slot, name, shape))| match self.read_slot(slot, &shape) {
                    Ok(data) => Ok(fl::Tensor { shape, data }),
                    Err(message) => Err(WeightsError::Read {
                        index,
                        name,
                        message,
                    }),
                },
            )
            .collect()
    }

    /// Reads one slot's values in PyTorch layout.
    fn read_slot(&self, slot: Slot, shape: &[usize]) -> Result<Vec<f32>, String> {
        match slot {
            Slot::ConvWeight(i) => read(&self.convs[i].weight),
            Slot::ConvBias(i) => read_bias(self.convs[i].bias.as_ref()),
            // burn [in, out] -> PyTorch [out, in]
            Slot::LinearWeight(j) => {
                read(&self.linear(j).weight).map(|v| transpose(&v, shape[1], shape[0]))
            }
            Slot::LinearBias(j) => read_bias(self.linear(j).bias.as_ref()),
        }
    }

    /// Replaces the parameters with `tensors` (PyTorch order and layout),
    /// keeping each parameter's identity, device and gradient tracking, so
    /// the model trains on from them. Every shape is checked before anything changes.
    pub fn load_tensors(self, tensors: &[fl::Tensor]) -> Result<Net, WeightsError> {
        let slots = self.slots();
        if slots.len() != tensors.len() {
            return Err(WeightsError::Count {
                model: self.name().to_string(),
                expected: slots.len(),
                got: tensors.len(),
            });
        }
        for (index, ((_, name, expected), t)) in slots.iter().zip(tensors).enumerate() {
            let fills = t.shape.iter().product::<usize>() == t.data.len();
            if &t.shape != expected || !fills {
                let detail = if fills {
                    String::new()
                } else {
                    format!(" holding {} values", t.data.len())
                };
                return Err(WeightsError::Shape {
                    index,
                    name: name.clone(),
                    expected: expected.clone(),
                    got: t.shape.clone(),
                    detail,
                });
            }
        }
        let mut net = self;
        for ((slot, _, shape), t) in slots.into_iter().zip(tensors) {
            let data = t.data.clone();
            match slot {
                Slot::ConvWeight(i) => {
                    let c = &mut net.convs[i];
                    let dims = [shape[0], shape[1], shape[2], shape[3]];
                    c.weight = set(c.weight.clone(), dims, data);
                }
                Slot::ConvBias(i) => {
                    let c = &mut net.convs[i];
                    c.bias = c.bias.take().map(|b| set(b, [shape[0]], data));
                }
                Slot::LinearWeight(j) => {
                    let lin = net.linear_mut(j);
                    let (d_out, d_in) = (shape[0], shape[1]);
                    lin.weight = set(
                        lin.weight.clone(),
                        [d_in, d_out],
                        transpose(&data, d_out, d_in),
                    );
                }
                Slot::LinearBias(j) => {
                    let lin = net.linear_mut(j);
                    lin.bias = lin.bias.take().map(|b| set(b, [shape[0]], data));
                }
            }
        }
        Ok(net)
    }

    fn linear(&self, j: usize) -> &Linear {
        if j < self.hidden.len() {
            &self.hidden[j]
        } else {
            &self.output
        }
    }

    fn linear_mut(&mut self, j: usize) -> &mut Linear {
        if j < self.hidden.len() {
            &mut self.hidden[j]
        } else {
            &mut self.output
        }
    }
}

fn read_bias(b: Option<&Param<Tensor<1>>>) -> Result<Vec<f32>, String> {
    b.map_or_else(|| Err("layer has no bias".into()), read)
}

/// Reads a parameter's values in C order.
fn read<const D: usize>(p: &Param<Tensor<D>>) -> Result<Vec<f32>, String> {
    p.val()
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// Replaces a parameter's value, keeping its id, device and `require_grad`.
fn set<const D: usize>(p: Param<Tensor<D>>, dims: [usize; D], data: Vec<f32>) -> Param<Tensor<D>> {
    let value = Tensor::<D>::from_data(TensorData::new(data, dims), &p.lazy_device());
    let id = p.id;
    p.transform_for_load(value, id)
}

/// Transposes a row-major `rows x cols` matrix.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = m[r * cols + c];
        }
    }
    out
}
