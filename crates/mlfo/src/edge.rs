//! The edge MLFO's work on one intent: ask the cloud for a server over
//! Mo-Mo, start the cohort's clients, follow the rounds to the end, and
//! stop everything that was started when something fails.

use crate::config::{AgentEntry, MomoMode};
use crate::hierarchy;
use crate::momo::{proto, to_message};
use crate::record::{
    ClientPlacement, IntentRecord, IntentState, JobRecord, QueueEntry, RoundSummary,
    ServerPlacement, now_unix_s,
};
use crate::service::{Mlfo, PlannedTarget};
use intent::{Aggregation, ResolvedTarget, TrainingMode};
use node::{ClientRequest, JobState};
use prost::Message;
use std::collections::BTreeMap;
use tokio::task::JoinSet;

/// Consecutive failed polls of a server before its job counts as lost.
const MAX_MISSED_POLLS: u32 = 20;
/// Attempts of a Mo-Mo Release that could not reach the cloud.
const RELEASE_ATTEMPTS: u32 = 3;
/// Polls of the server between two checks of the clients.
const CLIENT_CHECK_EVERY: u32 = 10;

/// Deploys and follows a new intent to a final state.
pub(crate) async fn run(
    mlfo: Mlfo,
    mut record: IntentRecord,
    targets: Vec<PlannedTarget>,
    clients: Vec<AgentEntry>,
) {
    match deploy(&mlfo, &mut record, &targets, &clients).await {
        Ok(()) if record.skip_clients => {
            let problems = tear_down(&mlfo, &mut record).await;
            record.reason = Some(with_problems(
                "flstatus disabled: the FL servers were placed and released, no client was started"
                    .to_owned(),
                &problems,
            ));
            finish(&mlfo, &mut record, IntentState::Completed);
        }
        Ok(()) => follow(&mlfo, record).await,
        Err(reason) => fail(&mlfo, &mut record, IntentState::Failed, reason).await,
    }
}

/// `reason`, followed by the problems met while stopping, if any.
fn with_problems(reason: String, problems: &[String]) -> String {
    if problems.is_empty() {
        reason
    } else {
        format!("{reason}; while stopping: {}", problems.join("; "))
    }
}

/// Takes up an intent found unfinished at start-up.
pub(crate) async fn resume(mlfo: Mlfo, mut record: IntentRecord) {
    let deployed =
        record.state == IntentState::Training && record.jobs.iter().all(|j| j.server.is_some());
    if deployed {
        follow(&mlfo, record).await;
    } else if matches!(
        record.state,
        IntentState::Accepted | IntentState::Planning | IntentState::Queued
    ) {
        // Nothing but servers was asked for, and a Deploy repeated for the
        // same intent and target gets the same server: start again.
        match mlfo.prepared_again(&record) {
            Ok((targets, clients)) => run(mlfo, record, targets, clients).await,
            Err(reason) => fail(&mlfo, &mut record, IntentState::Lost, reason).await,
        }
    } else {
        let reason = format!(
            "the MLFO restarted while the intent was {}; what had been started was stopped",
            record.state.as_str()
        );
        fail(&mlfo, &mut record, IntentState::Lost, reason).await;
    }
}

fn save(mlfo: &Mlfo, record: &mut IntentRecord) {
    record.updated_unix_s = now_unix_s();
    if let Err(e) = mlfo.inner.store.save_intent(record) {
        tracing::error!(intent = %record.id, "cannot save intent: {e}");
    }
}

fn set_state(mlfo: &Mlfo, record: &mut IntentRecord, state: IntentState) {
    record.state = state;
    save(mlfo, record);
}

/// Records a final state and its timing; the intent leaves the admission
/// queue, and the queue's head tries again (capacity may have freed).
pub(crate) fn finish(mlfo: &Mlfo, record: &mut IntentRecord, state: IntentState) {
    leave_queue(mlfo, record);
    let elapsed = record.elapsed_s();
    record.timings.done_s = Some(elapsed);
    for job in &mut record.jobs {
        job.outcome = crate::record::Outcome::of(job);
    }
    mlfo.inner.metrics.latency("done", elapsed);
    tracing::info!(intent = %record.id, state = state.as_str(), reason = ?record.reason, "intent finished after {elapsed:.3} s");
    set_state(mlfo, record, state);
}

