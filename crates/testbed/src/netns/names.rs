//! The names a run gives to what it creates, so that two runs never
//! collide and `dmo testbed down` finds everything of a run (or of every
//! run) again, also after the runner was killed.

/// Prefix of every namespace and cgroup the backend creates.
pub const PREFIX: &str = "dmo-";

/// The names of run `run` (its run byte, 2..=254).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunNames {
    /// The run byte.
    pub run: u8,
}

impl RunNames {
    /// The names of run `run`.
    pub fn new(run: u8) -> Self {
        Self { run }
    }

    /// The namespace holding the switches' bridges: `dmo-R`.
    pub fn fabric_ns(&self) -> String {
        format!("{PREFIX}{}", self.run)
    }

    /// Host `host`'s namespace: `dmo-R-HOST`, with characters other than
    /// letters, digits, `.`, `_` and `-` replaced by `_`.
    pub fn host_ns(&self, host: &str) -> String {
        let clean: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{PREFIX}{}-{clean}", self.run)
    }

    /// The run's cgroup directory name (under each controller's root).
    pub fn cgroup(&self) -> String {
        self.fabric_ns()
    }

    /// Whether namespace or cgroup name `name` belongs to this run.
    pub fn owns(&self, name: &str) -> bool {
        run_of(name) == Some(self.run)
    }
}

/// The run byte of a namespace or cgroup name the backend made, `None`
/// for any other name.
pub fn run_of(name: &str) -> Option<u8> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits = rest.split_once('-').map_or(rest, |(d, _)| d);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_per_run_and_found_again() {
        let n = RunNames::new(42);
        assert_eq!(n.fabric_ns(), "dmo-42");
        assert_eq!(n.host_ns("fc.10"), "dmo-42-fc.10");
        assert_eq!(n.host_ns("a b/c"), "dmo-42-a_b_c");
        assert!(n.owns("dmo-42") && n.owns("dmo-42-fc.10"));
        assert!(!n.owns("dmo-4") && !n.owns("dmo-420-x") && !n.owns("dmo-t-probe"));
        assert_eq!(run_of("dmo-7-fed.1"), Some(7));
        assert_eq!(run_of("dmo-x"), None);
        assert_eq!(run_of("other"), None);
        assert_eq!(run_of("dmo-999"), None);
    }
}
