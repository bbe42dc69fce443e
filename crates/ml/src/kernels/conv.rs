//! Stride-1, zero-padded 2-D convolution (PyTorch's `Conv2d` with
//! `stride=1, dilation=1, groups=1`) on NCHW images and OIHW weights, as
//! im2col plus matrix multiplies, image by image, images spread over the
//! current rayon pool. Each image is copied channel-last and padded
//! ([`Padded`]); the forward pass and the input gradient multiply region by
//! region ([`super::region`]), only the taps that read inside the image;
//! the weight gradient multiplies the whole image's im2col matrix at once.

use rayon::prelude::*;

use super::buffer::par_vec;
use super::matmul::{View, matmul, matmul_col_major, transpose};
use super::padded::Padded;
use super::pool::{INACTIVE, PoolChoices, PoolShape, pool_plane, unpool_plane};
use super::region::{Region, regions};

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

/// The pooling after the convolution `s`: one plane per image and output
/// channel.
fn pool_shape(s: &ConvShape) -> PoolShape {
    let [height, width] = s.out();
    PoolShape {
        planes: s.batch * s.out_channels,
        height,
        width,
    }
}

/// The regions of `s`'s output (see [`super::region`]) with the weights
/// each multiplies, as a left operand gemm reads without packing:
/// column-major `[O, taps]` for the forward pass, row-major (so that its
/// transpose is column-major) for the input gradient.
struct Regions {
    /// Each region, with its own copy of the weights when they are not a
    /// slice of `weight`.
    blocks: Vec<(Region, Option<Vec<f32>>)>,
    /// The layer's weights, filters channel-last: `[KH*KW*C, O]` for the
    /// forward pass, `[O, KH*KW*C]` for the input gradient.
    weight: Vec<f32>,
    forward: bool,
    /// Pixels of the largest block.
    max_pixels: usize,
}

impl Regions {
    fn new(weight: &[f32], s: &ConvShape, forward: bool) -> Regions {
        let (o, k) = (s.out_channels, s.patch_len());
        let mut weight = channels_last(weight, s);
        if forward {
            weight = transpose(&weight, o, k);
        }
        let blocks: Vec<_> = regions(s)
            .into_iter()
            .map(|r| {
                let copy = r.tap_range(s).is_none().then(|| {
                    let mut copy = Vec::with_capacity(o * r.patch_len(s.in_channels));
                    if forward {
                        for run in r.tap_runs(s) {
                            copy.extend_from_slice(&weight[run.start * o..run.end * o]);
                        }
                    } else {
                        for filter in weight.chunks_exact(k) {
                            for run in r.tap_runs(s) {
                                copy.extend_from_slice(&filter[run]);
                            }
                        }
                    }
                    copy
                });
                (r, copy)
            })
            .collect();
        let max_pixels = blocks.iter().map(|(r, _)| r.len()).max().unwrap_or(0);
        Regions {
            blocks,
            weight,
            forward,
            max_pixels,
        }
    }

    /// Region `r`'s weights, `[O, taps]`, with `copy` its own copy if any.
    fn view<'a>(&'a self, r: &Region, copy: &'a Option<Vec<f32>>, s: &ConvShape) -> View<'a> {
        let (o, k, k_r) = (s.out_channels, s.patch_len(), r.patch_len(s.in_channels));
        match (copy, self.forward) {
            (Some(w), true) => View::transposed(w, o, k_r),
            (Some(w), false) => View::rows(w, o, k_r),
            (None, forward) => {
                let taps = r
                    .tap_range(s)
                    .expect("a region without a copy takes whole rows");
                let all = if forward {
                    View::transposed(&self.weight, o, k)
                } else {
                    View::rows(&self.weight, o, k)
                };
                all.columns(taps.start, k_r)
            }
        }
    }
}

/// OIHW `weight` as `[O, KH, KW, C]`.
fn channels_last(weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let (c, taps) = (s.in_channels, s.kernel[0] * s.kernel[1]);
    let mut out = vec![0.0; weight.len()];
    for (src, dst) in weight
        .chunks_exact(c * taps)
        .zip(out.chunks_exact_mut(c * taps))
    {
        for (ch, plane) in src.chunks_exact(taps).enumerate() {
            for (t, &v) in plane.iter().enumerate() {
                dst[t * c + ch] = v;
            }
        }
    }
    out
}