async fn fail(mlfo: &Mlfo, record: &mut IntentRecord, state: IntentState, reason: String) {
    let problems = tear_down(mlfo, record).await;
    record.reason = Some(with_problems(reason, &problems));
    finish(mlfo, record, state);
}

fn milestone(mlfo: &Mlfo, record: &IntentRecord, phase: &str) -> f64 {
    let elapsed = record.elapsed_s();
    mlfo.inner.metrics.latency(phase, elapsed);
    elapsed
}

/// Places the servers (waiting in the admission queue while no aggregator
/// has room) and starts the clients of every job.
async fn deploy(
    mlfo: &Mlfo,
    record: &mut IntentRecord,
    targets: &[PlannedTarget],
    clients: &[AgentEntry],
) -> Result<(), String> {
    if record.state != IntentState::Queued {
        set_state(mlfo, record, IntentState::Planning);
    }
    if !record.skip_clients {
        cap_bandwidth(mlfo, record, targets, clients).await?;
    }
    plan_edge_aggregators(mlfo, record, clients)?;
    let placements = place_servers(mlfo, record, targets, clients).await?;
    record.timings.server_ready_s = Some(milestone(mlfo, record, "server_ready"));
    for (job, placement) in record.jobs.iter_mut().zip(placements) {
        if placement.reused && job.server.is_none() {
            job.rounds_before = rounds_done(mlfo, &placement).await;
        }
        job.server = Some(placement);
        job.clients = clients
            .iter()
            .enumerate()
            .map(|(index, a)| ClientPlacement {
                host: a.name.clone(),
                agent_url: a.url.clone(),
                index,
                job_id: None,
                campus: a.campus.clone(),
                lost: None,
            })
            .collect();
    }
    if record.skip_clients {
        save(mlfo, record);
        return Ok(());
    }
    set_state(mlfo, record, IntentState::Deploying);
    for (k, (target, _)) in targets.iter().enumerate() {
        hierarchy::start(mlfo, record, k, target).await?;
        save(mlfo, record);
        start_clients(mlfo, record, k, target, clients).await?;
    }
    let took = milestone(mlfo, record, "clients_started");
    record.timings.clients_started_s = Some(took);
    tracing::info!(intent = %record.id, "HTTP Intent took {:.3} ms", took * 1000.0);
    set_state(mlfo, record, IntentState::Training);
    Ok(())
}

/// Places the edge aggregators of every hierarchical job (once: a resumed
/// intent keeps them) on the campuses its plan chose, or every campus
/// with an edge-aggregator host when it has no plan. A job whose campuses
/// have no such host runs flat, as does an `auto` job without a plan or
/// whose edge hosts are full now, each with a note.
fn plan_edge_aggregators(
    mlfo: &Mlfo,
    record: &mut IntentRecord,
    clients: &[AgentEntry],
) -> Result<(), String> {
    let mut busy = hierarchy::busy_hosts(mlfo, &record.id);
    let inventory = &mlfo.inner.config.inventory;
    let mut notes = Vec::new();
    for job in &mut record.jobs {
        if job.aggregation == Aggregation::Auto {
            // No plan could be made (noted at submission).
            job.aggregation = Aggregation::Flat;
            continue;
        }
        if job.aggregation != Aggregation::Hierarchical || !job.edge_aggregators.is_empty() {
            continue;
        }
        let chosen: Vec<AgentEntry> = match &job.plan {
            Some(plan) => clients
                .iter()
                .filter(|c| {
                    c.campus
                        .as_ref()
                        .is_some_and(|campus| plan.edge_campuses.contains(campus))
                })
                .cloned()
                .collect(),
            None => clients.to_vec(),
        };
        let was_auto = job
            .plan
            .as_ref()
            .is_some_and(|p| p.requested == Aggregation::Auto);
        job.edge_aggregators = match hierarchy::plan(inventory, &chosen, &busy) {
            Ok(edges) => edges,
            Err(why) if was_auto => {
                notes.push(format!(
                    "{}: aggregation auto chose hierarchical, but {why}: the job runs flat",
                    job.target
                ));
                job.aggregation = Aggregation::Flat;
                continue;
            }
            Err(why) => return Err(why),
        };
        // A second job of the intent counts these against the hosts too.
        busy.extend(job.edge_aggregators.iter().map(|e| e.host.clone()));
        if job.edge_aggregators.is_empty() {
            job.aggregation = Aggregation::Flat;
            notes.push(format!(
                "{}: aggregation hierarchical, but no campus of the cohort has an edge-aggregator host in the inventory: the job runs flat",
                job.target
            ));
        }
    }
    record.notes.extend(notes);
    save(mlfo, record);
    Ok(())
}

