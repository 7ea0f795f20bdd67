//! Discrete-time (implicit Runge-Kutta) models: the Runge-Kutta maps on a problem with a
//! known answer, and a short identification run.

mod common;
use common::temp_dir;

use std::path::{Path, PathBuf};

use pinn::{LoadOptions, Problem, Silent, Trainer};
use pinn_core::backend::to_scalar;
use pinn_core::data::{Array, write_npy};
use pinn_rk::ButcherTable;

/// Solves `(I + dt A) U = u0 𝟙`: the stages of `u' = -u` (Gaussian elimination).
fn decay_stages(table: &ButcherTable, dt: f64, u0: f64) -> Vec<f64> {
    let q = table.stages;
    let mut m: Vec<Vec<f64>> = (0..q)
        .map(|i| {
            let mut row: Vec<f64> = (0..q).map(|j| dt * table.a(i, j)).collect();
            row[i] += 1.0;
            row.push(u0);
            row
        })
        .collect();
    for col in 0..q {
        let pivot = (col..q)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .expect("non-empty");
        m.swap(col, pivot);
        for r in 0..q {
            if r != col {
                let f = m[r][col] / m[col][col];
                let pivot_row = m[col].clone();
                for (target, p) in m[r].iter_mut().zip(&pivot_row).skip(col) {
                    *target -= f * p;
                }
            }
        }
    }
    (0..q).map(|i| m[i][q] / m[i][i]).collect()
}

/// A dataset `u(x, t) = exp(-t)` on a small grid, and a problem reading it.
fn decay_problem(dir: &Path, mode: &str, q: usize, extra: &str) -> Problem {
    let x: Vec<f64> = (0..5).map(|i| -1.0 + 0.5 * i as f64).collect();
    let t: Vec<f64> = (0..11).map(|k| 0.1 * k as f64).collect();
    let u: Vec<f64> = x
        .iter()
        .flat_map(|_| t.iter().map(|t| (-t).exp()))
        .collect();
    write_npy(
        &dir.join("x.npy"),
        &Array {
            shape: vec![5],
            data: x,
        },
    )
    .expect("write");
    write_npy(
        &dir.join("t.npy"),
        &Array {
            shape: vec![11],
            data: t,
        },
    )
    .expect("write");
    write_npy(
        &dir.join("u.npy"),
        &Array {
            shape: vec![5, 11],
            data: u,
        },
    )
    .expect("write");
    let text = format!(
        r#"
name = "decay"
[domain]
inputs = ["x"]
lower = [-1.0]
upper = [1.0]
[dataset]
dir = "."
axes = {{ x = "x", t = "t" }}
fields = {{ u = "u" }}
[time]
scheme = "irk"
t0 = 2
t1 = 9
stages = {q}
mode = "{mode}"
[network]
hidden = [3]
outputs = ["u"]
[residuals]
F = "-u"
[points.s0]
grid = [{{ t = 2 }}]
[points.s1]
grid = [{{ t = 9 }}]
[[loss]]
points = "s0"
fit = ["u"]
irk = "t0"
rhs = "F"
reduction = "sum"
{extra}
[run]
precision = "f64"
"#
    );
    let path = dir.join(format!("decay_{mode}.toml"));
    std::fs::write(&path, text).expect("write");
    Problem::from_file(
        &path,
        &LoadOptions {
            datasets: dir.to_path_buf(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Parameters of the `[1, 3, cols]` network that outputs the constant row `values`.
fn constant_output(problem: &Problem, values: &[f64]) -> Vec<pinn_core::Tensor<2>> {
    let ctx = problem.context();
    let cols = values.len();
    vec![
        ctx.matrix(&[0.0; 3], 1, 3),
        ctx.matrix(&[0.0; 3], 1, 3),
        ctx.matrix(&vec![0.0; 3 * cols], 3, cols),
        ctx.matrix(values, 1, cols),
    ]
}

#[test]
fn exact_stages_of_exponential_decay_have_zero_loss() {
    let dir = temp_dir("decay");
    for q in [4usize, 8, 32] {
        let (u0, dt) = ((-0.2f64).exp(), 0.7);
        let table = ButcherTable::gauss_legendre(q);
        let stages = decay_stages(&table, dt, u0);
        // The IRK solution at t1 matches the exponential to machine precision (order 2q).
        let u1: f64 = u0 - dt * (0..q).map(|j| table.b[j] * stages[j]).sum::<f64>();
        let exact = (-0.9f64).exp();
        assert!(
            (u1 - exact).abs() < 1e-12 * exact || q == 4,
            "q = {q}: {u1} vs {exact}"
        );
        if q == 4 {
            assert!((u1 - exact).abs() < 1e-8, "q = 4: {:e}", (u1 - exact).abs());
        }

        // Forward model: q stages and u1; every column mapped back to t0 equals u0.
        let fwd = decay_problem(&dir, "forward", q, "");
        assert_eq!(fwd.irk_stages().map(|(s, _)| s), Some(q));
        let mut cols = stages.clone();
        cols.push(u1);
        let loss = to_scalar(&fwd.loss(&constant_output(&fwd, &cols)).total);
        assert!(loss < 1e-26, "forward q = {q}: loss {loss:e}");
        let wrong: Vec<f64> = cols.iter().map(|v| v * 1.01).collect();
        assert!(to_scalar(&fwd.loss(&constant_output(&fwd, &wrong)).total) > 1e-6);

        // Inverse model: the stages map to u0 at t0 and to u(t1) at t1.
        let inv = decay_problem(
            &dir,
            "inverse",
            q,
            "[[loss]]\npoints = \"s1\"\nfit = [\"u\"]\nirk = \"t1\"\nrhs = \"F\"\nreduction = \"sum\"",
        );
        let loss = inv.loss(&constant_output(&inv, &stages));
        let parts: Vec<f64> = loss.components.iter().map(to_scalar).collect();
        assert!(parts[0] < 1e-26, "inverse q = {q}: t0 loss {:e}", parts[0]);
        // The t1 target is the exact exponential: the scheme's error, at rounding for q >= 8.
        let bound = if q == 4 { 1e-15 } else { 1e-26 };
        assert!(parts[1] < bound, "inverse q = {q}: t1 loss {:e}", parts[1]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn kdv_identification_loss_falls_in_a_few_hundred_iterations() {
    let data = temp_dir("kdv");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let problem = Problem::from_file(
        &root.join("problems/kdv_disc_inv.toml"),
        &LoadOptions {
            datasets: data.clone(),
            ..Default::default()
        },
    )
    .expect("kdv problem");
    assert_eq!(problem.irk_stages().map(|(q, _)| q), Some(50));
    let first = to_scalar(&problem.loss(&problem.initial_parameters()).total);
    let trained = Trainer::new(&problem)
        .run(300, &data.join("run"), &mut Silent)
        .expect("training");
    let last = trained.report.final_loss;
    eprintln!("kdv: loss {first:e} -> {last:e} in 300 iterations");
    assert!(last < first / 2.5, "loss {first:e} -> {last:e}");
    std::fs::remove_dir_all(&data).ok();
}
