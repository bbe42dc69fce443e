//! The emulation's fidelity: the delay lines' counters (drops by cause,
//! frames sent late), the FL connections' RTT against their paths'
//! configured RTT, and how promptly the kernel ran a real-time probe
//! thread. Each is a [`Verdict`]: the report shows them (red when missed)
//! and `dmo run` prints the missed ones.

use std::fmt::Write as _;

use crate::network::{DelayLineSummary, NetworkSummary, RttFidelity, SchedulingSummary};
use crate::report::escape;

/// One fidelity check of a run: whether it held, and a sentence that says
/// what was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the run met it.
    pub met: bool,
    /// What was measured, against what, and what a miss means.
    pub text: String,
}

/// Every fidelity check the run's measurements allow, in the report's
/// order: the delay lines, the FL connections' RTT, the kernel's
/// scheduling latency.
pub fn verdicts(n: &NetworkSummary) -> Vec<Verdict> {
    let lines = (!n.delay_lines.is_empty()).then(|| delay_lines_verdict(&n.delay_lines));
    let rtt = n.rtt_fidelity().map(|f| rtt_verdict(&f));
    let scheduling = n.scheduling.as_ref().map(scheduling_verdict);
    [lines, rtt, scheduling].into_iter().flatten().collect()
}

/// The fidelity part of the report's network section: the delay lines'
/// table, then each verdict as a paragraph (empty when the run measured
/// none of it).
pub(crate) fn section(n: &NetworkSummary) -> String {
    let mut html = String::new();
    if !n.delay_lines.is_empty() {
        html += &delay_lines_table(&n.delay_lines);
    }
    for v in verdicts(n) {
        let class = if v.met { "" } else { " class=\"bad\"" };
        let _ = write!(html, "<p{class}>{}</p>", escape(&v.text));
    }
    html
}

/// The delay lines' counters: drops by cause (the loss draw, the modelled
/// buffer, a scheduled outage), frames sent late and real-time priority.
fn delay_lines_table(lines: &[DelayLineSummary]) -> String {
    let mut html = String::from(
        "<table><tr><th>delay line a - b</th><th>delay ms</th><th>frames a→b</th><th>frames b→a</th>\
         <th>lost (loss draw)</th><th>queue drops (buffer)</th><th>outage drops (schedule)</th>\
         <th>late &gt; 1 ms (scheduling)</th><th>latest ms</th><th>real-time</th></tr>",
    );
    for d in lines {
        let _ = write!(
            html,
            "<tr><td class=\"l\">{} - {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            escape(&d.a),
            escape(&d.b),
            d.delay_ms,
            d.frames.0,
            d.frames.1,
            d.lost.0 + d.lost.1,
            d.queue_drops.0 + d.queue_drops.1,
            d.outage.0 + d.outage.1,
            d.late.0 + d.late.1,
            d.max_late_ms,
            if d.realtime { "yes" } else { "no" }
        );
    }
    html + "</table>"
}

/// Whether every frame left its delay line within 1 ms of its delay.
fn delay_lines_verdict(lines: &[DelayLineSummary]) -> Verdict {
    let late: u64 = lines.iter().map(|d| d.late.0 + d.late.1).sum();
    let frames: u64 = lines.iter().map(|d| d.frames.0 + d.frames.1).sum();
    let latest = lines.iter().map(|d| d.max_late_ms).fold(0.0, f64::max);
    if lines.iter().any(DelayLineSummary::missed) {
        Verdict {
            met: false,
            text: format!(
                "Emulation fidelity missed: {late} of {frames} frames left a delay line more than 1 ms late, the latest {latest:.1} ms (its writer did not get the CPU in time, or the kernel held it inside a write); the delays in this run were longer than configured."
            ),
        }
    } else {
        Verdict {
            met: true,
            text: format!(
                "Emulation fidelity: every one of {frames} frames left its delay line within 1 ms of its configured delay; drops are the loss draw's and the modelled buffer's only."
            ),
        }
    }
}

