//! Meters: rate limits on the testbed's traffic, set and removed while it
//! runs. A meter limits what leaves one link end (a host's uplink, the
//! switch port toward a host, or any switch port), optionally only the
//! traffic toward an address range, with an htb class and a u32 filter on
//! that end ([`super::shape`]). Above the rate, traffic is queued and then
//! dropped by the class's queue, rather than dropped at once as an
//! OpenFlow DROP band does: this kernel offers neither the police action
//! nor the matchall or flower classifiers.
//!
//! The ONOS request shapes of the prototype's `sendmeter.py` map onto the
//! same mechanism ([`Meters::onos_meter`], [`Meters::onos_flow`]).

use super::plan::{EndPlan, NetPlan};
use super::shape::{self, MAX_METER_ID, MeterMatch};
use super::sys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// Most meters at once; also the most ONOS meters and ONOS flows.
pub const MAX_METERS: usize = 1024;
/// Highest rate a meter may have, Mbit/s (1 Tbit/s, the highest
/// `max_bandwidth_mbps` an intent may ask for).
pub const MAX_RATE_MBIT: f64 = 1_000_000.0;

/// Which direction of a host's link a meter limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// What the host sends.
    Up,
    /// What the host receives.
    Down,
    /// Both.
    Both,
}

/// A meter as users ask for it: on a host's link (`host`, `direction`) or
/// on a switch port (`switch`, `port`: what leaves the switch there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterSpec {
    /// A host of the topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// With `host`: which direction (default both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// A switch of the topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<String>,
    /// With `switch`: its 1-based port number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Rate, Mbit/s.
    pub rate_mbit: f64,
    /// Only traffic toward this IPv4 range (`10.0.0.0/24`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
}

/// Where a meter applies: [`MeterSpec`]'s mutually exclusive fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterTarget {
    /// A host's link, in one or both directions.
    Host {
        /// The host.
        host: String,
        /// Which direction.
        direction: Direction,
    },
    /// What leaves a switch at one port.
    SwitchPort {
        /// The switch.
        switch: String,
        /// Its 1-based port number.
        port: u32,
    },
}

impl MeterSpec {
    /// The target the spec names: exactly one of `host` (with `direction`)
    /// and `switch` (with `port`).
    pub fn target(&self) -> Result<MeterTarget, MeterError> {
        match (&self.host, &self.switch) {
            (Some(host), None) => {
                if self.port.is_some() {
                    return Err(invalid("port", "goes with switch, not host; drop it"));
                }
                Ok(MeterTarget::Host {
                    host: host.clone(),
                    direction: self.direction.unwrap_or(Direction::Both),
                })
            }
            (None, Some(switch)) => {
                if self.direction.is_some() {
                    return Err(invalid(
                        "direction",
                        "goes with host; a switch port meter limits what leaves the port",
                    ));
                }
                let port = self
                    .port
                    .ok_or_else(|| invalid("port", "give the switch port number (1-based)"))?;
                Ok(MeterTarget::SwitchPort {
                    switch: switch.clone(),
                    port,
                })
            }
            _ => Err(invalid(
                "host",
                "give exactly one of host (with direction) and switch (with port)",
            )),
        }
    }
}

/// One end of a veth link, where a meter's htb class sits: written
/// `namespace/device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEnd {
    /// The namespace holding the device.
    pub ns: String,
    /// The device.
    pub dev: String,
}

impl std::fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ns, self.dev)
    }
}

impl std::str::FromStr for LinkEnd {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ns, dev) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not namespace/device"))?;
        Ok(LinkEnd {
            ns: ns.to_owned(),
            dev: dev.to_owned(),
        })
    }
}

impl Serialize for LinkEnd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LinkEnd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A meter in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meter {
    /// Its id (also its tc class and filter priority).
    pub id: u32,
    /// What was asked.
    #[serde(flatten)]
    pub spec: MeterSpec,
    /// The link ends it is applied on.
    pub applied_on: Vec<LinkEnd>,
}

/// A meter request that cannot be applied: the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeterError {
    /// Bad input.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field, e.g. `host`.
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// No such meter, flow or device.
    #[error("{0}")]
    NotFound(String),
    /// tc failed.
    #[error("applying the meter: {0}")]
    Kernel(#[from] sys::SysError),
}

