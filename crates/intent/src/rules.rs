//! The range of every numeric field, shared by intents and the catalog.

use crate::number::{Count, Interval};

/// Largest intent document accepted, in bytes (1 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Most FL rounds an intent or catalog entry may ask for.
pub const MAX_ROUNDS: u32 = 10_000;

/// Most clients any client count (minfit, minav, cohort size) may name.
pub const MAX_CLIENTS: u32 = 10_000;

/// `fracfit`: fraction of available clients sampled per round.
pub(crate) const FRACTION_FIT: Interval = Interval {
    lo: 0.0,
    lo_open: true,
    hi: 1.0,
    hi_open: false,
};
/// `numround`.
pub(crate) const ROUNDS: Count = Count {
    min: 1,
    max: MAX_ROUNDS,
};
/// `minfit`, `minav`, `cohort.size`.
pub(crate) const CLIENTS: Count = Count {
    min: 1,
    max: MAX_CLIENTS,
};
/// `local_epochs`.
pub(crate) const LOCAL_EPOCHS: Count = Count { min: 1, max: 1_000 };
/// `batch_size`.
pub(crate) const BATCH_SIZE: Count = Count {
    min: 1,
    max: 65_536,
};
/// `learning_rate` (client side).
pub(crate) const LEARNING_RATE: Interval = Interval {
    lo: 0.0,
    lo_open: true,
    hi: 10.0,
    hi_open: false,
};
/// `target_accuracy`.
pub(crate) const ACCURACY: Interval = FRACTION_FIT;
/// `deadline_s`: at most 7 days.
pub(crate) const DEADLINE_S: Interval = Interval {
    lo: 0.0,
    lo_open: true,
    hi: 604_800.0,
    hi_open: false,
};
/// `max_bandwidth_mbps`: at most 1 Tbit/s.
pub(crate) const BANDWIDTH_MBPS: Interval = Interval {
    lo: 0.0,
    lo_open: true,
    hi: 1_000_000.0,
    hi_open: false,
};
/// `proximal_mu` (FedProx).
pub(crate) const PROXIMAL_MU: Interval = Interval {
    lo: 0.0,
    lo_open: false,
    hi: 10.0,
    hi_open: false,
};
/// `server_lr` (FedAvgM, FedAdam, FedYogi, FedAdagrad).
pub(crate) const SERVER_LR: Interval = LEARNING_RATE;
/// `server_momentum` (FedAvgM).
pub(crate) const SERVER_MOMENTUM: Interval = Interval {
    lo: 0.0,
    lo_open: false,
    hi: 1.0,
    hi_open: true,
};
/// `trim_fraction` (FedTrimmedAvg): the share cut from each end.
pub(crate) const TRIM_FRACTION: Interval = Interval {
    lo: 0.0,
    lo_open: false,
    hi: 0.5,
    hi_open: true,
};
/// `min_completion_rate` (FaultTolerantFedAvg).
pub(crate) const COMPLETION_RATE: Interval = Interval {
    lo: 0.0,
    lo_open: false,
    hi: 1.0,
    hi_open: false,
};
/// `byzantine_clients` (Krum, Bulyan).
pub(crate) const BYZANTINE: Count = Count {
    min: 0,
    max: MAX_CLIENTS,
};
/// `dp_noise_multiplier`.
pub(crate) const NOISE_MULTIPLIER: Interval = Interval {
    lo: 0.0,
    lo_open: false,
    hi: 10_000.0,
    hi_open: false,
};
/// `dp_clipping_norm`.
pub(crate) const CLIPPING_NORM: Interval = Interval {
    lo: 0.0,
    lo_open: true,
    hi: 1e6,
    hi_open: false,
};
/// `dp_epsilon`.
pub(crate) const EPSILON: Interval = Interval {
    lo: 0.0,
    lo_open: true,
    hi: 10_000.0,
    hi_open: false,
};
/// `dp_delta`.
pub(crate) const DELTA: Interval = Interval {
    lo: 0.0,
    lo_open: true,
    hi: 1.0,
    hi_open: true,
};
