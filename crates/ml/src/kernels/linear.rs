//! A linear layer `y = x W + b` in burn's layout (`W` is `[inputs, outputs]`),
//! forward and backward, each product one multiply over the whole batch.

use super::buffer::par_vec;
use super::matmul::{View, matmul, matmul_col_major, transpose};

/// The sizes of one linear layer over a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearShape {
    /// Rows in the batch.
    pub batch: usize,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
}

/// The gradients of one linear layer over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGrads {
    /// With respect to the input, `[batch, inputs]`, when asked for.
    pub input: Option<Vec<f32>>,
    /// With respect to the weights, `[inputs, outputs]`.
    pub weight: Vec<f32>,
    /// With respect to the bias, when the layer has one.
    pub bias: Option<Vec<f32>>,
}

fn check(s: &LinearShape, x: &[f32], weight: &[f32]) {
    assert_eq!(x.len(), s.batch * s.inputs, "input is not {s:?}");
    assert_eq!(weight.len(), s.inputs * s.outputs, "weights are not {s:?}");
}

/// `x W + b` for `x` `[batch, inputs]`: `[batch, outputs]`.
pub fn linear_forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    s: &LinearShape,
) -> Vec<f32> {
    check(s, x, weight);
    let mut y = vec![0.0; s.batch * s.outputs];
    if let Some(bias) = bias {
        assert_eq!(bias.len(), s.outputs, "bias is not {s:?}");
        for row in y.chunks_exact_mut(s.outputs.max(1)) {
            row.copy_from_slice(bias);
        }
    }
    matmul(
        &mut y,
        bias.is_some(),
        View::rows(x, s.batch, s.inputs),
        View::rows(weight, s.inputs, s.outputs),
        true,
    );
    y
}

/// The gradients of [`linear_forward`] given the output's gradient `grad`;
/// the input's only when `want_input`, the bias's only when `with_bias`.
pub fn linear_backward(
    x: &[f32],
    weight: &[f32],
    grad: &[f32],
    s: &LinearShape,
    want_input: bool,
    with_bias: bool,
) -> LinearGrads {
    check(s, x, weight);
    assert_eq!(
        grad.len(),
        s.batch * s.outputs,
        "output gradient is not {s:?}"
    );
    let g = View::rows(grad, s.batch, s.outputs);
    let mut gw = par_vec(weight.len(), 0.0);
    matmul(
        &mut gw,
        false,
        View::transposed(x, s.inputs, s.batch),
        g,
        true,
    );
    let input = want_input.then(|| {
        let mut gx_t = vec![0.0; x.len()];
        let w_t = View::transposed(weight, s.outputs, s.inputs);
        matmul_col_major(&mut gx_t, false, g, w_t, true);
        transpose(&gx_t, s.inputs, s.batch)
    });
    let bias = with_bias.then(|| {
        let mut gb = vec![0.0; s.outputs];
        for row in grad.chunks_exact(s.outputs.max(1)) {
            for (b, v) in gb.iter_mut().zip(row) {
                *b += v;
            }
        }
        gb
    });
    LinearGrads {
        input,
        weight: gw,
        bias,
    }
}

/// ReLU in place: `max(0, y)`.
pub fn relu_in_place(y: &mut [f32]) {
    for v in y {
        *v = v.max(0.0);
    }
}

/// The gradient through a ReLU whose output was `y`: `grad` where `y > 0`,
/// else zero.
pub fn relu_backward(grad: &[f32], y: &[f32]) -> Vec<f32> {
    assert_eq!(grad.len(), y.len(), "gradient and output sizes differ");
    grad.iter()
        .zip(y)
        .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_match_their_definitions() {
        let s = LinearShape {
            batch: 3,
            inputs: 4,
            outputs: 2,
        };
        let x: Vec<f32> = (0..12).map(|i| i as f32 - 6.0).collect();
        let w: Vec<f32> = (0..8).map(|i| (i as f32) * 0.25).collect();
        let b = [1.0, -1.0];
        let y = linear_forward(&x, &w, Some(&b), &s);
        for r in 0..3 {
            for o in 0..2 {
                let want: f32 = b[o] + (0..4).map(|i| x[r * 4 + i] * w[i * 2 + o]).sum::<f32>();
                assert_eq!(y[r * 2 + o], want);
            }
        }
        let g = [1.0, 2.0, -1.0, 0.5, 0.0, 3.0];
        let grads = linear_backward(&x, &w, &g, &s, true, true);
        for i in 0..4 {
            for o in 0..2 {
                let want: f32 = (0..3).map(|r| x[r * 4 + i] * g[r * 2 + o]).sum();
                assert_eq!(grads.weight[i * 2 + o], want);
            }
        }
        let gx = grads.input.expect("asked for");
        for r in 0..3 {
            for i in 0..4 {
                let want: f32 = (0..2).map(|o| g[r * 2 + o] * w[i * 2 + o]).sum();
                assert_eq!(gx[r * 4 + i], want);
            }
        }
        assert_eq!(grads.bias, Some(vec![0.0, 5.5]));
        let bare = linear_backward(&x, &w, &g, &s, false, false);
        assert_eq!((bare.input, bare.bias), (None, None));
        assert_eq!(linear_forward(&x, &w, None, &s)[0], y[0] - 1.0);
    }

    #[test]
    fn relu_keeps_positives_and_passes_their_gradients() {
        let mut y = vec![-1.0, 0.0, 2.0];
        relu_in_place(&mut y);
        assert_eq!(y, vec![0.0, 0.0, 2.0]);
        assert_eq!(relu_backward(&[5.0, 6.0, 7.0], &y), vec![0.0, 0.0, 7.0]);
    }
}