fn invalid(field: &str, problem: impl Into<String>) -> MeterError {
    MeterError::Invalid {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// An ONOS meter: a device's DROP band rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnosMeter {
    /// ONOS's meter id on the device (1, 2, ...).
    pub id: u32,
    /// `of:%016x` of the switch number.
    #[serde(rename = "deviceId")]
    pub device_id: String,
    /// Band rate, KB/s.
    pub rate_kbytes: f64,
}

/// An ONOS flow rule with a meter instruction, as applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnosFlow {
    /// Flow id (ours).
    pub id: u32,
    /// Device.
    #[serde(rename = "deviceId")]
    pub device_id: String,
    /// `IN_PORT` criterion (recorded; egress classification cannot match it).
    pub in_port: Option<u32>,
    /// `OUTPUT` port.
    pub output_port: u32,
    /// `IPV4_DST` criterion.
    pub ipv4_dst: Option<String>,
    /// ONOS meter id.
    pub meter_id: u32,
    /// Our meter carrying it (flows with the same device, output port,
    /// destination and meter share one).
    pub meter: u32,
}

#[derive(Debug, Default)]
struct State {
    meters: BTreeMap<u32, Meter>,
    onos_meters: BTreeMap<String, Vec<OnosMeter>>,
    onos_flows: Vec<OnosFlow>,
}

/// The meters of one testbed.
#[derive(Debug)]
pub struct Meters {
    plan: NetPlan,
    state: Mutex<State>,
}

/// The ONOS device id of switch number `n`.
pub fn device_id(n: u32) -> String {
    format!("of:{n:016x}")
}

/// Parses `a.b.c.d/len`.
fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), MeterError> {
    let fail = || {
        invalid(
            "dst",
            format!("{text:?} is not an IPv4 range; write it as 10.0.1.0/24"),
        )
    };
    let (addr, len) = text.split_once('/').ok_or_else(fail)?;
    let addr: Ipv4Addr = addr.trim().parse().map_err(|_| fail())?;
    let len: u8 = len.trim().parse().map_err(|_| fail())?;
    if len > 32 {
        return Err(fail());
    }
    Ok((addr, len))
}

impl Meters {
    /// No meters yet on `plan`'s testbed.
    pub fn new(plan: NetPlan) -> Self {
        Self {
            plan,
            state: Mutex::new(State::default()),
        }
    }

