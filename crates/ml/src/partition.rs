//! Splitting a dataset among a cohort of `n` clients (the prototype's
//! `cohsize`/`part`), then each client's part into its train and test sets.
//!
//! Every scheme is a pure function of the labels, the cohort size and the
//! seed, so each client computes its own part alone and the parts of one
//! cohort never overlap.

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

use crate::datasets::Dataset;

/// Default fraction of a client's part held out for evaluation.
pub const DEFAULT_TEST_FRACTION: f64 = 0.1;
/// Shards per client in the FedAvg paper's pathological non-IID split.
pub const DEFAULT_SHARDS_PER_CLIENT: usize = 2;
/// Dirichlet draws are repeated (up to this many times) until every client
/// gets at least one example.
const DIRICHLET_ATTEMPTS: usize = 100;

/// How examples are dealt to clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    /// Uniformly at random, equal sizes (`iid`).
    Iid,
    /// FedAvg's label shards: sort by label, cut into `clients x per_client`
    /// equal shards, give each client `per_client` random shards (`shards`, `shards:N`).
    Shards {
        /// Shards per client (2 in the FedAvg paper).
        per_client: usize,
    },
    /// Label skew: for each class, client shares drawn from Dirichlet(alpha)
    /// (`dirichlet:ALPHA`); small alpha means few classes per client.
    Dirichlet {
        /// Concentration; must be positive.
        alpha: f64,
    },
    /// Contiguous blocks in dataset order (`contiguous`); for `synthetic`
    /// with 30 clients, client k gets exactly LEAF device k.
    Contiguous,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Iid => f.write_str("iid"),
            Scheme::Shards { per_client } => write!(f, "shards:{per_client}"),
            Scheme::Dirichlet { alpha } => write!(f, "dirichlet:{alpha}"),
            Scheme::Contiguous => f.write_str("contiguous"),
        }
    }
}

impl FromStr for Scheme {
    type Err = PartitionError;

    /// Parses `iid`, `shards`, `shards:N`, `dirichlet:ALPHA` or `contiguous`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PartitionError::BadScheme(s.to_owned());
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        match (name, arg) {
            ("iid", None) => Ok(Scheme::Iid),
            ("contiguous", None) => Ok(Scheme::Contiguous),
            ("shards", None) => Ok(Scheme::Shards {
                per_client: DEFAULT_SHARDS_PER_CLIENT,
            }),
            ("shards", Some(n)) => match n.parse() {
                Ok(per_client) if per_client > 0 => Ok(Scheme::Shards { per_client }),
                _ => Err(bad()),
            },
            ("dirichlet", Some(a)) => match a.parse::<f64>() {
                Ok(alpha) if alpha.is_finite() && alpha > 0.0 => Ok(Scheme::Dirichlet { alpha }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// Which part of which cohort a client takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partition {
    /// How examples are dealt.
    pub scheme: Scheme,
    /// Cohort size `n`.
    pub num_clients: usize,
    /// This client's index, `0..n`.
    pub index: usize,
    /// Seed shared by the cohort.
    pub seed: u64,
    /// Fraction of the client's part held out for evaluation, in `0..1`.
    pub test_fraction: f64,
}

impl Partition {
    /// An IID partition with the default test fraction.
    pub fn iid(num_clients: usize, index: usize, seed: u64) -> Self {
        Self {
            scheme: Scheme::Iid,
            num_clients,
            index,
            seed,
            test_fraction: DEFAULT_TEST_FRACTION,
        }
    }
}

/// A partition request that cannot be met.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PartitionError {
    /// The scheme string does not parse.
    #[error(
        "unknown partition scheme `{0}`; use iid, shards, shards:N, dirichlet:ALPHA (ALPHA > 0) or contiguous"
    )]
    BadScheme(String),
    /// The cohort is empty or the index is outside it.
    #[error("client index {index} is not in a cohort of {num_clients} clients")]
    BadIndex {
        /// The index asked for.
        index: usize,
        /// The cohort size.
        num_clients: usize,
    },
    /// The test fraction is outside `0..1`.
    #[error("test fraction {0} is not in [0, 1)")]
    BadTestFraction(f64),
    /// Fewer examples than the scheme needs.
    #[error("{examples} examples cannot be split into {needed} non-empty {what}")]
    TooFewExamples {
        /// Examples available.
        examples: usize,
        /// Parts needed.
        needed: usize,
        /// Kind of part (clients, shards).
        what: &'static str,
    },
}

/// A client's data: its training and held-out sets.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientData {
    /// Examples the client trains on.
    pub train: Dataset,
    /// Examples the client evaluates on.
    pub test: Dataset,
}

impl ClientData {
    /// Label counts of the training set, indexed by label.
    pub fn train_histogram(&self) -> Vec<usize> {
        self.train.label_histogram()
    }

    /// Label counts of the held-out set, indexed by label.
    pub fn test_histogram(&self) -> Vec<usize> {
        self.test.label_histogram()
    }
}

