//! The cost model's inputs, measured where the testbed can measure them:
//! the path from each campus of the cohort to the cloud through the
//! network controller's `GET /v1/paths` (each link's available bandwidth,
//! the probed RTT), and a client's local
//! training time through its node agent's `POST /v1/probes/training`.
//! A figure that cannot be measured falls back to the configuration's
//! declared one (`network:`), marked `declared`, with a note saying why.
//! Measurements are shared for [`REUSE_S`] by the intents over the same
//! cohort and model, so that a burst of submissions measures once.

use crate::config::AgentEntry;
use crate::cost::{Figure, Source};
use crate::record::EdgePlacement;
use crate::sbi::{MeasuredHop, MeasuredPath};
use crate::service::Mlfo;
use intent::ResolvedTarget;
use node::probe::{TrainingProbe, TrainingProbeRequest};
use std::time::Instant;
use tokio::task::JoinSet;

/// Seconds a measurement serves later decisions over the same cohort.
pub const REUSE_S: f64 = 30.0;
/// Steps a training probe times.
const PROBE_STEPS: usize = 10;

/// The figures of one decision, each with its source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figures {
    /// Available bandwidth of the wide-area bottleneck, Mbit/s.
    pub wan_mbit: Figure,
    /// RTT from the campuses to the cloud, ms.
    pub rtt_ms: Figure,
    /// Available bandwidth of a campus host's own link, Mbit/s.
    pub campus_mbit: Figure,
    /// A client's local training per round, alone on its host, seconds.
    pub train_s: Figure,
    /// Clients that train at once without slowing each other, where the
    /// client hosts share cores.
    pub parallel: Option<Figure>,
    /// What could not be measured, and why.
    pub notes: Vec<String>,
}

impl Figures {
    /// Every figure, for the record.
    pub fn list(&self) -> Vec<Figure> {
        [
            &self.wan_mbit,
            &self.rtt_ms,
            &self.campus_mbit,
            &self.train_s,
        ]
        .into_iter()
        .chain(self.parallel.as_ref())
        .cloned()
        .collect()
    }
}

/// The last measurement, kept for [`REUSE_S`].
#[derive(Default)]
pub(crate) struct Reuse(tokio::sync::Mutex<Option<(Instant, String, Figures)>>);

fn figure(name: &str, value: f64, source: Source) -> Figure {
    Figure {
        name: name.to_owned(),
        value,
        source,
    }
}

/// The least share of a link's rate a new job counts on, however busy the
/// link looked: TCP gives a new flow a share of a saturated link, not
/// nothing (and a prediction divided by zero would be infinite).
pub const MIN_SHARE: f64 = 0.1;
/// The least bandwidth a figure may hold, Mbit/s, when no rate is known.
const MIN_MBIT: f64 = 0.01;

/// A hop's bandwidth for a new job: what is available, at least
/// [`MIN_SHARE`] of its rate and [`MIN_MBIT`].
fn usable_mbit(h: &MeasuredHop) -> Option<f64> {
    let floor = h
        .rate_mbit
        .map_or(MIN_MBIT, |r| (r * MIN_SHARE).max(MIN_MBIT));
    h.available_mbit
        .filter(|v| !v.is_nan())
        .map(|v| v.max(floor))
}

/// The available bandwidth of the wide-area links and of the campus
/// links, Mbit/s, from the campuses' paths ([`usable_mbit`] of each hop). A link on every campus's path
/// (past each one's own access link) is wide-area: all clients share it.
/// The others (access links, campus uplinks) carry one campus's traffic.
/// With one campus, everything past its access link is wide-area.
fn split_links(paths: &[MeasuredPath]) -> (Option<f64>, Option<f64>) {
    let beyond = |p: &MeasuredPath| -> Vec<MeasuredHop> {
        let n = p.reverse.len();
        p.forward
            .iter()
            .skip(1)
            .chain(p.reverse.iter().take(n.saturating_sub(1)))
            .cloned()
            .collect()
    };
    let access = |p: &MeasuredPath| -> Vec<MeasuredHop> {
        p.forward
            .first()
            .into_iter()
            .chain(p.reverse.last())
            .cloned()
            .collect()
    };
    let shared = |link: &str| {
        paths.len() < 2
            || paths
                .iter()
                .all(|p| beyond(p).iter().any(|h| h.link == link))
    };
    let (mut wan, mut campus) = (None::<f64>, None::<f64>);
    let least = |acc: &mut Option<f64>, v: Option<f64>| {
        if let Some(v) = v {
            *acc = Some(acc.map_or(v, |a| a.min(v)));
        }
    };
    for p in paths {
        for h in beyond(p) {
            if shared(&h.link) {
                least(&mut wan, usable_mbit(&h));
            } else {
                least(&mut campus, usable_mbit(&h));
            }
        }
        for h in access(p) {
            least(&mut campus, usable_mbit(&h));
        }
    }
    (wan, campus)
}

