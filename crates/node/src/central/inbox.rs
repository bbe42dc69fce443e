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

    /// Refuses, before it is decoded, a part of `bytes` bytes that would
    /// take the parts held over the limit even if it replaced one.
    pub fn room_for(&self, bytes: u64) -> Result<(), (StatusCode, String)> {
        let held = self.held();
        let largest = held.parts.values().map(|(_, b)| *b).max().unwrap_or(0);
        if held.bytes - largest + bytes > self.limit_bytes {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a part of {bytes} bytes would take the trainer's parts over its limit of {} bytes",
                    self.limit_bytes
                ),
            ));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use ml::datasets::{Dataset, Features};

    fn part(sender: &str, n: usize) -> DataPart {
        let shape = DatasetName::Synthetic.input_shape();
        let set = |n: usize| {
            Dataset::new(
                Features::Floats(vec![0.5; n * shape.features()]),
                vec![1; n],
                shape,
                10,
            )
            .unwrap()
        };
        DataPart {
            sender: sender.to_owned(),
            data: ClientData {
                train: set(n),
                test: set(1),
            },
        }
    }

    #[test]
    fn a_resent_part_replaces_the_first_and_late_or_oversized_ones_are_refused() {
        let inbox = Inbox::new(DatasetName::Synthetic, 2, 1000);
        assert_eq!(inbox.add(part("c/0", 3), 400).unwrap().parts, 1);
        assert_eq!(inbox.add(part("c/0", 4), 500).unwrap().parts, 1, "replaced");
        assert!(inbox.room_for(900).is_ok(), "it may replace the part held");
        assert_eq!(
            inbox.room_for(1001).unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let (status, why) = inbox.add(part("c/1", 2), 600).unwrap_err();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{why}");
        assert_eq!(
            inbox.add(part("c/1", 2), 300).unwrap(),
            Receipt {
                parts: 2,
                wanted: 2
            }
        );
        let (parts, bytes) = inbox.close();
        assert_eq!((parts.len(), bytes), (2, 800));
        assert_eq!(parts[0].train.len(), 4, "sender order, the resent part");
        let (status, why) = inbox.add(part("c/2", 2), 10).unwrap_err();
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(why.contains("training started with 2 parts"), "{why}");
    }

    #[test]
    fn parts_of_another_dataset_or_without_examples_are_refused() {
        let inbox = Inbox::new(DatasetName::FashionMnist, 1, 1000);
        let (status, why) = inbox.add(part("c/0", 3), 10).unwrap_err();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(why.contains("fashion-mnist"), "{why}");
        let inbox = Inbox::new(DatasetName::Synthetic, 1, 1000);
        let (status, why) = inbox.add(part("c/0", 0), 10).unwrap_err();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(why.contains("no training example"), "{why}");
    }
}
