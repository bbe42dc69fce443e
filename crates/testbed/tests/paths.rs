//! `GET /v1/paths` of the network controller on the real kernel (root):
//! the shaping read back from the kernel, the load the counters show while
//! iperf3 fills the path, and the RTT the handshake probe measures through
//! the user-space delay line or netem. Run byte 236.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use testbed::Topology;
use testbed::netns::NetnsTestbed;
use testbed::netns::controller::Controller;
use testbed::netns::meters::Meters;

/// a - sw1 - sw2 - b: the access links at 1 Gbit/s, the middle one at 40
/// Mbit/s with 10 ms each way (a configured RTT of 20 ms).
fn chain() -> Topology {
    Topology::from_yaml(
        "chain",
        "hosts:\n  - { name: a, role: client }\n  - { name: b, role: aggregator }\n\
         switches:\n  - { name: sw1 }\n  - { name: sw2 }\n\
         links:\n  - { a: a, b: sw1, bandwidth_mbit: 1000 }\n\
         \x20 - { a: sw1, b: sw2, bandwidth_mbit: 40, delay_ms: 10 }\n\
         \x20 - { a: b, b: sw2, bandwidth_mbit: 1000 }\n",
    )
    .unwrap()
}

#[test]
fn a_path_reports_its_shaping_its_load_and_its_probed_rtt() {
    let _serial = testkit::require_root_alone();
    let run = 236;
    {
        let bed = NetnsTestbed::up(&chain(), run, 1).unwrap();
        let meters = Arc::new(Meters::new(bed.plan().clone()));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let _controller = Controller::start(
            meters,
            Vec::new(),
            vec![listener],
            httpd::Security::default(),
        )
        .unwrap();
        let http = reqwest::blocking::Client::new();
        let get = |query: &str| {
            let r = http.get(format!("{base}/v1/paths{query}")).send().unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().unwrap())
        };
        let b = bed.plan().host("b").unwrap().address;
        let (status, idle) = get(&format!("?from=a&to={b}"));
        assert_eq!(status, 200, "{idle}");
        assert_eq!(idle["to"], "b");
        let hops = idle["forward"].as_array().unwrap();
        assert_eq!(hops.len(), 3, "{idle}");
        assert_eq!(hops[1]["link"], "sw1-sw2");
        assert_eq!(hops[1]["rate_mbit"], 40.0, "read back from the kernel");
        assert_eq!(hops[0]["rate_mbit"], 1000.0);
        assert_eq!(idle["configured_rtt_ms"], 20.0);
        let bottleneck = idle["bottleneck_mbit"].as_f64().unwrap();
        assert!((38.0..=40.0).contains(&bottleneck), "idle: {idle}");
        let rtt = idle["rtt_ms"].as_f64().unwrap();
        assert!((19.0..=40.0).contains(&rtt), "probed RTT {rtt} ms: {idle}");
        assert_eq!(idle["rtt_samples_ms"].as_array().unwrap().len(), 5);

        // While iperf3 fills a -> b the forward bottleneck is taken.
        let busy = std::thread::scope(|s| {
            let load = s.spawn(|| crate::util::iperf(&bed, "a", "b", 5321, 3));
            std::thread::sleep(std::time::Duration::from_millis(1500));
            let (_, busy) = get("?from=a&to=b");
            let rate = load.join().unwrap();
            eprintln!("iperf3 a->b {rate:.1} Mbit/s; path: {busy}");
            busy
        });
        let load = busy["forward"][1]["load_mbit"].as_f64().unwrap();
        assert!(load > 25.0, "the counters show the load: {busy}");
        let left = busy["bottleneck_mbit"].as_f64().unwrap();
        assert!(left < 15.0, "little is left while iperf3 runs: {busy}");

        let (status, unknown) = get("?from=a&to=nosuch");
        assert_eq!(status, 404);
        assert!(
            unknown["error"]
                .as_str()
                .unwrap()
                .starts_with("to: no host"),
            "{unknown}"
        );
        let (status, missing) = get("?from=a");
        assert_eq!(status, 400);
        assert!(missing["error"].as_str().unwrap().starts_with("from, to:"));
    }
    crate::util::assert_gone(run);
}
