//! Adam on a flat list of parameter tensors, updated out of place without autodiff.

use burn::tensor::Tensor;
use pinn_core::config::OptimizerConfig;

/// Adam (Kingma & Ba) with PyTorch's update rule:
/// `p ← p − lr · m̂ / (√v̂ + ε)`, `m̂ = m / (1 − β₁ᵗ)`, `v̂ = v / (1 − β₂ᵗ)`.
#[derive(Clone, Debug)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    step: u64,
    first: Vec<Tensor<2>>,
    second: Vec<Tensor<2>>,
}

impl Adam {
    /// Zero moments for parameters shaped like `params`.
    pub fn new(config: &OptimizerConfig, params: &[Tensor<2>]) -> Self {
        Self {
            lr: config.lr,
            beta1: config.beta1,
            beta2: config.beta2,
            epsilon: config.epsilon,
            step: 0,
            first: params.iter().map(Tensor::zeros_like).collect(),
            second: params.iter().map(Tensor::zeros_like).collect(),
        }
    }

    /// The step counter and both moments, for checkpoints.
    pub fn state(&self) -> (u64, &[Tensor<2>], &[Tensor<2>]) {
        (self.step, &self.first, &self.second)
    }

    /// Restores a state saved with [`Adam::state`].
    pub fn restore(&mut self, step: u64, first: Vec<Tensor<2>>, second: Vec<Tensor<2>>) {
        self.step = step;
        self.first = first;
        self.second = second;
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update; `grads[i]` is the gradient of `params[i]`.
    pub fn update(&mut self, params: &mut [Tensor<2>], grads: Vec<Tensor<2>>) {
        self.step += 1;
        let t = self.step as i32;
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2 = 1.0 - self.beta2.powi(t);
        let step_size = self.lr / bias1;
        let inv_sqrt_bias2 = 1.0 / bias2.sqrt();
        for (i, g) in grads.into_iter().enumerate() {
            let m = self.first[i]
                .clone()
                .mul_scalar(self.beta1)
                .add(g.clone().mul_scalar(1.0 - self.beta1));
            let v = self.second[i]
                .clone()
                .mul_scalar(self.beta2)
                .add(g.clone().mul(g).mul_scalar(1.0 - self.beta2));
            let denom = v
                .clone()
                .sqrt()
                .mul_scalar(inv_sqrt_bias2)
                .add_scalar(self.epsilon);
            params[i] = params[i]
                .clone()
                .sub(m.clone().div(denom).mul_scalar(step_size));
            self.first[i] = m;
            self.second[i] = v;
        }
    }
}
