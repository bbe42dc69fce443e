//! Placement decisions, free of I/O: which client agents form a cohort
//! (edge) and which aggregator gets a new FL server (cloud).

use crate::config::{AgentEntry, AgentRole};
use serde::{Deserialize, Serialize};

/// How a request chooses the clients of an intent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortRequest {
    /// A cohort named in the inventory (`cohort:` of the client agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Explicit client host names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The prototype's selection: clients whose last address octet lies in
    /// `[ipstart, ipstart + size)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipstart: Option<u32>,
    /// Number of clients (with `ipstart`: the prototype's `cohortsize`;
    /// alone: the first free clients in inventory order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

/// A cohort that cannot be formed, naming the request field to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct CohortError {
    /// The request field.
    pub field: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

fn cohort_error(field: &str, problem: String) -> CohortError {
    CohortError {
        field: field.to_owned(),
        problem,
    }
}

/// Chooses the client agents of a cohort, in partition order.
///
/// With no selection at all, every client agent of the inventory takes part.
/// `busy` lists the host of every client another intent runs (a host once per
/// client); a selection by size alone takes the least-loaded hosts first
/// (inventory order among equals), so a burst of intents spreads over them.
pub fn select_cohort<'a>(
    inventory: &'a [AgentEntry],
    request: &CohortRequest,
    busy: &[String],
) -> Result<Vec<&'a AgentEntry>, CohortError> {
    let clients: Vec<&AgentEntry> = inventory
        .iter()
        .filter(|a| a.role == AgentRole::Client)
        .collect();
    let chosen = if let Some(name) = &request.name {
        by_name(clients, name)?
    } else if !request.hosts.is_empty() {
        by_hosts(&clients, &request.hosts)?
    } else if let Some(start) = request.ipstart {
        by_ip_range(clients, start, request.size.unwrap_or(0))?
    } else if let Some(size) = request.size {
        least_loaded(clients, size as usize, busy)?
    } else {
        clients
    };
    if chosen.is_empty() {
        return Err(cohort_error(
            "cohort",
            "the inventory has no client agent; add agents with role: client".to_owned(),
        ));
    }
    Ok(chosen)
}

/// The client agents of inventory cohort `name`.
fn by_name<'a>(
    clients: Vec<&'a AgentEntry>,
    name: &str,
) -> Result<Vec<&'a AgentEntry>, CohortError> {
    let mut names: Vec<&str> = clients.iter().filter_map(|a| a.cohort.as_deref()).collect();
    names.dedup();
    let members: Vec<_> = clients
        .into_iter()
        .filter(|a| a.cohort.as_deref() == Some(name))
        .collect();
    if members.is_empty() {
        return Err(cohort_error(
            "cohort.name",
            format!(
                "no client agent belongs to cohort {name:?}; the inventory's cohorts are {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    Ok(members)
}

/// The client agents named in `hosts`, in that order, each once.
fn by_hosts<'a>(
    clients: &[&'a AgentEntry],
    hosts: &[String],
) -> Result<Vec<&'a AgentEntry>, CohortError> {
    let mut chosen: Vec<&AgentEntry> = Vec::new();
    for host in hosts {
        let agent = clients.iter().find(|a| &a.name == host).ok_or_else(|| {
            cohort_error(
                "cohort.hosts",
                format!("{host:?} is not a client agent in the inventory"),
            )
        })?;
        if chosen.iter().any(|a| a.name == *host) {
            return Err(cohort_error(
                "cohort.hosts",
                format!("{host:?} is listed twice"),
            ));
        }
        chosen.push(*agent);
    }
    Ok(chosen)
}

/// The prototype's selection: clients whose last address octet lies in
/// `[start, start + size)`, exactly `size` of them.
fn by_ip_range(
    clients: Vec<&AgentEntry>,
    start: u32,
    size: u32,
) -> Result<Vec<&AgentEntry>, CohortError> {
    if size == 0 {
        return Err(cohort_error(
            "cohortsize",
            "must be >= 1 with ipstart".to_owned(),
        ));
    }
    let end = u64::from(start) + u64::from(size);
    let in_range = |a: &AgentEntry| {
        a.last_octet()
            .is_some_and(|o| (u64::from(start)..end).contains(&u64::from(o)))
    };
    let chosen: Vec<_> = clients.iter().copied().filter(|a| in_range(a)).collect();
    if chosen.len() != size as usize {
        let octets: Vec<String> = clients
            .iter()
            .filter_map(|a| a.last_octet().map(|o| o.to_string()))
            .collect();
        return Err(cohort_error(
            "ipstart",
            format!(
                "[{start}, {end}) selects {} client agent(s), cohortsize asks for {size}; the client agents' last address octets are {}",
                chosen.len(),
                summarise(&octets)
            ),
        ));
    }
    Ok(chosen)
}

/// `size` clients, those running the fewest clients in `busy` first
/// (inventory order among equals).
fn least_loaded<'a>(
    mut clients: Vec<&'a AgentEntry>,
    size: usize,
    busy: &[String],
) -> Result<Vec<&'a AgentEntry>, CohortError> {
    if size == 0 || size > clients.len() {
        return Err(cohort_error(
            "cohort.size",
            format!(
                "must be in 1..={} (the inventory's client agents), got {size}",
                clients.len()
            ),
        ));
    }
    let mut load: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for host in busy {
        *load.entry(host.as_str()).or_default() += 1;
    }
    clients.sort_by_key(|a| load.get(a.name.as_str()).copied().unwrap_or(0));
    clients.truncate(size);
    Ok(clients)
}

