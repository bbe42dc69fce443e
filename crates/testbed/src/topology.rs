//! The topology spec (YAML, see `docs/topology.md`): hosts with roles and
//! addresses, switches, links with bandwidth, delay and loss; its checks,
//! and the generator of the prototype's experiment shape.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

/// What a host does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The cloud MLFO.
    MlfoCloud,
    /// An edge MLFO.
    MlfoEdge,
    /// A node agent that runs FL servers.
    Aggregator,
    /// A node agent that runs FL clients.
    Client,
    /// A background-traffic endpoint.
    Traffic,
    /// The Prometheus server.
    Prometheus,
}

/// One host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Unique name, e.g. `fc.10`.
    pub name: String,
    /// What it does.
    pub role: Role,
    /// IPv4 address from the address plan.
    pub address: Ipv4Addr,
    /// Cohort (clients and aggregators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// Campus switch (clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campus: Option<String>,
    /// CPU limit in cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
}

/// One switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    /// Unique name, e.g. `edgesw`.
    pub name: String,
}

/// A link between two hosts or switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// One end.
    pub a: String,
    /// The other end.
    pub b: String,
    /// Bandwidth, Mbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbit: Option<f64>,
    /// One-way delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// Loss, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
}

/// A whole topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Hosts.
    pub hosts: Vec<Host>,
    /// Switches.
    #[serde(default)]
    pub switches: Vec<Switch>,
    /// Links.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// A topology that cannot be used, naming the item and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct TopologyError {
    /// The file, as given.
    pub file: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

/// Largest topology file read.
pub const MAX_TOPOLOGY_BYTES: u64 = 4 * 1024 * 1024;
/// Most clients the generator places (addresses .10 to .249).
pub const MAX_GENERATED_CLIENTS: usize = 240;

impl Topology {
    /// Parses and checks a topology; `file` names it in errors.
    pub fn from_yaml(file: &str, text: &str) -> Result<Topology, TopologyError> {
        let fail = |problem: String| TopologyError {
            file: file.to_owned(),
            problem,
        };
        let topology: Topology = yaml_serde::from_str(text).map_err(|e| fail(e.to_string()))?;
        topology.check().map_err(fail)?;
        Ok(topology)
    }

    /// Reads and checks the topology in `path`.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let file = path.display().to_string();
        let fail = |problem: String| TopologyError {
            file: file.clone(),
            problem,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .len();
        if size > MAX_TOPOLOGY_BYTES {
            return Err(fail(format!(
                "{size} bytes, more than the {MAX_TOPOLOGY_BYTES}-byte limit"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::from_yaml(&file, &text)
    }

    /// The topology as YAML.
    pub fn to_yaml(&self) -> String {
        yaml_serde::to_string(self).unwrap_or_default()
    }

    /// Checks names, addresses, links and figures.
    pub fn check(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        let mut addresses = BTreeMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.name.is_empty() {
                return Err(format!("hosts[{i}].name: must not be empty"));
            }
            if !names.insert(h.name.as_str()) {
                return Err(format!(
                    "hosts[{i}].name: {:?} is used twice; names must be unique",
                    h.name
                ));
            }
            if let Some(other) = addresses.insert(h.address, &h.name) {
                return Err(format!(
                    "hosts[{i}].address: {} is already {other}'s; addresses must be unique",
                    h.address
                ));
            }
            if h.address.is_loopback() || h.address.is_unspecified() || h.address.is_broadcast() {
                return Err(format!(
                    "hosts[{i}].address: {} is not a host address of the plan (e.g. 10.0.1.10)",
                    h.address
                ));
            }
            if let Some(c) = h.cpus
                && !(c.is_finite() && c > 0.0)
            {
                return Err(format!(
                    "hosts[{i}].cpus: must be a number of cores > 0, got {c}"
                ));
            }
        }
        for (i, s) in self.switches.iter().enumerate() {
            if !names.insert(s.name.as_str()) {
                return Err(format!(
                    "switches[{i}].name: {:?} is used twice; host and switch names must be unique",
                    s.name
                ));
            }
        }
        let mut linked = BTreeSet::new();
        for (i, l) in self.links.iter().enumerate() {
            for (end, name) in [("a", &l.a), ("b", &l.b)] {
                if !names.contains(name.as_str()) {
                    return Err(format!(
                        "links[{i}].{end}: {name:?} is neither a host nor a switch of the topology"
                    ));
                }
                linked.insert(name.as_str());
            }
            if l.a == l.b {
                return Err(format!("links[{i}]: links {:?} to itself", l.a));
            }
            for (field, value, ok) in [
                (
                    "bandwidth_mbit",
                    l.bandwidth_mbit,
                    l.bandwidth_mbit.is_none_or(|b| b.is_finite() && b > 0.0),
                ),
                (
                    "delay_ms",
                    l.delay_ms,
                    l.delay_ms.is_none_or(|d| d.is_finite() && d >= 0.0),
                ),
                (
                    "loss_pct",
                    l.loss_pct,
                    l.loss_pct.is_none_or(|p| (0.0..=100.0).contains(&p)),
                ),
            ] {
                if !ok {
                    let rule = match field {
                        "bandwidth_mbit" => "Mbit/s > 0",
                        "delay_ms" => "ms >= 0",
                        _ => "a percentage in [0, 100]",
                    };
                    return Err(format!(
                        "links[{i}].{field}: must be {rule}, got {}",
                        value.unwrap_or_default()
                    ));
                }
            }
        }
        if !self.links.is_empty()
            && let Some(h) = self
                .hosts
                .iter()
                .find(|h| !linked.contains(h.name.as_str()))
        {
            return Err(format!(
                "hosts: {:?} has no link; link it to a switch",
                h.name
            ));
        }
        let clouds = self.hosts_with_role(Role::MlfoCloud).count();
        if clouds > 1 {
            return Err(format!(
                "hosts: {clouds} hosts have role mlfo-cloud; at most one may"
            ));
        }
        Ok(())
    }

    /// Hosts of `role`, in order.
    pub fn hosts_with_role(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.role == role)
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The cohorts of client hosts, in order of first appearance.
    pub fn cohorts(&self) -> Vec<(String, Vec<&Host>)> {
        let mut out: Vec<(String, Vec<&Host>)> = Vec::new();
        for h in self.hosts_with_role(Role::Client) {
            let name = h.cohort.clone().unwrap_or_else(|| "default".to_owned());
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, members)) => members.push(h),
                None => out.push((name, vec![h])),
            }
        }
        out
    }
}

