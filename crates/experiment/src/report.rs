//! `report.html`: the experiment's tables and plots (accuracy and loss per
//! round for each cohort, round durations, orchestration timeline), drawn
//! with plotters as SVG embedded in one offline HTML file.

use crate::error::RunError;
use crate::summary::{JobSummary, ResultsError, Summary};
use intent::TrainingMode;
use mlfo::record::IntentState;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 360;

fn chart_error(e: impl std::fmt::Display) -> RunError {
    RunError::Chart(e.to_string())
}

/// A colour per job, cycling.
pub(crate) fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[i % PALETTE.len()]
}

pub(crate) type Series = Vec<(String, Vec<(f64, f64)>)>;

/// A line chart of one value per round for every job, as SVG text.
pub(crate) fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &Series,
) -> Result<String, RunError> {
    marked_line_chart(title, x_label, y_label, series, &[])
}

/// A line chart with a dashed vertical line and a label at each of
/// `markers` (`x`, label): the link schedule's changes on a time axis.
pub(crate) fn marked_line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &Series,
    markers: &[(f64, String)],
) -> Result<String, RunError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let points = series.iter().flat_map(|(_, p)| p.iter());
        let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for (x, _) in markers {
            x_max = x_max.max(*x);
        }
        for (x, y) in points {
            x_max = x_max.max(*x);
            y_min = y_min.min(*y);
            y_max = y_max.max(*y);
        }
        if !y_min.is_finite() {
            (y_min, y_max) = (0.0, 1.0);
        }
        let pad = ((y_max - y_min) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, (y_min - pad)..(y_max + pad))
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(chart_error)?;
        let (lo, hi) = (y_min - pad, y_max + pad);
        for (k, (x, label)) in markers.iter().enumerate() {
            let grey = BLACK.mix(0.55);
            // Labels of changes close in time go on three rows.
            let row = (hi - lo) * 0.06 * (k % 3) as f64;
            let dashes = (0..40).map(|k| {
                let step = (hi - lo) / 40.0;
                let y0 = lo + step * f64::from(k);
                PathElement::new(vec![(*x, y0), (*x, y0 + step * 0.6)], grey.stroke_width(1))
            });
            chart.draw_series(dashes).map_err(chart_error)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (*x, hi - row),
                    ("sans-serif", 12).into_font().color(&grey),
                )))
                .map_err(chart_error)?;
        }
        for (i, (name, points)) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(chart_error)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(chart_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Orchestration milestones of every job as stacked horizontal bars.
fn timeline_chart(jobs: &[JobSummary]) -> Result<String, RunError> {
    let phases: [(&str, RGBColor); 5] = [
        ("planned", colour(4)),
        ("server ready", colour(0)),
        ("clients started", colour(1)),
        ("first round", colour(2)),
        ("done", colour(3)),
    ];
    let mut svg = String::new();
    {
        let height = 120 + 40 * jobs.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let end = jobs
            .iter()
            .filter_map(|j| j.orchestration.done_s)
            .fold(0.001f64, f64::max);
        let n = jobs.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Orchestration timeline (seconds from intent arrival)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(150)
            .build_cartesian_2d(0f64..end * 1.45, -0.5f64..n - 0.5)
            .map_err(chart_error)?;
        let labels: Vec<String> = jobs.iter().map(JobSummary::label).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(jobs.len().max(1))
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() > 0.01 || i < 0.0 {
                    return String::new();
                }
                labels.get(i as usize).cloned().unwrap_or_default()
            })
            .x_desc("seconds")
            .draw()
            .map_err(chart_error)?;
        for (i, job) in jobs.iter().enumerate() {
            let t = &job.orchestration;
            let marks = [
                t.planned_s,
                t.server_ready_s,
                t.clients_started_s,
                t.first_round_s,
                t.done_s,
            ];
            let mut from = 0.0;
            for ((name, c), mark) in phases.iter().zip(marks) {
                let Some(to) = mark else { continue };
                let y = i as f64;
                let bar = chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, y - 0.3), (to, y + 0.3)],
                        c.filled(),
                    )))
                    .map_err(chart_error)?;
                if i == 0 {
                    let c = *c;
                    bar.label(format!("until {name}")).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
                    });
                }
                from = to;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

