//! The local backend with real processes: python3 HTTP servers on
//! loopback addresses, killed, timed out and torn down. Each test uses its
//! own run byte, so they can run in parallel.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::local::{HostError, Supervisor, listeners_in_run, loopback_addr, port_free};

const READY: Duration = Duration::from_secs(30);

/// `python3 -m http.server` on `addr`, through `sh` with `prefix` run first.
fn http_server(addr: SocketAddr, prefix: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "{prefix} exec python3 -m http.server --bind {} {}",
        addr.ip(),
        addr.port()
    ));
    c
}

/// The address of topology address 10.0.`t`.`h` in run `run`, port 8080.
fn addr(run: u8, t: u8, h: u8) -> SocketAddr {
    SocketAddr::new(loopback_addr(Ipv4Addr::new(10, 0, t, h), run).into(), 8080)
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `check_alive` until it fails.
fn wait_for_death(sup: &mut Supervisor) -> HostError {
    let start = Instant::now();
    loop {
        match sup.check_alive() {
            Err(e) => return e,
            Ok(()) if start.elapsed() < READY => std::thread::sleep(Duration::from_millis(20)),
            Ok(()) => panic!("no host died"),
        }
    }
}

#[test]
fn hosts_come_up_are_watched_and_leave_nothing_behind() {
    let _load = testkit::shared();
    let run = 231;
    let dir = tempfile::tempdir().unwrap();
    let mut sup = Supervisor::new();
    let hosts = [("fc.10", 1, 10), ("fc.11", 1, 11), ("fed.1", 0, 11)];
    for (name, t, h) in hosts {
        let log = dir.path().join(format!("{name}.log"));
        sup.spawn(name, http_server(addr(run, t, h), ""), &log)
            .unwrap();
    }
    for (name, t, h) in hosts {
        sup.wait_ready(name, addr(run, t, h), "/", READY).unwrap();
    }
    assert_eq!(sup.len(), 3);
    let mut listening = listeners_in_run(run);
    listening.sort();
    let mut want: Vec<SocketAddr> = hosts.iter().map(|&(_, t, h)| addr(run, t, h)).collect();
    want.sort();
    assert_eq!(listening, want);
    assert!(!port_free(addr(run, 1, 10)));
    assert!(
        sup.total_memory_bytes() > 1 << 20,
        "python processes use memory"
    );
    sup.check_alive().unwrap();
    assert!(sup.exited().is_empty());

    let pids: Vec<u32> = hosts.iter().map(|(n, _, _)| sup.pid(n).unwrap()).collect();
    let status = Command::new("kill")
        .args(["-KILL", &pids[1].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let e = wait_for_death(&mut sup);
    assert_eq!(e.host, "fc.11");
    let text = e.to_string();
    assert!(
        text.starts_with("host fc.11: exited (signal: 9 (SIGKILL)); last lines of "),
        "{text}"
    );
    assert!(text.contains("fc.11.log"), "{text}");
    let exited: Vec<String> = sup.exited().into_iter().map(|(h, _)| h).collect();
    assert_eq!(exited, ["fc.11"]);

    sup.wait_ready("fc.10", addr(run, 1, 10), "/", READY)
        .unwrap();
    let e = sup
        .wait_ready("fc.11", addr(run, 1, 11), "/", READY)
        .unwrap_err();
    assert_eq!(e.to_string(), text, "waiting on a dead host fails at once");

    sup.shutdown();
    assert!(sup.is_empty());
    assert_eq!(listeners_in_run(run), []);
    for pid in pids {
        assert!(gone(pid), "process {pid} is left");
    }
    for (_, t, h) in hosts {
        assert!(port_free(addr(run, t, h)));
    }
}

#[test]
fn a_host_that_exits_at_once_is_named_with_its_log() {
    let _load = testkit::shared();
    let run = 232;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mo.1.log");
    let mut sup = Supervisor::new();
    let mut dies = Command::new("sh");
    dies.args([
        "-c",
        "echo starting; echo cannot bind 127.232.1.1:8000 >&2; exit 3",
    ]);
    sup.spawn("mo.1", dies, &log).unwrap();
    let e = sup
        .wait_ready("mo.1", addr(run, 1, 1), "/healthz", READY)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "host mo.1: exited (exit status: 3); last lines of {}:\nstarting\ncannot bind 127.232.1.1:8000",
            log.display()
        )
    );
}

#[test]
fn a_host_not_ready_in_time_is_named_with_its_log() {
    let _load = testkit::shared();
    let run = 233;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fc.12.log");
    let mut sup = Supervisor::new();
    let mut slow = Command::new("sh");
    slow.args(["-c", "echo loading; exec sleep 30"]);
    sup.spawn("fc.12", slow, &log).unwrap();
    let pid = sup.pid("fc.12").unwrap();
    let started = Instant::now();
    let e = sup
        .wait_ready(
            "fc.12",
            addr(run, 1, 12),
            "/healthz",
            Duration::from_millis(300),
        )
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let want = format!(
        "host fc.12: not ready at http://127.233.1.12:8080/healthz after 0.3 s; last lines of {}:\nloading",
        log.display()
    );
    assert_eq!(e.to_string(), want);
    let started = Instant::now();
    sup.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "sleep obeys SIGTERM"
    );
    assert!(gone(pid));
}

#[test]
fn drop_stops_the_whole_process_group() {
    let _load = testkit::shared();
    let run = 234;
    let dir = tempfile::tempdir().unwrap();
    let a = addr(run, 1, 20);
    let pid = {
        let mut sup = Supervisor::new();
        // python3 runs as a child of the shell, in the shell's group.
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "python3 -m http.server --bind {} {} & wait",
            a.ip(),
            a.port()
        ));
        sup.spawn("fc.20", c, &dir.path().join("fc.20.log"))
            .unwrap();
        sup.wait_ready("fc.20", a, "/", READY).unwrap();
        assert_eq!(listeners_in_run(run), [a]);
        sup.pid("fc.20").unwrap()
    };
    assert_eq!(listeners_in_run(run), []);
    assert!(gone(pid));
}

#[test]
fn a_host_that_ignores_sigterm_is_killed_after_the_grace() {
    let _load = testkit::shared();
    let run = 235;
    let dir = tempfile::tempdir().unwrap();
    let a = addr(run, 1, 30);
    let mut sup = Supervisor::new();
    sup.spawn(
        "fc.30",
        http_server(a, "trap '' TERM;"),
        &dir.path().join("fc.30.log"),
    )
    .unwrap();
    sup.wait_ready("fc.30", a, "/", READY).unwrap();
    let pid = sup.pid("fc.30").unwrap();
    let started = Instant::now();
    sup.shutdown();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(5), "waited {took:?}");
    assert!(took < Duration::from_secs(10), "waited {took:?}");
    assert_eq!(listeners_in_run(run), []);
    assert!(gone(pid));
}

#[test]
fn spawn_failures_name_the_host() {
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let mut sup = Supervisor::new();
    let e = sup
        .spawn(
            "fc.40",
            Command::new("/nonexistent/dmo"),
            &dir.path().join("fc.40.log"),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("host fc.40: cannot start \"/nonexistent/dmo\": "),
        "{e}"
    );
    let log = dir.path().join("no/such/dir/fc.41.log");
    let e = sup.spawn("fc.41", Command::new("true"), &log).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("host fc.41: log {}: ", log.display())),
        "{e}"
    );
    assert!(sup.is_empty());
}
