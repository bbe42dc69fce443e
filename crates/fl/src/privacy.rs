//! Differential privacy, after Flower's wrappers.
//!
//! Central (server-side) DP wraps any strategy ([`ServerDp::wrap`]): each
//! client's update (its model minus the global one) is clipped to an L2
//! norm, the inner strategy aggregates the clipped models, and Gaussian
//! noise of standard deviation `noise_multiplier x clipping_norm / m` (m
//! results) is added to the aggregate, as Flower's
//! `DifferentialPrivacyServerSideFixedClipping` ([`ServerDp::check`], then
//! [`CheckedDp::wrap`]). With `adaptive` the norm
//! follows a quantile of the clients' update norms (Andrew et al., 2021,
//! Flower's `...AdaptiveClipping`): after each round it is multiplied by
//! `exp(-clip_norm_lr x (b - target_clipped_quantile))`, where `b` is the
//! noised share of updates that were within the norm.
//!
//! Local (client-side) DP wraps a trainer ([`LocalDpTrainer`], Flower's
//! `LocalDpMod`): the client clips its update to `clipping_norm` and adds
//! Gaussian noise of standard deviation
//! `clipping_norm x sqrt(2 ln(1.25 / delta)) / epsilon` to every parameter
//! before it sends it, so each update is (epsilon, delta)-DP on its own.

use crate::strategy::{AggregateError, FitResult, Strategy};
use crate::{Config, EvaluateOutcome, FitOutcome, Tensor, Trainer, TrainerError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Central differential privacy of an FL server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDp {
    /// Noise standard deviation in units of the clipping norm per result
    /// (0: clipping only).
    pub noise_multiplier: f64,
    /// L2 norm each client update is clipped to (with `adaptive`: the
    /// first round's).
    pub clipping_norm: f64,
    /// Adapt the norm to `target_clipped_quantile` of the update norms.
    #[serde(default)]
    pub adaptive: bool,
    /// Share of updates the adaptive norm aims to leave unclipped.
    #[serde(default = "default_quantile")]
    pub target_clipped_quantile: f64,
    /// Learning rate of the adaptive norm.
    #[serde(default = "default_clip_lr")]
    pub clip_norm_lr: f64,
    /// Noise on the count of unclipped updates (adaptive; default: the
    /// sampled clients / 20, as Flower's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_count_stddev: Option<f64>,
}

fn default_quantile() -> f64 {
    0.5
}

fn default_clip_lr() -> f64 {
    0.2
}

/// Largest noise multiplier taken (far beyond any useful model).
pub const MAX_NOISE_MULTIPLIER: f64 = 1e4;
/// Largest clipping norm taken.
pub const MAX_CLIPPING_NORM: f64 = 1e6;

impl ServerDp {
    /// Fixed clipping at `clipping_norm` with `noise_multiplier`.
    pub fn fixed(noise_multiplier: f64, clipping_norm: f64) -> Self {
        Self {
            noise_multiplier,
            clipping_norm,
            adaptive: false,
            target_clipped_quantile: default_quantile(),
            clip_norm_lr: default_clip_lr(),
            clipped_count_stddev: None,
        }
    }

    /// Checks every field for `sampled` clients per round; the error
    /// names the field (to be prefixed by the caller) and its range.
    pub fn check(&self, sampled: usize) -> Result<CheckedDp, String> {
        let in_range = |name: &str, v: f64, lo: f64, hi: f64, lo_open: bool| {
            let ok = v.is_finite() && v <= hi && (v > lo || (!lo_open && v == lo));
            let bound = if lo_open { "(" } else { "[" };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{name}: must be a number in {bound}{lo}, {hi}], got {v}"
                ))
            }
        };
        in_range(
            "noise_multiplier",
            self.noise_multiplier,
            0.0,
            MAX_NOISE_MULTIPLIER,
            false,
        )?;
        in_range(
            "clipping_norm",
            self.clipping_norm,
            0.0,
            MAX_CLIPPING_NORM,
            true,
        )?;
        let (count_stddev, noise_multiplier) = if self.adaptive {
            in_range(
                "target_clipped_quantile",
                self.target_clipped_quantile,
                0.0,
                1.0,
                false,
            )?;
            in_range("clip_norm_lr", self.clip_norm_lr, 0.0, 10.0, false)?;
            if let Some(s) = self.clipped_count_stddev {
                in_range("clipped_count_stddev", s, 0.0, 1e6, false)?;
            }
            self.adaptive_noise(sampled)?
        } else {
            (0.0, self.noise_multiplier)
        };
        Ok(CheckedDp {
            settings: self.clone(),
            count_stddev,
            noise_multiplier,
        })
    }

    /// The adaptive mode's count noise and the noise multiplier left for
    /// the model once the count's share of the budget is taken (Flower's
    /// `compute_adaptive_noise_params`).
    fn adaptive_noise(&self, sampled: usize) -> Result<(f64, f64), String> {
        let z = self.noise_multiplier;
        if z == 0.0 {
            return Ok((self.clipped_count_stddev.unwrap_or(0.0), 0.0));
        }
        let count = self
            .clipped_count_stddev
            .unwrap_or(sampled.max(1) as f64 / 20.0);
        if z >= 2.0 * count {
            return Err(format!(
                "clipped_count_stddev: {count} (default: the {sampled} sampled clients / 20) is too low \
                 for noise_multiplier {z}; it must be over noise_multiplier / 2: raise it, or lower noise_multiplier"
            ));
        }
        Ok((count, (z.powi(-2) - (2.0 * count).powi(-2)).powf(-0.5)))
    }
}

