//! The report's picture of the topology with the jobs' plans drawn on it:
//! switches in rows by their distance from the first job's server, each
//! host just below its switch; every job's server, edge aggregators and
//! clients in the job's colour (the campuses that aggregate locally are
//! the ones with an edge aggregator), the other hosts grey; links with a
//! delay dashed, and drawn thicker the more bandwidth they have. Hovering
//! a node or a link shows its name and figures.

use crate::summary::JobSummary;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use testbed::{Host, Link, Role};

const WIDTH: f64 = 1060.0;
const ROW: f64 = 130.0;
const TOP: f64 = 40.0;
/// Hosts hang this far below their switch.
const HOST_DROP: f64 = 55.0;
/// Narrowest spacing at which host names are written out.
const LABEL_SPACE: f64 = 46.0;

/// What a host is in the jobs' plans.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Server(usize),
    EdgeAggregator(usize),
    Lost(usize),
    Client(usize),
    Other,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The part each host plays, the first job's part winning.
fn parts(hosts: &[Host], jobs: &[JobSummary]) -> BTreeMap<String, Part> {
    let mut out = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate().rev() {
        for c in &job.clients {
            out.insert(c.clone(), Part::Client(i));
        }
        for e in &job.edge_aggregators {
            let part = if e.lost.is_some() {
                Part::Lost(i)
            } else {
                Part::EdgeAggregator(i)
            };
            out.insert(e.host.clone(), part);
        }
        let server_ip = job.server.as_deref().and_then(|a| a.split(':').next());
        if let Some(h) = hosts
            .iter()
            .find(|h| Some(h.address.to_string().as_str()) == server_ip)
        {
            out.insert(h.name.clone(), Part::Server(i));
        }
    }
    out
}

/// Each switch's row: breadth first over switch-to-switch links from the
/// switch of `root` (or the first switch).
fn rows(switches: &[String], links: &[Link], root: Option<&str>) -> BTreeMap<String, usize> {
    let is_switch = |n: &str| switches.iter().any(|s| s == n);
    let start = root
        .and_then(|r| {
            links.iter().find_map(|l| {
                (l.a == r && is_switch(&l.b))
                    .then(|| l.b.clone())
                    .or_else(|| (l.b == r && is_switch(&l.a)).then(|| l.a.clone()))
            })
        })
        .or_else(|| switches.first().cloned());
    let mut depth = BTreeMap::new();
    let mut queue = VecDeque::new();
    if let Some(s) = start {
        depth.insert(s.clone(), 0);
        queue.push_back(s);
    }
    while let Some(s) = queue.pop_front() {
        let d = depth[&s];
        for l in links.iter().filter(|l| is_switch(&l.a) && is_switch(&l.b)) {
            let next = if l.a == s {
                &l.b
            } else if l.b == s {
                &l.a
            } else {
                continue;
            };
            if !depth.contains_key(next) {
                depth.insert(next.clone(), d + 1);
                queue.push_back(next.clone());
            }
        }
    }
    let last = depth.values().max().map_or(0, |d| d + 1);
    for s in switches {
        depth.entry(s.clone()).or_insert(last);
    }
    depth
}

/// The picture as SVG text, or nothing without hosts.
pub fn render(hosts: &[Host], switches: &[String], links: &[Link], jobs: &[JobSummary]) -> String {
    if hosts.is_empty() || switches.is_empty() {
        return String::new();
    }
    let part = parts(hosts, jobs);
    let root = part
        .iter()
        .find(|(_, p)| matches!(p, Part::Server(0)))
        .map(|(h, _)| h.as_str());
    let depth = rows(switches, links, root);
    let deepest = depth.values().copied().max().unwrap_or(0);
    // Switch positions: each row spread evenly, in topology order.
    let mut at: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut band: BTreeMap<String, f64> = BTreeMap::new();
    for row in 0..=deepest {
        let members: Vec<&String> = switches.iter().filter(|s| depth[*s] == row).collect();
        let width = WIDTH / members.len().max(1) as f64;
        for (i, s) in members.iter().enumerate() {
            at.insert(
                (*s).clone(),
                (width * (i as f64 + 0.5), TOP + ROW * row as f64),
            );
            band.insert((*s).clone(), width);
        }
    }
    // Hosts: below the switch of their link, spread over its band.
    let switch_of = |h: &str| {
        links.iter().find_map(|l| {
            (l.a == h && at.contains_key(&l.b))
                .then(|| l.b.clone())
                .or_else(|| (l.b == h && at.contains_key(&l.a)).then(|| l.a.clone()))
        })
    };
    let mut by_switch: BTreeMap<String, Vec<&Host>> = BTreeMap::new();
    for h in hosts {
        if let Some(s) = switch_of(&h.name) {
            by_switch.entry(s).or_default().push(h);
        }
    }
    let mut spacing: BTreeMap<String, f64> = BTreeMap::new();
    for (s, members) in &by_switch {
        let (x, y) = at[s];
        let step = (band[s] / members.len() as f64).min(90.0);
        for (i, h) in members.iter().enumerate() {
            let offset = (i as f64 - (members.len() as f64 - 1.0) / 2.0) * step;
            at.insert(h.name.clone(), (x + offset, y + HOST_DROP));
            spacing.insert(h.name.clone(), step);
        }
    }
    let height = TOP + ROW * deepest as f64 + HOST_DROP + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"10\">"
    );
    draw_links(&mut svg, links, &at);
    for s in switches {
        let (x, y) = at[s];
        let _ = write!(
            svg,
            "<g><title>switch {name}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"64\" height=\"18\" rx=\"3\" \
             fill=\"#eee\" stroke=\"#555\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{name}</text></g>",
            x - 32.0,
            y - 9.0,
            y + 4.0,
            name = escape(s)
        );
    }
    for h in hosts {
        let Some(&(x, y)) = at.get(&h.name) else {
            continue;
        };
        let labelled = spacing.get(&h.name).is_some_and(|s| *s >= LABEL_SPACE);
        draw_host(&mut svg, h, (x, y), part.get(&h.name).copied(), labelled);
    }
    svg += "</svg>";
    svg
}

