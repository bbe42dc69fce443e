//! Changing a running testbed's links ([`LinkControl`]): bandwidth by
//! changing the htb classes of both ends, delay, jitter and loss by the
//! link's delay line or netem, and outages (a link down, then up again).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::delayline::{LineControl, Loss};
use super::plan::{LinkPlan, Medium};
use super::shape;
use super::sys::{self, SysError};

/// A change to one link's figures; a field left out stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkChange {
    /// New bandwidth, Mbit/s, each direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbit: Option<f64>,
    /// New one-way delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// New delay variation, ms (at most the delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    /// New independent loss, percent (replaces bursty loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    /// `false` takes the link down (every frame dropped), `true` brings it
    /// back with its figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
}

impl LinkChange {
    /// Whether it changes the delay, jitter, loss or state (not only the
    /// bandwidth): such a link needs a delay line or netem from the start.
    pub fn impairs(&self) -> bool {
        self.delay_ms.is_some()
            || self.jitter_ms.is_some()
            || self.loss_pct.is_some()
            || self.up.is_some()
    }
}

/// Changes the links of a running testbed; cheap to share between threads.
#[derive(Debug)]
pub struct LinkControl {
    links: Vec<LinkPlan>,
    lines: BTreeMap<usize, LineControl>,
    /// The figures in force on links shaped by netem, and whether each is up.
    netem: Mutex<BTreeMap<usize, (LinkPlan, bool)>>,
}

impl LinkControl {
    /// Control over `links`, whose delay lines are `lines` (by link index);
    /// `netem`: whether the kernel shapes the other impaired links.
    pub(super) fn new(
        links: &[LinkPlan],
        lines: BTreeMap<usize, LineControl>,
        netem: bool,
    ) -> Self {
        let netem_links = links
            .iter()
            .filter(|l| netem && l.medium == Medium::Veth && (l.impaired() || l.changing))
            .map(|l| (l.index, (l.clone(), true)))
            .collect();
        Self {
            links: links.to_vec(),
            lines,
            netem: Mutex::new(netem_links),
        }
    }

    /// The index of the link between `a` and `b` (either order).
    pub fn link_index(&self, a: &str, b: &str) -> Option<usize> {
        self.links
            .iter()
            .find(|l| (l.a.node == a && l.b.node == b) || (l.a.node == b && l.b.node == a))
            .map(|l| l.index)
    }

    /// Puts `change` in force on link `index`, both directions.
    pub fn apply(&self, index: usize, change: &LinkChange) -> Result<(), SysError> {
        let link = self
            .links
            .iter()
            .find(|l| l.index == index)
            .ok_or_else(|| {
                SysError::new(
                    format!("changing link {index}"),
                    "no such link in the testbed",
                )
            })?;
        let what = || format!("changing link {}", link.label());
        if let Some(mbit) = change.bandwidth_mbit {
            if !(mbit.is_finite() && mbit > 0.0) {
                return Err(SysError::new(
                    what(),
                    format!("bandwidth must be > 0 Mbit/s, got {mbit}"),
                ));
            }
            for end in [&link.a, &link.b] {
                sys::tc_batch(&end.ns, &shape::bandwidth_change_commands(&end.dev, mbit))?;
            }
        }
        if !change.impairs() {
            return Ok(());
        }
        if let Some(line) = self.lines.get(&index) {
            let mut spec = line.spec();
            if let Some(d) = change.delay_ms {
                spec.delay =
                    duration_ms(d).map_err(|p| SysError::new(what(), format!("delay {p}")))?;
            }
            if let Some(j) = change.jitter_ms {
                spec.jitter =
                    duration_ms(j).map_err(|p| SysError::new(what(), format!("jitter {p}")))?;
            }
            if let Some(pct) = change.loss_pct {
                spec.loss = Loss::Random(pct);
            }
            if let Some(up) = change.up {
                spec.up = up;
            }
            return line.set(spec).map_err(|p| SysError::new(what(), p));
        }
        let mut netem = self.netem.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((figures, up)) = netem.get_mut(&index) else {
            return Err(SysError::new(
                what(),
                "the link has neither a delay line nor netem, so its delay, loss or state cannot change; \
                 name it in the schedule before the testbed comes up",
            ));
        };
        if let Some(d) = change.delay_ms {
            figures.delay_ms = d;
        }
        if let Some(j) = change.jitter_ms {
            figures.jitter_ms = j;
        }
        if let Some(pct) = change.loss_pct {
            figures.loss_pct = pct;
            figures.loss_burst = None;
        }
        if let Some(u) = change.up {
            *up = u;
        }
        let args = if *up {
            figures.netem_args()
        } else {
            format!("delay {}ms loss 100%", figures.delay_ms)
        };
        for end in [&link.a, &link.b] {
            sys::tc_batch(&end.ns, &[shape::netem_change_command(&end.dev, &args)])?;
        }
        Ok(())
    }
}

/// `ms` milliseconds, refused when negative or not finite.
fn duration_ms(ms: f64) -> Result<Duration, String> {
    if ms.is_finite() && ms >= 0.0 {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(format!("must be >= 0 ms, got {ms}"))
    }
}
