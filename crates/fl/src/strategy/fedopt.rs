//! Adaptive server optimisers (Reddi et al., "Adaptive Federated
//! Optimization", 2021): FedAdam, FedYogi, FedAdagrad. The FedAvg result
//! minus the current model is the pseudo-gradient `delta`; the server keeps
//! moments `m` and `v` and steps `w += eta * m / (sqrt(v) + tau)`.

use super::{AggregateError, FedOptParams, Strategy};
use crate::tensor::Tensor;

/// Which second-moment rule the optimiser uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FedOptKind {
    /// `v = beta2 * v + (1 - beta2) * delta^2`, with Adam's bias correction.
    Adam,
    /// `v = v - (1 - beta2) * delta^2 * sign(v - delta^2)`.
    Yogi,
    /// `v = v + delta^2`.
    Adagrad,
}

/// FedAdam, FedYogi or FedAdagrad.
#[derive(Debug, Clone)]
pub struct FedOpt {
    kind: FedOptKind,
    params: FedOptParams,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    step: i32,
}

impl FedOpt {
    /// A fresh optimiser (moments start at zero).
    pub fn new(kind: FedOptKind, params: FedOptParams) -> Self {
        Self {
            kind,
            params,
            m: Vec::new(),
            v: Vec::new(),
            step: 0,
        }
    }
}

impl Strategy for FedOpt {
    fn name(&self) -> &'static str {
        match self.kind {
            FedOptKind::Adam => "fedadam",
            FedOptKind::Yogi => "fedyogi",
            FedOptKind::Adagrad => "fedadagrad",
        }
    }

    fn aggregate_mean(
        &mut self,
        current: &[Tensor],
        averaged: Vec<Tensor>,
    ) -> Result<Vec<Tensor>, AggregateError> {
        if self.m.len() != current.len() {
            self.m = current.iter().map(|t| vec![0.0; t.len()]).collect();
            self.v = self.m.clone();
            self.step = 0;
        }
        self.step += 1;
        let FedOptParams {
            eta,
            beta_1,
            beta_2,
            tau,
        } = self.params;
        let eta = if self.kind == FedOptKind::Adam {
            eta * (1.0 - beta_2.powi(self.step)).sqrt() / (1.0 - beta_1.powi(self.step))
        } else {
            eta
        };
        let mut next = Vec::with_capacity(current.len());
        for (t, (w, avg)) in current.iter().zip(&averaged).enumerate() {
            let (m, v) = (&mut self.m[t], &mut self.v[t]);
            let mut data = Vec::with_capacity(w.len());
            for i in 0..w.len() {
                let delta = avg.data[i] - w.data[i];
                let d2 = delta * delta;
                m[i] = beta_1 * m[i] + (1.0 - beta_1) * delta;
                v[i] = match self.kind {
                    FedOptKind::Adam => beta_2 * v[i] + (1.0 - beta_2) * d2,
                    FedOptKind::Yogi => v[i] - (1.0 - beta_2) * d2 * (v[i] - d2).signum(),
                    FedOptKind::Adagrad => v[i] + d2,
                };
                data.push(w.data[i] + eta * m[i] / (v[i].sqrt() + tau));
            }
            next.push(Tensor {
                shape: w.shape.clone(),
                data,
            });
        }
        Ok(next)
    }
}
