//! Stride-1, zero-padded 2-D convolution (PyTorch's `Conv2d` with
//! `stride=1, dilation=1, groups=1`) on NCHW images and OIHW weights, as
//! im2col plus one matrix multiply per image, images spread over the
//! current rayon pool.

use rayon::prelude::*;

use super::buffer::par_vec;
use super::matmul::{View, matmul, matmul_col_major, transpose};

/// The sizes of one convolution over a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Zero padding above and below, left and right.
    pub padding: [usize; 2],
}

impl ConvShape {
    /// Output height and width, or `None` when the kernel is larger than the
    /// padded input.
    pub fn output_size(&self) -> Option<[usize; 2]> {
        let h = (self.height + 2 * self.padding[0]).checked_sub(self.kernel[0])? + 1;
        let w = (self.width + 2 * self.padding[1]).checked_sub(self.kernel[1])? + 1;
        Some([h, w])
    }

    fn out(&self) -> [usize; 2] {
        self.output_size()
            .expect("the kernel fits the padded input (checked by the caller)")
    }

    /// Elements of one input image (`C*H*W`).
    fn image_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    /// Rows of the im2col matrix: one per weight of an output channel (`C*KH*KW`).
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// Output pixels per channel (`OH*OW`).
    fn pixels(&self) -> usize {
        let [h, w] = self.out();
        h * w
    }
}

/// The gradients of one convolution over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvGrads {
    /// With respect to the input, NCHW, when asked for.
    pub input: Option<Vec<f32>>,
    /// With respect to the weights, OIHW.
    pub weight: Vec<f32>,
    /// With respect to the bias, one per output channel.
    pub bias: Vec<f32>,
}

/// A scratch copy of one image with zero padding around each plane,
/// `[C, H + 2*PH, W + 2*PW]`, so that every window row is a plain slice.
struct Padded {
    data: Vec<f32>,
    /// Height and width of the image inside.
    inner: [usize; 2],
    /// Rows above and below, columns left and right.
    padding: [usize; 2],
}

impl Padded {
    fn new(channels: usize, inner: [usize; 2], padding: [usize; 2]) -> Padded {
        let plane = (inner[0] + 2 * padding[0]) * (inner[1] + 2 * padding[1]);
        Padded {
            data: vec![0.0; channels * plane],
            inner,
            padding,
        }
    }

    /// A scratch for the input images of `s`, padded as `s` pads them.
    fn input(s: &ConvShape) -> Padded {
        Padded::new(s.in_channels, [s.height, s.width], s.padding)
    }

    /// Padded height and width.
    fn outer(&self) -> [usize; 2] {
        [
            self.inner[0] + 2 * self.padding[0],
            self.inner[1] + 2 * self.padding[1],
        ]
    }

    /// Copies `image` (`[C, H, W]`) inside the (untouched, zero) borders.
    fn fill(&mut self, image: &[f32]) {
        let ([ph, pw], [h, w], [ah, aw]) = (self.padding, self.inner, self.outer());
        let rows = self
            .data
            .chunks_exact_mut(ah * aw)
            .flat_map(|plane| plane.chunks_exact_mut(aw).skip(ph).take(h));
        for (row, src) in rows.zip(image.chunks_exact(w)) {
            row[pw..pw + w].copy_from_slice(src);
        }
    }

    /// Copies the inside back out to `image`, dropping the borders.
    fn crop_into(&self, image: &mut [f32]) {
        let ([ph, pw], [h, w], [ah, aw]) = (self.padding, self.inner, self.outer());
        let rows = self
            .data
            .chunks_exact(ah * aw)
            .flat_map(|plane| plane.chunks_exact(aw).skip(ph).take(h));
        for (row, dst) in rows.zip(image.chunks_exact_mut(w)) {
            dst.copy_from_slice(&row[pw..pw + w]);
        }
    }

