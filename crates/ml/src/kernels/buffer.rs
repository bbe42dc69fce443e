//! Output buffers initialised on every thread of the current rayon pool:
//! a `vec![0.0; len]` of several megabytes (a dense layer's weight gradient,
//! a convolution's output) is zeroed on one thread while the others wait.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Elements each thread initialises at a time; shorter buffers are
/// initialised on the calling thread.
const CHUNK: usize = 1 << 18;

/// `vec![value; len]`, written in parallel.
pub(crate) fn par_vec<T: Copy + Send + Sync>(len: usize, value: T) -> Vec<T> {
    if len <= CHUNK {
        return vec![value; len];
    }
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .for_each(|chunk: &mut [MaybeUninit<T>]| {
            for x in chunk {
                x.write(value);
            }
        });
    // SAFETY: the capacity is at least `len` and the loop above wrote each
    // of the first `len` elements.
    unsafe { v.set_len(len) };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_buffers_hold_the_value_everywhere() {
        for len in [0, 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17] {
            let v = par_vec(len, 1.5f32);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 1.5));
        }
        assert!(par_vec(3 * CHUNK, 7u8).iter().all(|&x| x == 7));
    }
}