/// `[O, KH, KW, C]` weights back in OIHW order.
fn channels_first(weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let (c, taps) = (s.in_channels, s.kernel[0] * s.kernel[1]);
    let mut out = vec![0.0; weight.len()];
    for (src, dst) in weight
        .chunks_exact(c * taps)
        .zip(out.chunks_exact_mut(c * taps))
    {
        for (ch, plane) in dst.chunks_exact_mut(taps).enumerate() {
            for (t, v) in plane.iter_mut().enumerate() {
                *v = src[t * c + ch];
            }
        }
    }
    out
}

/// A padded scratch for one input image of `s`.
fn padded_input(s: &ConvShape) -> Padded {
    Padded::new(s.in_channels, [s.height, s.width], s.padding)
}

/// `MaxPool2d(2)(relu(conv(x)))`: the convolution of `x` (NCHW) with
/// `weight` (OIHW) plus `bias` (one per output channel), then ReLU and 2x2
/// max-pooling, one image at a time, so that the convolution's output
/// never leaves the cache. Returns the pooled output, NCHW
/// `[batch, out_channels, OH/2, OW/2]`, and which input each output took.
/// Each region of the output multiplies only the taps that read inside
/// the image.
pub fn conv2d_relu_pool_forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: &ConvShape,
) -> (Vec<f32>, PoolChoices) {
    check(s, x, weight);
    assert_eq!(bias.len(), s.out_channels, "bias is not {s:?}");
    let (k, n, o) = (s.patch_len(), s.pixels(), s.out_channels);
    let pool = pool_shape(s);
    let pooled = o * pool.out_len();
    let mut out = par_vec(s.batch * pooled, 0.0);
    let mut chosen = par_vec(s.batch * pooled, INACTIVE);
    if pooled > 0 {
        let regions = Regions::new(weight, s, true);
        let cols = k * regions.max_pixels;
        out.par_chunks_exact_mut(pooled)
            .zip(chosen.par_chunks_exact_mut(pooled))
            .zip(x.par_chunks_exact(s.image_len()))
            .with_min_len(images_per_task(s.batch))
            .for_each_init(
                || {
                    let scratch = (vec![0.0; cols], vec![0.0; o * regions.max_pixels]);
                    (padded_input(s), scratch, vec![0.0; o * n])
                },
                |(padded, (cols, block), y), ((out, chosen), image)| {
                    padded.fill(image);
                    for (r, copy) in &regions.blocks {
                        let (k, len) = (r.patch_len(s.in_channels), r.len());
                        let (cols, block) = (&mut cols[..k * len], &mut block[..o * len]);
                        padded.im2col(r, cols);
                        for pixel in block.chunks_exact_mut(o) {
                            pixel.copy_from_slice(bias);
                        }
                        let w = regions.view(r, copy, s);
                        let cols = View::transposed(cols, k, len);
                        matmul_col_major(block, true, w, cols, false);
                        r.scatter_pixels(block, s.out(), y);
                    }
                    let planes = y.chunks_exact(n).zip(out.chunks_exact_mut(pooled / o));
                    for ((plane, out), chosen) in planes.zip(chosen.chunks_exact_mut(pooled / o)) {
                        pool_plane(plane, &pool, out, chosen);
                    }
                },
            );
    }
    (
        out,
        PoolChoices {
            shape: pool,
            chosen,
        },
    )
}

/// Weight and bias gradients summed over some images, with the scratch
/// space each image needs: its padded copy and im2col matrix, its output
/// gradient and a region's part of it, and for the input gradient its
/// padded copy.
struct ParamSums {
    /// The weight gradient, `[O, KH*KW*C]` (channel-last filters).
    weight: Vec<f32>,
    bias: Vec<f32>,
    padded: Padded,
    /// The whole image's im2col matrix, then a region's gradient of it.
    cols: Vec<f32>,
    /// One image's gradient with respect to the convolution's output.
    grad: Vec<f32>,
    /// A region's part of `grad`.
    grad_block: Vec<f32>,
    /// The padded input gradient, when wanted.
    padded_grad: Option<Padded>,
}

