//! The netns layout of a topology, computed without touching the kernel:
//! which namespace each host gets, which bridge each switch becomes, the
//! two ends of every link with their device names and addresses, and the
//! `ip` commands that build it.

use super::names::RunNames;
use crate::topology::{Host, Subnet, Topology};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Device name of a host's one interface.
pub const HOST_DEV: &str = "eth0";

/// A switch: a Linux bridge `s{number}` in the fabric namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgePlan {
    /// The topology's switch name.
    pub switch: String,
    /// 1-based switch number (the ONOS device id is `of:%016x` of it).
    pub number: u32,
    /// Bridge device name.
    pub dev: String,
}

/// One end of a link: a device in a namespace, enslaved to a bridge (a
/// switch port) or carrying the host's address.
#[derive(Debug, Clone, PartialEq)]
pub struct EndPlan {
    /// The host or switch at this end.
    pub node: String,
    /// Namespace holding the device.
    pub ns: String,
    /// Device name (unique in its namespace, at most 15 bytes).
    pub dev: String,
    /// The bridge it is a port of (switch ends).
    pub bridge: Option<String>,
    /// 1-based port number on the switch (switch ends).
    pub port: Option<u32>,
    /// The host's address (host ends).
    pub address: Option<Ipv4Addr>,
}

/// How a link is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// A veth pair; delay and loss, if any, by netem on both ends.
    Veth,
    /// Two TAP devices joined by the user-space delay line: delay, jitter,
    /// loss or a change of them wanted and the kernel lacks netem, or
    /// jitter that keeps the frames' order (netem reorders).
    DelayLine,
}

/// One link of the topology as built.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPlan {
    /// Index in the topology's links.
    pub index: usize,
    /// End `a` of the topology's link.
    pub a: EndPlan,
    /// End `b`.
    pub b: EndPlan,
    /// Bandwidth, Mbit/s, each direction.
    pub bandwidth_mbit: Option<f64>,
    /// One-way delay, ms.
    pub delay_ms: f64,
    /// Loss, percent, each direction.
    pub loss_pct: f64,
    /// Delay variation, ms (uniform, ±).
    pub jitter_ms: f64,
    /// Whether jittered frames may overtake each other.
    pub jitter_reorder: bool,
    /// Bursty loss instead of `loss_pct`.
    pub loss_burst: Option<crate::BurstLoss>,
    /// Whether its delay, loss or state changes during the run (a link
    /// schedule), so that it carries an impairment from the start.
    pub changing: bool,
    /// How it is made.
    pub medium: Medium,
}

impl LinkPlan {
    /// Whether the link needs delay, jitter or loss.
    pub fn impaired(&self) -> bool {
        self.delay_ms > 0.0
            || self.loss_pct > 0.0
            || self.jitter_ms > 0.0
            || self.loss_burst.is_some()
    }

    /// netem's arguments for the link's figures: `delay D J loss ...`.
    pub fn netem_args(&self) -> String {
        let loss = match &self.loss_burst {
            Some(b) => format!(
                "loss gemodel {}% {}% {}% {}%",
                b.p_pct, b.r_pct, b.bad_loss_pct, b.good_loss_pct
            ),
            None => format!("loss {}%", self.loss_pct),
        };
        if self.jitter_ms > 0.0 {
            format!("delay {}ms {}ms {loss}", self.delay_ms, self.jitter_ms)
        } else {
            format!("delay {}ms {loss}", self.delay_ms)
        }
    }

    /// A name for messages and results: `a-b`.
    pub fn label(&self) -> String {
        format!("{}-{}", self.a.node, self.b.node)
    }
}

/// A host as built: its namespace, address and routes.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    /// Host name.
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// Its address (on `eth0`, /24 of its tier).
    pub address: Ipv4Addr,
    /// The other tiers, reached on-link over the same switched network.
    pub on_link: Vec<String>,
    /// CPU limit, cores.
    pub cpus: Option<f64>,
}

/// The whole layout.
#[derive(Debug, Clone, PartialEq)]
pub struct NetPlan {
    /// The run's names.
    pub names: RunNames,
    /// Hosts in topology order.
    pub hosts: Vec<HostPlan>,
    /// Bridges in topology order of the switches.
    pub bridges: Vec<BridgePlan>,
    /// Links in topology order.
    pub links: Vec<LinkPlan>,
}

/// A topology the netns backend cannot build.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{item}: {problem}")]
pub struct PlanError {
    /// The item, e.g. `hosts[3]`.
    pub item: String,
    /// What is wrong, with the fix.
    pub problem: String,
}

impl NetPlan {
    /// The layout of `topology` for run `names`; `netem` says whether the
    /// kernel has `sch_netem` (else impaired links use the delay line).
    pub fn new(topology: &Topology, names: RunNames, netem: bool) -> Result<NetPlan, PlanError> {
        Self::with_changing(topology, names, netem, &BTreeSet::new())
    }

