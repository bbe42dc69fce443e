//! The generator of the prototype's experiment shape.

use super::check::{non_negative, percentage, positive};
use super::{Addressing, Host, Link, Role, SpecError, Switch, Topology};

/// Most clients the generator places: 240 in the edge tier (.10 to .249),
/// the rest in the extra clients' blocks.
pub const MAX_GENERATED_CLIENTS: usize = 10_000;
/// Clients the edge tier holds (10.0.1.10 to 10.0.1.249).
const EDGE_TIER_CLIENTS: usize = 240;
/// Most cohorts: aggregators `fed.1`.. sit at cloud .11 to .99 (.100 is Prometheus).
const MAX_GENERATED_COHORTS: usize = 89;
/// Most edge aggregators a generated topology has: one per campus, at
/// 10.0.1.3 to 10.0.1.9.
pub const MAX_EDGE_AGGREGATORS: usize = 7;

/// What [`generate`] builds.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Client counts of the cohorts, in address order (e.g. `[30, 10, 10]`;
    /// [`even_split`] makes them from a client and a cohort count).
    pub cohorts: Vec<usize>,
    /// Clients per campus switch.
    pub campus_size: usize,
    /// Bandwidth of every link, Mbit/s.
    pub bandwidth_mbit: f64,
    /// Delay of each of the two satellite hops, ms.
    pub satellite_delay_ms: f64,
    /// Bandwidth of the two satellite hops, Mbit/s (`None`: `bandwidth_mbit`).
    pub satellite_bandwidth_mbit: Option<f64>,
    /// Loss on each satellite hop, percent.
    pub satellite_loss_pct: f64,
    /// Jitter of each satellite hop, ms (at most its delay).
    pub satellite_jitter_ms: f64,
    /// Bursty loss on each satellite hop, instead of `satellite_loss_pct`.
    pub satellite_loss_burst: Option<super::BurstLoss>,
    /// Bandwidth of the campus links: each campus host's link to its
    /// campus switch and the switch's uplink to `edgesw`, Mbit/s (`None`:
    /// `bandwidth_mbit`).
    pub campus_bandwidth_mbit: Option<f64>,
    /// CPU limit of FL hosts (aggregators and clients), cores.
    pub fl_cpus: f64,
    /// One edge aggregator host `fla.N` per campus, on the campus switch
    /// at 10.0.1.(2+N) (hierarchical FL; the prototype's `hierFL` branch).
    pub edge_aggregators: bool,
}

impl Default for GenOptions {
    /// The prototype's experiment: 50 clients in cohorts [30, 10, 10],
    /// campuses of 10, 500 Mbit/s links, 12 ms satellite hops, 2 CPUs.
    fn default() -> Self {
        Self {
            cohorts: vec![30, 10, 10],
            campus_size: 10,
            bandwidth_mbit: 500.0,
            satellite_delay_ms: 12.0,
            satellite_bandwidth_mbit: None,
            satellite_loss_pct: 0.0,
            satellite_jitter_ms: 0.0,
            satellite_loss_burst: None,
            campus_bandwidth_mbit: None,
            fl_cpus: 2.0,
            edge_aggregators: false,
        }
    }
}

/// Splits `clients` into `n` cohorts (at least one), as even as possible,
/// the remainder going one each to the first.
pub fn even_split(clients: usize, n: usize) -> Vec<usize> {
    let n = n.max(1);
    (0..n)
        .map(|i| clients / n + usize::from(i < clients % n))
        .collect()
}

/// Checks the options before anything is built.
fn check(options: &GenOptions) -> Result<(), SpecError> {
    if options.cohorts.is_empty() || options.cohorts.contains(&0) {
        return Err(SpecError::new(
            "cohorts",
            "give one or more cohort sizes, each >= 1",
        ));
    }
    if options.cohorts.len() > MAX_GENERATED_COHORTS {
        return Err(SpecError::new(
            "cohorts",
            format!(
                "{} cohorts need aggregators past 10.0.0.99 (Prometheus is .100); use at most {MAX_GENERATED_COHORTS}",
                options.cohorts.len()
            ),
        ));
    }
    let clients = options
        .cohorts
        .iter()
        .fold(0usize, |sum, c| sum.saturating_add(*c));
    if clients > MAX_GENERATED_CLIENTS {
        return Err(SpecError::new(
            "clients",
            format!(
                "{clients} is more than the {MAX_GENERATED_CLIENTS} clients the generator places; use fewer"
            ),
        ));
    }
    if options.campus_size == 0 {
        return Err(SpecError::new("campus_size", "must be >= 1"));
    }
    let campuses = clients.div_ceil(options.campus_size);
    if options.edge_aggregators && campuses > MAX_EDGE_AGGREGATORS {
        return Err(SpecError::new(
            "edge_aggregators",
            format!(
                "{campuses} campuses need more than the {MAX_EDGE_AGGREGATORS} addresses 10.0.1.3-10.0.1.9 of edge aggregators; use larger campuses (campus_size) or fewer clients"
            ),
        ));
    }
    check_figures(options)
}

