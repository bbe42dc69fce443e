//! One image's convolution on planar copies, for inputs with few channels
//! (a network's first layer): im2col rows are whole output rows of one
//! channel at one tap, long runs to copy, where a channel-last copy would
//! give runs of a few values; the product is written row-major, one output
//! plane per row, as the layer's output is laid out.

use super::conv::ConvShape;
use super::matmul::{View, matmul, matmul_col_major};

/// A scratch copy of one image with zero padding around each plane,
/// `[C, H + 2*PH, W + 2*PW]`, so that every window row is a plain slice.
struct Planes {
    data: Vec<f32>,
    /// Height and width of the image inside.
    inner: [usize; 2],
    /// Rows above and below, columns left and right.
    padding: [usize; 2],
}

impl Planes {
    /// A zero scratch for the input images of `s`, padded as `s` pads them.
    fn input(s: &ConvShape) -> Planes {
        let [ph, pw] = s.padding;
        let plane = (s.height + 2 * ph) * (s.width + 2 * pw);
        Planes {
            data: vec![0.0; s.in_channels * plane],
            inner: [s.height, s.width],
            padding: s.padding,
        }
    }

    /// Padded height and width.
    fn outer(&self) -> [usize; 2] {
        [
            self.inner[0] + 2 * self.padding[0],
            self.inner[1] + 2 * self.padding[1],
        ]
    }

    /// The rows of each plane that hold the image, not the padding.
    fn interior_rows(&mut self) -> impl Iterator<Item = &mut [f32]> {
        let ([ph, pw], [h, w], [ah, aw]) = (self.padding, self.inner, self.outer());
        self.data
            .chunks_exact_mut(ah * aw)
            .flat_map(move |plane| plane.chunks_exact_mut(aw).skip(ph).take(h))
            .map(move |row| &mut row[pw..pw + w])
    }

    /// Copies `image` (`[C, H, W]`) inside the (untouched, zero) borders.
    fn fill(&mut self, image: &[f32]) {
        let w = self.inner[1];
        for (row, src) in self.interior_rows().zip(image.chunks_exact(w)) {
            row.copy_from_slice(src);
        }
    }

    /// Copies the inside back out to `image`, dropping the borders.
    fn crop_into(&mut self, image: &mut [f32]) {
        let w = self.inner[1];
        for (row, dst) in self.interior_rows().zip(image.chunks_exact_mut(w)) {
            dst.copy_from_slice(row);
        }
    }

    /// The adjoint of [`Planes::im2col`]: zeroes the scratch, then adds
    /// each entry of `cols` onto the pixel it was read from.
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

    /// The `kernel`-sized windows of each plane at the `out` output pixels:
    /// row `(c, ki, kj)` of the `[C*KH*KW, OH*OW]` matrix `cols` holds, for
    /// each output pixel `(y, x)`, the padded pixel `(y + ki, x + kj)` of
    /// channel `c`. Its product with OIHW weights is a convolution.
    fn im2col(&self, kernel: [usize; 2], out: [usize; 2], cols: &mut [f32]) {
        let ([oh, ow], [kh, kw], [ah, aw]) = (out, kernel, self.outer());
        let mut rows = cols.chunks_exact_mut(oh * ow);
        for plane in self.data.chunks_exact(ah * aw) {
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = rows.next().expect("one im2col row per channel and offset");
                    for (y, dst) in row.chunks_exact_mut(ow).enumerate() {
                        let from = (y + ki) * aw + kj;
                        dst.copy_from_slice(&plane[from..from + ow]);
                    }
                }
            }
        }
    }
}

/// One thread's scratch for planar convolutions of `s`'s images.
pub(super) struct Planar {
    padded: Planes,
    /// The im2col matrix, `[C*KH*KW, OH*OW]`, then its gradient.
    cols: Vec<f32>,
    /// The padded input gradient, when wanted.
    padded_grad: Option<Planes>,
}

impl Planar {
    pub(super) fn new(s: &ConvShape, want_input: bool) -> Planar {
        Planar {
            padded: Planes::input(s),
            cols: vec![0.0; s.patch_len() * s.pixels()],
            padded_grad: want_input.then(|| Planes::input(s)),
        }
    }

    /// `y` (`[O, OH*OW]`) = the convolution of `image` with OIHW `weight`,
    /// plus `bias`.
    pub(super) fn forward(
        &mut self,
        s: &ConvShape,
        image: &[f32],
        weight: &[f32],
        bias: &[f32],
        y: &mut [f32],
    ) {
        let (k, n, o) = (s.patch_len(), s.pixels(), s.out_channels);
        self.padded.fill(image);
        self.padded.im2col(s.kernel, s.out(), &mut self.cols);
        for (row, &b) in y.chunks_exact_mut(n).zip(bias) {
            row.fill(b);
        }
        let w = View::rows(weight, o, k);
        matmul(y, true, w, View::rows(&self.cols, k, n), false);
    }

    /// Adds the weight gradient given the output's gradient `grad`
    /// (`[O, OH*OW]`) to `weight_t` (transposed, `[C*KH*KW, O]`: gemm
    /// accumulates into it without packing the im2col matrix), and writes
    /// the input gradient to `gx` when this scratch was made for one.
    pub(super) fn backward(
        &mut self,
        s: &ConvShape,
        image: &[f32],
        weight: &[f32],
        grad: &[f32],
        weight_t: &mut [f32],
        gx: &mut [f32],
    ) {
        let (k, n, o) = (s.patch_len(), s.pixels(), s.out_channels);
        let g = View::rows(grad, o, n);
        self.padded.fill(image);
        self.padded.im2col(s.kernel, s.out(), &mut self.cols);
        let cols_t = View::transposed(&self.cols, n, k);
        matmul_col_major(weight_t, true, g, cols_t, false);
        if let Some(padded_grad) = &mut self.padded_grad {
            matmul(
                &mut self.cols,
                false,
                View::transposed(weight, k, o),
                g,
                false,
            );
            padded_grad.col2im(s.kernel, s.out(), &self.cols);
            padded_grad.crop_into(gx);
        }
    }
}
