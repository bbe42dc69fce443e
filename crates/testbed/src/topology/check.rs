//! The checks of a topology: each problem names its item and the fix.

use super::{Addressing, Host, Role, SpecError, Topology};
use std::collections::{BTreeMap, BTreeSet};

/// Whether `v` is a finite number > 0.
pub(super) fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// Whether `v` is a finite number >= 0.
pub(super) fn non_negative(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// Whether `v` is a percentage in [0, 100].
pub(super) fn percentage(v: f64) -> bool {
    (0.0..=100.0).contains(&v)
}

/// Checks the plan: two /24 tiers whose third octets differ, and the extra
/// clients' blocks (a /16 to /24) apart from both.
pub(super) fn addressing(plan: &Addressing) -> Result<(), SpecError> {
    for (tier, subnet) in [("cloud", plan.cloud), ("edge", plan.edge)] {
        if subnet.prefix() != 24 {
            return Err(SpecError::new(
                format!("addressing.{tier}"),
                format!(
                    "{subnet} is not a /24; tiers are /24s so that a host's last octet (the intents' ipstart) selects it"
                ),
            ));
        }
    }
    let third = |s: super::Subnet| s.network().octets()[2];
    if third(plan.cloud) == third(plan.edge) {
        return Err(SpecError::new(
            "addressing",
            format!(
                "cloud {} and edge {} share the third octet {}; give the tiers different ones (loopback addresses keep only the last two octets)",
                plan.cloud,
                plan.edge,
                third(plan.cloud)
            ),
        ));
    }
    let extra = plan.extra_clients;
    if !(16..=24).contains(&extra.prefix()) {
        return Err(SpecError::new(
            "addressing.extra_clients",
            format!("{extra} is not a /16 to /24; give whole /24 blocks, e.g. 10.0.64.0/18"),
        ));
    }
    for (tier, subnet) in [("cloud", plan.cloud), ("edge", plan.edge)] {
        if extra.third_octets().contains(&third(subnet)) {
            return Err(SpecError::new(
                "addressing.extra_clients",
                format!(
                    "{extra} spans the third octet {} of the {tier} tier {subnet}; give blocks apart from both tiers (loopback addresses keep only the last two octets), e.g. 10.0.64.0/18",
                    third(subnet)
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a whole topology, stopping at the first problem.
pub(super) fn topology(t: &Topology) -> Result<(), SpecError> {
    addressing(&t.addressing)?;
    let mut names = BTreeSet::new();
    let mut addresses = BTreeMap::new();
    let mut cloud_mlfo: Option<&str> = None;
    for (i, h) in t.hosts.iter().enumerate() {
        unique_name(&mut names, &h.name, format!("hosts[{i}].name"))?;
        host_address(&t.addressing, i, h, &mut addresses)?;
        host_fields(i, h)?;
        if h.role == Role::MlfoCloud {
            if let Some(first) = cloud_mlfo {
                return Err(SpecError::new(
                    format!("hosts[{i}].role"),
                    format!(
                        "{:?} is a second mlfo-cloud (the first is {first:?}); keep one",
                        h.name
                    ),
                ));
            }
            cloud_mlfo = Some(&h.name);
        }
    }
    for (i, s) in t.switches.iter().enumerate() {
        unique_name(&mut names, &s.name, format!("switches[{i}].name"))?;
    }
    links(t, &names)
}

/// `name` is not empty and not taken yet by a host or switch (`names`).
fn unique_name<'a>(
    names: &mut BTreeSet<&'a str>,
    name: &'a str,
    item: String,
) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(SpecError::new(item, "must not be empty"));
    }
    if !names.insert(name) {
        return Err(SpecError::new(
            item,
            format!("{name:?} is used twice; give every host and switch its own name"),
        ));
    }
    Ok(())
}

/// Host `i`'s address is in a tier of the plan, usable and its own.
fn host_address<'a>(
    plan: &Addressing,
    i: usize,
    h: &'a Host,
    addresses: &mut BTreeMap<std::net::Ipv4Addr, &'a String>,
) -> Result<(), SpecError> {
    let item = format!("hosts[{i}].address");
    let extra = (h.role == Role::Client).then_some(plan.extra_clients);
    let Some(tier) = [Some(plan.cloud), Some(plan.edge), extra]
        .into_iter()
        .flatten()
        .find(|s| s.contains(h.address))
    else {
        let more = if h.role == Role::Client {
            format!(", or the extra clients' blocks {}", plan.extra_clients)
        } else {
            String::new()
        };
        return Err(SpecError::new(
            item,
            format!(
                "{} is outside the address plan; use the cloud tier {} or the edge tier {}{more}",
                h.address, plan.cloud, plan.edge
            ),
        ));
    };
    if matches!(h.address.octets()[3], 0 | 255) {
        return Err(SpecError::new(
            item,
            format!(
                "{} is the network or broadcast address of {tier}; use .1 to .254",
                h.address
            ),
        ));
    }
    if let Some(other) = addresses.insert(h.address, &h.name) {
        return Err(SpecError::new(
            item,
            format!(
                "{} is already {other}'s; give each host its own address",
                h.address
            ),
        ));
    }
    Ok(())
}

/// Host `i`'s CPU limit, cohort and campus fit its role.
fn host_fields(i: usize, h: &Host) -> Result<(), SpecError> {
    let item = |field: &str| format!("hosts[{i}].{field}");
    if let Some(c) = h.cpus
        && !positive(c)
    {
        return Err(SpecError::new(
            item("cpus"),
            format!("must be a number of cores > 0, got {c}"),
        ));
    }
    if h.cohort.is_some() && !matches!(h.role, Role::Client | Role::Aggregator) {
        return Err(SpecError::new(
            item("cohort"),
            format!(
                "only clients and aggregators belong to a cohort; remove it from {:?} (role {})",
                h.name, h.role
            ),
        ));
    }
    if h.campus.is_some() && !matches!(h.role, Role::Client | Role::EdgeAggregator) {
        return Err(SpecError::new(
            item("campus"),
            format!(
                "only clients and edge aggregators sit on a campus; remove it from {:?} (role {})",
                h.name, h.role
            ),
        ));
    }
    if h.role == Role::EdgeAggregator && h.campus.is_none() {
        return Err(SpecError::new(
            item("campus"),
            format!(
                "missing; edge aggregator {:?} serves one campus: name it (e.g. campus: campus1)",
                h.name
            ),
        ));
    }
    Ok(())
}

/// Checks link `i`'s jitter and bursty loss.
fn impairments(i: usize, l: &super::Link) -> Result<(), SpecError> {
    if let Some(j) = l.jitter_ms {
        let delay = l.delay_ms.unwrap_or(0.0);
        if !non_negative(j) || j > delay {
            return Err(SpecError::new(
                format!("links[{i}].jitter_ms"),
                format!(
                    "must be >= 0 ms and at most delay_ms ({delay} ms), so that no frame's delay is below 0; got {j}"
                ),
            ));
        }
    }
    let Some(b) = &l.loss_burst else {
        return Ok(());
    };
    if l.loss_pct.is_some() {
        return Err(SpecError::new(
            format!("links[{i}]"),
            "give at most one of loss_pct (independent loss) and loss_burst (Gilbert-Elliott)",
        ));
    }
    for (field, v) in [
        ("p_pct", b.p_pct),
        ("r_pct", b.r_pct),
        ("bad_loss_pct", b.bad_loss_pct),
        ("good_loss_pct", b.good_loss_pct),
    ] {
        if !percentage(v) {
            return Err(SpecError::new(
                format!("links[{i}].loss_burst.{field}"),
                format!("must be a percentage in [0, 100], got {v}"),
            ));
        }
    }
    if b.r_pct == 0.0 && b.p_pct > 0.0 {
        return Err(SpecError::new(
            format!("links[{i}].loss_burst.r_pct"),
            "is 0, so the link never leaves the bad state once in it; give r_pct > 0 (a burst lasts 100 / r_pct frames)",
        ));
    }
    Ok(())
}

/// Checks the links' ends and figures, and that every host has a link.
fn links(t: &Topology, names: &BTreeSet<&str>) -> Result<(), SpecError> {
    let mut linked = BTreeSet::new();
    let mut pairs = BTreeMap::new();
    for (i, l) in t.links.iter().enumerate() {
        for (end, name) in [("a", &l.a), ("b", &l.b)] {
            if !names.contains(name.as_str()) {
                return Err(SpecError::new(
                    format!("links[{i}].{end}"),
                    format!("{name:?} is neither a host nor a switch; add it or fix the name"),
                ));
            }
            linked.insert(name.as_str());
        }
        if l.a == l.b {
            return Err(SpecError::new(
                format!("links[{i}]"),
                format!("joins {:?} to itself; give two different ends", l.a),
            ));
        }
        let pair = if l.a < l.b {
            (&l.a, &l.b)
        } else {
            (&l.b, &l.a)
        };
        if let Some(first) = pairs.insert(pair, i) {
            return Err(SpecError::new(
                format!("links[{i}]"),
                format!(
                    "joins {:?} and {:?} again (as links[{first}] does); remove one",
                    l.a, l.b
                ),
            ));
        }
        let figures = [
            (
                "bandwidth_mbit",
                l.bandwidth_mbit,
                positive as fn(f64) -> bool,
                "> 0 Mbit/s",
            ),
            ("delay_ms", l.delay_ms, non_negative, ">= 0 ms"),
            (
                "loss_pct",
                l.loss_pct,
                percentage,
                "a percentage in [0, 100]",
            ),
        ];
        for (field, value, ok, rule) in figures {
            if let Some(v) = value
                && !ok(v)
            {
                return Err(SpecError::new(
                    format!("links[{i}].{field}"),
                    format!("must be {rule}, got {v}"),
                ));
            }
        }
        impairments(i, l)?;
    }
    match t
        .hosts
        .iter()
        .enumerate()
        .find(|(_, h)| !linked.contains(h.name.as_str()))
    {
        Some((i, h)) => Err(SpecError::new(
            format!("hosts[{i}]"),
            format!(
                "{:?} is not linked to anything; add a link from it to a switch",
                h.name
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::Topology;

    const OK: &str = "\
hosts:
  - { name: a, role: client, address: 10.0.1.10, cohort: c1, campus: campus1 }
  - { name: b, role: aggregator, address: 10.0.0.11, cohort: c1 }
  - { name: m, role: mlfo-cloud, address: 10.0.0.1 }
switches: [{ name: s }]
links:
  - { a: a, b: s, bandwidth_mbit: 500, delay_ms: 1, loss_pct: 0 }
  - { a: b, b: s }
  - { a: m, b: s }
";

    fn error(text: &str) -> String {
        Topology::from_yaml("t.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn every_problem_names_its_item_and_the_fix() {
        Topology::from_yaml("t.yaml", OK).unwrap();
        let cases = [
            (
                OK.replace("{ a: b, b: s }", "{ a: b, b: x }"),
                "links[1].b: \"x\" is neither a host nor a switch; add it or fix the name",
            ),
            (
                OK.replace("{ a: b, b: s }", "{ a: s, b: s }"),
                "links[1]: joins \"s\" to itself; give two different ends",
            ),
            (
                OK.replace("{ a: b, b: s }", "{ a: s, b: a }"),
                "links[1]: joins \"s\" and \"a\" again (as links[0] does); remove one",
            ),
            (
                OK.replace("name: b,", "name: a,"),
                "hosts[1].name: \"a\" is used twice; give every host and switch its own name",
            ),
            (
                OK.replace("name: s }", "name: m }"),
                "switches[0].name: \"m\" is used twice; give every host and switch its own name",
            ),
            (
                OK.replace("name: b,", "name: \"\","),
                "hosts[1].name: must not be empty",
            ),
            (
                OK.replace("name: s }", "name: \"\" }"),
                "switches[0].name: must not be empty",
            ),
            (
                OK.replace("10.0.0.11", "10.0.1.10"),
                "hosts[1].address: 10.0.1.10 is already a's; give each host its own address",
            ),
            (
                OK.replace("10.0.0.11", "10.0.5.7"),
                "hosts[1].address: 10.0.5.7 is outside the address plan; use the cloud tier 10.0.0.0/24 or the edge tier 10.0.1.0/24",
            ),
            (
                OK.replace("10.0.0.11", "10.0.0.255"),
                "hosts[1].address: 10.0.0.255 is the network or broadcast address of 10.0.0.0/24; use .1 to .254",
            ),
            (
                OK.replace("role: aggregator", "role: robot"),
                "hosts[1].role: \"robot\" is not a role; use one of mlfo-cloud, mlfo-edge, aggregator, client, edge-aggregator, traffic, prometheus",
            ),
            (
                OK.replace("role: aggregator", "role: mlfo-cloud")
                    .replace(", cohort: c1 }", " }"),
                "hosts[2].role: \"m\" is a second mlfo-cloud (the first is \"b\"); keep one",
            ),
            (
                OK.replace("cohort: c1 }", "cohort: c1, cpus: -1 }"),
                "hosts[1].cpus: must be a number of cores > 0, got -1",
            ),
            (
                OK.replace("address: 10.0.0.1 }", "address: 10.0.0.1, cohort: c1 }"),
                "hosts[2].cohort: only clients and aggregators belong to a cohort; remove it from \"m\" (role mlfo-cloud)",
            ),
            (
                OK.replace("cohort: c1 }", "cohort: c1, campus: campus1 }"),
                "hosts[1].campus: only clients and edge aggregators sit on a campus; remove it from \"b\" (role aggregator)",
            ),
            (
                OK.replace("bandwidth_mbit: 500", "bandwidth_mbit: -5"),
                "links[0].bandwidth_mbit: must be > 0 Mbit/s, got -5",
            ),
            (
                OK.replace("bandwidth_mbit: 500", "bandwidth_mbit: 0"),
                "links[0].bandwidth_mbit: must be > 0 Mbit/s, got 0",
            ),
            (
                OK.replace("delay_ms: 1", "delay_ms: -1"),
                "links[0].delay_ms: must be >= 0 ms, got -1",
            ),
            (
                OK.replace("loss_pct: 0", "loss_pct: 120"),
                "links[0].loss_pct: must be a percentage in [0, 100], got 120",
            ),
            (
                OK.replace("loss_pct: 0", "jitter_ms: 2"),
                "links[0].jitter_ms: must be >= 0 ms and at most delay_ms (1 ms), so that no frame's delay is below 0; got 2",
            ),
            (
                OK.replace(
                    "loss_pct: 0",
                    "loss_pct: 0, loss_burst: { p_pct: 1, r_pct: 20 }",
                ),
                "links[0]: give at most one of loss_pct (independent loss) and loss_burst (Gilbert-Elliott)",
            ),
            (
                OK.replace(
                    "loss_pct: 0",
                    "loss_burst: { p_pct: 1, r_pct: 20, good_loss_pct: -1 }",
                ),
                "links[0].loss_burst.good_loss_pct: must be a percentage in [0, 100], got -1",
            ),
            (
                OK.replace("loss_pct: 0", "loss_burst: { p_pct: 1, r_pct: 0 }"),
                "links[0].loss_burst.r_pct: is 0, so the link never leaves the bad state once in it; give r_pct > 0 (a burst lasts 100 / r_pct frames)",
            ),
            (
                OK.replace("loss_pct: 0", "loss_pct: -0.5"),
                "links[0].loss_pct: must be a percentage in [0, 100], got -0.5",
            ),
            (
                OK.replace("  - { a: b, b: s }\n", ""),
                "hosts[1]: \"b\" is not linked to anything; add a link from it to a switch",
            ),
            (
                OK.replace("links:\n", "links: []\n")
                    .lines()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join("\n"),
                "hosts[0]: \"a\" is not linked to anything; add a link from it to a switch",
            ),
            (
                OK.replace(
                    "role: client, address: 10.0.1.10, cohort: c1, campus: campus1",
                    "role: traffic",
                ),
                "hosts[0].address: missing; traffic hosts sit on either tier, so give one (the prototype's: 10.0.0.2 for the server, 10.0.1.2 for the app)",
            ),
            (
                OK.replacen(
                    "role: aggregator, address: 10.0.0.11, cohort: c1",
                    "role: edge-aggregator, address: 10.0.1.3",
                    1,
                ),
                "hosts[1].campus: missing; edge aggregator \"b\" serves one campus: name it (e.g. campus: campus1)",
            ),
            (
                format!("{OK}addressing: {{ cloud: 10.0.0.0/16 }}\n"),
                "addressing.cloud: 10.0.0.0/16 is not a /24; tiers are /24s so that a host's last octet (the intents' ipstart) selects it",
            ),
            (
                format!("{OK}addressing: {{ extra_clients: 10.0.0.0/17 }}\n"),
                "addressing.extra_clients: 10.0.0.0/17 spans the third octet 0 of the cloud tier 10.0.0.0/24; give blocks apart from both tiers (loopback addresses keep only the last two octets), e.g. 10.0.64.0/18",
            ),
            (
                format!("{OK}addressing: {{ extra_clients: 10.0.64.0/25 }}\n"),
                "addressing.extra_clients: 10.0.64.0/25 is not a /16 to /24; give whole /24 blocks, e.g. 10.0.64.0/18",
            ),
            (
                format!("{OK}addressing: {{ cloud: 10.0.0.0/24, edge: 10.9.0.0/24 }}\n"),
                "addressing: cloud 10.0.0.0/24 and edge 10.9.0.0/24 share the third octet 0; give the tiers different ones (loopback addresses keep only the last two octets)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(error(&text), format!("t.yaml: {want}"), "{text}");
        }
    }

    #[test]
    fn yaml_errors_name_the_file_and_field() {
        let e = error(&OK.replace("address: 10.0.0.11", "address: 10.0.0.300"));
        assert!(e.starts_with("t.yaml: hosts[1].address: "), "{e}");
        let e = error(&OK.replace("role: aggregator", "role: aggregator, colour: red"));
        assert!(
            e.starts_with("t.yaml: hosts[1]: unknown field `colour`"),
            "{e}"
        );
        let e = error(&format!("{OK}addressing: {{ edge: 10.0.1.5/24 }}\n"));
        assert!(
            e.contains("\"10.0.1.5/24\" has host bits set; write 10.0.1.0/24"),
            "{e}"
        );
        let e = error("hosts: 3\n");
        assert!(e.starts_with("t.yaml: hosts: invalid type"), "{e}");
    }
}
