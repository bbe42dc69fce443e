//! Hierarchical FL at the edge MLFO: a job whose plan says `aggregation:
//! hierarchical` gets one edge aggregator per campus of its cohort that
//! has an edge-aggregator host, started through that host's node agent as
//! a server whose upstream is the job's cloud server; the campus's clients
//! then join their edge aggregator instead of the cloud. A campus without
//! such a host sends its clients to the cloud server directly. The cloud
//! server sees one participant per edge aggregator (and per direct client)
//! and waits for all of them; each edge aggregator samples its own clients
//! with the plan's fraction.

use crate::config::{AgentEntry, AgentRole};
use crate::cost::{self, Campus, Choice, Figure, Inputs, Source};
use crate::measure::Figures;
use crate::record::{EdgePlacement, IntentRecord, JobRecord};
use crate::service::Mlfo;
use intent::{Aggregation, FlPlan, ResolvedTarget, TrainingMode};
use node::{JobState, ServerRequest};
use std::collections::BTreeMap;
use tokio::task::JoinSet;

/// The share of the cloud server's round timeout an edge aggregator gives
/// each of its clients.
const EDGE_TIMEOUT_SHARE: f64 = 0.8;

/// The campuses of `clients` in order of their first client, each with the
/// indices of its clients; clients with no campus are left out.
fn campuses(clients: &[AgentEntry]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let Some(campus) = &c.campus else { continue };
        match out.iter_mut().find(|(name, _)| name == campus) {
            Some((_, members)) => members.push(i),
            None => out.push((campus.clone(), vec![i])),
        }
    }
    out
}

/// The edge aggregators a hierarchical job over `clients` needs: one per
/// campus that has an edge-aggregator host in `inventory`, on the least
/// busy of them (`busy` lists the hosts of the edge aggregators running
/// now); an error names the campus whose hosts are all full.
pub(crate) fn plan(
    inventory: &[AgentEntry],
    clients: &[AgentEntry],
    busy: &[String],
) -> Result<Vec<EdgePlacement>, String> {
    let mut taken: Vec<String> = busy.to_vec();
    let mut out = Vec::new();
    for (campus, members) in campuses(clients) {
        let hosts: Vec<&AgentEntry> = inventory
            .iter()
            .filter(|a| a.role == AgentRole::EdgeAggregator && a.campus.as_ref() == Some(&campus))
            .collect();
        if hosts.is_empty() {
            continue;
        }
        let load = |a: &AgentEntry| taken.iter().filter(|h| **h == a.name).count();
        let Some(host) = hosts
            .iter()
            .filter(|a| load(a) < a.capacity)
            .min_by_key(|a| load(a))
        else {
            let full: Vec<String> = hosts
                .iter()
                .map(|a| format!("{} runs {}/{}", a.name, load(a), a.capacity))
                .collect();
            return Err(format!(
                "{campus}: no edge aggregator host has room ({}); wait for a job to end or raise its capacity",
                full.join(", ")
            ));
        };
        taken.push(host.name.clone());
        out.push(EdgePlacement {
            campus,
            host: host.name.clone(),
            agent_url: host.url.clone(),
            clients: members.len(),
            job_id: None,
            address: None,
            lost: None,
        });
    }
    Ok(out)
}

