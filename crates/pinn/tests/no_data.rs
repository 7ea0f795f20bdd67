//! Problems written without data files: points on the domain's faces, fit targets and exact
//! solutions as expressions, and self-balancing loss weights. The shipped `heat`, `wave` and
//! `poisson2d` problems train a short budget to a stated error.

mod common;

use std::path::Path;

use common::{options, problem_from_text, temp_dir, workspace};
use pinn::core::sampling::Layout;
use pinn::{Problem, ProblemBuilder, Silent, Trainer};

/// Trains a shipped problem for `iterations` and returns its relative L2 error of `u`.
fn shipped_error(name: &str, iterations: usize, edit: impl Fn(String) -> String) -> f64 {
    let dir = temp_dir(&format!("nodata-{name}"));
    let text = std::fs::read_to_string(workspace().join(format!("problems/{name}.toml")))
        .expect("shipped problem");
    let (_, problem) = problem_from_text(&dir, &format!("{name}.toml"), &edit(text));
    let trained = Trainer::new(&problem)
        .run(iterations, &dir.join("run"), &mut Silent)
        .expect("training runs");
    std::fs::remove_dir_all(&dir).ok();
    trained.report.evaluation.relative_l2["u"]
}

#[test]
fn heat_trains_from_expressions_alone() {
    // The full 5,000 iterations reach 1.5e-3 (docs/status.md); 1,500 reach 4.6e-3.
    let err = shipped_error("heat", 1500, |t| t);
    eprintln!("heat, 1,500 iterations: relative L2 {err:e}");
    assert!(err < 1e-2, "relative L2 error {err}");
}

#[test]
fn wave_fits_an_initial_velocity_as_a_derivative() {
    // The full 10,000 iterations reach 9.1e-3; 2,000 reach 1.2e-2.
    let err = shipped_error("wave", 2000, |t| t);
    eprintln!("wave, 2,000 iterations: relative L2 {err:e}");
    assert!(err < 3e-2, "relative L2 error {err}");
}

#[test]
fn balanced_weights_fix_the_poisson_imbalance() {
    // With unit weights the residual's gradient swamps the boundary term's.
    let balanced = shipped_error("poisson2d", 2500, |t| t);
    let plain = shipped_error("poisson2d", 2500, |t| {
        t.replace("[loss_balance]\nkind = \"grad_norm\"\nevery = 100\n", "")
    });
    eprintln!("poisson2d, 2,500 iterations: balanced {balanced:e}, unit weights {plain:e}");
    assert!(balanced < 3e-2, "balanced: relative L2 error {balanced}");
    assert!(
        plain > 3.0 * balanced,
        "unit weights {plain}, balanced {balanced}"
    );
}

/// A problem whose derived output `p` is a known function plus `0·u`: its derivatives are
/// known exactly whatever the network, so targets and references can be checked to rounding.
fn known_field(dir: &Path, fits: &str, evaluate: &str) -> Problem {
    let text = format!(
        r#"
name = "known"
[domain]
inputs = ["x", "t"]
lower = [0.0, 0.0]
upper = [1.0, 2.0]
[network]
hidden = [5]
outputs = ["u"]
[constants]
k = 0.5
[derived]
p = "sin(pi*x)*cos(k*t) + 0*u"
[residuals]
f = "u"
[points.start]
on = {{ t = 0.0 }}
uniform = 30
[points.sides]
on = {{ x = [0.0, 1.0] }}
grid = [5, 9]
[points.inside]
lhs = 20
[[loss]]
points = "start"
fit = {fits}
reduction = "sum"
[[loss]]
points = "sides"
fit = {{ p = 0.0 }}
reduction = "sum"
[[loss]]
points = "inside"
residuals = ["f"]
[evaluate]
{evaluate}
[run]
precision = "f64"
"#
    );
    problem_from_text(dir, "known.toml", &text).1
}

