//! Prometheus metrics of FL servers, shared by every server in a process
//! and told apart by their labels (e.g. `job`), and the TCP statistics of
//! their open client connections, read when scraped.

use super::tcp_info::{ConnectionCollector, Connections, TrackedStream};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Label pairs identifying one server (e.g. `[("job", "j1")]`).
pub type Labels = Vec<(String, String)>;

fn round_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The FL server metric families.
#[derive(Debug, Clone)]
pub struct FlServerMetrics {
    rounds: Family<Labels, Counter>,
    round_duration: Family<Labels, Histogram, fn() -> Histogram>,
    failures: Family<Labels, Counter>,
    sent: Family<Labels, Counter>,
    received: Family<Labels, Counter>,
    connected: Family<Labels, Gauge>,
    participants: Family<Labels, Gauge>,
    loss: Family<Labels, Gauge<f64, AtomicU64>>,
    accuracy: Family<Labels, Gauge<f64, AtomicU64>>,
    connections: Connections,
}

impl FlServerMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            rounds: Family::default(),
            round_duration: Family::new_with_constructor(round_histogram),
            failures: Family::default(),
            sent: Family::default(),
            received: Family::default(),
            connected: Family::default(),
            participants: Family::default(),
            loss: Family::default(),
            accuracy: Family::default(),
            connections: Connections::default(),
        };
        registry.register("fl_server_rounds", "FL rounds completed", m.rounds.clone());
        registry.register(
            "fl_server_round_duration_seconds",
            "Wall time of an FL round",
            m.round_duration.clone(),
        );
        registry.register(
            "fl_server_client_failures",
            "Client failures by phase (fit, evaluate)",
            m.failures.clone(),
        );
        registry.register(
            "fl_server_sent_bytes",
            "Bytes sent to FL clients",
            m.sent.clone(),
        );
        registry.register(
            "fl_server_received_bytes",
            "Bytes received from FL clients",
            m.received.clone(),
        );
        registry.register(
            "fl_server_connected_clients",
            "FL clients connected now",
            m.connected.clone(),
        );
        registry.register(
            "fl_server_round_participants",
            "Clients that completed fit in the latest round",
            m.participants.clone(),
        );
        registry.register("fl_server_loss", "Latest global loss", m.loss.clone());
        registry.register(
            "fl_server_accuracy",
            "Latest global accuracy",
            m.accuracy.clone(),
        );
        registry.register_collector(Box::new(ConnectionCollector(m.connections.clone())));
        m
    }

    /// A recorder for one server with the given labels.
    pub fn for_server(&self, labels: Labels) -> ServerRecorder {
        ServerRecorder {
            metrics: self.clone(),
            labels,
        }
    }
}

/// Records one server's figures into the shared families.
#[derive(Debug, Clone)]
pub struct ServerRecorder {
    metrics: FlServerMetrics,
    labels: Labels,
}

impl ServerRecorder {
    /// A recorder on a private registry, for servers nobody scrapes.
    pub fn detached() -> Self {
        FlServerMetrics::register(&mut Registry::default()).for_server(Vec::new())
    }

    fn with(&self, key: &str, value: &str) -> Labels {
        let mut l = self.labels.clone();
        l.push((key.to_owned(), value.to_owned()));
        l
    }

    /// One round finished.
    pub fn round(&self, seconds: f64, participants: usize, sent: u64, received: u64) {
        let m = &self.metrics;
        m.rounds.get_or_create(&self.labels).inc();
        m.round_duration
            .get_or_create(&self.labels)
            .observe(seconds);
        m.participants
            .get_or_create(&self.labels)
            .set(participants as i64);
        m.sent.get_or_create(&self.labels).inc_by(sent);
        m.received.get_or_create(&self.labels).inc_by(received);
    }

    /// Lists an accepted client connection, with this server's labels and
    /// its peer, in the connection statistics until it is dropped.
    pub(crate) fn track(&self, stream: tokio::net::TcpStream) -> TrackedStream {
        self.metrics.connections.track(stream, self.labels.clone())
    }

    /// Clients failed in `phase`.
    pub fn failures(&self, phase: &str, n: usize) {
        self.metrics
            .failures
            .get_or_create(&self.with("phase", phase))
            .inc_by(n as u64);
    }

    /// The number of connected clients changed.
    pub fn connected(&self, n: usize) {
        self.metrics
            .connected
            .get_or_create(&self.labels)
            .set(n as i64);
    }

    /// Latest global loss and accuracy.
    pub fn quality(&self, loss: Option<f64>, accuracy: Option<f64>) {
        if let Some(l) = loss {
            self.metrics.loss.get_or_create(&self.labels).set(l);
        }
        if let Some(a) = accuracy {
            self.metrics.accuracy.get_or_create(&self.labels).set(a);
        }
    }
}
