//! What the FL runtime's test modules share: small trainers on a problem
//! whose answer is known, and a loopback listener.

use fl::{Config, EvaluateOutcome, FitOutcome, Scalar, Tensor, Trainer, TrainerError};
use tokio::net::TcpListener;

/// Least squares on `y = 3x - 1`: one weight and one bias, plain gradient descent.
pub struct LineFit {
    xs: Vec<f32>,
}

impl LineFit {
    /// Twenty points from `offset` in steps of 0.1.
    pub fn new(offset: f32) -> Self {
        Self::sized(offset, 20)
    }

    /// `n` points from `offset` in steps of 0.1.
    pub fn sized(offset: f32, n: usize) -> Self {
        Self {
            xs: (0..n).map(|i| offset + i as f32 / 10.0).collect(),
        }
    }

    /// Mean squared error of `w x + b` on this client's points.
    pub fn loss(&self, w: f32, b: f32) -> f32 {
        self.xs
            .iter()
            .map(|x| (w * x + b - (3.0 * x - 1.0)).powi(2))
            .sum::<f32>()
            / self.xs.len() as f32
    }
}

impl Trainer for LineFit {
    fn get_parameters(&mut self, _: &Config) -> Result<Vec<Tensor>, TrainerError> {
        Ok(vec![Tensor::zeros(vec![1, 1]), Tensor::zeros(vec![1])])
    }

    fn fit(&mut self, p: Vec<Tensor>, config: &Config) -> Result<FitOutcome, TrainerError> {
        let lr = fl::config::get_f64(config, "learning_rate", 0.1).map_err(TrainerError)? as f32;
        let (mut w, mut b) = (p[0].data[0], p[1].data[0]);
        for _ in 0..10 {
            let n = self.xs.len() as f32;
            let (gw, gb) = self.xs.iter().fold((0.0, 0.0), |(gw, gb), x| {
                let e = w * x + b - (3.0 * x - 1.0);
                (gw + 2.0 * e * x / n, gb + 2.0 * e / n)
            });
            w -= lr * gw;
            b -= lr * gb;
        }
        Ok(FitOutcome {
            parameters: vec![
                Tensor::new(vec![1, 1], vec![w]).unwrap(),
                Tensor::new(vec![1], vec![b]).unwrap(),
            ],
            num_examples: self.xs.len() as u64,
            metrics: Config::from([(
                "train_loss".to_owned(),
                Scalar::Double(f64::from(self.loss(w, b))),
            )]),
        })
    }

    fn evaluate(&mut self, p: Vec<Tensor>, _: &Config) -> Result<EvaluateOutcome, TrainerError> {
        let loss = self.loss(p[0].data[0], p[1].data[0]);
        Ok(EvaluateOutcome {
            loss,
            num_examples: self.xs.len() as u64,
            metrics: Config::from([(
                "accuracy".to_owned(),
                Scalar::Double(f64::from(1.0 / (1.0 + loss))),
            )]),
        })
    }
}

/// A client whose training always fails.
pub struct Broken;

impl Trainer for Broken {
    fn get_parameters(&mut self, _: &Config) -> Result<Vec<Tensor>, TrainerError> {
        Err(TrainerError::msg("no model"))
    }
    fn fit(&mut self, _: Vec<Tensor>, _: &Config) -> Result<FitOutcome, TrainerError> {
        Err(TrainerError::msg("out of memory"))
    }
    fn evaluate(&mut self, _: Vec<Tensor>, _: &Config) -> Result<EvaluateOutcome, TrainerError> {
        Err(TrainerError::msg("no test data"))
    }
}

/// A loopback listener on a free port, and its address.
pub async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}
