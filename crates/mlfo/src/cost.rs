//! The MLFO's cost model for `aggregation: auto`: the time of one round and
//! the bytes that cross the wide-area path (every link between the campuses
//! and the cloud aggregator) per round, predicted for flat and for
//! hierarchical aggregation from the model's size, the clients each option
//! samples per campus, the path's bottleneck bandwidth and RTT, the campus
//! links' bandwidth and the clients' local training time. The formulas, with
//! every term named, are in docs/mlfo.md ("The cost model").

use intent::Aggregation;
use serde::{Deserialize, Serialize};

/// Where an input figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Measured on the running testbed.
    Measured,
    /// Declared: the topology's figures, or the configuration's.
    Declared,
}

/// One input of a prediction, with its source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What it is, e.g. `wan_mbit`.
    pub name: String,
    /// Its value, in the unit its name says.
    pub value: f64,
    /// Measured or declared.
    pub source: Source,
}

/// One campus of the cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct Campus {
    /// Its name.
    pub name: String,
    /// Clients of the cohort on it.
    pub clients: usize,
    /// Whether it has an edge-aggregator host.
    pub edge_aggregator: bool,
}

/// What a prediction starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Bytes of one copy of the model on the wire (4 per parameter).
    pub model_bytes: f64,
    /// The plan's fraction of clients sampled for fit.
    pub fraction_fit: f64,
    /// The plan's fewest clients sampled for fit.
    pub min_fit: usize,
    /// The cohort's campuses.
    pub campuses: Vec<Campus>,
    /// Bottleneck bandwidth of the wide-area path, Mbit/s.
    pub wan_mbit: f64,
    /// Round-trip time of the wide-area path, ms.
    pub rtt_ms: f64,
    /// Bandwidth of a campus link (an edge aggregator's, a client's), Mbit/s.
    pub campus_mbit: f64,
    /// Seconds a client's local training takes per round.
    pub train_s: f64,
}

/// The predicted cost of one option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The option.
    pub aggregation: Aggregation,
    /// Seconds one round takes.
    pub round_s: f64,
    /// Bytes that cross the wide-area path per round, both directions.
    pub wan_bytes: f64,
}

/// Clients sampled out of `n` with the plan's fraction and minimum.
fn sampled(n: usize, fraction: f64, min_fit: usize) -> usize {
    (((n as f64) * fraction).floor() as usize)
        .max(min_fit.clamp(1, n.max(1)))
        .min(n)
}

/// Seconds to send `bytes` at `mbit` Mbit/s.
fn transfer_s(bytes: f64, mbit: f64) -> f64 {
    bytes * 8.0 / (mbit * 1e6)
}

/// The cost of one round, flat or (with `hierarchical`) through an edge
/// aggregator on every campus that has one.
pub fn predict(inputs: &Inputs, hierarchical: bool) -> Prediction {
    let wan = |copies: f64| transfer_s(copies * inputs.model_bytes, inputs.wan_mbit);
    let local = |copies: f64| transfer_s(copies * inputs.model_bytes, inputs.campus_mbit);
    let rtt = inputs.rtt_ms / 1000.0;
    let (aggregation, wan_copies, fit, eval) = if hierarchical {
        // K edge aggregators and D direct clients, all sampled by the
        // cloud; each edge forwards to its s_c sampled clients (and all its
        // clients for evaluate) once the copy from the cloud is in.
        let (mut up, mut fan_fit, mut fan_eval) = (0.0, 0.0f64, 0.0f64);
        for c in &inputs.campuses {
            if c.edge_aggregator {
                up += 1.0;
                let s_c = sampled(c.clients, inputs.fraction_fit, inputs.min_fit);
                fan_fit = fan_fit.max(s_c as f64);
                fan_eval = fan_eval.max(c.clients as f64);
            } else {
                up += c.clients as f64;
            }
        }
        let (fit, eval) = (wan(up) + local(fan_fit), wan(up) + local(fan_eval));
        (Aggregation::Hierarchical, 3.0 * up, fit, eval)
    } else {
        // The cloud samples S of all N clients and has all N evaluate; the
        // copies stream through the path to every campus at once.
        let n: usize = inputs.campuses.iter().map(|c| c.clients).sum();
        let s = sampled(n, inputs.fraction_fit, inputs.min_fit) as f64;
        let n = n as f64;
        let busiest = inputs
            .campuses
            .iter()
            .map(|c| c.clients as f64 / n.max(1.0))
            .fold(0.0, f64::max);
        let (fit, eval) = (
            wan(s).max(local(s * busiest)),
            wan(n).max(local(n * busiest)),
        );
        (Aggregation::Flat, 2.0 * s + n, fit, eval)
    };
    Prediction {
        aggregation,
        round_s: 3.0 * rtt + 2.0 * fit + inputs.train_s + eval,
        wan_bytes: wan_copies * inputs.model_bytes,
    }
}