    /// The testbed layout.
    pub fn plan(&self) -> &NetPlan {
        &self.plan
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The link ends whose egress a spec limits.
    fn targets(&self, spec: &MeterSpec) -> Result<Vec<EndPlan>, MeterError> {
        match spec.target()? {
            MeterTarget::Host { host, direction } => {
                if self.plan.host(&host).is_none() {
                    return Err(invalid(
                        "host",
                        format!("{host:?} is not a host of the testbed"),
                    ));
                }
                let link = self
                    .plan
                    .links
                    .iter()
                    .find(|l| l.a.node == host || l.b.node == host)
                    .ok_or_else(|| invalid("host", format!("{host:?} has no link")))?;
                let (own, other) = if link.a.node == host {
                    (&link.a, &link.b)
                } else {
                    (&link.b, &link.a)
                };
                Ok(match direction {
                    Direction::Up => vec![own.clone()],
                    Direction::Down => vec![other.clone()],
                    Direction::Both => vec![own.clone(), other.clone()],
                })
            }
            MeterTarget::SwitchPort { switch, port } => {
                self.switch_port(&switch, port).map(|e| vec![e])
            }
        }
    }

    /// The switch-side end at `switch`'s port `port`.
    fn switch_port(&self, switch: &str, port: u32) -> Result<EndPlan, MeterError> {
        if !self.plan.bridges.iter().any(|b| b.switch == switch) {
            return Err(invalid(
                "switch",
                format!("{switch:?} is not a switch of the testbed"),
            ));
        }
        let ports: Vec<&EndPlan> = self
            .plan
            .links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .filter(|e| e.node == switch && e.bridge.is_some())
            .collect();
        ports
            .iter()
            .find(|e| e.port == Some(port))
            .map(|e| (*e).clone())
            .ok_or_else(|| {
                invalid(
                    "port",
                    format!("{switch:?} has ports 1 to {}, not {port}", ports.len()),
                )
            })
    }

    /// Applies a meter; returns it with its id.
    pub fn create(&self, spec: MeterSpec) -> Result<Meter, MeterError> {
        let mut state = self.state();
        self.create_in(&mut state, spec)
    }

    /// [`Self::create`] with the registry already locked.
    fn create_in(&self, state: &mut State, spec: MeterSpec) -> Result<Meter, MeterError> {
        if !(spec.rate_mbit.is_finite() && spec.rate_mbit > 0.0 && spec.rate_mbit <= MAX_RATE_MBIT)
        {
            return Err(invalid(
                "rate_mbit",
                format!(
                    "must be in (0, {MAX_RATE_MBIT}] Mbit/s, got {}",
                    spec.rate_mbit
                ),
            ));
        }
        let matches = match &spec.dst {
            Some(d) => {
                let (addr, len) = parse_cidr(d)?;
                MeterMatch::Destination(addr, len)
            }
            None => MeterMatch::All,
        };
        let targets = self.targets(&spec)?;
        if state.meters.len() >= MAX_METERS {
            return Err(invalid(
                "meters",
                format!("{MAX_METERS} meters are set, the limit; delete some first"),
            ));
        }
        let id = (1..=MAX_METER_ID)
            .find(|i| !state.meters.contains_key(i))
            .ok_or_else(|| invalid("meters", "no meter id left; delete some first"))?;
        for (k, end) in targets.iter().enumerate() {
            let added = sys::tc_batch(
                &end.ns,
                &shape::meter_add_commands(&end.dev, id, spec.rate_mbit, matches),
            );
            if let Err(e) = added {
                // Leave nothing half-applied: remove it from the ends done.
                for done in &targets[..k] {
                    let _ = sys::tc_batch(&done.ns, &shape::meter_del_commands(&done.dev, id));
                }
                return Err(e.into());
            }
        }
        let meter = Meter {
            id,
            applied_on: targets
                .iter()
                .map(|e| LinkEnd {
                    ns: e.ns.clone(),
                    dev: e.dev.clone(),
                })
                .collect(),
            spec,
        };
        state.meters.insert(id, meter.clone());
        Ok(meter)
    }

    /// The meters in force, by id.
    pub fn list(&self) -> Vec<Meter> {
        self.state().meters.values().cloned().collect()
    }

    /// Removes meter `id` and the ONOS flows it carried.
    pub fn delete(&self, id: u32) -> Result<Meter, MeterError> {
        let mut state = self.state();
        Self::delete_in(&mut state, id)
    }

    /// [`Self::delete`] with the registry already locked.
    fn delete_in(state: &mut State, id: u32) -> Result<Meter, MeterError> {
        let meter = state.meters.get(&id).cloned().ok_or_else(|| {
            MeterError::NotFound(format!("no meter {id}; GET /v1/meters lists them"))
        })?;
        for on in &meter.applied_on {
            sys::tc_batch(&on.ns, &shape::meter_del_commands(&on.dev, id))?;
        }
        state.meters.remove(&id);
        state.onos_flows.retain(|f| f.meter != id);
        Ok(meter)
    }

    /// The switch number of ONOS device id `device` (`of:000000000000000a`;
    /// fewer digits are accepted, and [`device_id`] writes it back in full).
    fn device(&self, device: &str) -> Result<u32, MeterError> {
        let n = device
            .strip_prefix("of:")
            .filter(|h| !h.is_empty() && h.len() <= 16)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| invalid("deviceId", format!("{device:?} is not of:%016x")))?;
        if !self.plan.bridges.iter().any(|b| b.number == n) {
            return Err(MeterError::NotFound(format!(
                "deviceId: {device} not found; the switches are of:0000000000000001 to {}",
                device_id(self.plan.bridges.len() as u32)
            )));
        }
        Ok(n)
    }

    /// `POST /onos/v1/meters/{device}`: stores a DROP band rate (KB/s) as
    /// ONOS meter 1, 2, ... of the device.
    pub fn onos_meter(&self, device: &str, rate_kbytes: f64) -> Result<OnosMeter, MeterError> {
        let device = device_id(self.device(device)?);
        let device = device.as_str();
        if !(rate_kbytes.is_finite()
            && rate_kbytes > 0.0
            && rate_kbytes * 8.0 / 1000.0 <= MAX_RATE_MBIT)
        {
            return Err(invalid(
                "bands[0].rate",
                format!(
                    "must be a rate in KB/s, > 0 and at most {} (= {MAX_RATE_MBIT} Mbit/s), got {rate_kbytes}",
                    MAX_RATE_MBIT * 1000.0 / 8.0
                ),
            ));
        }
        let mut state = self.state();
        if state.onos_meters.values().map(Vec::len).sum::<usize>() >= MAX_METERS {
            return Err(invalid(
                "meters",
                format!("{MAX_METERS} ONOS meters are set, the limit; delete some first"),
            ));
        }
        let list = state.onos_meters.entry(device.to_owned()).or_default();
        let meter = OnosMeter {
            id: list.iter().map(|m| m.id).max().unwrap_or(0) + 1,
            device_id: device.to_owned(),
            rate_kbytes,
        };
        list.push(meter.clone());
        Ok(meter)
    }

