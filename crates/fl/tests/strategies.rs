//! Each strategy on a small example computed by hand.

use fl::Tensor;
use fl::strategy::{FedOptParams, FitResult, StrategyConfig};

fn model(values: &[f32]) -> Vec<Tensor> {
    vec![Tensor::new(vec![values.len()], values.to_vec()).unwrap()]
}

fn result(values: &[f32], n: u64) -> FitResult {
    FitResult {
        client: format!("c{n}"),
        parameters: model(values),
        num_examples: n,
        metrics: Default::default(),
    }
}

fn aggregate(cfg: StrategyConfig, current: &[f32], results: &[FitResult]) -> Vec<f32> {
    let mut s = cfg.build();
    s.aggregate_fit(&model(current), results).unwrap()[0]
        .data
        .clone()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} != {b:?}");
    }
}

#[test]
fn fedavg_weights_by_examples() {
    // (1*1 + 3*3) / 4 = 2.5 ; (2*1 + 6*3) / 4 = 5
    let r = [result(&[1.0, 2.0], 1), result(&[3.0, 6.0], 3)];
    close(
        &aggregate(StrategyConfig::Fedavg, &[0.0, 0.0], &r),
        &[2.5, 5.0],
    );
}

#[test]
fn fedprox_sends_mu_and_averages() {
    let cfg = StrategyConfig::Fedprox { proximal_mu: 0.1 };
    let s = cfg.build();
    assert_eq!(s.fit_config()["proximal_mu"], fl::Scalar::Double(0.1));
    let r = [result(&[2.0], 1), result(&[4.0], 1)];
    close(&aggregate(cfg, &[0.0], &r), &[3.0]);
}

#[test]
fn fedavgm_applies_server_momentum() {
    let mut s = StrategyConfig::Fedavgm {
        server_lr: 1.0,
        momentum: 0.5,
    }
    .build();
    // Round 1: current 0, average 2 -> gradient -2, v = -2, w = 2.
    let w1 = s
        .aggregate_fit(&model(&[0.0]), &[result(&[2.0], 1)])
        .unwrap();
    close(&w1[0].data, &[2.0]);
    // Round 2: current 2, average 3 -> gradient -1, v = 0.5*-2 + -1 = -2, w = 4.
    let w2 = s.aggregate_fit(&w1, &[result(&[3.0], 1)]).unwrap();
    close(&w2[0].data, &[4.0]);
}

#[test]
fn fedadam_yogi_adagrad_first_step() {
    let p = FedOptParams {
        eta: 0.1,
        beta_1: 0.9,
        beta_2: 0.99,
        tau: 0.0,
    };
    // delta = 1: m = 0.1, v = 0.01 (Adam), w = eta_t * 0.1 / 0.1.
    // Adam bias correction: eta_t = 0.1 * sqrt(1 - 0.99) / (1 - 0.9) = 0.1.
    close(
        &aggregate(
            StrategyConfig::Fedadam(p.clone()),
            &[0.0],
            &[result(&[1.0], 1)],
        ),
        &[0.1],
    );
    // Yogi: v = 0 - 0.01 * 1 * sign(0 - 1) = 0.01, w = 0.1 * 0.1 / 0.1 = 0.1.
    close(
        &aggregate(
            StrategyConfig::Fedyogi(p.clone()),
            &[0.0],
            &[result(&[1.0], 1)],
        ),
        &[0.1],
    );
    // Adagrad: v = 1, w = 0.1 * 0.1 / 1 = 0.01.
    close(
        &aggregate(StrategyConfig::Fedadagrad(p), &[0.0], &[result(&[1.0], 1)]),
        &[0.01],
    );
}

#[test]
fn fedmedian_is_coordinate_wise() {
    let r = [
        result(&[1.0, 10.0], 1),
        result(&[2.0, -5.0], 100),
        result(&[100.0, 0.0], 1),
    ];
    close(
        &aggregate(StrategyConfig::Fedmedian, &[0.0, 0.0], &r),
        &[2.0, 0.0],
    );
    let even = [result(&[1.0], 1), result(&[3.0], 1)];
    close(&aggregate(StrategyConfig::Fedmedian, &[0.0], &even), &[2.0]);
}