/// Checks the options' bandwidths, delay, loss and CPUs.
fn check_figures(options: &GenOptions) -> Result<(), SpecError> {
    let figures = [
        (
            "bandwidth_mbit",
            options.bandwidth_mbit,
            positive as fn(f64) -> bool,
            "> 0 Mbit/s",
        ),
        (
            "satellite_delay_ms",
            options.satellite_delay_ms,
            non_negative,
            ">= 0 ms",
        ),
        (
            "satellite_bandwidth_mbit",
            options
                .satellite_bandwidth_mbit
                .unwrap_or(options.bandwidth_mbit),
            positive,
            "> 0 Mbit/s",
        ),
        (
            "campus_bandwidth_mbit",
            options
                .campus_bandwidth_mbit
                .unwrap_or(options.bandwidth_mbit),
            positive,
            "> 0 Mbit/s",
        ),
        (
            "satellite_loss_pct",
            options.satellite_loss_pct,
            percentage,
            "a percentage in [0, 100]",
        ),
        (
            "fl_cpus",
            options.fl_cpus,
            positive,
            "a number of cores > 0",
        ),
    ];
    for (field, v, ok, rule) in figures {
        if !ok(v) {
            return Err(SpecError::new(field, format!("must be {rule}, got {v}")));
        }
    }
    let jitter = options.satellite_jitter_ms;
    if !(non_negative(jitter) && jitter <= options.satellite_delay_ms) {
        return Err(SpecError::new(
            "satellite_jitter_ms",
            format!(
                "must be >= 0 ms and at most satellite_delay_ms ({} ms), got {jitter}",
                options.satellite_delay_ms
            ),
        ));
    }
    Ok(())
}

/// The links: every host to its campus switch or its tier's switch, the
/// campus switches to `edgesw` (campus links at `campus_bandwidth_mbit`),
/// and the two satellite hops.
fn links(
    options: &GenOptions,
    plan: &Addressing,
    hosts: &[Host],
    campuses: &[String],
) -> Vec<Link> {
    let link = |a: &str, b: &str| Link {
        a: a.to_owned(),
        b: b.to_owned(),
        bandwidth_mbit: Some(options.bandwidth_mbit),
        ..Link::default()
    };
    let campus_mbit = options
        .campus_bandwidth_mbit
        .unwrap_or(options.bandwidth_mbit);
    let campus_link = |a: &str, b: &str| Link {
        bandwidth_mbit: Some(campus_mbit),
        ..link(a, b)
    };
    let mut links: Vec<Link> = campuses.iter().map(|c| campus_link(c, "edgesw")).collect();
    for h in hosts {
        links.push(match (&h.campus, plan.cloud.contains(h.address)) {
            (Some(campus), _) => campus_link(&h.name, campus),
            (None, true) => link(&h.name, "aggsw"),
            (None, false) => link(&h.name, "edgesw"),
        });
    }
    for (a, b) in [("aggsw", "satsw"), ("satsw", "edgesw")] {
        let mut l = link(a, b);
        l.delay_ms = Some(options.satellite_delay_ms);
        l.bandwidth_mbit = Some(
            options
                .satellite_bandwidth_mbit
                .unwrap_or(options.bandwidth_mbit),
        );
        l.loss_pct = (options.satellite_loss_pct > 0.0).then_some(options.satellite_loss_pct);
        l.jitter_ms = (options.satellite_jitter_ms > 0.0).then_some(options.satellite_jitter_ms);
        l.loss_burst = options.satellite_loss_burst;
        links.push(l);
    }
    links
}

