//! Differential privacy an intent asks for: `dp: central | local | off`
//! with its parameters, and `privacylevel: medium`, which means central DP.

use crate::error::FieldError;
use crate::model::{Constraints, PrivacyLevel};
use serde::Serialize;

/// `dp`: which differential privacy a target asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DpKind {
    /// None.
    Off,
    /// Server side: updates clipped, noise added to the aggregate.
    Central,
    /// Client side: each update clipped and noised before it is sent.
    Local,
}

impl DpKind {
    /// Every kind.
    pub const ALL: [DpKind; 3] = [DpKind::Off, DpKind::Central, DpKind::Local];

    /// The kind as written in intents.
    pub fn as_str(self) -> &'static str {
        match self {
            DpKind::Off => "off",
            DpKind::Central => "central",
            DpKind::Local => "local",
        }
    }

    /// Parses a kind, ignoring case.
    pub fn from_name(name: &str) -> Option<DpKind> {
        DpKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// Noise multiplier of central DP when the intent does not set one.
pub const DEFAULT_NOISE_MULTIPLIER: f64 = 0.1;
/// Clipping norm of local DP when the intent does not set one.
pub const DEFAULT_LOCAL_CLIPPING_NORM: f64 = 1.0;
/// Epsilon of local DP when the intent does not set one.
pub const DEFAULT_EPSILON: f64 = 10.0;
/// Delta of local DP when the intent does not set one.
pub const DEFAULT_DELTA: f64 = 1e-5;

/// Differential privacy of a federated plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DifferentialPrivacy {
    /// Server side (Flower's `DifferentialPrivacyServerSide*Clipping`).
    Central {
        /// Noise standard deviation per result, in clipping norms.
        noise_multiplier: f64,
        /// Fixed clipping norm; `None`: adaptive clipping.
        #[serde(skip_serializing_if = "Option::is_none")]
        clipping_norm: Option<f64>,
    },
    /// Client side (Flower's `LocalDpMod`).
    Local {
        /// L2 norm each update is clipped to (the noise's sensitivity).
        clipping_norm: f64,
        /// Privacy budget of each update.
        epsilon: f64,
        /// Privacy budget of each update.
        delta: f64,
    },
}

/// The DP parameters of `c`, as written, with whether each is set.
fn params_set(c: &Constraints) -> [(&'static str, bool); 4] {
    [
        ("dp_noise_multiplier", c.dp_noise_multiplier.is_some()),
        ("dp_clipping_norm", c.dp_clipping_norm.is_some()),
        ("dp_epsilon", c.dp_epsilon.is_some()),
        ("dp_delta", c.dp_delta.is_some()),
    ]
}

/// The differential privacy of a target with constraints `c` and privacy
/// level `privacy` (at `path`, the constraints' path): `privacylevel:
/// medium` is central DP unless `dp` says local.
pub(crate) fn plan(
    c: &Constraints,
    privacy: PrivacyLevel,
    path: &str,
) -> Result<Option<DifferentialPrivacy>, FieldError> {
    let kind = match (privacy, c.dp) {
        (PrivacyLevel::Low, Some(DpKind::Central | DpKind::Local)) => {
            return Err(FieldError::new(
                format!("{path}.dp"),
                "must be off with privacylevel low: a centralised plan sends the data itself; \
                 use privacylevel high or medium for DP on the updates"
                    .to_owned(),
                c.dp.map_or("", DpKind::as_str).to_owned(),
            ));
        }
        (PrivacyLevel::Medium, Some(DpKind::Off)) => {
            return Err(FieldError::new(
                format!("{path}.dp"),
                "must be central or local with privacylevel medium (medium is federated learning \
                 with differential privacy); use privacylevel high for none"
                    .to_owned(),
                "off".to_owned(),
            ));
        }
        (PrivacyLevel::Medium, None) => DpKind::Central,
        (_, kind) => kind.unwrap_or(DpKind::Off),
    };
    let allowed: &[&str] = match kind {
        DpKind::Off => &[],
        DpKind::Central => &["dp_noise_multiplier", "dp_clipping_norm"],
        DpKind::Local => &["dp_clipping_norm", "dp_epsilon", "dp_delta"],
    };
    if let Some((name, _)) = params_set(c)
        .into_iter()
        .find(|(name, set)| *set && !allowed.contains(name))
    {
        let rule = match kind {
            DpKind::Off => {
                "applies only with dp: central or local (or privacylevel medium)".to_owned()
            }
            _ => format!(
                "does not apply to dp: {}; it takes {}",
                kind.as_str(),
                allowed.join(", ")
            ),
        };
        return Err(FieldError::new(
            format!("{path}.{name}"),
            rule,
            "set".to_owned(),
        ));
    }
    Ok(match kind {
        DpKind::Off => None,
        DpKind::Central => Some(DifferentialPrivacy::Central {
            noise_multiplier: c.dp_noise_multiplier.unwrap_or(DEFAULT_NOISE_MULTIPLIER),
            clipping_norm: c.dp_clipping_norm,
        }),
        DpKind::Local => Some(DifferentialPrivacy::Local {
            clipping_norm: c.dp_clipping_norm.unwrap_or(DEFAULT_LOCAL_CLIPPING_NORM),
            epsilon: c.dp_epsilon.unwrap_or(DEFAULT_EPSILON),
            delta: c.dp_delta.unwrap_or(DEFAULT_DELTA),
        }),
    })
}
