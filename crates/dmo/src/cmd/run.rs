//! `dmo run` and `dmo report`: a whole experiment in one command, and its
//! report re-rendered from `summary.json`.

use anyhow::Context;
use clap::Args;
use experiment::{BackendKind, RunOptions, Scenario};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ml::datasets::DatasetName;
use ml::datasets::registry::DatasetInfo;
use mlfo::IntentRecord;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `dmo run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (YAML, see docs/results.md); when omitted, the
    /// built-in default: scenarios/fashion-mnist.yaml where Fashion-MNIST
    /// is installed, else scenarios/default.yaml (generated data).
    pub scenario: Option<PathBuf>,
    /// Directory for summary.json, rounds.csv, report.html and logs/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Where and how the hosts run.
    #[command(flatten)]
    pub testbed: TestbedArgs,
}

/// How `dmo run` and `dmo sweep` run their hosts.
#[derive(Debug, Args)]
pub struct TestbedArgs {
    /// Run byte R: of the hosts' loopback addresses 127.R.T.H (local), of
    /// the namespace and cgroup names dmo-R-HOST (netns). Default: from
    /// the process id.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=254))]
    pub run_byte: Option<u8>,
    /// Testbed backend: `local` (processes on loopback addresses, links
    /// recorded, not enforced) or `netns` (network namespaces with shaped
    /// links and CPU limits; needs root).
    #[arg(long, value_enum, default_value_t = BackendArg::Local)]
    pub backend: BackendArg,
    /// Bearer tokens between the hosts and for the runner: `on` or `off`
    /// (plain and open, for comparisons). Default: the scenario's
    /// `security`, which is on for the netns backend.
    #[arg(long, value_enum)]
    pub security: Option<SecurityArg>,
}

/// The `--security` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityArg {
    /// Tokens on every REST API and on Mo-Mo.
    On,
    /// No authentication.
    Off,
}

/// The `--backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// Processes on loopback addresses.
    Local,
    /// Network namespaces.
    Netns,
}

/// Arguments of `dmo report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results directory holding summary.json.
    pub dir: PathBuf,
}

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// The runner's options: results in `out`, the hosts as `args` says (the
/// run byte by default from the process id).
pub(super) fn run_options(
    out: PathBuf,
    args: &TestbedArgs,
    cancel: &'static AtomicBool,
) -> anyhow::Result<RunOptions> {
    Ok(RunOptions {
        dmo: std::env::current_exe().context("finding the dmo executable")?,
        out,
        run_byte: args
            .run_byte
            .unwrap_or_else(testbed::local::default_run_byte),
        backend: match args.backend {
            BackendArg::Local => BackendKind::Local,
            BackendArg::Netns => BackendKind::Netns,
        },
        security: args.security.map(|s| match s {
            SecurityArg::On => experiment::scenario::SecurityMode::On,
            SecurityArg::Off => experiment::scenario::SecurityMode::Off,
        }),
        cancel,
    })
}

/// The built-in scenario `dmo run` runs with no argument, and a line
/// saying which and why: the prototype's experiment on Fashion-MNIST where
/// `fashion` is present, else on generated data.
fn embedded_default(fashion: &DatasetInfo) -> anyhow::Result<(Scenario, String)> {
    if fashion.present {
        let at = fashion
            .location
            .as_ref()
            .map_or_else(String::new, |p| format!(" at {}", p.display()));
        let note = format!(
            "Fashion-MNIST is installed{at}: running the default experiment on it \
             (scenarios/fashion-mnist.yaml; `dmo run scenarios/default.yaml` runs it on generated data)"
        );
        return Ok((Scenario::builtin_fashion_mnist()?, note));
    }
    let note = format!(
        "Fashion-MNIST is not installed ({}): running the default experiment on generated data \
         (scenarios/default.yaml: overlapping synthetic images, so accuracy rises over the rounds and stays below 1)",
        fashion.how_to_get
    );
    Ok((Scenario::builtin_default()?, note))
}