/// The `index`-th client's address (from 0): 10.0.1.(10 + index) for the
/// first 240, then the extra clients' blocks (checked: at most 10,000
/// clients, which the default blocks hold).
fn client_address(plan: &Addressing, index: usize) -> std::net::Ipv4Addr {
    match u8::try_from(10 + index) {
        Ok(octet) if index < EDGE_TIER_CLIENTS => plan.edge.host(octet),
        _ => plan
            .extra_client(index - EDGE_TIER_CLIENTS)
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

/// One edge aggregator `fla.N` per campus `campusN`, at 10.0.1.(2+N)
/// (checked: at most seven campuses, so octets 3 to 9).
fn edge_aggregators(plan: &Addressing, campuses: usize, cpus: f64) -> Vec<Host> {
    (1..=campuses)
        .zip(3u8..)
        .map(|(n, octet)| Host {
            name: format!("fla.{n}"),
            role: Role::EdgeAggregator,
            address: plan.edge.host(octet),
            cohort: None,
            campus: Some(format!("campus{n}")),
            cpus: Some(cpus),
        })
        .collect()
}

/// The prototype's shape on the default plan: a cloud tier (`aggsw`: cloud
/// MLFO `mlfo.cloud` 10.0.0.1, traffic server `srv.1` .2, Prometheus `prom`
/// .100, one aggregator `fed.K` per cohort at .(10+K) in cohort `cohortK`),
/// two satellite hops (`aggsw` - `satsw` - `edgesw`), and the edge
/// (`edgesw`: edge MLFO `mo.1` 10.0.1.1, traffic app `app.1` .2, campus
/// switches `campusN` of `campus_size` clients `fc.H` at 10.0.1.H, H from
/// 10, the first `cohorts[0]` in `cohort1` and so on; clients past the
/// 240th, `fc.250` on, in the extra clients' blocks from 10.0.64.1; with
/// `edge_aggregators`, `fla.N` at 10.0.1.(2+N) on `campusN`).
pub fn generate(options: &GenOptions) -> Result<Topology, SpecError> {
    check(options)?;
    let plan = Addressing::default();
    let host = |name: String, role, address| Host {
        name,
        role,
        address,
        cohort: None,
        campus: None,
        cpus: None,
    };
    let mut hosts = vec![
        host("mlfo.cloud".into(), Role::MlfoCloud, plan.cloud.host(1)),
        host("srv.1".into(), Role::Traffic, plan.cloud.host(2)),
        host("prom".into(), Role::Prometheus, plan.cloud.host(100)),
    ];
    // Both bounds were checked: at most 89 cohorts and 10,000 clients.
    for (k, octet) in (1..=options.cohorts.len()).zip(11u8..) {
        let mut fed = host(format!("fed.{k}"), Role::Aggregator, plan.cloud.host(octet));
        fed.cohort = Some(format!("cohort{k}"));
        fed.cpus = Some(options.fl_cpus);
        hosts.push(fed);
    }
    hosts.push(host("mo.1".into(), Role::MlfoEdge, plan.edge.host(1)));
    hosts.push(host("app.1".into(), Role::Traffic, plan.edge.host(2)));
    let cohort_of = options
        .cohorts
        .iter()
        .enumerate()
        .flat_map(|(k, size)| std::iter::repeat_n(k + 1, *size));
    for (index, k) in cohort_of.enumerate() {
        let address = client_address(&plan, index);
        let mut c = host(format!("fc.{}", 10 + index), Role::Client, address);
        c.cohort = Some(format!("cohort{k}"));
        c.campus = Some(format!("campus{}", index / options.campus_size + 1));
        c.cpus = Some(options.fl_cpus);
        hosts.push(c);
    }
    let clients: usize = options.cohorts.iter().sum();
    let campuses: Vec<String> = (1..=clients.div_ceil(options.campus_size))
        .map(|n| format!("campus{n}"))
        .collect();
    if options.edge_aggregators {
        hosts.extend(edge_aggregators(&plan, campuses.len(), options.fl_cpus));
    }
    let links = links(options, &plan, &hosts, &campuses);
    let switches = ["aggsw", "satsw", "edgesw"]
        .into_iter()
        .map(String::from)
        .chain(campuses)
        .map(|name| Switch { name })
        .collect();
    let topology = Topology {
        hosts,
        switches,
        links,
        addressing: plan,
    };
    topology.check()?;
    Ok(topology)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn sizes(t: &Topology) -> Vec<(String, usize)> {
        t.cohorts()
            .iter()
            .map(|(n, m)| (n.clone(), m.len()))
            .collect()
    }

    #[test]
    fn edge_aggregators_sit_one_per_campus_on_its_switch() {
        let t = generate(&GenOptions {
            edge_aggregators: true,
            ..GenOptions::default()
        })
        .unwrap();
        let flas: Vec<(&str, Ipv4Addr, Option<&str>)> = t
            .hosts_with_role(Role::EdgeAggregator)
            .map(|h| (h.name.as_str(), h.address, h.campus.as_deref()))
            .collect();
        assert_eq!(flas.len(), 5);
        for (n, (name, address, campus)) in flas.iter().enumerate() {
            assert_eq!(*name, format!("fla.{}", n + 1));
            assert_eq!(*address, Ipv4Addr::new(10, 0, 1, 3 + n as u8));
            let campus = campus.unwrap();
            assert_eq!(campus, format!("campus{}", n + 1));
            assert!(
                t.links.iter().any(|l| l.a == *name && l.b == campus),
                "{name} is not on {campus}"
            );
        }
        assert_eq!(
            t.hosts_with_role(Role::Client).count(),
            50,
            "clients unchanged"
        );
        let e = generate(&GenOptions {
            cohorts: vec![80],
            edge_aggregators: true,
            ..GenOptions::default()
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("edge_aggregators: 8 campuses need more"),
            "{e}"
        );
    }

    #[test]
    fn generates_the_prototype_shape() {
        let t = generate(&GenOptions::default()).unwrap();
        let clients: Vec<&Host> = t.hosts_with_role(Role::Client).collect();
        assert_eq!(clients.len(), 50);
        for (k, c) in clients.iter().enumerate() {
            let octet = 10 + k as u8;
            assert_eq!(c.address, Ipv4Addr::new(10, 0, 1, octet));
            assert_eq!(c.name, format!("fc.{octet}"));
            assert_eq!(c.campus.as_deref(), Some(&*format!("campus{}", k / 10 + 1)));
            assert_eq!(c.cpus, Some(2.0));
        }
        assert_eq!(
            sizes(&t),
            [
                ("cohort1".to_owned(), 30),
                ("cohort2".to_owned(), 10),
                ("cohort3".to_owned(), 10)
            ]
        );
        let cohorts = t.cohorts();
        assert_eq!(cohorts[0].1[29].name, "fc.39");
        assert_eq!(cohorts[1].1[0].name, "fc.40");
        assert_eq!(cohorts[2].1[9].name, "fc.59");
        let feds: Vec<(&str, Ipv4Addr, Option<&str>)> = t
            .hosts_with_role(Role::Aggregator)
            .map(|h| (h.name.as_str(), h.address, h.cohort.as_deref()))
            .collect();
        assert_eq!(
            feds,
            [
                ("fed.1", Ipv4Addr::new(10, 0, 0, 11), Some("cohort1")),
                ("fed.2", Ipv4Addr::new(10, 0, 0, 12), Some("cohort2")),
                ("fed.3", Ipv4Addr::new(10, 0, 0, 13), Some("cohort3")),
            ]
        );
        for (name, role, addr) in [
            ("mlfo.cloud", Role::MlfoCloud, [10, 0, 0, 1]),
            ("srv.1", Role::Traffic, [10, 0, 0, 2]),
            ("prom", Role::Prometheus, [10, 0, 0, 100]),
            ("mo.1", Role::MlfoEdge, [10, 0, 1, 1]),
            ("app.1", Role::Traffic, [10, 0, 1, 2]),
        ] {
            let h = t.host(name).unwrap();
            assert_eq!((h.role, h.address), (role, Ipv4Addr::from(addr)), "{name}");
        }
        let delayed: Vec<(&str, &str, f64)> = t
            .links
            .iter()
            .filter_map(|l| Some((l.a.as_str(), l.b.as_str(), l.delay_ms?)))
            .collect();
        assert_eq!(
            delayed,
            [("aggsw", "satsw", 12.0), ("satsw", "edgesw", 12.0)]
        );
        assert!(
            t.links
                .iter()
                .all(|l| l.bandwidth_mbit == Some(500.0) && l.loss_pct.is_none())
        );
        let campuses = t.switches.iter().filter(|s| s.name.starts_with("campus"));
        assert_eq!(campuses.count(), 5);
        assert_eq!(t.hosts.len(), 5 + 3 + 50);
        assert_eq!(t.links.len(), 5 + t.hosts.len() + 2);
    }

    #[test]
    fn splits_evenly_with_the_remainder_first() {
        assert_eq!(even_split(50, 5), [10; 5]);
        assert_eq!(even_split(52, 5), [11, 11, 10, 10, 10]);
        assert_eq!(even_split(7, 0), [7]);
        let t = generate(&GenOptions {
            cohorts: even_split(5, 5),
            ..Default::default()
        })
        .unwrap();
        let want: Vec<(String, usize)> = (1..=5).map(|k| (format!("cohort{k}"), 1)).collect();
        assert_eq!(sizes(&t), want);
        assert_eq!(t.hosts_with_role(Role::Aggregator).count(), 5);
        assert_eq!(
            t.host("fed.5").unwrap().address,
            Ipv4Addr::new(10, 0, 0, 15)
        );
        assert_eq!(t.host("fc.14").unwrap().cohort.as_deref(), Some("cohort5"));
    }

    #[test]
    fn bad_options_name_the_field() {
        let with = |f: fn(&mut GenOptions)| {
            let mut o = GenOptions::default();
            f(&mut o);
            generate(&o).unwrap_err().to_string()
        };
        assert_eq!(
            with(|o| o.cohorts = vec![]),
            "cohorts: give one or more cohort sizes, each >= 1"
        );
        assert_eq!(
            with(|o| o.cohorts = vec![3, 0]),
            "cohorts: give one or more cohort sizes, each >= 1"
        );
        assert_eq!(
            with(|o| o.cohorts = vec![9_000, 1_001]),
            "clients: 10001 is more than the 10000 clients the generator places; use fewer"
        );
        assert_eq!(
            with(|o| o.cohorts = vec![usize::MAX, 2]),
            format!(
                "clients: {} is more than the 10000 clients the generator places; use fewer",
                usize::MAX
            )
        );
        assert_eq!(
            with(|o| o.cohorts = vec![1; 90]),
            "cohorts: 90 cohorts need aggregators past 10.0.0.99 (Prometheus is .100); use at most 89"
        );
        assert_eq!(with(|o| o.campus_size = 0), "campus_size: must be >= 1");
        assert_eq!(
            with(|o| o.bandwidth_mbit = -5.0),
            "bandwidth_mbit: must be > 0 Mbit/s, got -5"
        );
        assert_eq!(
            with(|o| o.satellite_delay_ms = f64::NAN),
            "satellite_delay_ms: must be >= 0 ms, got NaN"
        );
        assert_eq!(
            with(|o| o.satellite_loss_pct = 101.0),
            "satellite_loss_pct: must be a percentage in [0, 100], got 101"
        );
        assert_eq!(
            with(|o| o.fl_cpus = 0.0),
            "fl_cpus: must be a number of cores > 0, got 0"
        );
    }

    #[test]
    fn the_largest_shapes_fit_the_plan() {
        let t = generate(&GenOptions {
            cohorts: vec![1; 89],
            campus_size: 7,
            satellite_loss_pct: 3.0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            t.host("fed.89").unwrap().address,
            Ipv4Addr::new(10, 0, 0, 99)
        );
        assert_eq!(t.host("fc.98").unwrap().campus.as_deref(), Some("campus13"));
        assert_eq!(
            t.links.iter().filter(|l| l.loss_pct == Some(3.0)).count(),
            2
        );
        let t = generate(&GenOptions {
            cohorts: vec![240],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            t.host("fc.249").unwrap().address,
            Ipv4Addr::new(10, 0, 1, 249)
        );
    }

    #[test]
    fn clients_past_the_edge_tier_fill_the_extra_blocks_up_to_ten_thousand() {
        let t = generate(&GenOptions {
            cohorts: vec![5_000, 2_500, 2_500],
            campus_size: 250,
            ..Default::default()
        })
        .unwrap();
        let at = |name: &str| t.host(name).unwrap().address;
        assert_eq!(at("fc.10"), Ipv4Addr::new(10, 0, 1, 10));
        assert_eq!(at("fc.249"), Ipv4Addr::new(10, 0, 1, 249));
        assert_eq!(at("fc.250"), Ipv4Addr::new(10, 0, 64, 1));
        assert_eq!(at("fc.499"), Ipv4Addr::new(10, 0, 64, 250));
        assert_eq!(at("fc.500"), Ipv4Addr::new(10, 0, 65, 1));
        assert_eq!(at("fc.10009"), Ipv4Addr::new(10, 0, 103, 10));
        assert_eq!(t.hosts_with_role(Role::Client).count(), 10_000);
        assert_eq!(
            sizes(&t),
            vec![
                ("cohort1".to_owned(), 5_000),
                ("cohort2".to_owned(), 2_500),
                ("cohort3".to_owned(), 2_500)
            ]
        );
        assert_eq!(t.switches.len(), 3 + 40);
        // The seed-sized shapes keep the prototype's addresses and plan.
        let seed = generate(&GenOptions::default()).unwrap();
        assert_eq!(
            seed.host("fc.59").unwrap().address,
            Ipv4Addr::new(10, 0, 1, 59)
        );
    }
}