impl ParamSums {
    fn new(s: &ConvShape, regions: &Regions, want_input: bool) -> ParamSums {
        let o = s.out_channels;
        ParamSums {
            weight: vec![0.0; o * s.patch_len()],
            bias: vec![0.0; o],
            padded: padded_input(s),
            cols: vec![0.0; s.patch_len() * s.pixels()],
            grad: vec![0.0; o * s.pixels()],
            grad_block: vec![0.0; o * regions.max_pixels],
            padded_grad: want_input.then(|| padded_input(s)),
        }
    }

    fn add(mut self, other: ParamSums) -> ParamSums {
        for (a, b) in self.weight.iter_mut().zip(&other.weight) {
            *a += b;
        }
        for (a, b) in self.bias.iter_mut().zip(&other.bias) {
            *a += b;
        }
        self
    }

    /// Adds one image's gradients, given its input `image` and the
    /// gradient of the convolution's output in `self.grad`; writes its
    /// input gradient to `gx` when one is wanted. The weight gradient
    /// takes the whole image's im2col matrix (a product over every
    /// pixel); the input gradient multiplies region by region, only the
    /// taps inside the image.
    fn add_image(&mut self, s: &ConvShape, regions: &Regions, image: &[f32], gx: &mut [f32]) {
        let (k, n, o) = (s.patch_len(), s.pixels(), s.out_channels);
        for (b, row) in self.bias.iter_mut().zip(self.grad.chunks_exact(n)) {
            *b += lane_sum(row);
        }
        self.padded.fill(image);
        self.padded.im2col(&Region::whole(s), &mut self.cols);
        let g = View::rows(&self.grad, o, n);
        matmul(
            &mut self.weight,
            true,
            g,
            View::rows(&self.cols, n, k),
            false,
        );
        let Some(padded_grad) = &mut self.padded_grad else {
            return;
        };
        padded_grad.clear();
        for (r, copy) in &regions.blocks {
            let (k, len) = (r.patch_len(s.in_channels), r.len());
            let cols = &mut self.cols[..k * len];
            let g = &mut self.grad_block[..o * len];
            r.gather(&self.grad, s.out(), g);
            let w_t = regions.view(r, copy, s).t();
            matmul_col_major(cols, false, w_t, View::rows(g, o, len), false);
            padded_grad.col2im_add(r, cols);
        }
        padded_grad.crop_into(gx);
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

/// The gradients of [`conv2d_relu_pool_forward`] given the pooled output's
/// gradient `grad` (NCHW) and the forward pass's `choices`; the input's only
/// when `want_input` (a first layer's input needs none).
pub fn conv2d_relu_pool_backward(
    x: &[f32],
    weight: &[f32],
    grad: &[f32],
    choices: &PoolChoices,
    s: &ConvShape,
    want_input: bool,
) -> ConvGrads {
    check(s, x, weight);
    let (n, o) = (s.pixels(), s.out_channels);
    let pool = pool_shape(s);
    assert_eq!(choices.shape, pool, "pooling choices are not {s:?}");
    let pooled = pool.out_len();
    assert_eq!(
        grad.len(),
        s.batch * o * pooled,
        "output gradient is not {s:?}"
    );
    let regions = Regions::new(weight, s, false);
    // Without an input gradient, one placeholder element per image.
    let gx_len = if want_input { s.image_len() } else { 1 };
    let mut gx = par_vec(s.batch * gx_len, 0.0);
    let sums = x
        .par_chunks_exact(s.image_len())
        .zip(grad.par_chunks_exact(o * pooled.max(1)))
        .zip(choices.chosen.par_chunks_exact(o * pooled.max(1)))
        .zip(gx.par_chunks_exact_mut(gx_len))
        .with_min_len(images_per_task(s.batch))
        .fold(
            || ParamSums::new(s, &regions, want_input),
            |mut acc, (((image, g_pooled), chosen), gx)| {
                let planes = acc.grad.chunks_exact_mut(n);
                let pooled_planes = g_pooled
                    .chunks(pooled.max(1))
                    .zip(chosen.chunks(pooled.max(1)));
                for (plane, (g, chosen)) in planes.zip(pooled_planes) {
                    unpool_plane(g, chosen, &pool, plane);
                }
                acc.add_image(s, &regions, image, gx);
                acc
            },
        )
        .reduce_with(ParamSums::add)
        .unwrap_or_else(|| ParamSums::new(s, &regions, false));
    ConvGrads {
        input: want_input.then_some(gx),
        weight: channels_first(&sums.weight, s),
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
            s(6, 2, 5, 5, 3, [3, 3], [1, 1]),
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

    /// ReLU and 2x2 max-pooling of NCHW `y` by their definition, and for
    /// each input whether it takes its output's gradient (the first
    /// largest of its block, when positive).
    fn naive_relu_pool(y: &[f32], s: &ConvShape) -> (Vec<f32>, Vec<bool>) {
        let [oh, ow] = s.out();
        let mut pooled = Vec::new();
        let mut takes = vec![false; y.len()];
        for plane in 0..s.batch * s.out_channels {
            for py in 0..oh / 2 {
                for px in 0..ow / 2 {
                    let at = |dy, dx| plane * oh * ow + (2 * py + dy) * ow + 2 * px + dx;
                    let block = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                    let best = block.into_iter().fold(0.0f32, |m, i| m.max(y[i]));
                    pooled.push(best);
                    if let Some(&i) = block.iter().find(|&&i| y[i] == best && best > 0.0) {
                        takes[i] = true;
                    }
                }
            }
        }
        (pooled, takes)
    }

    #[test]
    fn forward_is_convolution_relu_and_pooling_by_their_definitions() {
        for s in shapes() {
            let [o, c, k] = [s.out_channels, s.in_channels, s.kernel[0] * s.kernel[1]];
            let x = values(s.batch * s.image_len(), 1);
            let w = values(o * c * k, 2);
            let b = values(o, 3);
            let (want, _) = naive_relu_pool(&naive_forward(&x, &w, &b, &s), &s);
            assert_close(&conv2d_relu_pool_forward(&x, &w, &b, &s).0, &want);
        }
    }

    /// The convolution is linear in its input, weights and bias, so with
    /// the convolution output's gradient `g` (the pooled gradient routed to
    /// the inputs that took it), `<g, conv(x + e_i)> - <g, conv(x)>` is the
    /// input gradient's entry `i`, and likewise for weights and bias.
    #[test]
    fn backward_is_the_forward_pass_differentiated() {
        for s in shapes() {
            let [o, c, k] = [s.out_channels, s.in_channels, s.kernel[0] * s.kernel[1]];
            let x = values(s.batch * s.image_len(), 4);
            let w = values(o * c * k, 5);
            let b = values(o, 6);
            let y = naive_forward(&x, &w, &b, &s);
            let (pooled, takes) = naive_relu_pool(&y, &s);
            let g_pooled = values(pooled.len(), 7);
            let [oh, ow] = s.out();
            let g: Vec<f32> = (0..y.len())
                .map(|i| {
                    let (plane, at) = (i / (oh * ow), i % (oh * ow));
                    let (py, px) = (at / ow / 2, at % ow / 2);
                    let inside = py < oh / 2 && px < ow / 2;
                    if takes[i] && inside {
                        g_pooled[(plane * (oh / 2) + py) * (ow / 2) + px]
                    } else {
                        0.0
                    }
                })
                .collect();
            let dot = |y2: &[f32]| -> f32 {
                g.iter()
                    .zip(y2.iter().zip(&y))
                    .map(|(g, (a, b))| g * (a - b))
                    .sum()
            };
            let (_, choices) = conv2d_relu_pool_forward(&x, &w, &b, &s);
            let grads = conv2d_relu_pool_backward(&x, &w, &g_pooled, &choices, &s, true);
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
            assert!(
                g.iter().any(|&v| v != 0.0),
                "some gradient reaches the convolution"
            );
            assert_close(grads.input.as_deref().expect("asked for"), &gx);
            assert_close(&grads.weight, &gw);
            assert_close(&grads.bias, &gb);
            let params_only = conv2d_relu_pool_backward(&x, &w, &g_pooled, &choices, &s, false);
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
