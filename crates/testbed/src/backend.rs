//! What an experiment needs from a testbed, whichever backend runs it:
//! the address each host has, starting host processes, waiting for them,
//! reaching their ports from the runner, and tearing everything down.

use crate::local::{HostError, Supervisor, http_get_ok, loopback_addr};
use crate::netns::controller::{CONTROLLER_PORT, Controller};
use crate::netns::latency::preemption_model;
use crate::netns::measure::{Measurements, Sampler, Watched, configured_rtts};
use crate::netns::{LinkControl, NetnsTestbed};
use crate::topology::Host;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A running testbed.
pub trait Backend {
    /// `local` or `netns`.
    fn name(&self) -> &'static str;
    /// Whether link bandwidth, delay and loss are enforced.
    fn links_enforced(&self) -> bool;
    /// One line for the run's output: what the backend does with the links.
    fn describe(&self) -> String;
    /// The address host processes bind and other hosts reach `host` at.
    fn address(&self, host: &Host) -> Ipv4Addr;
    /// The supervisor of the host processes.
    fn hosts(&mut self) -> &mut Supervisor;
    /// Starts `command` as a process of `host`, its output in `log`.
    fn spawn(&mut self, host: &Host, command: Command, log: &Path) -> Result<(), HostError> {
        self.hosts().spawn(&host.name, command, log)
    }
    /// Waits until `GET path` on `addr` (a port of `host`) answers 200
    /// (an empty `path`: until the port accepts connections).
    fn wait_ready(
        &mut self,
        host: &Host,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<(), HostError> {
        self.hosts().wait_ready(&host.name, addr, path, timeout)
    }
    /// The address the runner (in the root namespace) reaches `addr`, a
    /// port of `host`, at; `preferred_port` is tried first where the
    /// backend publishes ports.
    fn publish(
        &mut self,
        host: &Host,
        addr: SocketAddr,
        preferred_port: u16,
    ) -> Result<SocketAddr, HostError>;
    /// Every host process that has exited, with its status and log tail.
    fn failures(&mut self) -> Vec<HostError> {
        self.hosts().failures()
    }
    /// Memory of all host processes now (sum of PSS), bytes.
    fn total_memory_bytes(&mut self) -> u64 {
        self.hosts().total_memory_bytes()
    }
    /// Stops every host process and removes what the backend made.
    fn shutdown(&mut self);
    /// What the backend measured of the network so far (none on backends
    /// that do not measure); call once, at the end.
    fn take_measurements(&mut self) -> Option<Measurements> {
        None
    }
    /// Control over the links while the run goes on, with the instant the
    /// network measurements count their seconds from; `None` where links
    /// are not enforced.
    fn link_control(&self) -> Option<(LinkControl, Instant)> {
        None
    }
    /// Starts the network controller (meters, `/metrics` of the links)
    /// where the backend has one: reachable at the returned URL from inside
    /// each of `inside` (their own loopback), and from the runner at the
    /// returned address; `traffic` names the background-traffic hosts whose
    /// TCP connections it reports; it admits the callers `security` admits.
    /// `None` where links are not enforced.
    fn network_controller(
        &mut self,
        inside: &[&Host],
        traffic: &[&Host],
        security: httpd::Security,
    ) -> Result<Option<(String, SocketAddr)>, HostError> {
        let _ = (inside, traffic, security);
        Ok(None)
    }
}

/// The local backend: every host a process on its own loopback address
/// 127.R.T.H; links recorded, not enforced.
pub struct LocalBackend {
    run_byte: u8,
    hosts: Supervisor,
}

impl LocalBackend {
    /// A local testbed for run byte `run_byte`.
    pub fn new(run_byte: u8) -> Self {
        Self {
            run_byte,
            hosts: Supervisor::new(),
        }
    }
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn links_enforced(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        "on the local backend: every host has its own loopback address (and process, or a group's process); link bandwidth, \
         delay and loss are recorded, not enforced"
            .to_owned()
    }

    fn address(&self, host: &Host) -> Ipv4Addr {
        loopback_addr(host.address, self.run_byte)
    }

    fn hosts(&mut self) -> &mut Supervisor {
        &mut self.hosts
    }

    fn publish(&mut self, _: &Host, addr: SocketAddr, _: u16) -> Result<SocketAddr, HostError> {
        Ok(addr)
    }

