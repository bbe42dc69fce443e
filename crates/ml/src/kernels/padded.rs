//! A scratch copy of one image, zero-padded and channel-last
//! (`[H + 2*PH, W + 2*PW, C]`), from which an output region's im2col
//! matrix is a copy of whole runs: the taps along a kernel row, every
//! channel of each, sit side by side.

use super::region::Region;

/// One padded, channel-last image.
pub(super) struct Padded {
    data: Vec<f32>,
    channels: usize,
    /// Height and width of the image inside.
    inner: [usize; 2],
    /// Rows above and below, columns left and right.
    padding: [usize; 2],
}

impl Padded {
    /// A zero scratch for `channels` planes of `inner` pixels padded by
    /// `padding`.
    pub(super) fn new(channels: usize, inner: [usize; 2], padding: [usize; 2]) -> Padded {
        let [ah, aw] = outer(inner, padding);
        Padded {
            data: vec![0.0; ah * aw * channels],
            channels,
            inner,
            padding,
        }
    }

    /// Padded width.
    fn width(&self) -> usize {
        outer(self.inner, self.padding)[1]
    }

    /// The offset of padded pixel `(y, x)`'s first channel.
    fn at(&self, y: usize, x: usize) -> usize {
        (y * self.width() + x) * self.channels
    }

    /// Copies `image` (`[C, H, W]`) inside the (untouched, zero) borders.
    pub(super) fn fill(&mut self, image: &[f32]) {
        let ([h, w], [ph, pw], c) = (self.inner, self.padding, self.channels);
        for y in 0..h {
            let first = self.at(y + ph, pw);
            let row = &mut self.data[first..first + w * c];
            let src = &image[y * w..];
            for (x, pixel) in row.chunks_exact_mut(c).enumerate() {
                for (ch, v) in pixel.iter_mut().enumerate() {
                    *v = src[ch * h * w + x];
                }
            }
        }
    }

    /// Copies the inside out to `image` (`[C, H, W]`), dropping the borders.
    pub(super) fn crop_into(&self, image: &mut [f32]) {
        let ([h, w], [ph, pw], c) = (self.inner, self.padding, self.channels);
        for y in 0..h {
            let first = self.at(y + ph, pw);
            let row = &self.data[first..first + w * c];
            for (x, pixel) in row.chunks_exact(c).enumerate() {
                for (ch, &v) in pixel.iter().enumerate() {
                    image[ch * h * w + y * w + x] = v;
                }
            }
        }
    }

    /// Zeroes the scratch, borders included.
    pub(super) fn clear(&mut self) {
        self.data.fill(0.0);
    }

    /// The im2col matrix of region `r`, pixel-major: row `p` of `cols`
    /// (`[len, |taps rows| * |taps columns| * C]`) holds, for the block's
    /// `p`-th pixel `(y, x)` (row-major), the padded pixels
    /// `(y + ky, x + kx)` of every tap, in `(ky, kx, channel)` order. Its
    /// product with weights in the same order is the convolution.
    pub(super) fn im2col(&self, r: &Region, cols: &mut [f32]) {
        let run = r.taps[1].len() * self.channels;
        if run == 0 {
            return;
        }
        let mut runs = cols.chunks_exact_mut(run);
        for y in r.pixels[0].clone() {
            for x in r.pixels[1].clone() {
                for ky in r.taps[0].clone() {
                    let from = self.at(y + ky, x + r.taps[1].start);
                    let dst = runs.next().expect("one run per pixel and kernel row");
                    dst.copy_from_slice(&self.data[from..from + run]);
                }
            }
        }
    }

    /// The adjoint of [`Padded::im2col`]: adds each entry of `cols` onto
    /// the padded pixel it was read from.
    pub(super) fn col2im_add(&mut self, r: &Region, cols: &[f32]) {
        let run = r.taps[1].len() * self.channels;
        if run == 0 {
            return;
        }
        let mut runs = cols.chunks_exact(run);
        for y in r.pixels[0].clone() {
            for x in r.pixels[1].clone() {
                for ky in r.taps[0].clone() {
                    let from = self.at(y + ky, x + r.taps[1].start);
                    let src = runs.next().expect("one run per pixel and kernel row");
                    for (d, v) in self.data[from..from + run].iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// Padded height and width.
fn outer(inner: [usize; 2], padding: [usize; 2]) -> [usize; 2] {
    [inner[0] + 2 * padding[0], inner[1] + 2 * padding[1]]
}