/// The options considered for an `auto` job and the one chosen: the
/// record's `plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The option chosen.
    pub chosen: Aggregation,
    /// Every option, with its prediction.
    pub options: Vec<Prediction>,
    /// The inputs, each with its source.
    pub inputs: Vec<Figure>,
}

/// Chooses between flat and hierarchical: the lowest predicted round time,
/// a tie going to fewer wide-area bytes. Hierarchical is an
/// option only where some campus has an edge aggregator. Returns the choice
/// and every option's prediction.
pub fn choose(inputs: &Inputs) -> (Prediction, Vec<Prediction>) {
    let mut options = vec![predict(inputs, false)];
    if inputs.campuses.iter().any(|c| c.edge_aggregator) {
        options.push(predict(inputs, true));
    }
    let best = options
        .iter()
        .min_by(|a, b| {
            let close = (a.round_s - b.round_s).abs() <= 1e-9 * a.round_s.max(b.round_s);
            if close {
                a.wan_bytes.total_cmp(&b.wan_bytes)
            } else {
                a.round_s.total_cmp(&b.round_s)
            }
        })
        .cloned()
        .unwrap_or_else(|| predict(inputs, false));
    (best, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed cohort: 50 clients over 5 campuses with edge aggregators,
    /// the MLP (199,210 parameters), fracfit 0.5.
    fn seed(wan_mbit: f64, rtt_ms: f64) -> Inputs {
        Inputs {
            model_bytes: 199_210.0 * 4.0,
            fraction_fit: 0.5,
            min_fit: 1,
            campuses: (1..=5)
                .map(|n| Campus {
                    name: format!("campus{n}"),
                    clients: 10,
                    edge_aggregator: true,
                })
                .collect(),
            wan_mbit,
            rtt_ms,
            campus_mbit: 500.0,
            train_s: 1.0,
        }
    }

    #[test]
    fn a_slow_satellite_makes_hierarchical_the_choice() {
        let (chosen, options) = choose(&seed(20.0, 48.0));
        assert_eq!(chosen.aggregation, Aggregation::Hierarchical);
        let (flat, hier) = (&options[0], &options[1]);
        assert_eq!(flat.wan_bytes, 100.0 * 796_840.0, "25 + 25 + 50 copies");
        assert_eq!(hier.wan_bytes, 15.0 * 796_840.0, "5 + 5 + 5 copies");
        assert!(flat.round_s > 4.0 * hier.round_s, "{options:?}");
    }

    #[test]
    fn a_fast_direct_path_makes_flat_the_choice() {
        let (chosen, options) = choose(&seed(10_000.0, 0.0));
        assert_eq!(chosen.aggregation, Aggregation::Flat, "{options:?}");
        assert!(options[0].round_s < options[1].round_s);
    }

    #[test]
    fn without_edge_aggregators_flat_is_the_only_option() {
        let no_edges = Inputs {
            campuses: vec![Campus {
                name: "campus1".into(),
                clients: 4,
                edge_aggregator: false,
            }],
            ..seed(20.0, 48.0)
        };
        let (chosen, options) = choose(&no_edges);
        assert_eq!((chosen.aggregation, options.len()), (Aggregation::Flat, 1));
    }

    #[test]
    fn sampling_follows_the_plan() {
        assert_eq!(sampled(10, 0.5, 1), 5);
        assert_eq!(sampled(3, 0.1, 2), 2);
        assert_eq!(sampled(1, 0.5, 4), 1);
        assert_eq!(sampled(0, 0.5, 1), 0);
    }
}
