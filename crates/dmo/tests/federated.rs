//! Federated training that really learns: our server and 10 Rust clients
//! on Fashion-MNIST (Debian package `dataset-fashion-mnist`, which CI installs).

use std::path::Path;
use std::process::Command;

fn simulate(partition: &str, out: &Path) -> Vec<f64> {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").exists(),
        "Fashion-MNIST is missing: install it with `apt-get install dataset-fashion-mnist` (bash .ci/run does)"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_dmo"))
        .args([
            "fl",
            "simulate",
            "--clients",
            "10",
            "--rounds",
            "10",
            "--dataset",
            "fashion-mnist",
        ])
        .args([
            "--model",
            "mlp",
            "--fraction-fit",
            "1",
            "--local-epochs",
            "1",
            "--batch-size",
            "32",
        ])
        .args([
            "--learning-rate",
            "0.05",
            "--partition",
            partition,
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap();
    let rounds = h["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 10);
    for r in rounds {
        assert_eq!(r["fit"]["completed"], 10, "every client trains every round");
    }
    rounds
        .iter()
        .map(|r| r["central"]["metrics"]["accuracy"].as_f64().unwrap())
        .collect()
}

#[test]
fn iid_fashion_mnist_reaches_80_percent_within_10_rounds() {
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let acc = simulate("iid", dir.path());
    assert!(
        acc.iter().any(|a| *a >= 0.80),
        "test accuracy per round: {acc:?}"
    );
}

#[test]
fn label_shards_still_learn_round_over_round() {
    let _load = testkit::shared();
    let dir = tempfile::tempdir().unwrap();
    let acc = simulate("shards", dir.path());
    let early = acc[..3].iter().copied().fold(0.0, f64::max);
    let late = acc[7..].iter().copied().fold(0.0, f64::max);
    assert!(late > early + 0.05, "accuracy must rise: {acc:?}");
    assert!(acc[9] > acc[0], "{acc:?}");
}
