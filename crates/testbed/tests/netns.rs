//! The netns backend on the real kernel (root): link delay, bandwidth and
//! CPU limits as measured from inside the namespaces, the safety of the
//! root namespace, and that nothing is left afterwards. Each test uses its
//! own run byte (220..) so that they can run in parallel.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::netns::{NetnsTestbed, RunNames, down_run, sys};
use testbed::{GenOptions, Topology, generate};

/// The prototype's topology with a small split.
fn prototype() -> Topology {
    generate(&GenOptions {
        cohorts: vec![2, 1],
        ..GenOptions::default()
    })
    .unwrap()
}

#[test]
fn edge_to_cloud_rtt_is_two_satellite_hops_each_way() {
    let _serial = testkit::require_root_alone();
    let run = 220;
    {
        let bed = NetnsTestbed::up(&prototype(), run, 1).unwrap();
        let server: SocketAddr = "10.0.0.11:7000".parse().unwrap();
        let listener = bed
            .in_host("fed.1", || TcpListener::bind(server))
            .unwrap()
            .unwrap();
        let accept = std::thread::spawn(move || {
            for s in listener.incoming().take(12) {
                drop(s);
            }
        });
        // A TCP connect is one SYN / SYN-ACK round trip.
        let rtts = bed
            .in_host("fc.10", || {
                (0..12)
                    .map(|_| {
                        let t = Instant::now();
                        let s =
                            TcpStream::connect_timeout(&server, Duration::from_secs(2)).unwrap();
                        let rtt = t.elapsed().as_secs_f64() * 1000.0;
                        drop(s);
                        rtt
                    })
                    .collect::<Vec<f64>>()
            })
            .unwrap();
        accept.join().unwrap();
        let rtt = testkit::median(rtts.clone());
        eprintln!("RTT fc.10 -> fed.1: median {rtt:.2} ms of {rtts:?}");
        assert!(
            (43.2..=52.8).contains(&rtt),
            "RTT edge client -> cloud aggregator {rtt:.2} ms, expected 48 +/- 10 % ({rtts:?})"
        );
        // Within the edge tier there is no satellite hop.
        let local: SocketAddr = "10.0.1.11:7001".parse().unwrap();
        let l2 = bed
            .in_host("fc.11", || TcpListener::bind(local))
            .unwrap()
            .unwrap();
        let near = bed
            .in_host("fc.10", || {
                let t = Instant::now();
                let s = TcpStream::connect_timeout(&local, Duration::from_secs(2)).unwrap();
                drop(s);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .unwrap();
        drop(l2);
        assert!(near < 5.0, "RTT between two edge clients {near:.2} ms");
        assert!(
            !bed.delay_lines().is_empty() || bed.impairment() == testbed::netns::Impairment::Netem
        );
    }
    crate::util::assert_gone(run);
}

/// Two hosts on one switch, `a`'s link limited to `mbit`, `b` with a CPU limit.
fn pair(mbit: f64, cpus: f64) -> Topology {
    Topology::from_yaml(
        "pair",
        &format!(
            "hosts:\n  - {{ name: a, role: client }}\n  - {{ name: b, role: aggregator, cpus: {cpus} }}\n\
             switches:\n  - {{ name: sw }}\n\
             links:\n  - {{ a: a, b: sw, bandwidth_mbit: {mbit} }}\n  - {{ a: b, b: sw }}\n"
        ),
    )
    .unwrap()
}

#[test]
fn iperf3_over_a_100_mbit_link_gets_100_mbit() {
    let _serial = testkit::require_root_alone();
    let run = 221;
    {
        let bed = NetnsTestbed::up(&pair(100.0, 1.0), run, 1).unwrap();
        let mbit = crate::util::iperf(&bed, "a", "b", 5201, 3);
        eprintln!("iperf3 over a 100 Mbit/s link: {mbit:.1} Mbit/s");
        assert!(
            (90.0..=110.0).contains(&mbit),
            "iperf3 a -> b over a 100 Mbit/s link: {mbit:.1} Mbit/s"
        );
    }
    crate::util::assert_gone(run);
}

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn a_host_limited_to_half_a_cpu_gets_half_a_cpu() {
    let _serial = testkit::require_root_alone();
    let run = 222;
    {
        let bed = NetnsTestbed::up(&pair(1000.0, 0.5), run, 1).unwrap();
        let mut busy = bed
            .command("b", Command::new("sh").args(["-c", "while :; do :; done"]))
            .unwrap()
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let (c0, t0) = (cpu_seconds(busy.id()), Instant::now());
        std::thread::sleep(Duration::from_secs(4));
        let share = (cpu_seconds(busy.id()) - c0) / t0.elapsed().as_secs_f64();
        let _ = busy.kill();
        eprintln!("CPU share of a busy loop limited to 0.5: {share:.3}");
        let _ = busy.wait();
        assert!(
            (0.45..=0.55).contains(&share),
            "CPU share {share:.3}, limit 0.5"
        );
    }
    crate::util::assert_gone(run);
}

#[test]
fn nothing_routes_off_the_machine_and_the_root_namespace_is_untouched() {
    let _serial = testkit::require_root_alone();
    let run = 223;
    let root_links = || {
        sys::ip(&["-o", "link", "show"])
            .unwrap()
            .lines()
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
            .collect::<Vec<String>>()
    };
    let before = root_links();
    {
        let bed = NetnsTestbed::up(&prototype(), run, 1).unwrap();
        assert_eq!(root_links(), before, "the root namespace got no device");
        for h in &bed.plan().hosts {
            let routes = sys::ip(&["-n", &h.ns, "route", "show"]).unwrap();
            assert!(!routes.contains("default"), "{}: {routes}", h.name);
        }
        // Outside addresses are unreachable from inside: refused at once,
        // nothing is sent.
        let outside: SocketAddr = "198.51.100.1:80".parse().unwrap();
        let err = bed
            .in_host("fc.10", || {
                TcpStream::connect_timeout(&outside, Duration::from_secs(1)).unwrap_err()
            })
            .unwrap();
        assert_eq!(err.raw_os_error(), Some(libc_enetunreach()), "{err}");
        // The root namespace reaches testbed addresses only through its
        // own default route, which leads to none of the testbed's devices.
        let route = sys::ip(&["route", "get", "10.0.1.10"]).unwrap();
        let dev = route
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .unwrap_or("");
        assert!(before.contains(&dev.to_owned()), "{route}");
        // A published port does reach inside.
        let mut bed = bed;
        let inside: SocketAddr = "10.0.1.1:8000".parse().unwrap();
        let listener = bed
            .in_host("mo.1", || TcpListener::bind(inside))
            .unwrap()
            .unwrap();
        let local = bed.publish("mo.1", inside, 0).unwrap();
        assert!(local.ip().is_loopback());
        let echo = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let mut c = TcpStream::connect(local).unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        echo.join().unwrap();
    }
    assert_eq!(root_links(), before);
    crate::util::assert_gone(run);
}

/// ENETUNREACH on Linux.
fn libc_enetunreach() -> i32 {
    101
}

#[test]
fn a_forgotten_testbed_is_removed_by_down_run() {
    let _serial = testkit::require_root_alone();
    let run = 224;
    let bed = NetnsTestbed::up(&pair(10.0, 0.5), run, 1).unwrap();
    let mut child = bed
        .command("b", Command::new("sleep").arg("600"))
        .unwrap()
        .spawn()
        .unwrap();
    // As if the runner had been killed: no teardown.
    std::mem::forget(bed);
    assert!(sys::namespaces().iter().any(|n| RunNames::new(run).owns(n)));
    down_run(run).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the host's process was killed");
    crate::util::assert_gone(run);
    // Bringing the same run up again works once it is gone.
    let again = NetnsTestbed::up(&pair(10.0, 0.5), run, 1).unwrap();
    let err = NetnsTestbed::up(&pair(10.0, 0.5), run, 1).err().unwrap();
    assert!(err.to_string().contains("already exists"), "{err}");
    drop(again);
    crate::util::assert_gone(run);
}

#[test]
fn three_hundred_clients_come_up_reach_the_cloud_from_the_extra_blocks_and_leave_nothing() {
    let _serial = testkit::require_root_alone();
    let run = 225;
    let topology = generate(&GenOptions {
        cohorts: vec![150, 75, 75],
        campus_size: 50,
        ..GenOptions::default()
    })
    .unwrap();
    {
        let bed = NetnsTestbed::up(&topology, run, 1).unwrap();
        let names = RunNames::new(run);
        let ours = sys::namespaces().iter().filter(|n| names.owns(n)).count();
        assert_eq!(
            ours,
            1 + topology.hosts.len(),
            "the fabric and one per host"
        );
        let server: SocketAddr = "10.0.0.11:7001".parse().unwrap();
        let listener = bed
            .in_host("fed.1", || TcpListener::bind(server))
            .unwrap()
            .unwrap();
        let accept = std::thread::spawn(move || {
            let (mut s, peer) = listener.accept().unwrap();
            s.write_all(b"ok").unwrap();
            peer
        });
        // fc.309 is the 300th client, at 10.0.64.60 in the first extra block.
        assert_eq!(
            topology.host("fc.309").unwrap().address.to_string(),
            "10.0.64.60"
        );
        let reply = bed
            .in_host("fc.309", || {
                let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(5)).unwrap();
                let mut got = String::new();
                s.read_to_string(&mut got).unwrap();
                got
            })
            .unwrap();
        assert_eq!(reply, "ok");
        let peer = accept.join().unwrap();
        assert_eq!(
            peer.ip().to_string(),
            "10.0.64.60",
            "the client's own address"
        );
        // And the edge tier reaches the extra blocks on-link.
        let edge_to_extra = bed
            .in_host("fc.10", || {
                TcpStream::connect_timeout(&"10.0.64.60:9".parse().unwrap(), Duration::from_secs(2))
                    .map_err(|e| e.kind())
            })
            .unwrap();
        assert_eq!(
            edge_to_extra.err(),
            Some(std::io::ErrorKind::ConnectionRefused),
            "a refusal: the host answered"
        );
    }
    crate::util::assert_gone(run);
}

/// The scheduling policies of the NAPI kernel threads of devices named `dev`.
fn napi_policies(dev: &str) -> Vec<i32> {
    let prefix = format!("napi/{dev}-");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with(&prefix))
        })
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // Field 41 (policy), counted from the state after the comm.
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(38)?
                .parse()
                .ok()
        })
        .collect()
}

