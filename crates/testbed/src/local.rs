//! The local backend: every host is a process bound to its own loopback
//! address, supervised, and torn down on every exit path (its `Drop` too).
//! Link figures are recorded, not enforced.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The loopback address of topology address `addr` in run `run`:
/// 10.0.T.H becomes 127.run.T.H, so the last octet (the prototype's
/// `ipstart` arithmetic) is kept and two runs do not collide.
pub fn loopback(addr: Ipv4Addr, run: u8) -> Ipv4Addr {
    let o = addr.octets();
    Ipv4Addr::new(127, run, o[2], o[3])
}

/// A run byte from the process id, in 2..=254 (127.0/16 and 127.1/16 are
/// left to other software).
pub fn default_run_byte() -> u8 {
    2 + (std::process::id() % 253) as u8
}

/// A host process that failed.
#[derive(Debug, thiserror::Error)]
#[error("host {host}: {problem}")]
pub struct HostError {
    /// The host.
    pub host: String,
    /// What happened, with the tail of its log.
    pub problem: String,
}

struct Supervised {
    host: String,
    child: Child,
    log: PathBuf,
}

/// The host processes of one run.
#[derive(Default)]
pub struct Supervisor {
    children: Vec<Supervised>,
}

/// Lines of a host's log shown in errors.
const LOG_TAIL_LINES: usize = 12;
/// How long `shutdown` waits after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!("last lines of {}:\n{}", path.display(), tail.join("\n"))
}

impl Supervisor {
    /// No processes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `command` as host `host` in its own process group, stdout
    /// and stderr appended to `log`.
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
        let err = out.try_clone().map_err(|e| fail(e.to_string()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| fail(format!("cannot start {:?}: {e}", command.get_program())))?;
        self.children.push(Supervised {
            host: host.to_owned(),
            child,
            log: log.to_owned(),
        });
        Ok(())
    }

    /// Number of host processes.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether no process was started.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Memory of all host processes now, in bytes: the sum of their
    /// proportional set sizes (`Pss` in `/proc/PID/smaps_rollup`), so that
    /// pages the processes share (the `dmo` binary's code) count once.
    pub fn total_memory_bytes(&self) -> u64 {
        self.children
            .iter()
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

    /// Fails naming the first host whose process has exited.
    pub fn check_alive(&mut self) -> Result<(), HostError> {
        for s in &mut self.children {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(HostError {
                    host: s.host.clone(),
                    problem: format!("exited ({status}); {}", log_tail(&s.log)),
                });
            }
        }
        Ok(())
    }

    /// Waits until `GET path` on `addr` answers 200, the host's process
    /// exits, or `timeout` passes.
    pub fn wait_ready(
        &mut self,
        host: &str,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<(), HostError> {
        let start = Instant::now();
        loop {
            if http_get_ok(addr, path) {
                return Ok(());
            }
            self.check_alive()?;
            if start.elapsed() > timeout {
                let log = self
                    .children
                    .iter()
                    .find(|s| s.host == host)
                    .map(|s| log_tail(&s.log))
                    .unwrap_or_default();
                return Err(HostError {
                    host: host.to_owned(),
                    problem: format!(
                        "not ready at http://{addr}{path} after {:.0} s; {log}",
                        timeout.as_secs_f64()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every process: SIGTERM to each process group, then SIGKILL
    /// to those still running after a grace period; reaps them all.
    pub fn shutdown(&mut self) {
        for s in &mut self.children {
            if matches!(s.child.try_wait(), Ok(None)) {
                signal_group(s.child.id(), "TERM");
            }
        }
        let deadline = Instant::now() + TERM_GRACE;
        for s in &mut self.children {
            loop {
                match s.child.try_wait() {
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Ok(None) => {
                        signal_group(s.child.id(), "KILL");
                        let _ = s.child.kill();
                        let _ = s.child.wait();
                        break;
                    }
                    _ => break,
                }
            }
            // Anything the host left in its group goes too.
            signal_group(s.child.id(), "KILL");
        }
        self.children.clear();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `GET path` on `addr` answers HTTP 200 (one short connection).
pub fn http_get_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// TCP sockets listening on an address in 127.`run`.0.0/16, read from
/// `/proc/net/tcp`: what a run must not leave behind.
pub fn listeners_in_run(run: u8) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            if *state != "0A" {
                return None;
            }
            let (ip, port) = local.split_once(':')?;
            // The kernel prints the address in host byte order (little-endian here).
            let ip = Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes());
            let port = u16::from_str_radix(port, 16).ok()?;
            (ip.octets()[0] == 127 && ip.octets()[1] == run)
                .then(|| SocketAddr::new(ip.into(), port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_server(ip: &str, port: u16) -> Command {
        let mut c = Command::new("python3");
        c.args(["-m", "http.server", "--bind", ip, &port.to_string()]);
        c
    }

    #[test]
    fn hosts_come_up_are_watched_and_leave_nothing_behind() {
        let run = 231;
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new();
        for h in [10u8, 11] {
            let ip = format!("127.{run}.1.{h}");
            sup.spawn(
                &format!("fc.{h}"),
                http_server(&ip, 8080),
                &dir.path().join(format!("{h}.log")),
            )
            .unwrap();
            let addr: SocketAddr = format!("{ip}:8080").parse().unwrap();
            sup.wait_ready(&format!("fc.{h}"), addr, "/", Duration::from_secs(20))
                .unwrap();
        }
        assert_eq!(listeners_in_run(run).len(), 2);
        assert!(
            sup.total_memory_bytes() > 1 << 20,
            "two python processes use memory"
        );
        assert!(sup.check_alive().is_ok());
        signal_group(sup.children[1].child.id(), "KILL");
        std::thread::sleep(Duration::from_millis(200));
        let e = sup.check_alive().unwrap_err();
        assert_eq!(e.host, "fc.11");
        sup.shutdown();
        assert!(listeners_in_run(run).is_empty());

        let mut sup = Supervisor::new();
        let mut dies = Command::new("sh");
        dies.args(["-c", "echo cannot bind >&2; exit 3"]);
        sup.spawn("mo.1", dies, &dir.path().join("mo.log")).unwrap();
        let addr: SocketAddr = format!("127.{run}.1.1:8000").parse().unwrap();
        let e = sup
            .wait_ready("mo.1", addr, "/healthz", Duration::from_secs(10))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("host mo.1: exited (exit status: 3)"),
            "{e}"
        );
        assert!(e.to_string().contains("cannot bind"), "{e}");

        {
            let mut sup = Supervisor::new();
            sup.spawn(
                "fc.12",
                http_server(&format!("127.{run}.1.12"), 8080),
                &dir.path().join("12.log"),
            )
            .unwrap();
            let addr: SocketAddr = format!("127.{run}.1.12:8080").parse().unwrap();
            sup.wait_ready("fc.12", addr, "/", Duration::from_secs(20))
                .unwrap();
        }
        assert!(listeners_in_run(run).is_empty(), "Drop tears down too");
        assert_eq!(
            loopback(Ipv4Addr::new(10, 0, 1, 42), 7),
            Ipv4Addr::new(127, 7, 1, 42)
        );
    }
}
