//! The MLFO's state in SQLite: intents, FL servers, placements and round
//! results, so that a restarted MLFO still knows every intent.

use crate::record::{IntentRecord, RoundSummary, ServerRecord};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// A state database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored record does not parse (written by an incompatible version).
    #[error("state database: record {id}: {source}")]
    Record {
        /// The record's key.
        id: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The database file's directory could not be created.
    #[error("state database {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS intents (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS placements (
    intent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    host TEXT NOT NULL,
    agent_url TEXT NOT NULL,
    job_id TEXT,
    address TEXT,
    PRIMARY KEY (intent_id, kind, host)
);
CREATE TABLE IF NOT EXISTS rounds (
    intent_id TEXT NOT NULL,
    target TEXT NOT NULL,
    round INTEGER NOT NULL,
    participants INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    loss REAL,
    accuracy REAL,
    duration_s REAL NOT NULL,
    bytes_sent INTEGER NOT NULL,
    bytes_received INTEGER NOT NULL,
    PRIMARY KEY (intent_id, target, round)
);
CREATE TABLE IF NOT EXISTS servers (
    agent_host TEXT NOT NULL,
    job_id TEXT NOT NULL,
    active INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (agent_host, job_id)
);
";

/// The database, shared by the MLFO's tasks.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Self::init(Connection::open(path)?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (each statement is atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves an intent record and its placements (insert or replace).
    pub fn save_intent(&self, record: &IntentRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|source| StoreError::Record {
            id: record.id.clone(),
            source,
        })?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO intents (id, seq, state, record)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM intents), ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET state = excluded.state, record = excluded.record",
            params![record.id, record.state.as_str(), json],
        )?;
        for job in &record.jobs {
            if let Some(s) = &job.server {
                tx.execute(
                    "INSERT OR REPLACE INTO placements VALUES (?1, 'server', ?2, ?3, ?4, ?5)",
                    params![record.id, s.agent_host, s.agent_url, s.job_id, s.address],
                )?;
            }
            for c in &job.clients {
                tx.execute(
                    "INSERT OR REPLACE INTO placements VALUES (?1, 'client', ?2, ?3, ?4, NULL)",
                    params![record.id, c.host, c.agent_url, c.job_id],
                )?;
            }
            for r in &job.rounds {
                save_round(&tx, &record.id, &job.target, r)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every intent, oldest first.
    pub fn intents(&self) -> Result<Vec<IntentRecord>, StoreError> {
        self.records("SELECT id, record FROM intents ORDER BY seq", [])
    }

    /// The intents not in a final state, oldest first.
    pub fn unfinished_intents(&self) -> Result<Vec<IntentRecord>, StoreError> {
        self.records(
            "SELECT id, record FROM intents
             WHERE state NOT IN ('completed', 'failed', 'lost', 'cancelled') ORDER BY seq",
            [],
        )
    }

    /// The records (key, JSON) a query selects, parsed.
    fn records<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(params, |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (id, json) = row?;
            serde_json::from_str(&json).map_err(|source| StoreError::Record { id, source })
        })
        .collect()
    }

    /// One intent.
    pub fn intent(&self, id: &str) -> Result<Option<IntentRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT record FROM intents WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|source| StoreError::Record {
                id: id.to_owned(),
                source,
            })
        })
        .transpose()
    }

    /// Whether an intent with this id exists.
    pub fn has_intent(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM intents WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Intents per state.
    pub fn intent_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM intents GROUP BY state")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Round results of one intent's target, in order (as stored in the rounds table).
    pub fn rounds(&self, intent_id: &str, target: &str) -> Result<Vec<RoundSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT round, participants, failures, loss, accuracy, duration_s, bytes_sent, bytes_received
             FROM rounds WHERE intent_id = ?1 AND target = ?2 ORDER BY round",
        )?;
        let rows = stmt.query_map([intent_id, target], |row| {
            Ok(RoundSummary {
                round: row.get(0)?,
                participants: row.get(1)?,
                failures: row.get(2)?,
                loss: row.get(3)?,
                accuracy: row.get(4)?,
                duration_s: row.get(5)?,
                bytes_sent: row.get(6)?,
                bytes_received: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves a cloud server record (insert or replace), keyed by aggregator and job.
    pub fn save_server(&self, record: &ServerRecord) -> Result<(), StoreError> {
        let p = &record.placement;
        let json = serde_json::to_string(record).map_err(|source| StoreError::Record {
            id: format!("{}/{}", p.agent_host, p.job_id),
            source,
        })?;
        self.conn().execute(
            "INSERT OR REPLACE INTO servers VALUES (?1, ?2, ?3, ?4)",
            params![p.agent_host, p.job_id, record.active, json],
        )?;
        Ok(())
    }

    /// The cloud's server records, active ones only when `active_only`.
    pub fn servers(&self, active_only: bool) -> Result<Vec<ServerRecord>, StoreError> {
        self.records(
            "SELECT job_id, record FROM servers WHERE active >= ?1 ORDER BY rowid",
            [active_only],
        )
    }
}

fn save_round(
    tx: &rusqlite::Transaction<'_>,
    intent_id: &str,
    target: &str,
    r: &RoundSummary,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT OR IGNORE INTO rounds VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            intent_id,
            target,
            r.round,
            r.participants,
            r.failures,
            r.loss,
            r.accuracy,
            r.duration_s,
            r.bytes_sent,
            r.bytes_received
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CohortChoice, IntentState, JobRecord, Timings};

    fn record(id: &str) -> IntentRecord {
        IntentRecord {
            id: id.to_owned(),
            intent_id: "edgeintent01".to_owned(),
            state: IntentState::Training,
            reason: None,
            received_unix_s: 1.0,
            updated_unix_s: 2.0,
            document: serde_json::json!({"intentID": "edgeintent01"}),
            cohort: CohortChoice {
                name: Some("c1".into()),
                hosts: vec!["fc.10".into()],
            },
            timings: Timings::default(),
            jobs: vec![JobRecord {
                min_available: 1,
                target: "factory.all".into(),
                mode: intent::TrainingMode::Centralised,
                source: "mnist".into(),
                model: "mlp".into(),
                strategy: "centralised".into(),
                rounds_planned: 3,
                passes_planned: 3,
                rounds_before: 0,
                target_accuracy: Some(0.9),
                deadline_s: None,
                aggregation: intent::Aggregation::Flat,
                server: None,
                edge_aggregators: Vec::new(),
                plan: None,
                outcome: None,
                clients: vec![],
                initial_accuracy: None,
                rounds: vec![RoundSummary {
                    round: 1,
                    participants: 2,
                    failures: 0,
                    loss: Some(0.5),
                    accuracy: Some(0.8),
                    duration_s: 1.5,
                    bytes_sent: 10,
                    bytes_received: 20,
                }],
            }],
            meters: Vec::new(),
            notes: Vec::new(),
            queue: None,
            momo: Default::default(),
            skip_clients: false,
        }
    }

    #[test]
    fn intents_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.sqlite");
        {
            let store = Store::open(&path).unwrap();
            store.save_intent(&record("b")).unwrap();
            store.save_intent(&record("a")).unwrap();
            let mut done = record("b");
            done.state = IntentState::Completed;
            store.save_intent(&done).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let all = store.intents().unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(all[0].state, IntentState::Completed);
        assert!(store.has_intent("a").unwrap());
        assert!(store.intent("zz").unwrap().is_none());
        let rounds = store.rounds("a", "factory.all").unwrap();
        assert_eq!(rounds.len(), 1);
        assert_eq!(rounds[0].accuracy, Some(0.8));
        let unfinished: Vec<String> = store
            .unfinished_intents()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(unfinished, ["a"]);
        let mut counts = store.intent_counts().unwrap();
        counts.sort();
        assert_eq!(counts, [("completed".into(), 1), ("training".into(), 1)]);
    }
}