/// Central DP settings that passed [`ServerDp::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedDp {
    settings: ServerDp,
    count_stddev: f64,
    noise_multiplier: f64,
}

impl CheckedDp {
    /// The settings as given.
    pub fn settings(&self) -> &ServerDp {
        &self.settings
    }

    /// `inner` with this central DP, its noise drawn from `seed`.
    pub fn wrap(&self, inner: Box<dyn Strategy>, seed: u64) -> Box<dyn Strategy> {
        Box::new(CentralDp {
            inner,
            settings: self.settings.clone(),
            clipping_norm: self.settings.clipping_norm,
            noise_multiplier: self.noise_multiplier,
            count_stddev: self.count_stddev,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x4450_5345_5256),
        })
    }
}

/// The L2 norm of `params - global` over every tensor.
pub fn update_norm(params: &[Tensor], global: &[Tensor]) -> f64 {
    params
        .iter()
        .zip(global)
        .flat_map(|(p, g)| p.data.iter().zip(&g.data))
        .map(|(w, w0)| f64::from(w - w0).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Scales `params - global` down to L2 norm `norm` when it is longer;
/// whether it was within the norm already.
pub fn clip_update(params: &mut [Tensor], global: &[Tensor], norm: f64) -> bool {
    let length = update_norm(params, global);
    if length <= norm {
        return true;
    }
    let scale = (norm / length) as f32;
    for (p, g) in params.iter_mut().zip(global) {
        for (w, w0) in p.data.iter_mut().zip(&g.data) {
            *w = w0 + (*w - w0) * scale;
        }
    }
    false
}

/// Adds Gaussian noise of standard deviation `std` to every parameter.
fn add_noise(params: &mut [Tensor], std: f64, rng: &mut ChaCha8Rng) -> Result<(), String> {
    if std == 0.0 {
        return Ok(());
    }
    let noise = Normal::new(0.0, std).map_err(|e| format!("noise: {e}"))?;
    for p in params {
        for w in &mut p.data {
            *w += noise.sample(rng) as f32;
        }
    }
    Ok(())
}

/// A strategy under central DP.
struct CentralDp {
    inner: Box<dyn Strategy>,
    settings: ServerDp,
    /// This round's norm.
    clipping_norm: f64,
    noise_multiplier: f64,
    count_stddev: f64,
    rng: ChaCha8Rng,
}

impl Strategy for CentralDp {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn fit_config(&self) -> Config {
        self.inner.fit_config()
    }

    fn mean_based(&self) -> bool {
        false
    }

    fn keeps_round(&self, completed: usize, failed: usize) -> Result<(), String> {
        self.inner.keeps_round(completed, failed)
    }

    fn aggregate_fit(
        &mut self,
        current: &[Tensor],
        results: &[FitResult],
    ) -> Result<Vec<Tensor>, AggregateError> {
        if results.is_empty() {
            return Err(AggregateError::NoResults);
        }
        let norm = self.clipping_norm;
        let mut unclipped = 0usize;
        let clipped: Vec<FitResult> = results
            .iter()
            .map(|r| {
                let mut r = r.clone();
                unclipped += usize::from(clip_update(&mut r.parameters, current, norm));
                r
            })
            .collect();
        let mut next = self.inner.aggregate_fit(current, &clipped)?;
        let m = results.len() as f64;
        let std = self.noise_multiplier * norm / m;
        if let Err(e) = add_noise(&mut next, std, &mut self.rng) {
            tracing::warn!("central DP: {e}");
        }
        if self.settings.adaptive {
            let count = unclipped as f64
                + if self.count_stddev > 0.0 {
                    Normal::new(0.0, self.count_stddev).map_or(0.0, |n| n.sample(&mut self.rng))
                } else {
                    0.0
                };
            let share = count / m;
            let lr = self.settings.clip_norm_lr;
            let target = self.settings.target_clipped_quantile;
            self.clipping_norm =
                (norm * (-lr * (share - target)).exp()).clamp(1e-12, MAX_CLIPPING_NORM);
        }
        tracing::info!(
            clipping_norm = norm,
            next_clipping_norm = self.clipping_norm,
            noise_std = std,
            unclipped,
            results = results.len(),
            "central DP round"
        );
        Ok(next)
    }
}

/// Local differential privacy of one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalDp {
    /// L2 norm the update is clipped to (also the noise's sensitivity).
    pub clipping_norm: f64,
    /// Privacy budget epsilon of each update.
    pub epsilon: f64,
    /// Privacy budget delta of each update.
    pub delta: f64,
}

impl LocalDp {
    /// Checks every field; the error names it.
    pub fn check(&self) -> Result<(), String> {
        if !(self.clipping_norm.is_finite()
            && self.clipping_norm > 0.0
            && self.clipping_norm <= MAX_CLIPPING_NORM)
        {
            return Err(format!(
                "clipping_norm: must be a number in (0, {MAX_CLIPPING_NORM}], got {}",
                self.clipping_norm
            ));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0 && self.epsilon <= 1e4) {
            return Err(format!(
                "epsilon: must be a number in (0, 10000], got {}",
                self.epsilon
            ));
        }
        if !(self.delta.is_finite() && self.delta > 0.0 && self.delta < 1.0) {
            return Err(format!(
                "delta: must be a number in (0, 1), got {}",
                self.delta
            ));
        }
        Ok(())
    }

    /// The Gaussian mechanism's standard deviation for these budgets.
    pub fn noise_std(&self) -> f64 {
        self.clipping_norm * (2.0 * (1.25 / self.delta).ln()).sqrt() / self.epsilon
    }
}

/// A trainer whose fits are locally differentially private.
pub struct LocalDpTrainer<T> {
    inner: T,
    dp: LocalDp,
    rng: ChaCha8Rng,
}

impl<T> LocalDpTrainer<T> {
    /// `inner` under `dp` (checked), its noise drawn from `seed`.
    pub fn new(inner: T, dp: LocalDp, seed: u64) -> Result<Self, String> {
        dp.check()?;
        Ok(Self {
            inner,
            dp,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x4c44_5044_5050),
        })
    }
}