/// Every link: width by bandwidth, dashed with a delay.
fn draw_links(svg: &mut String, links: &[Link], at: &BTreeMap<String, (f64, f64)>) {
    for l in links {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(&l.a), at.get(&l.b)) else {
            continue;
        };
        let mbit = l.bandwidth_mbit.unwrap_or(10_000.0);
        let width = (mbit.log10() - 0.5).clamp(0.6, 4.0);
        let dash = if l.delay_ms.unwrap_or(0.0) > 0.0 {
            " stroke-dasharray=\"6 3\""
        } else {
            ""
        };
        let figures = format!(
            "{} - {}: {} Mbit/s{}{}",
            l.a,
            l.b,
            l.bandwidth_mbit
                .map_or("unshaped".to_owned(), |b| b.to_string()),
            l.delay_ms.map_or(String::new(), |d| format!(", {d} ms")),
            l.loss_pct
                .map_or(String::new(), |p| format!(", {p} % loss")),
        );
        let _ = write!(
            svg,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#999\" \
             stroke-width=\"{width:.2}\"{dash}><title>{}</title></line>",
            escape(&figures)
        );
    }
}

/// One host: its shape and colour by its part in the plans.
fn draw_host(svg: &mut String, h: &Host, (x, y): (f64, f64), part: Option<Part>, labelled: bool) {
    let hex = |i: usize| {
        let c = crate::report::colour(i);
        format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
    };
    let (shape, what) = match part.unwrap_or(Part::Other) {
        Part::Server(i) => (
            format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"16\" height=\"16\" fill=\"{}\" stroke=\"#000\" stroke-width=\"2\"/>",
                x - 8.0,
                y - 8.0,
                hex(i)
            ),
            format!("FL server of job {}", i + 1),
        ),
        Part::EdgeAggregator(i) => (
            format!(
                "<polygon points=\"{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}\" fill=\"{}\" stroke=\"#000\"/>",
                y - 9.0,
                x + 9.0,
                y + 9.0,
                x - 9.0,
                hex(i)
            ),
            format!(
                "edge aggregator of job {}: its campus aggregates locally",
                i + 1
            ),
        ),
        Part::Lost(i) => (
            format!(
                "<polygon points=\"{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}\" fill=\"#fff\" stroke=\"{}\" stroke-width=\"2\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#b00\">x</text>",
                y - 9.0,
                x + 9.0,
                y + 9.0,
                x - 9.0,
                hex(i),
                y + 3.0
            ),
            format!("edge aggregator of job {}, lost", i + 1),
        ),
        Part::Client(i) => (
            format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{}\"/>",
                hex(i)
            ),
            format!("client of job {}", i + 1),
        ),
        Part::Other => (
            format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#ccc\" stroke=\"#888\"/>"),
            role_name(h.role).to_owned(),
        ),
    };
    let label = if labelled {
        format!(
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y + 20.0,
            escape(&h.name)
        )
    } else {
        String::new()
    };
    let _ = write!(
        svg,
        "<g><title>{} ({}): {}</title>{shape}{label}</g>",
        escape(&h.name),
        h.address,
        escape(&what)
    );
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::MlfoCloud => "cloud MLFO",
        Role::MlfoEdge => "edge MLFO",
        Role::Aggregator => "aggregator host",
        Role::Client => "client host",
        Role::EdgeAggregator => "edge-aggregator host",
        Role::Traffic => "traffic host",
        Role::Prometheus => "Prometheus",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlfo::record::EdgePlacement;

    #[test]
    fn the_plan_is_drawn_on_the_generated_topology() {
        let t = testbed::generate(&testbed::GenOptions {
            cohorts: vec![20],
            edge_aggregators: true,
            ..testbed::GenOptions::default()
        })
        .unwrap();
        let mut job = crate::summary::tests::sample().jobs.remove(0);
        job.server = Some("10.0.0.11:6000".into());
        job.clients = (10..30).map(|h| format!("fc.{h}")).collect();
        let edge = |n: u32, lost: bool| EdgePlacement {
            campus: format!("campus{n}"),
            host: format!("fla.{n}"),
            agent_url: String::new(),
            clients: 10,
            job_id: None,
            address: None,
            lost: lost.then(|| (3.0, "killed".to_owned())),
        };
        job.edge_aggregators = vec![edge(1, false), edge(2, true)];
        let switches: Vec<String> = t.switches.iter().map(|s| s.name.clone()).collect();
        let svg = render(&t.hosts, &switches, &t.links, &[job]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(
            svg.contains("fed.1 (10.0.0.11): FL server of job 1"),
            "the server's host"
        );
        assert!(
            svg.contains(
                "fla.1 (10.0.1.3): edge aggregator of job 1: its campus aggregates locally"
            )
        );
        assert!(svg.contains("fla.2 (10.0.1.4): edge aggregator of job 1, lost"));
        assert_eq!(svg.matches("client of job 1</title>").count(), 20);
        assert_eq!(svg.matches("<title>switch ").count(), switches.len());
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            2,
            "the two satellite hops"
        );
        assert_eq!(svg.matches("<line ").count(), t.links.len());
        assert!(render(&[], &switches, &t.links, &[]).is_empty());
    }
}
