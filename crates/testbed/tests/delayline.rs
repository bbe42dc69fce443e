//! The user-space delay line between two namespaces, with real TCP and UDP:
//! namespace A holds TAP `ta` (10.213.0.1/24), namespace B holds TAP `tb`
//! (10.213.0.2/24), and a [`DelayLine`] joins them. Needs root and
//! /dev/net/tun (CI runs as root); each test has its own namespaces, and
//! those that time or count traffic run alone ([`testkit::exclusive`]).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use testbed::netns::delayline::{DelayLine, LineSpec};
use testbed::netns::sys::{self, in_namespace, ip};
use testbed::netns::tap::Tap;

const ADDR_A: &str = "10.213.0.1";
const ADDR_B: &str = "10.213.0.2";
const MAC_A: &str = "02:00:0a:d5:00:01";
const MAC_B: &str = "02:00:0a:d5:00:02";

/// Two namespaces `dmo-t-dl-TAG-a` and `-b`, removed on drop (also when an
/// assertion fails).
struct Namespaces {
    a: String,
    b: String,
}

impl Namespaces {
    fn new(tag: &str) -> Self {
        let ns = Self {
            a: format!("dmo-t-dl-{tag}-a"),
            b: format!("dmo-t-dl-{tag}-b"),
        };
        for name in [&ns.a, &ns.b] {
            // A leftover of a killed run of this test.
            let _ = ip(&["netns", "del", name]);
            if let Err(e) = ip(&["netns", "add", name]) {
                panic!("the delay line tests need root and iproute2 (CI runs them as root): {e}");
            }
            // No IPv6: only the test's own frames cross the line.
            sys::run(
                "ip",
                &[
                    "netns",
                    "exec",
                    name,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )
            .unwrap();
            ip(&["-n", name, "link", "set", "lo", "up"]).unwrap();
        }
        ns
    }

    /// TAP `ta` in A and `tb` in B, addressed, up, each with a permanent
    /// neighbour entry for the other (no ARP on the lossy line).
    fn taps(&self) -> (Tap, Tap) {
        let a = create_tap(&self.a, "ta", ADDR_A, MAC_A, ADDR_B, MAC_B);
        let b = create_tap(&self.b, "tb", ADDR_B, MAC_B, ADDR_A, MAC_A);
        (a, b)
    }

    /// A line between fresh taps.
    fn line(&self, delay_ms: u64, loss_pct: f64) -> DelayLine {
        let (a, b) = self.taps();
        let spec = LineSpec {
            delay: Duration::from_millis(delay_ms),
            loss_pct,
            seed: 7,
        };
        DelayLine::start(a, b, spec).unwrap()
    }

    fn links(&self, ns: &str) -> String {
        ip(&["-n", ns, "-o", "link", "show"]).unwrap()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in [&self.a, &self.b] {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

fn create_tap(ns: &str, dev: &str, addr: &str, mac: &str, peer: &str, peer_mac: &str) -> Tap {
    let tap = Tap::create(ns, dev).unwrap_or_else(|e| {
        panic!("the delay line tests need root and /dev/net/tun (CI runs them as root): {e}")
    });
    let cidr = format!("{addr}/24");
    ip(&["-n", ns, "link", "set", dev, "address", mac, "up"]).unwrap();
    ip(&["-n", ns, "addr", "add", &cidr, "dev", dev]).unwrap();
    ip(&[
        "-n",
        ns,
        "neigh",
        "replace",
        peer,
        "lladdr",
        peer_mac,
        "dev",
        dev,
        "nud",
        "permanent",
    ])
    .unwrap();
    tap
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

#[test]
fn tcp_connect_takes_two_one_way_delays() {
    let _load = testkit::exclusive();
    let ns = Namespaces::new("rtt");
    let _line = ns.line(10, 0.0);
    let listener = in_namespace(&ns.b, || TcpListener::bind(addr(ADDR_B, 7000)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        // Accept (and close) until the test ends.
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let mut times = in_namespace(&ns.a, || {
        (0..11)
            .map(|_| {
                let start = Instant::now();
                let conn = TcpStream::connect_timeout(&addr(ADDR_B, 7000), Duration::from_secs(5));
                conn.map(|_| start.elapsed())
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap()
    .unwrap();
    times.sort();
    let median = times[times.len() / 2].as_secs_f64() * 1000.0;
    assert!(
        (18.0..=22.0).contains(&median),
        "median connect time {median:.2} ms, expected 20 ms +/- 10 % (all: {times:?})"
    );
}

#[test]
fn udp_loss_matches_the_spec_and_the_stats() {
    let _load = testkit::exclusive();
    let ns = Namespaces::new("loss");
    let line = ns.line(1, 30.0);
    let rx = in_namespace(&ns.b, || UdpSocket::bind(addr(ADDR_B, 7001)))
        .unwrap()
        .unwrap();
    let tx = in_namespace(&ns.a, || UdpSocket::bind(addr(ADDR_A, 0)))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (done, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n = 0u64;
        loop {
            match rx.recv(&mut buf) {
                Ok(_) => n += 1,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        let _ = done.send(n);
    });
    let sent = 2000u64;
    for i in 0..sent {
        tx.send_to(&i.to_be_bytes(), addr(ADDR_B, 7001)).unwrap();
        if i % 20 == 19 {
            // Paced, so the TAP device's own queue never overflows.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let received = received.recv_timeout(Duration::from_secs(10)).unwrap();
    let stats = line.stats().a_to_b;
    let fraction = received as f64 / sent as f64;
    assert!(
        (0.65..=0.75).contains(&fraction),
        "received {received} of {sent} ({fraction:.3}), expected 0.7 +/- 0.05; {stats:?}"
    );
    assert_eq!(stats.frames, received, "{stats:?}");
    assert_eq!(stats.frames + stats.lost, sent, "{stats:?}");
    assert_eq!((stats.queue_drops, stats.write_errors), (0, 0));
    assert!(
        line.stats().realtime,
        "root gets SCHED_FIFO for every thread of the line"
    );
}

#[test]
fn stopping_removes_only_the_taps_and_is_prompt() {
    let _load = testkit::exclusive();
    let ns = Namespaces::new("stop");
    ip(&[
        "-n", &ns.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &ns.b,
    ])
    .unwrap();
    // Frames sit in the queue for 2 s when the line is dropped.
    let line = ns.line(2000, 0.0);
    let tx = in_namespace(&ns.a, || UdpSocket::bind(addr(ADDR_A, 0)))
        .unwrap()
        .unwrap();
    for _ in 0..10 {
        tx.send_to(b"queued", addr(ADDR_B, 7002)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(line.stats().a_to_b.frames, 0, "still queued");
    assert!(line.is_running());
    assert!(ns.links(&ns.a).contains(": ta:"), "{}", ns.links(&ns.a));
    let start = Instant::now();
    drop(line);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "drop took {took:?}");
    let (links_a, links_b) = (ns.links(&ns.a), ns.links(&ns.b));
    assert!(!links_a.contains(": ta:") && !links_b.contains(": tb:"));
    assert!(
        links_a.contains(": lo:") && links_a.contains(": va@"),
        "{links_a}"
    );
    assert!(
        links_b.contains(": lo:") && links_b.contains(": vb@"),
        "{links_b}"
    );
    let all = sys::namespaces();
    assert!(all.contains(&ns.a) && all.contains(&ns.b), "{all:?}");
}

#[test]
fn tap_names_longer_than_the_kernel_allows_are_refused() {
    let _load = testkit::shared();
    let e = Tap::create("dmo-t-dl-none", "a-name-of-16-byt").unwrap_err();
    assert!(e.to_string().contains("1 to 15 bytes"), "{e}");
}

#[test]
fn a_vanished_device_ends_the_line() {
    let _load = testkit::shared();
    let ns = Namespaces::new("gone");
    let line = ns.line(1, 0.0);
    ip(&["-n", &ns.b, "link", "del", "tb"]).unwrap();
    let start = Instant::now();
    while line.is_running() && start.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!line.is_running(), "the line still runs without tb");
    drop(line);
    assert!(!ns.links(&ns.a).contains(": ta:"), "ta outlives its line");
}
