//! Shared forward passes against one pass per term.

use pinn_core::backend::to_scalar;

use super::*;
use crate::ProblemBuilder;

impl Problem {
    /// The reference the shared passes are checked against: one pass per loss term.
    fn with_one_pass_per_term(mut self) -> Self {
        self.passes = self
            .terms
            .iter_mut()
            .enumerate()
            .map(|(t, term)| {
                let rows = term.inputs.dims()[0];
                term.pass = (t, 0..rows);
                ForwardPass {
                    inputs: term.inputs.clone(),
                    set: (*term.plan.network).clone(),
                    pick: None,
                }
            })
            .collect();
        self
    }

    /// Passes planned again, stacking different points as on a GPU or not.
    fn replanned(mut self, stack: bool) -> Self {
        let coords: Vec<Vec<f64>> = self.terms.iter().map(|t| to_vec(&t.inputs)).collect();
        self.share_forward_passes(&coords, stack);
        self
    }
}

/// Three terms: boundary values at a few points, and two residuals at the same
/// collocation points (one of them needing third derivatives).
fn problem() -> Problem {
    ProblemBuilder::new("passes")
        .domain(&["x", "t"], &[-1.0, 0.0], &[1.0, 1.0])
        .network(&[12, 12], &["u"])
        .unknown("nu", 0.1, None)
        .residual("f", "u_t + u*u_x - nu*u_xx")
        .residual("g", "u_xxx + u_xt")
        .points_lhs("edge", 24)
        .points_lhs("inside", 200)
        .fit_value("edge", "u", 0.25)
        .residual_loss("inside", &["f"])
        .residual_loss("inside", &["g"])
        .f64()
        .build()
        .expect("a valid problem")
}

/// Loss components and every parameter gradient.
fn loss_and_gradients(problem: &Problem) -> (Vec<f64>, Vec<Vec<f64>>) {
    let tracked: Vec<Tensor<2>> = problem
        .initial_parameters()
        .into_iter()
        .map(|p| p.autodiff().require_grad())
        .collect();
    let loss = problem.loss(&tracked);
    let grads = loss.total.backward();
    let components = loss
        .components
        .iter()
        .map(|c| to_scalar(&c.clone().without_autodiff()))
        .collect();
    let gradients = tracked
        .iter()
        .map(|p| to_vec(&p.grad(&grads).expect("every parameter reaches the loss")))
        .collect();
    (components, gradients)
}

#[test]
fn shared_forward_passes_give_the_loss_and_gradients_of_separate_ones() {
    let separate = problem().with_one_pass_per_term();
    assert_eq!(separate.forward_passes(), [[0], [1], [2]]);
    let (expected_components, expected_gradients) = loss_and_gradients(&separate);
    assert_eq!(expected_components.len(), 3);

    // On the CPU only the two terms at the same points share a pass; stacked as on a GPU,
    // all three do.
    let shared = problem();
    assert_eq!(shared.forward_passes(), [vec![0], vec![1, 2]]);
    let stacked = problem().replanned(true);
    assert_eq!(stacked.forward_passes(), [vec![0, 1, 2]]);
    for problem in [shared, stacked] {
        let (components, gradients) = loss_and_gradients(&problem);
        for (a, b) in components.iter().zip(&expected_components) {
            assert!(*b > 1e-8, "a non-trivial component: {b}");
            assert!((a - b).abs() <= 1e-12 * b, "component {a} vs {b}");
        }
        for (g, e) in gradients.iter().zip(&expected_gradients) {
            let scale = e.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
            for (a, b) in g.iter().zip(e) {
                assert!((a - b).abs() <= 1e-12 * scale, "gradient {a} vs {b}");
            }
        }
    }
}
