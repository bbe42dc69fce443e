//! The edge MLFO's admission queue: intents that wait, first in first out
//! (by arrival), for an aggregator with room for their FL servers.
//!
//! Only the intent at the head asks the cloud again, so a later intent
//! never takes the capacity an earlier one waits for. The queue itself lives
//! in memory; the records' `queued` state and arrival times rebuild it after
//! a restart ([`crate::Mlfo::recover`]).

use crate::record::{IntentRecord, IntentState, now_unix_s};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// The waiting intents, earliest arrival first.
#[derive(Default)]
pub(crate) struct AdmissionQueue {
    /// (arrival time, intent id), sorted by arrival.
    waiting: Mutex<Vec<(f64, String)>>,
    /// Woken when the queue changes or capacity may have freed.
    changed: Notify,
}

impl AdmissionQueue {
    fn lock(&self) -> MutexGuard<'_, Vec<(f64, String)>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts intent `id`, which arrived at `arrival_unix_s`, in its place (once).
    pub(crate) fn join(&self, id: &str, arrival_unix_s: f64) {
        let mut waiting = self.lock();
        if waiting.iter().any(|(_, i)| i == id) {
            return;
        }
        let at = waiting.partition_point(|(t, _)| *t <= arrival_unix_s);
        waiting.insert(at, (arrival_unix_s, id.to_owned()));
    }

    /// Takes intent `id` out of the queue (placed, failed or cancelled) and
    /// wakes the others: the next may be at the head now.
    pub(crate) fn leave(&self, id: &str) {
        self.lock().retain(|(_, i)| i != id);
        self.changed.notify_waiters();
    }

    /// Whether no intent waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The 1-based position of intent `id`, if it waits.
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.lock().iter().position(|(_, i)| i == id).map(|p| p + 1)
    }

    /// Waits until the queue changes or capacity may have freed, at most `limit`.
    pub(crate) async fn changed(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.changed.notified()).await;
    }

    /// Fills in a queued record's live position and time in the queue.
    pub(crate) fn annotate(&self, record: &mut IntentRecord) {
        if record.state != IntentState::Queued {
            return;
        }
        if let Some(entry) = &mut record.queue {
            entry.position = self.position(&record.id);
            record.timings.queued_s = Some((now_unix_s() - entry.since_unix_s).max(0.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_arrival_and_joins_once() {
        let q = AdmissionQueue::default();
        q.join("b", 2.0);
        q.join("a", 1.0);
        q.join("c", 3.0);
        q.join("a", 1.0);
        assert_eq!(q.position("a"), Some(1));
        assert_eq!(q.position("b"), Some(2));
        assert_eq!(q.position("c"), Some(3));
        q.leave("a");
        assert_eq!(q.position("b"), Some(1));
        assert_eq!(q.position("a"), None);
        q.leave("b");
        q.leave("c");
        assert!(q.is_empty());
    }
}
