//! The emulation's fidelity, as the report shows it: the delay lines'
//! counters (drops by cause, frames sent late), the FL connections' RTT
//! against their paths' configured RTT, and how promptly the kernel ran a
//! real-time probe thread; each with a visible warning when it misses.

use std::fmt::Write as _;

use crate::network::{DelayLineSummary, NetworkSummary, RttFidelity, SchedulingSummary};
use crate::report::escape;

/// The fidelity part of the report's network section (empty when the run
/// measured none of it).
pub(crate) fn section(n: &NetworkSummary) -> String {
    let mut html = String::new();
    if !n.delay_lines.is_empty() {
        html += &delay_lines_table(&n.delay_lines);
    }
    if let Some(f) = n.rtt_fidelity() {
        html += &rtt_line(&f);
    }
    if let Some(s) = &n.scheduling {
        html += &scheduling_line(s);
    }
    html
}

/// The delay lines' counters with the fidelity line: drops by cause (the
/// loss draw, the modelled buffer, scheduling) and a warning when frames
/// left late because a line did not get the CPU.
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
    html += "</table>";
    let late: u64 = lines.iter().map(|d| d.late.0 + d.late.1).sum();
    let frames: u64 = lines.iter().map(|d| d.frames.0 + d.frames.1).sum();
    let _ = if lines.iter().any(DelayLineSummary::missed) {
        write!(
            html,
            "<p class=\"bad\">Emulation fidelity missed: {late} of {frames} frames left a delay line more than 1 ms late (the line did not get the CPU in time); the delays in this run were longer than configured.</p>"
        )
    } else {
        write!(
            html,
            "<p>Emulation fidelity: every one of {frames} frames left its delay line within 1 ms of its configured delay; drops are the loss draw's and the modelled buffer's only.</p>"
        )
    };
    html
}

/// The FL connections' RTT against the configured path RTT, and whether it
/// is within [`RttFidelity::MEDIAN_GOAL`] at the median and
/// [`RttFidelity::P99_GOAL`] at the 99th percentile.
fn rtt_line(f: &RttFidelity) -> String {
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
    if f.met() {
        format!("<p>{figures}: {goal}.</p>")
    } else {
        format!(
            "<p class=\"bad\">{figures}: not {goal}. The RTT includes queueing in the shaped links' buffers (a bottleneck the run fills) and the hosts' time to answer, which the configured delays do not model; frames a delay line sent late are counted above.</p>"
        )
    }
}

/// The latency probe's figures: how late an idle real-time thread woke,
/// and what that means for any user-space delay.
fn scheduling_line(s: &SchedulingSummary) -> String {
    let model = s.preemption.as_deref().map_or_else(String::new, |m| {
        format!("; kernel preemption model: {}", escape(m))
    });
    let figures = format!(
        "Kernel scheduling latency: a real-time probe thread (SCHED_FIFO, above the delay lines) that only sleeps to a 1 ms timer woke more than 1 ms late {} of {} times, at most {:.2} ms late{model}",
        s.late, s.wakeups, s.max_late_ms
    );
    if !s.realtime {
        return format!(
            "<p class=\"bad\">{figures}. The probe did not get real-time priority (no CAP_SYS_NICE), so these are the ordinary scheduler's figures.</p>"
        );
    }
    if s.late == 0 {
        return format!("<p>{figures}: this machine ran real-time threads on time.</p>");
    }
    let cure = match s.preemption.as_deref() {
        Some("none" | "voluntary") => {
            "This kernel does not preempt its own code: boot it with preempt=full (or run a PREEMPT_RT kernel)"
        }
        _ => {
            "Interrupts or the hypervisor held the CPUs: run on a quieter machine or with CPUs isolated for the testbed"
        }
    };
    format!(
        "<p class=\"bad\">{figures}. No user-space thread, the delay lines' included, keeps to the millisecond on this machine under this load. {cure}.</p>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fidelity_line_warns_when_frames_left_a_delay_line_late() {
        let line = |late: u64| DelayLineSummary {
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
        };
        let good = delay_lines_table(&[line(0)]);
        assert!(
            good.contains("every one of 1900 frames left its delay line within 1 ms"),
            "{good}"
        );
        assert!(
            good.contains("<td>12</td>") && good.contains("<td>yes</td>"),
            "{good}"
        );
        let bad = delay_lines_table(&[line(0), line(7)]);
        assert!(
            bad.contains("<p class=\"bad\">Emulation fidelity missed: 7 of 3800 frames"),
            "{bad}"
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
        let good = rtt_line(&f(49.4, 56.8));
        assert!(
            good.starts_with("<p>FL connections' RTT (870 samples) against their paths' configured RTT of 48.0 ms: least 48.2 ms, median 49.4 ms (+3 %), 99th percentile 56.8 ms (+18 %): within 10 %"),
            "{good}"
        );
        let bad = rtt_line(&f(55.0, 73.3));
        assert!(bad.starts_with("<p class=\"bad\">"), "{bad}");
        assert!(
            bad.contains("(+15 %)") && bad.contains(": not within 10 %"),
            "{bad}"
        );
        let spread = rtt_line(&RttFidelity {
            configured_ms: (24.0, 48.0),
            ..f(30.0, 50.0)
        });
        assert!(
            spread.contains("configured RTT of 24.0 to 48.0 ms"),
            "{spread}"
        );
    }

    #[test]
    fn the_scheduling_line_says_whether_real_time_threads_ran_on_time() {
        let s = |late: u64, model: &str| SchedulingSummary {
            wakeups: 38_411,
            late,
            max_late_ms: if late > 0 { 3.94 } else { 0.55 },
            realtime: true,
            preemption: Some(model.into()),
        };
        let on_time = scheduling_line(&s(0, "full"));
        assert!(
            on_time.starts_with("<p>Kernel scheduling latency:")
                && on_time.contains("late 0 of 38411 times, at most 0.55 ms late; kernel preemption model: full: this machine ran"),
            "{on_time}"
        );
        let none = scheduling_line(&s(8, "none"));
        assert!(none.starts_with("<p class=\"bad\">"), "{none}");
        assert!(none.contains("8 of 38411 times, at most 3.94 ms"), "{none}");
        assert!(none.contains("boot it with preempt=full"), "{none}");
        let full = scheduling_line(&s(8, "full"));
        assert!(full.contains("Interrupts or the hypervisor"), "{full}");
        let ordinary = scheduling_line(&SchedulingSummary {
            realtime: false,
            ..s(0, "none")
        });
        assert!(
            ordinary.contains("did not get real-time priority"),
            "{ordinary}"
        );
    }
}
