//! CPU kernels for the layers that dominate local training, on plain `f32`
//! slices, forward and backward: stride-1 convolutions as im2col plus a
//! tuned matrix multiply (skipping the products with zero padding), each
//! fused with its ReLU and 2x2 max-pooling image by image, linear layers as
//! one matrix multiply each, softmax cross-entropy in one pass, and plain
//! SGD's update in place. The matrix multiply is the `gemm` crate's (the one
//! burn's flex backend uses); transposed operands are read through strides.
//! [`crate::models`] wires them into burn's autodiff as custom operations.

mod buffer;
mod conv;
mod linear;
mod loss;
mod matmul;
mod padded;
mod planar;
mod pool;
mod region;
mod regional;
mod sgd;

pub use conv::{ConvGrads, ConvShape, conv2d_relu_pool_backward, conv2d_relu_pool_forward};
pub use linear::{
    LinearGrads, LinearShape, linear_backward, linear_forward, relu_backward, relu_in_place,
};
pub use loss::{softmax_cross_entropy, softmax_cross_entropy_backward};
pub use pool::PoolChoices;
pub use sgd::sgd_step;