/// Rounds a running server has done (0 when it cannot be asked).
async fn rounds_done(mlfo: &Mlfo, server: &ServerPlacement) -> u64 {
    match mlfo.inner.sbi.job(&server.agent(), &server.job_id).await {
        Ok(view) => view.history.map_or(0, |h| h.rounds.len() as u64),
        Err(_) => 0,
    }
}

/// Why the cloud gave no server.
enum Refused {
    /// No aggregator has room now: wait in the queue.
    Full(String),
    /// Anything else: the intent fails.
    Failed(String),
}

/// A server for every target, in order. While no aggregator has room the
/// intent waits in the admission queue (first in, first out) until its
/// `deadline_s` (from arrival) or `timeouts.queue_s` (from joining) passes.
async fn place_servers(
    mlfo: &Mlfo,
    record: &mut IntentRecord,
    targets: &[PlannedTarget],
    clients: &[AgentEntry],
) -> Result<Vec<ServerPlacement>, String> {
    let queue = &mlfo.inner.queue;
    if record.state != IntentState::Queued && !queue.is_empty() {
        enqueue(mlfo, record, "intents that arrived earlier are waiting");
    }
    let retry = (mlfo.inner.config.timeouts.poll() * 2).max(std::time::Duration::from_millis(200));
    loop {
        if record.state != IntentState::Queued || queue.position(&record.id) == Some(1) {
            match request_servers(mlfo, record, targets, clients).await {
                Ok(placements) => {
                    leave_queue(mlfo, record);
                    return Ok(placements);
                }
                Err(Refused::Failed(reason)) => return Err(reason),
                Err(Refused::Full(why)) => {
                    // A server got for an earlier target is given back while waiting.
                    release(mlfo, record).await;
                    enqueue(mlfo, record, &why);
                }
            }
        }
        if let Some(reason) = queue_expired(mlfo, record, targets) {
            return Err(reason);
        }
        queue.changed(retry).await;
    }
}

/// Takes the intent out of the admission queue (waking the next), keeping
/// how long it waited.
fn leave_queue(mlfo: &Mlfo, record: &mut IntentRecord) {
    mlfo.inner.queue.leave(&record.id);
    if let Some(entry) = record.queue.take() {
        let waited = (now_unix_s() - entry.since_unix_s).max(0.0);
        record.timings.queued_s = Some(waited);
        tracing::info!(intent = %record.id, waited_s = waited, "left the admission queue");
    }
}

/// Puts the intent in the admission queue (or updates why it waits).
fn enqueue(mlfo: &Mlfo, record: &mut IntentRecord, why: &str) {
    mlfo.inner.queue.join(&record.id, record.received_unix_s);
    let since = record
        .queue
        .as_ref()
        .map_or_else(now_unix_s, |q| q.since_unix_s);
    record.queue = Some(QueueEntry {
        since_unix_s: since,
        position: None,
        waiting_for: why.to_owned(),
    });
    if record.state != IntentState::Queued {
        tracing::info!(intent = %record.id, position = ?mlfo.inner.queue.position(&record.id), "queued: {why}");
        set_state(mlfo, record, IntentState::Queued);
    }
}

/// Why a queued intent gives up waiting, once its time is up.
fn queue_expired(mlfo: &Mlfo, record: &IntentRecord, targets: &[PlannedTarget]) -> Option<String> {
    let entry = record.queue.as_ref()?;
    let waited = now_unix_s() - entry.since_unix_s;
    let deadline = targets
        .iter()
        .filter_map(|(_, p)| p.deadline_s)
        .min_by(f64::total_cmp);
    let (over, limit) = match deadline {
        Some(d) => (record.elapsed_s() > d, format!("its deadline_s of {d} s")),
        None => {
            let q = mlfo.inner.config.timeouts.queue_s;
            (waited > q, format!("timeouts.queue_s ({q} s)"))
        }
    };
    over.then(|| {
        format!(
            "waited {waited:.1} s in the admission queue for an aggregator, past {limit}: {}",
            entry.waiting_for
        )
    })
}