    /// `POST /onos/v1/flows/{device}`: applies ONOS meter `meter_id`'s rate
    /// to what leaves `device` through `output_port` (toward `ipv4_dst` when
    /// given). Flows with the same device, port, destination and meter share
    /// one meter, as flows sharing an OpenFlow meter do.
    // Over 80 lines: reads an ONOS flow rule's fields one by one, each with its own error.
    pub fn onos_flow(
        &self,
        device: &str,
        in_port: Option<u32>,
        output_port: u32,
        ipv4_dst: Option<String>,
        meter_id: u32,
    ) -> Result<OnosFlow, MeterError> {
        let number = self.device(device)?;
        let device = device_id(number);
        let device = device.as_str();
        let mut state = self.state();
        if state.onos_flows.len() >= MAX_METERS {
            return Err(invalid(
                "flows",
                format!("{MAX_METERS} ONOS flows are set, the limit; delete some first"),
            ));
        }
        let rate_kbytes = state
            .onos_meters
            .get(device)
            .and_then(|l| l.iter().find(|m| m.id == meter_id))
            .map(|m| m.rate_kbytes)
            .ok_or_else(|| {
                invalid(
                    "treatment.instructions[METER].meterId",
                    format!("device {device} has no meter {meter_id}; POST /onos/v1/meters/{device} first"),
                )
            })?;
        let shared = state
            .onos_flows
            .iter()
            .find(|f| {
                f.device_id == device
                    && f.output_port == output_port
                    && f.ipv4_dst == ipv4_dst
                    && f.meter_id == meter_id
            })
            .map(|f| f.meter);
        let meter = match shared {
            Some(m) => m,
            None => {
                let switch = self
                    .plan
                    .bridges
                    .iter()
                    .find(|b| b.number == number)
                    .map(|b| b.switch.clone())
                    .unwrap_or_default();
                let spec = MeterSpec {
                    host: None,
                    direction: None,
                    switch: Some(switch),
                    port: Some(output_port),
                    rate_mbit: rate_kbytes * 8.0 / 1000.0,
                    dst: ipv4_dst.clone(),
                };
                self.create_in(&mut state, spec)
                    .map_err(|e| match e {
                        MeterError::Invalid { field, problem } if field == "port" => {
                            invalid("treatment.instructions[OUTPUT].port", problem)
                        }
                        MeterError::Invalid { field, problem } if field == "dst" => {
                            invalid("selector.criteria[IPV4_DST].ip", problem)
                        }
                        other => other,
                    })?
                    .id
            }
        };
        let flow = OnosFlow {
            id: state.onos_flows.iter().map(|f| f.id).max().unwrap_or(0) + 1,
            device_id: device.to_owned(),
            in_port,
            output_port,
            ipv4_dst,
            meter_id,
            meter,
        };
        state.onos_flows.push(flow.clone());
        Ok(flow)
    }

