//! A real Prometheus server for a run: its configuration generated from the
//! topology (every host's `/metrics`), and the run's queries saved at the end.

use crate::error::RunError;
use serde_json::Value;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The `prometheus` executable: `$DMO_PROMETHEUS`, else the Debian package's.
pub fn binary() -> Result<PathBuf, RunError> {
    let path = std::env::var_os("DMO_PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    if path.exists() {
        Ok(path)
    } else {
        Err(RunError::Prometheus(format!(
            "prometheus.enabled: {} not found; apt-get install prometheus, or set DMO_PROMETHEUS",
            path.display()
        )))
    }
}

/// `prometheus.yml` scraping `targets` (host name, address, kind) every
/// `interval_s`, over HTTPS trusting the CA file `ca` when given.
pub fn config(
    interval_s: f64,
    targets: &[(String, SocketAddr, &str)],
    ca: Option<&std::path::Path>,
) -> String {
    let mut out = format!(
        "global:\n  scrape_interval: {ms}ms\n  evaluation_interval: {ms}ms\nscrape_configs:\n",
        ms = (interval_s * 1000.0).round() as u64
    );
    for kind in ["mlfo", "node", "testbed"] {
        if !targets.iter().any(|(_, _, k)| *k == kind) {
            continue;
        }
        let _ = writeln!(out, "  - job_name: {kind}");
        if let Some(ca) = ca {
            let _ = writeln!(
                out,
                "    scheme: https\n    tls_config:\n      ca_file: '{}'",
                ca.display()
            );
        }
        out += "    static_configs:\n";
        for (host, addr, _) in targets.iter().filter(|(_, _, k)| *k == kind) {
            let _ = write!(
                out,
                "      - targets: ['{addr}']\n        labels: {{ host: '{host}' }}\n"
            );
        }
    }
    out
}

/// Runs each instant query against Prometheus at `addr`; returns
/// `{query: [{metric: {...}, value: number}]}`.
pub fn query_all(
    http: &reqwest::blocking::Client,
    addr: SocketAddr,
    queries: &[String],
) -> Result<Value, RunError> {
    let mut saved = serde_json::Map::new();
    for q in queries {
        let reply: Value = http
            .get(format!("http://{addr}/api/v1/query"))
            .query(&[("query", q)])
            .send()
            .and_then(|r| r.json())
            .map_err(|e| RunError::Prometheus(format!("Prometheus query {q:?}: {e}")))?;
        if reply["status"] != "success" {
            return Err(RunError::Prometheus(format!(
                "Prometheus query {q:?}: {reply}"
            )));
        }
        let series: Vec<Value> = reply["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                serde_json::json!({ "metric": s["metric"], "value": value })
            })
            .collect();
        saved.insert(q.clone(), Value::Array(series));
    }
    Ok(Value::Object(saved))
}

/// Waits until Prometheus at `addr` scrapes all `expected` targets
/// successfully (its service discovery hands targets over only every 5 s).
pub fn wait_targets(
    http: &reqwest::blocking::Client,
    addr: SocketAddr,
    expected: usize,
    timeout: std::time::Duration,
) -> Result<(), RunError> {
    let start = std::time::Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        if let Ok(reply) = http
            .get(format!("http://{addr}/api/v1/targets"))
            .send()
            .and_then(|r| r.json::<Value>())
        {
            let targets = reply["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let up = targets.iter().filter(|t| t["health"] == "up").count();
            if targets.len() == expected && up == expected {
                return Ok(());
            }
            last = targets
                .iter()
                .filter(|t| t["health"] != "up")
                .map(|t| format!("{} {}: {}", t["scrapeUrl"], t["health"], t["lastError"]))
                .collect::<Vec<_>>()
                .join("; ");
            last = format!(
                "{up} of {expected} targets up ({} known) {last}",
                targets.len()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err(RunError::Prometheus(format!(
        "Prometheus at {addr} does not scrape every host: {last}"
    )))
}
