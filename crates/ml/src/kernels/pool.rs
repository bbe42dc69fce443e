//! ReLU followed by 2x2 max-pooling with stride 2 (PyTorch's
//! `MaxPool2d(2)` after `ReLU`, floor mode: an odd last row or column is
//! dropped), fused into one pass over NCHW planes. Since ReLU is monotone,
//! `pool(relu(x)) = relu(pool(x))`: each output is the largest of its four
//! inputs, or zero.

/// Marks an output whose four inputs were all at most zero: the ReLU
/// passes no gradient back.
pub(super) const INACTIVE: u8 = 4;

/// The sizes of one pooling over a batch: `planes` NCHW planes (`N*C`) of
/// `height x width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PoolShape {
    /// Image planes, batch times channels.
    pub(super) planes: usize,
    /// Input height.
    pub(super) height: usize,
    /// Input width.
    pub(super) width: usize,
}

impl PoolShape {
    /// Output height and width.
    pub(super) fn output_size(&self) -> [usize; 2] {
        [self.height / 2, self.width / 2]
    }

    /// Outputs per plane.
    pub(super) fn out_len(&self) -> usize {
        let [h, w] = self.output_size();
        h * w
    }
}

/// Which of the four inputs (0..4, row-major) each output took, or
/// [`INACTIVE`]; what the backward pass needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolChoices {
    pub(super) shape: PoolShape,
    pub(super) chosen: Vec<u8>,
}

/// `max(0, max of each 2x2 block)` of one `s.height x s.width` plane into
/// `y`, and which input each output took into `chosen`.
pub(super) fn pool_plane(plane: &[f32], s: &PoolShape, y: &mut [f32], chosen: &mut [u8]) {
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

/// The input's gradient given the output's, for one plane: writes every
/// input pixel once, the gradient of the output that took it, else zero
/// (none where the ReLU was inactive).
pub(super) fn unpool_plane(g: &[f32], chosen: &[u8], s: &PoolShape, plane: &mut [f32]) {
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
        let (mut y, mut chosen) = ([0.0; 2], [0; 2]);
        pool_plane(&x, &s, &mut y, &mut chosen);
        assert_eq!(y, [3.0, 0.0]);
        assert_eq!(chosen, [3, INACTIVE]);
        let mut gx = [f32::NAN; 15];
        unpool_plane(&[10.0, 20.0], &chosen, &s, &mut gx);
        let mut want = [0.0; 15];
        want[6] = 10.0;
        assert_eq!(gx, want);
    }

    #[test]
    fn the_first_of_equal_maxima_takes_the_gradient() {
        let x = [2.0, 2.0, 2.0, 1.0];
        let s = PoolShape {
            planes: 1,
            height: 2,
            width: 2,
        };
        let (mut y, mut chosen) = ([0.0], [0]);
        pool_plane(&x, &s, &mut y, &mut chosen);
        assert_eq!((y, chosen), ([2.0], [0]));
        let mut gx = [f32::NAN; 4];
        unpool_plane(&[1.0], &chosen, &s, &mut gx);
        assert_eq!(gx, [1.0, 0.0, 0.0, 0.0]);
    }
}