#[test]
fn trimmed_mean_cuts_both_ends() {
    // 5 clients, beta 0.2 -> cut 1 each end: mean of 2, 3, 4 = 3.
    let r: Vec<_> = [100.0, 2.0, 3.0, 4.0, -50.0]
        .iter()
        .map(|v| result(&[*v], 1))
        .collect();
    close(
        &aggregate(StrategyConfig::Fedtrimmedavg { beta: 0.2 }, &[0.0], &r),
        &[3.0],
    );
}

#[test]
fn krum_rejects_the_outlier() {
    let r = [
        result(&[1.0], 1),
        result(&[1.2], 1),
        result(&[0.9], 1),
        result(&[50.0], 1),
    ];
    // Scores with f=1 (neighbours n-f-2 = 1): the closest pair scores lowest:
    // 1.0 -> 0.01 (to 0.9), 1.2 -> 0.04, 0.9 -> 0.01, 50 -> 2381.44.
    let k = StrategyConfig::Krum {
        num_malicious: 1,
        num_to_keep: 1,
    };
    close(&aggregate(k, &[0.0], &r), &[1.0]);
    let multi = StrategyConfig::Krum {
        num_malicious: 1,
        num_to_keep: 3,
    };
    close(&aggregate(multi, &[0.0], &r), &[(1.0 + 1.2 + 0.9) / 3.0]);
}

