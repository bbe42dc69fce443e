//! The federated-aggregation intent the edge MLFO sends to the cloud MLFO over Mo-Mo.

use crate::model::{
    AGGREGATE_OPERAND, AGGREGATE_OPERATION, Constraints, Intent, PrivacyLevel, Target,
};
use crate::privacy::{DifferentialPrivacy, DpKind};
use crate::resolve::{ResolvedTarget, TrainingMode};

impl ResolvedTarget {
    /// The prototype's federated-aggregation intent for this target
    /// (`operation: aggregate.global`, `operand: model.federated`), with id
    /// `intent_id`. A centralised plan's intent says `privacylevel: low`, so
    /// that the cloud places a central trainer instead of an FL server.
    ///
    /// Its constraints carry the prototype's sourcekind, modelkind, avgalgo,
    /// fracfit, minfit, minav, numround and sameserv, plus every extension the
    /// plan holds, all explicit, so that resolving it yields the same plan.
    pub fn to_aggregate_intent(&self, intent_id: &str) -> Intent {
        let plan = self.plan.settings();
        let constraints = Constraints {
            privacy_level: match self.plan.mode() {
                TrainingMode::Federated => None,
                TrainingMode::Centralised => Some(PrivacyLevel::Low),
            },
            source_kind: Some(self.pipeline.src.kind),
            model_kind: Some(self.pipeline.model.kind),
            avg_algo: Some(plan.strategy.kind()),
            fraction_fit: Some(plan.fraction_fit),
            min_fit: Some(plan.min_fit),
            min_available: Some(plan.min_available),
            num_rounds: Some(plan.rounds),
            same_server: Some(plan.same_server),
            strategy_params: plan.strategy.params(),
            cohort: plan.cohort.clone(),
            local_epochs: Some(plan.local_epochs),
            batch_size: Some(plan.batch_size),
            learning_rate: Some(plan.learning_rate),
            target_accuracy: plan.target_accuracy,
            deadline_s: plan.deadline_s,
            max_bandwidth_mbps: plan.max_bandwidth_mbps,
            aggregation: Some(plan.aggregation),
            latency: None,
            ..dp_constraints(plan.privacy.as_ref())
        };
        Intent {
            intent_id: intent_id.to_owned(),
            targets: vec![Target {
                id: self.id.clone(),
                operation: AGGREGATE_OPERATION.to_owned(),
                operand: AGGREGATE_OPERAND.to_owned(),
                constraints,
            }],
        }
    }
}

/// The constraints that ask for `privacy` again, all explicit.
fn dp_constraints(privacy: Option<&DifferentialPrivacy>) -> Constraints {
    let (dp, dp_noise_multiplier, dp_clipping_norm, dp_epsilon, dp_delta) = match privacy {
        None => (DpKind::Off, None, None, None, None),
        Some(DifferentialPrivacy::Central {
            noise_multiplier,
            clipping_norm,
        }) => (
            DpKind::Central,
            Some(*noise_multiplier),
            *clipping_norm,
            None,
            None,
        ),
        Some(DifferentialPrivacy::Local {
            clipping_norm,
            epsilon,
            delta,
        }) => (
            DpKind::Local,
            None,
            Some(*clipping_norm),
            Some(*epsilon),
            Some(*delta),
        ),
    };
    Constraints {
        dp: privacy.map(|_| dp),
        dp_noise_multiplier,
        dp_clipping_norm,
        dp_epsilon,
        dp_delta,
        ..Constraints::default()
    }
}
