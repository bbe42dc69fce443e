//! The comparison of many runs (a sweep's, or any results directories):
//! `sweep.csv` with a row per run, and one offline HTML page with a table
//! (mean, spread and count over repeats per point) and each measure drawn
//! against each axis.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::RunError;
use crate::report::{Series, escape, line_chart};
use crate::sweep::{MEASURES, Measures, plain};

/// One run in a comparison.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its point (runs of one point are repeats of it).
    pub point: usize,
    /// Its repeat.
    pub repeat: u32,
    /// Each axis's value.
    pub values: Vec<(String, Value)>,
    /// What it measured.
    pub measures: Measures,
    /// Its results directory.
    pub dir: PathBuf,
}

/// `sweep.csv`: a header, then a row per run.
pub fn csv(axes: &[String], rows: &[Row]) -> String {
    let cell = |s: String| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = ["point", "repeat"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(axes.iter().cloned().map(cell))
        .chain(MEASURES.iter().map(|s| (*s).to_owned()))
        .chain(["ok".to_owned(), "dir".to_owned()])
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for r in rows {
        let mut line = vec![r.point.to_string(), r.repeat.to_string()];
        line.extend(r.values.iter().map(|(_, v)| cell(plain(v))));
        line.extend(
            r.measures
                .values()
                .iter()
                .map(|v| v.map_or_else(String::new, |x| format!("{x:.6}"))),
        );
        line.push(r.measures.ok.to_string());
        line.push(cell(r.dir.display().to_string()));
        out += &line.join(",");
        out.push('\n');
    }
    out
}

/// Mean, sample standard deviation and count.
fn spread(values: &[f64]) -> Option<(f64, f64, usize)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    Some((mean, var.sqrt(), n))
}

/// The points, in order, each with its runs.
fn by_point(rows: &[Row]) -> Vec<(&Row, Vec<&Row>)> {
    let mut out: Vec<(&Row, Vec<&Row>)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|(first, _)| first.point == r.point) {
            Some((_, runs)) => runs.push(r),
            None => out.push((r, vec![r])),
        }
    }
    out
}

fn measure_of(runs: &[&Row], m: usize) -> Vec<f64> {
    runs.iter().filter_map(|r| r.measures.values()[m]).collect()
}

fn table(axes: &[String], rows: &[Row]) -> String {
    let mut html = String::from("<table><tr><th>point</th>");
    for a in axes {
        let _ = write!(html, "<th>{}</th>", escape(a));
    }
    for m in MEASURES {
        let _ = write!(html, "<th>{m}<br>mean ± sd (runs)</th>");
    }
    html += "<th>ok</th></tr>";
    for (first, runs) in by_point(rows) {
        let _ = write!(html, "<tr><td>{}</td>", first.point);
        for (_, v) in &first.values {
            let _ = write!(html, "<td class=\"l\">{}</td>", escape(&plain(v)));
        }
        for m in 0..MEASURES.len() {
            let cell = spread(&measure_of(&runs, m)).map_or("–".to_owned(), |(mean, sd, n)| {
                format!("{mean:.4} ± {sd:.4} ({n})")
            });
            let _ = write!(html, "<td>{cell}</td>");
        }
        let ok = runs.iter().filter(|r| r.measures.ok).count();
        let _ = write!(html, "<td>{ok}/{}</td></tr>", runs.len());
    }
    html + "</table>"
}

