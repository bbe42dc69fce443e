//! How promptly this kernel runs a real-time thread: the yardstick for the
//! delay lines' lateness.
//!
//! A [`LatencyProbe`] is a thread at `SCHED_FIFO` [`PROBE_PRIORITY`] (just
//! above the delay lines' writers) that does nothing but sleep until the
//! next millisecond on an absolute `CLOCK_MONOTONIC` timer and note how
//! late it woke, as `cyclictest` does. It needs no CPU of its own, so what
//! it measures is the kernel's and the machine's share of any lateness: a
//! kernel that does not preempt its own code (`preempt=none`), interrupts,
//! a hypervisor that runs another guest. When the probe itself wakes more
//! than [`LATE`] late, no user-space thread, a delay line's included, can
//! keep to the millisecond on that machine. [`preemption_model`] says
//! which preemption model the kernel runs.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::delayline::{LATE, WRITER_PRIORITY};

/// The probe's `SCHED_FIFO` priority: above the delay lines' writers, so
/// that their work never delays it.
pub const PROBE_PRIORITY: i32 = WRITER_PRIORITY + 1;
/// How often the probe wakes.
pub const PERIOD: Duration = Duration::from_millis(1);

/// What the probe has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProbeStats {
    /// Timer wakeups measured.
    pub wakeups: u64,
    /// Wakeups more than [`LATE`] after the timer was due.
    pub late: u64,
    /// The latest wakeup, in microseconds after the timer was due.
    pub max_late_us: u64,
    /// Whether the probe ran at real-time priority (without it, its
    /// lateness is the ordinary scheduler's and says little).
    pub realtime: bool,
}

/// A running probe; [`LatencyProbe::stop`] or dropping it ends the thread.
#[derive(Debug)]
pub struct LatencyProbe {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    wakeups: AtomicU64,
    late: AtomicU64,
    max_late_us: AtomicU64,
    realtime: AtomicBool,
}

impl LatencyProbe {
    /// Starts the probe thread; fails only when no thread can be started.
    pub fn start() -> std::io::Result<LatencyProbe> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("latency-probe".to_owned())
                .spawn(move || run(&shared))?
        };
        Ok(LatencyProbe {
            shared,
            thread: Some(thread),
        })
    }

    /// The figures so far; cheap, callable while the probe runs.
    pub fn stats(&self) -> ProbeStats {
        let s = &self.shared;
        ProbeStats {
            wakeups: s.wakeups.load(Ordering::Relaxed),
            late: s.late.load(Ordering::Relaxed),
            max_late_us: s.max_late_us.load(Ordering::Relaxed),
            realtime: s.realtime.load(Ordering::Relaxed),
        }
    }

    /// Stops the probe (within a period) and returns its final figures.
    pub fn stop(mut self) -> ProbeStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the latency probe's thread panicked");
        }
    }
}

