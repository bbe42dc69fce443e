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
    /// Seconds a client's local training takes per round, alone on its host.
    pub train_s: f64,
    /// Clients that can train at once before they slow each other down
    /// (hosts that share cores: the cores over a client's threads); `None`
    /// when every client has a host of its own.
    pub parallel: Option<f64>,
}

/// The predicted cost of one option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The option.
    pub aggregation: Aggregation,
    /// The campuses that aggregate on their edge aggregator (hierarchical);
    /// the others send their clients to the cloud server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_campuses: Vec<String>,
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

/// Seconds `trainers` clients take to train one round at once.
fn training_s(inputs: &Inputs, trainers: f64) -> f64 {
    let slowdown = inputs
        .parallel
        .map_or(1.0, |p| (trainers / p.max(1e-9)).max(1.0));
    inputs.train_s * slowdown
}

/// The cost of one round: flat when `edge_campuses` is empty, else
/// hierarchical through the edge aggregators of those campuses (each must
/// have one), the other campuses' clients joining the cloud directly.
pub fn predict(inputs: &Inputs, edge_campuses: &[String]) -> Prediction {
    let wan = |copies: f64| transfer_s(copies * inputs.model_bytes, inputs.wan_mbit);
    let local = |copies: f64| transfer_s(copies * inputs.model_bytes, inputs.campus_mbit);
    let rtt = inputs.rtt_ms / 1000.0;
    let (aggregation, wan_copies, fit, eval, trainers) = if !edge_campuses.is_empty() {
        // K edge aggregators and D direct clients, all sampled by the
        // cloud; each edge forwards to its s_c sampled clients (and all its
        // clients for evaluate) once the copy from the cloud is in.
        let (mut up, mut fan_fit, mut fan_eval, mut trainers) = (0.0, 0.0f64, 0.0f64, 0.0);
        for c in &inputs.campuses {
            if edge_campuses.contains(&c.name) {
                up += 1.0;
                let s_c = sampled(c.clients, inputs.fraction_fit, inputs.min_fit) as f64;
                fan_fit = fan_fit.max(s_c);
                fan_eval = fan_eval.max(c.clients as f64);
                trainers += s_c;
            } else {
                up += c.clients as f64;
                trainers += c.clients as f64;
            }
        }
        let (fit, eval) = (wan(up) + local(fan_fit), wan(up) + local(fan_eval));
        (Aggregation::Hierarchical, 3.0 * up, fit, eval, trainers)
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
        (Aggregation::Flat, 2.0 * s + n, fit, eval, s)
    };
    Prediction {
        aggregation,
        edge_campuses: edge_campuses.to_vec(),
        round_s: 3.0 * rtt + 2.0 * fit + training_s(inputs, trainers) + eval,
        wan_bytes: wan_copies * inputs.model_bytes,
    }
}

/// The plan of a job: what was asked, the option chosen, every option
/// considered and the inputs with their sources (the record's `plan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// What the intent asked for (`auto`: the MLFO chose).
    #[serde(default = "auto")]
    pub requested: Aggregation,
    /// The option chosen.
    pub chosen: Aggregation,
    /// The campuses that aggregate locally in the chosen option.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_campuses: Vec<String>,
    /// Every option, with its prediction.
    pub options: Vec<Prediction>,
    /// The inputs, each with its source.
    pub inputs: Vec<Figure>,
}

fn auto() -> Aggregation {
    Aggregation::Auto
}

/// Most campuses with an edge aggregator whose every combination `choose`
/// predicts (2^12 options); beyond, it weighs all or none of them.
pub const MAX_COMBINED_CAMPUSES: usize = 12;

/// Every option, each as the list of campuses that aggregate locally:
/// flat (none), and every combination of the campuses with an edge
/// aggregator (only none and all beyond [`MAX_COMBINED_CAMPUSES`]).
fn candidates(inputs: &Inputs) -> Vec<Vec<String>> {
    let edges: Vec<String> = inputs
        .campuses
        .iter()
        .filter(|c| c.edge_aggregator)
        .map(|c| c.name.clone())
        .collect();
    if edges.len() > MAX_COMBINED_CAMPUSES {
        return vec![Vec::new(), edges];
    }
    (0..1u32 << edges.len())
        .map(|mask| {
            edges
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, name)| name.clone())
                .collect()
        })
        .collect()
}

/// Orders two options: the lower predicted round time, then fewer
/// wide-area bytes, then fewer edge aggregators (no host busy for nothing).
fn better(a: &Prediction, b: &Prediction) -> std::cmp::Ordering {
    let near = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
    if !near(a.round_s, b.round_s) {
        a.round_s.total_cmp(&b.round_s)
    } else if !near(a.wan_bytes, b.wan_bytes) {
        a.wan_bytes.total_cmp(&b.wan_bytes)
    } else {
        a.edge_campuses.len().cmp(&b.edge_campuses.len())
    }
}

