//! The output pixels of a zero-padded convolution split into rectangular
//! regions by which kernel taps read inside the image, so that no product
//! multiplies padding. With a 5x5 kernel and padding 2 on 14x14 images, 16 %
//! of an im2col matrix is padding; the regions below skip all but 2 % of it.

use std::ops::Range;

use super::conv::ConvShape;

/// A block of output pixels, and the kernel taps to multiply for them:
/// every tap that reads inside the image for some pixel of the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Region {
    /// Output rows and columns of the block.
    pub(super) pixels: [Range<usize>; 2],
    /// Kernel rows and columns to multiply.
    pub(super) taps: [Range<usize>; 2],
}

impl Region {
    /// Rows and columns of the block.
    pub(super) fn size(&self) -> [usize; 2] {
        [self.pixels[0].len(), self.pixels[1].len()]
    }

    /// Output pixels in the block.
    pub(super) fn len(&self) -> usize {
        self.pixels[0].len() * self.pixels[1].len()
    }

    /// Rows of the block's im2col matrix: one per input channel and tap.
    pub(super) fn patch_len(&self, channels: usize) -> usize {
        channels * self.taps[0].len() * self.taps[1].len()
    }

    /// Every output pixel of `s` with every tap, padding included.
    pub(super) fn whole(s: &ConvShape) -> Region {
        let [oh, ow] = s.output_size().unwrap_or([0, 0]);
        Region {
            pixels: [0..oh, 0..ow],
            taps: [0..s.kernel[0], 0..s.kernel[1]],
        }
    }

    /// The block's columns of `full` (`[rows, OH*OW]`, one output plane
    /// per row, `out` = `[OH, OW]`) into `block` (`[rows, len]`).
    pub(super) fn gather(&self, full: &[f32], out: [usize; 2], block: &mut [f32]) {
        let [n, w] = [self.len(), self.size()[1]];
        for (plane, dst) in full
            .chunks_exact(out[0] * out[1])
            .zip(block.chunks_exact_mut(n))
        {
            for (y, row) in self.pixels[0].clone().zip(dst.chunks_exact_mut(w)) {
                let from = y * out[1] + self.pixels[1].start;
                row.copy_from_slice(&plane[from..from + w]);
            }
        }
    }

    /// Writes `block` (`[len, rows]`, pixel-major) into the block's
    /// columns of `full` (`[rows, OH*OW]`, one output plane per row).
    pub(super) fn scatter_pixels(&self, block: &[f32], out: [usize; 2], full: &mut [f32]) {
        let rows = block.len() / self.len().max(1);
        let w = self.size()[1];
        let mut pixels = block.chunks_exact(rows.max(1));
        for y in self.pixels[0].clone() {
            let at = y * out[1] + self.pixels[1].start;
            for x in at..at + w {
                let pixel = pixels.next().expect("one block row per pixel");
                for (plane, &v) in full.chunks_exact_mut(out[0] * out[1]).zip(pixel) {
                    plane[x] = v;
                }
            }
        }
    }

    /// The rows of an im2col matrix in `(ky, kx, channel)` order (the
    /// columns of weights in that order) that the block multiplies: one
    /// run per kernel row it takes.
    pub(super) fn tap_runs(&self, s: &ConvShape) -> impl Iterator<Item = Range<usize>> {
        let ([_, kw], c) = (s.kernel, s.in_channels);
        let tx = self.taps[1].clone();
        self.taps[0]
            .clone()
            .map(move |ky| (ky * kw + tx.start) * c..(ky * kw + tx.end) * c)
    }

    /// [`Region::tap_runs`] as one range, when the block takes whole
    /// kernel rows.
    pub(super) fn tap_range(&self, s: &ConvShape) -> Option<Range<usize>> {
        let ([_, kw], c) = (s.kernel, s.in_channels);
        (self.taps[1].len() == kw).then(|| self.taps[0].start * kw * c..self.taps[0].end * kw * c)
    }
}

/// Runs of output coordinates along one axis that read the same kernel
/// taps inside the image, with those taps: output `y` reads input
/// `y + t - padding` at tap `t`.
fn runs(
    out: usize,
    padding: usize,
    kernel: usize,
    input: usize,
) -> Vec<(Range<usize>, Range<usize>)> {
    let taps = |y: usize| {
        let first = padding.saturating_sub(y).min(kernel);
        let end = (padding + input).saturating_sub(y).min(kernel).max(first);
        first..end
    };
    let mut runs: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    for y in 0..out {
        let t = taps(y);
        match runs.last_mut() {
            Some((ys, last)) if *last == t => ys.end = y + 1,
            _ => runs.push((y..y + 1, t)),
        }
    }
    runs
}