/// Asks the cloud for a server for each target: one Mo-Mo Deploy per target,
/// or per client in `per-client` mode.
async fn request_servers(
    mlfo: &Mlfo,
    record: &mut IntentRecord,
    targets: &[PlannedTarget],
    clients: &[AgentEntry],
) -> Result<Vec<ServerPlacement>, Refused> {
    let Some(parent) = mlfo.inner.parent.clone() else {
        return Err(Refused::Failed(
            "this edge MLFO has no parent cloud MLFO to place the FL server".to_owned(),
        ));
    };
    let mut placements = Vec::new();
    for (target, _) in targets {
        let mut aggregate = target.to_aggregate_intent(&record.id);
        if target.plan.mode() == TrainingMode::Centralised {
            // The trainer waits for every client's data before it trains.
            aggregate.targets[0].constraints.min_available = Some(clients.len() as u32);
        }
        let edges = record
            .jobs
            .iter()
            .find(|j| j.target == target.id)
            .map_or(&[][..], |j| &j.edge_aggregators[..]);
        let c = &mut aggregate.targets[0].constraints;
        if !edges.is_empty() {
            // The cloud server trains every campus each round; the edge
            // aggregators sample their own clients.
            let n = hierarchy::upstream_participants(edges, clients) as u32;
            (c.fraction_fit, c.min_fit, c.min_available) = (Some(1.0), Some(n), Some(n));
            c.aggregation = Some(Aggregation::Hierarchical);
        } else if c.aggregation.is_some() {
            // What the edge decided (auto, or hierarchical with no host).
            c.aggregation = Some(Aggregation::Flat);
        }
        let message = to_message(&aggregate);
        let askers: Vec<String> = match record.momo.mode {
            MomoMode::Aggregated => vec![String::new()],
            MomoMode::PerClient => clients.iter().map(|c| c.name.clone()).collect(),
        };
        // Counted (and saved) before sending, so a restart mid-call still releases.
        record.momo.messages += askers.len() as u64;
        save(mlfo, record);
        let started = std::time::Instant::now();
        let mut calls = JoinSet::new();
        for client in askers {
            let mut parent = parent.clone();
            let message = proto::Intent {
                client,
                ..message.clone()
            };
            calls.spawn(async move {
                let sent = message.encoded_len();
                let reply = parent.deploy(message).await.map(|r| r.into_inner());
                let got = reply.as_ref().map_or(0, |s| s.encoded_len());
                (reply, (sent + got) as u64)
            });
        }
        let mut replies = Vec::new();
        while let Some(joined) = calls.join_next().await {
            let (reply, bytes) =
                joined.map_err(|e| Refused::Failed(format!("Mo-Mo Deploy: {e}")))?;
            record.momo.bytes += bytes;
            mlfo.inner
                .metrics
                .momo_call("client", "deploy", reply.is_ok());
            replies.push(reply);
        }
        let rtt = started.elapsed().as_secs_f64();
        mlfo.inner.metrics.latency("momo_round_trip", rtt);
        record.timings.momo_round_trip_s = Some(rtt);
        placements.push(one_server(replies)?);
    }
    Ok(placements)
}

