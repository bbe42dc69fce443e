//! Aggregation kernels against a plain memory copy of the same bytes.
//!
//! Throughput is the bytes of client models read per aggregation (models x
//! parameters x 4); `memcpy` copies a buffer of that size with
//! `copy_from_slice`, as a bandwidth reference; `running_mean_npy` is the
//! server's path for mean-based strategies. Run with
//! `cargo bench -p fl --bench aggregate`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fl::Tensor;
use fl::npy::{self, NpyView};
use fl::strategy::aggregate::{MeanAccumulator, median, trimmed_mean, weighted_mean};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Duration;

/// 784-200-200-10 MLP: 199,210 parameters.
const MLP: &[&[usize]] = &[&[200, 784], &[200], &[200, 200], &[200], &[10, 200], &[10]];

/// The FedAvg paper's MNIST CNN (two 5x5 convolutions, 512-unit dense layer):
/// 1,663,370 parameters.
const CNN: &[&[usize]] = &[
    &[32, 1, 5, 5],
    &[32],
    &[64, 32, 5, 5],
    &[64],
    &[512, 3136],
    &[512],
    &[10, 512],
    &[10],
];

/// `count` models with `shapes`, filled with uniform noise.
fn models(shapes: &[&[usize]], count: usize) -> Vec<Vec<Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..count)
        .map(|_| {
            shapes
                .iter()
                .map(|s| Tensor {
                    shape: s.to_vec(),
                    data: (0..s.iter().product())
                        .map(|_| rng.random_range(-1.0..1.0))
                        .collect(),
                })
                .collect()
        })
        .collect()
}

fn kernels(c: &mut Criterion) {
    for (name, shapes, count, robust) in [("mlp199k", MLP, 50, true), ("cnn1.66m", CNN, 10, false)]
    {
        let owned = models(shapes, count);
        let refs: Vec<&[Tensor]> = owned.iter().map(Vec::as_slice).collect();
        let params: usize = owned[0].iter().map(Tensor::len).sum();
        let bytes = (count * params * size_of::<f32>()) as u64;
        let examples: Vec<u64> = (0..count as u64).map(|i| 100 + i).collect();
        let id = format!("{count}x{name}");

        let mut group = c.benchmark_group("aggregate");
        group.throughput(Throughput::Bytes(bytes));
        group.measurement_time(Duration::from_secs(3));
        group.bench_function(BenchmarkId::new("memcpy", &id), |b| {
            let src = vec![1.0f32; count * params];
            let mut dst = vec![0.0f32; count * params];
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            });
        });
        group.bench_function(BenchmarkId::new("fedavg", &id), |b| {
            b.iter(|| weighted_mean(black_box(&refs), black_box(&examples)));
        });
        // The server's path: each model folded into f64 sums straight from
        // its `.npy` bytes as it arrives, then the mean.
        let encoded: Vec<Vec<Vec<u8>>> = owned
            .iter()
            .map(|model| model.iter().map(npy::encode).collect())
            .collect();
        let shape_list: Vec<Vec<usize>> = shapes.iter().map(|s| s.to_vec()).collect();
        group.bench_function(BenchmarkId::new("running_mean_npy", &id), |b| {
            b.iter(|| {
                let mut sum = MeanAccumulator::new(&shape_list);
                for (model, n) in encoded.iter().zip(&examples) {
                    let views: Vec<NpyView<&[u8]>> = model
                        .iter()
                        .map(|t| NpyView::parse(t.as_slice()).expect("valid .npy"))
                        .collect();
                    sum.add(black_box(&views), *n);
                }
                sum.mean()
            });
        });
        if robust {
            group.sample_size(10);
            group.bench_function(BenchmarkId::new("median", &id), |b| {
                b.iter(|| median(black_box(&refs)));
            });
            group.bench_function(BenchmarkId::new("trimmed_mean_0.2", &id), |b| {
                b.iter(|| trimmed_mean(black_box(&refs), count / 5));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
