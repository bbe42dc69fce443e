//! The topology spec (YAML, see `docs/topology.md`): hosts with roles and
//! addresses, switches, links with bandwidth, delay and loss, and the
//! address plan; its checks ([`Topology::check`]), and the generator of the
//! prototype's experiment shape ([`generate`]).

mod check;
mod generate;
mod plan;

pub use generate::{GenOptions, MAX_GENERATED_CLIENTS, even_split, generate};
pub use plan::{Addressing, Subnet};

use serde::{Deserialize, Serialize};
use std::fmt;
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
    /// A node agent on a campus switch that runs edge aggregators
    /// (hierarchical FL; the prototype's `fla.N`).
    EdgeAggregator,
    /// A background-traffic endpoint.
    Traffic,
    /// The Prometheus server.
    Prometheus,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 7] = [
        Role::MlfoCloud,
        Role::MlfoEdge,
        Role::Aggregator,
        Role::Client,
        Role::EdgeAggregator,
        Role::Traffic,
        Role::Prometheus,
    ];

    /// The role's name in topology files, e.g. `mlfo-cloud`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::MlfoCloud => "mlfo-cloud",
            Role::MlfoEdge => "mlfo-edge",
            Role::Aggregator => "aggregator",
            Role::Client => "client",
            Role::EdgeAggregator => "edge-aggregator",
            Role::Traffic => "traffic",
            Role::Prometheus => "prometheus",
        }
    }

    /// The role named `name` in a topology file.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One host (read from a topology file through its spec; deserialised as
/// written, e.g. in a run's summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Unique name, e.g. `fc.10`.
    pub name: String,
    /// What it does.
    pub role: Role,
    /// IPv4 address from the address plan (assigned when the file gives none).
    pub address: Ipv4Addr,
    /// Cohort (clients and aggregators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// Campus (clients and edge aggregators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campus: Option<String>,
    /// CPU limit in cores.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Delay variation, ms: each frame's one-way delay is drawn uniformly
    /// from `delay_ms` ± `jitter_ms` (netem's default distribution); at
    /// most `delay_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    /// Whether a jittered frame may overtake one sent before it (`true`,
    /// netem's behaviour and the default) or waits for it (`false`: the
    /// link keeps the order, as one radio or fibre does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_reorder: Option<bool>,
    /// Bursty loss (Gilbert-Elliott), instead of `loss_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_burst: Option<BurstLoss>,
}

/// Gilbert-Elliott loss, as netem's `loss gemodel p r 1-h 1-k`: a good and
/// a bad state; before each frame the link moves from good to bad with
/// probability `p_pct` and back with `r_pct`, then loses the frame with its
/// new state's loss. Bursts last `100 / r_pct` frames on average, and the
/// link is bad `p / (p + r)` of the time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstLoss {
    /// Probability of moving from good to bad, percent (netem's `p`).
    pub p_pct: f64,
    /// Probability of moving from bad to good, percent (netem's `r`).
    pub r_pct: f64,
    /// Loss in the bad state, percent (netem's `1-h`; default 100).
    #[serde(default = "all_lost")]
    pub bad_loss_pct: f64,
    /// Loss in the good state, percent (netem's `1-k`; default 0).
    #[serde(default)]
    pub good_loss_pct: f64,
}

fn all_lost() -> f64 {
    100.0
}

impl BurstLoss {
    /// The share of frames lost in the long run, percent.
    pub fn mean_loss_pct(&self) -> f64 {
        let (p, r) = (self.p_pct, self.r_pct);
        if p + r == 0.0 {
            return self.good_loss_pct;
        }
        (p * self.bad_loss_pct + r * self.good_loss_pct) / (p + r)
    }
}

/// A whole topology. Deserializing one assigns missing addresses and
/// checks it, so a deserialized `Topology` is a valid one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TopologySpec")]
pub struct Topology {
    /// Hosts.
    pub hosts: Vec<Host>,
    /// Switches.
    pub switches: Vec<Switch>,
    /// Links.
    pub links: Vec<Link>,
    /// The address plan.
    pub addressing: Addressing,
}

