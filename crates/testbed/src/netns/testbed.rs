//! A topology brought up on namespaces ([`NetnsTestbed::up`]) and torn
//! down again ([`NetnsTestbed::down`], on drop, or later by
//! [`down_run`]/[`down_all`] after the runner was killed).

use super::cgroup::Hierarchy;
use super::control::LinkControl;
use super::delayline::{DelayLine, LineSpec, Loss, REALTIME_PRIORITY};
use super::latency::{LatencyProbe, ProbeStats};
use super::names::{RunNames, run_of};
use super::plan::{LinkPlan, Medium, NetPlan};
use super::proxy::Published;
use super::shape;
use super::sys::{self, SysError};
use super::tap::Tap;
use crate::topology::Topology;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How delay and loss are made on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impairment {
    /// The kernel's netem qdisc.
    Netem,
    /// The user-space delay line (the kernel lacks `sch_netem`).
    DelayLine,
}

impl Impairment {
    /// A word for output and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Impairment::Netem => "netem",
            Impairment::DelayLine => "user-space delay line",
        }
    }
}

/// A topology running on namespaces. Dropping it tears everything down.
pub struct NetnsTestbed {
    plan: NetPlan,
    impairment: Impairment,
    /// Each limited host's `cgroup.procs`.
    cgroups: BTreeMap<String, PathBuf>,
    hierarchy: Option<Hierarchy>,
    lines: Vec<(usize, DelayLine)>,
    /// Measures the kernel's scheduling latency while delay lines run.
    probe: Option<LatencyProbe>,
    published: Vec<Published>,
    torn_down: bool,
}

impl NetnsTestbed {
    /// Builds `topology` for run `run`: namespaces, bridges, links with
    /// their shaping, delay and loss, host addresses and routes, and CPU
    /// limits. Needs root. On failure, whatever was made is removed.
    pub fn up(topology: &Topology, run: u8, seed: u64) -> Result<NetnsTestbed, SysError> {
        Self::up_changing(topology, run, seed, &BTreeSet::new())
    }

    /// As [`NetnsTestbed::up`], with the links (by index) whose delay, loss
    /// or state will change while it runs ([`NetnsTestbed::link_control`]):
    /// they get a delay line (or netem) even when they start unimpaired.
    pub fn up_changing(
        topology: &Topology,
        run: u8,
        seed: u64,
        changing: &BTreeSet<usize>,
    ) -> Result<NetnsTestbed, SysError> {
        let names = RunNames::new(run);
        if !sys::is_root() {
            return Err(SysError::new(
                format!("bringing up run {run}"),
                "the netns backend needs root (it creates network namespaces, links and cgroups); run as root, or use the local backend",
            ));
        }
        if let Some(ns) = sys::namespaces().into_iter().find(|n| names.owns(n)) {
            return Err(SysError::new(
                format!("bringing up run {run}"),
                format!(
                    "namespace {ns} of run {run} already exists; `dmo testbed down --run {run}` removes it, or choose another run byte"
                ),
            ));
        }
        // The plan is redone once netem's presence is known.
        let probe = NetPlan::new(topology, names, false)
            .map_err(|e| SysError::new("netns backend", e.to_string()))?;
        let mut bed = NetnsTestbed {
            plan: probe,
            impairment: Impairment::DelayLine,
            cgroups: BTreeMap::new(),
            hierarchy: None,
            lines: Vec::new(),
            probe: None,
            published: Vec::new(),
            torn_down: false,
        };
        sys::ip_batch(&bed.plan.namespace_commands())?;
        for ns in bed.plan.namespaces() {
            quiet_namespace(&ns)?;
        }
        let netem = sys::has_qdisc(&names.fabric_ns(), "netem");
        bed.impairment = if netem {
            Impairment::Netem
        } else {
            Impairment::DelayLine
        };
        bed.plan = NetPlan::with_changing(topology, names, netem, changing)
            .map_err(|e| SysError::new("netns backend", e.to_string()))?;
        for (ns, lines) in bed.plan.link_batches() {
            sys::ip_batch_in(ns.as_deref(), &lines)?;
        }
        bed.start_delay_lines(seed)?;
        for (ns, lines) in bed.plan.host_batches() {
            sys::ip_batch_in(Some(&ns), &lines)?;
        }
        bed.shape_links()?;
        bed.limit_cpus()?;
        Ok(bed)
    }

    /// The layout.
    pub fn plan(&self) -> &NetPlan {
        &self.plan
    }

    /// How delay and loss are made.
    pub fn impairment(&self) -> Impairment {
        self.impairment
    }