/// The FL connections' RTT against the configured path RTT, and whether it
/// is within [`RttFidelity::MEDIAN_GOAL`] at the median and
/// [`RttFidelity::P99_GOAL`] at the 99th percentile.
fn rtt_verdict(f: &RttFidelity) -> Verdict {
    let configured = if f.configured_ms.0 == f.configured_ms.1 {
        format!("{:.1} ms", f.configured_ms.0)
    } else {
        format!("{:.1} to {:.1} ms", f.configured_ms.0, f.configured_ms.1)
    };
    let pct = |ratio: f64| format!("{:+.0} %", (ratio - 1.0) * 100.0);
    let figures = format!(
        "FL connections' RTT ({} samples) against their paths' configured RTT of {configured}: least {:.1} ms, median {:.1} ms ({}), 99th percentile {:.1} ms ({})",
        f.samples,
        f.min_ms,
        f.median_ms,
        pct(f.median_ratio),
        f.p99_ms,
        pct(f.p99_ratio),
    );
    let goal = format!(
        "within {:.0} % at the median and {:.0} % at the 99th percentile",
        (RttFidelity::MEDIAN_GOAL - 1.0) * 100.0,
        (RttFidelity::P99_GOAL - 1.0) * 100.0
    );
    let met = f.met();
    let text = if met {
        format!("{figures}: {goal}.")
    } else {
        format!(
            "{figures}: not {goal}. The RTT includes queueing in the shaped links' buffers (a bottleneck the run fills) and the hosts' time to answer, which the configured delays do not model; frames a delay line sent late count too."
        )
    };
    Verdict { met, text }
}

