//! Stride-1, zero-padded 2-D convolution (PyTorch's `Conv2d` with
//! `stride=1, dilation=1, groups=1`) on NCHW images and OIHW weights, as
//! im2col plus matrix multiplies, image by image, images spread over the
//! current rayon pool: on planar copies for inputs with few channels
//! ([`Planar`]), else region by region on channel-last copies, skipping
//! the products with the zero padding ([`Regional`]).

use rayon::prelude::*;

use super::buffer::par_vec;
use super::matmul::transpose;
use super::planar::Planar;
use super::pool::{INACTIVE, PoolChoices, PoolShape, pool_plane, unpool_plane};
use super::regional::{Regional, Regions, channels_first};

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

    pub(super) fn out(&self) -> [usize; 2] {
        self.output_size()
            .expect("the kernel fits the padded input (checked by the caller)")
    }

    /// Elements of one input image (`C*H*W`).
    pub(super) fn image_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    /// Rows of the im2col matrix: one per weight of an output channel (`C*KH*KW`).
    pub(super) fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// Output pixels per channel (`OH*OW`).
    pub(super) fn pixels(&self) -> usize {
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

/// How a layer's images are convolved.
enum Method {
    /// On planar copies ([`Planar`]): inputs whose kernel rows span fewer
    /// than [`PLANAR_ROW`] values over all channels (a first layer).
    Planar,
    /// Region by region on channel-last copies ([`Regional`]).
    Regional(Regions),
}

/// See [`Method::Planar`]: with a 5x5 kernel, inputs of up to 3 channels.
const PLANAR_ROW: usize = 16;

impl Method {
    /// The method for `s`, with the weights it multiplies in the forward
    /// pass or, when not `forward`, for the input gradient.
    fn new(weight: &[f32], s: &ConvShape, forward: bool) -> Method {
        if s.in_channels * s.kernel[1] < PLANAR_ROW {
            Method::Planar
        } else {
            Method::Regional(Regions::new(weight, s, forward))
        }
    }

    /// One thread's scratch space.
    fn scratch(&self, s: &ConvShape, want_input: bool) -> Scratch<'_> {
        match self {
            Method::Planar => Scratch::Planar(Planar::new(s, want_input)),
            Method::Regional(regions) => {
                Scratch::Regional(regions, Regional::new(s, regions, want_input))
            }
        }
    }

    /// The weight gradient this method accumulates, in OIHW order.
    fn weight_grad(&self, sum: &[f32], s: &ConvShape) -> Vec<f32> {
        match self {
            Method::Planar => transpose(sum, s.patch_len(), s.out_channels),
            Method::Regional(_) => channels_first(sum, s),
        }
    }
}

/// A [`Method`]'s scratch space, with the regions it multiplies.
enum Scratch<'a> {
    Planar(Planar),
    Regional(&'a Regions, Regional),
}

impl Scratch<'_> {
    /// `y` (`[O, OH*OW]`) = the convolution of `image` plus `bias`.
    fn forward(
        &mut self,
        s: &ConvShape,
        (image, weight, bias): (&[f32], &[f32], &[f32]),
        y: &mut [f32],
    ) {
        match self {
            Scratch::Planar(p) => p.forward(s, image, weight, bias, y),
            Scratch::Regional(regions, r) => r.forward(s, regions, image, bias, y),
        }
    }

    /// Adds the weight gradient given the output's gradient `grad` to
    /// `weight_sum` (in the method's order), and writes the input gradient
    /// to `gx` when the scratch was made for one.
    fn backward(
        &mut self,
        s: &ConvShape,
        (image, weight, grad): (&[f32], &[f32], &[f32]),
        weight_sum: &mut [f32],
        gx: &mut [f32],
    ) {
        match self {
            Scratch::Planar(p) => p.backward(s, image, weight, grad, weight_sum, gx),
            Scratch::Regional(regions, r) => r.backward(s, regions, image, grad, weight_sum, gx),
        }
    }
}