impl Drop for LatencyProbe {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The probe's loop: sleep to the next period on an absolute timer, note
/// how late the wakeup came.
fn run(shared: &Shared) {
    let realtime = super::sys::realtime_thread(PROBE_PRIORITY).is_ok();
    shared.realtime.store(realtime, Ordering::Relaxed);
    let period = i64::try_from(PERIOD.as_nanos()).unwrap_or(i64::MAX);
    let late = i64::try_from(LATE.as_nanos()).unwrap_or(i64::MAX);
    let mut due = now_ns() + period;
    while !shared.stop.load(Ordering::Relaxed) {
        sleep_until(due);
        let late_ns = now_ns() - due;
        let late_us = u64::try_from(late_ns / 1000).unwrap_or(0);
        shared.wakeups.fetch_add(1, Ordering::Relaxed);
        shared.max_late_us.fetch_max(late_us, Ordering::Relaxed);
        if late_ns > late {
            shared.late.fetch_add(1, Ordering::Relaxed);
        }
        // After a long stall, the next timer is the next period from now:
        // one stall counts once, not once per period it swallowed.
        due = (due + period).max(now_ns() + period / 2);
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds.
fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec the call writes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Sleeps until `CLOCK_MONOTONIC` reads `due_ns` (at once if it has).
fn sleep_until(due_ns: i64) {
    let ts = libc::timespec {
        tv_sec: due_ns / 1_000_000_000,
        tv_nsec: due_ns % 1_000_000_000,
    };
    // SAFETY: ts is a valid timespec; a null remainder is allowed with
    // TIMER_ABSTIME. A signal ends the sleep early: the wakeup then counts
    // as on time, which only ever understates lateness.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// The running kernel's preemption model (`none`, `voluntary`, `full`,
/// `lazy` or `rt`), from the scheduler's debugfs file when it can be read,
/// else the boot command line's `preempt=`, else the kernel's build
/// configuration (`/proc/config.gz`); `None` when none of them says.
pub fn preemption_model() -> Option<String> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    if let Some(model) = read("/sys/kernel/debug/sched/preempt").and_then(|t| from_debugfs(&t)) {
        return Some(model);
    }
    let config = || {
        let file = std::fs::File::open("/proc/config.gz").ok()?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .ok()?;
        from_config(&text)
    };
    read("/proc/cmdline")
        .and_then(|t| from_cmdline(&t))
        .or_else(config)
}

/// The model in parentheses of `/sys/kernel/debug/sched/preempt`
/// (`none voluntary (full) lazy`).
fn from_debugfs(text: &str) -> Option<String> {
    let start = text.find('(')?;
    let end = start + text[start..].find(')')?;
    Some(text[start + 1..end].trim().to_owned()).filter(|m| !m.is_empty())
}

/// `preempt=MODEL` on the boot command line.
fn from_cmdline(text: &str) -> Option<String> {
    text.split_whitespace()
        .take_while(|w| *w != "--")
        .find_map(|w| w.strip_prefix("preempt="))
        .map(str::to_owned)
}

/// The model a kernel was built with, from its `.config`.
fn from_config(text: &str) -> Option<String> {
    let set = |key: &str| text.lines().any(|l| l.trim() == format!("{key}=y"));
    [
        ("CONFIG_PREEMPT_RT", "rt"),
        ("CONFIG_PREEMPT_NONE", "none"),
        ("CONFIG_PREEMPT_VOLUNTARY", "voluntary"),
        ("CONFIG_PREEMPT_LAZY", "lazy"),
        ("CONFIG_PREEMPT", "full"),
    ]
    .into_iter()
    .find(|(key, _)| set(key))
    .map(|(_, model)| model.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_counts_its_wakeups_and_stops() {
        let probe = LatencyProbe::start().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let s = probe.stop();
        // 200 periods at most (plus the one in flight); a loaded machine
        // may stall the probe, but not for most of 200 ms.
        assert!((20..=202).contains(&s.wakeups), "{s:?}");
        assert!(s.late <= s.wakeups, "{s:?}");
        assert!(s.late == 0 || s.max_late_us > 1000, "{s:?}");
    }

    #[test]
    fn the_model_is_read_from_each_source() {
        assert_eq!(
            from_debugfs("none voluntary (full) lazy\n").as_deref(),
            Some("full")
        );
        assert_eq!(from_debugfs("none voluntary full"), None);
        let cmdline = "console=ttyS0 preempt=full quiet -- --init preempt=none";
        assert_eq!(from_cmdline(cmdline).as_deref(), Some("full"));
        assert_eq!(from_cmdline("console=ttyS0 -- preempt=none"), None);
        let config = "CONFIG_PREEMPT_BUILD=y\nCONFIG_PREEMPT_NONE=y\nCONFIG_PREEMPT_COUNT=y\nCONFIG_PREEMPTION=y\nCONFIG_PREEMPT_DYNAMIC=y\n";
        assert_eq!(from_config(config).as_deref(), Some("none"));
        assert_eq!(from_config("CONFIG_PREEMPT=y\n").as_deref(), Some("full"));
        assert_eq!(
            from_config("CONFIG_PREEMPT=y\nCONFIG_PREEMPT_RT=y\n").as_deref(),
            Some("rt")
        );
        assert_eq!(from_config("# CONFIG_PREEMPT_NONE is not set\n"), None);
    }
}
