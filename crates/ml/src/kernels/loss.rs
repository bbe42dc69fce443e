//! Softmax cross-entropy fused into one pass per row, forward and backward
//! (PyTorch's `cross_entropy` with mean reduction).

/// The mean cross-entropy of `logits` (`[rows, classes]`, row-major)
/// against `labels`, and each row's softmax probabilities, which the
/// backward pass needs. Panics on a label outside `0..classes`.
pub fn softmax_cross_entropy(logits: &[f32], labels: &[i64], classes: usize) -> (f32, Vec<f32>) {
    assert_eq!(
        logits.len(),
        labels.len() * classes,
        "logits are not [{}, {classes}]",
        labels.len()
    );
    let mut probs = Vec::with_capacity(logits.len());
    let mut total = 0.0f64;
    for (row, &label) in logits.chunks_exact(classes.max(1)).zip(labels) {
        let label = usize::try_from(label)
            .ok()
            .filter(|&l| l < classes)
            .unwrap_or_else(|| panic!("label {label} is outside 0..{classes}"));
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let log_sum = max + sum.ln();
        total += f64::from(log_sum - row[label]);
        probs.extend(row.iter().map(|&v| (v - log_sum).exp()));
    }
    let mean = if labels.is_empty() {
        0.0
    } else {
        total / labels.len() as f64
    };
    (mean as f32, probs)
}

/// The logits' gradient given the mean loss's gradient `grad`:
/// `grad * (softmax - one_hot(label)) / rows`.
pub fn softmax_cross_entropy_backward(
    probs: &[f32],
    labels: &[i64],
    classes: usize,
    grad: f32,
) -> Vec<f32> {
    let scale = grad / labels.len().max(1) as f32;
    let mut out = Vec::with_capacity(probs.len());
    for (row, &label) in probs.chunks_exact(classes.max(1)).zip(labels) {
        out.extend(row.iter().enumerate().map(|(c, &p)| {
            let target = if c as i64 == label { 1.0 } else { 0.0 };
            scale * (p - target)
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(logits: &[f32], labels: &[i64]) -> f64 {
        f64::from(softmax_cross_entropy(logits, labels, 3).0)
    }

    #[test]
    fn loss_and_gradient_match_their_definitions() {
        let logits = [1.0, 2.0, 3.0, -1.0, 0.5, 0.0];
        let labels = [2, 0];
        let (mean, probs) = softmax_cross_entropy(&logits, &labels, 3);
        let row = |r: &[f32], l: usize| {
            let z: f32 = r.iter().map(|v| v.exp()).sum();
            (z.ln() - r[l]) as f64
        };
        let want = (row(&logits[..3], 2) + row(&logits[3..], 0)) / 2.0;
        assert!((f64::from(mean) - want).abs() < 1e-6);
        assert!((probs[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let grad = softmax_cross_entropy_backward(&probs, &labels, 3, 2.0);
        for i in 0..6 {
            let (mut up, mut down) = (logits, logits);
            up[i] += 1e-2;
            down[i] -= 1e-2;
            let numeric = 2.0 * (loss(&up, &labels) - loss(&down, &labels)) / 2e-2;
            assert!(
                (f64::from(grad[i]) - numeric).abs() < 1e-3,
                "{i}: {} vs {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let (mean, probs) = softmax_cross_entropy(&[1000.0, 0.0, -1000.0], &[0], 3);
        assert!(mean.abs() < 1e-6 && probs.iter().all(|p| p.is_finite()));
    }

    #[test]
    #[should_panic(expected = "label 3 is outside 0..3")]
    fn a_label_out_of_range_is_refused() {
        softmax_cross_entropy(&[0.0; 3], &[3], 3);
    }
}