/// The server the Deploy replies name (all the same one in per-client mode).
fn one_server(
    replies: Vec<Result<proto::Status, tonic::Status>>,
) -> Result<ServerPlacement, Refused> {
    let mut placement: Option<ServerPlacement> = None;
    for reply in replies {
        let status = reply.map_err(|s| match s.code() {
            tonic::Code::ResourceExhausted => Refused::Full(format!(
                "cloud MLFO refused the FL server (Mo-Mo Deploy): {}",
                s.message()
            )),
            // Nothing answered: the cloud did not refuse, it was not reached.
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                Refused::Failed(format!(
                    "cannot reach the cloud MLFO (Mo-Mo Deploy, {:?}): {}; is it running, and is the edge MLFO's parent URL right?",
                    s.code(),
                    s.message()
                ))
            }
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                Refused::Failed(format!(
                    "the cloud MLFO refused this edge MLFO's token (Mo-Mo Deploy, {:?}): {}; \
                     auth.token here must be one of the cloud's auth.peer_tokens",
                    s.code(),
                    s.message()
                ))
            }
            _ => Refused::Failed(format!(
                "cloud MLFO refused the FL server (Mo-Mo Deploy): {}",
                s.message()
            )),
        })?;
        if status.job_id.is_empty() || status.agent_url.is_empty() {
            return Err(Refused::Failed(format!(
                "cloud MLFO answered {:?} without the server's agent and job (is it a dist-ml-orch MLFO?)",
                status.status
            )));
        }
        match &mut placement {
            Some(p) if p.job_id != status.job_id || p.agent_url != status.agent_url => {
                return Err(Refused::Failed(format!(
                    "per-client Mo-Mo: the cloud answered with two servers, {} and {}",
                    p.address, status.status
                )));
            }
            Some(p) => p.reused &= status.reused,
            None => {
                placement = Some(ServerPlacement {
                    address: status.status,
                    job_id: status.job_id,
                    agent_host: status.agent_host,
                    agent_url: status.agent_url,
                    reused: status.reused,
                });
            }
        }
    }
    placement.ok_or_else(|| Refused::Failed("no Mo-Mo Deploy was sent".to_owned()))
}

/// Applies the intent's bandwidth cap (the smallest `max_bandwidth_mbps` of
/// its targets) as a meter on each client's link through the network
/// controller; notes it in the record when no controller is configured.
async fn cap_bandwidth(
    mlfo: &Mlfo,
    record: &mut IntentRecord,
    targets: &[PlannedTarget],
    clients: &[AgentEntry],
) -> Result<(), String> {
    let Some(cap) = targets
        .iter()
        .filter_map(|(_, p)| p.max_bandwidth_mbps)
        .min_by(f64::total_cmp)
    else {
        return Ok(());
    };
    if !record.meters.is_empty() {
        // Set before the MLFO restarted (a queued intent taken up again).
        return Ok(());
    }
    let Some(controller) = mlfo.inner.config.network_controller.clone() else {
        let note = format!(
            "max_bandwidth_mbps {cap}: not applied, this MLFO has no network_controller (the netns testbed provides one)"
        );
        if !record.notes.contains(&note) {
            record.notes.push(note);
        }
        save(mlfo, record);
        return Ok(());
    };
    let mut calls = JoinSet::new();
    for c in clients {
        let (sbi, controller, host) = (mlfo.inner.sbi.clone(), controller.clone(), c.name.clone());
        calls.spawn(async move { sbi.create_meter(&controller, &host, cap).await });
    }
    let mut problems = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(id)) => {
                // Saved at once, so that a cancel or restart removes it.
                record.meters.push(id);
                save(mlfo, record);
            }
            Ok(Err(e)) => problems.push(e),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        tracing::info!(intent = %record.id, cap, meters = record.meters.len(), "bandwidth cap applied");
        Ok(())
    } else {
        Err(format!(
            "bandwidth cap of {cap} Mbit/s: {}",
            problems.join("; ")
        ))
    }
}

/// Starts job `k`'s clients in parallel; fails naming the first host that could not start.
async fn start_clients(
    mlfo: &Mlfo,
    record: &mut IntentRecord,
    k: usize,
    target: &ResolvedTarget,
    clients: &[AgentEntry],
) -> Result<(), String> {
    let options = &mlfo.inner.config.client;
    let cohort = record
        .cohort
        .name
        .clone()
        .unwrap_or_else(|| record.id.clone());
    let mut calls = JoinSet::new();
    for (index, agent) in clients.iter().enumerate() {
        let request = ClientRequest {
            mode: Some(target.plan.mode()),
            server: hierarchy::server_for(&record.jobs[k], index),
            dataset: target.pipeline.src.kind.to_string(),
            model: target.pipeline.model.kind.to_string(),
            num_clients: Some(clients.len()),
            index: Some(index),
            partition: Some(options.partition.clone()),
            test_fraction: None,
            seed: Some(options.seed),
            threads: options.threads,
            connect_attempts: None,
            attack: options
                .attack
                .as_ref()
                .filter(|a| a.attacks(index, clients.len()))
                .map(|a| a.kind.clone()),
            local_dp: crate::privacy::local_dp(target.plan.settings()),
            tls: (target.plan.mode() == TrainingMode::Federated && mlfo.inner.tls.is_some())
                .then_some(true),
            labels: BTreeMap::from([
                ("intent".to_owned(), record.id.clone()),
                ("cohort".to_owned(), cohort.clone()),
                ("host".to_owned(), agent.name.clone()),
            ]),
        };
        let sbi = mlfo.inner.sbi.clone();
        let agent = agent.clone();
        calls.spawn(async move { (index, sbi.start_client(&agent, &request).await) });
    }
    let mut first_error: Option<(usize, String)> = None;
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok((index, Ok(started))) => record.jobs[k].clients[index].job_id = Some(started.id),
            Ok((index, Err(e))) => {
                if first_error.as_ref().is_none_or(|(i, _)| index < *i) {
                    first_error = Some((index, format!("client {}: {e}", clients[index].name)));
                }
            }
            Err(e) => {
                first_error = first_error.or(Some((usize::MAX, format!("client start: {e}"))))
            }
        }
    }
    save(mlfo, record);
    match first_error {
        Some((_, reason)) => Err(reason),
        None => Ok(()),
    }
}