fn per_round(jobs: &[JobSummary], value: impl Fn(&JobSummary, usize) -> Option<f64>) -> Series {
    jobs.iter()
        .map(|j| {
            let points = (0..j.rounds.len())
                .filter_map(|i| value(j, i).map(|v| (j.rounds[i].round as f64, v)))
                .collect();
            (j.label(), points)
        })
        .collect()
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ms(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "–".to_owned(), |s| format!("{:.1}", s * 1e3))
}

fn tenths(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

fn fixed(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}"))
}

/// The jobs with their settings, outcome and orchestration timings.
fn jobs_table(jobs: &[JobSummary]) -> String {
    let mut html = String::new();
    html += "<h2>Jobs</h2><table><tr><th>cohort / intent</th><th>clients</th><th>source</th>\
             <th>model</th><th>strategy</th><th>state</th><th>rounds</th><th>initial acc.</th>\
             <th>final acc.</th><th>planned ms</th><th>Mo-Mo RTT ms</th><th>clients started ms</th>\
             <th>first round ms</th><th>done s</th></tr>";
    for j in jobs {
        let t = &j.orchestration;
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td class=\"l\">{}</td><td class=\"l {}\">{}{}</td><td>{}/{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&j.label()),
            j.clients.len(),
            escape(&j.source),
            escape(&j.model),
            escape(&j.strategy),
            if j.state == IntentState::Completed {
                "ok"
            } else {
                "bad"
            },
            j.state.as_str(),
            j.reason
                .iter()
                .chain(&j.notes)
                .map(|r| format!(": {}", escape(r)))
                .collect::<String>(),
            j.rounds.len(),
            j.rounds_planned,
            fixed(j.initial_accuracy),
            fixed(j.final_accuracy),
            ms(t.planned_s),
            ms(t.momo_round_trip_s),
            ms(t.clients_started_s),
            ms(t.first_round_s),
            t.done_s
                .map_or_else(|| "–".to_owned(), |s| format!("{s:.2}")),
        );
    }
    html += "</table>";
    html
}

/// The scenario's expectations, checked (nothing when it has none).
fn expectations_table(expectations: &[crate::summary::ExpectationResult]) -> String {
    let mut html = String::new();
    if !expectations.is_empty() {
        html += "<h2>Expectations</h2><table><tr><th>check</th><th>actual</th><th>result</th></tr>";
        for e in expectations {
            let _ = write!(
                html,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&e.check),
                fixed(e.actual),
                if e.ok { "ok" } else { "bad" },
                if e.ok { "met" } else { "NOT met" }
            );
        }
        html += "</table>";
    }
    html
}

