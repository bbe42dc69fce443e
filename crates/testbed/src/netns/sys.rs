//! The kernel-facing primitives of the netns backend: `ip` and `tc`
//! commands (one at a time or as one `ip -batch`), and running code with a
//! thread inside a named network namespace.

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};

/// A command of the backend that failed: what it was and what it said.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{command}: {problem}")]
pub struct SysError {
    /// The command line (or operation) that failed.
    pub command: String,
    /// Its error output or the OS error.
    pub problem: String,
}

impl SysError {
    /// An error of `command`.
    pub fn new(command: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            problem: problem.into(),
        }
    }
}

/// Where `ip netns` keeps the namespaces' bind mounts.
pub const NETNS_DIR: &str = "/var/run/netns";

/// Runs `program args...`, failing with its stderr when it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> Result<String, SysError> {
    let line = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SysError::new(&line, format!("cannot start {program}: {e}")))?;
    if !out.status.success() {
        return Err(SysError::new(
            line,
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip args...`.
pub fn ip(args: &[&str]) -> Result<String, SysError> {
    run("ip", args)
}

/// Runs `tc args...` inside namespace `ns`.
pub fn tc(ns: &str, args: &[&str]) -> Result<String, SysError> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("tc", &all)
}

/// Runs many `ip` commands (one per line, without the leading `ip`) as a
/// single `ip -batch -` process: bringing up a topology of hundreds of
/// links takes one process instead of hundreds. Stops at the first
/// failing line and names it.
pub fn ip_batch(lines: &[String]) -> Result<(), SysError> {
    batch("ip", &[], lines)
}

/// [`ip_batch`] inside namespace `ns` (`ip -n NS -batch -`), or in the
/// root namespace for `None`.
pub fn ip_batch_in(ns: Option<&str>, lines: &[String]) -> Result<(), SysError> {
    match ns {
        Some(ns) => batch("ip", &["-n", ns], lines),
        None => batch("ip", &[], lines),
    }
}

/// [`ip_batch`] for `tc -n NS -batch -`: tc commands inside namespace `ns`.
pub fn tc_batch(ns: &str, lines: &[String]) -> Result<(), SysError> {
    batch("tc", &["-n", ns], lines)
}

fn batch(program: &str, options: &[&str], lines: &[String]) -> Result<(), SysError> {
    if lines.is_empty() {
        return Ok(());
    }
    let what = format!(
        "{program} {}-batch ({} commands)",
        options.iter().map(|o| format!("{o} ")).collect::<String>(),
        lines.len()
    );
    let mut child = Command::new(program)
        .args(options)
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SysError::new(&what, format!("cannot start {program}: {e}")))?;
    let mut text = lines.join("\n");
    text.push('\n');
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| SysError::new(&what, e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| SysError::new(&what, e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // iproute2 reports "Command failed -:N" with the line number.
    let failed = stderr
        .lines()
        .find_map(|l| l.rsplit_once("Command failed -:"))
        .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        .and_then(|n| lines.get(n.wrapping_sub(1)));
    let command = match failed {
        Some(line) => format!(
            "{program} {}{line}",
            options.iter().map(|o| format!("{o} ")).collect::<String>()
        ),
        None => what,
    };
    Err(SysError::new(command, stderr.trim().to_owned()))
}

/// Runs `f` on a new thread that has entered network namespace `ns` (a
/// name under `/var/run/netns`) and returns its result. Sockets and TAP
/// devices that `f` opens belong to that namespace for their whole life,
/// whichever thread uses them later; the calling thread stays where it is.
pub fn in_namespace<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, SysError> {
    let path = format!("{NETNS_DIR}/{ns}");
    let file = File::open(&path)
        .map_err(|e| SysError::new(format!("entering namespace {ns}"), format!("{path}: {e}")))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                SysError::new(format!("entering namespace {ns}"), format!("setns: {e}"))
            })?;
            Ok(f())
        })
        .join()
        .map_err(|_| SysError::new(format!("in namespace {ns}"), "the thread panicked"))?
    })
}

/// A TCP listener on 127.0.0.1: at `preferred_port` when it is free,
/// else at a port the kernel picks.
pub fn bind_loopback(preferred_port: u16) -> std::io::Result<std::net::TcpListener> {
    use std::net::{Ipv4Addr, TcpListener};
    TcpListener::bind((Ipv4Addr::LOCALHOST, preferred_port))
        .or_else(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
}

/// Whether this process runs as root (effective uid 0), which the netns
/// backend needs.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// The network namespaces that `ip netns` knows, by name.
pub fn namespaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Whether the kernel offers qdisc `kind` (e.g. `netem`): tries to add it
/// to the loopback device of namespace `ns` and removes it again.
pub fn has_qdisc(ns: &str, kind: &str) -> bool {
    let ok = tc(ns, &["qdisc", "add", "dev", "lo", "root", kind]).is_ok();
    if ok {
        let _ = tc(ns, &["qdisc", "del", "dev", "lo", "root"]);
    }
    ok
}

/// Puts the calling thread under `SCHED_FIFO` at `priority`; fails when
/// the kernel refuses (no CAP_SYS_NICE).
pub fn realtime_thread(priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pthread_self names the calling thread; param outlives the call.
    match unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) } {
        0 => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}
