//! One image's convolution on a channel-last padded copy ([`Padded`]),
//! region by region ([`super::region`]): the forward pass and the input
//! gradient multiply only the taps that read inside the image; the weight
//! gradient multiplies the whole image's im2col matrix at once (a region's
//! product would sum over a few pixels only).

use super::conv::ConvShape;
use super::matmul::{View, matmul, matmul_col_major, transpose};
use super::padded::Padded;
use super::region::{Region, regions};

/// The regions of `s`'s output (see [`super::region`]) with the weights
/// each multiplies, as a left operand gemm reads without packing:
/// column-major `[O, taps]` for the forward pass, row-major (so that its
/// transpose is column-major) for the input gradient.
pub(super) struct Regions {
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
    pub(super) fn new(weight: &[f32], s: &ConvShape, forward: bool) -> Regions {
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

/// OIHW `weight` as `[O, KH, KW, C]`: each filter transposed.
fn channels_last(weight: &[f32], s: &ConvShape) -> Vec<f32> {
    transpose_filters(weight, s.in_channels, s.kernel[0] * s.kernel[1])
}

/// `[O, KH, KW, C]` weights back in OIHW order.
pub(super) fn channels_first(weight: &[f32], s: &ConvShape) -> Vec<f32> {
    transpose_filters(weight, s.kernel[0] * s.kernel[1], s.in_channels)
}

/// Each `rows x cols` block of `weight` (one filter) transposed.
fn transpose_filters(weight: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    weight
        .chunks_exact((rows * cols).max(1))
        .flat_map(|filter| transpose(filter, rows, cols))
        .collect()
}

/// One thread's scratch for regional convolutions of `s`'s images.
pub(super) struct Regional {
    padded: Padded,
    /// An im2col matrix (a region's, or the whole image's), pixel-major,
    /// then a region's gradient of it.
    cols: Vec<f32>,
    /// A region's output, or its part of the output's gradient.
    block: Vec<f32>,
    /// The padded input gradient, when wanted.
    padded_grad: Option<Padded>,
}

impl Regional {
    pub(super) fn new(s: &ConvShape, regions: &Regions, want_input: bool) -> Regional {
        Regional {
            padded: padded_input(s),
            cols: vec![0.0; s.patch_len() * s.pixels()],
            block: vec![0.0; s.out_channels * regions.max_pixels],
            padded_grad: want_input.then(|| padded_input(s)),
        }
    }

    /// `y` (`[O, OH*OW]`) = the convolution of `image` plus `bias`, with
    /// the weights of `regions` (made for the forward pass).
    pub(super) fn forward(
        &mut self,
        s: &ConvShape,
        regions: &Regions,
        image: &[f32],
        bias: &[f32],
        y: &mut [f32],
    ) {
        let o = s.out_channels;
        self.padded.fill(image);
        for (r, copy) in &regions.blocks {
            let (k, len) = (r.patch_len(s.in_channels), r.len());
            let (cols, block) = (&mut self.cols[..k * len], &mut self.block[..o * len]);
            self.padded.im2col(r, cols);
            for pixel in block.chunks_exact_mut(o) {
                pixel.copy_from_slice(bias);
            }
            let w = regions.view(r, copy, s);
            matmul_col_major(block, true, w, View::transposed(cols, k, len), false);
            r.scatter_pixels(block, s.out(), y);
        }
    }

    /// Adds the weight gradient given the output's gradient `grad`
    /// (`[O, OH*OW]`) to `weight` (`[O, KH*KW*C]`, filters channel-last),
    /// and writes the input gradient to `gx` when this scratch was made for
    /// one, with the weights of `regions` (made for the input gradient).
    pub(super) fn backward(
        &mut self,
        s: &ConvShape,
        regions: &Regions,
        image: &[f32],
        grad: &[f32],
        weight: &mut [f32],
        gx: &mut [f32],
    ) {
        let (k, n, o) = (s.patch_len(), s.pixels(), s.out_channels);
        self.padded.fill(image);
        self.padded.im2col(&Region::whole(s), &mut self.cols);
        let g = View::rows(grad, o, n);
        matmul(weight, true, g, View::rows(&self.cols, n, k), false);
        let Some(padded_grad) = &mut self.padded_grad else {
            return;
        };
        padded_grad.clear();
        for (r, copy) in &regions.blocks {
            let (k, len) = (r.patch_len(s.in_channels), r.len());
            let cols = &mut self.cols[..k * len];
            let g = &mut self.block[..o * len];
            r.gather(grad, s.out(), g);
            let w_t = regions.view(r, copy, s).t();
            matmul_col_major(cols, false, w_t, View::rows(g, o, len), false);
            padded_grad.col2im_add(r, cols);
        }
        padded_grad.crop_into(gx);
    }
}

/// A padded scratch for one input image of `s`.
fn padded_input(s: &ConvShape) -> Padded {
    Padded::new(s.in_channels, [s.height, s.width], s.padding)
}
