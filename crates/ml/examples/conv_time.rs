//! Times the CNN's two convolution blocks (convolution, ReLU, 2x2
//! max-pooling, as `ml::kernels` runs them) on a batch of 50, forward and
//! backward, fastest of 100 repeats.
//!
//! `cargo run --release -p ml --example conv_time -- [THREADS] [LAYER]`
//! (defaults: 2 threads, both layers; LAYER is `conv1` or `conv2`).
//! `conv1` is the FedAvg CNN's first layer (1 -> 32 channels on 28x28),
//! `conv2` its second (32 -> 64 on 14x14); only the second computes an
//! input gradient, as in training.

use std::time::Instant;

use ml::kernels::{ConvShape, conv2d_relu_pool_backward, conv2d_relu_pool_forward};

const REPEATS: usize = 100;

fn layer(in_channels: usize, side: usize, out_channels: usize) -> ConvShape {
    ConvShape {
        batch: 50,
        in_channels,
        height: side,
        width: side,
        out_channels,
        kernel: [5, 5],
        padding: [2, 2],
    }
}

/// Deterministic values in [-scale, scale).
fn values(len: usize, step: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * step) % 200) as f32 / 100.0 * scale - scale)
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let only = args.next();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    println!("batch 50, {threads} thread(s), fastest of {REPEATS}");
    for (name, s, want_input) in [
        ("conv1", layer(1, 28, 32), false),
        ("conv2", layer(32, 14, 64), true),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let x = values(s.batch * s.in_channels * s.height * s.width, 7919, 1.0);
        let w = values(s.out_channels * s.in_channels * 25, 104_729, 0.1);
        let b = vec![0.01; s.out_channels];
        let [forward, backward] = pool.install(|| {
            let (out, choices) = conv2d_relu_pool_forward(&x, &w, &b, &s);
            let g = values(out.len(), 13, 0.5);
            let mut best = [f64::INFINITY; 2];
            for _ in 0..REPEATS {
                let t = Instant::now();
                std::hint::black_box(conv2d_relu_pool_forward(&x, &w, &b, &s));
                best[0] = best[0].min(t.elapsed().as_secs_f64());
                let t = Instant::now();
                let grads = conv2d_relu_pool_backward(&x, &w, &g, &choices, &s, want_input);
                best[1] = best[1].min(t.elapsed().as_secs_f64());
                std::hint::black_box(grads);
            }
            best
        });
        println!(
            "{name}: forward {:.3} ms, backward {:.3} ms",
            forward * 1e3,
            backward * 1e3
        );
    }
    Ok(())
}
