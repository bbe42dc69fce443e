//! IDX files (the MNIST family's format), gzipped or not: reader and writer.
//!
//! An IDX file is a 4-byte magic `00 00 TT NN` (TT the element type, NN the
//! number of dimensions), NN big-endian `u32` dimensions, then the elements in
//! C order. Only unsigned bytes (`TT = 08`) are read, which covers MNIST,
//! Fashion-MNIST, EMNIST and KMNIST. A file starting with the gzip magic
//! `1f 8b` is decompressed first, whatever its name.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;

use super::{DataError, Dataset, Features, InputShape};

/// Largest decompressed IDX file accepted: 1 GiB (EMNIST by-class, the largest of
/// the family, is about 550 MB).
pub const MAX_IDX_BYTES: u64 = 1 << 30;
/// Most dimensions accepted in an IDX header.
pub const MAX_IDX_DIMS: usize = 4;
/// The IDX element type code for unsigned bytes.
const UBYTE: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Elements in C order.
    pub data: Vec<u8>,
}

/// Reads a whole file, decompressing it when it starts with the gzip magic;
/// refuses more than `limit` bytes (compressed or not).
pub(crate) fn read_maybe_gz(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let size = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if size > limit {
        return Err(DataError::TooLarge {
            path: path.into(),
            what: "file size in bytes",
            size,
            limit,
        });
    }
    let mut reader = BufReader::new(file);
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    GzDecoder::new(bytes.as_slice())
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| DataError::invalid(path, format!("corrupt or truncated gzip data: {e}")))?;
    if out.len() as u64 > limit {
        return Err(DataError::TooLarge {
            path: path.into(),
            what: "decompressed size in bytes",
            size: out.len() as u64,
            limit,
        });
    }
    Ok(out)
}

/// Parses an IDX header from the start of `bytes`: the dimensions and the header length.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, usize), DataError> {
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: 4,
            got: bytes.len() as u64,
        });
    }
    let magic = &bytes[..4];
    let ndims = usize::from(magic[3]);
    if magic[0] != 0 || magic[1] != 0 || magic[2] != UBYTE || ndims == 0 || ndims > MAX_IDX_DIMS {
        return Err(DataError::BadMagic {
            path: path.into(),
            expected: format!("00 00 08 0N with N in 1..={MAX_IDX_DIMS} (IDX, unsigned bytes)"),
            got: magic
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: header_len as u64,
            got: bytes.len() as u64,
        });
    }
    let dims = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    Ok((dims, header_len))
}

/// Reads an IDX file of unsigned bytes, gzipped or not, checking that its
/// data is exactly as long as its header says.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = read_maybe_gz(path, MAX_IDX_BYTES)?;
    let (dims, header_len) = parse_header(path, &bytes)?;
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= MAX_IDX_BYTES)
        .ok_or_else(|| DataError::TooLarge {
            path: path.into(),
            what: "element count in the header",
            size: dims.iter().map(|&d| d as u64).fold(1, u64::saturating_mul),
            limit: MAX_IDX_BYTES,
        })?;
    let got = (bytes.len() - header_len) as u64;
    if got < expected {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: header_len as u64 + expected,
            got: bytes.len() as u64,
        });
    }
    if got > expected {
        return Err(DataError::invalid(
            path,
            format!(
                "{} bytes after the {expected} data bytes its header {dims:?} announces",
                got - expected
            ),
        ));
    }
    let mut data = bytes;
    data.drain(..header_len);
    Ok(IdxArray { dims, data })
}

/// Reads only the dimensions in an IDX file's header (cheap, for listings).
pub fn read_idx_dims(path: &Path) -> Result<Vec<usize>, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut head = [0u8; 4 + 4 * MAX_IDX_DIMS];
    let n = read_up_to(&mut file, &mut head).map_err(|e| DataError::io(path, e))?;
    let head = if head.starts_with(&[0x1f, 0x8b]) {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut unzipped = [0u8; 4 + 4 * MAX_IDX_DIMS];
        let n =
            read_up_to(&mut GzDecoder::new(BufReader::new(file)), &mut unzipped).map_err(|e| {
                DataError::invalid(path, format!("corrupt or truncated gzip data: {e}"))
            })?;
        unzipped[..n].to_vec()
    } else {
        head[..n].to_vec()
    };
    parse_header(path, &head).map(|(dims, _)| dims)
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Reads an image file (`[count, rows, cols]`) and its label file (`[count]`)
/// into a dataset of grey `rows x cols` images with `num_classes` classes.
pub fn read_images_and_labels(
    images: &Path,
    labels: &Path,
    num_classes: usize,
) -> Result<Dataset, DataError> {
    let img = read_idx(images)?;
    let [count, rows, cols] = img.dims[..] else {
        return Err(DataError::invalid(
            images,
            format!(
                "an image file needs 3 dimensions [count, rows, cols], got {:?}",
                img.dims
            ),
        ));
    };
    let (lab, label_count) = read_labels(labels, num_classes)?;
    if label_count != count {
        return Err(DataError::invalid(
            labels,
            format!(
                "wrong count: {label_count} labels for {count} images in {}",
                images.display()
            ),
        ));
    }
    Dataset::new(
        Features::Bytes(img.data),
        lab.data,
        InputShape::image(1, rows, cols),
        num_classes,
    )
    .map_err(|e| DataError::invalid(images, e.to_string()))
}