    /// As [`NetPlan::new`], with the links (by index) whose delay, loss or
    /// state a schedule changes during the run.
    pub fn with_changing(
        topology: &Topology,
        names: RunNames,
        netem: bool,
        changing: &BTreeSet<usize>,
    ) -> Result<NetPlan, PlanError> {
        let hosts = host_plans(topology, &names)?;
        let bridges: Vec<BridgePlan> = topology
            .switches
            .iter()
            .enumerate()
            .map(|(i, s)| BridgePlan {
                switch: s.name.clone(),
                number: i as u32 + 1,
                dev: format!("s{}", i + 1),
            })
            .collect();
        let mut ports: BTreeMap<String, u32> = BTreeMap::new();
        let bridge_of: BTreeMap<&str, &BridgePlan> =
            bridges.iter().map(|b| (b.switch.as_str(), b)).collect();
        let host_of: BTreeMap<&str, &HostPlan> =
            hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut end = |node: &str| -> EndPlan {
            if let Some(b) = bridge_of.get(node) {
                let port = ports.entry(node.to_owned()).or_insert(0);
                *port += 1;
                EndPlan {
                    node: node.to_owned(),
                    ns: names.fabric_ns(),
                    dev: format!("{}p{port}", b.dev),
                    bridge: Some(b.dev.clone()),
                    port: Some(*port),
                    address: None,
                }
            } else {
                let host = host_of.get(node);
                EndPlan {
                    node: node.to_owned(),
                    ns: host.map_or_else(|| names.host_ns(node), |h| h.ns.clone()),
                    dev: HOST_DEV.to_owned(),
                    bridge: None,
                    port: None,
                    address: host.map(|h| h.address),
                }
            }
        };
        let links = topology
            .links
            .iter()
            .enumerate()
            .map(|(index, l)| {
                let mut link = LinkPlan {
                    index,
                    a: end(&l.a),
                    b: end(&l.b),
                    bandwidth_mbit: l.bandwidth_mbit,
                    delay_ms: l.delay_ms.unwrap_or(0.0),
                    loss_pct: l.loss_pct.unwrap_or(0.0),
                    jitter_ms: l.jitter_ms.unwrap_or(0.0),
                    jitter_reorder: l.jitter_reorder.unwrap_or(true),
                    loss_burst: l.loss_burst,
                    changing: changing.contains(&index),
                    medium: Medium::Veth,
                };
                let ordered_jitter = link.jitter_ms > 0.0 && !link.jitter_reorder;
                if ((link.impaired() || link.changing) && !netem) || ordered_jitter {
                    link.medium = Medium::DelayLine;
                }
                link
            })
            .collect();
        Ok(NetPlan {
            names,
            hosts,
            bridges,
            links,
        })
    }

    /// Every namespace of the plan: the fabric first, then the hosts'.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.names.fabric_ns())
            .chain(self.hosts.iter().map(|h| h.ns.clone()))
            .collect()
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// `ip -batch` lines that create the namespaces.
    pub fn namespace_commands(&self) -> Vec<String> {
        self.namespaces()
            .iter()
            .map(|ns| format!("netns add {ns}"))
            .collect()
    }

    /// The `ip` batches that create the bridges and the veth links, bring
    /// them up, and set up the hosts' loopback, addresses and routes, in
    /// order: `(namespace, lines)`, `None` for the root namespace (which
    /// only names the target namespaces; no device is made there).
    /// Delay-line links are left out: their TAP devices are created by the
    /// process that runs the line ([`NetPlan::attach_commands`] finishes them).
    pub fn link_batches(&self) -> Vec<(Option<String>, Vec<String>)> {
        let fabric = self.names.fabric_ns();
        let mut bridges = Vec::new();
        for b in &self.bridges {
            bridges.push(format!(
                "link add name {} type bridge stp_state 0 forward_delay 0",
                b.dev
            ));
            bridges.push(format!("link set {} up", b.dev));
        }
        let veths = self.links.iter().filter(|l| l.medium == Medium::Veth);
        let pairs = veths
            .clone()
            .map(|l| {
                format!(
                    "link add name {} netns {} type veth peer name {} netns {}",
                    l.a.dev, l.a.ns, l.b.dev, l.b.ns
                )
            })
            .collect();
        let mut per_ns: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in veths {
            for (ns, line) in self.attach_commands(l) {
                per_ns.entry(ns).or_default().push(line);
            }
        }
        let mut batches = vec![(Some(fabric), bridges), (None, pairs)];
        batches.extend(per_ns.into_iter().map(|(ns, lines)| (Some(ns), lines)));
        batches
    }

