//! A problem defined in Rust, without a TOML file: the heat equation
//! `u_t = k u_xx` on `[0, 1] × [0, 1]`, `u(x, 0) = sin(πx)`, `u(0, t) = u(1, t) = 0`, whose
//! solution is `e^{-kπ²t} sin(πx)`. The residual is a Rust closure; the exact solution is
//! tabulated in memory for the initial condition and the final error.
//!
//! `cargo run --release --example heat [ITERATIONS]`

use std::collections::BTreeMap;
use std::f64::consts::PI;

use pinn::config::LrDecay;
use pinn::core::data::GridData;
use pinn::{ProblemBuilder, ResidualFn, Silent, Trainer};

/// Diffusivity.
const K: f64 = 0.1;

/// The exact solution on a 41 × 21 grid.
fn exact() -> GridData {
    let x: Vec<f64> = (0..41).map(|i| i as f64 / 40.0).collect();
    let t: Vec<f64> = (0..21).map(|i| i as f64 / 20.0).collect();
    let u = x
        .iter()
        .flat_map(|&x| {
            t.iter()
                .map(move |&t| (-K * PI * PI * t).exp() * (PI * x).sin())
        })
        .collect();
    GridData {
        axis_names: vec!["x".into(), "t".into()],
        axes: vec![x, t],
        fields: BTreeMap::from([("u".to_string(), u)]),
    }
}

/// Trains for `iterations` Adam steps, the rate falling along half a cosine so that the run
/// settles instead of ending wherever Adam's oscillation happens to be, and returns the
/// relative L2 error of `u` on the grid.
pub fn run(iterations: usize, out: &std::path::Path) -> anyhow::Result<f64> {
    let problem = ProblemBuilder::new("heat")
        .domain(&["x", "t"], &[0.0, 0.0], &[1.0, 1.0])
        .network(&[20, 20, 20], &["u"])
        .constant("k", K)
        .residual_fn(
            "f",
            ResidualFn::new(&["u_t", "u_xx", "k"], |f| {
                f.get("u_t").sub(f.get("u_xx").mul(f.get("k")))
            }),
        )
        .data(exact())
        .points_grid("initial", &[&[("t", 0)]])
        .points_grid("walls", &[&[("x", 0)], &[("x", -1)]])
        .points_lhs("inside", 1000)
        .fit("initial", &["u"])
        .fit_value("walls", "u", 0.0)
        .residual_loss("inside", &["f"])
        .adam(iterations, 2e-3)
        .lr_decay(LrDecay::Cosine {
            over: iterations,
            floor: 0.01,
        })
        .evaluate(&["u"])
        .build()?;
    let trained = Trainer::new(&problem).run(iterations, out, &mut Silent)?;
    Ok(trained.report.evaluation.relative_l2["u"])
}

#[allow(dead_code)] // `main` is unused when the test suite includes this file as a module
fn main() -> anyhow::Result<()> {
    let iterations = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3000);
    let error = run(iterations, std::path::Path::new("runs/heat"))?;
    println!("heat equation: relative L2 error of u = {error:.3e} after {iterations} iterations");
    Ok(())
}
