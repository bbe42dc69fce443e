//! Per-host CPU limits with cgroups, as the prototype's
//! `docker update --cpus N`: cgroup v2's `cpu.max` where the unified
//! hierarchy is mounted, else cgroup v1's cpu controller
//! (`cpu.cfs_quota_us` over `cpu.cfs_period_us`).

use super::names::{RunNames, run_of};
use super::sys::SysError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The CFS period used for quotas, microseconds.
const PERIOD_US: u64 = 100_000;
/// The cgroup filesystem root.
const ROOT: &str = "/sys/fs/cgroup";

/// Which cgroup interface the machine offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy at this root.
    V2(PathBuf),
    /// The v1 cpu controller mounted here.
    V1(PathBuf),
}

impl Hierarchy {
    /// The hierarchy of this machine, or an error saying none was found.
    pub fn detect() -> Result<Hierarchy, SysError> {
        let root = Path::new(ROOT);
        if root.join("cgroup.controllers").exists() {
            return Ok(Hierarchy::V2(root.to_owned()));
        }
        for dir in ["cpu", "cpu,cpuacct", "cpuacct,cpu"] {
            let d = root.join(dir);
            if d.join("cpu.cfs_quota_us").exists() {
                return Ok(Hierarchy::V1(d));
            }
        }
        Err(SysError::new(
            "CPU limits",
            format!(
                "found neither cgroup v2 ({ROOT}/cgroup.controllers) nor the v1 cpu controller ({ROOT}/cpu); mount one or drop the hosts' cpus"
            ),
        ))
    }

    /// The root the run directories live under.
    fn root(&self) -> &Path {
        match self {
            Hierarchy::V2(p) | Hierarchy::V1(p) => p,
        }
    }

    /// Run `names`' directory.
    pub fn run_dir(&self, names: &RunNames) -> PathBuf {
        self.root().join(names.cgroup())
    }

    /// Creates host `host`'s cgroup limited to `cpus` cores and returns
    /// the file a process writes its pid to in order to join it.
    pub fn create(&self, names: &RunNames, host: &str, cpus: f64) -> Result<PathBuf, SysError> {
        let run = self.run_dir(names);
        let dir = run.join(host);
        let fail = |what: &Path, e: std::io::Error| {
            SysError::new(
                format!("CPU limit of {host}"),
                format!("{}: {e}", what.display()),
            )
        };
        std::fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        let quota = ((cpus * PERIOD_US as f64).round() as u64).max(1_000);
        let write = |file: &str, value: String| {
            let path = dir.join(file);
            std::fs::write(&path, value).map_err(|e| fail(&path, e))
        };
        match self {
            Hierarchy::V2(root) => {
                for parent in [root.as_path(), run.as_path()] {
                    let control = parent.join("cgroup.subtree_control");
                    std::fs::write(&control, "+cpu").map_err(|e| fail(&control, e))?;
                }
                write("cpu.max", format!("{quota} {PERIOD_US}"))?;
            }
            Hierarchy::V1(_) => {
                write("cpu.cfs_period_us", PERIOD_US.to_string())?;
                write("cpu.cfs_quota_us", quota.to_string())?;
            }
        }
        Ok(dir.join("cgroup.procs"))
    }

    /// The run directories of every run present (for `down --all`).
    pub fn runs(&self) -> Vec<u8> {
        let Ok(dir) = std::fs::read_dir(self.root()) else {
            return Vec::new();
        };
        dir.filter_map(|e| run_of(e.ok()?.file_name().to_str()?))
            .collect()
    }

    /// Kills every process in run `names`' cgroups and removes them.
    pub fn remove_run(&self, names: &RunNames) -> Result<(), SysError> {
        let run = self.run_dir(names);
        if !run.exists() {
            return Ok(());
        }
        let hosts: Vec<PathBuf> = std::fs::read_dir(&run)
            .map_err(|e| SysError::new("removing cgroups", format!("{}: {e}", run.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        for dir in hosts.iter().chain(std::iter::once(&run)) {
            remove_cgroup(dir)?;
        }
        Ok(())
    }
}

/// The pids in cgroup `dir`.
fn pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Kills the processes in cgroup `dir` and removes it (a cgroup can only
/// be removed once empty: waits up to 2 s for the kills to land).
fn remove_cgroup(dir: &Path) -> Result<(), SysError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = pids(dir);
        for pid in &left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(SysError::new(
                    "removing cgroups",
                    format!("{}: {e} (processes left: {left:?})", dir.display()),
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
