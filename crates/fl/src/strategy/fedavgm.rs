//! FedAvgM (Hsu et al., 2019): FedAvg with server momentum on the
//! pseudo-gradient `current - fedavg(results)`.

use super::{AggregateError, Strategy, aggregate};
use crate::tensor::Tensor;

/// FedAvg with server learning rate and momentum.
#[derive(Debug, Clone)]
pub struct FedAvgM {
    server_lr: f32,
    momentum: f32,
    velocity: Option<Vec<Tensor>>,
}

impl FedAvgM {
    /// FedAvgM with the given server learning rate and momentum.
    pub fn new(server_lr: f32, momentum: f32) -> Self {
        Self {
            server_lr,
            momentum,
            velocity: None,
        }
    }
}

impl Strategy for FedAvgM {
    fn name(&self) -> &'static str {
        "fedavgm"
    }

    fn aggregate_mean(
        &mut self,
        current: &[Tensor],
        averaged: Vec<Tensor>,
    ) -> Result<Vec<Tensor>, AggregateError> {
        let gradient = aggregate::difference(current, &averaged);
        let velocity = match self.velocity.take() {
            None => gradient,
            Some(mut v) => {
                for (vt, gt) in v.iter_mut().zip(&gradient) {
                    for (a, g) in vt.data.iter_mut().zip(&gt.data) {
                        *a = self.momentum * *a + g;
                    }
                }
                v
            }
        };
        let next = current
            .iter()
            .zip(&velocity)
            .map(|(w, v)| Tensor {
                shape: w.shape.clone(),
                data: w
                    .data
                    .iter()
                    .zip(&v.data)
                    .map(|(a, b)| a - self.server_lr * b)
                    .collect(),
            })
            .collect();
        self.velocity = Some(velocity);
        Ok(next)
    }
}