/// The host whose path stands for a campus: its edge aggregator, else its
/// first client.
fn campus_hosts(clients: &[AgentEntry], edges: &[EdgePlacement]) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut hosts = Vec::new();
    for c in clients {
        let Some(campus) = c.campus.as_deref() else {
            continue;
        };
        if seen.contains(&campus) {
            continue;
        }
        seen.push(campus);
        let edge = edges.iter().find(|e| e.campus == campus);
        hosts.push(edge.map_or_else(|| c.name.clone(), |e| e.host.clone()));
    }
    if hosts.is_empty() {
        hosts.extend(clients.first().map(|c| c.name.clone()));
    }
    hosts
}

/// The paths from `hosts` to the cloud MLFO's host, measured at once.
async fn paths(mlfo: &Mlfo, hosts: Vec<String>, notes: &mut Vec<String>) -> Vec<MeasuredPath> {
    let config = &mlfo.inner.config;
    let Some(controller) = config.network_controller.clone() else {
        return Vec::new();
    };
    let cloud = config
        .parent
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    let Some(cloud) = cloud else {
        notes.push("paths: not measured, this MLFO has no parent URL naming the cloud".into());
        return Vec::new();
    };
    let mut calls = JoinSet::new();
    for host in hosts {
        let (sbi, controller, cloud) = (mlfo.inner.sbi.clone(), controller.clone(), cloud.clone());
        calls.spawn(async move { sbi.path(&controller, &host, &cloud).await });
    }
    let mut out = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(p)) => out.push(p),
            Ok(Err(why)) => notes.push(format!("path not measured: {why}")),
            Err(why) => notes.push(format!("path not measured: {why}")),
        }
    }
    out
}

/// Times one client's local training: the cohort's first client, as it
/// would be started.
async fn probe(
    mlfo: &Mlfo,
    target: &ResolvedTarget,
    clients: &[AgentEntry],
    notes: &mut Vec<String>,
) -> Option<TrainingProbe> {
    let first = clients.first()?;
    let options = &mlfo.inner.config.client;
    let request = TrainingProbeRequest {
        dataset: target.pipeline.src.kind.to_string(),
        model: target.pipeline.model.kind.to_string(),
        num_clients: Some(clients.len()),
        index: Some(0),
        partition: Some(options.partition.clone()),
        seed: Some(options.seed),
        threads: options.threads,
        batch_size: Some(target.plan.settings().batch_size as usize),
        steps: Some(PROBE_STEPS),
    };
    match mlfo.inner.sbi.probe_training(first, &request).await {
        Ok(p) => Some(p),
        Err(why) => {
            notes.push(format!("train_s not measured: {why}"));
            None
        }
    }
}

/// Measures what it can, takes the rest from the declared figures; `None`
/// (with the reason) when a network figure is neither.
async fn measure(
    mlfo: &Mlfo,
    target: &ResolvedTarget,
    clients: &[AgentEntry],
    edges: &[EdgePlacement],
) -> Result<Figures, String> {
    let declared = mlfo.inner.config.network.as_ref();
    let mut notes = Vec::new();
    let measured = paths(mlfo, campus_hosts(clients, edges), &mut notes).await;
    let pick = |name: &str, value: Option<f64>, fallback: Option<f64>| match (value, fallback) {
        (Some(v), _) => Ok(figure(name, v, Source::Measured)),
        (None, Some(v)) => Ok(figure(name, v, Source::Declared)),
        (None, None) => Err(format!(
            "{name}: not measured (no network controller answered) and not declared (network: in the MLFO's configuration)"
        )),
    };
    let (wan, campus) = split_links(&measured);
    let wan_mbit = pick("wan_mbit", wan, declared.map(|d| d.wan_mbit))?;
    let campus_mbit = pick("campus_mbit", campus, declared.map(|d| d.campus_mbit))?;
    let rtt = measured
        .iter()
        .filter_map(|p| p.rtt_ms)
        .max_by(f64::total_cmp);
    let rtt_ms = pick("rtt_ms", rtt, declared.map(|d| d.rtt_ms))?;
    let probed = probe(mlfo, target, clients, &mut notes).await;
    let epochs = f64::from(target.plan.settings().local_epochs);
    let train_s = match &probed {
        Some(p) => figure("train_s", epochs * p.epoch_s, Source::Measured),
        None => figure(
            "train_s",
            declared.map_or(0.0, |d| d.train_s),
            Source::Declared,
        ),
    };
    let threads = probed
        .as_ref()
        .map_or(mlfo.inner.config.client.threads.unwrap_or(1), |p| p.threads)
        .max(1);
    let parallel = declared
        .and_then(|d| d.shared_cores)
        .map(|cores| figure("parallel", cores / threads as f64, Source::Declared));
    Ok(Figures {
        wan_mbit,
        rtt_ms,
        campus_mbit,
        train_s,
        parallel,
        notes,
    })
}