/// Predicts every option (flat, and every combination of the campuses
/// that have an edge aggregator) and picks the best that `aggregation`
/// allows: for `auto` any, by [`better`]; for `flat` and `hierarchical`
/// the one they name, the others kept to compare. Returns the pick, the
/// fastest option overall, and every option, flat first.
pub fn choose(
    inputs: &Inputs,
    aggregation: Aggregation,
) -> (Prediction, Prediction, Vec<Prediction>) {
    let options: Vec<Prediction> = candidates(inputs)
        .iter()
        .map(|edges| predict(inputs, edges))
        .collect();
    let all_edges = inputs.campuses.iter().filter(|c| c.edge_aggregator).count();
    let allowed = |p: &&Prediction| match aggregation {
        Aggregation::Auto => true,
        Aggregation::Flat => p.edge_campuses.is_empty(),
        Aggregation::Hierarchical => p.edge_campuses.len() == all_edges,
    };
    let flat = || predict(inputs, &[]);
    let pick = options
        .iter()
        .filter(allowed)
        .min_by(|a, b| better(a, b))
        .cloned()
        .unwrap_or_else(flat);
    let fastest = options
        .iter()
        .min_by(|a, b| better(a, b))
        .cloned()
        .unwrap_or_else(flat);
    (pick, fastest, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cohort of `sizes` clients per campus, each campus with an edge
    /// aggregator, the MLP (199,210 parameters), fracfit 0.5.
    fn cohort(sizes: &[usize], wan_mbit: f64, rtt_ms: f64) -> Inputs {
        Inputs {
            model_bytes: 199_210.0 * 4.0,
            fraction_fit: 0.5,
            min_fit: 1,
            campuses: sizes
                .iter()
                .enumerate()
                .map(|(n, &clients)| Campus {
                    name: format!("campus{}", n + 1),
                    clients,
                    edge_aggregator: true,
                })
                .collect(),
            wan_mbit,
            rtt_ms,
            campus_mbit: 500.0,
            train_s: 1.0,
            parallel: None,
        }
    }

    /// The seed cohort: 50 clients, 10 on each of 5 campuses.
    fn seed(wan_mbit: f64, rtt_ms: f64) -> Inputs {
        cohort(&[10; 5], wan_mbit, rtt_ms)
    }

    #[test]
    fn a_slow_satellite_makes_hierarchical_the_choice() {
        let (chosen, _, options) = choose(&seed(20.0, 48.0), Aggregation::Auto);
        assert_eq!(chosen.aggregation, Aggregation::Hierarchical);
        assert_eq!(chosen.edge_campuses.len(), 5, "{chosen:?}");
        assert_eq!(options.len(), 32, "every combination of 5 campuses");
        let (flat, hier) = (&options[0], &options[31]);
        assert_eq!(flat.wan_bytes, 100.0 * 796_840.0, "25 + 25 + 50 copies");
        assert_eq!(hier.wan_bytes, 15.0 * 796_840.0, "5 + 5 + 5 copies");
        assert!(flat.round_s > 4.0 * hier.round_s, "{options:?}");
    }

    #[test]
    fn a_fast_direct_path_makes_flat_the_choice() {
        let (chosen, _, options) = choose(&seed(10_000.0, 0.0), Aggregation::Auto);
        assert_eq!(chosen.aggregation, Aggregation::Flat, "{options:?}");
        assert!(chosen.edge_campuses.is_empty());
        assert!(options[0].round_s < options[31].round_s);
    }

    #[test]
    fn a_campus_of_one_client_gains_nothing_from_its_own_aggregator() {
        let (chosen, _, options) =
            choose(&cohort(&[10, 10, 10, 10, 1], 20.0, 48.0), Aggregation::Auto);
        assert_eq!(chosen.aggregation, Aggregation::Hierarchical);
        assert_eq!(
            chosen.edge_campuses,
            ["campus1", "campus2", "campus3", "campus4"],
            "{options:?}"
        );
    }

    #[test]
    fn a_fixed_aggregation_is_picked_and_the_others_still_predicted() {
        let inputs = seed(20.0, 48.0);
        let (flat, fastest, options) = choose(&inputs, Aggregation::Flat);
        assert_eq!((flat.aggregation, options.len()), (Aggregation::Flat, 32));
        assert_eq!(
            fastest.edge_campuses.len(),
            5,
            "auto would aggregate on every campus"
        );
        let (hier, _, _) = choose(&inputs, Aggregation::Hierarchical);
        assert_eq!(
            (hier.aggregation, hier.edge_campuses.len()),
            (Aggregation::Hierarchical, 5)
        );
        let (asked, fastest, _) = choose(&seed(10_000.0, 0.0), Aggregation::Hierarchical);
        assert_eq!(
            asked.edge_campuses.len(),
            5,
            "asked for, even where flat is faster"
        );
        assert_eq!(fastest.aggregation, Aggregation::Flat);
    }

    #[test]
    fn clients_sharing_cores_train_slower_together() {
        let alone = predict(&seed(10_000.0, 0.0), &[]);
        let shared = predict(
            &Inputs {
                parallel: Some(2.0),
                ..seed(10_000.0, 0.0)
            },
            &[],
        );
        // 25 sampled clients on 2 at a time: 12.5 times the training time.
        assert!(
            (shared.round_s - alone.round_s - 11.5).abs() < 1e-9,
            "{alone:?} {shared:?}"
        );
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
        let (chosen, _, options) = choose(&no_edges, Aggregation::Auto);
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
