//! The layers of [`Net`](super::Net) (convolutions with their ReLU and 2x2
//! max-pooling, linear layers with or without their ReLU) and the cross-entropy loss
//! as burn custom operations backed by [`crate::kernels`]: a backend
//! extension implemented for the flex backend (the forward pass) and for
//! autodiff on flex (the forward pass plus a backward step that computes
//! every gradient in one go). Burn's own modules hold the parameters, in
//! PyTorch's layout for convolutions and burn's for linear layers, so
//! weights load and save as before. A layer outside what the kernels cover
//! (strided, dilated or grouped convolutions, asymmetric padding, no bias,
//! other float types) runs on burn's generic implementation.

use std::borrow::Cow;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::activation::{self, log_softmax};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Int, Tensor, TensorData};

use crate::kernels::{self, ConvShape, LinearShape, PoolChoices};

/// Layers with a fast CPU path.
#[backend_extension(Flex, Autodiff)]
pub trait FastLayers: Backend {
    /// A stride-1 convolution of NCHW `x` with OIHW `weight`, plus `bias`,
    /// padded by `padding` (rows, columns) on both sides, then ReLU and 2x2
    /// max-pooling with stride 2 (floor mode).
    fn conv2d_relu_pool(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    /// `x W + bias` for `x` `[batch, inputs]` and `W` `[inputs, outputs]`,
    /// then ReLU when `relu`.
    fn linear_layer(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// The mean softmax cross-entropy (`[1]`) of `logits` `[rows, classes]`
    /// against `labels` `[rows]`.
    fn softmax_cross_entropy(
        logits: FloatTensor<Self>,
        labels: IntTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `MaxPool2d(2)(relu(conv.forward(x)))`, on the fast kernels where they
/// apply.
pub(crate) fn conv_relu_pool(x: Tensor<4>, conv: &Conv2d) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    match (&conv.bias, padding) {
        (Some(bias), Some(padding)) if plain => {
            Tensor::from_dispatch(<Dispatch as FastLayers>::conv2d_relu_pool(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
                padding,
            ))
        }
        _ => max_pool2d(
            activation::relu(conv.forward(x)),
            MaxPoolOptions::new([2, 2]),
        ),
    }
}

/// `layer.forward(x)`, then ReLU when `relu`, on the fast kernels where
/// they apply.
pub(crate) fn linear(x: Tensor<2>, layer: &Linear, relu: bool) -> Tensor<2> {
    match &layer.bias {
        Some(bias) => Tensor::from_dispatch(<Dispatch as FastLayers>::linear_layer(
            x.into_dispatch(),
            layer.weight.val().into_dispatch(),
            bias.val().into_dispatch(),
            relu,
        )),
        None if relu => activation::relu(layer.forward(x)),
        None => layer.forward(x),
    }
}

/// The mean cross-entropy of `logits` `[b, classes]` against `labels` `[b]`.
pub(crate) fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    if logits.dtype() != DType::F32 {
        let [b, _] = logits.dims();
        return log_softmax(logits, 1)
            .gather(1, labels.reshape([b, 1]))
            .mean()
            .neg();
    }
    Tensor::from_dispatch(<Dispatch as FastLayers>::softmax_cross_entropy(
        logits.into_dispatch(),
        labels.into_dispatch(),
    ))
}

pub(super) fn is_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// The elements of an `f32` tensor in row-major order.
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(
            t.to_contiguous()
                .into_data()
                .try_into_vec::<f32>()
                .expect("the fast layers take f32 tensors only"),
        ),
    }
}

/// The elements of an integer tensor as `i64`.
fn labels(t: &FlexTensor) -> Vec<i64> {
    match t.as_slice::<i64>() {
        Some(slice) => slice.to_vec(),
        None => t
            .to_contiguous()
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("converted to i64"),
    }
}

fn tensor<const D: usize>(values: Vec<f32>, dims: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims))
}

fn conv_shape(x: &FlexTensor, weight: &FlexTensor, padding: [usize; 2]) -> ConvShape {
    let [batch, in_channels, height, width] = x.shape().dims();
    let [out_channels, _, kh, kw] = weight.shape().dims();
    ConvShape {
        batch,
        in_channels,
        height,
        width,
        out_channels,
        kernel: [kh, kw],
        padding,
    }
}

/// The dimensions of [`FastLayers::conv2d_relu_pool`]'s output.
fn pooled_dims(s: &ConvShape) -> [usize; 4] {
    let [h, w] = s
        .output_size()
        .expect("burn's shape checks refuse a kernel larger than the padded input");
    [s.batch, s.out_channels, h / 2, w / 2]
}

fn linear_shape(x: &FlexTensor, weight: &FlexTensor) -> LinearShape {
    let [batch, inputs] = x.shape().dims();
    let [_, outputs] = weight.shape().dims();
    LinearShape {
        batch,
        inputs,
        outputs,
    }
}

impl FastLayers for Flex {
    fn conv2d_relu_pool(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        padding: [usize; 2],
    ) -> FlexTensor {
        if !is_f32(&[&x, &weight, &bias]) {
            let options = ConvOptions::new([1, 1], padding, [1, 1], 1);
            let y = Flex::relu(Flex::conv2d(x, weight, Some(bias), options));
            return Flex::max_pool2d(y, [2, 2], [2, 2], [0, 0], [1, 1], false);
        }
        let s = conv_shape(&x, &weight, padding);
        let (y, _) =
            kernels::conv2d_relu_pool_forward(&values(&x), &values(&weight), &values(&bias), &s);
        tensor(y, pooled_dims(&s))
    }