#[test]
fn names_resolve_and_json_parses() {
    for name in &fl::strategy::STRATEGY_NAMES {
        let cfg = StrategyConfig::from_name(name).unwrap();
        assert_eq!(cfg.build().name(), *name);
    }
    assert!(StrategyConfig::from_name("fedsgd").is_none());
    let cfg: StrategyConfig =
        serde_json::from_str(r#"{"name": "fedtrimmedavg", "beta": 0.1}"#).unwrap();
    assert_eq!(cfg, StrategyConfig::Fedtrimmedavg { beta: 0.1 });
}

#[test]
fn empty_results_are_an_error() {
    let mut s = StrategyConfig::Fedavg.build();
    assert!(s.aggregate_fit(&model(&[0.0]), &[]).is_err());
}

#[test]
fn the_running_mean_equals_the_weighted_mean_and_falls_back_to_plain() {
    use fl::strategy::aggregate::{MeanAccumulator, weighted_mean};
    let a = model(&[1.0, 2.0, -4.0]);
    let b = model(&[3.0, 6.0, 8.0]);
    let mut sum = MeanAccumulator::new(&[vec![3]]);
    assert!(sum.is_empty());
    sum.add(&a, 1);
    sum.add(&b, 3);
    assert_eq!(sum.len(), 2);
    let batch = weighted_mean(&[&a, &b], &[1, 3]);
    close(&sum.mean()[0].data, &batch[0].data);
    close(&batch[0].data, &[2.5, 5.0, 5.0]);
    // No examples reported: every model counts the same.
    let mut none = MeanAccumulator::new(&[vec![3]]);
    none.add(&a, 0);
    none.add(&b, 0);
    close(&none.mean()[0].data, &[2.0, 4.0, 2.0]);
}

#[test]
fn mean_based_strategies_give_the_same_model_from_the_running_mean() {
    use fl::strategy::aggregate::MeanAccumulator;
    let results = [result(&[1.0, 2.0], 1), result(&[3.0, 6.0], 3)];
    for name in &fl::strategy::STRATEGY_NAMES {
        let cfg = StrategyConfig::from_name(name).unwrap();
        let (mut batch, mut streamed) = (cfg.build(), cfg.build());
        if !streamed.mean_based() {
            assert!(
                ["fedmedian", "fedtrimmedavg", "krum", "bulyan"].contains(name),
                "{name} needs every result"
            );
            continue;
        }
        let current = model(&[0.5, -0.5]);
        // Two rounds, so that server state (momentum, moments) is compared too.
        for _ in 0..2 {
            let mut sum = MeanAccumulator::new(&[vec![2]]);
            for r in &results {
                sum.add(&r.parameters, r.num_examples);
            }
            let x = batch.aggregate_fit(&current, &results).unwrap();
            let y = streamed.aggregate_mean(&current, sum.mean()).unwrap();
            close(&x[0].data, &y[0].data);
        }
    }
}

#[test]
fn a_model_without_examples_counts_only_when_none_has_any() {
    use fl::strategy::aggregate::MeanAccumulator;
    let mut sum = MeanAccumulator::new(&[vec![1]]);
    sum.add(&model(&[10.0]), 0);
    sum.add(&model(&[2.0]), 2);
    sum.add(&model(&[100.0]), 0);
    close(&sum.mean()[0].data, &[2.0]);
}

mod selection {
    //! Median and trimmed mean select instead of sorting; a full sort is
    //! the reference.
    use fl::Tensor;
    use fl::strategy::aggregate::{median, trimmed_mean};
    use proptest::prelude::*;

    fn sorted(column: &[f32]) -> Vec<f32> {
        let mut v = column.to_vec();
        v.sort_unstable_by(f32::total_cmp);
        v
    }

    fn one_coordinate_models(column: &[f32]) -> Vec<Vec<Tensor>> {
        column
            .iter()
            .map(|v| vec![Tensor::new(vec![1], vec![*v]).unwrap()])
            .collect()
    }

    proptest! {
        #[test]
        fn select_agrees_with_a_full_sort(
            column in prop::collection::vec(-100.0f32..100.0, 1..40),
            trim_share in 0.0f64..0.5,
        ) {
            let models = one_coordinate_models(&column);
            let refs: Vec<&[Tensor]> = models.iter().map(Vec::as_slice).collect();
            let s = sorted(&column);
            let n = s.len();
            let want_median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
            prop_assert_eq!(median(&refs)[0].data[0], want_median);

            let trim = ((n as f64 * trim_share) as usize).min((n - 1) / 2);
            let kept = &s[trim..n - trim];
            let got = trimmed_mean(&refs, trim)[0].data[0];
            let want = kept.iter().sum::<f32>() / kept.len() as f32;
            prop_assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{} vs {}", got, want);
        }
    }
}

#[test]
fn bulyan_selects_with_krum_then_averages_around_the_median() {
    let values = [0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 50.0];
    let r: Vec<FitResult> = values.iter().map(|v| result(&[*v], 1)).collect();
    // f = 1: Krum picks n - 2f = 5 models one by one, 0.9..1.1 (the
    // outlier and 1.2 are left); then the n - 4f = 3 values closest to their
    // median 1.0: 0.95, 1.0, 1.05.
    let b = StrategyConfig::Bulyan { num_malicious: 1 };
    close(&aggregate(b.clone(), &[0.0], &r), &[1.0]);
    // It needs 4f + 3 results.
    let mut s = b.build();
    let e = s.aggregate_fit(&model(&[0.0]), &r[..6]).unwrap_err();
    assert_eq!(e.to_string(), "bulyan needs at least 7 results, got 6");
}

#[test]
fn fault_tolerant_fedavg_keeps_a_round_only_when_enough_fits_completed() {
    let s = StrategyConfig::Faulttolerantfedavg {
        min_completion_rate_fit: 0.5,
    }
    .build();
    assert!(s.keeps_round(2, 2).is_ok());
    let e = s.keeps_round(1, 3).unwrap_err();
    assert!(
        e.starts_with("1 of 4 fits completed, below min_completion_rate_fit 0.5"),
        "{e}"
    );
    assert!(s.mean_based(), "it averages as FedAvg does, streaming");
    let r = [result(&[1.0, 2.0], 1), result(&[3.0, 6.0], 3)];
    let cfg = StrategyConfig::from_name("FaultTolerantFedAvg").unwrap();
    close(&aggregate(cfg, &[0.0, 0.0], &r), &[2.5, 5.0]);
}
