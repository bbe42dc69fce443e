//! A bounds-checked front to `gemm::gemm` for row-major `f32` matrices.

use gemm::Parallelism;
use rayon::prelude::*;

/// A read-only matrix view: element `(r, c)` is `data[r * row_stride + c * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// `data` as a row-major `rows x cols` matrix.
    pub(crate) fn rows(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View::strided(data, rows, cols, cols, 1)
    }

    /// The transpose of `data` taken as a row-major `cols x rows` matrix:
    /// a `rows x cols` view read down its columns.
    pub(crate) fn transposed(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View::strided(data, rows, cols, 1, rows)
    }

    /// Rows `first..first + rows` of this view.
    fn row_block(self, first: usize, rows: usize) -> View<'a> {
        let data = &self.data[first * self.row_stride..];
        View::strided(data, rows, self.cols, self.row_stride, self.col_stride)
    }

    /// This view's transpose.
    pub(crate) fn t(self) -> View<'a> {
        View::strided(
            self.data,
            self.cols,
            self.rows,
            self.col_stride,
            self.row_stride,
        )
    }

    /// Columns `first..first + cols` of this view.
    pub(crate) fn columns(self, first: usize, cols: usize) -> View<'a> {
        let data = &self.data[first * self.col_stride..];
        View::strided(data, self.rows, cols, self.row_stride, self.col_stride)
    }

    fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> View<'a> {
        let last = (rows.max(1) - 1) * row_stride + (cols.max(1) - 1) * col_stride;
        assert!(
            rows == 0 || cols == 0 || last < data.len(),
            "a {rows}x{cols} view needs more than {} elements",
            data.len()
        );
        View {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// `dst = a * b` (or `dst += a * b` with `accumulate`), `dst` row-major
/// `a.rows x b.cols`. Runs on the current rayon pool's threads when
/// `parallel`, else on the calling thread.
pub(crate) fn matmul(dst: &mut [f32], accumulate: bool, a: View, b: View, parallel: bool) {
    product(dst, false, accumulate, a, b, parallel);
}

/// [`matmul`] into a column-major `dst` (`dst[r + c * rows]`, the
/// transpose's row-major layout). gemm multiplies into a row-major
/// destination by transposing the problem, which makes it pack (copy) `b`
/// when `b` is column-major; into a column-major one it reads such a `b` in
/// place, which saves copying a large weight matrix or im2col matrix.
pub(crate) fn matmul_col_major(
    dst: &mut [f32],
    accumulate: bool,
    a: View,
    b: View,
    parallel: bool,
) {
    product(dst, true, accumulate, a, b, parallel);
}

/// Products with fewer multiply-adds run on one thread even when asked to
/// run in parallel: waking a second thread costs more than it saves below
/// this size.
const SPLIT_MACS: usize = 1 << 20;

/// Rows (row-major) or columns (column-major) of the destination a
/// thread's block holds at least, and terms each element sums at least, for
/// a product to be split: thinner blocks waste gemm's 16-wide vectors, and
/// a product with fewer terms is bound by writing its destination.
const MIN_BLOCK: usize = 16;

/// Destinations of at least this many elements are split over threads
/// however few terms each element sums (a dense layer's weight gradient at
/// batch 10).
const WIDE_DST: usize = 1 << 20;

/// Products into a destination with too few lines for blocks of lines
/// are split into strips across them from this size on: a strip costs an
/// allocation and two copies (at batch 10, the CNN's 10x3136x512 dense
/// layer gains from it, the MLP's 10x784x200 does not).
const STRIP_MACS: usize = 1 << 23;

/// From this size on a parallel product runs gemm's own parallel loop.
/// Below it, each thread multiplies one block of the destination with a
/// single-threaded gemm: gemm's loop synchronises its threads several times
/// per product, which for the MLPs' products costs more than it saves
/// (50x784x200 on two threads: 95-120 GFLOP/s in gemm's loop, 170-180 in
/// blocks; 50x3136x512: 220 against 200).
const GEMM_PARALLEL_MACS: usize = 1 << 25;

/// `dst (+)= a * b`, `dst` row-major or column-major.
fn product(dst: &mut [f32], col_major: bool, accumulate: bool, a: View, b: View, parallel: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions differ");
    assert_eq!(dst.len(), m * n, "destination is not {m}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let macs = m * n * k;
    // Contiguous lines of `dst` (columns when column-major, else rows),
    // and their length.
    let (lines, line_len) = if col_major { (n, m) } else { (m, n) };
    let thin = lines < MIN_BLOCK * threads;
    // Few terms per element but many elements: writing them is the work,
    // and two threads write faster than one.
    let short = k < MIN_BLOCK && m * n < WIDE_DST;
    let single = !parallel || threads == 1 || macs < SPLIT_MACS || short;
    if single || (thin && (line_len < MIN_BLOCK * threads || macs < STRIP_MACS)) {
        gemm_into(dst, col_major, accumulate, a, b, Parallelism::None);
    } else if macs >= GEMM_PARALLEL_MACS {
        gemm_into(
            dst,
            col_major,
            accumulate,
            a,
            b,
            Parallelism::Rayon(threads),
        );
    } else if thin {
        product_in_strips(dst, col_major, accumulate, a, b, threads);
    } else {
        // Blocks of whole lines: contiguous.
        let per_block = lines.div_ceil(threads);
        dst.par_chunks_mut(per_block * line_len)
            .enumerate()
            .for_each(|(i, block)| {
                let (first, count) = (i * per_block, block.len() / line_len);
                let (a, b) = if col_major {
                    (a, b.columns(first, count))
                } else {
                    (a.row_block(first, count), b)
                };
                gemm_into(block, col_major, accumulate, a, b, Parallelism::None);
            });
    }
}

/// [`product`] for a destination with too few lines to split (a dense
/// layer's output or input gradient at batch 10): each thread multiplies
/// one strip across the lines (a block of columns of a row-major `dst`, of
/// rows of a column-major one) into a buffer of its own, which is then
/// copied into place.
fn product_in_strips(
    dst: &mut [f32],
    col_major: bool,
    accumulate: bool,
    a: View,
    b: View,
    threads: usize,
) {
    let (m, n) = (a.rows, b.cols);
    let line_len = if col_major { m } else { n };
    let per_strip = line_len.div_ceil(threads);
    let strips: Vec<(usize, Vec<f32>)> = (0..line_len.div_ceil(per_strip))
        .into_par_iter()
        .map(|i| {
            let first = i * per_strip;
            let len = per_strip.min(line_len - first);
            let mut strip = Vec::with_capacity(dst.len() / line_len * len);
            for line in dst.chunks_exact(line_len) {
                strip.extend_from_slice(&line[first..first + len]);
            }
            let (a, b) = if col_major {
                (a.row_block(first, len), b)
            } else {
                (a, b.columns(first, len))
            };
            gemm_into(&mut strip, col_major, accumulate, a, b, Parallelism::None);
            (first, strip)
        })
        .collect();
    for (first, strip) in strips {
        let len = strip.len() / (dst.len() / line_len);
        for (line, part) in dst.chunks_exact_mut(line_len).zip(strip.chunks_exact(len)) {
            line[first..first + len].copy_from_slice(part);
        }
    }
}

/// One gemm call: `dst (+)= a * b` with `parallelism`.
fn gemm_into(
    dst: &mut [f32],
    col_major: bool,
    accumulate: bool,
    a: View,
    b: View,
    parallelism: Parallelism,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    debug_assert_eq!(dst.len(), m * n);
    // SAFETY: the views and `dst` were checked to hold every element the
    // strides reach; `dst` is borrowed mutably and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            if col_major { m as isize } else { 1 },
            if col_major { 1 } else { n as isize },
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `a` (`rows x cols`, row-major) transposed.
pub(crate) fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; a.len()];
    for (r, row) in a.chunks_exact(cols.max(1)).enumerate().take(rows) {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn plain_transposed_and_accumulated_products_match_the_definition() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5).collect();
        let want = naive(&a, &b, m, k, n);
        let mut got = vec![0.0; m * n];
        matmul(
            &mut got,
            false,
            View::rows(&a, m, k),
            View::rows(&b, k, n),
            false,
        );
        assert_eq!(got, want);
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        let mut got_t = vec![1.0; m * n];
        matmul(
            &mut got_t,
            false,
            View::transposed(&at, m, k),
            View::transposed(&bt, k, n),
            true,
        );
        assert_eq!(got_t, want);
        matmul(
            &mut got_t,
            true,
            View::rows(&a, m, k),
            View::rows(&b, k, n),
            false,
        );
        let doubled: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
        assert_eq!(got_t, doubled);
        let mut col_major = vec![0.0; m * n];
        matmul_col_major(
            &mut col_major,
            false,
            View::rows(&a, m, k),
            View::rows(&b, k, n),
            false,
        );
        assert_eq!(transpose(&col_major, n, m), want);
    }

    /// Products large enough to be split over threads, into row-major and
    /// column-major destinations (accumulating onto them), agree with one
    /// thread's: split into blocks of lines, and into strips across lines
    /// too few to split.
    #[test]
    fn split_products_match_one_threads_product() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a thread pool");
        for (m, k, n) in [(53, 301, 299), (10, 1801, 599), (599, 1801, 10)] {
            assert!((SPLIT_MACS..GEMM_PARALLEL_MACS).contains(&(m * k * n)));
            assert!(m.min(n) > 16 * 3 || m * k * n >= STRIP_MACS);
            let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 / 13.0 - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
            for col_major in [false, true] {
                let start: Vec<f32> = (0..m * n).map(|i| (i % 5) as f32).collect();
                let mut one = start.clone();
                let (va, vb) = (View::rows(&a, m, k), View::rows(&b, k, n));
                product(&mut one, col_major, true, va, vb, false);
                let mut split = start.clone();
                pool.install(|| product(&mut split, col_major, true, va, vb, true));
                for (i, (s, o)) in split.iter().zip(&one).enumerate() {
                    assert!((s - o).abs() <= 1e-4 * (1.0 + o.abs()), "{i}: {s} != {o}");
                }
                let mut plain = vec![f32::NAN; m * n];
                pool.install(|| product(&mut plain, col_major, false, va, vb, true));
                for (i, ((p, o), s)) in plain.iter().zip(&one).zip(&start).enumerate() {
                    assert!(
                        (p + s - o).abs() <= 1e-4 * (1.0 + o.abs()),
                        "{i}: {p} != {o} - {s}"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "needs more than")]
    fn a_view_larger_than_its_data_is_refused() {
        View::rows(&[0.0; 5], 2, 3);
    }
}
