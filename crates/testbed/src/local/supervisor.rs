//! The supervisor of a run's host processes: each in its own process
//! group, its output in a log file, watched, and stopped (SIGTERM, then
//! SIGKILL) and reaped on `shutdown` and on drop.

use super::probe::http_get_ok;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A host process that failed.
#[derive(Debug, thiserror::Error)]
#[error("host {host}: {problem}")]
pub struct HostError {
    /// The host.
    pub host: String,
    /// What happened, with the tail of its log.
    pub problem: String,
}

/// Lines of a host's log shown in errors.
const LOG_TAIL_LINES: usize = 12;
/// Bytes read from the end of a log to find those lines.
const LOG_TAIL_BYTES: u64 = 16 * 1024;
/// How long `shutdown` waits after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// How long `shutdown` waits, after the group leaders are reaped, for the
/// rest of their groups to finish exiting.
const GROUP_EXIT_WAIT: Duration = Duration::from_secs(2);
/// How often exits and readiness are polled.
const POLL: Duration = Duration::from_millis(20);

/// One supervised host process.
struct Supervised {
    host: String,
    child: Child,
    log: PathBuf,
    /// Set once the process has exited and been reaped.
    status: Option<ExitStatus>,
}

impl Supervised {
    /// The exit status once the process has exited. Its process group is
    /// killed while the exited leader is still a zombie, that is, while
    /// its id cannot yet name another process; then it is reaped.
    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let pid = self.child.id();
        match proc_state(pid) {
            Some('Z') => signal_group(pid, "KILL"),
            Some(_) => return None,
            // No /proc: reap without the group kill.
            None => {}
        }
        self.status = self.child.try_wait().ok().flatten();
        self.status
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

/// The state letter of process `pid` (`R`, `S`, `Z`...) from
/// `/proc/PID/stat`, `None` where that cannot be read.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE ...", COMM may hold spaces and parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The process groups that hold a process other than a zombie, from
/// `/proc` (none where it cannot be read).
fn running_groups() -> BTreeSet<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        entry.file_name().to_str()?.parse::<u32>().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // "PID (COMM) STATE PPID PGRP ..."
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        let state = fields.next()?;
        let pgrp = fields.nth(1)?.parse().ok()?;
        (state != "Z").then_some(pgrp)
    })
    .collect()
}

/// Sends `signal` to process group `pgid` with kill(1).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last lines of the log at `path`, introduced by its name.
fn log_tail(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
        let _ = f.take(LOG_TAIL_BYTES).read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!("last lines of {}:\n{}", path.display(), tail.join("\n"))
}

/// The host processes of one run; dropping it stops them all.
#[derive(Default)]
pub struct Supervisor {
    children: Vec<Supervised>,
}

impl Supervisor {
    /// No processes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `command` (program, arguments, environment) as host `host`
    /// in its own process group, stdin empty, stdout and stderr appended
    /// to `log`.
    pub fn spawn(&mut self, host: &str, mut command: Command, log: &Path) -> Result<(), HostError> {
        let fail = |problem: String| HostError {
            host: host.to_owned(),
            problem,
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| fail(format!("log {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| fail(format!("log {}: {e}", log.display())))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| fail(format!("cannot start {:?}: {e}", command.get_program())))?;
        tracing::debug!(host, pid = child.id(), "host process started");
        self.children.push(Supervised {
            host: host.to_owned(),
            child,
            log: log.to_owned(),
            status: None,
        });
        Ok(())
    }

    /// Number of host processes, running or exited.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether no process was started.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The process id of host `host`, if it was started.
    pub fn pid(&self, host: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|s| s.host == host)
            .map(|s| s.child.id())
    }

    /// Memory of all host processes now, in bytes: the sum of their
    /// proportional set sizes (`Pss` in `/proc/PID/smaps_rollup`), so that
    /// pages the processes share (the `dmo` binary's code) count once.
    pub fn total_memory_bytes(&self) -> u64 {
        self.children
            .iter()
            .filter(|s| s.status.is_none())
            .filter_map(|s| {
                std::fs::read_to_string(format!("/proc/{}/smaps_rollup", s.child.id())).ok()
            })
            .filter_map(|rollup| {
                let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
                let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kb * 1024)
            })
            .sum()
    }

    /// The hosts whose process has exited, with how, in start order.
    pub fn exited(&mut self) -> Vec<(String, ExitStatus)> {
        self.children
            .iter_mut()
            .filter_map(|s| Some((s.host.clone(), s.exited()?)))
            .collect()
    }

    /// Fails naming the first host (in start order) whose process has
    /// exited, with its exit status and the tail of its log.
    pub fn check_alive(&mut self) -> Result<(), HostError> {
        match self.failures().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every host whose process has exited, each with its exit status and
    /// the tail of its log, in start order.
    pub fn failures(&mut self) -> Vec<HostError> {
        let mut out = Vec::new();
        for s in &mut self.children {
            if let Some(status) = s.exited() {
                out.push(HostError {
                    host: s.host.clone(),
                    problem: format!("exited ({status}); {}", s.log_tail()),
                });
            }
        }
        out
    }

    /// Waits until `GET path` on `addr` (host `host`'s port) answers 200;
    /// fails when any host's process exits first or `timeout` passes,
    /// naming the host and showing the tail of its log.
    pub fn wait_ready(
        &mut self,
        host: &str,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<(), HostError> {
        self.wait_until(host, &format!("http://{addr}{path}"), timeout, || {
            http_get_ok(addr, path)
        })
    }

    /// Waits until `ready()` holds for host `host` (whose readiness is
    /// described by `what`, e.g. its URL); fails when any host's process
    /// exits first or `timeout` passes, naming the host and showing the
    /// tail of its log.
    pub fn wait_until(
        &mut self,
        host: &str,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), HostError> {
        let start = Instant::now();
        loop {
            if ready() {
                tracing::debug!(host, what, "host ready");
                return Ok(());
            }
            self.check_alive()?;
            if start.elapsed() > timeout {
                let log = self
                    .children
                    .iter()
                    .find(|s| s.host == host)
                    .map(Supervised::log_tail)
                    .unwrap_or_else(|| "it was not started by this supervisor".to_owned());
                return Err(HostError {
                    host: host.to_owned(),
                    problem: format!(
                        "not ready at {what} after {:.1} s; {log}",
                        timeout.as_secs_f64()
                    ),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops every process: SIGTERM to each process group, SIGKILL to the
    /// groups still running 5 s later (and to a group as soon as its
    /// leader has exited), reaps the leaders, and waits up to 2 s more for
    /// the groups' other processes to be gone.
    pub fn shutdown(&mut self) {
        if self.children.is_empty() {
            return;
        }
        for s in &mut self.children {
            if s.exited().is_none() {
                signal_group(s.child.id(), "TERM");
            }
        }
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline && self.children.iter_mut().any(|s| s.exited().is_none()) {
            std::thread::sleep(POLL);
        }
        for s in &mut self.children {
            if s.exited().is_none() {
                tracing::warn!(host = %s.host, "host ignored SIGTERM; killing it");
                signal_group(s.child.id(), "KILL");
                let _ = s.child.kill();
                let _ = s.child.wait();
            }
        }
        // Killed members of the groups may still be closing their sockets.
        let groups: BTreeSet<u32> = self.children.iter().map(|s| s.child.id()).collect();
        let deadline = Instant::now() + GROUP_EXIT_WAIT;
        loop {
            let left: Vec<u32> = running_groups().intersection(&groups).copied().collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(?left, "process groups still running after SIGKILL");
                break;
            }
            std::thread::sleep(POLL);
        }
        self.children.clear();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