/// Stops every client of the intent and releases its servers at the cloud.
/// Returns the problems met (the caller records them).
pub(crate) async fn tear_down(mlfo: &Mlfo, record: &mut IntentRecord) -> Vec<String> {
    let clients: Vec<(AgentEntry, String)> = record
        .jobs
        .iter()
        .flat_map(|j| &j.clients)
        .filter_map(|c| Some((c.agent(), c.job_id.clone()?)))
        .collect();
    let mut problems = stop_jobs(mlfo, clients).await;
    // The edge aggregators after their clients, so that none waits for one.
    problems.extend(stop_jobs(mlfo, hierarchy::jobs(record)).await);
    if let Some(controller) = &mlfo.inner.config.network_controller {
        for id in &record.meters {
            if let Err(e) = mlfo.inner.sbi.delete_meter(controller, *id).await {
                problems.push(e);
            }
        }
    }
    if let Some(problem) = release(mlfo, record).await {
        problems.push(problem);
    }
    problems
}

/// Stops `jobs` (agent, job id) in parallel; returns the problems met.
async fn stop_jobs(mlfo: &Mlfo, jobs: Vec<(AgentEntry, String)>) -> Vec<String> {
    let mut calls = JoinSet::new();
    for (agent, job) in jobs {
        let sbi = mlfo.inner.sbi.clone();
        calls.spawn(async move { sbi.stop(&agent, &job).await });
    }
    let mut problems = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(e.to_string()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems
}

/// Tells the cloud the intent needs no server any more (after any Deploy,
/// answered or not, so a server placed for a lost answer is stopped too).
async fn release(mlfo: &Mlfo, record: &mut IntentRecord) -> Option<String> {
    let mut client = mlfo.inner.parent.clone()?;
    if record.momo.messages == 0 && record.jobs.iter().all(|j| j.server.is_none()) {
        return None;
    }
    let request = proto::ReleaseRequest {
        intent_id: record.id.clone(),
    };
    let mut reply = Err(tonic::Status::unknown("not sent"));
    for attempt in 0..RELEASE_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(mlfo.inner.config.timeouts.poll() * 2).await;
        }
        let sent = request.encoded_len();
        reply = client.release(request.clone()).await;
        record.momo.messages += 1;
        record.momo.bytes +=
            (sent + reply.as_ref().map_or(0, |r| r.get_ref().encoded_len())) as u64;
        mlfo.inner
            .metrics
            .momo_call("client", "release", reply.is_ok());
        let transient = reply.as_ref().err().is_some_and(|s| {
            matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
            )
        });
        if !transient {
            break;
        }
    }
    reply
        .err()
        .map(|s| format!("cloud MLFO (Mo-Mo Release): {}", s.message()))
}

/// How one poll of a job ended.
enum Poll {
    /// Still running.
    Running,
    /// The server finished its rounds.
    Done,
    /// The job cannot go on.
    Ended(IntentState, String),
}

