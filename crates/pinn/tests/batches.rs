//! Mini-batches (`batch = N` on a point set): every iteration trains on a fresh, seeded draw
//! of the set's points, gathered with their targets, and a resumed run draws what the straight
//! one drew.

mod common;

use burn::tensor::Tensor;
use common::temp_dir;
use pinn::core::backend::{to_scalar, to_vec};
use pinn::core::sampling::{Layout, even_grid};
use pinn::{Problem, ProblemBuilder, Silent, Trainer};

/// A Poisson-like problem on the unit square: 20 boundary points fitted to zero, and an even
/// 7 × 7 grid with a fit of `u` to `x·y` and a residual that is `x + 2y` whatever the network.
fn square(batch_inside: Option<usize>, batch_edge: Option<usize>, seed: u64) -> Problem {
    let mut builder = ProblemBuilder::new("batched")
        .domain(&["x", "y"], &[0.0, 0.0], &[1.0, 1.0])
        .network(&[8, 8], &["u"])
        .seed(seed)
        .residual("f", "0*u + x + 2*y")
        .points_on("edge", &[("x", &[0.0, 1.0]), ("y", &[0.0, 1.0])], 40)
        .layout("edge", &Layout::Grid(vec![6, 6]))
        .points_even_grid("inside", &[7, 7])
        .fit_targets("edge", &[("u", "0")])
        .fit_targets("inside", &[("u", "x*y")])
        .residual_loss("inside", &["f"])
        .adam(20, 1e-2)
        .f64();
    if let Some(n) = batch_inside {
        builder = builder.batch("inside", n);
    }
    if let Some(n) = batch_edge {
        builder = builder.batch("edge", n);
    }
    builder.build().expect("a valid problem")
}

fn flat(params: &[Tensor<2>]) -> Vec<f64> {
    params.iter().flat_map(to_vec).collect()
}

#[test]
fn batches_are_distinct_seeded_and_inside_their_pool() {
    let problem = square(Some(16), Some(5), 3);
    assert!(problem.is_batched());
    assert_eq!(problem.term_sizes(), [5, 16, 16]);
    assert_eq!(problem.term_pools(), [Some(20), Some(49), Some(49)]);
    assert_eq!(square(None, None, 3).term_pools(), [None, None, None]);
    let rows = |p: &Problem, it| p.batch_rows("inside", it).expect("a batched set");
    for it in 0..50 {
        let mut r = rows(&problem, it);
        assert_eq!(r.len(), 16);
        assert!(r.iter().all(|&i| i < 49), "{r:?}");
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), 16, "a row drawn twice at iteration {it}");
    }
    // A new draw every iteration, and every point drawn within a few dozen iterations.
    assert_ne!(rows(&problem, 0), rows(&problem, 1));
    let seen: std::collections::BTreeSet<usize> =
        (0..50).flat_map(|it| rows(&problem, it)).collect();
    assert_eq!(seen.len(), 49);
    // The seed and the iteration fix the draw; another seed draws other rows.
    let again = square(Some(16), Some(5), 3);
    assert_eq!(rows(&problem, 7), rows(&again, 7));
    let other = square(Some(16), Some(5), 4);
    assert_ne!(rows(&problem, 7), rows(&other, 7));
    // The sets draw apart, and only batched sets draw.
    assert_ne!(
        problem.batch_rows("edge", 0).expect("batched")[..5],
        rows(&problem, 0)[..5]
    );
    assert_eq!(square(None, Some(5), 3).batch_rows("inside", 0), None);
    assert!(!square(None, None, 3).is_batched());
}

#[test]
fn a_batch_loss_is_the_mean_over_its_drawn_points() {
    let problem = square(Some(12), None, 1);
    let params = problem.initial_parameters();
    let pool = even_grid(&[7, 7], &[0.0, 0.0], &[1.0, 1.0]);
    let coords: Vec<f64> = pool.iter().flatten().copied().collect();
    let u = problem
        .predict(&params, &coords, &["u"])
        .expect("u is a field")
        .remove(0);
    for it in [0, 1, 9] {
        let rows = problem.batch_rows("inside", it).expect("batched");
        let loss = problem.loss_at(&params, it);
        let mean =
            |f: &dyn Fn(usize) -> f64| rows.iter().map(|&r| f(r).powi(2)).sum::<f64>() / 12.0;
        let fit = mean(&|r| u[r] - pool[r][0] * pool[r][1]);
        let residual = mean(&|r| pool[r][0] + 2.0 * pool[r][1]);
        let (got_fit, got_residual) = (
            to_scalar(&loss.components[1]),
            to_scalar(&loss.components[2]),
        );
        assert!(
            (got_fit - fit).abs() <= 1e-12 * fit,
            "fit at {it}: {got_fit} vs {fit}"
        );
        assert!(
            (got_residual - residual).abs() <= 1e-12 * residual,
            "residual at {it}: {got_residual} vs {residual}"
        );
    }
    // Without a counter, the loss reads the first iteration's batches.
    assert_eq!(
        to_scalar(&problem.loss_drawn(&params, None).total),
        to_scalar(&problem.loss_at(&params, 0).total)
    );
    // The whole pool as the batch is the full-batch loss (the rows in another order).
    let whole = square(Some(49), Some(20), 1);
    let full = square(None, None, 1);
    let a = to_scalar(&whole.loss_at(&params, 4).total);
    let b = to_scalar(&full.loss(&params).total);
    assert!((a - b).abs() <= 1e-12 * b, "{a} vs {b}");
}

