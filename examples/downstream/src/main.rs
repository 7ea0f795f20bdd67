//! A crate of its own that uses pinn as a library: it identifies the diffusivity `k` of the
//! heat equation `u_t = k u_xx` on `[0, 1] × [0, 1]` from measurements of `u`, held in memory,
//! with the residual written as a Rust closure. Then it predicts the trained field and the
//! residual at points of its own and compares them with the exact solution
//! `u = exp(-k π² t) sin(π x)`.
//!
//! `cargo run --release [ITERATIONS]` (in this folder); exits with an error if the relative L2
//! error of `u` at its points exceeds 2 % or `k` is off by more than 5 %.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::path::Path;

use anyhow::{Context, ensure};
use pinn::config::LrDecay;
use pinn::core::data::GridData;
use pinn::{Problem, ProblemBuilder, Progress, ResidualFn, Trainer, relative_l2};

/// The diffusivity the measurements were made with.
const TRUE_K: f64 = 0.1;

fn exact(x: f64, t: f64) -> f64 {
    (-TRUE_K * PI * PI * t).exp() * (PI * x).sin()
}

/// The measurements: `u` on a 41 × 21 grid of `(x, t)`.
fn measurements() -> GridData {
    let x: Vec<f64> = (0..41).map(|i| f64::from(i) / 40.0).collect();
    let t: Vec<f64> = (0..21).map(|i| f64::from(i) / 20.0).collect();
    let u = x
        .iter()
        .flat_map(|&x| t.iter().map(move |&t| exact(x, t)))
        .collect();
    GridData {
        axis_names: vec!["x".into(), "t".into()],
        axes: vec![x, t],
        fields: BTreeMap::from([("u".to_string(), u)]),
    }
}

fn problem(iterations: usize) -> anyhow::Result<Problem> {
    let problem = ProblemBuilder::new("downstream-heat")
        .domain(&["x", "t"], &[0.0, 0.0], &[1.0, 1.0])
        .network(&[20, 20, 20], &["u"])
        .unknown("k", 0.5, Some(TRUE_K))
        .residual_fn(
            "f",
            ResidualFn::new(&["u_t", "u_xx", "k"], |f| {
                f.get("u_t").sub(f.get("u_xx").mul(f.get("k")))
            }),
        )
        .data(measurements())
        .points_grid("measured", &[])
        .sample("measured", 300)
        .points_lhs("inside", 1000)
        .fit("measured", &["u"])
        .residual_loss("inside", &["f"])
        .adam(iterations, 3e-3)
        .lr_decay(LrDecay::Cosine {
            over: iterations,
            floor: 0.01,
        })
        .evaluate(&["u"])
        .build()?;
    Ok(problem)
}

/// Prints the loss now and then (a progress bar would go here).
struct EveryThousand;

impl Progress for EveryThousand {
    fn iteration(&mut self, iteration: usize, loss: f64) {
        if iteration.is_multiple_of(1000) {
            eprintln!("iteration {iteration:>5}: loss {loss:.3e}");
        }
    }
}

fn main() -> anyhow::Result<()> {
    let iterations = match std::env::args().nth(1) {
        Some(text) => text.parse().context("ITERATIONS must be a whole number")?,
        None => 3000,
    };
    let problem = problem(iterations)?;
    let out = Path::new("runs/downstream-heat");
    let trained = Trainer::new(&problem).run(iterations, out, &mut EveryThousand)?;

    // The report: what `report.json` in `out` holds.
    let report = &trained.report;
    let k = &report.evaluation.unknowns["k"];
    println!(
        "{} iterations in {:.1} s ({:.2} ms each): k = {:.5} (true {TRUE_K}, {:.2} % off), \
         u on the measurement grid {:.2e}",
        report.iterations,
        report.training_seconds,
        report.median_ms_per_iteration,
        k.value,
        100.0 * k.relative_error.unwrap_or(f64::NAN),
        report.evaluation.relative_l2["u"],
    );

    // Points of our own, off the measurement grid: the first 500 of the R2 sequence.
    let points: Vec<f64> = (1..=500)
        .flat_map(|i| {
            let i = f64::from(i);
            [
                (0.5 + i * 0.754_877_666).fract(),
                (0.5 + i * 0.569_840_291).fract(),
            ]
        })
        .collect();
    let predicted = problem.predict(&trained.params, &points, &["u", "u_t - k*u_xx"])?;
    let truth: Vec<f64> = points.chunks(2).map(|p| exact(p[0], p[1])).collect();
    let error = relative_l2(&predicted[0], &truth);
    let residual = predicted[1].iter().map(|r| r * r).sum::<f64>() / truth.len() as f64;
    println!(
        "at 500 points of our own: u relative L2 {error:.2e}, mean squared residual {residual:.2e}"
    );

    ensure!(
        error < 2e-2,
        "relative L2 error of u {error:.3e} exceeds 2e-2"
    );
    let off = k.relative_error.unwrap_or(f64::INFINITY);
    ensure!(
        off < 5e-2,
        "k = {} is {:.1} % off (bound 5 %)",
        k.value,
        100.0 * off
    );
    Ok(())
}
