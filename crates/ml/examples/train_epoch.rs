//! Times one local epoch per model at batch 10 and 50 and prints a table.
//!
//! `cargo run -p ml --example train_epoch -- [--lines] [THREADS] [EXAMPLES] [REPEATS] [MODEL...]`
//! (defaults: 2 threads, 8,000 examples, 1 repeat, every model; with repeats
//! the fastest epoch is shown, which filters out other load on a shared
//! machine). `--lines` prints `model batch seconds` lines instead of the
//! table, as `bench/train_epoch_torch.py` does, for `bench/train_epoch.sh`. 28x28 models train on
//! Fashion-MNIST when installed, else on `synthetic-images`; `cnn-cifar`
//! trains on `synthetic-cifar`.

use std::time::Instant;

use ml::datasets::{Dataset, DatasetName, registry};
use ml::partition::ClientData;
use ml::{FitConfig, LocalTrainer, ModelName};

fn first(data: &Dataset, n: usize) -> Dataset {
    data.subset(&(0..n.min(data.len())).collect::<Vec<_>>())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let lines = args.next_if(|a| a == "--lines").is_some();
    let threads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let examples: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8_000);
    let repeats: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let only: Vec<ModelName> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let grey = registry::load(DatasetName::FashionMnist, None)
        .map(|s| (DatasetName::FashionMnist, s))
        .or_else(|_| {
            registry::load(DatasetName::SyntheticImages, None)
                .map(|s| (DatasetName::SyntheticImages, s))
        })?;
    let rgb = registry::load(DatasetName::SyntheticCifar, None)?;
    if !lines {
        println!("one local epoch, {threads} thread(s), best of {repeats}");
        println!(
            "{:<10} {:<16} {:>8} {:>10} {:>10}",
            "model", "dataset", "examples", "batch 10", "batch 50"
        );
    }
    for model in ModelName::ALL {
        if !only.is_empty() && !only.contains(&model) {
            continue;
        }
        let (name, splits) = match model {
            ModelName::CnnCifar => (DatasetName::SyntheticCifar, &rgb),
            _ => (grey.0, &grey.1),
        };
        let train = first(&splits.train, examples);
        let mut row = format!(
            "{:<10} {:<16} {:>8}",
            model.as_str(),
            name.as_str(),
            train.len()
        );
        for batch_size in [10, 50] {
            let data = ClientData {
                train: train.clone(),
                test: first(&splits.test, 10),
            };
            let mut trainer = LocalTrainer::new(model, data, threads, 1)?;
            let cfg = FitConfig {
                batch_size,
                learning_rate: 0.01,
                ..FitConfig::default()
            };
            let mut best = f64::INFINITY;
            for _ in 0..repeats {
                let start = Instant::now();
                let stats = trainer.train_locally(&cfg)?;
                best = best.min(start.elapsed().as_secs_f64());
                if !stats.loss.is_finite() {
                    return Err(format!("{model}: loss diverged").into());
                }
            }
            if lines {
                println!("{model} {batch_size} {best:.4}");
            }
            row += &format!(" {best:>9.3}s");
        }
        if !lines {
            println!("{row}");
        }
    }
    Ok(())
}
