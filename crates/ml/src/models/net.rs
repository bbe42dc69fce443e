//! The network every model is: convolution stages (conv, ReLU, 2x2 max-pool),
//! hidden linear layers (linear, ReLU, dropout), a linear output layer.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{ModelError, ModelName, init, layers};
use crate::datasets::InputShape;

/// A model's network on burn. Inputs are flat rows (`[batch, C*H*W]`, C
/// outermost as PyTorch stores images); outputs are logits `[batch, classes]`.
#[derive(Module, Debug)]
pub struct Net {
    pub(crate) convs: Vec<Conv2d>,
    pub(crate) hidden: Vec<Linear>,
    pub(crate) output: Linear,
    dropout: f64,
    #[module(skip)]
    name: ModelName,
    #[module(skip)]
    input: InputShape,
}

impl Net {
    /// Builds model `name` for `input`-shaped examples and `classes` classes on
    /// `device`. Parameters follow PyTorch's default initialisation, drawn
    /// from a ChaCha8 stream of `seed`: every weight and bias of a layer with
    /// fan-in `f` (inputs of a linear layer; in-channels x kernel area of a
    /// convolution) is uniform in `[-1/sqrt(f), 1/sqrt(f)]`, which is what
    /// `kaiming_uniform_(a=sqrt(5))` gives for weights and what PyTorch draws
    /// for biases.
    pub fn new(
        name: ModelName,
        input: InputShape,
        classes: usize,
        device: &Device,
        seed: u64,
    ) -> Result<Net, ModelError> {
        let arch = name.architecture();
        let incompatible = |reason: String| ModelError::Incompatible {
            model: name,
            input,
            reason,
        };
        if classes < 2 {
            return Err(incompatible(format!("{classes} classes (need at least 2)")));
        }
        if !arch.convs.is_empty() && (input.height < 2 || input.width < 2) {
            return Err(incompatible("a CNN needs image inputs".into()));
        }
        let (mut channels, mut h, mut w) = (input.channels, input.height, input.width);
        let mut convs = Vec::new();
        for (i, stage) in arch.convs.iter().enumerate() {
            let conv_h = (h + 2 * stage.padding).checked_sub(stage.kernel - 1);
            let conv_w = (w + 2 * stage.padding).checked_sub(stage.kernel - 1);
            let (Some(ch), Some(cw)) = (conv_h, conv_w) else {
                return Err(incompatible(format!("too small for convolution {}", i + 1)));
            };
            if ch < 2 || cw < 2 {
                return Err(incompatible(format!(
                    "too small for pooling after convolution {}",
                    i + 1
                )));
            }
            let p = stage.padding;
            convs.push(
                Conv2dConfig::new([channels, stage.out_channels], [stage.kernel; 2])
                    .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                    .init(device),
            );
            (channels, h, w) = (stage.out_channels, ch / 2, cw / 2);
        }
        let mut width = channels * h * w;
        let mut hidden = Vec::new();
        for &units in &arch.hidden {
            hidden.push(LinearConfig::new(width, units).init(device));
            width = units;
        }
        let net = Net {
            convs,
            hidden,
            output: LinearConfig::new(width, classes).init(device),
            dropout: arch.dropout,
            name,
            input,
        };
        let initial = init::pytorch_default(&net.parameter_shapes(), seed);
        Ok(net
            .load_tensors(&initial)
            .expect("initial tensors have the model's own shapes"))
    }

    /// The model's name.
    pub fn name(&self) -> ModelName {
        self.name
    }

    /// The shape of the examples it takes.
    pub fn input_shape(&self) -> InputShape {
        self.input
    }

    /// Computes logits for a batch of flat rows. Dropout applies when
    /// `dropout_rng` is given (training), with masks drawn from it.
    pub fn forward(&self, x: Tensor<2>, dropout_rng: Option<&mut ChaCha8Rng>) -> Tensor<2> {
        let [batch, _] = x.dims();
        let mut h = x;
        if !self.convs.is_empty() {
            let InputShape {
                channels,
                height,
                width,
            } = self.input;
            let mut t: Tensor<4> = h.reshape([batch, channels, height, width]);
            for conv in &self.convs {
                t = layers::conv_relu_pool(t, conv);
            }
            h = t.flatten(1, 3);
        }
        let mut rng = dropout_rng.filter(|_| self.dropout > 0.0);
        for layer in &self.hidden {
            h = layers::linear(h, layer, true);
            if let Some(rng) = rng.as_deref_mut() {
                h = self.apply_dropout(h, rng);
            }
        }
        layers::linear(h, &self.output, false)
    }

    /// Zeroes each unit with probability `p` and scales survivors by `1/(1-p)`.
    fn apply_dropout(&self, h: Tensor<2>, rng: &mut ChaCha8Rng) -> Tensor<2> {
        let dims = h.dims();
        let keep = 1.0 - self.dropout;
        let scale = (1.0 / keep) as f32;
        let mask: Vec<f32> = (0..dims[0] * dims[1])
            .map(|_| if rng.random_bool(keep) { scale } else { 0.0 })
            .collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, dims), &h.device());
        h * mask
    }

    /// Sum of squared differences between this model's parameters and
    /// `other`'s (the same model): `||w - w_other||^2`, differentiable in `self`.
    pub fn squared_distance(&self, other: &Net) -> Tensor<1> {
        fn sq<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
            (a - b).square().sum()
        }
        fn linear(a: &Linear, b: &Linear) -> Tensor<1> {
            let mut d = sq(a.weight.val(), b.weight.val());
            if let (Some(x), Some(y)) = (&a.bias, &b.bias) {
                d = d + sq(x.val(), y.val());
            }
            d
        }
        let mut total = linear(&self.output, &other.output);
        for (a, b) in self.hidden.iter().zip(&other.hidden) {
            total = total + linear(a, b);
        }
        for (a, b) in self.convs.iter().zip(&other.convs) {
            total = total + sq(a.weight.val(), b.weight.val());
            if let (Some(x), Some(y)) = (&a.bias, &b.bias) {
                total = total + sq(x.val(), y.val());
            }
        }
        total
    }
}