/// The cost model's options for each planned job beside what was measured,
/// with the prediction error of the option taken: the one taken, flat,
/// hierarchical on every campus, and the fastest (all options are in
/// summary.json).
fn plan_table(jobs: &[JobSummary]) -> String {
    let mut html = String::new();
    let planned: Vec<(&JobSummary, &mlfo::cost::Choice)> = jobs
        .iter()
        .filter_map(|j| Some((j, j.plan.as_ref()?)))
        .collect();
    if planned.is_empty() {
        return html;
    }
    html += "<h2>Plan and outcome</h2><p>The edge MLFO predicted each option's round time and \
             wide-area bytes (flat, and every combination of the campuses with an edge \
             aggregator); for <code>aggregation: auto</code> it took the fastest. The measured row \
             is the job's median round and its server's bytes per round.</p>\
             <table><tr><th>intent</th><th>option</th><th>round s</th><th>wide-area MB/round</th>\
             <th>error round</th><th>error bytes</th></tr>";
    let error = |predicted: f64, measured: f64| {
        if measured > 0.0 {
            format!("{:+.0} %", 100.0 * (predicted - measured) / measured)
        } else {
            "-".to_owned()
        }
    };
    for (job, plan) in planned {
        for (p, why) in shown_options(plan) {
            let taken = why.contains("taken");
            let (e_round, e_bytes) = match (&job.outcome, taken) {
                (Some(o), true) => (
                    error(p.round_s, o.median_round_s),
                    error(p.wan_bytes, o.wan_bytes_per_round),
                ),
                _ => (String::new(), String::new()),
            };
            let name = if p.edge_campuses.is_empty() {
                p.aggregation.to_string()
            } else {
                format!("{} on {}", p.aggregation, p.edge_campuses.join(", "))
            };
            let _ = write!(
                html,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}{}</td><td>{:.2}</td><td>{:.1}</td><td>{e_round}</td><td>{e_bytes}</td></tr>",
                escape(&job.intent_id),
                escape(&name),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                },
                p.round_s,
                p.wan_bytes / 1e6
            );
        }
        if let Some(o) = &job.outcome {
            let _ = write!(
                html,
                "<tr><td class=\"l\">{}</td><td class=\"l\">measured ({} options predicted)</td><td>{:.2}</td><td>{:.1}</td><td></td><td></td></tr>",
                escape(&job.intent_id),
                plan.options.len(),
                o.median_round_s,
                o.wan_bytes_per_round / 1e6
            );
        }
    }
    let inputs: Vec<String> = jobs
        .iter()
        .filter_map(|j| j.plan.as_ref())
        .flat_map(|p| &p.inputs)
        .map(|f| {
            format!(
                "{} {:.4} ({})",
                f.name,
                f.value,
                serde_json::to_value(f.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .collect();
    let _ = write!(
        html,
        "</table><p>Inputs: {}.</p>",
        escape(&inputs.join(", "))
    );
    html
}

/// The options a plan's table shows: flat, hierarchical on every campus
/// with an edge aggregator, and the one taken and the fastest, each marked.
fn shown_options(plan: &mlfo::cost::Choice) -> Vec<(&mlfo::cost::Prediction, String)> {
    let most = plan
        .options
        .iter()
        .map(|o| o.edge_campuses.len())
        .max()
        .unwrap_or(0);
    let fastest = plan
        .options
        .iter()
        .min_by(|a, b| a.round_s.total_cmp(&b.round_s));
    let mut out: Vec<(&mlfo::cost::Prediction, String)> = Vec::new();
    for o in &plan.options {
        let mut why = Vec::new();
        if o.aggregation == plan.chosen && o.edge_campuses == plan.edge_campuses {
            why.push("taken");
        }
        if fastest.is_some_and(|f| std::ptr::eq(f, o)) {
            why.push("fastest");
        }
        if !why.is_empty() || o.edge_campuses.is_empty() || o.edge_campuses.len() == most {
            out.push((o, why.join(", ")));
        }
    }
    out
}

fn edge_aggregators_table(jobs: &[JobSummary]) -> String {
    let mut html = String::new();
    let rows: Vec<(&JobSummary, &mlfo::record::EdgePlacement)> = jobs
        .iter()
        .flat_map(|j| j.edge_aggregators.iter().map(move |e| (j, e)))
        .collect();
    if rows.is_empty() {
        return html;
    }
    html += "<h2>Edge aggregators</h2><p>Hierarchical jobs: each campus's clients trained              under their edge aggregator, which was one client of the cloud server.</p>             <table><tr><th>intent</th><th>campus</th><th>host</th><th>clients</th><th>lost</th></tr>";
    for (job, e) in rows {
        let lost = e.lost.as_ref().map_or_else(
            || "-".to_owned(),
            |(at, why)| format!("at {at:.1} s: {}", escape(why)),
        );
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{lost}</td></tr>",
            escape(&job.intent_id),
            escape(&e.campus),
            escape(&e.host),
            e.clients
        );
    }
    html += "</table>";
    html
}

/// Node agents whose process ended while the intents ran.
fn faults_table(faults: &[crate::summary::HostFault]) -> String {
    let mut html = String::new();
    if faults.is_empty() {
        return html;
    }
    html += "<h2>Host faults</h2><table><tr><th>host</th><th>at (s)</th><th>what</th></tr>";
    for f in faults {
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td>{:.1}</td><td class=\"l\">{}</td></tr>",
            escape(&f.host),
            f.at_s,
            escape(&f.problem)
        );
    }
    html += "</table>";
    html
}

/// The topology with the jobs' plans drawn on it (nothing for a summary
/// written before it held the hosts).
fn topology_section(summary: &Summary) -> String {
    let tb = &summary.testbed;
    let svg =
        crate::topology_svg::render(&tb.topology_hosts, &tb.switches, &tb.links, &summary.jobs);
    if svg.is_empty() {
        return svg;
    }
    format!(
        "<h2>Topology and plan</h2><p>Squares: FL servers; diamonds: edge aggregators (their \
         campus aggregates locally; crossed out: lost); dots: clients, in each job's colour; grey: \
         other hosts. Dashed links have a delay; thicker ones more bandwidth. Hover for names \
         and figures.</p>{svg}"
    )
}

/// Rows of the links table: links with the same figures whose ends differ
/// only in their numbers (`fc.10`..`fc.59` to `campus1`..`campus5`) share
/// one row, in the order of their first link.
struct LinkRow {
    a: String,
    b: String,
    count: usize,
    /// Bandwidth, delay (± jitter) and loss, as shown.
    figures: [String; 3],
}

/// A link's bandwidth, delay and loss as the links table shows them:
/// `12 ± 3` for jitter (`, ordered` when frames keep their order), and
/// `bursts: p 1 %, r 25 % (3.8 %)` for Gilbert-Elliott loss.
fn figure_texts(l: &testbed::Link) -> [String; 3] {
    let opt = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |v| v.to_string());
    let delay = match l.jitter_ms.filter(|j| *j > 0.0) {
        Some(j) => format!(
            "{} ± {j}{}",
            opt(l.delay_ms),
            if l.jitter_reorder == Some(false) {
                ", ordered"
            } else {
                ""
            }
        ),
        None => opt(l.delay_ms),
    };
    let loss = match &l.loss_burst {
        Some(b) => format!(
            "bursts: p {} %, r {} % ({:.2} %)",
            b.p_pct,
            b.r_pct,
            b.mean_loss_pct()
        ),
        None => opt(l.loss_pct),
    };
    [opt(l.bandwidth_mbit), delay, loss]
}