/// Whether a TCP connection from host `from` to port 7100 of `to` opens
/// within `timeout`.
fn connects(bed: &NetnsTestbed, from: &str, to: &str, timeout: Duration) -> bool {
    let target = SocketAddr::from((bed.plan().host(to).unwrap().address, 7100));
    bed.in_host(from, || {
        TcpStream::connect_timeout(&target, timeout).is_ok()
    })
    .unwrap()
}

#[test]
fn a_running_link_changes_its_bandwidth_and_survives_an_outage() {
    let _serial = testkit::require_root_alone();
    let run = 226;
    {
        // Link 1 (b - sw) starts unimpaired; listed as changing, it gets a
        // delay line (netem where the kernel has it) to take it down.
        let changing = [1].into_iter().collect();
        let bed = NetnsTestbed::up_changing(&pair(100.0, 1.0), run, 1, &changing).unwrap();
        // The line's switch-side TAP is polled by a real-time kernel thread.
        let tap = &bed.plan().links[1].b.dev;
        assert_eq!(napi_policies(tap), [libc::SCHED_FIFO], "napi/{tap}-N");
        let control = bed.link_control();
        let (a, b) = (control.link_index("sw", "a"), control.link_index("b", "sw"));
        assert_eq!((a, b), (Some(0), Some(1)));
        let before = crate::util::iperf(&bed, "a", "b", 5231, 2);
        let change = testbed::netns::LinkChange {
            bandwidth_mbit: Some(20.0),
            ..Default::default()
        };
        control.apply(0, &change).unwrap();
        let after = crate::util::iperf(&bed, "a", "b", 5232, 2);
        eprintln!("iperf3 a -> b: {before:.1} Mbit/s, after the change to 20 Mbit/s {after:.1}");
        assert!(
            (90.0..=110.0).contains(&before),
            "before: {before:.1} Mbit/s"
        );
        assert!((17.0..=22.0).contains(&after), "after: {after:.1} Mbit/s");

        let addr = SocketAddr::from((bed.plan().host("b").unwrap().address, 7100));
        let listener = bed
            .in_host("b", || TcpListener::bind(addr))
            .unwrap()
            .unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                drop(conn);
            }
        });
        let second = Duration::from_secs(1);
        assert!(connects(&bed, "a", "b", second), "b is reachable");
        let down = testbed::netns::LinkChange {
            up: Some(false),
            ..Default::default()
        };
        control.apply(1, &down).unwrap();
        assert!(
            !connects(&bed, "a", "b", second),
            "b is cut off while its link is down"
        );
        control
            .apply(
                1,
                &testbed::netns::LinkChange {
                    up: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(connects(&bed, "a", "b", second), "b is back");
        // Link 0 was not listed as changing: it has nothing to take it down.
        let e = control.apply(0, &down).unwrap_err().to_string();
        assert!(e.contains("neither a delay line nor netem"), "{e}");
    }
    crate::util::assert_gone(run);
}