/// The figures for a decision over `clients` training `target`, measured
/// now or within the last [`REUSE_S`] for the same cohort and model.
pub(crate) async fn figures(
    mlfo: &Mlfo,
    target: &ResolvedTarget,
    clients: &[AgentEntry],
    edges: &[EdgePlacement],
) -> Result<Figures, String> {
    let hosts: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
    let key = format!(
        "{}|{}|{}|{}|{}",
        hosts.join(","),
        target.pipeline.src.kind,
        target.pipeline.model.kind,
        target.plan.settings().batch_size,
        target.plan.settings().local_epochs
    );
    let mut last = mlfo.inner.measured.0.lock().await;
    if let Some((at, k, f)) = last.as_ref()
        && *k == key
        && at.elapsed().as_secs_f64() < REUSE_S
    {
        return Ok(f.clone());
    }
    let measured = measure(mlfo, target, clients, edges).await?;
    *last = Some((Instant::now(), key, measured.clone()));
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(link: &str, mbit: f64) -> MeasuredHop {
        MeasuredHop {
            link: link.to_owned(),
            available_mbit: Some(mbit),
            rate_mbit: None,
        }
    }

    /// The path of campus `n` to the cloud: its host's link, its uplink,
    /// the satellite, the cloud host's link.
    fn path(n: u32, uplink: f64, satellite: f64) -> MeasuredPath {
        let hops = vec![
            hop(&format!("fla.{n}-campus{n}"), 500.0),
            hop(&format!("campus{n}-edgesw"), uplink),
            hop("satsw-edgesw", satellite),
            hop("mlfo.cloud-aggsw", 1000.0),
        ];
        let mut reverse = hops.clone();
        reverse.reverse();
        MeasuredPath {
            forward: hops,
            reverse,
            rtt_ms: Some(48.0),
        }
    }

    #[test]
    fn links_on_every_campus_path_are_wide_area_the_others_campus_links() {
        let (wan, campus) = split_links(&[path(1, 300.0, 20.0), path(2, 400.0, 20.0)]);
        assert_eq!((wan, campus), (Some(20.0), Some(300.0)));
        // A fast core: the campus uplinks are the narrower.
        let (wan, campus) = split_links(&[path(1, 100.0, 10_000.0), path(2, 100.0, 10_000.0)]);
        assert_eq!((wan, campus), (Some(1000.0), Some(100.0)));
        // One campus: its uplink carries every client, as a wide-area link.
        let (wan, campus) = split_links(&[path(1, 100.0, 10_000.0)]);
        assert_eq!((wan, campus), (Some(100.0), Some(500.0)));
        assert_eq!(split_links(&[]), (None, None));
    }

    #[test]
    fn a_saturated_link_still_gives_a_new_job_a_share() {
        // The satellite shaped to 10 Mbit/s and full: a tenth of it, not 0.
        let mut p = path(1, 100.0, 0.0);
        for h in p.forward.iter_mut().chain(p.reverse.iter_mut()) {
            if h.link == "satsw-edgesw" {
                h.rate_mbit = Some(10.0);
            }
        }
        assert_eq!(split_links(&[p.clone(), p]).0, Some(1.0));
        // No rate known: a small positive figure, so predictions stay finite.
        let (wan, _) = split_links(&[path(1, 100.0, 0.0), path(2, 100.0, 0.0)]);
        assert_eq!(wan, Some(MIN_MBIT));
        let mut nan = path(1, 100.0, 5.0);
        nan.forward[2].available_mbit = Some(f64::NAN);
        assert_eq!(split_links(&[nan.clone(), nan]).0, Some(5.0));
    }
}