/// A node name without its trailing number: what links of one kind share.
fn stem(name: &str) -> &str {
    name.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// `first` when every name is it, else `first – last`.
fn span(names: &[&str]) -> String {
    match (names.first(), names.last()) {
        (Some(first), Some(last)) if names.iter().any(|n| n != first) => {
            format!("{first} – {last}")
        }
        (Some(first), _) => (*first).to_owned(),
        _ => String::new(),
    }
}

fn link_rows(links: &[testbed::Link]) -> Vec<LinkRow> {
    type Key<'a> = (&'a str, &'a str, [String; 3]);
    let mut groups: Vec<(Key, Vec<&testbed::Link>)> = Vec::new();
    for l in links {
        let key = (stem(&l.a), stem(&l.b), figure_texts(l));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(l),
            None => groups.push((key, vec![l])),
        }
    }
    groups
        .into_iter()
        .map(|((_, _, figures), members)| {
            let a: Vec<&str> = members.iter().map(|l| l.a.as_str()).collect();
            let b: Vec<&str> = members.iter().map(|l| l.b.as_str()).collect();
            LinkRow {
                a: span(&a),
                b: span(&b),
                count: members.len(),
                figures,
            }
        })
        .collect()
}

fn links_table(links: &[testbed::Link]) -> String {
    let mut html = String::new();
    if !links.is_empty() {
        html += "<h2>Links</h2><table><tr><th>a</th><th>b</th><th>links</th><th>Mbit/s</th><th>delay ms</th><th>loss %</th></tr>";
        for row in link_rows(links) {
            let [mbit, delay, loss] = &row.figures;
            let _ = write!(
                html,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&row.a),
                escape(&row.b),
                row.count,
                escape(mbit),
                escape(delay),
                escape(loss)
            );
        }
        html += "</table>";
    }
    html
}