    /// The adjoint of [`Padded::im2col`] at `start` zero: zeroes the
    /// scratch, then adds each entry of `cols` onto the pixel it was read from.
    fn col2im(&mut self, kernel: [usize; 2], out: [usize; 2], cols: &[f32]) {
        let ([oh, ow], [kh, kw], [ah, aw]) = (out, kernel, self.outer());
        self.data.fill(0.0);
        let mut rows = cols.chunks_exact(oh * ow);
        for plane in self.data.chunks_exact_mut(ah * aw) {
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = rows.next().expect("one im2col row per channel and offset");
                    for (y, src) in row.chunks_exact(ow).enumerate() {
                        let dst = &mut plane[(y + ki) * aw + kj..][..ow];
                        for (d, v) in dst.iter_mut().zip(src) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }

    /// The `kernel`-sized windows of each plane whose top left corners are
    /// `start + (y, x)` for the `out` output pixels `(y, x)`: row
    /// `(c, ki, kj)` of the `[C*KH*KW, OH*OW]` matrix `cols` holds, for each
    /// output pixel, the padded pixel `(start + y + ki, start + x + kj)` of
    /// channel `c`. Its product with `[O, C*KH*KW]` weights is a convolution.
    fn im2col(&self, kernel: [usize; 2], out: [usize; 2], start: [usize; 2], cols: &mut [f32]) {
        let ([oh, ow], [kh, kw], [_, aw]) = (out, kernel, self.outer());
        let mut rows = cols.chunks_exact_mut(oh * ow);
        for plane in self.data.chunks_exact(self.outer().iter().product()) {
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = rows.next().expect("one im2col row per channel and offset");
                    for (y, dst) in row.chunks_exact_mut(ow).enumerate() {
                        let from = (start[0] + y + ki) * aw + start[1] + kj;
                        dst.copy_from_slice(&plane[from..from + ow]);
                    }
                }
            }
        }
    }
}

/// How many images each rayon task takes at least:
/// setting up a task's scratch space (about a megabyte, zeroed) pays off
/// from about [`TASK_IMAGES`] images on, so a small batch is split once per
/// thread and a large one into tasks of that size, which balance the load.
fn images_per_task(batch: usize) -> usize {
    batch
        .div_ceil(rayon::current_num_threads())
        .clamp(1, TASK_IMAGES)
}

/// See [`images_per_task`].
const TASK_IMAGES: usize = 8;

/// Checks the slices against `s`; panics with the mismatch otherwise.
fn check(s: &ConvShape, x: &[f32], weight: &[f32]) {
    assert!(
        s.output_size().is_some(),
        "kernel larger than the padded input: {s:?}"
    );
    assert_eq!(x.len(), s.batch * s.image_len(), "input is not {s:?}");
    assert_eq!(
        weight.len(),
        s.out_channels * s.patch_len(),
        "weights are not {s:?}"
    );
}

/// The convolution of `x` (NCHW) with `weight` (OIHW) plus `bias` (one per
/// output channel): NCHW, `[batch, out_channels, OH, OW]`.
pub fn conv2d_forward(x: &[f32], weight: &[f32], bias: &[f32], s: &ConvShape) -> Vec<f32> {
    check(s, x, weight);
    assert_eq!(bias.len(), s.out_channels, "bias is not {s:?}");
    let (k, n) = (s.patch_len(), s.pixels());
    let mut out = par_vec(s.batch * s.out_channels * n, 0.0);
    if s.batch == 0 || n == 0 {
        return out;
    }
    let w = View::rows(weight, s.out_channels, k);
    out.par_chunks_exact_mut(s.out_channels * n)
        .zip(x.par_chunks_exact(s.image_len()))
        .with_min_len(images_per_task(s.batch))
        .for_each_init(
            || (Padded::input(s), vec![0.0; k * n]),
            |(padded, cols), (y, image)| {
                padded.fill(image);
                padded.im2col(s.kernel, s.out(), [0, 0], cols);
                for (row, &b) in y.chunks_exact_mut(n).zip(bias) {
                    row.fill(b);
                }
                matmul(y, true, w, View::rows(cols, k, n), false);
            },
        );
    out
}