    fn shutdown(&mut self) {
        self.hosts.shutdown();
    }
}

/// The netns backend: every host in its own namespace on shaped links.
/// Dropping it stops the host processes (SIGTERM first), then removes
/// the testbed.
pub struct NetnsBackend {
    // Field order is drop order: processes before their namespaces.
    hosts: Supervisor,
    sampler: Option<Sampler>,
    controller: Option<Controller>,
    bed: NetnsTestbed,
}

impl NetnsBackend {
    /// Runs host processes on `bed`, sampling its links and the
    /// connections of the hosts `watched` names once a second.
    pub fn new(bed: NetnsTestbed, watched: Watched) -> Self {
        Self {
            hosts: Supervisor::new(),
            sampler: Some(Sampler::start(bed.plan().clone(), watched)),
            controller: None,
            bed,
        }
    }
}

fn host_error(host: &Host, e: impl std::fmt::Display) -> HostError {
    HostError {
        host: host.name.clone(),
        problem: e.to_string(),
    }
}

impl Backend for NetnsBackend {
    fn name(&self) -> &'static str {
        "netns"
    }

    fn links_enforced(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!(
            "on the netns backend: every host in its own network namespace, switches as bridges, \
             bandwidth by htb, delay and loss by the {}, CPU limits by cgroups",
            self.bed.impairment().as_str()
        )
    }

    fn address(&self, host: &Host) -> Ipv4Addr {
        host.address
    }

    fn spawn(&mut self, host: &Host, command: Command, log: &Path) -> Result<(), HostError> {
        let wrapped = self
            .bed
            .command(&host.name, &command)
            .map_err(|e| host_error(host, e))?;
        self.hosts.spawn(&host.name, wrapped, log)
    }

    fn wait_ready(
        &mut self,
        host: &Host,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<(), HostError> {
        let bed = &self.bed;
        let name = host.name.clone();
        self.hosts
            .wait_until(&host.name, &format!("http://{addr}{path}"), timeout, || {
                bed.in_host(&name, || http_get_ok(addr, path))
                    .unwrap_or(false)
            })
    }

    fn publish(
        &mut self,
        host: &Host,
        addr: SocketAddr,
        preferred_port: u16,
    ) -> Result<SocketAddr, HostError> {
        self.bed
            .publish(&host.name, addr, preferred_port)
            .map_err(|e| host_error(host, e))
    }

    fn hosts(&mut self) -> &mut Supervisor {
        &mut self.hosts
    }

    fn link_control(&self) -> Option<(LinkControl, Instant)> {
        let clock = self.sampler.as_ref()?.origin();
        Some((self.bed.link_control(), clock))
    }

    fn take_measurements(&mut self) -> Option<Measurements> {
        let samples = self.sampler.take()?.stop();
        let probe = self.bed.latency_probe();
        Some(Measurements {
            impairment: self.bed.impairment().as_str().to_owned(),
            paths: configured_rtts(self.bed.plan(), &samples),
            samples,
            delay_lines: self
                .bed
                .delay_lines()
                .iter()
                .map(|(i, line)| (*i, line.stats()))
                .collect(),
            preemption: probe.and_then(|_| preemption_model()),
            probe,
        })
    }

    fn network_controller(
        &mut self,
        inside: &[&Host],
        traffic: &[&Host],
        security: httpd::Security,
    ) -> Result<Option<(String, SocketAddr)>, HostError> {
        let inside: Vec<&str> = inside.iter().map(|h| h.name.as_str()).collect();
        let traffic = traffic.iter().map(|h| h.name.clone()).collect();
        let scheme = security.scheme();
        let (controller, published) =
            Controller::for_testbed(&self.bed, &inside, traffic, security).map_err(|e| {
                HostError {
                    host: "network controller".to_owned(),
                    problem: e.to_string(),
                }
            })?;
        self.controller = Some(controller);
        Ok(Some((
            format!("{scheme}://127.0.0.1:{CONTROLLER_PORT}"),
            published,
        )))
    }

    fn shutdown(&mut self) {
        self.sampler.take();
        self.controller.take();
        self.hosts.shutdown();
        if let Err(e) = self.bed.down() {
            tracing::warn!("tearing down the testbed: {e}");
        }
    }
}