/// The report's HTML.
pub fn render(summary: &Summary) -> Result<String, RunError> {
    let jobs = &summary.jobs;
    let mut accuracy = per_round(jobs, |j, i| j.rounds[i].accuracy);
    for (series, job) in accuracy.iter_mut().zip(jobs) {
        if let Some(a) = job.initial_accuracy {
            series.1.insert(0, (0.0, a));
        }
    }
    let loss = per_round(jobs, |j, i| j.rounds[i].loss);
    let durations = per_round(jobs, |j, i| Some(j.rounds[i].duration_s));
    let tb = &summary.testbed;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>dmo run: {name}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th{{background:#f3f3f3}}td.l{{text-align:left}}.bad{{color:#b00}}.ok{{color:#070}}\
         .note{{background:#fff8e0;padding:8px;border-left:4px solid #e0b000}}</style></head><body>\
         <h1>Experiment <code>{name}</code></h1>\
         <p>{status} · {jobs} job(s) · seed {seed} · wall time {wall:.1} s · backend <b>{backend}</b> \
         ({hosts} hosts: {aggs} aggregators, {clients} clients)</p>",
        name = escape(&summary.scenario),
        status = if summary.ok {
            "<b class=\"ok\">all jobs completed, expectations met</b>"
        } else {
            "<b class=\"bad\">some jobs did not complete or expectations failed</b>"
        },
        jobs = jobs.len(),
        seed = summary.seed,
        wall = summary.wall_s,
        backend = escape(&tb.backend),
        hosts = tb.hosts,
        aggs = tb.aggregators,
        clients = tb.clients,
    );
    html += if tb.authenticated {
        "<p>Security: TLS (a CA made for the run) on every REST API (MLFOs, node agents, network controller), \
         on Mo-Mo and on the Flower transport; bearer tokens on the REST APIs and Mo-Mo.</p>"
    } else {
        "<p class=\"note\">Security: off: every REST API and Mo-Mo was open to anyone who could reach it \
         (<code>dmo run --security on</code> turns bearer tokens on).</p>"
    };
    if !tb.links_enforced {
        html += "<p class=\"note\">Link bandwidth, delay and loss were recorded, not enforced: \
                 this backend runs every host on loopback. Use the netns backend to enforce them.</p>";
    }
    html += &jobs_table(jobs);
    html += &expectations_table(&summary.expectations);
    html += &plan_table(jobs);
    html += &topology_section(summary);
    html += &edge_aggregators_table(jobs);
    html += &faults_table(&summary.host_faults);
    html += "<h2>Accuracy</h2>";
    html += &line_chart(
        "Accuracy per round (round 0: initial model)",
        "round",
        "accuracy",
        &accuracy,
    )?;
    html += "<h2>Loss</h2>";
    html += &line_chart("Loss per round", "round", "loss", &loss)?;
    html += "<h2>Round durations</h2>";
    html += &line_chart("Round duration", "round", "seconds", &durations)?;
    if jobs.iter().any(|j| j.plan.is_some()) {
        let wan = per_round(jobs, |j, i| {
            let r = &j.rounds[i];
            Some((r.bytes_sent + r.bytes_received) as f64 / 1e6)
        });
        html += "<h2>Wide-area bytes per round</h2><p>The cloud server's messages each round \
                 (protobuf sizes): what crossed the path from the campuses to the cloud.</p>";
        html += &line_chart("Wide-area MB per round", "round", "MB", &wan)?;
    }
    html += "<h2>Orchestration</h2>";
    html += &timeline_chart(jobs)?;
    html += &links_table(&tb.links);
    if jobs.iter().any(|j| j.mode == TrainingMode::Centralised) {
        html += &comparison_section(jobs)?;
    }
    if let Some(n) = &summary.network {
        html += &network_section(n)?;
    }
    html += "<p>Data: <a href=\"summary.json\">summary.json</a>, <a href=\"rounds.csv\">rounds.csv</a>, \
             host logs in <a href=\"logs/\">logs/</a>.</p></body></html>\n";
    Ok(html)
}

fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "–".to_owned(), |b| format!("{:.2}", b as f64 / 1e6))
}

/// Federated and centralised jobs side by side: accuracy per pass over the
/// data, bytes, wall time.
fn comparison_section(jobs: &[JobSummary]) -> Result<String, RunError> {
    let mut html = "<h2>Federated vs centralised</h2><p>A centralised job's clients sent their \
        data to one trainer on the aggregator, which trained the same model with the same \
        batch size and learning rate for as many passes over the data as the federated plan \
        makes (rounds × local epochs × fracfit). Bytes: between the clients and the FL server \
        or trainer (messages and data parts); satellite: the satellite hops' link counters \
        while the intent ran, both directions, mean over the hops (netns backend; other \
        traffic at the same time counts too).</p>\
        <table><tr><th>cohort / intent</th><th>mode</th><th>passes</th><th>final acc.</th>\
        <th>wall s</th><th>MB to/from server</th><th>MB over the satellite</th></tr>"
        .to_owned();
    for j in jobs {
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
             <td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&j.label()),
            j.mode,
            j.passes_planned,
            fixed(j.final_accuracy),
            j.orchestration.done_s.unwrap_or(f64::NAN),
            megabytes(Some(j.bytes)),
            megabytes(j.satellite_bytes),
        );
    }
    html += "</table>";
    let series: Series = jobs
        .iter()
        .map(|j| {
            let mut points: Vec<(f64, f64)> = j
                .rounds
                .iter()
                .filter_map(|r| r.accuracy.map(|a| (j.pass_of_round(r.round), a)))
                .collect();
            if let Some(a) = j.initial_accuracy {
                points.insert(0, (0.0, a));
            }
            (format!("{} · {}", j.label(), j.mode), points)
        })
        .collect();
    html += &line_chart(
        "Accuracy per pass over the data (pass 0: initial model)",
        "pass",
        "accuracy",
        &series,
    )?;
    Ok(html)
}