    /// Control over the links while the testbed runs.
    pub fn link_control(&self) -> LinkControl {
        let lines = self
            .lines
            .iter()
            .map(|(i, line)| (*i, line.control()))
            .collect();
        LinkControl::new(
            &self.plan.links,
            lines,
            self.impairment == Impairment::Netem,
        )
    }

    /// The running delay lines with the index of their topology link.
    pub fn delay_lines(&self) -> &[(usize, DelayLine)] {
        &self.lines
    }

    /// What the latency probe, which runs beside the delay lines, has
    /// seen so far (`None` without delay lines).
    pub fn latency_probe(&self) -> Option<ProbeStats> {
        self.probe.as_ref().map(LatencyProbe::stats)
    }

    fn start_delay_lines(&mut self, seed: u64) -> Result<(), SysError> {
        let links: Vec<LinkPlan> = self
            .plan
            .links
            .iter()
            .filter(|l| l.medium == Medium::DelayLine)
            .cloned()
            .collect();
        for l in links {
            // A lossless line carries TCP's super-frames whole; a lossy one
            // (or one a schedule may make lossy) MTU frames, so that each
            // segment is drawn for loss on its own.
            let offload = l.loss_pct == 0.0 && l.loss_burst.is_none() && !l.changing;
            let tap = if offload {
                Tap::create_offloading
            } else {
                Tap::create
            };
            let a = tap(&l.a.ns, &l.a.dev)?;
            let b = tap(&l.b.ns, &l.b.dev)?;
            for (ns, line) in self.plan.attach_commands(&l) {
                sys::ip_batch_in(Some(&ns), &[line])?;
            }
            for tap in [&a, &b] {
                if !tap.thread_napi(REALTIME_PRIORITY)? {
                    tracing::warn!(
                        device = tap.name(),
                        "the TAP device's NAPI thread runs at ordinary priority"
                    );
                }
            }
            let spec = LineSpec {
                jitter: Duration::from_secs_f64(l.jitter_ms / 1000.0),
                reorder: l.jitter_reorder,
                loss: match l.loss_burst {
                    Some(b) => Loss::Burst(b),
                    None => Loss::Random(l.loss_pct),
                },
                ..LineSpec::new(
                    Duration::from_secs_f64(l.delay_ms / 1000.0),
                    l.loss_pct,
                    seed ^ (l.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                )
            };
            self.lines.push((l.index, DelayLine::start(a, b, spec)?));
        }
        if !self.lines.is_empty() {
            let probe = LatencyProbe::start().map_err(|e| {
                SysError::new(
                    "starting the latency probe",
                    format!("cannot start a thread: {e}"),
                )
            })?;
            self.probe = Some(probe);
        }
        Ok(())
    }

    fn shape_links(&self) -> Result<(), SysError> {
        let mut per_ns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for l in &self.plan.links {
            let netem =
                (l.medium == Medium::Veth && (l.impaired() || l.changing)).then(|| l.netem_args());
            for end in [&l.a, &l.b] {
                per_ns
                    .entry(&end.ns)
                    .or_default()
                    .extend(shape::end_commands(
                        &end.dev,
                        l.bandwidth_mbit,
                        netem.as_deref(),
                    ));
            }
        }
        for (ns, lines) in per_ns {
            sys::tc_batch(ns, &lines)?;
        }
        Ok(())
    }

    fn limit_cpus(&mut self) -> Result<(), SysError> {
        let limited: Vec<(String, f64)> = self
            .plan
            .hosts
            .iter()
            .filter_map(|h| Some((h.name.clone(), h.cpus?)))
            .collect();
        if limited.is_empty() {
            return Ok(());
        }
        let hierarchy = Hierarchy::detect()?;
        for (host, cpus) in limited {
            let procs = hierarchy.create(&self.plan.names, &host, cpus)?;
            self.cgroups.insert(host, procs);
        }
        self.hierarchy = Some(hierarchy);
        Ok(())
    }

    /// `command` wrapped to run inside host `host`'s namespace (and CPU
    /// limit): `sh -c` joins the cgroup, then `ip netns exec` enters the
    /// namespace and execs the program, keeping the process id.
    pub fn command(&self, host: &str, command: &Command) -> Result<Command, SysError> {
        let h = self.plan.host(host).ok_or_else(|| {
            SysError::new(
                format!("starting a process on {host}"),
                "no such host in the testbed",
            )
        })?;
        let join = match self.cgroups.get(host) {
            Some(procs) => format!("echo $$ > '{}' && ", procs.display()),
            None => String::new(),
        };
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("{join}exec ip netns exec \"$0\" \"$@\""))
            .arg(&h.ns)
            .arg(command.get_program())
            .args(command.get_args());
        for (k, v) in command.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            c.current_dir(dir);
        }
        Ok(c)
    }

    /// Runs `f` on a thread inside host `host`'s namespace.
    pub fn in_host<T: Send>(
        &self,
        host: &str,
        f: impl FnOnce() -> T + Send,
    ) -> Result<T, SysError> {
        let ns = self.plan.host(host).map(|h| h.ns.clone()).ok_or_else(|| {
            SysError::new(format!("entering {host}"), "no such host in the testbed")
        })?;
        sys::in_namespace(&ns, f)
    }

    /// Publishes `target` (an address inside host `host`'s namespace) on
    /// 127.0.0.1, at `preferred_port` when free; returns the local address.
    pub fn publish(
        &mut self,
        host: &str,
        target: SocketAddr,
        preferred_port: u16,
    ) -> Result<SocketAddr, SysError> {
        let ns = self.plan.host(host).map(|h| h.ns.clone()).ok_or_else(|| {
            SysError::new(format!("publishing {host}"), "no such host in the testbed")
        })?;
        let p = Published::start(&ns, target, preferred_port)?;
        let local = p.local;
        self.published.push(p);
        Ok(local)
    }

    /// Tears everything down: published ports, delay lines, every
    /// process left in the run's namespaces and cgroups, the namespaces
    /// (with their devices, bridges and qdiscs) and the cgroups.
    pub fn down(&mut self) -> Result<(), SysError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        self.published.clear();
        for (_, line) in self.lines.drain(..) {
            line.stop();
        }
        self.probe = None;
        down_run(self.plan.names.run)
    }
}

