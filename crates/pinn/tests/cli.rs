//! The `pinn` command as a user runs it: predictions at points of a file, and output piped
//! into a reader that stops early.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{temp_dir, workspace};
use pinn::table::PointTable;
use pinn::{LoadOptions, Problem};

fn pinn(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pinn"));
    cmd.current_dir(workspace()).args(args);
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("pinn runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Trains `problems/heat.toml` briefly into `dir`.
fn trained_heat(dir: &Path) {
    let run = output(
        pinn(&["run", "problems/heat.toml", "--iters", "200", "--quiet"])
            .arg("--out")
            .arg(dir),
    );
    assert!(run.status.success(), "pinn run: {}", stderr(&run));
}

#[test]
fn predict_writes_the_trained_fields_and_derivatives_at_the_given_points() {
    let dir = temp_dir("cli-predict");
    let run_dir = dir.join("run");
    trained_heat(&run_dir);
    // The header names the inputs in another order, beside a column that is not a number.
    let points = dir.join("points.csv");
    std::fs::write(&points, "t,label,x\n0.5,a,0.5\n0.1,b,0.25\n1.5,c,0.75\n").expect("points");
    let out = dir.join("predicted.csv");
    let predicted = output(
        pinn(&["predict"])
            .arg(&run_dir)
            .arg("--points")
            .arg(&points)
            .args(["--fields", "u,u_x,u_t - k*u_xx"])
            .arg("--out")
            .arg(&out),
    );
    assert!(
        predicted.status.success(),
        "pinn predict: {}",
        stderr(&predicted)
    );
    assert!(
        stderr(&predicted).contains("1 of 3 points lie outside the domain"),
        "{}",
        stderr(&predicted)
    );
    let written = PointTable::read(&out, &[]).expect("a table");
    let columns = ["x", "t", "u", "u_x", "u_t - k*u_xx"].map(String::from);
    assert_eq!(written.columns, columns);
    assert_eq!(written.rows(), 3);

    // The same as the library's prediction from the run's parameters, to the last bit.
    let problem = Problem::from_file(
        &workspace().join("problems/heat.toml"),
        &LoadOptions::default(),
    )
    .expect("heat loads");
    let params = pinn::train::load_parameters(&problem, &run_dir.join("params.json"))
        .expect("trained parameters");
    let at = [0.5, 0.5, 0.25, 0.1, 0.75, 1.5];
    let expected = problem
        .predict(&params, &at, &["u", "u_x", "u_t - k*u_xx"])
        .expect("predicted");
    for (r, row) in written.values.chunks_exact(5).enumerate() {
        assert_eq!(&row[..2], &at[2 * r..2 * r + 2], "row {r}: the points");
        for (q, values) in expected.iter().enumerate() {
            assert_eq!(row[2 + q], values[r], "row {r}, {}", columns[2 + q]);
        }
    }

    // Bad requests are named: a missing input column, a wrong array width, an unknown field.
    let bad = |points: &Path, fields: &str| {
        let out = output(
            pinn(&["predict"])
                .arg(&run_dir)
                .arg("--points")
                .arg(points)
                .args(["--fields", fields, "--out"])
                .arg(dir.join("never.csv")),
        );
        assert!(!out.status.success(), "accepted {}", points.display());
        assert!(
            !dir.join("never.csv").exists(),
            "nothing is written on an error"
        );
        stderr(&out)
    };
    let no_x = dir.join("no_x.csv");
    std::fs::write(&no_x, "t,y\n0.5,0.5\n").expect("points");
    assert!(bad(&no_x, "u").contains("has no column `x`"));
    let wide = dir.join("wide.npy");
    PointTable {
        columns: ["x", "t", "z"].map(String::from).to_vec(),
        values: vec![0.5; 6],
    }
    .write(&wide)
    .expect("npy");
    assert!(bad(&wide, "u").contains("expected N × 2"));
    assert!(bad(&points, "w").contains("cannot predict `w`"));
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = temp_dir("cli-pipe");
    for args in [
        vec!["check", "problems/heat.toml"],
        vec![
            "run",
            "problems/heat.toml",
            "--iters",
            "50",
            "--quiet",
            "--out",
        ],
    ] {
        let mut cmd = pinn(&args);
        if args[0] == "run" {
            cmd.arg(dir.join("run"));
        }
        // The reader is gone before the command writes its first line.
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pinn starts");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("pinn ends");
        let err = stderr(&out);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
    // The run wrote everything it writes, though nothing could be printed.
    for file in ["report.json", "params.json", "metrics.csv"] {
        assert!(dir.join("run").join(file).exists(), "{file}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