/// Links drawn in the throughput chart: the busiest.
const CHART_LINKS: usize = 6;

/// The netns backend's measurements: link throughput and FL connection
/// RTT over time, and the delay lines' counters.
// Over 80 lines: the section's tables and charts in the order the page shows them.
fn network_section(n: &crate::network::NetworkSummary) -> Result<String, RunError> {
    let mut html = format!(
        "<h2>Network</h2><p>Links enforced by the kernel (htb); delay and loss by the {}. \
         Sampled once a second; all links in <a href=\"links.csv\">links.csv</a>, \
         FL connections in <a href=\"tcp.csv\">tcp.csv</a>.</p>",
        escape(&n.impairment)
    );
    let links: Series = n
        .links
        .iter()
        .take(CHART_LINKS)
        .map(|l| {
            let points = l.mbit.iter().map(|(t, ab, ba)| (*t, ab.max(*ba))).collect();
            (format!("{} - {}", l.a, l.b), points)
        })
        .collect();
    let markers: Vec<(f64, String)> = n.changes.iter().map(|c| (c.t_s, c.what.clone())).collect();
    html += &marked_line_chart(
        "Throughput of the busiest links (higher direction)",
        "seconds",
        "Mbit/s",
        &links,
        &markers,
    )?;
    let mut per_host: std::collections::BTreeMap<&str, std::collections::BTreeMap<u64, Vec<f64>>> =
        std::collections::BTreeMap::new();
    for c in &n.tcp {
        for (t, rtt, _) in &c.points {
            per_host
                .entry(&c.host)
                .or_default()
                .entry((t * 1000.0) as u64)
                .or_default()
                .push(*rtt);
        }
    }
    let mut rtt: Series = per_host
        .into_iter()
        .map(|(host, by_t)| {
            let points = by_t
                .into_iter()
                .map(|(t, mut v)| {
                    v.sort_by(f64::total_cmp);
                    (t as f64 / 1000.0, v[v.len() / 2])
                })
                .collect();
            (host.to_owned(), points)
        })
        .collect();
    rtt.extend(configured_rtt_lines(n));
    if !rtt.is_empty() {
        html += &marked_line_chart(
            "TCP RTT of the FL connections (median per aggregator)",
            "seconds",
            "ms",
            &rtt,
            &markers,
        )?;
    }
    if !n.changes.is_empty() {
        html += &changes_table(&n.changes);
    }
    if !n.background.is_empty() {
        html += &background_section(n, &markers)?;
    }
    html += &crate::fidelity::section(n);
    Ok(html)
}

/// A flat line over the sampled time for each configured path RTT of the
/// FL connections, to read the measured RTT against.
fn configured_rtt_lines(n: &crate::network::NetworkSummary) -> Series {
    let times = n.tcp.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let (first, last) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
        (lo.min(t), hi.max(t))
    });
    let mut configured: Vec<f64> = n.tcp.iter().filter_map(|c| c.configured_rtt_ms).collect();
    configured.sort_by(f64::total_cmp);
    configured.dedup();
    configured
        .into_iter()
        .filter(|_| first <= last)
        .map(|ms| {
            (
                format!("configured path RTT {ms:.1} ms"),
                vec![(first, ms), (last, ms)],
            )
        })
        .collect()
}