/// Follows the jobs until they end, the deadline passes or the target accuracy is reached.
async fn follow(mlfo: &Mlfo, mut record: IntentRecord) {
    let poll = mlfo.inner.config.timeouts.poll();
    let deadline = plan_deadline(mlfo, &record);
    let mut done = vec![false; record.jobs.len()];
    let mut missed = vec![0u32; record.jobs.len()];
    let mut polls = 0u32;
    loop {
        tokio::time::sleep(poll).await;
        polls += 1;
        let mut changed = false;
        for k in 0..record.jobs.len() {
            if done[k] {
                continue;
            }
            match poll_server(mlfo, &mut record.jobs[k], &mut missed[k], &mut changed).await {
                Poll::Running => {}
                Poll::Done => done[k] = true,
                Poll::Ended(state, reason) => return fail(mlfo, &mut record, state, reason).await,
            }
            if polls.is_multiple_of(CLIENT_CHECK_EVERY) {
                let elapsed = record.elapsed_s();
                let (reason, marked) = check_clients(mlfo, &mut record.jobs[k], elapsed).await;
                changed |= marked;
                if let Some(reason) = reason {
                    return fail(mlfo, &mut record, IntentState::Failed, reason).await;
                }
                changed |= hierarchy::check(mlfo, &mut record.jobs[k], elapsed).await;
            }
        }
        if changed {
            if record.timings.first_round_s.is_none()
                && record.jobs.iter().any(|j| !j.rounds.is_empty())
            {
                record.timings.first_round_s = Some(milestone(mlfo, &record, "first_round"));
            }
            save(mlfo, &mut record);
        }
        if done.iter().all(|d| *d) {
            let problems = tear_down(mlfo, &mut record).await;
            if !problems.is_empty() {
                tracing::warn!(intent = %record.id, "after completion: {}", problems.join("; "));
            }
            return finish(mlfo, &mut record, IntentState::Completed);
        }
        if let Some(reason) = target_reached(&record) {
            let problems = tear_down(mlfo, &mut record).await;
            record.reason = Some(with_problems(reason, &problems));
            return finish(mlfo, &mut record, IntentState::Completed);
        }
        if record.elapsed_s() > deadline {
            let progress: Vec<String> = record
                .jobs
                .iter()
                .map(|j| format!("round {} of {}", j.rounds.len(), j.rounds_planned))
                .collect();
            let reason = format!("deadline of {deadline} s passed at {}", progress.join(", "));
            return fail(mlfo, &mut record, IntentState::Failed, reason).await;
        }
    }
}

/// Polls job `job`'s server and folds new rounds into it.
async fn poll_server(
    mlfo: &Mlfo,
    job: &mut JobRecord,
    missed: &mut u32,
    changed: &mut bool,
) -> Poll {
    let Some(server) = &job.server else {
        return Poll::Ended(
            IntentState::Lost,
            format!("target {}: no FL server recorded", job.target),
        );
    };
    let agent = server.agent();
    match mlfo.inner.sbi.job(&agent, &server.job_id).await {
        Ok(view) => {
            *missed = 0;
            if let Some(history) = &view.history {
                *changed |= fold_rounds(job, history);
            }
            let own_rounds_done =
                job.rounds_before > 0 && job.rounds.len() as u64 >= job.rounds_planned;
            match view.state {
                // A shared server goes on for its first intent; this one is done.
                JobState::Starting | JobState::Running if own_rounds_done => Poll::Done,
                JobState::Starting | JobState::Running => Poll::Running,
                JobState::Completed => Poll::Done,
                JobState::Failed => Poll::Ended(
                    IntentState::Failed,
                    format!(
                        "FL server on {} failed: {}",
                        agent.name,
                        view.reason.unwrap_or_else(|| "no reason given".to_owned())
                    ),
                ),
                JobState::Stopped => Poll::Ended(
                    IntentState::Failed,
                    format!("FL server on {} was stopped on its agent", agent.name),
                ),
            }
        }
        Err(e) if e.not_found() => Poll::Ended(
            IntentState::Lost,
            format!(
                "agent {} no longer knows FL server job {} (did the agent restart?)",
                agent.name, server.job_id
            ),
        ),
        Err(e) => {
            *missed += 1;
            if *missed >= MAX_MISSED_POLLS {
                Poll::Ended(
                    IntentState::Lost,
                    format!("lost contact with the FL server: {e}"),
                )
            } else {
                Poll::Running
            }
        }
    }
}