/// Weight and bias gradients summed over some images, with the scratch
/// space each image needs: its padded copy and im2col matrix, and for the
/// input gradient the output gradient's.
struct ParamSums {
    /// The weight gradient transposed, `[C*KH*KW, O]`: gemm accumulates into
    /// it without packing the im2col matrix.
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    padded: Padded,
    cols: Vec<f32>,
    /// The padded input gradient, when wanted.
    padded_grad: Option<Padded>,
}

impl ParamSums {
    fn new(s: &ConvShape, want_input: bool) -> ParamSums {
        ParamSums {
            weight_t: vec![0.0; s.out_channels * s.patch_len()],
            bias: vec![0.0; s.out_channels],
            padded: Padded::input(s),
            cols: vec![0.0; s.patch_len() * s.pixels()],
            padded_grad: want_input.then(|| Padded::input(s)),
        }
    }

    fn add(mut self, other: ParamSums) -> ParamSums {
        for (a, b) in self.weight_t.iter_mut().zip(&other.weight_t) {
            *a += b;
        }
        for (a, b) in self.bias.iter_mut().zip(&other.bias) {
            *a += b;
        }
        self
    }
}

/// `v`'s sum in sixteen lanes, which the compiler vectorises (a plain
/// sequential sum waits on each addition).
fn lane_sum(v: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = v.chunks_exact(lanes.len());
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The gradients of [`conv2d_forward`] given the output's gradient `grad`
/// (NCHW); the input's only when `want_input` (a first layer's input needs none).
pub fn conv2d_backward(
    x: &[f32],
    weight: &[f32],
    grad: &[f32],
    s: &ConvShape,
    want_input: bool,
) -> ConvGrads {
    check(s, x, weight);
    let (k, n, o) = (s.patch_len(), s.pixels(), s.out_channels);
    assert_eq!(grad.len(), s.batch * o * n, "output gradient is not {s:?}");
    let w_t = View::transposed(weight, k, o);
    // Without an input gradient, one placeholder element per image.
    let gx_len = if want_input { s.image_len() } else { 1 };
    let mut gx = par_vec(s.batch * gx_len, 0.0);
    let sums = x
        .par_chunks_exact(s.image_len())
        .zip(grad.par_chunks_exact(o * n))
        .zip(gx.par_chunks_exact_mut(gx_len))
        .with_min_len(images_per_task(s.batch))
        .fold(
            || ParamSums::new(s, want_input),
            |mut acc, ((image, g), gx)| {
                acc.padded.fill(image);
                acc.padded.im2col(s.kernel, s.out(), [0, 0], &mut acc.cols);
                let cols_t = View::transposed(&acc.cols, n, k);
                matmul_col_major(&mut acc.weight_t, true, View::rows(g, o, n), cols_t, false);
                for (b, row) in acc.bias.iter_mut().zip(g.chunks_exact(n)) {
                    *b += lane_sum(row);
                }
                if let Some(padded_grad) = &mut acc.padded_grad {
                    matmul(&mut acc.cols, false, w_t, View::rows(g, o, n), false);
                    padded_grad.col2im(s.kernel, s.out(), &acc.cols);
                    padded_grad.crop_into(gx);
                }
                acc
            },
        )
        .reduce_with(ParamSums::add)
        .unwrap_or_else(|| ParamSums::new(s, false));
    ConvGrads {
        input: want_input.then_some(gx),
        weight: transpose(&sums.weight_t, k, o),
        bias: sums.bias,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition.
    fn naive_forward(x: &[f32], w: &[f32], b: &[f32], s: &ConvShape) -> Vec<f32> {
        let [oh, ow] = s.out();
        let mut out = Vec::new();
        for n in 0..s.batch {
            for (o, &bias) in b.iter().enumerate() {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = bias;
                        for c in 0..s.in_channels {
                            for ki in 0..s.kernel[0] {
                                for kj in 0..s.kernel[1] {
                                    let iy = (oy + ki) as isize - s.padding[0] as isize;
                                    let ix = (ox + kj) as isize - s.padding[1] as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= s.height as isize
                                        || ix >= s.width as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * s.in_channels + c) * s.height + iy as usize)
                                        * s.width
                                        + ix as usize;
                                    let wi = ((o * s.in_channels + c) * s.kernel[0] + ki)
                                        * s.kernel[1]
                                        + kj;
                                    acc += x[xi] * w[wi];
                                }
                            }
                        }
                        out.push(acc);
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 16) % 200) as f32 / 100.0
                    - 1.0
            })
            .collect()
    }

    fn shapes() -> Vec<ConvShape> {
        let s = |batch, in_channels, height, width, out_channels, kernel, padding| ConvShape {
            batch,
            in_channels,
            height,
            width,
            out_channels,
            kernel,
            padding,
        };
        vec![
            s(3, 2, 7, 6, 4, [5, 5], [2, 2]),
            s(2, 3, 8, 8, 5, [5, 5], [0, 0]),
            s(1, 1, 4, 9, 3, [3, 2], [1, 0]),
            s(2, 2, 3, 3, 2, [5, 5], [2, 2]),
        ]
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-3 * (1.0 + w.abs()),
                "element {i}: {g} != {w}"
            );
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for s in shapes() {
            let [o, c, k] = [s.out_channels, s.in_channels, s.kernel[0] * s.kernel[1]];
            let x = values(s.batch * s.image_len(), 1);
            let w = values(o * c * k, 2);
            let b = values(o, 3);
            assert_close(
                &conv2d_forward(&x, &w, &b, &s),
                &naive_forward(&x, &w, &b, &s),
            );
        }
    }

    /// The backward pass is the transpose of the forward one: for any output
    /// gradient `g`, `<g, conv(x + e_i)> - <g, conv(x)>` is the input
    /// gradient's entry `i`, and likewise for weights and bias (the
    /// convolution is linear in each, so the difference is exact).
    #[test]
    fn backward_is_the_forward_pass_differentiated() {
        for s in shapes() {
            let [o, c, k] = [s.out_channels, s.in_channels, s.kernel[0] * s.kernel[1]];
            let x = values(s.batch * s.image_len(), 4);
            let w = values(o * c * k, 5);
            let b = values(o, 6);
            let y = naive_forward(&x, &w, &b, &s);
            let g = values(y.len(), 7);
            let dot = |y2: &[f32]| -> f32 {
                g.iter()
                    .zip(y2.iter().zip(&y))
                    .map(|(g, (a, b))| g * (a - b))
                    .sum()
            };
            let grads = conv2d_backward(&x, &w, &g, &s, true);
            let bump = |v: &[f32], i: usize| {
                let mut v = v.to_vec();
                v[i] += 1.0;
                v
            };
            let gx: Vec<f32> = (0..x.len())
                .map(|i| dot(&naive_forward(&bump(&x, i), &w, &b, &s)))
                .collect();
            let gw: Vec<f32> = (0..w.len())
                .map(|i| dot(&naive_forward(&x, &bump(&w, i), &b, &s)))
                .collect();
            let gb: Vec<f32> = (0..b.len())
                .map(|i| dot(&naive_forward(&x, &w, &bump(&b, i), &s)))
                .collect();
            assert_close(grads.input.as_deref().expect("asked for"), &gx);
            assert_close(&grads.weight, &gw);
            assert_close(&grads.bias, &gb);
            let params_only = conv2d_backward(&x, &w, &g, &s, false);
            assert!(params_only.input.is_none());
            assert_close(&params_only.weight, &gw);
            assert_close(&params_only.bias, &gb);
        }
    }

    #[test]
    fn a_kernel_larger_than_the_padded_input_has_no_output_size() {
        let s = ConvShape {
            batch: 1,
            in_channels: 1,
            height: 2,
            width: 2,
            out_channels: 1,
            kernel: [5, 5],
            padding: [1, 1],
        };
        assert_eq!(s.output_size(), None);
    }
}