/// Cuts `0..len` into `parts` contiguous ranges whose sizes differ by at most
/// one, the first ones larger (NumPy's `array_split`).
fn even_ranges(len: usize, parts: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let (base, extra) = (len / parts, len % parts);
    (0..parts).map(move |i| {
        let start = i * base + i.min(extra);
        start..start + base + usize::from(i < extra)
    })
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// The dataset indices of every client of the cohort `p` describes (only
/// `scheme`, `num_clients` and `seed` matter).
pub fn cohort_indices(
    labels: &[u8],
    num_classes: usize,
    p: &Partition,
) -> Result<Vec<Vec<usize>>, PartitionError> {
    let n = labels.len();
    let k = p.num_clients;
    if k == 0 {
        return Err(PartitionError::BadIndex {
            index: p.index,
            num_clients: 0,
        });
    }
    if n < k {
        return Err(PartitionError::TooFewExamples {
            examples: n,
            needed: k,
            what: "clients",
        });
    }
    let mut r = rng(p.seed, 0);
    Ok(match p.scheme {
        Scheme::Contiguous => even_ranges(n, k).map(|r| r.collect()).collect(),
        Scheme::Iid => {
            let mut all: Vec<usize> = (0..n).collect();
            all.shuffle(&mut r);
            even_ranges(n, k).map(|range| all[range].to_vec()).collect()
        }
        Scheme::Shards { per_client } => {
            let shards = k * per_client;
            if n < shards {
                return Err(PartitionError::TooFewExamples {
                    examples: n,
                    needed: shards,
                    what: "shards",
                });
            }
            let mut sorted: Vec<usize> = (0..n).collect();
            sorted.sort_by_key(|&i| labels[i]);
            let ranges: Vec<_> = even_ranges(n, shards).collect();
            let mut order: Vec<usize> = (0..shards).collect();
            order.shuffle(&mut r);
            order
                .chunks(per_client)
                .map(|mine| {
                    mine.iter()
                        .flat_map(|&s| sorted[ranges[s].clone()].iter().copied())
                        .collect()
                })
                .collect()
        }
        Scheme::Dirichlet { alpha } => dirichlet(labels, num_classes, k, alpha, &mut r)?,
    })
}

/// Label-skewed split: each class's examples are dealt to clients in
/// proportions drawn from Dirichlet(alpha); redrawn while a client is empty.
fn dirichlet(
    labels: &[u8],
    num_classes: usize,
    k: usize,
    alpha: f64,
    r: &mut ChaCha8Rng,
) -> Result<Vec<Vec<usize>>, PartitionError> {
    let gamma = Gamma::new(alpha, 1.0)
        .map_err(|_| PartitionError::BadScheme(format!("dirichlet:{alpha}")))?;
    let mut by_class = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[usize::from(l)].push(i);
    }
    for _ in 0..DIRICHLET_ATTEMPTS {
        let mut parts = vec![Vec::new(); k];
        for class in &mut by_class {
            class.shuffle(r);
            let draws: Vec<f64> = (0..k).map(|_| gamma.sample(r)).collect();
            let total: f64 = draws.iter().sum();
            let mut acc = 0.0;
            let mut start = 0;
            for (c, d) in draws.iter().enumerate() {
                acc += d;
                let end = if c + 1 == k || total <= 0.0 {
                    class.len()
                } else {
                    ((acc / total) * class.len() as f64).round() as usize
                };
                let end = end.clamp(start, class.len());
                parts[c].extend_from_slice(&class[start..end]);
                start = end;
            }
        }
        if parts.iter().all(|p| !p.is_empty()) {
            for p in &mut parts {
                p.sort_unstable();
            }
            return Ok(parts);
        }
    }
    Err(PartitionError::TooFewExamples {
        examples: labels.len(),
        needed: k,
        what: "clients (Dirichlet draws kept leaving a client empty; raise alpha)",
    })
}

/// This client's part of `dataset`, split into train and held-out sets.
pub fn client_data(dataset: &Dataset, p: &Partition) -> Result<ClientData, PartitionError> {
    let mine = client_indices(dataset.labels(), dataset.num_classes(), p)?;
    let rows: Vec<usize> = (0..mine.len()).collect();
    Ok(split_client(&dataset.subset(&mine), &rows, p))
}

/// The examples (indices into the cohort's dataset, whose labels are
/// `labels`) that client `p.index` holds, in the order [`split_client`] expects.
pub fn client_indices(
    labels: &[u8],
    num_classes: usize,
    p: &Partition,
) -> Result<Vec<usize>, PartitionError> {
    if p.index >= p.num_clients {
        return Err(PartitionError::BadIndex {
            index: p.index,
            num_clients: p.num_clients,
        });
    }
    if !(0.0..1.0).contains(&p.test_fraction) {
        return Err(PartitionError::BadTestFraction(p.test_fraction));
    }
    Ok(cohort_indices(labels, num_classes, p)?.swap_remove(p.index))
}

/// Splits a client's examples (`mine` holds its [`client_indices`] as rows
/// of `data`, in that order) into its shuffled train and held-out sets.
pub fn split_client(data: &Dataset, rows: &[usize], p: &Partition) -> ClientData {
    let mut mine = rows.to_vec();
    mine.shuffle(&mut rng(p.seed, 1 + p.index as u64));
    let test_len = ((mine.len() as f64 * p.test_fraction).round() as usize).min(mine.len() - 1);
    let (test, train) = mine.split_at(test_len);
    ClientData {
        train: data.subset(train),
        test: data.subset(test),
    }
}
