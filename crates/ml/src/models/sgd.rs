//! Plain SGD (no momentum, no weight decay) as one fused pass per
//! parameter, in place where it can: a burn module mapper over
//! [`crate::kernels::sgd_step`], used instead of burn's optimiser, which
//! scales the gradient and then subtracts it.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::module::{ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::layers::{is_f32, values};
use crate::kernels;

/// Plain SGD's update on flex tensors.
#[backend_extension(Flex)]
pub trait FastSgd: Backend {
    /// `param - lr * grad`, in place when nothing else holds `param`.
    fn sgd_step(param: FloatTensor<Self>, grad: FloatTensor<Self>, lr: f64) -> FloatTensor<Self>;
}

impl FastSgd for Flex {
    fn sgd_step(mut param: FlexTensor, grad: FlexTensor, lr: f64) -> FlexTensor {
        let whole = param.is_contiguous()
            && param.layout().start_offset() == 0
            && param.bytes().len() == param.shape().num_elements() * size_of::<f32>();
        if !is_f32(&[&param, &grad]) || !whole {
            let delta = Flex::float_mul_scalar(grad, lr.into());
            return Flex::float_sub(param, delta);
        }
        let grad = values(&grad);
        kernels::sgd_step(param.storage_mut::<f32>(), &grad, lr as f32);
        param
    }
}

/// Plain SGD (no momentum, no weight decay) as a module mapper: each
/// parameter with a gradient steps in one fused pass, in place where it
/// can, instead of burn's optimizer's two (scale, then subtract).
pub(crate) struct PlainSgd {
    /// The gradients of the parameters, by id.
    pub grads: GradientsParams,
    /// The learning rate.
    pub lr: f64,
}

impl ModuleMapper for PlainSgd {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let stepped: Tensor<D> = Tensor::from_dispatch(<Dispatch as FastSgd>::sgd_step(
            tensor.inner().into_dispatch(),
            grad.into_dispatch(),
            self.lr,
        ));
        let mut updated = Tensor::from_inner(stepped);
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
