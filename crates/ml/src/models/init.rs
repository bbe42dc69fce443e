//! PyTorch's default initialisation, drawn from a seeded ChaCha8 stream.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Initial parameters for tensors of `shapes` in PyTorch layout, listed as
/// weight then bias per layer: every value uniform in `[-1/sqrt(f), 1/sqrt(f)]`
/// with `f` the fan-in of its layer (`shape[1..]`'s product for a weight; the
/// preceding weight's for a bias). This equals `kaiming_uniform_(a=sqrt(5))`
/// (gain `sqrt(1/3)`, bound `gain * sqrt(3/f)`) for weights, and PyTorch's
/// bias rule for `nn.Linear` and `nn.Conv2d`.
pub(crate) fn pytorch_default(shapes: &[Vec<usize>], seed: u64) -> Vec<fl::Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fan_in = 1usize;
    shapes
        .iter()
        .map(|shape| {
            if shape.len() >= 2 {
                fan_in = shape[1..].iter().product::<usize>().max(1);
            }
            let bound = 1.0 / (fan_in as f32).sqrt();
            let n = shape.iter().product();
            let data = (0..n).map(|_| rng.random_range(-bound..=bound)).collect();
            fl::Tensor {
                shape: shape.clone(),
                data,
            }
        })
        .collect()
}