/// Each measure against axis `k`: x is the axis's value (or, for words,
/// its position, named in the caption), one line per combination of the
/// other axes' values, each point the mean over repeats.
fn axis_charts(axes: &[String], rows: &[Row], k: usize) -> Result<String, RunError> {
    let mut order: Vec<Value> = Vec::new();
    for r in rows {
        if !order.contains(&r.values[k].1) {
            order.push(r.values[k].1.clone());
        }
    }
    let numeric = order.iter().all(Value::is_number);
    let x_of = |v: &Value| -> f64 {
        if numeric {
            v.as_f64().unwrap_or(0.0)
        } else {
            order
                .iter()
                .position(|o| o == v)
                .map_or(0.0, |i| (i + 1) as f64)
        }
    };
    let others = |r: &Row| -> String {
        let rest: Vec<String> = r
            .values
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != k)
            .map(|(_, (n, v))| format!("{n}={}", plain(v)))
            .collect();
        if rest.is_empty() {
            "all".to_owned()
        } else {
            rest.join(", ")
        }
    };
    let mut html = String::new();
    if !numeric {
        let names: Vec<String> = order
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{} = {}", i + 1, plain(v)))
            .collect();
        let _ = write!(
            html,
            "<p>{}: {}</p>",
            escape(&axes[k]),
            escape(&names.join(", "))
        );
    }
    for (m, measure) in MEASURES.iter().enumerate() {
        let mut series: Series = Vec::new();
        for (first, runs) in by_point(rows) {
            let Some((mean, _, _)) = spread(&measure_of(&runs, m)) else {
                continue;
            };
            let label = others(first);
            let x = x_of(&first.values[k].1);
            match series.iter_mut().find(|(l, _)| *l == label) {
                Some((_, points)) => points.push((x, mean)),
                None => series.push((label, vec![(x, mean)])),
            }
        }
        if series.is_empty() {
            continue;
        }
        for (_, points) in &mut series {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        html += &line_chart(
            &format!("{measure} against {}", axes[k]),
            &axes[k],
            measure,
            &series,
        )?;
    }
    Ok(html)
}

/// The comparison page; `csv` names the CSV beside it, if any.
pub fn page(
    title: &str,
    axes: &[String],
    rows: &[Row],
    csv: Option<&str>,
) -> Result<String, RunError> {
    let listed = csv.map_or_else(String::new, |name| {
        format!(" (listed in <a href=\"{0}\">{0}</a>)", escape(name))
    });
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th{{background:#f3f3f3}}td.l{{text-align:left}}</style></head><body><h1>{0}</h1>\
         <p>{1} runs; every figure is the mean over a point's repeats, with the sample standard deviation. \
         Each run's own report is <code>report.html</code> in its directory{2}.</p>",
        escape(title),
        rows.len(),
        listed
    );
    html += &table(axes, rows);
    for k in 0..axes.len() {
        let _ = write!(html, "<h2>Against {}</h2>", escape(&axes[k]));
        html += &axis_charts(axes, rows, k)?;
    }
    html += "</body></html>";
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(point: usize, repeat: u32, delay: f64, strategy: &str, round_s: f64) -> Row {
        Row {
            point,
            repeat,
            values: vec![
                ("satellite_delay_ms".into(), Value::from(delay)),
                ("strategy".into(), Value::from(strategy)),
            ],
            measures: Measures {
                wall_s: 3.0,
                final_accuracy: Some(0.8),
                round_s: Some(round_s),
                round_mb: Some(1.5),
                satellite_mb: None,
                rtt_median_ms: Some(50.0 + delay),
                rtt_p99_ms: None,
                late_frames: None,
                ok: true,
            },
            dir: PathBuf::from(format!("points/p{point:03}-r{repeat}")),
        }
    }

    #[test]
    fn the_csv_has_a_row_per_run_and_the_page_a_chart_per_measure_and_axis() {
        let axes = vec!["satellite_delay_ms".to_owned(), "strategy".to_owned()];
        let rows = vec![
            row(0, 0, 6.0, "FedAvg", 0.1),
            row(0, 1, 6.0, "FedAvg", 0.3),
            row(1, 0, 24.0, "FedAvg", 0.5),
            row(1, 1, 24.0, "FedAvg", 0.7),
        ];
        let text = csv(&axes, &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[0],
            "point,repeat,satellite_delay_ms,strategy,wall_s,final_accuracy,round_s,round_mb,satellite_mb,rtt_median_ms,rtt_p99_ms,late_frames,ok,dir"
        );
        assert!(
            lines[1].starts_with(
                "0,0,6.0,FedAvg,3.000000,0.800000,0.100000,1.500000,,56.000000,,,true,"
            ),
            "{}",
            lines[1]
        );
        let html = page("sweep", &axes, &rows, Some("sweep.csv")).unwrap();
        // Five measures with figures (no satellite bytes, p99 RTT or late
        // frames) against each of two axes.
        assert_eq!(html.matches("<svg").count(), 10);
        assert!(html.contains("0.2000 ± 0.1414 (2)"), "point 0's round_s");
        assert!(html.contains("1 = FedAvg"));
        assert_eq!(spread(&[]), None);
    }
}