/// The regions of `s`'s output: each row run whose taps are the whole
/// kernel's height split into column runs; each other row run (the rows
/// next to the top and bottom padding) one band across the full width,
/// which keeps every block at least a row wide for the matrix multiply.
pub(super) fn regions(s: &ConvShape) -> Vec<Region> {
    let Some([oh, ow]) = s.output_size() else {
        return Vec::new();
    };
    let [kh, kw] = s.kernel;
    let columns = runs(ow, s.padding[1], kw, s.width);
    let mut regions = Vec::new();
    for (ys, ty) in runs(oh, s.padding[0], kh, s.height) {
        if ty.len() == kh {
            for (xs, tx) in &columns {
                regions.push(Region {
                    pixels: [ys.clone(), xs.clone()],
                    taps: [ty.clone(), tx.clone()],
                });
            }
        } else {
            regions.push(Region {
                pixels: [ys, 0..ow],
                taps: [ty, 0..kw],
            });
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(height: usize, width: usize, kernel: [usize; 2], padding: [usize; 2]) -> ConvShape {
        ConvShape {
            batch: 1,
            in_channels: 2,
            height,
            width,
            out_channels: 3,
            kernel,
            padding,
        }
    }

    #[test]
    fn runs_group_outputs_by_the_taps_inside_the_image() {
        assert_eq!(
            runs(14, 2, 5, 14),
            vec![
                (0..1, 2..5),
                (1..2, 1..5),
                (2..12, 0..5),
                (12..13, 0..4),
                (13..14, 0..3)
            ]
        );
        assert_eq!(runs(4, 0, 5, 8), vec![(0..4, 0..5)]);
        // Padding wider than the kernel: the first two and last two
        // outputs read only padding.
        assert_eq!(
            runs(8, 3, 2, 3),
            vec![
                (0..2, 2..2),
                (2..3, 1..2),
                (3..5, 0..2),
                (5..6, 0..1),
                (6..8, 0..0)
            ]
        );
        // A kernel larger than the image: no output reads every tap.
        assert_eq!(
            runs(3, 2, 5, 3),
            vec![(0..1, 2..5), (1..2, 1..4), (2..3, 0..3)]
        );
    }

    #[test]
    fn regions_cover_every_output_pixel_once_and_every_tap_inside_the_image() {
        for s in [
            shape(14, 14, [5, 5], [2, 2]),
            shape(28, 28, [5, 5], [2, 2]),
            shape(7, 6, [5, 5], [2, 2]),
            shape(3, 3, [5, 5], [2, 2]),
            shape(3, 3, [2, 2], [3, 3]),
            shape(4, 9, [3, 2], [1, 0]),
            shape(8, 8, [5, 5], [0, 0]),
        ] {
            let [oh, ow] = s.output_size().unwrap();
            let mut covered = vec![0; oh * ow];
            for r in regions(&s) {
                for y in r.pixels[0].clone() {
                    for x in r.pixels[1].clone() {
                        covered[y * ow + x] += 1;
                        for ky in 0..s.kernel[0] {
                            for kx in 0..s.kernel[1] {
                                let iy = (y + ky).checked_sub(s.padding[0]);
                                let ix = (x + kx).checked_sub(s.padding[1]);
                                let inside = iy.is_some_and(|i| i < s.height)
                                    && ix.is_some_and(|i| i < s.width);
                                if inside {
                                    assert!(
                                        r.taps[0].contains(&ky) && r.taps[1].contains(&kx),
                                        "{s:?}: pixel ({y}, {x}) misses tap ({ky}, {kx})"
                                    );
                                }
                            }
                        }
                    }
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "{s:?}: {covered:?}");
        }
    }

    #[test]
    fn regions_of_the_cnns_second_convolution_skip_most_padding() {
        let s = shape(14, 14, [5, 5], [2, 2]);
        let multiplied: usize = regions(&s)
            .iter()
            .map(|r| r.len() * r.taps[0].len() * r.taps[1].len())
            .sum();
        let inside = 64 * 64; // 64 taps inside the image per output row and column
        assert_eq!(multiplied, 4180);
        assert!(multiplied < 196 * 25 && multiplied * 100 < inside * 103);
    }
}