/// The plan of a job training `target` over `clients` with `aggregation`:
/// the cost model's prediction of every option that `aggregation` allows
/// (`auto`: every combination of the campuses that have an edge
/// aggregator in `edges`) from `figures`, and the fastest. Fails, with the
/// fastest option's prediction, when none trains the plan's rounds within
/// `deadline_s`.
pub(crate) fn choose(
    target: &ResolvedTarget,
    figures: &Figures,
    clients: &[AgentEntry],
    edges: &[EdgePlacement],
    aggregation: Aggregation,
    deadline_s: Option<f64>,
) -> Result<Choice, String> {
    let plan = target.plan.settings();
    let (model, data) = (target.pipeline.model.kind, target.pipeline.src.kind);
    let parameters = model
        .architecture()
        .parameter_count(data.input_shape(), data.num_classes())
        .ok_or_else(|| format!("model {model} cannot run on {data}"))?;
    let inputs = Inputs {
        model_bytes: 4.0 * parameters as f64,
        fraction_fit: plan.fraction_fit,
        min_fit: plan.min_fit as usize,
        campuses: campuses(clients)
            .into_iter()
            .map(|(name, members)| Campus {
                edge_aggregator: edges.iter().any(|e| e.campus == name),
                clients: members.len(),
                name,
            })
            .chain(
                // Clients with no campus join the server directly.
                Some(clients.iter().filter(|c| c.campus.is_none()).count())
                    .filter(|n| *n > 0)
                    .map(|n| Campus {
                        name: "(no campus)".to_owned(),
                        clients: n,
                        edge_aggregator: false,
                    }),
            )
            .collect(),
        wan_mbit: figures.wan_mbit.value,
        rtt_ms: figures.rtt_ms.value,
        campus_mbit: figures.campus_mbit.value,
        train_s: figures.train_s.value,
        parallel: figures.parallel.as_ref().map(|f| f.value),
    };
    let (best, fastest, options) = cost::choose(&inputs, aggregation);
    let rounds = f64::from(plan.rounds);
    if let Some(deadline) = deadline_s.filter(|d| best.round_s * rounds > *d) {
        let predicted = |p: &cost::Prediction| {
            format!(
                "{:.2} s a round, {:.0} s for {} rounds",
                p.round_s,
                p.round_s * rounds,
                plan.rounds
            )
        };
        return Err(if fastest.round_s * rounds > deadline {
            format!(
                "deadline_s {deadline}: no option meets it; the fastest ({}) is predicted at {}",
                describe(&fastest),
                predicted(&fastest)
            )
        } else {
            format!(
                "deadline_s {deadline}: aggregation {aggregation} is predicted at {}; {} would meet it ({}): ask for aggregation auto",
                predicted(&best),
                describe(&fastest),
                predicted(&fastest)
            )
        });
    }
    let model_bytes = Figure {
        name: "model_bytes".to_owned(),
        value: inputs.model_bytes,
        source: Source::Declared,
    };
    Ok(Choice {
        requested: aggregation,
        chosen: best.aggregation,
        edge_campuses: best.edge_campuses,
        options,
        inputs: std::iter::once(model_bytes).chain(figures.list()).collect(),
    })
}

/// An option in words: `flat`, or `hierarchical on campus1, campus2`.
fn describe(p: &cost::Prediction) -> String {
    if p.edge_campuses.is_empty() {
        p.aggregation.to_string()
    } else {
        format!("{} on {}", p.aggregation, p.edge_campuses.join(", "))
    }
}

/// The plans of an intent's federated targets over `clients`, made when
/// it is submitted: measured figures where the testbed offers them, else
/// the declared ones; `None` for a target without figures (an `auto` one
/// then runs flat, with a note). Fails naming a deadline no option meets.
pub(crate) async fn plans(
    mlfo: &Mlfo,
    targets: &[(ResolvedTarget, FlPlan)],
    clients: &[AgentEntry],
    notes: &mut Vec<String>,
) -> Result<Vec<Option<Choice>>, String> {
    let config = &mlfo.inner.config;
    let can_figure = config.network.is_some() || config.network_controller.is_some();
    let edges = plan(&config.inventory, clients, &[]).unwrap_or_default();
    let mut out = Vec::new();
    for (target, settings) in targets {
        if target.plan.mode() != TrainingMode::Federated || !can_figure {
            if settings.aggregation == Aggregation::Auto && !edges.is_empty() {
                notes.push(format!(
                    "target {}: aggregation auto, but this MLFO can neither measure the network (network_controller:) nor read its figures (network:): the job runs flat",
                    target.id
                ));
            }
            out.push(None);
            continue;
        }
        // Where nothing depends on the plan it is kept for the record,
        // and what could not be measured is not worth a note.
        let decides = (settings.aggregation == Aggregation::Auto && !edges.is_empty())
            || settings.deadline_s.is_some();
        let figures = match crate::measure::figures(mlfo, target, clients, &edges).await {
            Ok(f) => f,
            Err(why) => {
                if decides {
                    notes.push(format!("target {}: no plan: {why}", target.id));
                }
                out.push(None);
                continue;
            }
        };
        if decides {
            notes.extend(
                figures
                    .notes
                    .iter()
                    .map(|n| format!("target {}: {n}", target.id)),
            );
        }
        let choice = choose(
            target,
            &figures,
            clients,
            &edges,
            settings.aggregation,
            settings.deadline_s,
        )
        .map_err(|why| format!("target {}: {why}", target.id))?;
        out.push(Some(choice));
    }
    Ok(out)
}