/// One thing wrong with a topology or generator options: the item (e.g.
/// `links[1].b`) and what is wrong, with the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{item}: {problem}")]
pub struct SpecError {
    /// Path of the item, e.g. `hosts[3].address`.
    pub item: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl SpecError {
    /// An error about `item`.
    pub fn new(item: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            item: item.into(),
            problem: problem.into(),
        }
    }
}

/// A topology file that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct TopologyError {
    /// The file, as given.
    pub file: String,
    /// What is wrong (a YAML error or a [`SpecError`]) and how to fix it.
    pub problem: String,
}

/// Largest topology file read.
pub const MAX_TOPOLOGY_BYTES: u64 = 4 * 1024 * 1024;

/// A host as written in a file: the address and role still unchecked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSpec {
    name: String,
    role: String,
    #[serde(default)]
    address: Option<Ipv4Addr>,
    #[serde(default)]
    cohort: Option<String>,
    #[serde(default)]
    campus: Option<String>,
    #[serde(default)]
    cpus: Option<f64>,
}

/// A topology as written in a file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologySpec {
    hosts: Vec<HostSpec>,
    #[serde(default)]
    switches: Vec<Switch>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    addressing: Addressing,
}

impl TryFrom<TopologySpec> for Topology {
    type Error = SpecError;

    fn try_from(spec: TopologySpec) -> Result<Self, SpecError> {
        check::addressing(&spec.addressing)?;
        let mut roles = Vec::with_capacity(spec.hosts.len());
        for (i, h) in spec.hosts.iter().enumerate() {
            let role = Role::from_name(&h.role).ok_or_else(|| {
                let valid: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                SpecError::new(
                    format!("hosts[{i}].role"),
                    format!(
                        "{:?} is not a role; use one of {}",
                        h.role,
                        valid.join(", ")
                    ),
                )
            })?;
            roles.push((role, h.address));
        }
        let addresses = plan::assign(&spec.addressing, &roles)?;
        let hosts = spec
            .hosts
            .into_iter()
            .zip(roles.into_iter().zip(addresses))
            .map(|(h, ((role, _), address))| Host {
                name: h.name,
                role,
                address,
                cohort: h.cohort,
                campus: h.campus,
                cpus: h.cpus,
            })
            .collect();
        let topology = Topology {
            hosts,
            switches: spec.switches,
            links: spec.links,
            addressing: spec.addressing,
        };
        topology.check()?;
        Ok(topology)
    }
}

impl Topology {
    /// Parses a topology, assigns missing addresses from its plan and
    /// checks it; `file` names it in errors.
    pub fn from_yaml(file: &str, text: &str) -> Result<Topology, TopologyError> {
        let fail = |problem: String| TopologyError {
            file: file.to_owned(),
            problem,
        };
        let spec: TopologySpec = yaml_serde::from_str(text).map_err(|e| fail(e.to_string()))?;
        Topology::try_from(spec).map_err(|e| fail(e.to_string()))
    }

    /// Reads, completes and checks the topology in `path` (at most
    /// [`MAX_TOPOLOGY_BYTES`]).
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

    /// The topology as YAML, every address written out.
    pub fn to_yaml(&self) -> String {
        // Plain strings, numbers and lists: serializing them cannot fail.
        yaml_serde::to_string(self).unwrap_or_default()
    }

    /// Checks the plan, names, addresses, links and figures; the first
    /// problem found names its item and the fix.
    pub fn check(&self) -> Result<(), SpecError> {
        check::topology(self)
    }