/// The background flows: their throughput and TCP RTT over time (the
/// first intent and the link schedule's `markers` marked), and a table.
fn background_section(
    n: &crate::network::NetworkSummary,
    markers: &[(f64, String)],
) -> Result<String, RunError> {
    let mut html = String::new();
    let flows: Series = n
        .background
        .iter()
        .map(|f| {
            (
                format!("{} → {} ({} Mbit/s)", f.from, f.to, f.rate_mbit),
                f.points.clone(),
            )
        })
        .collect();
    html += &line_chart("Background traffic (iperf3)", "seconds", "Mbit/s", &flows)?;
    let rtt: Series = n
        .background
        .iter()
        .filter(|f| !f.rtt.is_empty())
        .map(|f| (format!("{} → {}", f.from, f.to), f.rtt.clone()))
        .collect();
    if !rtt.is_empty() {
        let mut marks = markers.to_vec();
        marks.extend(n.fl_start_s.map(|t| (t, "first intent".to_owned())));
        html += &marked_line_chart(
            "TCP RTT of the background flows",
            "seconds",
            "ms",
            &rtt,
            &marks,
        )?;
    }
    html += "<table><tr><th>flow</th><th>asked Mbit/s</th><th>mean Mbit/s</th>\
             <th>RTT ms alone</th><th>RTT ms with FL</th></tr>";
    for f in &n.background {
        let _ = write!(
            html,
            "<tr><td class=\"l\">{} → {}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
            escape(&f.from),
            escape(&f.to),
            f.rate_mbit,
            f.mean_mbit,
            tenths(f.rtt_alone_ms),
            tenths(f.rtt_with_fl_ms)
        );
    }
    html += "</table>";
    Ok(html)
}

/// The link schedule as applied: when, which links, what, and any failure.
fn changes_table(changes: &[crate::schedule::AppliedChange]) -> String {
    let mut html = String::from(
        "<h3>Link schedule</h3><table><tr><th>at s (after the first intent)</th><th>t s (charts)</th>\
         <th>links</th><th>change</th><th>applied</th></tr>",
    );
    for c in changes {
        let _ = write!(
            html,
            "<tr><td>{:.1}</td><td>{:.1}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            c.at_s,
            c.t_s,
            escape(&c.links.join(", ")),
            escape(&c.what),
            c.error.as_deref().map_or_else(
                || "yes".to_owned(),
                |e| format!("<b class=\"bad\">no: {}</b>", escape(e))
            )
        );
    }
    html + "</table>"
}

