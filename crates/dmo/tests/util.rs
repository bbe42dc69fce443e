//! Helpers shared by the `dmo` command's test files.

use std::path::{Path, PathBuf};

/// The repository root.
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Writes `capped.yaml` into `dir`: the CI scenario with cohort1's intent
/// asking for at most 10 Mbit/s.
pub fn capped_ci_scenario(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(format!("{REPO}/scenarios/ci-small.yaml")).unwrap();
    let capped = text.replacen(
        "numround: \"3\" }",
        "numround: \"3\", max_bandwidth_mbps: 10 }",
        1,
    );
    assert_ne!(capped, text, "the CI scenario's cohort1 intent moved");
    let path = dir.join("capped.yaml");
    std::fs::write(&path, capped).unwrap();
    path
}
