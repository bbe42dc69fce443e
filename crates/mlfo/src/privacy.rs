//! The differential privacy a plan asks for, as the node agents take it:
//! central DP on the cloud's FL server, local DP on every client.

use intent::FlPlan;
use intent::privacy::DifferentialPrivacy;

/// First clipping norm of adaptive clipping (Flower's default).
pub const INITIAL_ADAPTIVE_NORM: f64 = 0.1;

/// Clients a round of `plan` samples: what the FL server computes.
fn sampled(plan: &FlPlan) -> usize {
    let of_available = (plan.fraction_fit * f64::from(plan.min_available)).ceil() as usize;
    (plan.min_fit as usize).max(of_available)
}

/// The FL server's central DP for `plan`, if it asks for it: fixed
/// clipping at the intent's norm, else adaptive clipping from
/// [`INITIAL_ADAPTIVE_NORM`] with the count noise at least the noise
/// multiplier (Flower's default, sampled / 20, refuses a multiplier of
/// half that or more, which small cohorts hit).
pub fn server_dp(plan: &FlPlan) -> Option<fl::privacy::ServerDp> {
    let Some(DifferentialPrivacy::Central {
        noise_multiplier,
        clipping_norm,
    }) = plan.privacy
    else {
        return None;
    };
    Some(match clipping_norm {
        Some(norm) => fl::privacy::ServerDp::fixed(noise_multiplier, norm),
        None => fl::privacy::ServerDp {
            adaptive: true,
            clipped_count_stddev: Some((sampled(plan) as f64 / 20.0).max(noise_multiplier)),
            ..fl::privacy::ServerDp::fixed(noise_multiplier, INITIAL_ADAPTIVE_NORM)
        },
    })
}

/// Each client's local DP for `plan`, if it asks for it.
pub fn local_dp(plan: &FlPlan) -> Option<fl::privacy::LocalDp> {
    match plan.privacy {
        Some(DifferentialPrivacy::Local {
            clipping_norm,
            epsilon,
            delta,
        }) => Some(fl::privacy::LocalDp {
            clipping_norm,
            epsilon,
            delta,
        }),
        _ => None,
    }
}