/// The latency probe's figures: how late an idle real-time thread woke,
/// and what that means for any user-space delay.
fn scheduling_verdict(s: &SchedulingSummary) -> Verdict {
    let model = s
        .preemption
        .as_deref()
        .map_or_else(String::new, |m| format!("; kernel preemption model: {m}"));
    let figures = format!(
        "Kernel scheduling latency: a real-time probe thread (SCHED_FIFO, above the delay lines) that only sleeps to a 1 ms timer woke more than 1 ms late {} of {} times, at most {:.2} ms late{model}",
        s.late, s.wakeups, s.max_late_ms
    );
    let (met, text) = if !s.realtime {
        (
            false,
            format!(
                "{figures}. The probe did not get real-time priority (no CAP_SYS_NICE), so these are the ordinary scheduler's figures."
            ),
        )
    } else if s.late == 0 {
        (
            true,
            format!("{figures}: this machine ran real-time threads on time."),
        )
    } else {
        let cure = match s.preemption.as_deref() {
            Some("none" | "voluntary") => {
                "This kernel does not preempt its own code: boot it with preempt=full (or run a PREEMPT_RT kernel)"
            }
            _ => {
                "Interrupts or the hypervisor held the CPUs: run on a quieter machine or with CPUs isolated for the testbed"
            }
        };
        (
            false,
            format!(
                "{figures}. No user-space thread, the delay lines' included, keeps to the millisecond on this machine under this load. {cure}."
            ),
        )
    };
    Verdict { met, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(delay_lines: Vec<DelayLineSummary>) -> NetworkSummary {
        NetworkSummary {
            impairment: "user-space delay line".into(),
            links: Vec::new(),
            tcp: Vec::new(),
            delay_lines,
            background: Vec::new(),
            changes: Vec::new(),
            fl_start_s: None,
            scheduling: None,
        }
    }

    fn line(late: u64) -> DelayLineSummary {
        DelayLineSummary {
            link: 0,
            a: "aggsw".into(),
            b: "satsw".into(),
            frames: (1000, 900),
            lost: (1, 0),
            queue_drops: (2, 0),
            delay_ms: 12.0,
            late: (late, 0),
            max_late_ms: if late > 0 { 3.5 } else { 0.2 },
            realtime: late == 0,
            outage: (0, 0),
        }
    }

    fn probe(late: u64, model: &str) -> SchedulingSummary {
        SchedulingSummary {
            wakeups: 38_411,
            late,
            max_late_ms: if late > 0 { 3.94 } else { 0.55 },
            realtime: true,
            preemption: Some(model.into()),
        }
    }

    #[test]
    fn the_fidelity_line_warns_when_frames_left_a_delay_line_late() {
        let good = section(&network(vec![line(0)]));
        assert!(
            good.contains(
                "<p>Emulation fidelity: every one of 1900 frames left its delay line within 1 ms"
            ),
            "{good}"
        );
        assert!(
            good.contains("<td>12</td>") && good.contains("<td>yes</td>"),
            "{good}"
        );
        let bad = section(&network(vec![line(0), line(7)]));
        assert!(
            bad.contains("<p class=\"bad\">Emulation fidelity missed: 7 of 3800 frames left a delay line more than 1 ms late, the latest 3.5 ms"),
            "{bad}"
        );
    }

    #[test]
    fn the_verdicts_come_in_the_report_s_order_and_only_for_what_was_measured() {
        assert!(verdicts(&network(Vec::new())).is_empty());
        let mut n = network(vec![line(3)]);
        n.scheduling = Some(probe(2, "none"));
        n.tcp = vec![crate::network::TcpSeries {
            host: "fed.1".into(),
            peer: "10.0.1.10:5555".into(),
            points: vec![(1.0, 49.0, 10), (2.0, 50.0, 10)],
            median_rtt_ms: 49.5,
            configured_rtt_ms: Some(48.0),
        }];
        let v = verdicts(&n);
        let met: Vec<bool> = v.iter().map(|v| v.met).collect();
        assert_eq!(met, [false, true, false]);
        assert!(v[0].text.starts_with("Emulation fidelity missed"));
        assert!(v[1].text.starts_with("FL connections' RTT (2 samples)"));
        assert!(v[2].text.starts_with("Kernel scheduling latency"));
        let html = section(&n);
        assert!(
            html.contains("<p>FL connections' RTT (2 samples)"),
            "{html}"
        );
    }

    #[test]
    fn the_rtt_line_compares_with_the_configured_rtt_and_warns_beyond_the_goal() {
        let f = |median: f64, p99: f64| RttFidelity {
            configured_ms: (48.0, 48.0),
            min_ms: 48.2,
            median_ms: median,
            p99_ms: p99,
            median_ratio: median / 48.0,
            p99_ratio: p99 / 48.0,
            samples: 870,
        };
        let good = rtt_verdict(&f(49.4, 56.8));
        assert!(good.met);
        assert!(
            good.text.starts_with("FL connections' RTT (870 samples) against their paths' configured RTT of 48.0 ms: least 48.2 ms, median 49.4 ms (+3 %), 99th percentile 56.8 ms (+18 %): within 10 %"),
            "{}",
            good.text
        );
        let bad = rtt_verdict(&f(55.0, 73.3));
        assert!(!bad.met);
        assert!(
            bad.text.contains("(+15 %)") && bad.text.contains(": not within 10 %"),
            "{}",
            bad.text
        );
        let spread = rtt_verdict(&RttFidelity {
            configured_ms: (24.0, 48.0),
            ..f(30.0, 50.0)
        });
        assert!(
            spread.text.contains("configured RTT of 24.0 to 48.0 ms"),
            "{}",
            spread.text
        );
    }

    #[test]
    fn the_scheduling_line_says_whether_real_time_threads_ran_on_time() {
        let on_time = scheduling_verdict(&probe(0, "full"));
        assert!(on_time.met);
        assert!(
            on_time.text.contains("late 0 of 38411 times, at most 0.55 ms late; kernel preemption model: full: this machine ran"),
            "{}",
            on_time.text
        );
        let none = scheduling_verdict(&probe(8, "none"));
        assert!(!none.met);
        assert!(
            none.text.contains("8 of 38411 times, at most 3.94 ms"),
            "{}",
            none.text
        );
        assert!(
            none.text.contains("boot it with preempt=full"),
            "{}",
            none.text
        );
        let full = scheduling_verdict(&probe(8, "full"));
        assert!(
            full.text.contains("Interrupts or the hypervisor"),
            "{}",
            full.text
        );
        let ordinary = scheduling_verdict(&SchedulingSummary {
            realtime: false,
            ..probe(0, "none")
        });
        assert!(!ordinary.met);
        assert!(
            ordinary.text.contains("did not get real-time priority"),
            "{}",
            ordinary.text
        );
    }
}