/// `MaxPool2d(2)(relu(conv(x)))`: the convolution of `x` (NCHW) with
/// `weight` (OIHW) plus `bias` (one per output channel), then ReLU and 2x2
/// max-pooling, one image at a time, so that the convolution's output
/// never leaves the cache. Returns the pooled output, NCHW
/// `[batch, out_channels, OH/2, OW/2]`, and which input each output took.
pub fn conv2d_relu_pool_forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: &ConvShape,
) -> (Vec<f32>, PoolChoices) {
    check(s, x, weight);
    assert_eq!(bias.len(), s.out_channels, "bias is not {s:?}");
    let (n, o) = (s.pixels(), s.out_channels);
    let pool = pool_shape(s);
    let pooled = o * pool.out_len();
    let mut out = par_vec(s.batch * pooled, 0.0);
    let mut chosen = par_vec(s.batch * pooled, INACTIVE);
    if pooled > 0 {
        let method = Method::new(weight, s, true);
        out.par_chunks_exact_mut(pooled)
            .zip(chosen.par_chunks_exact_mut(pooled))
            .zip(x.par_chunks_exact(s.image_len()))
            .with_min_len(images_per_task(s.batch))
            .for_each_init(
                || (method.scratch(s, false), vec![0.0; o * n]),
                |(scratch, y), ((out, chosen), image)| {
                    scratch.forward(s, (image, weight, bias), y);
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
/// space each image needs.
struct ParamSums<'a> {
    /// The weight gradient, in its [`Method`]'s order.
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// One image's gradient with respect to the convolution's output.
    grad: Vec<f32>,
    scratch: Scratch<'a>,
}

impl<'a> ParamSums<'a> {
    fn new(s: &ConvShape, method: &'a Method, want_input: bool) -> ParamSums<'a> {
        let o = s.out_channels;
        ParamSums {
            weight: vec![0.0; o * s.patch_len()],
            bias: vec![0.0; o],
            grad: vec![0.0; o * s.pixels()],
            scratch: method.scratch(s, want_input),
        }
    }

    fn add(mut self, other: ParamSums<'a>) -> ParamSums<'a> {
        for (a, b) in self.weight.iter_mut().zip(&other.weight) {
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
    let method = Method::new(weight, s, false);
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
            || ParamSums::new(s, &method, want_input),
            |mut acc, (((image, g_pooled), chosen), gx)| {
                let planes = acc.grad.chunks_exact_mut(n);
                let pooled_planes = g_pooled
                    .chunks(pooled.max(1))
                    .zip(chosen.chunks(pooled.max(1)));
                for (plane, (g, chosen)) in planes.zip(pooled_planes) {
                    unpool_plane(g, chosen, &pool, plane);
                }
                for (b, row) in acc.bias.iter_mut().zip(acc.grad.chunks_exact(n)) {
                    *b += lane_sum(row);
                }
                let inputs = (image, weight, acc.grad.as_slice());
                acc.scratch.backward(s, inputs, &mut acc.weight, gx);
                acc
            },
        )
        .reduce_with(ParamSums::add)
        .unwrap_or_else(|| ParamSums::new(s, &method, false));
    ConvGrads {
        input: want_input.then_some(gx),
        weight: method.weight_grad(&sums.weight, s),
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

    /// Shapes that take each [`Method`].
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
        // Planar (few input channels), then regional.
        vec![
            s(3, 2, 7, 6, 4, [5, 5], [2, 2]),
            s(2, 3, 8, 8, 5, [5, 5], [0, 0]),
            s(1, 1, 4, 9, 3, [3, 2], [1, 0]),
            s(2, 2, 3, 3, 2, [5, 5], [2, 2]),
            s(6, 2, 5, 5, 3, [3, 3], [1, 1]),
            s(3, 4, 7, 6, 4, [5, 5], [2, 2]),
            s(2, 4, 8, 8, 3, [5, 5], [0, 0]),
            s(1, 8, 4, 9, 3, [3, 2], [1, 0]),
            s(2, 4, 3, 3, 2, [5, 5], [2, 2]),
            s(6, 6, 5, 5, 3, [3, 3], [1, 1]),
            // Padding wider than the kernel: border outputs read no tap.
            s(1, 8, 3, 3, 2, [2, 2], [3, 3]),
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
    fn the_shapes_tested_take_both_methods() {
        let planar: Vec<bool> = shapes()
            .iter()
            .map(|s| {
                let w = vec![0.0; s.out_channels * s.patch_len()];
                matches!(Method::new(&w, s, true), Method::Planar)
            })
            .collect();
        assert_eq!(planar, [vec![true; 5], vec![false; 6]].concat());
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