#[test]
fn targets_of_fields_and_their_derivatives_are_met_by_the_exact_field() {
    let dir = temp_dir("targets");
    let problem = known_field(
        &dir,
        r#"{ p = "sin(pi*x)", p_t = 0, p_x = "pi*cos(pi*x)", p_tt = "-k^2*sin(pi*x)" }"#,
        r#"exact = { p = "sin(pi*x)*cos(k*t)" }"#,
    );
    assert_eq!(problem.term_sizes(), [30, 2 * 9, 20]);
    let loss = problem.loss(&problem.initial_parameters());
    let parts: Vec<f64> = loss
        .components
        .iter()
        .map(pinn::core::backend::to_scalar)
        .collect();
    // Four targets at t = 0 and p = 0 on both ends: all met to rounding.
    assert!(parts[..5].iter().all(|v| *v < 1e-26), "{parts:?}");
    // A wrong target is not met: the same check can fail.
    let wrong = known_field(&dir, r#"{ p_t = "sin(pi*x)" }"#, "");
    let loss = wrong.loss(&wrong.initial_parameters());
    assert!(pinn::core::backend::to_scalar(&loss.components[0]) > 1.0);
    // The exact reference is evaluated on the default grid (100 × 100 for two inputs).
    let params = problem.initial_parameters();
    assert!(problem.evaluate(&params).relative_l2["p"] < 1e-14);
    let grid = problem
        .evaluation_grid(&params)
        .expect("an evaluation grid");
    assert_eq!(
        grid.axes
            .iter()
            .map(|(n, v)| (n.as_str(), v.len()))
            .collect::<Vec<_>>(),
        [("x", 100), ("t", 100)]
    );
    assert_eq!(grid.axes[1].1[99], 2.0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_no_data_keys_are_refused_by_name() {
    let dir = temp_dir("nodata-errors");
    let base = std::fs::read_to_string(workspace().join("problems/heat.toml")).expect("heat");
    let cases = [
        (
            "on = { t = 0.0 }",
            "on = { t = 2.0 }",
            "points.initial",
            "outside the domain",
        ),
        (
            "on = { t = 0.0 }",
            "on = { s = 0.0 }",
            "points.initial",
            "not an input",
        ),
        (
            "lhs = 200\n\n[points.ends]",
            "from = \"interior\"\n\n[points.ends]",
            "points.initial",
            "`on` places",
        ),
        (
            "fit = { u = \"sin(pi*x)\" }",
            "fit = { u = \"sin(pi*y)\" }",
            "loss[0].fit.u",
            "unknown symbol `y`",
        ),
        (
            "fit = { u = \"sin(pi*x)\" }",
            "fit = { u = \"u_x\" }",
            "loss[0].fit.u",
            "unknown symbol `u_x`",
        ),
        (
            "fit = { u = 0.0 }",
            "fit = { u = 0.0 }\nfit_value = 1.0",
            "loss[1].fit_value",
            "cannot be combined",
        ),
        (
            "fit = { u = 0.0 }",
            "fit = { v_t = 0.0 }",
            "loss[1].fit.v_t",
            "unknown symbol `v_t`",
        ),
        (
            "grid = [101, 101]",
            "grid = [101]",
            "evaluate.grid",
            "each of the 2 inputs",
        ),
        (
            "exact = { u =",
            "exact = { v =",
            "evaluate.exact.v",
            "not an output",
        ),
        (
            "lhs = 2000",
            "grid = [0, 10]",
            "points.interior",
            "integer >= 1",
        ),
    ];
    for (from, to, field, cause) in cases {
        assert!(base.contains(from), "{from}");
        let path = dir.join("bad.toml");
        std::fs::write(&path, base.replacen(from, to, 1)).expect("write");
        let Err(e) = Problem::from_file(&path, &options(&dir)) else {
            panic!("`{to}` was accepted");
        };
        let msg = e.to_string();
        assert!(msg.contains(field) && msg.contains(cause), "{to}: {msg}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn balanced_runs_resume_bit_for_bit() {
    let dir = temp_dir("balance-resume");
    let build = || {
        ProblemBuilder::new("balanced")
            .domain(&["x", "y"], &[0.0, 0.0], &[1.0, 1.0])
            .network(&[8, 8], &["u"])
            .residual("f", "u_xx + u_yy + 2*pi^2*sin(pi*x)*sin(pi*y)")
            .points_on("edge", &[("x", &[0.0, 1.0]), ("y", &[0.0, 1.0])], 40)
            .layout("edge", &Layout::Grid(vec![6, 6]))
            .points_even_grid("inside", &[7, 7])
            .fit_targets("edge", &[("u", "0")])
            .residual_loss("inside", &["f"])
            .loss_balance(3, 0.9)
            .exact("u", "sin(pi*x)*sin(pi*y)")
            .exact_grid(&[11, 11])
            .adam(20, 1e-2)
            .f64()
            .build()
            .expect("a valid problem")
    };
    let problem = build();
    // The boundary of a 6 × 6 grid: 20 points, each corner once.
    assert_eq!(problem.term_sizes(), [20, 49]);
    let run = |trainer: Trainer<'_>, iterations: usize, out: &str| {
        trainer
            .run(iterations, &dir.join(out), &mut Silent)
            .expect("training runs")
    };
    let straight = run(Trainer::new(&problem), 20, "straight");
    let weights = straight
        .report
        .loss_weights
        .clone()
        .expect("balanced weights");
    // The residual's gradient is the larger: the boundary term is weighted up.
    assert!(weights["edge:u"] > 2.0 * weights["inside:f"], "{weights:?}");
    run(Trainer::new(&problem), 10, "split");
    let resumed = Trainer::resume(&problem, &dir.join("split")).expect("checkpoint");
    let finished = run(resumed, 20, "split");
    let flat = |p: &[burn::tensor::Tensor<2>]| -> Vec<f64> {
        p.iter().flat_map(pinn::core::backend::to_vec).collect()
    };
    assert_eq!(flat(&straight.params), flat(&finished.params));
    assert_eq!(finished.report.loss_weights, Some(weights));
    let metrics = std::fs::read_to_string(dir.join("straight/metrics.csv")).expect("metrics");
    assert!(
        metrics
            .lines()
            .next()
            .is_some_and(|h| h.ends_with("weight:edge:u,weight:inside:f,wall_s")),
        "{metrics}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