/// What [`generate`] builds.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Client sizes of the cohorts, in address order (e.g. `[30, 10, 10]`).
    pub cohorts: Vec<usize>,
    /// Clients per campus switch.
    pub campus_size: usize,
    /// Bandwidth of every link, Mbit/s.
    pub bandwidth_mbit: f64,
    /// Delay of each of the two satellite hops, ms.
    pub satellite_delay_ms: f64,
    /// Loss on the satellite hops, percent.
    pub satellite_loss_pct: f64,
    /// CPU limit of FL hosts, cores.
    pub fl_cpus: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            cohorts: vec![30, 10, 10],
            campus_size: 10,
            bandwidth_mbit: 500.0,
            satellite_delay_ms: 12.0,
            satellite_loss_pct: 0.0,
            fl_cpus: 2.0,
        }
    }
}

/// Splits `clients` into `n` cohorts, as even as possible (the first get the remainder).
pub fn even_split(clients: usize, n: usize) -> Vec<usize> {
    let n = n.max(1);
    (0..n)
        .map(|i| clients / n + usize::from(i < clients % n))
        .collect()
}

/// The prototype's shape: a cloud tier (`aggsw`: cloud MLFO 10.0.0.1,
/// traffic server `srv.1` .2, Prometheus `prom` .100, one aggregator
/// `fed.K` per cohort at .(10+K)), two satellite hops (`aggsw` - `satsw` -
/// `edgesw`), and the edge (`edgesw`: edge MLFO `mo.1` 10.0.1.1, traffic
/// app `app.1` .2, campus switches `campusN` with clients `fc.H` at
/// 10.0.1.H, H from 10).
pub fn generate(options: &GenOptions) -> Result<Topology, String> {
    let clients: usize = options.cohorts.iter().sum();
    if options.cohorts.is_empty() || options.cohorts.contains(&0) {
        return Err("cohorts: give one or more cohort sizes, each >= 1".to_owned());
    }
    if clients > MAX_GENERATED_CLIENTS {
        return Err(format!(
            "clients: {clients} is more than the {MAX_GENERATED_CLIENTS} addresses .10-.249 of the edge /24"
        ));
    }
    if options.campus_size == 0 {
        return Err("campus_size: must be >= 1".to_owned());
    }
    let host = |name: &str, role, address: [u8; 4]| Host {
        name: name.to_owned(),
        role,
        address: Ipv4Addr::from(address),
        cohort: None,
        campus: None,
        cpus: None,
    };
    let link = |a: &str, b: &str| Link {
        a: a.to_owned(),
        b: b.to_owned(),
        bandwidth_mbit: Some(options.bandwidth_mbit),
        delay_ms: None,
        loss_pct: None,
    };
    let mut t = Topology {
        hosts: vec![
            host("mlfo.cloud", Role::MlfoCloud, [10, 0, 0, 1]),
            host("srv.1", Role::Traffic, [10, 0, 0, 2]),
            host("prom", Role::Prometheus, [10, 0, 0, 100]),
        ],
        switches: ["aggsw", "satsw", "edgesw"]
            .iter()
            .map(|n| Switch {
                name: (*n).to_owned(),
            })
            .collect(),
        links: Vec::new(),
    };
    for (k, _) in options.cohorts.iter().enumerate() {
        let mut fed = host(
            &format!("fed.{}", k + 1),
            Role::Aggregator,
            [10, 0, 0, 11 + k as u8],
        );
        fed.cohort = Some(format!("cohort{}", k + 1));
        fed.cpus = Some(options.fl_cpus);
        t.hosts.push(fed);
    }
    t.hosts.push(host("mo.1", Role::MlfoEdge, [10, 0, 1, 1]));
    t.hosts.push(host("app.1", Role::Traffic, [10, 0, 1, 2]));
    let mut octet = 10u8;
    for (k, size) in options.cohorts.iter().enumerate() {
        for _ in 0..*size {
            let index = usize::from(octet - 10);
            let campus = format!("campus{}", index / options.campus_size + 1);
            let mut c = host(&format!("fc.{octet}"), Role::Client, [10, 0, 1, octet]);
            c.cohort = Some(format!("cohort{}", k + 1));
            c.campus = Some(campus);
            c.cpus = Some(options.fl_cpus);
            t.hosts.push(c);
            octet += 1;
        }
    }
    let campuses = clients.div_ceil(options.campus_size);
    for n in 1..=campuses {
        t.switches.push(Switch {
            name: format!("campus{n}"),
        });
        t.links.push(link(&format!("campus{n}"), "edgesw"));
    }
    for h in &t.hosts {
        let switch = match (h.role, h.address.octets()[2]) {
            (Role::Client, _) => h.campus.clone().unwrap_or_default(),
            (_, 0) => "aggsw".to_owned(),
            _ => "edgesw".to_owned(),
        };
        t.links.push(link(&h.name, &switch));
    }
    for (a, b) in [("aggsw", "satsw"), ("satsw", "edgesw")] {
        let mut l = link(a, b);
        l.delay_ms = Some(options.satellite_delay_ms);
        l.loss_pct = (options.satellite_loss_pct > 0.0).then_some(options.satellite_loss_pct);
        t.links.push(l);
    }
    t.check()?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_prototype_shape() {
        let t = generate(&GenOptions::default()).unwrap();
        let clients: Vec<&Host> = t.hosts_with_role(Role::Client).collect();
        assert_eq!(clients.len(), 50);
        assert_eq!(clients[0].address, Ipv4Addr::new(10, 0, 1, 10));
        assert_eq!(clients[49].address, Ipv4Addr::new(10, 0, 1, 59));
        let cohorts = t.cohorts();
        let sizes: Vec<(String, usize)> =
            cohorts.iter().map(|(n, m)| (n.clone(), m.len())).collect();
        assert_eq!(
            sizes,
            [
                ("cohort1".into(), 30),
                ("cohort2".into(), 10),
                ("cohort3".into(), 10)
            ]
        );
        assert_eq!(cohorts[1].1[0].name, "fc.40");
        assert_eq!(t.hosts_with_role(Role::Aggregator).count(), 3);
        assert_eq!(t.host("mo.1").unwrap().address, Ipv4Addr::new(10, 0, 1, 1));
        let sat: Vec<f64> = t.links.iter().filter_map(|l| l.delay_ms).collect();
        assert_eq!(sat, [12.0, 12.0]);
        assert_eq!(
            t.switches
                .iter()
                .filter(|s| s.name.starts_with("campus"))
                .count(),
            5
        );
        let back = Topology::from_yaml("t.yaml", &t.to_yaml()).unwrap();
        assert_eq!(back, t);
        assert_eq!(even_split(5, 2), [3, 2]);
        assert!(
            generate(&GenOptions {
                cohorts: vec![241],
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn bad_specs_name_the_item() {
        let ok = "hosts:\n  - { name: a, role: client, address: 10.0.1.10 }\n  - { name: b, role: aggregator, address: 10.0.0.11 }\nswitches: [{ name: s }]\nlinks:\n  - { a: a, b: s }\n  - { a: b, b: s }\n";
        assert!(Topology::from_yaml("t.yaml", ok).is_ok());
        let cases = [
            (
                ok.replace("{ a: b, b: s }", "{ a: b, b: x }"),
                "t.yaml: links[1].b: \"x\" is neither a host nor a switch of the topology",
            ),
            (
                ok.replace("10.0.0.11", "10.0.1.10"),
                "t.yaml: hosts[1].address: 10.0.1.10 is already a's; addresses must be unique",
            ),
            (
                ok.replace("name: b,", "name: a,"),
                "t.yaml: hosts[1].name: \"a\" is used twice; names must be unique",
            ),
            (
                ok.replace("{ a: a, b: s }", "{ a: a, b: s, loss_pct: 120 }"),
                "t.yaml: links[0].loss_pct: must be a percentage in [0, 100], got 120",
            ),
            (
                ok.replace("  - { a: b, b: s }\n", ""),
                "t.yaml: hosts: \"b\" has no link; link it to a switch",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                Topology::from_yaml("t.yaml", &text)
                    .unwrap_err()
                    .to_string(),
                want
            );
        }
        let e =
            Topology::from_yaml("t.yaml", &ok.replace("role: client", "role: robot")).unwrap_err();
        assert!(
            e.problem
                .contains("unknown variant `robot`, expected one of `mlfo-cloud`"),
            "{e}"
        );
    }
}
