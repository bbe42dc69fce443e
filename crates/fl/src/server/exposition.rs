//! Exposition formats of `/metrics`: OpenMetrics (what the registry
//! encodes, and what Prometheus asks for) and the classic Prometheus text
//! format 0.0.4 for other scrapers and tools such as `promtool check metrics`.

/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// The content type and body `/metrics` answers a scraper whose `Accept`
/// header is `accept`, given the registry's OpenMetrics text.
pub fn negotiate(accept: Option<&str>, openmetrics: String) -> (&'static str, String) {
    if wants_openmetrics(accept) {
        (OPENMETRICS_CONTENT_TYPE, openmetrics)
    } else {
        (
            PROMETHEUS_TEXT_CONTENT_TYPE,
            to_prometheus_text(&openmetrics),
        )
    }
}

/// Rewrites OpenMetrics text in the Prometheus text format 0.0.4: counter
/// families are named after their `_total` samples, `# UNIT` and `# EOF`
/// lines go, `unknown` becomes `untyped`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut counters = std::collections::BTreeSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.insert(name.to_owned());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            let tail = if tail == "unknown" { "untyped" } else { tail };
            let name = if counters.contains(name) && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            Some(format!("{prefix}{name} {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_total_name_and_eof_goes() {
        let om = "# HELP rounds FL rounds.\n# TYPE rounds counter\nrounds_total{job=\"1\"} 3\n# HELP x X.\n# TYPE x unknown\nx 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP rounds_total FL rounds.\n# TYPE rounds_total counter\nrounds_total{job=\"1\"} 3\n# HELP x X.\n# TYPE x untyped\nx 1\n"
        );
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
        assert_eq!(
            negotiate(None, om.to_owned()).0,
            PROMETHEUS_TEXT_CONTENT_TYPE
        );
        let asked = negotiate(Some("application/openmetrics-text"), om.to_owned());
        assert_eq!(asked, (OPENMETRICS_CONTENT_TYPE, om.to_owned()));
    }
}