    /// Hosts of `role`, in order.
    pub fn hosts_with_role(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.role == role)
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The cohorts of client hosts with their members, in order of first
    /// appearance; clients without a cohort form `default`.
    pub fn cohorts(&self) -> Vec<(String, Vec<&Host>)> {
        let mut out: Vec<(String, Vec<&Host>)> = Vec::new();
        for h in self.hosts_with_role(Role::Client) {
            let name = h.cohort.as_deref().unwrap_or("default");
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, members)) => members.push(h),
                None => out.push((name.to_owned(), vec![h])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_yaml() {
        let t = generate(&GenOptions {
            satellite_loss_pct: 0.1,
            ..Default::default()
        })
        .unwrap();
        let text = t.to_yaml();
        assert!(
            text.contains("addressing:\n  cloud: 10.0.0.0/24\n  edge: 10.0.1.0/24\n"),
            "{text}"
        );
        assert_eq!(Topology::from_yaml("t.yaml", &text).unwrap(), t);
        let via_serde: Topology = yaml_serde::from_str(&text).unwrap();
        assert_eq!(via_serde, t);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(Topology::load(&path).unwrap(), t);
    }

    #[test]
    fn missing_addresses_come_from_the_plan_in_file_order() {
        let text = "\
hosts:
  - { name: cloud, role: mlfo-cloud }
  - { name: prom, role: prometheus }
  - { name: fed.1, role: aggregator, cohort: c1 }
  - { name: edge, role: mlfo-edge }
  - { name: fc.a, role: client, cohort: c1 }
  - { name: fc.b, role: client, address: 10.5.1.11 }
  - { name: fc.c, role: client }
switches: [{ name: s }]
links: [{ a: cloud, b: s }, { a: prom, b: s }, { a: fed.1, b: s }, { a: edge, b: s }, { a: fc.a, b: s }, { a: fc.b, b: s }, { a: fc.c, b: s }]
addressing: { cloud: 10.5.0.0/24, edge: 10.5.1.0/24 }
";
        let t = Topology::from_yaml("t.yaml", text).unwrap();
        let got: Vec<String> = t.hosts.iter().map(|h| h.address.to_string()).collect();
        assert_eq!(
            got,
            [
                "10.5.0.1",
                "10.5.0.100",
                "10.5.0.11",
                "10.5.1.1",
                "10.5.1.10",
                "10.5.1.11",
                "10.5.1.12"
            ]
        );
        let cohorts: Vec<(String, Vec<&str>)> = t
            .cohorts()
            .into_iter()
            .map(|(c, m)| (c, m.iter().map(|h| h.name.as_str()).collect()))
            .collect();
        assert_eq!(
            cohorts,
            [
                ("c1".to_owned(), vec!["fc.a"]),
                ("default".to_owned(), vec!["fc.b", "fc.c"])
            ]
        );
        assert_eq!(t.host("edge").map(|h| h.role), Some(Role::MlfoEdge));
        assert!(t.host("nobody").is_none());
        let reparsed = Topology::from_yaml("t.yaml", &t.to_yaml()).unwrap();
        assert_eq!(reparsed, t, "assigned addresses are written out");
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../../../docs/topology.md");
        let example = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap();
        let t = Topology::from_yaml("docs/topology.md", example).unwrap();
        assert_eq!(t.hosts.len(), 4);
        assert_eq!(t.addressing, Addressing::default());
    }

    #[test]
    fn serde_checks_too_and_load_names_the_file() {
        let text = "hosts: [{ name: a, role: client }]\n";
        let e = yaml_serde::from_str::<Topology>(text)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hosts[0]: \"a\" is not linked to anything"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.yaml");
        let e = Topology::load(&missing).unwrap_err();
        assert_eq!(e.file, missing.display().to_string());
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_TOPOLOGY_BYTES as usize + 1]).unwrap();
        assert_eq!(
            Topology::load(&big).unwrap_err().problem,
            "4194305 bytes, more than the 4194304-byte limit"
        );
        for role in Role::ALL {
            assert_eq!(Role::from_name(&role.to_string()), Some(role));
        }
        assert_eq!(Role::from_name("robot"), None);
    }
}