impl Drop for NetnsTestbed {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            tracing::warn!("tearing down the testbed: {e}");
        }
    }
}

/// Disables IPv6 in namespace `ns` (no router solicitations or
/// link-local chatter on the testbed's links).
fn quiet_namespace(ns: &str) -> Result<(), SysError> {
    sys::in_namespace(ns, || {
        for key in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6");
            // Kernels without IPv6 have no such file: nothing to quiet.
            let _ = std::fs::write(path, "1");
        }
    })
}

/// Removes everything run `run` made: kills every process in its
/// namespaces and cgroups, deletes the namespaces and the cgroups. Safe
/// to call when nothing is left.
pub fn down_run(run: u8) -> Result<(), SysError> {
    let names = RunNames::new(run);
    let namespaces: Vec<String> = sys::namespaces()
        .into_iter()
        .filter(|n| names.owns(n))
        .collect();
    kill_in_namespaces(&namespaces);
    let mut first_error = None;
    // Hosts first, the fabric last.
    for ns in namespaces.iter().rev() {
        if let Err(e) = sys::ip(&["netns", "del", ns]) {
            first_error.get_or_insert(e);
        }
    }
    if let Ok(h) = Hierarchy::detect()
        && let Err(e) = h.remove_run(&names)
    {
        first_error.get_or_insert(e);
    }
    first_error.map_or(Ok(()), Err)
}

/// [`down_run`] for every run that left namespaces or cgroups; returns
/// the runs removed.
pub fn down_all() -> Result<Vec<u8>, SysError> {
    let mut runs: Vec<u8> = sys::namespaces().iter().filter_map(|n| run_of(n)).collect();
    if let Ok(h) = Hierarchy::detect() {
        runs.extend(h.runs());
    }
    runs.sort_unstable();
    runs.dedup();
    for &run in &runs {
        down_run(run)?;
    }
    Ok(runs)
}

/// What run `run` left on the machine: its namespaces and cgroup
/// directories. Empty once [`down_run`] or a testbed's drop has run.
pub fn leftovers(run: u8) -> Vec<String> {
    let names = RunNames::new(run);
    let mut left: Vec<String> = sys::namespaces()
        .into_iter()
        .filter(|n| names.owns(n))
        .collect();
    for root in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup"] {
        let dir = std::path::Path::new(root).join(names.cgroup());
        if dir.exists() {
            left.push(dir.display().to_string());
        }
    }
    left
}

/// The runs whose namespaces exist now.
pub fn runs_present() -> Vec<u8> {
    let mut runs: Vec<u8> = sys::namespaces().iter().filter_map(|n| run_of(n)).collect();
    runs.dedup();
    runs
}

/// SIGKILLs every process inside `namespaces` (`ip netns pids`) and
/// waits up to 2 s for them to be gone.
fn kill_in_namespaces(namespaces: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pids: Vec<i32> = namespaces
            .iter()
            .filter_map(|ns| sys::ip(&["netns", "pids", ns]).ok())
            .flat_map(|out| {
                out.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