/// Participants the cloud server of a hierarchical job over `clients` has:
/// its edge aggregators and the clients of campuses without one.
pub(crate) fn upstream_participants(edges: &[EdgePlacement], clients: &[AgentEntry]) -> usize {
    let direct = clients
        .iter()
        .filter(|c| {
            c.campus
                .as_ref()
                .is_none_or(|campus| !edges.iter().any(|e| &e.campus == campus))
        })
        .count();
    edges.len() + direct
}

/// The hosts of the edge aggregators of every unfinished intent but `except`.
pub(crate) fn busy_hosts(mlfo: &Mlfo, except: &str) -> Vec<String> {
    mlfo.inner
        .store
        .unfinished_intents()
        .unwrap_or_default()
        .iter()
        .filter(|r| r.id != except)
        .flat_map(|r| &r.jobs)
        .flat_map(|j| &j.edge_aggregators)
        .filter(|e| e.lost.is_none())
        .map(|e| e.host.clone())
        .collect()
}

/// What an edge aggregator's agent is asked to run for a campus of
/// `clients` clients: FedAvg over them with the plan's fraction, one local
/// round per cloud round, as a client of the server at `upstream`.
fn request(
    record: &IntentRecord,
    edge: &EdgePlacement,
    plan: &FlPlan,
    upstream: &str,
    round_timeout_s: Option<f64>,
) -> ServerRequest {
    let clients = edge.clients.max(1);
    ServerRequest {
        upstream: Some(upstream.to_owned()),
        local_rounds: Some(1),
        strategy: Some("fedavg".to_owned()),
        fraction_fit: Some(plan.fraction_fit),
        min_fit: Some((plan.min_fit as usize).clamp(1, clients)),
        min_available: Some((plan.min_available as usize).clamp(1, clients)),
        min_evaluate: Some((plan.min_fit as usize).clamp(1, clients)),
        round_timeout_s,
        labels: BTreeMap::from([
            ("intent".to_owned(), record.id.clone()),
            ("campus".to_owned(), edge.campus.clone()),
            ("role".to_owned(), "edge-aggregator".to_owned()),
        ]),
        ..ServerRequest::default()
    }
}

/// Starts job `k`'s edge aggregators (planned in its record) against its
/// cloud server; fails naming the first campus whose aggregator could not
/// start (the caller tears down what did).
pub(crate) async fn start(
    mlfo: &Mlfo,
    record: &mut IntentRecord,
    k: usize,
    target: &ResolvedTarget,
) -> Result<(), String> {
    let upstream = record.jobs[k]
        .server
        .as_ref()
        .map(|s| s.address.clone())
        .ok_or_else(|| "hierarchical job without a cloud server".to_owned())?;
    let plan = target.plan.settings();
    // The cloud server's timeout covers the edge's whole round: the edge
    // gives up on a silent client first, so that its aggregate still counts.
    let timeout = mlfo
        .inner
        .config
        .server
        .round_timeout_s
        .map(|t| t * EDGE_TIMEOUT_SHARE);
    let mut calls = JoinSet::new();
    for (e, edge) in record.jobs[k].edge_aggregators.iter().enumerate() {
        let request = ServerRequest {
            // Flower over TLS wherever this MLFO speaks TLS.
            tls: mlfo.inner.tls.is_some().then_some(true),
            ..request(record, edge, plan, &upstream, timeout)
        };
        let (sbi, agent) = (mlfo.inner.sbi.clone(), edge.agent());
        calls.spawn(async move { (e, sbi.start_server(&agent, &request).await) });
    }
    let mut first_error: Option<(usize, String)> = None;
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok((e, Ok(started))) => {
                let edge = &mut record.jobs[k].edge_aggregators[e];
                edge.job_id = Some(started.id);
                edge.address = started.address;
            }
            Ok((e, Err(why))) => {
                let edge = &record.jobs[k].edge_aggregators[e];
                if first_error.as_ref().is_none_or(|(i, _)| e < *i) {
                    first_error = Some((
                        e,
                        format!("edge aggregator of {} on {}: {why}", edge.campus, edge.host),
                    ));
                }
            }
            Err(why) => {
                first_error =
                    first_error.or(Some((usize::MAX, format!("edge aggregator start: {why}"))))
            }
        }
    }
    match first_error {
        Some((_, reason)) => Err(reason),
        None => Ok(()),
    }
}

