//! `POST /v1/probes/training`: how long a local training step takes on
//! this host, for a client that a request like `POST /v1/clients` would
//! start (the same data part, model and threads), so that an MLFO can
//! predict a round's training time from a measurement. One probe runs at
//! a time; it trains a copy of the model on the first batches.

use crate::error::ApiError;
use crate::jobs::Agent;
use crate::spec::{ClientRequest, FieldError, JSON_NAMES};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Steps timed when the request does not say.
pub const DEFAULT_STEPS: usize = 10;
/// Most steps a probe may time.
pub const MAX_STEPS: usize = 200;
/// Largest batch a probe may use.
pub const MAX_BATCH_SIZE: usize = 4096;
/// Batch size when the request does not say (the clients' default).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Body of `POST /v1/probes/training`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingProbeRequest {
    /// Dataset (canonical name or prototype alias).
    pub dataset: String,
    /// Model (canonical name or prototype alias).
    pub model: String,
    /// Clients in the cohort (default 1).
    pub num_clients: Option<usize>,
    /// The client's index in the cohort (default 0).
    pub index: Option<usize>,
    /// Partition scheme, as for a client (default iid).
    pub partition: Option<String>,
    /// Seed shared by the cohort (default 0).
    pub seed: Option<u64>,
    /// Training threads (default: the agent's `--threads`).
    pub threads: Option<usize>,
    /// Examples per step (default 32).
    pub batch_size: Option<usize>,
    /// Steps to time (default 10, at most [`MAX_STEPS`]).
    pub steps: Option<usize>,
}

/// What a probe measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingProbe {
    /// Training examples of the client's data part.
    pub examples: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Steps in one local epoch over the part.
    pub steps_per_epoch: usize,
    /// Seconds one step took (the mean over the timed steps).
    pub step_s: f64,
    /// Seconds one local epoch takes at that pace.
    pub epoch_s: f64,
    /// Threads the trainer used (0 asked: one per core).
    pub threads: usize,
}

impl TrainingProbeRequest {
    /// The client job this probe times, and its batch size and steps.
    fn checked(self) -> Result<(crate::spec::ClientJobSpec, usize, usize), FieldError> {
        let batch = self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let rule = format!("a whole number in 1..={MAX_BATCH_SIZE}");
        crate::spec::check(
            "batch_size",
            &rule,
            batch,
            (1..=MAX_BATCH_SIZE).contains(&batch),
        )?;
        let steps = self.steps.unwrap_or(DEFAULT_STEPS);
        let rule = format!("a whole number in 1..={MAX_STEPS}");
        crate::spec::check("steps", &rule, steps, (1..=MAX_STEPS).contains(&steps))?;
        let client = ClientRequest {
            // Never connected to: a probe only trains.
            server: "127.0.0.1:1".to_owned(),
            dataset: self.dataset,
            model: self.model,
            num_clients: self.num_clients,
            index: self.index,
            partition: self.partition,
            seed: self.seed,
            threads: self.threads,
            ..ClientRequest::default()
        };
        Ok((client.into_spec(&JSON_NAMES)?, batch, steps))
    }
}

/// `POST /v1/probes/training`: 200 with the measured step time.
pub async fn training(
    State(agent): State<Agent>,
    Json(request): Json<TrainingProbeRequest>,
) -> Result<Json<TrainingProbe>, ApiError> {
    let (spec, batch_size, steps) = request.checked()?;
    let ml_spec = agent.ml_spec(&spec);
    let _one_at_a_time = agent.probing().lock().await;
    let probe = tokio::task::spawn_blocking(move || {
        let mut trainer = ml::build_trainer(&ml_spec).map_err(|e| e.to_string())?;
        let step_s = trainer
            .time_steps(batch_size, steps)
            .map_err(|e| e.to_string())?;
        let examples = trainer.data().train.len();
        let steps_per_epoch = examples.div_ceil(batch_size);
        Ok::<_, String>(TrainingProbe {
            examples,
            batch_size,
            steps_per_epoch,
            step_s,
            epoch_s: step_s * steps_per_epoch as f64,
            threads: match ml_spec.threads {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            },
        })
    })
    .await
    .map_err(|e| ApiError::Probe(e.to_string()))?
    .map_err(ApiError::Probe)?;
    Ok(Json(probe))
}
