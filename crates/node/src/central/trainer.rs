//! The central trainer of a centralised plan. On its job's port it takes
//! the clients' data parts (`POST /v1/parts`); once `min_available` parts
//! are in it pools them and trains the model pass by pass, each pass
//! recorded as a round of an FL [`History`], so that whoever follows FL
//! servers follows it the same way.

use super::inbox::{Inbox, Receipt};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use fl::Trainer;
use fl::history::{CentralRecord, History, PhaseRecord, RoundRecord};
use ml::datasets::{Dataset, DatasetName};
use ml::{ClientData, FitConfig, ModelName};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

/// Where clients send their parts.
pub const PARTS_PATH: &str = "/v1/parts";
/// Largest part accepted (the whole CIFAR-10 training set is 154 MB).
pub const PART_LIMIT_BYTES: usize = 256 * 1024 * 1024;
/// Most bytes of parts one trainer holds, all parts together.
pub const POOL_LIMIT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What a central trainer trains.
#[derive(Debug)]
pub struct TrainerJob {
    /// The dataset the parts come from.
    pub dataset: DatasetName,
    /// The model to train.
    pub model: ModelName,
    /// Batch size, learning rate and epochs per pass (`local_epochs`).
    pub fit: FitConfig,
    /// Passes (rounds) to train.
    pub passes: u64,
    /// Parts to wait for before training.
    pub parts_wanted: usize,
    /// Scores every pass on the dataset's official test split, when wanted.
    pub evaluator: Option<ml::CentralEvaluator>,
    /// Seed of the initial weights and the shuffling.
    pub seed: u64,
    /// Training threads.
    pub threads: usize,
}

/// Serves `PARTS_PATH` on `listener` while it waits for the parts and
/// trains; returns when the last pass is recorded in `history` or
/// `cancel` is set.
pub async fn run(
    listener: tokio::net::TcpListener,
    job: TrainerJob,
    history: Arc<RwLock<History>>,
    cancel: Arc<AtomicBool>,
) -> Result<(), String> {
    let inbox = Arc::new(Inbox::new(job.dataset, job.parts_wanted, POOL_LIMIT_BYTES));
    let app = Router::new()
        .route(PARTS_PATH, post(receive))
        .layer(DefaultBodyLimit::max(PART_LIMIT_BYTES))
        .with_state(inbox.clone());
    // Parts are large: a slow link may take minutes to send one.
    let limits = httpd::Limits {
        body_timeout: std::time::Duration::from_secs(600),
        ..httpd::Limits::default()
    };
    let serve = httpd::serve(
        listener,
        app,
        limits,
        httpd::Security::default(),
        std::future::pending(),
    );
    let work = async {
        inbox.wait_full().await;
        let (parts, bytes) = inbox.close();
        tracing::info!(
            parts = parts.len(),
            bytes,
            "central trainer: data pooled, training"
        );
        tokio::task::spawn_blocking(move || train(job, &parts, bytes, &history, &cancel))
            .await
            .map_err(|e| format!("training task: {e}"))?
    };
    tokio::select! {
        served = serve => Err(format!("parts endpoint ended: {served:?}")),
        done = work => done,
    }
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    body: Bytes,
) -> Result<axum::Json<Receipt>, (StatusCode, String)> {
    let bytes = body.len() as u64;
    inbox.room_for(bytes)?;
    let part = tokio::task::spawn_blocking(move || ml::data_part::decode(&body))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    inbox.add(part, bytes).map(axum::Json)
}

fn pooled(parts: &[ClientData]) -> Result<ClientData, String> {
    let train: Vec<&Dataset> = parts.iter().map(|p| &p.train).collect();
    let test: Vec<&Dataset> = parts.iter().map(|p| &p.test).collect();
    Ok(ClientData {
        train: Dataset::concat(&train).map_err(|e| format!("pooling the parts: {e}"))?,
        test: Dataset::concat(&test).map_err(|e| format!("pooling the parts: {e}"))?,
    })
}

fn central_record(e: ml::Evaluation) -> CentralRecord {
    CentralRecord {
        loss: e.loss,
        metrics: [("accuracy".to_owned(), e.accuracy)].into(),
    }
}

/// Trains on the pooled parts, one round of `history` per pass.
fn train(
    job: TrainerJob,
    parts: &[ClientData],
    bytes: u64,
    history: &RwLock<History>,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let began = Instant::now();
    let data = pooled(parts)?;
    let held_out = !data.test.is_empty();
    let examples = data.train.len() as u64;
    let mut evaluator = job.evaluator;
    let mut trainer = ml::LocalTrainer::new(job.model, data, job.threads, job.seed)
        .map_err(|e| format!("building the model: {e}"))?;
    let mut score = |trainer: &mut ml::LocalTrainer| -> Result<Option<CentralRecord>, String> {
        let Some(evaluator) = evaluator.as_mut() else {
            return Ok(None);
        };
        let params = trainer
            .get_parameters(&fl::Config::new())
            .map_err(|e| e.to_string())?;
        let e = evaluator.evaluate(&params).map_err(|e| e.to_string())?;
        Ok(Some(central_record(e)))
    };
    let initial = score(&mut trainer)?;
    update(history, |h| h.initial_central = initial);
    for round in 1..=job.passes {
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        let started_s = began.elapsed().as_secs_f64();
        let t = Instant::now();
        let stats = trainer.train_locally(&job.fit).map_err(|e| e.to_string())?;
        let fit_s = t.elapsed().as_secs_f64();
        let evaluate = if held_out {
            let t = Instant::now();
            let e = trainer.evaluate_locally().map_err(|e| e.to_string())?;
            Some(PhaseRecord {
                sampled: parts.len(),
                completed: parts.len(),
                duration_s: t.elapsed().as_secs_f64(),
                loss: Some(e.loss),
                metrics: [("accuracy".to_owned(), e.accuracy)].into(),
                num_examples: e.num_examples as u64,
                ..PhaseRecord::default()
            })
        } else {
            None
        };
        let central = score(&mut trainer)?;
        let record = RoundRecord {
            round,
            started_s,
            fit: PhaseRecord {
                sampled: parts.len(),
                completed: parts.len(),
                duration_s: fit_s,
                loss: Some(stats.loss),
                metrics: [("train_accuracy".to_owned(), stats.accuracy)].into(),
                num_examples: examples,
                ..PhaseRecord::default()
            },
            evaluate,
            central,
            bytes_sent: 0,
            bytes_received: if round == 1 { bytes } else { 0 },
            duration_s: began.elapsed().as_secs_f64() - started_s,
        };
        update(history, |h| h.rounds.push(record));
    }
    update(history, |h| {
        h.duration_s = Some(began.elapsed().as_secs_f64())
    });
    Ok(())
}

fn update(history: &RwLock<History>, change: impl FnOnce(&mut History)) {
    change(&mut history.write().unwrap_or_else(PoisonError::into_inner));
}
