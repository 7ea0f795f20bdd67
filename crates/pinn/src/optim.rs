//! Adam on a flat list of parameter tensors, updated in place without autodiff.

use crate::config::{LrDecay, OptimizerConfig};
use burn::tensor::Tensor;

/// Adam (Kingma & Ba) with PyTorch's update rule:
/// `p ← p − lr · m̂ / (√v̂ + ε)`, `m̂ = m / (1 − β₁ᵗ)`, `v̂ = v / (1 − β₂ᵗ)`.
///
/// The step count `t` lives on the device as well as on the host, and the bias corrections are
/// computed from it there (`β^t = exp(t ln β)`): a recorded training step then replays with the
/// right corrections instead of freezing the ones of the step it was recorded at (which is what
/// host scalars would do under graph capture). A learning-rate decay is computed from the same
/// device counter, for the same reason.
#[derive(Clone, Debug)]
pub struct Adam {
    lr: f64,
    decay: Option<LrDecay>,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    step: u64,
    /// `step` as a `[1, 1]` tensor on the parameters' device (none without parameters).
    step_on_device: Option<Tensor<2>>,
    first: Vec<Tensor<2>>,
    second: Vec<Tensor<2>>,
}

/// A `[1, 1]` tensor holding `value` on the device and in the dtype of `like`.
fn scalar_like(like: Option<&Tensor<2>>, value: f64) -> Option<Tensor<2>> {
    like.map(|t| t.clone().slice([0..1, 0..1]).zeros_like().add_scalar(value))
}

