//! Traffic control on one end of a link: an htb tree whose root class
//! carries the link's bandwidth, a default class for ordinary traffic
//! (with netem below it where the kernel has it), and one class per
//! meter, selected by a u32 filter on the destination address.
//!
//! Every end gets the tree, also without a bandwidth (then at
//! [`UNSHAPED_MBIT`]), so that meters attach the same way everywhere.

use std::net::Ipv4Addr;

/// Rate of the root class of an end whose link has no bandwidth.
pub const UNSHAPED_MBIT: f64 = 10_000.0;

/// Class id (minor) of the default class.
const DEFAULT_CLASS: u32 = 10;
/// Class id (minor) of meter 0; meter `m` is `METER_CLASS_BASE + m`.
const METER_CLASS_BASE: u32 = 100;
/// Largest meter id.
pub const MAX_METER_ID: u32 = 9_000;

/// Token bucket size for `mbit`: 5 ms of traffic, at least 64 KiB so that
/// a full GSO segment always fits.
fn burst_bytes(mbit: f64) -> u64 {
    let five_ms = mbit * 1e6 / 8.0 * 0.005;
    (five_ms as u64).max(64 * 1024 + 2 * 1514)
}

/// A rate for tc: in kbit/s, so fractions of a Mbit/s are kept.
fn rate(mbit: f64) -> String {
    format!("{}kbit", (mbit * 1000.0).round().max(8.0) as u64)
}

/// An htb class line: `verb` is `add` or `change`.
fn class_line(verb: &str, dev: &str, parent: &str, minor: u32, mbit: f64) -> String {
    let burst = burst_bytes(mbit);
    format!(
        "class {verb} dev {dev} parent {parent} classid 1:{minor} htb rate {r} ceil {r} burst {burst} cburst {burst} quantum 1514",
        r = rate(mbit)
    )
}

/// An htb class added.
fn class(dev: &str, parent: &str, minor: u32, mbit: f64) -> String {
    class_line("add", dev, parent, minor, mbit)
}

/// `tc -batch` lines that shape device `dev`'s egress: root htb at
/// `bandwidth_mbit` (or [`UNSHAPED_MBIT`]), the default class, and
/// netem below it when `netem` gives its arguments
/// ([`crate::netns::plan::LinkPlan::netem_args`]).
pub fn end_commands(dev: &str, bandwidth_mbit: Option<f64>, netem: Option<&str>) -> Vec<String> {
    let mbit = bandwidth_mbit.unwrap_or(UNSHAPED_MBIT);
    let mut lines = vec![
        format!("qdisc add dev {dev} root handle 1: htb default {DEFAULT_CLASS}"),
        class(dev, "1:", 1, mbit),
        class(dev, "1:1", DEFAULT_CLASS, mbit),
    ];
    if let Some(args) = netem {
        lines.push(netem_line("add", dev, args));
    }
    lines
}

fn netem_line(verb: &str, dev: &str, args: &str) -> String {
    format!(
        "qdisc {verb} dev {dev} parent 1:{DEFAULT_CLASS} handle {DEFAULT_CLASS}: netem {args} limit 100000"
    )
}

/// `tc -batch` lines that set a shaped end's bandwidth to `mbit` while it
/// runs (its root and default classes; meters keep their own rates).
pub fn bandwidth_change_commands(dev: &str, mbit: f64) -> Vec<String> {
    vec![
        class_line("change", dev, "1:", 1, mbit),
        class_line("change", dev, "1:1", DEFAULT_CLASS, mbit),
    ]
}

/// The `tc -batch` line that puts new netem arguments in force on an end
/// shaped with netem.
pub fn netem_change_command(dev: &str, args: &str) -> String {
    netem_line("change", dev, args)
}

/// What a meter matches on the end's egress: everything, or traffic to a
/// subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterMatch {
    /// All traffic.
    All,
    /// IPv4 traffic to `address/prefix`.
    Destination(Ipv4Addr, u8),
}