    fn linear_layer(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, relu: bool) -> FlexTensor {
        if !is_f32(&[&x, &weight, &bias]) {
            let y = Flex::linear(x, weight, Some(bias));
            return if relu { Flex::relu(y) } else { y };
        }
        let s = linear_shape(&x, &weight);
        let mut y =
            kernels::linear_forward(&values(&x), &values(&weight), Some(&values(&bias)), &s);
        if relu {
            kernels::relu_in_place(&mut y);
        }
        tensor(y, [s.batch, s.outputs])
    }

    fn softmax_cross_entropy(logits: FlexTensor, labels: FlexTensor) -> FlexTensor {
        let [_, classes] = logits.shape().dims();
        let (mean, _) =
            kernels::softmax_cross_entropy(&values(&logits), &self::labels(&labels), classes);
        tensor(vec![mean], [1])
    }
}

/// The backward step of [`FastLayers::conv2d_relu_pool`]; its state is the
/// input, the weights, the padding and which input each pooled output took.
#[derive(Debug)]
struct ConvPoolBackward;

impl Backward<Flex, 3> for ConvPoolBackward {
    type State = (FlexTensor, FlexTensor, [usize; 2], Arc<PoolChoices>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, padding, choices) = ops.state;
        let s = conv_shape(&x, &weight, padding);
        let g = kernels::conv2d_relu_pool_backward(
            &values(&x),
            &values(&weight),
            &values(&grad),
            &choices,
            &s,
            node_x.is_some(),
        );
        if let (Some(node), Some(gx)) = (node_x, g.input) {
            grads.register::<Flex>(node.id, tensor(gx, x.shape().dims::<4>()));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, tensor(g.weight, weight.shape().dims::<4>()));
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, tensor(g.bias, [s.out_channels]));
        }
    }
}

/// The backward step of [`FastLayers::linear_layer`]; its state is the
/// input, the weights, and the output when a ReLU followed.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    type State = (FlexTensor, FlexTensor, Option<FlexTensor>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, relu_output) = ops.state;
        let s = linear_shape(&x, &weight);
        let grad = match &relu_output {
            Some(y) => Cow::Owned(kernels::relu_backward(&values(&grad), &values(y))),
            None => values(&grad),
        };
        let g = kernels::linear_backward(
            &values(&x),
            &values(&weight),
            &grad,
            &s,
            node_x.is_some(),
            node_bias.is_some(),
        );
        if let (Some(node), Some(gx)) = (node_x, g.input) {
            grads.register::<Flex>(node.id, tensor(gx, [s.batch, s.inputs]));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, tensor(g.weight, [s.inputs, s.outputs]));
        }
        if let (Some(node), Some(gb)) = (node_bias, g.bias) {
            grads.register::<Flex>(node.id, tensor(gb, [s.outputs]));
        }
    }
}

/// The backward step of [`FastLayers::softmax_cross_entropy`]; its state
/// is the softmax probabilities, the labels and the logits' dimensions.
#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    type State = (Arc<Vec<f32>>, Arc<Vec<i64>>, [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_logits] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (probs, labels, dims) = ops.state;
        if let Some(node) = node_logits {
            let g = values(&grad).first().copied().unwrap_or(0.0);
            let gl = kernels::softmax_cross_entropy_backward(&probs, &labels, dims[1], g);
            grads.register::<Flex>(node.id, tensor(gl, dims));
        }
    }
}

impl<C: CheckpointStrategy> FastLayers for Autodiff<Flex, C> {
    fn conv2d_relu_pool(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        if !is_f32(&[x.primitive(), weight.primitive(), bias.primitive()]) {
            let options = ConvOptions::new([1, 1], padding, [1, 1], 1);
            let y = <Self as ModuleOps<Self>>::conv2d(x, weight, Some(bias), options);
            let y = <Self as ActivationOps<Self>>::relu(y);
            return <Self as ModuleOps<Self>>::max_pool2d(y, [2, 2], [2, 2], [0, 0], [1, 1], false);
        }
        let prep = ConvPoolBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        match prep {
            OpsKind::Tracked(prep) => {
                let (input, w) = (x.primitive(), weight.primitive());
                let s = conv_shape(input, w, padding);
                let (y, choices) = kernels::conv2d_relu_pool_forward(
                    &values(input),
                    &values(w),
                    &values(bias.primitive()),
                    &s,
                );
                let state = (input.clone(), w.clone(), padding, Arc::new(choices));
                prep.finish(state, tensor(y, pooled_dims(&s)))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d_relu_pool(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                padding,
            )),
        }
    }

    fn linear_layer(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self> {
        if !is_f32(&[x.primitive(), weight.primitive(), bias.primitive()]) {
            let y = <Self as ModuleOps<Self>>::linear(x, weight, Some(bias));
            return if relu {
                <Self as ActivationOps<Self>>::relu(y)
            } else {
                y
            };
        }
        let prep = LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        match prep {
            OpsKind::Tracked(prep) => {
                let (input, w) = (x.primitive().clone(), weight.primitive().clone());
                let y = Flex::linear_layer(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    relu,
                );
                prep.finish((input, w, relu.then(|| y.clone())), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::linear_layer(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                relu,
            )),
        }
    }

    fn softmax_cross_entropy(logits: FloatTensor<Self>, labels: FlexTensor) -> FloatTensor<Self> {
        let prep = CrossEntropyBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful();
        match prep {
            OpsKind::Tracked(prep) => {
                let input = logits.primitive();
                let dims: [usize; 2] = input.shape().dims();
                let labels = self::labels(&labels);
                let (mean, probs) =
                    kernels::softmax_cross_entropy(&values(input), &labels, dims[1]);
                let state = (Arc::new(probs), Arc::new(labels), dims);
                prep.finish(state, tensor(vec![mean], [1]))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::softmax_cross_entropy(logits.into_primitive(), labels))
            }
        }
    }
}