    /// Per host namespace, the `ip -batch` lines that bring up `lo` and
    /// address and route `eth0`; run once every link exists (a host's
    /// `eth0` may be a delay line's TAP device).
    pub fn host_batches(&self) -> Vec<(String, Vec<String>)> {
        self.hosts
            .iter()
            .map(|h| {
                let mut lines = vec![
                    "link set lo up".to_owned(),
                    format!("addr add {}/24 dev {HOST_DEV}", h.address),
                ];
                for net in &h.on_link {
                    lines.push(format!("route add {net} dev {HOST_DEV} scope link"));
                }
                (h.ns.clone(), lines)
            })
            .collect()
    }

    /// `(namespace, ip line)` pairs that enslave a link's existing devices
    /// to their bridges and bring them up.
    pub fn attach_commands(&self, link: &LinkPlan) -> Vec<(String, String)> {
        [&link.a, &link.b]
            .into_iter()
            .map(|e| {
                let line = match &e.bridge {
                    Some(br) => format!("link set {} master {br} up", e.dev),
                    None => format!("link set {} up", e.dev),
                };
                (e.ns.clone(), line)
            })
            .collect()
    }
}

/// Every host's namespace, address and routes; refuses two hosts whose
/// names map to one namespace, and a host without exactly one link.
fn host_plans(topology: &Topology, names: &RunNames) -> Result<Vec<HostPlan>, PlanError> {
    let tiers = used_tiers(topology);
    let mut ns_of = BTreeMap::new();
    let mut hosts = Vec::new();
    let mut links_of: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &topology.links {
        for end in [&l.a, &l.b] {
            *links_of.entry(end.as_str()).or_default() += 1;
        }
    }
    for (i, h) in topology.hosts.iter().enumerate() {
        let ns = names.host_ns(&h.name);
        if let Some(other) = ns_of.insert(ns.clone(), h.name.clone()) {
            return Err(PlanError {
                item: format!("hosts[{i}].name"),
                problem: format!(
                    "{:?} and {other:?} map to the same namespace {ns}; rename one (letters, digits, '.', '_' and '-' are kept)",
                    h.name
                ),
            });
        }
        let count = links_of.get(h.name.as_str()).copied().unwrap_or(0);
        if count != 1 {
            return Err(PlanError {
                item: format!("hosts[{i}]"),
                problem: format!(
                    "{:?} has {count} links; the netns backend gives each host one interface, so link it to exactly one switch",
                    h.name
                ),
            });
        }
        hosts.push(host_plan(h, ns, &tiers));
    }
    Ok(hosts)
}

/// The plan's networks some host of `topology` sits in (the extra
/// clients' blocks only when a client does).
fn used_tiers(topology: &Topology) -> Vec<Subnet> {
    topology
        .addressing
        .tiers()
        .into_iter()
        .filter(|t| topology.hosts.iter().any(|h| t.contains(h.address)))
        .collect()
}