#[test]
fn batched_runs_resume_bit_for_bit_and_differ_from_full_batches() {
    let dir = temp_dir("batch-resume");
    let problem = square(Some(16), Some(8), 5);
    let run = |trainer: Trainer<'_>, iterations: usize, out: &str| {
        trainer
            .run(iterations, &dir.join(out), &mut Silent)
            .expect("training runs")
    };
    let straight = run(Trainer::new(&problem), 20, "straight");
    run(Trainer::new(&problem), 10, "split");
    let resumed = Trainer::resume(&problem, &dir.join("split")).expect("checkpoint");
    let finished = run(resumed, 20, "split");
    assert_eq!(flat(&straight.params), flat(&finished.params));
    // The batches are in use: full batches train to other parameters.
    let full = square(None, None, 5);
    let unbatched = run(Trainer::new(&full), 20, "full");
    assert_ne!(flat(&straight.params), flat(&unbatched.params));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn each_training_step_reads_the_batch_of_its_iteration() {
    // The trainer draws from Adam's step count on the device; each step's loss is the loss at
    // the parameters before it on that iteration's batch, and on no other.
    let problem = square(Some(16), Some(8), 5);
    let mut trainer = Trainer::new(&problem);
    for iteration in 0..5 {
        // A copy through the host: the step rewrites the parameters' buffers in place.
        let before: Vec<Tensor<2>> = trainer
            .parameters()
            .iter()
            .map(|p| {
                let [rows, cols] = p.dims();
                problem.context().matrix(&to_vec(p), rows, cols)
            })
            .collect();
        let (total, _) = trainer.step();
        let expected = to_scalar(&problem.loss_at(&before, iteration).total);
        let other = to_scalar(&problem.loss_at(&before, iteration + 1).total);
        assert_eq!(to_scalar(&total), expected, "step {iteration}");
        assert_ne!(expected, other, "step {iteration}");
    }
}

#[test]
fn bad_batches_are_refused_by_name() {
    for (batch, cause) in [(0, "between 1 and"), (50, "the set's 49 points")] {
        let built = ProblemBuilder::new("batched")
            .domain(&["x"], &[0.0], &[1.0])
            .network(&[4], &["u"])
            .residual("f", "u_x - 1")
            .points_even_grid("inside", &[49])
            .residual_loss("inside", &["f"])
            .batch("inside", batch)
            .build();
        let msg = built.expect_err("a bad batch is refused").to_string();
        assert!(
            msg.contains("points.inside") && msg.contains(cause),
            "batch = {batch}: {msg}"
        );
    }
}

/// Trains a shipped problem for `adam` iterations (then `lbfgs` L-BFGS iterations) and returns
/// its report.
fn shipped(name: &str, adam: usize, lbfgs: usize) -> pinn::Report {
    let dir = temp_dir(&format!("batches-{name}"));
    let options = pinn::LoadOptions {
        lbfgs: Some(lbfgs),
        ..common::options(&dir)
    };
    let path = common::workspace().join(format!("problems/{name}.toml"));
    let problem = Problem::from_file(&path, &options).expect("the shipped problem");
    let trained = Trainer::new(&problem)
        .run(adam, &dir.join("run"), &mut Silent)
        .expect("training runs");
    std::fs::remove_dir_all(&dir).ok();
    trained.report
}

#[test]
fn beltrami3d_trains_on_fresh_batches_of_its_pool() {
    // The full 20,000 iterations reach 2.1e-2, 2.0e-2, 1.9e-2 (docs/status.md); 2,000 reach
    // 7.9e-2, 6.5e-2, 7.7e-2.
    let report = shipped("beltrami3d", 2000, 0);
    let errors = &report.evaluation.relative_l2;
    eprintln!("beltrami3d, 2,000 iterations: {errors:?}");
    for field in ["u", "v", "w"] {
        assert!(
            errors[field] < 0.12,
            "{field}: relative L2 error {}",
            errors[field]
        );
    }
}

#[test]
fn beltrami3d_inv_finds_the_viscosity() {
    // The full schedule (20,000 Adam, 5,000 L-BFGS) finds nu to 0.31 %; 1,500 Adam and 500
    // L-BFGS iterations to 11.2 %, starting from 0.
    let report = shipped("beltrami3d_inv", 1500, 500);
    let nu = &report.evaluation.unknowns["nu"];
    let error = nu.relative_error.expect("a known truth");
    eprintln!(
        "beltrami3d_inv, 1,500 + 500 iterations: nu {} ({error:e})",
        nu.value
    );
    assert!(error < 0.2, "nu {}: relative error {error}", nu.value);
    assert!(report.evaluation.relative_l2["u"] < 0.05);
}