/// A short list: the first and last few of `items`.
fn summarise(items: &[String]) -> String {
    match items.len() {
        0 => "none".to_owned(),
        n if n <= 6 => items.join(", "),
        n => format!(
            "{}, ..., {}",
            items[..3].join(", "),
            items[n - 2..].join(", ")
        ),
    }
}

/// Chooses the aggregator for a new FL server: the one with the most free
/// capacity (inventory order breaks ties), given the aggregator host of
/// every server that runs or is being started.
pub fn choose_aggregator<'a>(
    inventory: &'a [AgentEntry],
    busy: &[String],
) -> Result<&'a AgentEntry, String> {
    let load = |a: &AgentEntry| busy.iter().filter(|h| **h == a.name).count();
    let aggregators: Vec<&AgentEntry> = inventory
        .iter()
        .filter(|a| a.role == AgentRole::Aggregator)
        .collect();
    if aggregators.is_empty() {
        return Err(
            "the inventory has no aggregator; add a node agent with role: aggregator".to_owned(),
        );
    }
    let best = aggregators
        .iter()
        .copied()
        .filter(|a| load(a) < a.capacity)
        .max_by_key(|a| {
            (
                a.capacity - load(a),
                std::cmp::Reverse(position(inventory, a)),
            )
        });
    best.ok_or_else(|| {
        let busy: Vec<String> = aggregators
            .iter()
            .map(|a| format!("{} runs {}/{}", a.name, load(a), a.capacity))
            .collect();
        format!(
            "no aggregator has free capacity ({}); wait for a job to end, add aggregators or raise their capacity",
            busy.join(", ")
        )
    })
}