/// `tc -batch` lines that add meter `id` (1..=[`MAX_METER_ID`]) at
/// `mbit` on device `dev`'s egress: a class below the root and a filter
/// at priority `id`, so that it can be removed alone.
pub fn meter_add_commands(dev: &str, id: u32, mbit: f64, matches: MeterMatch) -> Vec<String> {
    let minor = METER_CLASS_BASE + id;
    let filter = match matches {
        MeterMatch::All => format!(
            "filter add dev {dev} parent 1: protocol all prio {id} u32 match u32 0 0 flowid 1:{minor}"
        ),
        MeterMatch::Destination(addr, prefix) => format!(
            "filter add dev {dev} parent 1: protocol ip prio {id} u32 match ip dst {addr}/{prefix} flowid 1:{minor}"
        ),
    };
    vec![class(dev, "1:1", minor, mbit), filter]
}

/// `tc -batch` lines that remove meter `id` from device `dev`.
pub fn meter_del_commands(dev: &str, id: u32) -> Vec<String> {
    vec![
        format!("filter del dev {dev} parent 1: prio {id}"),
        format!("class del dev {dev} classid 1:{}", METER_CLASS_BASE + id),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_gets_root_default_and_netem_classes() {
        let lines = end_commands("s1p2", Some(100.0), Some("delay 12ms loss 0.5%"));
        assert_eq!(lines[0], "qdisc add dev s1p2 root handle 1: htb default 10");
        assert!(lines[1].contains("classid 1:1 htb rate 100000kbit ceil 100000kbit"));
        assert!(lines[2].starts_with("class add dev s1p2 parent 1:1 classid 1:10 "));
        assert_eq!(
            lines[3],
            "qdisc add dev s1p2 parent 1:10 handle 10: netem delay 12ms loss 0.5% limit 100000"
        );
        let plain = end_commands("eth0", None, None);
        assert_eq!(plain.len(), 3);
        assert!(plain[1].contains("rate 10000000kbit"));
    }

    #[test]
    fn a_running_end_changes_its_rate_and_netem_in_place() {
        let lines = bandwidth_change_commands("s1p2", 20.0);
        assert!(lines[0].starts_with(
            "class change dev s1p2 parent 1: classid 1:1 htb rate 20000kbit ceil 20000kbit"
        ));
        assert!(
            lines[1]
                .starts_with("class change dev s1p2 parent 1:1 classid 1:10 htb rate 20000kbit")
        );
        assert_eq!(
            netem_change_command("eth0", "delay 30ms 5ms loss 100%"),
            "qdisc change dev eth0 parent 1:10 handle 10: netem delay 30ms 5ms loss 100% limit 100000"
        );
    }

    #[test]
    fn bursts_hold_a_gso_segment_and_five_ms() {
        assert_eq!(burst_bytes(1.0), 64 * 1024 + 3028);
        assert_eq!(burst_bytes(1000.0), 625_000);
        assert_eq!(rate(0.5), "500kbit");
    }

    #[test]
    fn meters_have_their_own_class_and_priority() {
        let add = meter_add_commands(
            "eth0",
            3,
            10.0,
            MeterMatch::Destination(Ipv4Addr::new(10, 0, 1, 0), 24),
        );
        assert!(add[0].contains("parent 1:1 classid 1:103 htb rate 10000kbit"));
        assert_eq!(
            add[1],
            "filter add dev eth0 parent 1: protocol ip prio 3 u32 match ip dst 10.0.1.0/24 flowid 1:103"
        );
        let all = meter_add_commands("eth0", 4, 10.0, MeterMatch::All);
        assert!(all[1].contains("protocol all prio 4 u32 match u32 0 0 flowid 1:104"));
        assert_eq!(
            meter_del_commands("eth0", 3),
            vec![
                "filter del dev eth0 parent 1: prio 3".to_owned(),
                "class del dev eth0 classid 1:103".to_owned()
            ]
        );
    }
}