/// Runs the scenario, showing a progress bar per job; exit status 0 when
/// every job completed and every expectation held.
// Over 80 lines: the command's steps in order: scenario, backend, progress bar, run, summary lines.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => {
            let fashion = ml::datasets::registry::describe(DatasetName::FashionMnist, None);
            let (scenario, note) = embedded_default(&fashion)?;
            eprintln!("{note}");
            scenario
        }
    };
    ctrlc::set_handler(|| CANCELLED.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let topology = scenario.topology().map_err(anyhow::Error::msg)?;
    let options = run_options(args.out.clone(), &args.testbed, &CANCELLED)?;
    let backend =
        experiment::start_backend(&scenario, &topology, &options).map_err(anyhow::Error::msg)?;
    eprintln!(
        "dmo run {}: {} hosts ({} clients in {} cohorts) {}",
        scenario.name,
        topology.hosts.len(),
        topology.hosts_with_role(testbed::Role::Client).count(),
        topology.cohorts().len(),
        backend.describe(),
    );
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>28} [{bar:30}] round {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut shown: Vec<ProgressBar> = Vec::new();
    let mut progress = |records: &[IntentRecord]| {
        while shown.len() < records.len() {
            let bar = bars.add(ProgressBar::new(1).with_style(style.clone()));
            let r = &records[shown.len()];
            bar.set_prefix(format!("{} ({} clients)", r.id, r.cohort.hosts.len()));
            shown.push(bar);
        }
        for (bar, r) in shown.iter().zip(records) {
            let job = r.jobs.first();
            bar.set_length(job.map_or(1, |j| j.rounds_planned.max(1)));
            bar.set_position(job.map_or(0, |j| j.rounds.len() as u64));
            let accuracy = job
                .and_then(|j| j.latest_accuracy())
                .map(|a| format!(" accuracy {a:.3}"))
                .unwrap_or_default();
            bar.set_message(format!("{}{accuracy}", r.state.as_str()));
            if r.state.is_final() && !bar.is_finished() {
                bar.finish();
            }
        }
    };
    let outcome =
        experiment::run(&scenario, &options, backend, &mut progress).map_err(anyhow::Error::msg)?;
    let s = &outcome.summary;
    for job in &s.jobs {
        eprintln!(
            "{}: {} after {}/{} rounds, final accuracy {}",
            job.label(),
            job.state.as_str(),
            job.rounds.len(),
            job.rounds_planned,
            job.final_accuracy
                .map_or("-".to_owned(), |a| format!("{a:.4}"))
        );
    }
    for e in s.expectations.iter().filter(|e| !e.ok) {
        eprintln!("expectation not met: {} (got {:?})", e.check, e.actual);
    }
    let fidelity = s.network.as_ref().map(experiment::fidelity::verdicts);
    for v in fidelity.iter().flatten().filter(|v| !v.met) {
        eprintln!("warning: {}", v.text);
    }
    eprintln!(
        "wall time {:.1} s, peak memory of all hosts (PSS) {:.0} MiB; results in {} (open report.html)",
        s.wall_s,
        outcome.peak_memory_bytes as f64 / (1 << 20) as f64,
        args.out.display()
    );
    Ok(if s.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Re-renders `report.html` from `summary.json`.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let summary = experiment::Summary::read_json(&args.dir)?;
    experiment::report::write(&summary, &args.dir)?;
    println!("{}", args.dir.join("report.html").display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_runs_on_fashion_mnist_where_installed_and_says_so() {
        let mut fashion = ml::datasets::registry::describe(DatasetName::FashionMnist, None);
        fashion.present = true;
        fashion.location = Some(PathBuf::from("/usr/share/datasets/fashion-mnist"));
        let (scenario, note) = embedded_default(&fashion).unwrap();
        assert_eq!(scenario.name, "fashion-mnist");
        assert!(
            note.starts_with("Fashion-MNIST is installed at /usr/share/datasets/fashion-mnist"),
            "{note}"
        );
        fashion.present = false;
        let (scenario, note) = embedded_default(&fashion).unwrap();
        assert_eq!(scenario.name, "default");
        assert!(
            note.contains("apt-get install dataset-fashion-mnist"),
            "{note}"
        );
        assert!(
            scenario.catalog_inline.unwrap().contains("synthetic-hard"),
            "generated data that is not trivially separable"
        );
    }
}
