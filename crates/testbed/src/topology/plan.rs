//! The address plan: a cloud and an edge /24, the extra clients' blocks
//! past the edge tier's 240, and the addresses hosts get from it when
//! their file gives none.

use super::{Role, SpecError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 network written `a.b.c.d/n`, its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The network `network/prefix`; `None` when the prefix is over 32 or
    /// host bits are set.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        let s = Subnet { network, prefix };
        (prefix <= 32 && u32::from(network) & !s.mask() == 0).then_some(s)
    }

    /// The network address.
    pub fn network(self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    fn mask(self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `addr` lies in the network.
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.network)
    }

    /// The address with last octet `octet` in this network (meant for /24s).
    pub fn host(self, octet: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.network.octets();
        Ipv4Addr::new(a, b, c, octet)
    }

    /// The third octets this network spans (one for a /24 or longer).
    pub fn third_octets(self) -> std::ops::RangeInclusive<u8> {
        let first = self.network.octets()[2];
        let span = match self.prefix {
            0..=16 => 255,
            p => (1u16 << (24u8.saturating_sub(p))) - 1,
        };
        first..=first.saturating_add(span.min(255) as u8)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;

    fn try_from(text: String) -> Result<Subnet, String> {
        let parsed = text
            .split_once('/')
            .and_then(|(ip, prefix)| Some((ip.parse().ok()?, prefix.parse().ok()?)));
        let Some((network, prefix)) = parsed.filter(|&(_, p): &(Ipv4Addr, u8)| p <= 32) else {
            return Err(format!("{text:?} is not an IPv4 network like 10.0.0.0/24"));
        };
        let s = Subnet { network, prefix };
        let masked = Ipv4Addr::from(u32::from(network) & s.mask());
        if masked == network {
            Ok(s)
        } else {
            Err(format!(
                "{text:?} has host bits set; write {masked}/{prefix}"
            ))
        }
    }
}

/// The tiers of the address plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Addressing {
    /// Cloud tier: cloud MLFO .1, traffic server .2, aggregators .11 up,
    /// Prometheus .100 (default 10.0.0.0/24).
    pub cloud: Subnet,
    /// Edge tier: edge MLFO .1, traffic app .2, edge aggregators .3 to
    /// .9, clients .10 to .249 (default 10.0.1.0/24).
    pub edge: Subnet,
    /// Clients past the edge tier's 240: its /24 blocks, 250 clients each
    /// at .1 to .250 (default 10.0.64.0/18: 64 blocks, 16,000 clients).
    pub extra_clients: Subnet,
}

/// Clients per block of [`Addressing::extra_clients`] (.1 to .250).
pub const EXTRA_BLOCK_CLIENTS: usize = 250;

impl Addressing {
    /// The `j`-th client (from 0) past the edge tier's: block
    /// `j / 250` of `extra_clients`, last octet `1 + j % 250`; `None` past
    /// the subnet's end.
    pub fn extra_client(&self, j: usize) -> Option<Ipv4Addr> {
        let (block, octet) = (j / EXTRA_BLOCK_CLIENTS, 1 + j % EXTRA_BLOCK_CLIENTS);
        let addr = u32::from(self.extra_clients.network())
            .checked_add(u32::try_from(block).ok()?.checked_mul(256)?)?
            .checked_add(octet as u32)?;
        let addr = Ipv4Addr::from(addr);
        self.extra_clients.contains(addr).then_some(addr)
    }

    /// Every network of the plan: cloud, edge, extra clients.
    pub fn tiers(&self) -> [Subnet; 3] {
        [self.cloud, self.edge, self.extra_clients]
    }
}

impl Default for Addressing {
    fn default() -> Self {
        Self {
            cloud: Subnet {
                network: Ipv4Addr::new(10, 0, 0, 0),
                prefix: 24,
            },
            edge: Subnet {
                network: Ipv4Addr::new(10, 0, 1, 0),
                prefix: 24,
            },
            extra_clients: Subnet {
                network: Ipv4Addr::new(10, 0, 64, 0),
                prefix: 18,
            },
        }
    }
}

/// Where hosts of each role get their address when the file gives none:
/// the tier and the range of last octets, the first free one taken.
fn range(plan: &Addressing, role: Role) -> Option<(Subnet, u8, u8)> {
    match role {
        Role::MlfoCloud => Some((plan.cloud, 1, 9)),
        Role::Aggregator => Some((plan.cloud, 11, 99)),
        Role::Prometheus => Some((plan.cloud, 100, 109)),
        Role::MlfoEdge => Some((plan.edge, 1, 9)),
        Role::Client => Some((plan.edge, 10, 249)),
        Role::EdgeAggregator => Some((plan.edge, 3, 9)),
        Role::Traffic => None,
    }
}

/// The `n`-th address (from 0) a host of `role` may get: its range in
/// its tier, then, for clients, the extra clients' blocks.
fn candidate(plan: &Addressing, role: Role, n: usize) -> Option<Ipv4Addr> {
    let (tier, first, last) = range(plan, role)?;
    let in_tier = usize::from(last - first) + 1;
    if n < in_tier {
        return Some(tier.host(first + n as u8));
    }
    (role == Role::Client)
        .then(|| plan.extra_client(n - in_tier))
        .flatten()
}

