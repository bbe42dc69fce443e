//! The agent's Prometheus metrics: the FL server families (labelled by job,
//! with their connections' TCP statistics), the agent's own (jobs by kind
//! and state, client training totals) and the host's interface counters.

use crate::host::{HostNetworkCollector, PROC_NET_DEV};
use crate::jobs::{JobKind, JobState};
use fl::client::ClientSummary;
use fl::server::{FlServerMetrics, Labels};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The metric families of one agent and the registry that exposes them.
pub struct NodeMetrics {
    registry: Registry,
    /// FL server families; each server records with its job's labels.
    pub fl: FlServerMetrics,
    jobs: Family<Labels, Gauge>,
    train_seconds: Family<Labels, Counter<f64, AtomicU64>>,
    train_examples: Family<Labels, Counter>,
}

impl NodeMetrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let fl = FlServerMetrics::register(&mut registry);
        let jobs = Family::<Labels, Gauge>::default();
        let train_seconds = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let train_examples = Family::<Labels, Counter>::default();
        registry.register(
            "node_jobs",
            "Jobs of this node agent by kind and state",
            jobs.clone(),
        );
        registry.register(
            "fl_client_train_seconds",
            "Seconds of local training of FL clients",
            train_seconds.clone(),
        );
        registry.register(
            "fl_client_train_examples",
            "Examples trained on by FL clients, summed over fits",
            train_examples.clone(),
        );
        registry.register_collector(Box::new(HostNetworkCollector::new(PROC_NET_DEV)));
        Self {
            registry,
            fl,
            jobs,
            train_seconds,
            train_examples,
        }
    }

    /// Adds a finished client session's training totals.
    pub fn client_trained(&self, labels: &Labels, summary: &ClientSummary) {
        self.train_seconds
            .get_or_create(labels)
            .inc_by(summary.train_seconds);
        self.train_examples
            .get_or_create(labels)
            .inc_by(summary.train_examples);
    }

    /// Encodes every family, with the job gauge set from `counts`.
    pub fn encode(&self, counts: &[(JobKind, JobState, usize)]) -> Result<String, std::fmt::Error> {
        for (kind, state, n) in counts {
            let labels = vec![
                ("kind".to_owned(), kind.as_str().to_owned()),
                ("state".to_owned(), state.as_str().to_owned()),
            ];
            self.jobs
                .get_or_create(&labels)
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}