/// Folds the server's history into `job`: the rounds after it joined (all
/// of them unless it shares an earlier intent's server), and the accuracy
/// before its first one. Whether anything changed.
fn fold_rounds(job: &mut JobRecord, history: &fl::history::History) -> bool {
    let before = job.rounds_before as usize;
    let initial = if before == 0 {
        history
            .initial_central
            .as_ref()
            .and_then(|c| c.metrics.get("accuracy").copied())
    } else {
        history.rounds.get(before - 1).and_then(|r| r.accuracy())
    };
    let rounds: Vec<RoundSummary> = history
        .rounds
        .iter()
        .skip(before)
        .take(if before == 0 {
            usize::MAX
        } else {
            job.rounds_planned as usize
        })
        .map(RoundSummary::from_round)
        .collect();
    let changed = initial != job.initial_accuracy || rounds != job.rounds;
    job.initial_accuracy = initial;
    job.rounds = rounds;
    changed
}

/// Checks job `job`'s clients: marks those whose agent is gone (it
/// refuses connections, or no longer knows the job) as lost, at
/// `elapsed_s`, and returns why the job cannot go on, if it cannot: a
/// centralised client that failed, every client failed or lost, or (flat)
/// fewer live clients than the server needs before a round (`minav`),
/// which it would otherwise wait for until the deadline. Also says whether
/// it marked any client.
async fn check_clients(mlfo: &Mlfo, job: &mut JobRecord, elapsed_s: f64) -> (Option<String>, bool) {
    let centralised = job.mode == TrainingMode::Centralised;
    let mut failed = Vec::new();
    let mut newly_lost = false;
    for client in job.clients.iter_mut().filter(|c| c.lost.is_none()) {
        let Some(id) = &client.job_id else { continue };
        match mlfo.inner.sbi.job(&client.agent(), id).await {
            Ok(view) if view.state == JobState::Failed => failed.push(format!(
                "{}: {}",
                client.host,
                view.reason.unwrap_or_default()
            )),
            Ok(_) => {}
            Err(e) if e.gone() => {
                let why = if e.unreachable {
                    "its node agent refuses connections".to_owned()
                } else {
                    "its node agent no longer knows the job".to_owned()
                };
                tracing::warn!(host = %client.host, %why, "client lost");
                client.lost = Some((elapsed_s, why));
                newly_lost = true;
            }
            // Slow or erring but there: ask again at the next check.
            Err(_) => {}
        }
    }
    if centralised && let Some(why) = failed.first() {
        let reason = format!("a client could not send its data to the central trainer; {why}");
        return (Some(reason), newly_lost);
    }
    let lost: Vec<String> = job
        .clients
        .iter()
        .filter_map(|c| {
            Some(format!(
                "{} at {:.1} s ({})",
                c.host,
                c.lost.as_ref()?.0,
                c.lost.as_ref()?.1
            ))
        })
        .collect();
    let live = job.clients.len() - lost.len() - failed.len();
    let reason = if live == 0 && !job.clients.is_empty() {
        let why = failed.first().or(lost.first()).cloned().unwrap_or_default();
        Some(format!("every client failed or was lost; {why}"))
    } else if job.edge_aggregators.is_empty()
        && !lost.is_empty()
        && live < job.min_available as usize
    {
        Some(format!(
            "{live} of {} clients left, fewer than the {} (minav) the server waits for: lost {}",
            job.clients.len(),
            job.min_available,
            lost.join(", ")
        ))
    } else {
        None
    };
    (reason, newly_lost)
}

/// Seconds the intent may take: its targets' smallest `deadline_s`, else
/// the configured job limit.
fn plan_deadline(mlfo: &Mlfo, record: &IntentRecord) -> f64 {
    record
        .jobs
        .iter()
        .filter_map(|j| j.deadline_s)
        .min_by(f64::total_cmp)
        .unwrap_or(mlfo.inner.config.timeouts.job_s)
}

/// When every job reached its target's `target_accuracy`, why the intent stops early.
fn target_reached(record: &IntentRecord) -> Option<String> {
    let reached = record.jobs.iter().all(|job| {
        job.target_accuracy
            .zip(job.latest_accuracy())
            .is_some_and(|(target, accuracy)| accuracy >= target)
    });
    (reached && !record.jobs.is_empty()).then(|| {
        let rounds: Vec<String> = record
            .jobs
            .iter()
            .map(|j| j.rounds.len().to_string())
            .collect();
        format!("target accuracy reached at round {}", rounds.join(", "))
    })
}