/// The addresses of hosts given as (role, address from the file), in
/// order: given ones kept, missing ones the first free of their role's
/// range in file order (clients past the edge tier's range in the extra
/// clients' blocks). `plan` must have passed the addressing check.
pub(super) fn assign(
    plan: &Addressing,
    hosts: &[(Role, Option<Ipv4Addr>)],
) -> Result<Vec<Ipv4Addr>, SpecError> {
    let mut used: BTreeSet<Ipv4Addr> = hosts.iter().filter_map(|(_, a)| *a).collect();
    // Where each role's search for a free address goes on: what it passed is taken.
    let mut next: HashMap<Role, usize> = HashMap::new();
    let mut out = Vec::with_capacity(hosts.len());
    for (i, (role, given)) in hosts.iter().enumerate() {
        if let Some(addr) = given {
            out.push(*addr);
            continue;
        }
        let item = format!("hosts[{i}].address");
        let Some((tier, first, last)) = range(plan, *role) else {
            return Err(SpecError::new(
                item,
                format!(
                    "missing; {role} hosts sit on either tier, so give one (the prototype's: {} for the server, {} for the app)",
                    plan.cloud.host(2),
                    plan.edge.host(2)
                ),
            ));
        };
        let n = next.entry(*role).or_default();
        let free = loop {
            match candidate(plan, *role, *n) {
                Some(a) if used.contains(&a) => *n += 1,
                found => break found,
            }
        };
        let free = free.ok_or_else(|| {
            let extra = if *role == Role::Client {
                format!(" and the extra clients' blocks of {}", plan.extra_clients)
            } else {
                String::new()
            };
            SpecError::new(
                item,
                format!(
                    "no free address left for role {role} in {}-{}{extra}; give one",
                    tier.host(first),
                    tier.host(last)
                ),
            )
        })?;
        used.insert(free);
        out.push(free);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_print_and_contain() {
        let s = Subnet::try_from("10.0.1.0/24".to_owned()).unwrap();
        assert_eq!(s.to_string(), "10.0.1.0/24");
        assert!(s.contains(Ipv4Addr::new(10, 0, 1, 200)));
        assert!(!s.contains(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!(s.host(7), Ipv4Addr::new(10, 0, 1, 7));
        assert_eq!(s.third_octets(), 1..=1);
        let wide = Subnet::try_from("10.0.64.0/18".to_owned()).unwrap();
        assert_eq!(wide.third_octets(), 64..=127);
        assert!(
            Subnet::new(Ipv4Addr::UNSPECIFIED, 0)
                .unwrap()
                .contains(Ipv4Addr::BROADCAST)
        );
        assert_eq!(
            Subnet::try_from("10.0.1.5/24".to_owned()).unwrap_err(),
            "\"10.0.1.5/24\" has host bits set; write 10.0.1.0/24"
        );
        for bad in ["10.0.1.0", "10.0.1.0/33", "ten/24", "10.0.1.0/-1"] {
            assert_eq!(
                Subnet::try_from(bad.to_owned()).unwrap_err(),
                format!("{bad:?} is not an IPv4 network like 10.0.0.0/24")
            );
        }
    }

    #[test]
    fn missing_addresses_come_from_the_plan() {
        let plan = Addressing::default();
        let taken = Ipv4Addr::new(10, 0, 1, 10);
        let got = assign(
            &plan,
            &[
                (Role::Client, None),
                (Role::Client, Some(taken)),
                (Role::Client, None),
                (Role::Aggregator, None),
                (Role::MlfoCloud, None),
                (Role::MlfoEdge, None),
                (Role::Prometheus, None),
            ],
        )
        .unwrap();
        let want: Vec<Ipv4Addr> = [
            [10, 0, 1, 11],
            [10, 0, 1, 10],
            [10, 0, 1, 12],
            [10, 0, 0, 11],
            [10, 0, 0, 1],
            [10, 0, 1, 1],
            [10, 0, 0, 100],
        ]
        .into_iter()
        .map(Ipv4Addr::from)
        .collect();
        assert_eq!(got, want);
        let many = assign(&plan, &vec![(Role::Client, None); 10_000]).unwrap();
        assert_eq!(many[239], Ipv4Addr::new(10, 0, 1, 249));
        assert_eq!(many[240], Ipv4Addr::new(10, 0, 64, 1));
        assert_eq!(many[489], Ipv4Addr::new(10, 0, 64, 250));
        assert_eq!(many[490], Ipv4Addr::new(10, 0, 65, 1));
        assert_eq!(many.iter().collect::<BTreeSet<_>>().len(), 10_000);
        let small = Addressing {
            extra_clients: Subnet::try_from("10.0.64.0/24".to_owned()).unwrap(),
            ..plan
        };
        assert_eq!(
            assign(&small, &vec![(Role::Client, None); 491])
                .unwrap_err()
                .to_string(),
            "hosts[490].address: no free address left for role client in 10.0.1.10-10.0.1.249 and the extra clients' blocks of 10.0.64.0/24; give one"
        );
        let full: Vec<(Role, Option<Ipv4Addr>)> = vec![(Role::MlfoCloud, None); 10];
        assert_eq!(
            assign(&plan, &full).unwrap_err().to_string(),
            "hosts[9].address: no free address left for role mlfo-cloud in 10.0.0.1-10.0.0.9; give one"
        );
        assert_eq!(
            assign(&plan, &[(Role::Traffic, None)])
                .unwrap_err()
                .to_string(),
            "hosts[0].address: missing; traffic hosts sit on either tier, so give one (the prototype's: 10.0.0.2 for the server, 10.0.1.2 for the app)"
        );
    }
}
