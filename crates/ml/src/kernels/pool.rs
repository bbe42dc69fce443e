//! ReLU followed by 2x2 max-pooling with stride 2 (PyTorch's
//! `MaxPool2d(2)` after `ReLU`, floor mode: an odd last row or column is
//! dropped), fused into one pass over NCHW planes. Since ReLU is monotone,
//! `pool(relu(x)) = relu(pool(x))`: each output is the largest of its four
//! inputs, or zero.

use rayon::prelude::*;

use super::buffer::par_vec;

/// Marks an output whose four inputs were all at most zero: the ReLU
/// passes no gradient back.
const INACTIVE: u8 = 4;

/// The sizes of one pooling over a batch: `planes` NCHW planes (`N*C`) of
/// `height x width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    /// Image planes, batch times channels.
    pub planes: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
}

impl PoolShape {
    /// Output height and width.
    pub fn output_size(&self) -> [usize; 2] {
        [self.height / 2, self.width / 2]
    }

    fn out_len(&self) -> usize {
        let [h, w] = self.output_size();
        h * w
    }
}

/// Which of the four inputs (0..4, row-major) each output took, or
/// [`INACTIVE`]; what the backward pass needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolChoices {
    shape: PoolShape,
    chosen: Vec<u8>,
}

/// `max(0, max of each 2x2 block)` of `x`, and which input each output took.
pub fn relu_max_pool2_forward(x: &[f32], s: &PoolShape) -> (Vec<f32>, PoolChoices) {
    assert_eq!(x.len(), s.planes * s.height * s.width, "input is not {s:?}");
    let n = s.out_len();
    let mut y = par_vec(s.planes * n, 0.0);
    let mut chosen = par_vec(s.planes * n, INACTIVE);
    if n > 0 {
        y.par_chunks_exact_mut(n)
            .zip(chosen.par_chunks_exact_mut(n))
            .zip(x.par_chunks_exact(s.height * s.width))
            .for_each(|((y, chosen), plane)| pool_plane(plane, s, y, chosen));
    }
    (y, PoolChoices { shape: *s, chosen })
}

fn pool_plane(plane: &[f32], s: &PoolShape, y: &mut [f32], chosen: &mut [u8]) {
    let [oh, ow] = s.output_size();
    for oy in 0..oh {
        let top = &plane[2 * oy * s.width..][..s.width];
        let bottom = &plane[(2 * oy + 1) * s.width..][..s.width];
        let outs = y[oy * ow..][..ow]
            .iter_mut()
            .zip(&mut chosen[oy * ow..][..ow]);
        for (ox, (out, pick)) in outs.enumerate() {
            let four = [
                top[2 * ox],
                top[2 * ox + 1],
                bottom[2 * ox],
                bottom[2 * ox + 1],
            ];
            let (mut best, mut at) = (0.0, INACTIVE);
            for (i, v) in four.into_iter().enumerate() {
                if v > best {
                    (best, at) = (v, i as u8);
                }
            }
            *out = best;
            *pick = at;
        }
    }
}

/// The input's gradient given the output's: each output's gradient goes to
/// the input it took, none where the ReLU was inactive.
pub fn relu_max_pool2_backward(grad: &[f32], choices: &PoolChoices) -> Vec<f32> {
    let s = choices.shape;
    let n = s.out_len();
    assert_eq!(grad.len(), s.planes * n, "output gradient is not {s:?}");
    let mut gx = par_vec(s.planes * s.height * s.width, 0.0);
    if n == 0 {
        return gx;
    }
    gx.par_chunks_exact_mut(s.height * s.width)
        .zip(grad.par_chunks_exact(n))
        .zip(choices.chosen.par_chunks_exact(n))
        .for_each(|((plane, g), chosen)| unpool_plane(g, chosen, &s, plane));
    gx
}

/// Writes every input pixel of one plane once: the gradient of the output
/// that took it, else zero.
fn unpool_plane(g: &[f32], chosen: &[u8], s: &PoolShape, plane: &mut [f32]) {
    let [oh, ow] = s.output_size();
    for (y, row) in plane.chunks_exact_mut(s.width).enumerate() {
        let oy = y / 2;
        if oy >= oh {
            row.fill(0.0);
            continue;
        }
        let (g, chosen) = (&g[oy * ow..][..ow], &chosen[oy * ow..][..ow]);
        let half = (y % 2 * 2) as u8;
        for (pair, (&g, &at)) in row.chunks_exact_mut(2).zip(g.iter().zip(chosen)) {
            pair[0] = if at == half { g } else { 0.0 };
            pair[1] = if at == half + 1 { g } else { 0.0 };
        }
        if s.width % 2 == 1 {
            row[s.width - 1] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_the_rectified_maximum_and_routes_gradients_to_it() {
        // One 3x5 plane: the odd last row and column are dropped.
        let x = [
            1.0, -2.0, -1.0, -3.0, 9.0, //
            0.5, 3.0, -4.0, -0.5, 9.0, //
            9.0, 9.0, 9.0, 9.0, 9.0,
        ];
        let s = PoolShape {
            planes: 1,
            height: 3,
            width: 5,
        };
        let (y, choices) = relu_max_pool2_forward(&x, &s);
        assert_eq!(y, vec![3.0, 0.0]);
        let gx = relu_max_pool2_backward(&[10.0, 20.0], &choices);
        let mut want = vec![0.0; 15];
        want[6] = 10.0;
        assert_eq!(gx, want);
    }

    #[test]
    fn planes_are_pooled_independently() {
        let x: Vec<f32> = (0..2 * 4 * 4)
            .map(|i| if i < 16 { i as f32 } else { -(i as f32) })
            .collect();
        let s = PoolShape {
            planes: 2,
            height: 4,
            width: 4,
        };
        let (y, choices) = relu_max_pool2_forward(&x, &s);
        assert_eq!(y, vec![5.0, 7.0, 13.0, 15.0, 0.0, 0.0, 0.0, 0.0]);
        let gx = relu_max_pool2_backward(&[1.0; 8], &choices);
        assert_eq!(gx.iter().sum::<f32>(), 4.0);
        assert_eq!((gx[5], gx[7], gx[13], gx[15]), (1.0, 1.0, 1.0, 1.0));
    }
}