/// Writes `report.html` into `dir`.
pub fn write(summary: &Summary, dir: &Path) -> Result<(), ResultsError> {
    let path = dir.join("report.html");
    let fail = |problem: String| ResultsError {
        path: path.display().to_string(),
        problem,
    };
    let html = render(summary).map_err(|e| fail(format!("drawing the plots: {e}")))?;
    std::fs::write(&path, html).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rtt_chart_carries_the_configured_path_rtt() {
        let series =
            |configured: Option<f64>, points: Vec<(f64, f64, u32)>| crate::network::TcpSeries {
                host: "fed.1".into(),
                peer: "10.0.1.10:5555".into(),
                median_rtt_ms: 50.0,
                points,
                configured_rtt_ms: configured,
            };
        let mut n = crate::network::NetworkSummary {
            impairment: "netem".into(),
            links: Vec::new(),
            tcp: vec![
                series(Some(48.0), vec![(2.0, 50.0, 10), (9.0, 49.0, 10)]),
                series(Some(48.0), vec![(1.0, 55.0, 10)]),
            ],
            delay_lines: Vec::new(),
            background: Vec::new(),
            changes: Vec::new(),
            fl_start_s: None,
            scheduling: None,
        };
        assert_eq!(
            configured_rtt_lines(&n),
            vec![(
                "configured path RTT 48.0 ms".to_owned(),
                vec![(1.0, 48.0), (9.0, 48.0)]
            )]
        );
        n.tcp[1].configured_rtt_ms = Some(24.0);
        assert_eq!(configured_rtt_lines(&n).len(), 2);
        n.tcp.clear();
        assert!(configured_rtt_lines(&n).is_empty());
    }

    #[test]
    fn links_of_one_kind_and_figures_share_a_row() {
        let t = testbed::generate(&testbed::GenOptions::default()).unwrap();
        let rows: Vec<(String, String, usize)> = link_rows(&t.links)
            .into_iter()
            .map(|r| (r.a, r.b, r.count))
            .collect();
        let want = [
            ("campus1 – campus5", "edgesw", 5),
            ("mlfo.cloud", "aggsw", 1),
            ("srv.1", "aggsw", 1),
            ("prom", "aggsw", 1),
            ("fed.1 – fed.3", "aggsw", 3),
            ("mo.1", "edgesw", 1),
            ("app.1", "edgesw", 1),
            ("fc.10 – fc.59", "campus1 – campus5", 50),
            ("aggsw", "satsw", 1),
            ("satsw", "edgesw", 1),
        ];
        let want: Vec<(String, String, usize)> = want
            .iter()
            .map(|(a, b, n)| ((*a).to_owned(), (*b).to_owned(), *n))
            .collect();
        assert_eq!(rows, want);
        // A link with other figures keeps its own row.
        let mut links = t.links.clone();
        let slow = links.iter_mut().find(|l| l.a == "fc.12").unwrap();
        slow.bandwidth_mbit = Some(10.0);
        let rows = link_rows(&links);
        assert_eq!(rows.len(), want.len() + 1);
        assert!(rows.iter().any(|r| r.a == "fc.12" && r.count == 1));
    }
    use crate::summary::tests::sample;

    #[test]
    fn scheduled_changes_are_marked_on_the_time_charts_and_listed() {
        let change = |t_s: f64, what: &str, error: Option<&str>| crate::schedule::AppliedChange {
            at_s: t_s - 5.0,
            t_s,
            links: vec!["aggsw - satsw".into(), "satsw - edgesw".into()],
            what: what.into(),
            error: error.map(Into::into),
        };
        let n = crate::network::NetworkSummary {
            impairment: "user-space delay line".into(),
            links: Vec::new(),
            tcp: Vec::new(),
            delay_lines: Vec::new(),
            background: Vec::new(),
            changes: vec![
                change(35.0, "bandwidth 20 Mbit/s", None),
                change(60.0, "down", Some("no such link")),
            ],
            fl_start_s: Some(4.0),
            scheduling: None,
        };
        let html = network_section(&n).unwrap();
        assert!(
            html.contains("bandwidth 20 Mbit/s\n</text>"),
            "marker label on the chart: {html}"
        );
        assert!(html.contains("<h3>Link schedule</h3>"), "{html}");
        assert!(
            html.contains("<td>30.0</td><td>35.0</td><td class=\"l\">aggsw - satsw, satsw - edgesw</td><td class=\"l\">bandwidth 20 Mbit/s</td><td class=\"l\">yes</td>"),
            "{html}"
        );
        assert!(
            html.contains("<b class=\"bad\">no: no such link</b>"),
            "{html}"
        );
    }

    #[test]
    fn the_report_holds_a_curve_per_job_and_the_timeline() {
        let html = render(&sample()).unwrap();
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains("cohort1 (a)") && html.contains("cohort2 (b)"));
        // Accuracy: 4 points per job (initial + 3 rounds) drawn as circles,
        // loss and durations 3 each: (4 + 3 + 3) * 2 jobs.
        assert_eq!(html.matches("<circle").count(), 20);
        assert!(html.contains("recorded, not enforced"));
        assert!(html.contains("<td>0.8000</td>"), "final accuracy of job a");
    }

    #[test]
    fn centralised_jobs_get_a_side_by_side_section_on_one_pass_axis() {
        let mut s = sample();
        assert!(!render(&s).unwrap().contains("Federated vs centralised"));
        s.jobs[0].passes_planned = 6;
        let central = &mut s.jobs[1];
        central.mode = TrainingMode::Centralised;
        central.strategy = "centralised".into();
        (central.rounds_planned, central.passes_planned) = (6, 6);
        central.satellite_bytes = Some(2_500_000);
        let html = render(&s).unwrap();
        assert!(html.contains("<h2>Federated vs centralised</h2>"));
        assert!(
            html.contains("cohort1 (a) · federated") && html.contains("cohort2 (b) · centralised")
        );
        assert!(
            html.contains("<td>2.50</td>"),
            "satellite MB of the centralised job"
        );
        assert!(html.contains("<td>0.01</td>"), "MB to and from the server");
        // Federated rounds 1..3 of a 6-pass plan end passes 2, 4, 6.
        assert_eq!(s.jobs[0].pass_of_round(3), 6.0);
        assert_eq!(s.jobs[1].pass_of_round(3), 3.0);
        assert_eq!(html.matches("<svg").count(), 5);
    }

    #[test]
    fn text_from_the_run_is_escaped() {
        let mut s = sample();
        s.jobs[0].state = IntentState::Failed;
        s.jobs[0].reason = Some("<script>x</script>".into());
        let html = render(&s).unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
