//! Loss weights that balance themselves (`[loss_balance] kind = "grad_norm"`): the
//! learning-rate annealing of Wang, Teng & Perdikaris (2021) as jaxpi applies it. Every `every`
//! Adam iterations each loss component's weight is set from the norms of the components'
//! parameter gradients, `λ̂ᵢ = Σⱼ ‖∇θ Lⱼ‖ / ‖∇θ Lᵢ‖`, and smoothed, `λᵢ ← α λᵢ + (1 − α) λ̂ᵢ`.
//! A component with a large gradient (a residual of size 20) is weighted down against one with
//! a small gradient (a boundary term), so that no term dominates the update.

use crate::config::LossBalanceConfig;
use burn::tensor::Tensor;
use pinn_core::backend::to_scalar;

use crate::problem::{LossValue, Problem, add_weighted};

/// The balancing weights of a run and when they are next updated.
#[derive(Clone, Debug, PartialEq)]
pub struct LossBalance {
    every: usize,
    alpha: f64,
    /// The problem file's weight of each component ([`Problem::component_weights`]).
    file_weights: Vec<f64>,
    /// One weight per loss component (in the order of [`Problem::component_names`]),
    /// multiplying the component's `weight` from the problem file.
    weights: Vec<f64>,
}

impl LossBalance {
    /// Unit weights for `problem`'s components, updated as `config` says.
    pub fn new(config: &LossBalanceConfig, problem: &Problem) -> Self {
        Self {
            every: config.every,
            alpha: config.alpha,
            file_weights: problem.component_weights(),
            weights: vec![1.0; problem.component_names().len()],
        }
    }

    /// The current weights, one per loss component.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Replaces the weights (from a checkpoint); `false` if the count does not match.
    pub fn restore(&mut self, weights: Vec<f64>) -> bool {
        let fits = weights.len() == self.weights.len() && weights.iter().all(|w| w.is_finite());
        if fits {
            self.weights = weights;
        }
        fits
    }

    /// Whether the weights are updated before Adam step `iteration` (counted from 1): before
    /// the first step and every `every` steps after it.
    pub fn due(&self, iteration: usize) -> bool {
        (iteration.saturating_sub(1)).is_multiple_of(self.every)
    }

    /// Sets the weights from the gradient norms of every component at `params` (on the
    /// mini-batches of the iteration `counter` holds, see [`Problem::loss_drawn`]): one
    /// backward pass per component. A component whose gradient vanishes keeps its weight.
    pub fn update(&mut self, problem: &Problem, params: &[Tensor<2>], counter: Option<&Tensor<2>>) {
        let count = self.weights.len();
        let norms: Vec<f64> = (0..count)
            .map(|c| {
                let tracked: Vec<Tensor<2>> = params
                    .iter()
                    .map(|p| p.clone().autodiff().require_grad())
                    .collect();
                let loss = problem.loss_drawn(&tracked, counter);
                let grads = loss.components[c].backward();
                let squares: f64 = tracked
                    .iter()
                    .filter_map(|t| t.grad(&grads))
                    .map(|g| to_scalar(&g.clone().mul(g).sum()))
                    .sum();
                squares.sqrt()
            })
            .collect();
        let sum: f64 = norms.iter().sum();
        for (w, norm) in self.weights.iter_mut().zip(&norms) {
            if *norm > 0.0 && norm.is_finite() && sum.is_finite() {
                *w = self.alpha * *w + (1.0 - self.alpha) * (sum / norm);
            }
        }
    }

    /// The balanced total `Σᵢ weightᵢ · λᵢ · Lᵢ` of a loss (`weightᵢ` from the problem file).
    pub fn total(&self, loss: &LossValue) -> Tensor<1> {
        let mut total: Option<Tensor<1>> = None;
        for ((component, w), lambda) in loss
            .components
            .iter()
            .zip(&self.file_weights)
            .zip(&self.weights)
        {
            total = Some(add_weighted(total, component, w * lambda));
        }
        total.expect("a problem has at least one loss component")
    }
}
