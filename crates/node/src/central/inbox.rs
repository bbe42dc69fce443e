//! The parts a central trainer has received: checked against its dataset,
//! one per sender (a resent part replaces the first), closed once training
//! starts.

use axum::http::StatusCode;
use ml::ClientData;
use ml::data_part::DataPart;
use ml::datasets::DatasetName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use tokio::sync::Notify;

/// The trainer's answer to a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Parts held now, this one included.
    pub parts: usize,
    /// Parts the trainer waits for before it trains.
    pub wanted: usize,
}

#[derive(Default)]
struct Held {
    parts: BTreeMap<String, (ClientData, u64)>,
    bytes: u64,
    /// Parts handed to training, once it started.
    closed: Option<usize>,
}

/// Parts received so far; `wait_full` resolves once `wanted` are in.
pub struct Inbox {
    dataset: DatasetName,
    wanted: usize,
    limit_bytes: u64,
    held: Mutex<Held>,
    full: Notify,
}

impl Inbox {
    /// An empty inbox for parts of `dataset`.
    pub fn new(dataset: DatasetName, wanted: usize, limit_bytes: u64) -> Self {
        Self {
            dataset,
            wanted: wanted.max(1),
            limit_bytes,
            held: Mutex::default(),
            full: Notify::new(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a decoded part of `bytes` bytes, or says why not (an HTTP
    /// status and a message naming the fix).
    pub fn add(&self, part: DataPart, bytes: u64) -> Result<Receipt, (StatusCode, String)> {
        let (shape, classes) = (part.data.train.shape(), part.data.train.num_classes());
        let (want_shape, want_classes) = (self.dataset.input_shape(), self.dataset.num_classes());
        if shape != want_shape || classes != want_classes {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "part of {}: examples of {shape} in {classes} classes, this trainer trains on {} ({want_shape}, {want_classes} classes)",
                    part.sender, self.dataset
                ),
            ));
        }
        if part.data.train.is_empty() {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("part of {}: no training example", part.sender),
            ));
        }
        let mut held = self.held();
        if let Some(used) = held.closed {
            return Err((
                StatusCode::CONFLICT,
                format!(
                    "part of {}: training started with {used} parts; a part sent later is not used",
                    part.sender
                ),
            ));
        }
        let replaced = held.parts.get(&part.sender).map_or(0, |(_, b)| *b);
        let total = held.bytes - replaced + bytes;
        if total > self.limit_bytes {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "part of {}: the trainer would hold {total} bytes of parts, the limit is {}",
                    part.sender, self.limit_bytes
                ),
            ));
        }
        held.bytes = total;
        held.parts.insert(part.sender, (part.data, bytes));
        let parts = held.parts.len();
        if parts >= self.wanted {
            self.full.notify_one();
        }
        Ok(Receipt {
            parts,
            wanted: self.wanted,
        })
    }

    /// Resolves once `wanted` parts are in.
    pub async fn wait_full(&self) {
        loop {
            let notified = self.full.notified();
            if self.held().parts.len() >= self.wanted {
                return;
            }
            notified.await;
        }
    }

    /// Refuses further parts; hands out those held, in sender order, and
    /// their bytes.
    pub fn close(&self) -> (Vec<ClientData>, u64) {
        let mut held = self.held();
        let parts = std::mem::take(&mut held.parts);
        held.closed = Some(parts.len());
        (parts.into_values().map(|(d, _)| d).collect(), held.bytes)
    }
}
