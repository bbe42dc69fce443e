//! What this machine allows a run: open files (raised up to the hard limit
//! when a run needs more) and memory available, each checked before it
//! bites, with the fix in the message.

use std::path::Path;

/// Makes at least `needed` file descriptors available to this process (and
/// the processes it starts), raising the soft limit toward the hard one
/// when needed; `what` names what needs them in the refusal. Returns the
/// limit now in force.
pub fn ensure_open_files(needed: u64, what: &str) -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "reading the open-file limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur >= needed {
        return Ok(limit.rlim_cur);
    }
    if limit.rlim_max < needed {
        return Err(format!(
            "{what} needs {needed} open files, and this shell allows at most {} (ulimit -Hn); raise it first, e.g. `ulimit -n {needed}` as root (or LimitNOFILE= for a service, nofile in /etc/security/limits.conf)",
            limit.rlim_max
        ));
    }
    let raised = libc::rlimit {
        rlim_cur: needed.max(limit.rlim_cur).min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!(
            "{what} needs {needed} open files; raising the limit from {} failed: {}; run `ulimit -n {needed}` first",
            limit.rlim_cur,
            std::io::Error::last_os_error()
        ));
    }
    Ok(raised.rlim_cur)
}

/// Memory the kernel says new work can use without swapping
/// (`MemAvailable` of `/proc/meminfo`), bytes; `None` where it cannot be read.
pub fn available_memory_bytes() -> Option<u64> {
    meminfo_available(&std::fs::read_to_string(Path::new("/proc/meminfo")).ok()?)
}

fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read_from_meminfo() {
        let text = "MemTotal:       23000000 kB\nMemFree:  100 kB\nMemAvailable:   20480 kB\n";
        assert_eq!(meminfo_available(text), Some(20 * 1024 * 1024));
        assert_eq!(meminfo_available("MemTotal: 1 kB\n"), None);
        assert!(available_memory_bytes().is_some_and(|b| b > 0));
    }

    #[test]
    fn the_open_file_limit_is_raised_or_the_refusal_says_how() {
        let now = ensure_open_files(16, "a test").unwrap();
        assert!(now >= 16);
        let e = ensure_open_files(u64::MAX - 1, "10,000 clients").unwrap_err();
        assert!(e.starts_with("10,000 clients needs"), "{e}");
        assert!(e.contains("ulimit -n"), "{e}");
    }
}