/// The address client `index` of `job` joins: its campus's edge
/// aggregator, else the job's server.
pub(crate) fn server_for(job: &JobRecord, index: usize) -> String {
    let campus = job.clients.get(index).and_then(|c| c.campus.as_ref());
    campus
        .and_then(|campus| job.edge_aggregators.iter().find(|e| &e.campus == campus))
        .and_then(|e| e.address.clone())
        .or_else(|| job.server.as_ref().map(|s| s.address.clone()))
        .unwrap_or_default()
}

/// The edge aggregator jobs of the intent, to stop: agent and job id.
pub(crate) fn jobs(record: &IntentRecord) -> Vec<(AgentEntry, String)> {
    record
        .jobs
        .iter()
        .flat_map(|j| &j.edge_aggregators)
        .filter_map(|e| Some((e.agent(), e.job_id.clone()?)))
        .collect()
}

/// Marks job `job`'s edge aggregators that ended or vanished as lost, with
/// the time and the reason; returns whether any was newly lost. Their
/// campuses no longer take part: the cloud's round goes on without them.
pub(crate) async fn check(mlfo: &Mlfo, job: &mut JobRecord, elapsed_s: f64) -> bool {
    let mut newly = false;
    for edge in job.edge_aggregators.iter_mut().filter(|e| e.lost.is_none()) {
        let Some(id) = &edge.job_id else { continue };
        let why = match mlfo.inner.sbi.job(&edge.agent(), id).await {
            Ok(view) if view.state == JobState::Failed => {
                view.reason.unwrap_or_else(|| "failed".to_owned())
            }
            Ok(view) if view.state == JobState::Stopped => "stopped".to_owned(),
            Ok(_) => continue,
            Err(e) if e.not_found() => "its agent no longer knows the job".to_owned(),
            Err(e) => format!("its agent does not answer: {e}"),
        };
        tracing::warn!(campus = %edge.campus, host = %edge.host, %why, "edge aggregator lost");
        edge.lost = Some((elapsed_s, why));
        newly = true;
    }
    newly
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, role: AgentRole, campus: Option<&str>, capacity: usize) -> AgentEntry {
        AgentEntry {
            name: name.to_owned(),
            url: format!("http://{name}:5000"),
            role,
            cohort: None,
            campus: campus.map(str::to_owned),
            capacity,
        }
    }

    fn clients() -> Vec<AgentEntry> {
        [
            ("fc.10", "campus1"),
            ("fc.20", "campus2"),
            ("fc.11", "campus1"),
        ]
        .iter()
        .map(|(n, c)| agent(n, AgentRole::Client, Some(c), 1))
        .chain([agent("fc.99", AgentRole::Client, None, 1)])
        .collect()
    }

    #[test]
    fn one_edge_aggregator_per_campus_that_has_a_host() {
        let inventory = vec![agent(
            "fla.1",
            AgentRole::EdgeAggregator,
            Some("campus1"),
            2,
        )];
        let edges = plan(&inventory, &clients(), &[]).unwrap();
        assert_eq!(edges.len(), 1, "campus2 has no host: its client goes flat");
        assert_eq!(
            (
                edges[0].campus.as_str(),
                edges[0].host.as_str(),
                edges[0].clients
            ),
            ("campus1", "fla.1", 2)
        );
        assert_eq!(
            upstream_participants(&edges, &clients()),
            3,
            "fla.1, fc.20, fc.99"
        );
        let full = plan(&inventory, &clients(), &["fla.1".into(), "fla.1".into()]).unwrap_err();
        assert_eq!(
            full,
            "campus1: no edge aggregator host has room (fla.1 runs 2/2); wait for a job to end or raise its capacity"
        );
    }

    fn target(constraints: &str) -> ResolvedTarget {
        let text = format!(
            "intentID: i\ntargets:\n  - id: t\n    operation: maximise\n    \
             operand: robots.welding.accuracy\n    constraints: {{ privacylevel: high, {constraints} }}\n"
        );
        let intent = intent::parse("i.yaml", text.as_bytes()).unwrap();
        intent::Catalog::builtin()
            .resolve(&intent)
            .unwrap()
            .targets
            .remove(0)
    }

    #[test]
    fn auto_chooses_with_the_declared_network_and_names_a_deadline_it_cannot_meet() {
        let inventory = vec![
            agent("fla.1", AgentRole::EdgeAggregator, Some("campus1"), 1),
            agent("fla.2", AgentRole::EdgeAggregator, Some("campus2"), 1),
        ];
        // Two campuses of ten clients.
        let cohort: Vec<AgentEntry> = (0..20)
            .map(|i| {
                let campus = format!("campus{}", 1 + i / 10);
                agent(
                    &format!("fc.{}", 10 + i),
                    AgentRole::Client,
                    Some(&campus),
                    1,
                )
            })
            .collect();
        let edges = plan(&inventory, &cohort, &[]).unwrap();
        let declared = |name: &str, value: f64| Figure {
            name: name.to_owned(),
            value,
            source: Source::Declared,
        };
        let slow = Figures {
            wan_mbit: declared("wan_mbit", 20.0),
            rtt_ms: declared("rtt_ms", 48.0),
            campus_mbit: declared("campus_mbit", 500.0),
            train_s: declared("train_s", 0.0),
            parallel: None,
            notes: Vec::new(),
        };
        let t = target("aggregation: auto, numround: 10");
        let auto = Aggregation::Auto;
        let choice = choose(&t, &slow, &cohort, &edges, auto, None).unwrap();
        assert_eq!(choice.chosen, Aggregation::Hierarchical);
        assert_eq!(choice.edge_campuses, ["campus1", "campus2"]);
        assert_eq!(choice.options.len(), 4, "flat, either campus, both");
        assert_eq!(choice.inputs.len(), 5, "{:?}", choice.inputs);
        let bytes = choice
            .inputs
            .iter()
            .find(|f| f.name == "model_bytes")
            .unwrap();
        assert_eq!(
            bytes.value,
            4.0 * 199_210.0,
            "the welding pipeline's MLP on MNIST"
        );
        assert_eq!(bytes.source, Source::Declared);
        let e = choose(&t, &slow, &cohort, &edges, auto, Some(0.5)).unwrap_err();
        assert!(
            e.starts_with(
                "deadline_s 0.5: no option meets it; the fastest (hierarchical on campus1, campus2) is predicted at "
            ),
            "{e}"
        );
        assert!(e.ends_with("for 10 rounds"), "{e}");
        // Flat asked for: hierarchical would meet a deadline flat cannot.
        let flat = choose(&t, &slow, &cohort, &edges, Aggregation::Flat, None).unwrap();
        let flat_s = flat.options[0].round_s * 10.0;
        let hier_s = flat.options[3].round_s * 10.0;
        let between = (flat_s + hier_s) / 2.0;
        let e = choose(&t, &slow, &cohort, &edges, Aggregation::Flat, Some(between)).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "deadline_s {between}: aggregation flat is predicted at "
            )),
            "{e}"
        );
        assert!(
            e.contains("hierarchical on campus1, campus2 would meet it")
                && e.ends_with("ask for aggregation auto"),
            "{e}"
        );
    }

    #[test]
    fn clients_join_their_campus_aggregator_or_the_server() {
        let mut job: JobRecord = serde_json::from_value(serde_json::json!({
            "target": "t", "source": "mnist", "model": "mlp", "strategy": "fedavg",
            "rounds_planned": 1, "clients": [], "rounds": [],
            "server": {"address": "10.0.0.11:6000", "job_id": "j1", "agent_host": "fed.1",
                       "agent_url": "http://fed.1", "reused": false}
        }))
        .unwrap();
        for (i, c) in clients().iter().enumerate() {
            job.clients.push(crate::record::ClientPlacement {
                host: c.name.clone(),
                agent_url: c.url.clone(),
                index: i,
                job_id: None,
                campus: c.campus.clone(),
                lost: None,
            });
        }
        let inventory = vec![agent(
            "fla.1",
            AgentRole::EdgeAggregator,
            Some("campus1"),
            1,
        )];
        job.edge_aggregators = plan(&inventory, &clients(), &[]).unwrap();
        job.edge_aggregators[0].address = Some("10.0.1.3:6000".into());
        let joined: Vec<String> = (0..4).map(|i| server_for(&job, i)).collect();
        assert_eq!(
            joined,
            [
                "10.0.1.3:6000",
                "10.0.0.11:6000",
                "10.0.1.3:6000",
                "10.0.0.11:6000"
            ]
        );
    }
}
