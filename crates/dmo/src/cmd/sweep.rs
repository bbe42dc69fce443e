//! `dmo sweep` and `dmo compare`: many runs of one experiment, point by
//! point, and the page that compares them.

use anyhow::Context;
use clap::Args;
use experiment::Summary;
use experiment::compare::{self, Row};
use experiment::sweep::{Measures, Sweep, SweepRun, describe};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use super::run::{TestbedArgs, run_options};

/// Arguments of `dmo sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Sweep file (YAML: `base` scenario, `axes`, optional `points` and `repeats`; docs/results.md).
    pub sweep: PathBuf,
    /// Directory of the sweep: `points/pNNN-rK/` per run, `sweep.csv`, `sweep.html`.
    #[arg(long, default_value = "sweep")]
    pub out: PathBuf,
    /// Where and how every run's hosts run.
    #[command(flatten)]
    pub testbed: TestbedArgs,
}

/// Arguments of `dmo compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Results directories (each holding summary.json).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The page to write.
    #[arg(long, default_value = "compare.html")]
    pub out: PathBuf,
}

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// The file beside a run's results naming its point.
const POINT_FILE: &str = "point.json";

/// Whether `run` already has its results from a finished run of the same point.
fn finished(run: &SweepRun) -> Option<Summary> {
    let point = std::fs::read_to_string(run.dir.join(POINT_FILE)).ok()?;
    (point == point_json(run)).then(|| Summary::read_json(&run.dir).ok())?
}

fn point_json(run: &SweepRun) -> String {
    let values: serde_json::Map<String, serde_json::Value> = run.values.iter().cloned().collect();
    serde_json::json!({ "point": run.point, "repeat": run.repeat, "values": values }).to_string()
}

/// Runs one point of the sweep into its directory.
fn run_point(sweep: &Sweep, run: &SweepRun, args: &SweepArgs) -> anyhow::Result<Summary> {
    let scenario = sweep.scenario(run).map_err(anyhow::Error::msg)?;
    let topology = scenario.topology().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&run.dir).with_context(|| run.dir.display().to_string())?;
    std::fs::write(run.dir.join(POINT_FILE), point_json(run))?;
    let options = run_options(run.dir.clone(), &args.testbed, &CANCELLED)?;
    let backend =
        experiment::start_backend(&scenario, &topology, &options).map_err(anyhow::Error::msg)?;
    let outcome =
        experiment::run(&scenario, &options, backend, &mut |_| {}).map_err(anyhow::Error::msg)?;
    Ok(outcome.summary)
}

/// Runs every point not yet finished, then writes `sweep.csv` and `sweep.html`.
pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let loaded = Sweep::load(&args.sweep, &args.out)?;
    ctrlc::set_handler(|| CANCELLED.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let bar = ProgressBar::new(loaded.runs.len() as u64).with_style(
        ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} runs, {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let (mut rows, mut failed, mut reused) = (Vec::new(), Vec::new(), 0);
    for run in &loaded.runs {
        if CANCELLED.load(Ordering::Relaxed) {
            anyhow::bail!("cancelled; finished points stay and a rerun goes on from there");
        }
        let label = format!("p{} r{}: {}", run.point, run.repeat, describe(&run.values));
        bar.set_message(label.clone());
        let summary = match finished(run) {
            Some(s) => {
                reused += 1;
                Ok(s)
            }
            None => run_point(&loaded, run, &args),
        };
        match summary {
            Ok(s) => rows.push(Row {
                point: run.point,
                repeat: run.repeat,
                values: run.values.clone(),
                measures: Measures::of(&s),
                dir: run.dir.clone(),
            }),
            Err(e) => {
                bar.println(format!("{label}: failed: {e:#}"));
                failed.push(label);
            }
        }
        bar.inc(1);
    }
    bar.finish_with_message(format!("{reused} reused from an earlier run"));
    write_comparison(
        &args.out,
        &loaded.axes,
        &rows,
        &args.sweep.display().to_string(),
    )?;
    eprintln!(
        "{} runs ({} failed); comparison in {}",
        loaded.runs.len(),
        failed.len(),
        args.out.join("sweep.html").display()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_comparison(out: &Path, axes: &[String], rows: &[Row], title: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("sweep.csv"), compare::csv(axes, rows))?;
    let html = compare::page(title, axes, rows, Some("sweep.csv")).map_err(anyhow::Error::msg)?;
    std::fs::write(out.join("sweep.html"), html)?;
    Ok(())
}

/// The comparison page of any results directories, one point each: its
/// axes are the scenario (where the runs' differ) and the values of the
/// sweep points they were (their `point.json`), or else the directory.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let mut runs = Vec::new();
    for dir in &args.dirs {
        let summary = Summary::read_json(dir)?;
        runs.push((dir, point_values(dir), summary));
    }
    let mut axes: Vec<String> = Vec::new();
    let scenarios: std::collections::BTreeSet<&str> =
        runs.iter().map(|(_, _, s)| s.scenario.as_str()).collect();
    if scenarios.len() > 1 {
        axes.push("scenario".to_owned());
    }
    for (_, values, _) in &runs {
        for (name, _) in values {
            if !axes.contains(name) {
                axes.push(name.clone());
            }
        }
    }
    if axes.is_empty() {
        axes.push("run".to_owned());
    }
    let rows = runs
        .into_iter()
        .enumerate()
        .map(|(point, (dir, values, s))| {
            let value = |axis: &String| match axis.as_str() {
                "scenario" => s.scenario.clone().into(),
                "run" => dir.display().to_string().into(),
                _ => values
                    .iter()
                    .find(|(name, _)| name == axis)
                    .map_or_else(|| "–".into(), |(_, v)| v.clone()),
            };
            Row {
                point,
                repeat: 0,
                values: axes.iter().map(|a| (a.clone(), value(a))).collect(),
                measures: Measures::of(&s),
                dir: dir.clone(),
            }
        })
        .collect::<Vec<_>>();
    let html = compare::page("dmo compare", &axes, &rows, None).map_err(anyhow::Error::msg)?;
    std::fs::write(&args.out, html).with_context(|| args.out.display().to_string())?;
    println!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// The axis values of the sweep point whose results `dir` holds (its
/// `point.json`), in the sweep's order; none for a plain run.
fn point_values(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let Ok(text) = std::fs::read_to_string(dir.join(POINT_FILE)) else {
        return Vec::new();
    };
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    parsed["values"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}