impl Adam {
    /// Zero moments for parameters shaped like `params`.
    pub fn new(config: &OptimizerConfig, params: &[Tensor<2>]) -> Self {
        Self {
            lr: config.lr,
            decay: config.decay,
            beta1: config.beta1,
            beta2: config.beta2,
            epsilon: config.epsilon,
            step: 0,
            step_on_device: scalar_like(params.first(), 0.0),
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
        self.step_on_device = scalar_like(first.first(), step as f64);
        self.first = first;
        self.second = second;
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// [`Adam::steps`] on the device (a `[1, 1]` tensor; none without parameters): a training
    /// step draws its mini-batches from it, so that a recorded step replays with the batches of
    /// the step it replays. Drop every copy before [`Adam::update`], which advances it in place.
    pub fn step_counter(&self) -> Option<&Tensor<2>> {
        self.step_on_device.as_ref()
    }

    /// Applies one update; `grads[i]` is the gradient of `params[i]`.
    ///
    /// Each state tensor (parameter, moments, step counter) is taken out of its slot, updated
    /// and put back, so that where the backend can it rewrites its own buffer: a recorded step
    /// (graph replay) must find its new state where it read the old one. For that the caller
    /// must hold no other handle to the parameters (such as the autodiff copies of the step).
    pub fn update(&mut self, params: &mut [Tensor<2>], grads: Vec<Tensor<2>>) {
        self.step += 1;
        let Some(t) = self.step_on_device.as_mut() else {
            return;
        };
        t.inplace(|t| t.add_scalar(1.0));
        let t = t.clone();
        let (beta1, beta2) = (self.beta1, self.beta2);
        // lr / (1 − β₁ᵗ) and 1 / √(1 − β₂ᵗ), as [1, 1] tensors broadcast over each parameter.
        let step_size = t
            .clone()
            .mul_scalar(beta1.ln())
            .exp()
            .neg()
            .add_scalar(1.0)
            .recip()
            .mul_scalar(self.lr);
        let step_size = match self.decay {
            Some(decay) => step_size.mul(decay_factor(decay, t.clone().sub_scalar(1.0))),
            None => step_size,
        };
        let inv_sqrt_bias2 = t
            .mul_scalar(beta2.ln())
            .exp()
            .neg()
            .add_scalar(1.0)
            .sqrt()
            .recip();
        for (i, g) in grads.into_iter().enumerate() {
            self.first[i].inplace(|m| m.mul_scalar(beta1).add(g.clone().mul_scalar(1.0 - beta1)));
            self.second[i].inplace(|v| {
                v.mul_scalar(beta2)
                    .add(g.clone().mul(g).mul_scalar(1.0 - beta2))
            });
            let denom = self.second[i]
                .clone()
                .sqrt()
                .mul(inv_sqrt_bias2.clone())
                .add_scalar(self.epsilon);
            let update = self.first[i].clone().div(denom).mul(step_size.clone());
            params[i].inplace(|p| p.sub(update));
        }
    }
}

/// [`LrDecay::factor`] of the updates counted in `t` (a `[1, 1]` tensor), on the device.
fn decay_factor(decay: LrDecay, t: Tensor<2>) -> Tensor<2> {
    match decay {
        LrDecay::Exponential {
            rate,
            every,
            staircase,
        } => {
            let periods = t.div_scalar(every as f64);
            let periods = if staircase { periods.floor() } else { periods };
            periods.mul_scalar(rate.ln()).exp()
        }
        LrDecay::InverseTime { rate, every } => {
            t.mul_scalar(rate / every as f64).add_scalar(1.0).recip()
        }
        LrDecay::Cosine { over, floor } => t
            .clamp_max(over as f64)
            .mul_scalar(std::f64::consts::PI / over as f64)
            .cos()
            .add_scalar(1.0)
            .mul_scalar(0.5 * (1.0 - floor))
            .add_scalar(floor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinn_core::{Precision, TensorContext};

    /// The update against PyTorch's rule with host-side bias corrections, over several steps of
    /// a fixed gradient sequence.
    #[test]
    fn device_bias_corrections_match_the_host_formula() {
        follows_the_host_formula(OptimizerConfig::default());
    }

    /// Every decay computed on the device against [`LrDecay::factor`], through whole updates;
    /// the schedules are short enough for the staircase and the cosine floor to be reached.
    #[test]
    fn decayed_rates_match_the_host_formula() {
        for decay in [
            LrDecay::Exponential {
                rate: 0.5,
                every: 4,
                staircase: false,
            },
            LrDecay::Exponential {
                rate: 0.5,
                every: 4,
                staircase: true,
            },
            LrDecay::InverseTime {
                rate: 2.0,
                every: 5,
            },
            LrDecay::Cosine {
                over: 10,
                floor: 0.2,
            },
        ] {
            follows_the_host_formula(OptimizerConfig {
                decay: Some(decay),
                ..OptimizerConfig::default()
            });
        }
    }

    /// Runs 25 updates of a fixed gradient sequence and compares with PyTorch's rule computed
    /// on the host, with the learning rate scaled by the configured decay.
    fn follows_the_host_formula(config: OptimizerConfig) {
        let ctx = TensorContext::cpu(Precision::F64);
        let start = [0.3, -1.2, 2.0, 0.01];
        let mut params = vec![ctx.matrix(&start, 2, 2)];
        let mut adam = Adam::new(&config, &params);
        let (mut p, mut m, mut v) = (start.to_vec(), [0.0; 4], [0.0; 4]);
        for t in 1..=25 {
            let g: Vec<f64> = (0..4).map(|i| ((t * 7 + i * 3) % 5) as f64 - 2.0).collect();
            adam.update(&mut params, vec![ctx.matrix(&g, 2, 2)]);
            let (b1, b2) = (config.beta1, config.beta2);
            for i in 0..4 {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                let m_hat = m[i] / (1.0 - b1.powi(t));
                let v_hat = v[i] / (1.0 - b2.powi(t));
                let lr = config.lr * config.decay.map_or(1.0, |d| d.factor(t as u64 - 1));
                p[i] -= lr * m_hat / (v_hat.sqrt() + config.epsilon);
            }
        }
        let got = pinn_core::backend::to_vec(&params[0]);
        for (g, w) in got.iter().zip(&p) {
            assert!(
                (g - w).abs() < 1e-12,
                "{:?}: {got:?} vs {p:?}",
                config.decay
            );
        }
        assert_eq!(adam.steps(), 25);
    }
}
