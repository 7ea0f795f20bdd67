//! The trainer's state snapshots against plain steps.

use super::*;
use crate::ProblemBuilder;

/// A small problem with an unknown: Poisson-like residual with a trainable coefficient.
fn problem() -> Problem {
    ProblemBuilder::new("snapshot")
        .domain(&["x", "y"], &[0.0, 0.0], &[1.0, 1.0])
        .network(&[8, 8], &["u"])
        .unknown("a", 0.5, None)
        .residual("f", "u_xx + a*u_yy - x*y")
        .points_lhs("inside", 64)
        .residual_loss("inside", &["f"])
        .adam(10, 1e-2)
        .f64()
        .build()
        .expect("a valid problem")
}

/// What the graph replay falls back to: the host copy of the state, restored into new
/// tensors, continues exactly as the original does.
#[test]
fn a_restored_snapshot_continues_like_the_original() {
    let problem = problem();
    let mut trainer = Trainer::new(&problem);
    for _ in 0..3 {
        trainer.step();
    }
    let snapshot = StateSnapshot::take(&trainer.params, &trainer.adam);
    let (mut params, mut adam) = snapshot.restore(&problem);
    assert_eq!(adam.steps(), 3);
    for _ in 0..4 {
        let (a, _) = trainer.step();
        let (b, _) = plain_step(&problem, &mut params, &mut adam, None);
        assert_eq!(to_scalar(&a), to_scalar(&b));
    }
    let after = StateSnapshot::take(&trainer.params, &trainer.adam);
    let restored = StateSnapshot::take(&params, &adam);
    assert_eq!(after.parameter_difference(&restored), 0.0);
    assert!(after.parameter_difference(&snapshot) > 1e-6);
}