fn position(inventory: &[AgentEntry], agent: &AgentEntry) -> usize {
    inventory
        .iter()
        .position(|a| a.name == agent.name)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, octet: u8, role: AgentRole, cohort: &str) -> AgentEntry {
        AgentEntry {
            name: name.to_owned(),
            url: format!("http://127.0.1.{octet}:5000"),
            role,
            cohort: Some(cohort.to_owned()),
            campus: None,
            capacity: 1,
        }
    }

    fn inventory() -> Vec<AgentEntry> {
        let mut inv: Vec<_> = (10..16)
            .map(|o| {
                agent(
                    &format!("fc.{o}"),
                    o,
                    AgentRole::Client,
                    if o < 13 { "c1" } else { "c2" },
                )
            })
            .collect();
        inv.push(agent("fed.1", 11, AgentRole::Aggregator, "c1"));
        inv.push(agent("fed.2", 12, AgentRole::Aggregator, "c2"));
        inv
    }

    fn names(agents: &[&AgentEntry]) -> Vec<String> {
        agents.iter().map(|a| a.name.clone()).collect()
    }

    #[test]
    fn selects_by_ip_range_as_the_prototype() {
        let inv = inventory();
        let req = CohortRequest {
            ipstart: Some(12),
            size: Some(3),
            ..Default::default()
        };
        assert_eq!(
            names(&select_cohort(&inv, &req, &[]).unwrap()),
            ["fc.12", "fc.13", "fc.14"]
        );
        let too_far = CohortRequest {
            ipstart: Some(14),
            size: Some(3),
            ..Default::default()
        };
        let e = select_cohort(&inv, &too_far, &[]).unwrap_err();
        assert_eq!(e.field, "ipstart");
        assert!(
            e.problem
                .starts_with("[14, 17) selects 2 client agent(s), cohortsize asks for 3"),
            "{e}"
        );
    }

    #[test]
    fn selects_by_name_hosts_size_or_everything() {
        let inv = inventory();
        let by_name = CohortRequest {
            name: Some("c2".into()),
            ..Default::default()
        };
        assert_eq!(
            names(&select_cohort(&inv, &by_name, &[]).unwrap()),
            ["fc.13", "fc.14", "fc.15"]
        );
        let by_hosts = CohortRequest {
            hosts: vec!["fc.15".into(), "fc.10".into()],
            ..Default::default()
        };
        assert_eq!(
            names(&select_cohort(&inv, &by_hosts, &[]).unwrap()),
            ["fc.15", "fc.10"]
        );
        let by_size = CohortRequest {
            size: Some(2),
            ..Default::default()
        };
        let busy = ["fc.10".to_owned()];
        assert_eq!(
            names(&select_cohort(&inv, &by_size, &busy).unwrap()),
            ["fc.11", "fc.12"]
        );
        let mut loaded: Vec<String> = ["fc.10", "fc.11", "fc.12", "fc.13", "fc.14"]
            .map(str::to_owned)
            .to_vec();
        loaded.extend(["fc.10", "fc.15"].map(str::to_owned));
        assert_eq!(
            names(&select_cohort(&inv, &by_size, &loaded).unwrap()),
            ["fc.11", "fc.12"],
            "hosts with one client go before the one with two"
        );
        assert_eq!(
            select_cohort(&inv, &CohortRequest::default(), &[])
                .unwrap()
                .len(),
            6
        );

        let unknown = CohortRequest {
            hosts: vec!["fed.1".into()],
            ..Default::default()
        };
        assert_eq!(
            select_cohort(&inv, &unknown, &[]).unwrap_err().to_string(),
            "cohort.hosts: \"fed.1\" is not a client agent in the inventory"
        );
        let no_such = CohortRequest {
            name: Some("c9".into()),
            ..Default::default()
        };
        assert_eq!(
            select_cohort(&inv, &no_such, &[]).unwrap_err().to_string(),
            "cohort.name: no client agent belongs to cohort \"c9\"; the inventory's cohorts are c1, c2"
        );
    }

    fn server(host: &str) -> String {
        host.to_owned()
    }

    #[test]
    fn places_servers_on_the_least_loaded_aggregator() {
        let inv = inventory();
        assert_eq!(choose_aggregator(&inv, &[]).unwrap().name, "fed.1");
        assert_eq!(
            choose_aggregator(&inv, &[server("fed.1")]).unwrap().name,
            "fed.2"
        );
        let e = choose_aggregator(&inv, &[server("fed.1"), server("fed.2")]).unwrap_err();
        assert!(
            e.starts_with("no aggregator has free capacity (fed.1 runs 1/1, fed.2 runs 1/1)"),
            "{e}"
        );
    }
}
