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

    /// Offloading TAPs (GSO super-frames) `ta` and `tb`, set up as [`Namespaces::taps`].
    fn offloading_taps(&self) -> (Tap, Tap) {
        let a = setup_tap(
            Tap::create_offloading(&self.a, "ta"),
            &self.a,
            "ta",
            ADDR_A,
            MAC_A,
            ADDR_B,
            MAC_B,
        );
        let b = setup_tap(
            Tap::create_offloading(&self.b, "tb"),
            &self.b,
            "tb",
            ADDR_B,
            MAC_B,
            ADDR_A,
            MAC_A,
        );
        (a, b)
    }

    /// A line between fresh taps.
    fn line(&self, delay_ms: u64, loss_pct: f64) -> DelayLine {
        self.line_with(LineSpec::new(Duration::from_millis(delay_ms), loss_pct, 7))
    }

    /// A line with `spec` between fresh taps.
    fn line_with(&self, spec: LineSpec) -> DelayLine {
        let (a, b) = self.taps();
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
    setup_tap(Tap::create(ns, dev), ns, dev, addr, mac, peer, peer_mac)
}

fn setup_tap(
    made: Result<Tap, sys::SysError>,
    ns: &str,
    dev: &str,
    addr: &str,
    mac: &str,
    peer: &str,
    peer_mac: &str,
) -> Tap {
    let tap = made.unwrap_or_else(|e| {
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

/// Sends `n` numbered UDP datagrams from A to B, one every `gap`, each
/// stamped with the time it left; returns, in the order B received them,
/// each one's number and one-way delay in ms. `during` runs on the
/// sender's thread after datagram `n / 2`.
fn one_way(
    ns: &Namespaces,
    port: u16,
    n: u64,
    gap: Duration,
    during: impl FnOnce(),
) -> Vec<(u64, f64)> {
    let rx = in_namespace(&ns.b, || UdpSocket::bind(addr(ADDR_B, port)))
        .unwrap()
        .unwrap();
    let tx = in_namespace(&ns.a, || UdpSocket::bind(addr(ADDR_A, 0)))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    let t0 = Instant::now();
    let receiver = std::thread::spawn(move || {
        let (mut buf, mut got) = ([0u8; 64], Vec::new());
        while let Ok(len) = rx.recv(&mut buf) {
            let now = t0.elapsed().as_secs_f64();
            let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
            let sent = f64::from_be_bytes(buf[8..16].try_into().unwrap());
            assert_eq!(len, 16);
            got.push((seq, (now - sent) * 1000.0));
        }
        got
    });
    let mut during = Some(during);
    let start = Instant::now();
    for i in 0..n {
        let mut msg = [0u8; 16];
        msg[..8].copy_from_slice(&i.to_be_bytes());
        msg[8..].copy_from_slice(&t0.elapsed().as_secs_f64().to_be_bytes());
        tx.send_to(&msg, addr(ADDR_B, port)).unwrap();
        if i == n / 2 {
            (during.take().unwrap())();
        }
        // Paced by the clock, so the TAP device's own queue never overflows.
        let next = start + gap * (i as u32 + 1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    receiver.join().unwrap()
}

fn stats_of(delays: &[f64]) -> (f64, f64, f64, f64) {
    let n = delays.len() as f64;
    let mean = delays.iter().sum::<f64>() / n;
    let sd = (delays.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    let lo = delays.iter().copied().fold(f64::MAX, f64::min);
    let hi = delays.iter().copied().fold(f64::MIN, f64::max);
    (lo, mean, sd, hi)
}

/// Datagrams that arrived after one with a higher number.
fn overtaken(got: &[(u64, f64)]) -> usize {
    let mut highest = None;
    got.iter()
        .filter(|(seq, _)| {
            let late = highest.is_some_and(|h| *seq < h);
            highest = highest.max(Some(*seq));
            late
        })
        .count()
}

#[test]
fn jitter_spreads_one_way_delays_and_reorders_only_when_allowed() {
    let _load = testkit::exclusive();
    let ns = Namespaces::new("jit");
    for (port, reorder) in [(7010, true), (7011, false)] {
        let line = ns.line_with(LineSpec {
            jitter: Duration::from_millis(8),
            reorder,
            ..LineSpec::new(Duration::from_millis(20), 0.0, 3)
        });
        let got = one_way(&ns, port, 1500, Duration::from_micros(1000), || {});
        let delays: Vec<f64> = got.iter().map(|(_, d)| *d).collect();
        let (lo, mean, sd, hi) = stats_of(&delays);
        let late = overtaken(&got);
        eprintln!(
            "jitter 20 ± 8 ms, reorder {reorder}: {} received, delay min {lo:.2} mean {mean:.2} sd {sd:.2} max {hi:.2} ms, {late} overtaken",
            got.len()
        );
        assert_eq!(got.len(), 1500, "nothing lost");
        assert!(
            lo >= 11.9,
            "no frame leaves before delay - jitter: {lo:.2} ms"
        );
        if reorder {
            // Uniform on [12, 28] ms: mean 20, sd 8/√3 = 4.6 ms.
            assert!((19.0..=21.5).contains(&mean), "mean {mean:.2} ms");
            assert!((4.0..=5.3).contains(&sd), "sd {sd:.2} ms");
            assert!(hi <= 30.0, "max {hi:.2} ms");
            // Datagrams 1 ms apart with delays spread over 16 ms overtake each other.
            assert!(late > 300, "{late} of 1500 overtaken");
        } else {
            assert_eq!(late, 0, "an ordered line keeps the order");
            // Each waits for the one before it: later than the draw, still spread.
            assert!(mean >= 20.0 && sd >= 2.0, "mean {mean:.2} sd {sd:.2} ms");
        }
        drop(line);
    }
}

#[test]
fn gilbert_elliott_loss_comes_in_bursts() {
    let _load = testkit::exclusive();
    let ns = Namespaces::new("ge");
    let burst = testbed::BurstLoss {
        p_pct: 2.0,
        r_pct: 25.0,
        bad_loss_pct: 100.0,
        good_loss_pct: 0.0,
    };
    let line = ns.line_with(LineSpec {
        loss: testbed::netns::delayline::Loss::Burst(burst),
        ..LineSpec::new(Duration::from_millis(1), 0.0, 11)
    });
    let sent = 8000u64;
    let got = one_way(&ns, 7012, sent, Duration::from_micros(150), || {});
    let mut received = vec![false; sent as usize];
    for (seq, _) in &got {
        received[*seq as usize] = true;
    }
    let lost = received.iter().filter(|r| !**r).count();
    let bursts = received.windows(2).filter(|w| w[0] && !w[1]).count();
    let share = lost as f64 / sent as f64 * 100.0;
    let mean_burst = lost as f64 / bursts.max(1) as f64;
    let stats = line.stats().a_to_b;
    eprintln!(
        "Gilbert-Elliott p 2 % r 25 %: lost {lost} of {sent} ({share:.2} %) in {bursts} bursts, mean {mean_burst:.2}; {stats:?}"
    );
    // p / (p + r) = 7.4 % lost, in bursts of 1 / r = 4 datagrams.
    assert!((5.0..=10.0).contains(&share), "{share:.2} % lost");
    assert!(
        (3.0..=5.2).contains(&mean_burst),
        "mean burst {mean_burst:.2}"
    );
    assert_eq!(stats.lost, lost as u64, "{stats:?}");
    assert_eq!((stats.queue_drops, stats.outage), (0, 0));
}

#[test]
fn a_running_line_changes_its_delay_and_goes_down_and_up() {
    let _load = testkit::exclusive();
    let ns = Namespaces::new("chg");
    let line = ns.line(5, 0.0);
    let control = line.control();
    let got = one_way(&ns, 7013, 1200, Duration::from_millis(1), || {
        let slower = LineSpec {
            delay: Duration::from_millis(30),
            ..control.spec()
        };
        control.set(slower).unwrap();
    });
    let (before, after): (Vec<_>, Vec<_>) = got.iter().partition(|(seq, _)| *seq < 600);
    let median = |v: Vec<&(u64, f64)>| {
        let mut d: Vec<f64> = v.iter().map(|(_, d)| *d).collect();
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    };
    let (b, a) = (median(before), median(after));
    eprintln!("delay 5 ms, then 30 ms: medians {b:.2} and {a:.2} ms");
    assert!(
        (4.8..=6.5).contains(&b) && (29.8..=31.5).contains(&a),
        "{b:.2} {a:.2}"
    );
    assert!(
        control
            .set(LineSpec {
                jitter: Duration::from_millis(31),
                ..control.spec()
            })
            .is_err()
    );

    // Down for about 300 ms of a 900 ms stream, then up again.
    let c = control.clone();
    let got = one_way(&ns, 7014, 600, Duration::from_micros(1500), move || {
        // The stream goes on for another 450 ms while the link is down.
        std::thread::spawn(move || {
            c.set(LineSpec {
                up: false,
                ..c.spec()
            })
            .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            c.set(LineSpec {
                up: true,
                ..c.spec()
            })
            .unwrap();
        });
    });
    let stats = line.stats().a_to_b;
    let missing = 600 - got.len() as u64;
    eprintln!("outage of 300 ms: {missing} of 600 missing; {stats:?}");
    assert_eq!(
        stats.outage, missing,
        "every missing datagram counted as an outage drop"
    );
    assert!((150..=260).contains(&missing), "{missing} missing");
    assert!(
        got.iter().any(|(seq, _)| *seq > 560),
        "traffic flows again after the outage"
    );
}

#[test]
fn an_offloading_line_carries_tcp_super_frames_intact_at_its_delay() {
    use std::io::{Read, Write};
    let _load = testkit::exclusive();
    let ns = Namespaces::new("gso");
    let (a, b) = ns.offloading_taps();
    assert_eq!((a.header_len(), b.header_len()), (10, 10));
    let line = DelayLine::start(a, b, LineSpec::new(Duration::from_millis(5), 0.0, 1)).unwrap();
    let listener = in_namespace(&ns.b, || TcpListener::bind(addr(ADDR_B, 7020)))
        .unwrap()
        .unwrap();
    let sent: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let expected = sent.clone();
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::with_capacity(expected.len());
        conn.read_to_end(&mut got).unwrap();
        got == expected
    });
    let start = Instant::now();
    let connect = Instant::now();
    let mut conn = in_namespace(&ns.a, || {
        TcpStream::connect_timeout(&addr(ADDR_B, 7020), Duration::from_secs(5))
    })
    .unwrap()
    .unwrap();
    let handshake = connect.elapsed();
    conn.write_all(&sent).unwrap();
    drop(conn);
    assert!(receiver.join().unwrap(), "every byte arrived, in order");
    let stats = line.stats().a_to_b;
    eprintln!(
        "20 MB over an offloading line: {:.2} s, handshake {handshake:?}, {} frames of {:.0} bytes on average; {stats:?}",
        start.elapsed().as_secs_f64(),
        stats.frames,
        stats.bytes as f64 / stats.frames as f64
    );
    assert!(
        (9.5..=12.0).contains(&(handshake.as_secs_f64() * 1000.0)),
        "a handshake takes two one-way delays: {handshake:?}"
    );
    // MTU frames would be over 13,000; super-frames carry several MTUs each.
    assert!(stats.bytes > 20_000_000, "{stats:?}");
    assert!(stats.frames < 10_000, "{stats:?}");
    assert_eq!((stats.lost, stats.write_errors), (0, 0), "{stats:?}");
}