    /// `DELETE /onos/v1/meters/{device}/{id}`: forgets an ONOS meter that no
    /// flow uses.
    pub fn onos_meter_delete(&self, device: &str, id: u32) -> Result<OnosMeter, MeterError> {
        let device = device_id(self.device(device)?);
        let device = device.as_str();
        let mut state = self.state();
        let users = state
            .onos_flows
            .iter()
            .filter(|f| f.device_id == device && f.meter_id == id)
            .count();
        if users > 0 {
            return Err(invalid(
                "meterId",
                format!("meter {id} of {device} is used by {users} flow(s); delete them first"),
            ));
        }
        let list = state.onos_meters.entry(device.to_owned()).or_default();
        let i = list
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| MeterError::NotFound(format!("device {device} has no meter {id}")))?;
        Ok(list.remove(i))
    }

    /// The ONOS meters, every device's.
    pub fn onos_meters(&self) -> Vec<OnosMeter> {
        self.state()
            .onos_meters
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// The ONOS flows.
    pub fn onos_flows(&self) -> Vec<OnosFlow> {
        self.state().onos_flows.clone()
    }

    /// Removes ONOS flow `id`; its meter goes when no flow uses it.
    pub fn onos_flow_delete(&self, id: u32) -> Result<(), MeterError> {
        let mut state = self.state();
        let i = state
            .onos_flows
            .iter()
            .position(|f| f.id == id)
            .ok_or_else(|| {
                MeterError::NotFound(format!("no flow {id}; GET /onos/v1/flows lists them"))
            })?;
        let meter = state.onos_flows[i].meter;
        if state.onos_flows.iter().filter(|f| f.meter == meter).count() == 1 {
            Self::delete_in(&mut state, meter)?;
        } else {
            state.onos_flows.remove(i);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::RunNames;
    use crate::{GenOptions, generate};

    fn meters() -> Meters {
        let t = generate(&GenOptions {
            cohorts: vec![2],
            ..GenOptions::default()
        })
        .unwrap();
        Meters::new(NetPlan::new(&t, RunNames::new(253), false).unwrap())
    }

    fn spec(host: Option<&str>, switch: Option<&str>, port: Option<u32>, rate: f64) -> MeterSpec {
        MeterSpec {
            host: host.map(str::to_owned),
            direction: None,
            switch: switch.map(str::to_owned),
            port,
            rate_mbit: rate,
            dst: None,
        }
    }

    #[test]
    fn bad_requests_name_the_field() {
        let m = meters();
        let e = m.create(spec(Some("nope"), None, None, 10.0)).unwrap_err();
        assert_eq!(e.to_string(), "host: \"nope\" is not a host of the testbed");
        let e = m.create(spec(Some("fc.10"), None, None, 0.0)).unwrap_err();
        assert!(
            e.to_string().starts_with("rate_mbit: must be in (0, "),
            "{e}"
        );
        let e = m
            .create(spec(None, Some("aggsw"), Some(99), 1.0))
            .unwrap_err();
        assert!(
            e.to_string().starts_with("port: \"aggsw\" has ports 1 to "),
            "{e}"
        );
        let e = m.create(spec(None, None, None, 1.0)).unwrap_err();
        assert!(e.to_string().contains("exactly one of host"), "{e}");
        let mut s = spec(Some("fc.10"), None, None, 1.0);
        s.dst = Some("10.0.1.0/33".into());
        assert!(m.create(s).unwrap_err().to_string().starts_with("dst: "));
        let e = m.onos_meter("of:00000000000000ff", 100.0).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        let e = m.onos_flow(&device_id(1), None, 1, None, 7).unwrap_err();
        assert!(e.to_string().contains("has no meter 7"), "{e}");
        assert!(m.list().is_empty());
    }

    #[test]
    fn a_spec_names_one_target_and_link_ends_read_back() {
        let mut s = spec(Some("fc.10"), None, None, 1.0);
        assert_eq!(
            s.target().unwrap(),
            MeterTarget::Host {
                host: "fc.10".into(),
                direction: Direction::Both
            }
        );
        s.port = Some(2);
        assert!(s.target().unwrap_err().to_string().starts_with("port: "));
        let mut s = spec(None, Some("aggsw"), Some(3), 1.0);
        assert_eq!(
            s.target().unwrap(),
            MeterTarget::SwitchPort {
                switch: "aggsw".into(),
                port: 3
            }
        );
        s.direction = Some(Direction::Up);
        assert!(
            s.target()
                .unwrap_err()
                .to_string()
                .starts_with("direction: ")
        );
        let end: LinkEnd = serde_json::from_str("\"dmo-5-fab/sw1-p2\"").unwrap();
        assert_eq!((end.ns.as_str(), end.dev.as_str()), ("dmo-5-fab", "sw1-p2"));
        assert_eq!(serde_json::to_string(&end).unwrap(), "\"dmo-5-fab/sw1-p2\"");
        assert!(serde_json::from_str::<LinkEnd>("\"eth0\"").is_err());
    }

    #[test]
    fn device_ids_are_sixteen_hex_digits() {
        assert_eq!(device_id(10), "of:000000000000000a");
        let e = meters().device("of:000000000000000a").unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        assert_eq!(meters().device("of:0000000000000001").unwrap(), 1);
    }

    #[test]
    fn onos_meters_are_numbered_per_device_and_deleted_when_unused() {
        let m = meters();
        assert_eq!(m.onos_meter("of:1", 1250.0).unwrap().id, 1);
        let second = m.onos_meter(&device_id(1), 2500.0).unwrap();
        assert_eq!(
            (second.id, second.device_id.as_str()),
            (2, "of:0000000000000001")
        );
        assert_eq!(m.onos_meter(&device_id(2), 1.0).unwrap().id, 1);
        m.onos_meter_delete("of:1", 1).unwrap();
        assert_eq!(m.onos_meter(&device_id(1), 1.0).unwrap().id, 3);
        let e = m.onos_meter_delete(&device_id(1), 1).unwrap_err();
        assert!(matches!(e, MeterError::NotFound(_)), "{e}");
        let e = m.onos_meter(&device_id(1), f64::NAN).unwrap_err();
        assert!(e.to_string().starts_with("bands[0].rate: "), "{e}");
        let e = m.onos_meter("of:", 1.0).unwrap_err();
        assert!(e.to_string().starts_with("deviceId: "), "{e}");
        assert_eq!(m.onos_meters().len(), 3);
    }
}
