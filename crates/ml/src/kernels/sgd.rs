//! Plain SGD's update, `param -= lr * grad`, in one pass over the
//! parameters, split over the current rayon pool.

use rayon::prelude::*;

/// Elements per rayon task: large enough that a task outweighs its cost.
const CHUNK: usize = 1 << 16;

/// `param[i] -= lr * grad[i]`, rounding as burn's and PyTorch's SGD do
/// (the product rounded to `f32`, then the difference).
pub fn sgd_step(param: &mut [f32], grad: &[f32], lr: f32) {
    assert_eq!(
        param.len(),
        grad.len(),
        "parameter and gradient sizes differ"
    );
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .for_each(|(p, g)| {
            for (p, &g) in p.iter_mut().zip(g) {
                *p -= g * lr;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_against_the_gradient() {
        let mut p: Vec<f32> = (0..200_000).map(|i| i as f32).collect();
        let g: Vec<f32> = (0..200_000).map(|i| (i % 7) as f32).collect();
        sgd_step(&mut p, &g, 0.5);
        assert_eq!((p[0], p[1], p[6], p[199_999]), (0.0, 0.5, 3.0, 199_998.0));
    }
}