/// Reads a label file (`[count]`), checking every label is below `num_classes`.
fn read_labels(path: &Path, num_classes: usize) -> Result<(IdxArray, usize), DataError> {
    let lab = read_idx(path)?;
    let [count] = lab.dims[..] else {
        return Err(DataError::invalid(
            path,
            format!("a label file needs 1 dimension [count], got {:?}", lab.dims),
        ));
    };
    if let Some((i, l)) = lab
        .data
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= num_classes)
    {
        return Err(DataError::invalid(
            path,
            format!("label {l} of example {i} is not below the number of classes {num_classes}"),
        ));
    }
    Ok((lab, count))
}

/// Reads only some images of an image file and its label file: `select`
/// gets every label and returns the rows to keep, in the order wanted. The
/// images are streamed, so only the kept rows are held in memory (a client
/// of a 30-client cohort holds 1/30 of the training set, not all of it).
pub fn read_selected_images<E: From<DataError>>(
    images: &Path,
    labels: &Path,
    num_classes: usize,
    select: impl FnOnce(&[u8]) -> Result<Vec<usize>, E>,
) -> Result<Dataset, E> {
    let (lab, count) = read_labels(labels, num_classes)?;
    let rows = select(&lab.data)?;
    let dims = read_idx_dims(images)?;
    let [image_count, height, width] = dims[..] else {
        return Err(DataError::invalid(
            images,
            format!("an image file needs 3 dimensions [count, rows, cols], got {dims:?}"),
        )
        .into());
    };
    if image_count != count {
        return Err(DataError::invalid(
            labels,
            format!(
                "wrong count: {count} labels for {image_count} images in {}",
                images.display()
            ),
        )
        .into());
    }
    let row = height * width;
    // slot[i]: where example i goes in the output, if kept.
    let mut slot = vec![usize::MAX; count];
    for (k, &i) in rows.iter().enumerate() {
        if i >= count {
            return Err(DataError::invalid(images, format!("row {i} selected of {count}")).into());
        }
        slot[i] = k;
    }
    let file = File::open(images).map_err(|e| DataError::io(images, e))?;
    let mut head = [0u8; 2];
    let mut probe = File::open(images).map_err(|e| DataError::io(images, e))?;
    let gz = read_up_to(&mut probe, &mut head).map_err(|e| DataError::io(images, e))? == 2
        && head == [0x1f, 0x8b];
    let mut reader: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let corrupt =
        |e: std::io::Error| DataError::invalid(images, format!("corrupt or truncated data: {e}"));
    let mut skip = vec![0u8; 4 + 4 * dims.len()];
    reader.read_exact(&mut skip).map_err(corrupt)?;
    let mut features = vec![0u8; rows.len() * row];
    let mut buf = vec![0u8; row];
    for &k in &slot {
        reader.read_exact(&mut buf).map_err(corrupt)?;
        if k != usize::MAX {
            features[k * row..(k + 1) * row].copy_from_slice(&buf);
        }
    }
    let kept_labels = rows.iter().map(|&i| lab.data[i]).collect();
    Dataset::new(
        Features::Bytes(features),
        kept_labels,
        InputShape::image(1, height, width),
        num_classes,
    )
    .map_err(|e| DataError::invalid(images, e.to_string()).into())
}

/// Writes an uncompressed IDX file of unsigned bytes.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> Result<(), DataError> {
    let invalid = |m: String| DataError::invalid(path, m);
    if dims.is_empty() || dims.len() > MAX_IDX_DIMS {
        return Err(invalid(format!(
            "IDX needs 1..={MAX_IDX_DIMS} dimensions, got {}",
            dims.len()
        )));
    }
    if dims.iter().product::<usize>() != data.len() {
        return Err(invalid(format!(
            "dimensions {dims:?} need {} bytes, got {}",
            dims.iter().product::<usize>(),
            data.len()
        )));
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, UBYTE, dims.len() as u8]);
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| invalid(format!("dimension {d} exceeds u32")))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    File::create(path)
        .and_then(|mut f| f.write_all(&out))
        .map_err(|source| DataError::Write {
            path: path.into(),
            source,
        })
}