/// A host's namespace: its address on `eth0` as a /24, and an on-link
/// route to every other network of the plan (the extra clients' blocks
/// as one route, its own /24 included, which the /24 overrides).
fn host_plan(h: &Host, ns: String, tiers: &[Subnet]) -> HostPlan {
    HostPlan {
        name: h.name.clone(),
        ns,
        address: h.address,
        on_link: tiers
            .iter()
            .filter(|t| !(t.prefix() >= 24 && t.contains(h.address)))
            .map(|t| t.to_string())
            .collect(),
        cpus: h.cpus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenOptions, generate};

    fn plan(netem: bool) -> NetPlan {
        let t = generate(&GenOptions {
            cohorts: vec![2, 1],
            ..GenOptions::default()
        })
        .unwrap();
        NetPlan::new(&t, RunNames::new(9), netem).unwrap()
    }

    #[test]
    fn hosts_get_namespaces_addresses_and_on_link_routes() {
        let p = plan(false);
        let fc = p.host("fc.10").unwrap();
        assert_eq!(fc.ns, "dmo-9-fc.10");
        assert_eq!(fc.address, Ipv4Addr::new(10, 0, 1, 10));
        assert_eq!(fc.on_link, vec!["10.0.0.0/24".to_owned()]);
        assert_eq!(fc.cpus, Some(2.0));
        assert_eq!(p.namespaces()[0], "dmo-9");
        assert_eq!(p.namespaces().len(), p.hosts.len() + 1);
    }

    #[test]
    fn switch_ports_are_numbered_in_link_order() {
        let p = plan(false);
        let aggsw = p.bridges.iter().find(|b| b.switch == "aggsw").unwrap();
        let ends: Vec<&EndPlan> = p
            .links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .filter(|e| e.node == "aggsw")
            .collect();
        let ports: Vec<u32> = ends.iter().map(|e| e.port.unwrap()).collect();
        assert_eq!(ports, (1..=ends.len() as u32).collect::<Vec<_>>());
        assert_eq!(ends[0].dev, format!("{}p1", aggsw.dev));
        assert!(ends.iter().all(|e| e.ns == "dmo-9"));
    }

    #[test]
    fn satellite_hops_use_the_delay_line_only_without_netem() {
        let without = plan(false);
        let sat: Vec<&LinkPlan> = without.links.iter().filter(|l| l.impaired()).collect();
        assert_eq!(sat.len(), 2);
        assert!(sat.iter().all(|l| l.medium == Medium::DelayLine));
        assert!(sat.iter().all(|l| l.delay_ms == 12.0));
        let with = plan(true);
        assert!(with.links.iter().all(|l| l.medium == Medium::Veth));
        // Delay-line links are not made of veth pairs.
        let lines = all_lines(&without).join("\n");
        assert!(!lines.contains(&format!("name {} ", sat[0].a.dev)));
        assert!(all_lines(&with).join("\n").contains(&format!(
            "link add name {} netns dmo-9 type veth peer name {} netns dmo-9",
            sat[0].a.dev, sat[0].b.dev
        )));
    }

    /// Every batch line prefixed with its namespace: links, then hosts.
    fn all_lines(p: &NetPlan) -> Vec<String> {
        let hosts = p.host_batches().into_iter().map(|(ns, l)| (Some(ns), l));
        p.link_batches()
            .into_iter()
            .chain(hosts)
            .flat_map(|(ns, lines)| {
                let prefix = ns.map(|n| format!("-n {n} ")).unwrap_or_default();
                lines.into_iter().map(move |l| format!("{prefix}{l}"))
            })
            .collect()
    }

    #[test]
    fn commands_name_every_namespace_and_route() {
        let p = plan(false);
        let batches = p.link_batches();
        assert_eq!(batches[0].0.as_deref(), Some("dmo-9"), "bridges first");
        assert_eq!(batches[1].0, None, "then the veth pairs");
        let lines = all_lines(&p);
        assert!(lines.contains(&"-n dmo-9-fc.10 addr add 10.0.1.10/24 dev eth0".to_owned()));
        assert!(
            lines.contains(&"-n dmo-9-fc.10 route add 10.0.0.0/24 dev eth0 scope link".to_owned())
        );
        assert!(
            lines.contains(&"-n dmo-9-fed.1 route add 10.0.1.0/24 dev eth0 scope link".to_owned())
        );
        assert!(
            !lines.iter().any(|l| l.contains("default")),
            "no default route anywhere"
        );
        assert_eq!(p.namespace_commands()[0], "netns add dmo-9");
    }

    #[test]
    fn links_that_keep_order_or_will_change_get_a_delay_line() {
        let mut t = generate(&GenOptions {
            cohorts: vec![2],
            satellite_jitter_ms: 3.0,
            ..GenOptions::default()
        })
        .unwrap();
        let sat = t.links.iter().position(|l| l.a == "aggsw").unwrap();
        let host = t.links.iter().position(|l| l.a == "fc.10").unwrap();
        let changing = [host].into_iter().collect();
        let with_netem = NetPlan::with_changing(&t, RunNames::new(9), true, &changing).unwrap();
        // netem reorders jittered frames; it also makes the change.
        assert_eq!(with_netem.links[sat].medium, Medium::Veth);
        assert_eq!(with_netem.links[sat].netem_args(), "delay 12ms 3ms loss 0%");
        assert_eq!(with_netem.links[host].medium, Medium::Veth);
        assert!(with_netem.links[host].changing);
        let without = NetPlan::with_changing(&t, RunNames::new(9), false, &changing).unwrap();
        assert_eq!(without.links[host].medium, Medium::DelayLine);
        t.links[sat].jitter_reorder = Some(false);
        t.links[sat].loss_burst = Some(crate::BurstLoss {
            p_pct: 1.0,
            r_pct: 20.0,
            bad_loss_pct: 100.0,
            good_loss_pct: 0.0,
        });
        let ordered = NetPlan::new(&t, RunNames::new(9), true).unwrap();
        assert_eq!(
            ordered.links[sat].medium,
            Medium::DelayLine,
            "netem cannot keep the order"
        );
        assert_eq!(
            ordered.links[sat].netem_args(),
            "delay 12ms 3ms loss gemodel 1% 20% 100% 0%"
        );
    }

    #[test]
    fn a_host_with_two_links_is_refused() {
        let mut t = generate(&GenOptions {
            cohorts: vec![1],
            ..GenOptions::default()
        })
        .unwrap();
        let extra = crate::Link {
            a: "fc.10".into(),
            b: "aggsw".into(),
            ..crate::Link::default()
        };
        t.links.push(extra);
        let e = NetPlan::new(&t, RunNames::new(9), false).unwrap_err();
        assert!(e.to_string().contains("\"fc.10\" has 2 links"), "{e}");
    }
}