impl<T: Trainer> Trainer for LocalDpTrainer<T> {
    fn get_parameters(&mut self, config: &Config) -> Result<Vec<Tensor>, TrainerError> {
        self.inner.get_parameters(config)
    }

    fn fit(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<FitOutcome, TrainerError> {
        let global = parameters.clone();
        let mut out = self.inner.fit(parameters, config)?;
        clip_update(&mut out.parameters, &global, self.dp.clipping_norm);
        add_noise(&mut out.parameters, self.dp.noise_std(), &mut self.rng)
            .map_err(TrainerError::msg)?;
        Ok(out)
    }

    fn evaluate(
        &mut self,
        parameters: Vec<Tensor>,
        config: &Config,
    ) -> Result<EvaluateOutcome, TrainerError> {
        self.inner.evaluate(parameters, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::FedAvg;

    fn result(values: &[f32]) -> FitResult {
        FitResult {
            client: String::new(),
            parameters: vec![Tensor::new(vec![values.len()], values.to_vec()).unwrap()],
            num_examples: 10,
            metrics: Config::new(),
        }
    }

    fn zeros(n: usize) -> Vec<Tensor> {
        vec![Tensor::zeros(vec![n])]
    }

    #[test]
    fn an_update_longer_than_the_norm_is_scaled_to_it_and_a_short_one_is_kept() {
        let global = vec![Tensor::new(vec![2], vec![1.0, 1.0]).unwrap()];
        let mut long = vec![Tensor::new(vec![2], vec![4.0, 5.0]).unwrap()];
        assert!(!clip_update(&mut long, &global, 1.0));
        assert!((update_norm(&long, &global) - 1.0).abs() < 1e-6);
        assert!((long[0].data[0] - 1.6).abs() < 1e-6 && (long[0].data[1] - 1.8).abs() < 1e-6);
        let mut short = vec![Tensor::new(vec![2], vec![1.3, 1.4]).unwrap()];
        assert!(clip_update(&mut short, &global, 1.0));
        assert_eq!(short[0].data, vec![1.3, 1.4]);
    }

    #[test]
    fn fixed_clipping_without_noise_is_fedavg_of_the_clipped_updates() {
        let dp = ServerDp::fixed(0.0, 1.0);
        let mut s = dp.check(2).unwrap().wrap(Box::new(FedAvg), 0);
        assert!(!s.mean_based(), "each update is clipped on its own");
        let next = s
            .aggregate_fit(&zeros(2), &[result(&[3.0, 4.0]), result(&[0.0, 0.5])])
            .unwrap();
        // (0.6, 0.8) and (0, 0.5), averaged.
        assert!((next[0].data[0] - 0.3).abs() < 1e-6, "{:?}", next[0].data);
        assert!((next[0].data[1] - 0.65).abs() < 1e-6, "{:?}", next[0].data);
    }

    #[test]
    fn the_central_noise_has_the_standard_deviation_flower_gives_it() {
        // noise_multiplier 2, norm 0.5, 4 results: std 2 x 0.5 / 4 = 0.25.
        let mut s = ServerDp::fixed(2.0, 0.5)
            .check(4)
            .unwrap()
            .wrap(Box::new(FedAvg), 7);
        let n = 20_000;
        let results: Vec<FitResult> = (0..4).map(|_| result(&vec![0.0; n])).collect();
        let next = s.aggregate_fit(&zeros(n), &results).unwrap();
        let mean = next[0].data.iter().map(|&w| f64::from(w)).sum::<f64>() / n as f64;
        let var = next[0]
            .data
            .iter()
            .map(|&w| (f64::from(w) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var.sqrt() - 0.25).abs() < 0.01, "std {}", var.sqrt());
    }

    #[test]
    fn the_adaptive_norm_moves_towards_the_quantile_of_the_update_norms() {
        let dp = ServerDp {
            adaptive: true,
            ..ServerDp::fixed(0.0, 0.1)
        };
        let mut s = dp.check(10).unwrap().wrap(Box::new(FedAvg), 1);
        // Update norms 1..=10: the median is about 5.5.
        let results: Vec<FitResult> = (1..=10).map(|k| result(&[k as f32])).collect();
        let mut last = 0.0;
        for _ in 0..200 {
            let next = s.aggregate_fit(&zeros(1), &results).unwrap();
            last = f64::from(next[0].data[0]);
        }
        // FedAvg of the clipped updates: with the norm near the median, five
        // are clipped to it and five are kept: mean (1+..+5 + 5 x c) / 10.
        assert!((4.0..=5.5).contains(&last), "aggregate {last}");
    }

    #[test]
    fn bad_settings_name_the_field() {
        let e = ServerDp::fixed(-1.0, 1.0).check(10).unwrap_err();
        assert!(e.starts_with("noise_multiplier:"), "{e}");
        let e = ServerDp::fixed(1.0, 0.0).check(10).unwrap_err();
        assert!(e.starts_with("clipping_norm:"), "{e}");
        let e = ServerDp::fixed(1.0, f64::NAN).check(10).unwrap_err();
        assert!(e.starts_with("clipping_norm:"), "{e}");
        // Flower's default count noise for 10 clients is 0.5: too low for z = 1.
        let adaptive = ServerDp {
            adaptive: true,
            ..ServerDp::fixed(1.0, 0.1)
        };
        let e = adaptive.check(10).unwrap_err();
        assert!(e.starts_with("clipped_count_stddev:"), "{e}");
        assert!(adaptive.check(100).is_ok(), "5 is over 1 / 2");
        let local = LocalDp {
            clipping_norm: 1.0,
            epsilon: 0.0,
            delta: 1e-5,
        };
        assert!(local.check().unwrap_err().starts_with("epsilon:"));
    }

    struct Fixed(Vec<Tensor>);

    impl Trainer for Fixed {
        fn get_parameters(&mut self, _: &Config) -> Result<Vec<Tensor>, TrainerError> {
            Ok(self.0.clone())
        }
        fn fit(&mut self, _: Vec<Tensor>, _: &Config) -> Result<FitOutcome, TrainerError> {
            Ok(FitOutcome {
                parameters: self.0.clone(),
                num_examples: 1,
                metrics: Config::new(),
            })
        }
        fn evaluate(
            &mut self,
            _: Vec<Tensor>,
            _: &Config,
        ) -> Result<EvaluateOutcome, TrainerError> {
            Err(TrainerError::msg("unused"))
        }
    }

    #[test]
    fn a_local_dp_client_sends_its_clipped_update_plus_gaussian_noise() {
        let n = 20_000;
        let dp = LocalDp {
            clipping_norm: 1.0,
            epsilon: 10.0,
            delta: 1e-5,
        };
        let std = dp.noise_std();
        assert!((std - (2.0f64 * 125_000.0f64.ln()).sqrt() / 10.0).abs() < 1e-12);
        let mut t = LocalDpTrainer::new(
            Fixed(vec![Tensor::new(vec![n], vec![1.0; n]).unwrap()]),
            dp,
            3,
        )
        .unwrap();
        let out = t.fit(zeros(n), &Config::new()).unwrap();
        // The update (1, ..., 1) of norm sqrt(n) is clipped to norm 1: each
        // weight 1/sqrt(n) before the noise.
        let expected = 1.0 / (n as f64).sqrt();
        let data = &out.parameters[0].data;
        let mean = data.iter().map(|&w| f64::from(w)).sum::<f64>() / n as f64;
        let var = data
            .iter()
            .map(|&w| (f64::from(w) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!((mean - expected).abs() < 0.01, "mean {mean}");
        assert!(
            (var.sqrt() - std).abs() < 0.02 * std,
            "std {} vs {std}",
            var.sqrt()
        );
    }
}