/// `a` and `b` on one switch; `a`'s link has `figures` (YAML fields).
fn impaired_pair(figures: &str) -> Topology {
    Topology::from_yaml(
        "impaired",
        &format!(
            "hosts:\n  - {{ name: a, role: client }}\n  - {{ name: b, role: aggregator }}\n\
             switches:\n  - {{ name: sw }}\n\
             links:\n  - {{ a: a, b: sw, {figures} }}\n  - {{ a: b, b: sw }}\n"
        ),
    )
    .unwrap()
}

#[test]
fn jitter_and_bursty_loss_on_a_link_as_this_kernel_makes_them() {
    let _serial = testkit::require_root_alone();
    let run = 227;
    {
        let t = impaired_pair("delay_ms: 10, jitter_ms: 4, loss_burst: { p_pct: 2, r_pct: 25 }");
        let bed = NetnsTestbed::up(&t, run, 3).unwrap();
        // netem where the kernel has it, else the delay line: the same figures.
        eprintln!("impairment: {}", bed.impairment().as_str());
        let b_addr = SocketAddr::from((bed.plan().host("b").unwrap().address, 7200));
        let rx = bed
            .in_host("b", || std::net::UdpSocket::bind(b_addr))
            .unwrap()
            .unwrap();
        let tx = bed
            .in_host("a", || std::net::UdpSocket::bind("0.0.0.0:0"))
            .unwrap()
            .unwrap();
        // ARP first (its frames may be lost too), so that no datagram
        // of the measurement waits for it.
        rx.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 64];
        let warm = (0..50).any(|_| {
            tx.send_to(&[0; 8], b_addr).unwrap();
            rx.recv(&mut buf).is_ok()
        });
        assert!(warm, "b never answered");
        while rx.recv(&mut buf).is_ok() {}
        rx.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let t0 = Instant::now();
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while let Ok(16) = rx.recv(&mut buf) {
                let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
                let sent = f64::from_be_bytes(buf[8..16].try_into().unwrap());
                got.push((seq, (t0.elapsed().as_secs_f64() - sent) * 1000.0));
            }
            got
        });
        let n = 6000u64;
        for i in 0..n {
            let mut msg = [0u8; 16];
            msg[..8].copy_from_slice(&i.to_be_bytes());
            msg[8..].copy_from_slice(&t0.elapsed().as_secs_f64().to_be_bytes());
            tx.send_to(&msg, b_addr).unwrap();
            let next = t0 + Duration::from_micros(500) * (i as u32 + 1);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let got = receiver.join().unwrap();
        let delays: Vec<f64> = got.iter().map(|(_, d)| *d).collect();
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        let sd =
            (delays.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / delays.len() as f64).sqrt();
        let lo = delays.iter().copied().fold(f64::MAX, f64::min);
        let mut received = vec![false; n as usize];
        for (seq, _) in &got {
            received[*seq as usize] = true;
        }
        let lost = received.iter().filter(|r| !**r).count();
        let bursts = received.windows(2).filter(|w| w[0] && !w[1]).count().max(1);
        let share = lost as f64 / n as f64 * 100.0;
        let mean_burst = lost as f64 / bursts as f64;
        eprintln!(
            "10 ± 4 ms, bursts p 2 % r 25 %: delay min {lo:.2} mean {mean:.2} sd {sd:.2} ms; lost {share:.2} % in bursts of {mean_burst:.2}"
        );
        assert!(lo >= 5.9, "min {lo:.2} ms");
        assert!((9.5..=11.5).contains(&mean), "mean {mean:.2} ms");
        // Uniform ±4 ms: sd 4/√3 = 2.3 ms.
        assert!((1.9..=2.8).contains(&sd), "sd {sd:.2} ms");
        assert!((4.5..=11.0).contains(&share), "{share:.2} % lost");
        assert!(
            (2.8..=5.5).contains(&mean_burst),
            "mean burst {mean_burst:.2}"
        );
    }
    crate::util::assert_gone(run);
}
