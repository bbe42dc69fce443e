//! The models clients train, by name: their architectures, the network
//! that runs them on burn, PyTorch-default initialisation, and their
//! parameters as `fl::Tensor`s in PyTorch's layout.

#[cfg(feature = "train")]
mod init;
#[cfg(feature = "train")]
pub(crate) mod layers;
#[cfg(feature = "train")]
mod net;
#[cfg(feature = "train")]
pub(crate) mod sgd;
#[cfg(feature = "train")]
mod weights;

#[cfg(feature = "train")]
pub use net::Net;
#[cfg(feature = "train")]
pub use weights::WeightsError;

use std::fmt;
use std::str::FromStr;

use crate::datasets::InputShape;

/// A model the registry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelName {
    /// Softmax regression: one linear layer from the input to the classes.
    LogReg,
    /// The FedAvg paper's 2NN: 200 and 200 ReLU units (784-200-200-10 on MNIST).
    Mlp,
    /// Keras' MNIST example: 128 ReLU units, dropout 0.2.
    KerasMlp,
    /// The FedAvg paper's CNN: conv5x5 32, max-pool 2, conv5x5 64, max-pool 2,
    /// 512 ReLU units (same padding; 1,663,370 parameters on 28x28x1).
    Cnn,
    /// PyTorch's CIFAR-10 tutorial CNN (Flower's quickstart): conv5x5 6,
    /// max-pool 2, conv5x5 16, max-pool 2, 120 and 84 ReLU units (no padding;
    /// 62,006 parameters on 32x32x3).
    CnnCifar,
}

/// One convolution stage: conv, ReLU, 2x2 max-pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvStage {
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Zero padding on each side (`kernel / 2` keeps the size, "same").
    pub padding: usize,
}

/// A model's layers: convolution stages, then hidden ReLU layers, then a
/// linear output layer with one unit per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Architecture {
    /// Convolution stages, input first.
    pub convs: Vec<ConvStage>,
    /// Units of each hidden layer.
    pub hidden: Vec<usize>,
    /// Dropout probability after each hidden layer (0 for none).
    pub dropout: f64,
}

impl ModelName {
    /// Every known model.
    pub const ALL: [ModelName; 5] = [
        ModelName::LogReg,
        ModelName::Mlp,
        ModelName::KerasMlp,
        ModelName::Cnn,
        ModelName::CnnCifar,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::LogReg => "logreg",
            ModelName::Mlp => "mlp",
            ModelName::KerasMlp => "keras-mlp",
            ModelName::Cnn => "cnn",
            ModelName::CnnCifar => "cnn-cifar",
        }
    }

    /// The model's layers.
    pub fn architecture(self) -> Architecture {
        let same5 = |out_channels| ConvStage {
            out_channels,
            kernel: 5,
            padding: 2,
        };
        let valid5 = |out_channels| ConvStage {
            out_channels,
            kernel: 5,
            padding: 0,
        };
        let (convs, hidden, dropout) = match self {
            ModelName::LogReg => (vec![], vec![], 0.0),
            ModelName::Mlp => (vec![], vec![200, 200], 0.0),
            ModelName::KerasMlp => (vec![], vec![128], 0.2),
            ModelName::Cnn => (vec![same5(32), same5(64)], vec![512], 0.0),
            ModelName::CnnCifar => (vec![valid5(6), valid5(16)], vec![120, 84], 0.0),
        };
        Architecture {
            convs,
            hidden,
            dropout,
        }
    }
}

impl Architecture {
    /// Scalar parameters of the model on `input` with `classes` outputs
    /// (weights and biases of every layer), as [`Net::new`] builds it;
    /// `None` where it cannot be built on that input.
    pub fn parameter_count(&self, input: InputShape, classes: usize) -> Option<usize> {
        let (mut channels, mut h, mut w) = (input.channels, input.height, input.width);
        let mut count = 0;
        for stage in &self.convs {
            let conv_h = (h + 2 * stage.padding).checked_sub(stage.kernel - 1)?;
            let conv_w = (w + 2 * stage.padding).checked_sub(stage.kernel - 1)?;
            if conv_h < 2 || conv_w < 2 {
                return None;
            }
            count += stage.out_channels * (channels * stage.kernel * stage.kernel + 1);
            (channels, h, w) = (stage.out_channels, conv_h / 2, conv_w / 2);
        }
        let mut width = channels * h * w;
        for &units in &self.hidden {
            count += units * (width + 1);
            width = units;
        }
        Some(count + classes * (width + 1))
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelName {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelName::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ModelError::Unknown(s.to_owned()))
    }
}

/// A model cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No model has that name.
    #[error("unknown model `{0}`; known: logreg, mlp, keras-mlp, cnn, cnn-cifar")]
    Unknown(String),
    /// The model does not fit the data's shape.
    #[error("model `{model}` cannot take {input} inputs: {reason}")]
    Incompatible {
        /// The model.
        model: ModelName,
        /// The data's example shape.
        input: InputShape,
        /// Why not.
        reason: String,
    },
}

/// Builds model `name` for inputs of `input` shape and `classes` classes on
/// `device`, initialised like PyTorch's defaults from `seed` (see [`Net::new`]).
#[cfg(feature = "train")]
pub fn build_model(
    name: ModelName,
    input: InputShape,
    classes: usize,
    device: &burn::tensor::Device,
    seed: u64,
) -> Result<Net, ModelError> {
    Net::new(name, input, classes, device, seed)
}
