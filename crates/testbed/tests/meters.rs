//! Meters on the real kernel (root): our own REST shape and the ONOS
//! shapes of the prototype's sendmeter.py, measured with iperf3 between two
//! hosts of a namespace testbed. Run bytes 230.. (one test at a time).

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use testbed::Topology;
use testbed::netns::NetnsTestbed;
use testbed::netns::controller::Controller;
use testbed::netns::meters::Meters;

/// Hosts a and b on switch sw (a on port 1, b on port 2), 1 Gbit/s links.
fn pair() -> Topology {
    Topology::from_yaml(
        "pair",
        "hosts:\n  - { name: a, role: client }\n  - { name: b, role: aggregator }\n\
         switches:\n  - { name: sw }\n\
         links:\n  - { a: a, b: sw, bandwidth_mbit: 1000 }\n  - { a: b, b: sw, bandwidth_mbit: 1000 }\n",
    )
    .unwrap()
}

#[test]
fn a_host_meter_limits_one_direction_until_deleted() {
    let _serial = testkit::require_root_alone();
    let run = 230;
    {
        let bed = NetnsTestbed::up(&pair(), run, 1).unwrap();
        let meters = Meters::new(bed.plan().clone());
        let m = meters
            .create(
                serde_json::from_str(r#"{ "host": "a", "direction": "up", "rate_mbit": 10 }"#)
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            serde_json::to_value(&m.applied_on).unwrap(),
            serde_json::json!([format!("dmo-{run}-a/eth0")])
        );
        let up = crate::util::iperf(&bed, "a", "b", 5301, 2);
        let down = crate::util::iperf(&bed, "b", "a", 5302, 2);
        eprintln!("metered 10 Mbit/s: a->b {up:.1}, b->a {down:.1}");
        assert!(
            (8.5..=11.5).contains(&up),
            "a->b under a 10 Mbit/s meter: {up:.1} Mbit/s"
        );
        assert!(down > 100.0, "b->a is not metered: {down:.1} Mbit/s");
        meters.delete(m.id).unwrap();
        assert!(meters.list().is_empty());
        let free = crate::util::iperf(&bed, "a", "b", 5303, 2);
        assert!(
            free > 100.0,
            "a->b after the meter is deleted: {free:.1} Mbit/s"
        );
    }
    crate::util::assert_gone(run);
}

#[test]
fn the_onos_shapes_of_sendmeter_py_meter_a_switch_port() {
    let _serial = testkit::require_root_alone();
    let run = 231;
    {
        let bed = NetnsTestbed::up(&pair(), run, 1).unwrap();
        let meters = Arc::new(Meters::new(bed.plan().clone()));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let _controller = Controller::start(
            meters.clone(),
            Vec::new(),
            vec![listener],
            httpd::Security::default(),
        )
        .unwrap();
        let http = reqwest::blocking::Client::new();
        let post = |path: &str, body: &str| {
            let r = http
                .post(format!("{base}{path}"))
                .basic_auth("onos", Some("rocks"))
                .header("Content-Type", "application/json")
                .body(body.to_owned())
                .send()
                .unwrap();
            (r.status().as_u16(), r.text().unwrap())
        };
        // 1250 KB/s = 10 Mbit/s, as the script writes it (numbers as strings).
        let meter = r#"{ "deviceId": "of:0000000000000001", "unit": "KB_PER_SEC", "burst": true, "bands": [ { "type": "DROP", "rate": "1250", "burstSize": "1250" } ] }"#;
        let (status, text) = post("/onos/v1/meters/of%3A0000000000000001", meter);
        assert_eq!(status, 201, "{text}");
        // What leaves the switch on port 2 (toward b), from a on port 1.
        let flow = r#"{ "priority": 10000, "timeout": 0, "isPermanent": true, "deviceId": "of:0000000000000001",
            "treatment": { "instructions": [ { "type": "OUTPUT", "port": "2" }, { "type": "METER", "meterId": 1 } ] },
            "selector": { "criteria": [ { "type": "IN_PORT", "port": "1" }, { "type": "ETH_TYPE", "ethType": "0x800" }, { "type": "IPV4_DST", "ip": "10.0.0.0/24" } ] } }"#;
        let (status, text) = post(
            "/onos/v1/flows/of%3A0000000000000001?appId=org.onosproject.core",
            flow,
        );
        assert_eq!(status, 201, "{text}");
        let up = crate::util::iperf(&bed, "a", "b", 5311, 2);
        eprintln!("ONOS meter 1250 KB/s on port 2: a->b {up:.1} Mbit/s");
        assert!(
            (8.5..=11.5).contains(&up),
            "a->b through the metered port: {up:.1} Mbit/s"
        );
        assert!(crate::util::iperf(&bed, "b", "a", 5312, 2) > 100.0);
        let switches: serde_json::Value = http
            .get(format!("{base}/v1/switches"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(switches[0]["deviceId"], "of:0000000000000001");
        assert_eq!(switches[0]["ports"][1]["peer"], "b");
        // The meter stays while a flow uses it; deleting the flow frees the port.
        let delete = |path: &str| {
            let r = http.delete(format!("{base}{path}")).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        };
        let (status, text) = delete("/onos/v1/meters/of:0000000000000001/1");
        assert_eq!(status, 400);
        assert!(text.contains("meterId"), "{text}");
        let flows: serde_json::Value = http
            .get(format!("{base}/onos/v1/flows"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(flows["flows"][0]["in_port"], 1);
        let (status, text) = delete("/onos/v1/flows/of:0000000000000001/1");
        assert_eq!(status, 204, "{text}");
        assert!(meters.list().is_empty());
        let free = crate::util::iperf(&bed, "a", "b", 5313, 2);
        assert!(
            free > 100.0,
            "a->b once the flow is deleted: {free:.1} Mbit/s"
        );
        assert_eq!(delete("/onos/v1/meters/of:0000000000000001/1").0, 204);
        let (status, text) = post("/onos/v1/flows/of:0000000000000001", flow);
        assert_eq!(status, 400);
        assert!(text.contains("meterId"), "{text}");
        assert_eq!(post("/onos/v1/meters/of:1", meter).0, 201);
        let (status, text) = post(
            "/onos/v1/flows/of:0000000000000001",
            &flow.replace(r#""port": "2""#, r#""port": "9""#),
        );
        assert_eq!(status, 400);
        assert!(text.contains("OUTPUT].port"), "{text}");
        // Bad bodies name the field.
        let (status, text) = post(
            "/onos/v1/flows/of%3A0000000000000001",
            r#"{ "treatment": { "instructions": [] } }"#,
        );
        assert_eq!(status, 400);
        assert!(text.contains("OUTPUT"), "{text}");
        let (status, text) = post("/v1/meters", r#"{ "host": "a", "rate_mbit": -1 }"#);
        assert_eq!(status, 400);
        assert!(text.contains("rate_mbit"), "{text}");
        let (status, text) = post("/v1/meters", "{ not json");
        assert_eq!(status, 400, "{text}");
        let (status, _) = post(
            "/onos/v1/meters/of%3A00000000000000ff",
            r#"{ "bands": [ { "rate": 1 } ] }"#,
        );
        assert_eq!(status, 404);
    }
    crate::util::assert_gone(run);
}
