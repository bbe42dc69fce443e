//! The MLFO's Prometheus metrics: intents by state, orchestration latency
//! per phase, Mo-Mo and SBI calls by outcome.

use crate::record::IntentState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;

type LatencyFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// A latency histogram with buckets from 1 ms to about 2 minutes.
fn new_latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 18,
    ))
}

/// The MLFO's metric families; cheap to clone, shared by its tasks.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    intents: Family<Labels, Gauge>,
    latency: LatencyFamily,
    momo: Family<Labels, Counter>,
    sbi: Family<Labels, Counter>,
    mlfo: String,
}

impl Metrics {
    /// Creates and registers every family; `mlfo` labels them all.
    pub fn new(mlfo: &str) -> Self {
        let mut registry = Registry::default();
        let intents = Family::<Labels, Gauge>::default();
        let latency: LatencyFamily = Family::new_with_constructor(new_latency_histogram);
        let momo = Family::<Labels, Counter>::default();
        let sbi = Family::<Labels, Counter>::default();
        registry.register("mlfo_intents", "Intents by state", intents.clone());
        registry.register(
            "mlfo_orchestration_latency_seconds",
            "Seconds from an intent's arrival to each orchestration milestone (phase), and of each Mo-Mo call",
            latency.clone(),
        );
        registry.register(
            "mlfo_momo_requests",
            "Mo-Mo calls by side (client or server), rpc and outcome",
            momo.clone(),
        );
        registry.register(
            "mlfo_sbi_requests",
            "Node agent (SBI) calls by operation and outcome",
            sbi.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            intents,
            latency,
            momo,
            sbi,
            mlfo: mlfo.to_owned(),
        }
    }

    fn labels(&self, pairs: &[(&str, &str)]) -> Labels {
        std::iter::once(("mlfo".to_owned(), self.mlfo.clone()))
            .chain(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            )
            .collect()
    }

    /// Records `seconds` for orchestration `phase` of an intent.
    pub fn latency(&self, phase: &str, seconds: f64) {
        self.latency
            .get_or_create(&self.labels(&[("phase", phase)]))
            .observe(seconds);
    }

    /// Counts a Mo-Mo call.
    pub fn momo_call(&self, side: &str, rpc: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.momo
            .get_or_create(&self.labels(&[("side", side), ("rpc", rpc), ("outcome", outcome)]))
            .inc();
    }

    /// Counts a node agent call.
    pub fn sbi_call(&self, operation: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.sbi
            .get_or_create(&self.labels(&[("operation", operation), ("outcome", outcome)]))
            .inc();
    }

    /// Encodes every family, with the intent gauge set from `counts` (state name, count).
    pub fn encode(&self, counts: &[(String, u64)]) -> Result<String, std::fmt::Error> {
        for state in IntentState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.intents
                .get_or_create(&self.labels(&[("state", state.as_str())]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        encode(&mut out, &registry)?;
        Ok(out)
    }
}
