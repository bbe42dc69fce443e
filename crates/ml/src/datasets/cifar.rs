//! The CIFAR-10 binary format: `data_batch_1.bin` .. `data_batch_5.bin` and
//! `test_batch.bin`, each a run of records of 1 label byte and 3,072 pixel
//! bytes (1,024 red, then green, then blue, rows of 32), as in
//! "CIFAR-10 binary version" (`cifar-10-batches-bin`).

use std::path::{Path, PathBuf};

use super::idx::read_maybe_gz;
use super::{DataError, Dataset, Features, InputShape};

/// Bytes of one record: the label and a 32x32x3 image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Number of CIFAR-10 classes.
pub const CLASSES: usize = 10;
/// Largest batch file accepted: 64 MiB (an official batch is 30,730,000 bytes).
pub const MAX_BATCH_BYTES: u64 = 64 << 20;
/// The training batch file names, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file name.
pub const TEST_FILE: &str = "test_batch.bin";

/// Reads one batch file into its labels and pixels.
fn read_batch(path: &Path) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let bytes = read_maybe_gz(path, MAX_BATCH_BYTES)?;
    if bytes.is_empty() {
        return Err(DataError::invalid(path, "empty file: no CIFAR-10 record"));
    }
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        let whole = bytes.len() / RECORD_BYTES;
        return Err(DataError::Truncated {
            path: path.into(),
            expected: ((whole + 1) * RECORD_BYTES) as u64,
            got: bytes.len() as u64,
        });
    }
    let mut labels = Vec::with_capacity(bytes.len() / RECORD_BYTES);
    let mut pixels = Vec::with_capacity(labels.capacity() * IMAGE_BYTES);
    for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        if usize::from(record[0]) >= CLASSES {
            return Err(DataError::invalid(
                path,
                format!(
                    "record {i} has label {}, CIFAR-10 labels are 0..=9 (is this CIFAR-100?)",
                    record[0]
                ),
            ));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((labels, pixels))
}

/// Reads and concatenates batch files into one dataset of 32x32x3 images.
pub fn read_batches(paths: &[PathBuf]) -> Result<Dataset, DataError> {
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    for path in paths {
        let (l, p) = read_batch(path)?;
        labels.extend(l);
        pixels.extend(p);
    }
    Dataset::new(
        Features::Bytes(pixels),
        labels,
        InputShape::image(3, 32, 32),
        CLASSES,
    )
    .map_err(|e| {
        DataError::invalid(
            paths.first().map(PathBuf::as_path).unwrap_or(Path::new("")),
            e.to_string(),
        )
    })
}

/// The CIFAR-10 folder inside `dir`: `dir` itself when it holds `test_batch.bin`,
/// else `dir/cifar-10-batches-bin` (the archive's own folder name) when that does.
pub fn locate(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
        .into_iter()
        .find(|d| d.join(TEST_FILE).is_file())
}
