//! Same problem, seed and thread count, same parameters bit for bit, at a size where the fused
//! layers split into many parallel tasks (whose partial gradients must be combined in a fixed
//! order, not in the order work stealing happens to finish them).

mod common;

use std::cell::Cell;
use std::path::Path;

use common::temp_dir;
use pinn::{Problem, ProblemBuilder, Progress, Silent, TrainError, Trainer};

/// A Burgers-like problem with 12,000 collocation points and three 32-wide layers: each fused
/// layer runs in several tasks per thread.
fn problem() -> Problem {
    ProblemBuilder::new("determinism")
        .domain(&["x", "t"], &[-1.0, 0.0], &[1.0, 1.0])
        .network(&[32, 32, 32], &["u"])
        .points_lhs("inside", 12_000)
        .points_lhs("start", 200)
        .residual("f", "u_t + u*u_x - 0.01*u_xx")
        .residual("g", "u + sin(pi*x)")
        .residual_loss("inside", &["f"])
        .residual_loss("start", &["g"])
        .adam(1000, 1e-3)
        .lbfgs(0)
        .build()
        .expect("valid problem")
}

fn params(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("params.json")).expect("params.json")
}

/// The last row of `dir/metrics.csv` as numbers (iteration, total, the two loss terms, ...),
/// checked to hold one iteration's values: with unit weights its terms add up to its total.
fn last_row_of_one_iteration(dir: &Path) -> Vec<f64> {
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
    let last = metrics.lines().last().expect("a row");
    let fields: Vec<f64> = last
        .split(',')
        .map(|f| f.parse().expect("a number"))
        .collect();
    let (total, terms) = (fields[1], fields[2] + fields[3]);
    assert!(
        (total - terms).abs() <= 1e-6 * total,
        "the last row mixes iterations: {last}"
    );
    fields
}

/// Three worker threads, more than the machine's cores (two in CI): the tasks of a parallel
/// section are then stolen in a different order from run to run, and with 24 tasks per layer
/// a sum that followed the stealing (rayon's `reduce`) differed here in every trial, while
/// two threads hid it.
#[test]
fn runs_of_a_large_problem_agree_bit_for_bit_and_resume_exactly() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("a thread pool")
        .install(runs_agree);
}

fn runs_agree() {
    let problem = problem();
    let dir = temp_dir("runs");
    let runs: Vec<String> = (0..3)
        .map(|k| {
            let out = dir.join(format!("run{k}"));
            Trainer::new(&problem)
                .run(12, &out, &mut Silent)
                .expect("training runs");
            params(&out)
        })
        .collect();
    assert!(runs.iter().all(|r| *r == runs[0]), "three runs differ");

    // 12 iterations straight equal 6, a resume from the checkpoint, and 6 more.
    let split = dir.join("split");
    Trainer::new(&problem)
        .run(6, &split, &mut Silent)
        .expect("first half");
    Trainer::resume(&problem, &split)
        .expect("checkpoint")
        .run(12, &split, &mut Silent)
        .expect("second half");
    assert_eq!(params(&split), runs[0], "resumed parameters differ");

    // Stopped as Ctrl-C stops a run (the progress asks to stop after iteration 7), then resumed.
    let stopped = dir.join("stopped");
    let interrupted = Trainer::new(&problem).run(12, &stopped, &mut StopAfter::new(7));
    match interrupted {
        Err(TrainError::Interrupted { iteration: 7, .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("not interrupted"),
    }
    // The row written at the stop has the loss terms of that iteration.
    let row = last_row_of_one_iteration(&stopped);
    assert_eq!(row[0], 7.0, "{row:?}");
    Trainer::resume(&problem, &stopped)
        .expect("checkpoint")
        .run(12, &stopped, &mut Silent)
        .expect("resumed");
    assert_eq!(
        params(&stopped),
        runs[0],
        "parameters after a stop and resume differ"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Asks to stop once `at` iterations have run, as the CLI does on Ctrl-C.
struct StopAfter {
    at: usize,
    seen: Cell<usize>,
}

impl StopAfter {
    fn new(at: usize) -> Self {
        Self {
            at,
            seen: Cell::new(0),
        }
    }
}

impl Progress for StopAfter {
    fn iteration(&mut self, _: usize, _: f64) {}

    fn should_stop(&self) -> bool {
        self.seen.set(self.seen.get() + 1);
        self.seen.get() >= self.at
    }
}

/// A problem file for the command line: the Burgers-like problem above, smaller.
const PROBLEM_FILE: &str = r#"
name = "signal"
[domain]
inputs = ["x", "t"]
lower = [-1.0, 0.0]
upper = [1.0, 1.0]
[network]
hidden = [32, 32]
outputs = ["u"]
[residuals]
f = "u_t + u*u_x - 0.01*u_xx"
g = "u + sin(pi*x)"
[points.inside]
lhs = 4000
[points.start]
lhs = 100
[[loss]]
points = "inside"
residuals = ["f"]
[[loss]]
points = "start"
residuals = ["g"]
[run]
log_every = 10
checkpoint_every = 0
"#;

/// `pinn run` with `args` on the problem file in `dir`, writing to `dir/out`.
#[cfg(unix)]
fn pinn_run(dir: &Path, out: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pinn"));
    cmd.arg("run")
        .arg(dir.join("signal.toml"))
        .arg("--out")
        .arg(dir.join(out))
        .args(["--quiet", "--lbfgs", "0"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Ctrl-C as a real signal (SIGINT to the `pinn` process) in the middle of a run, then
/// `--resume`: the parameters equal those of the run straight through, bit for bit, and the
/// row written at the signal has its own iteration's loss terms.
#[cfg(unix)]
#[test]
fn an_interrupt_signal_and_resume_give_the_uninterrupted_parameters() {
    let dir = temp_dir("signal");
    std::fs::write(dir.join("signal.toml"), PROBLEM_FILE).expect("problem file");
    let iters = "1500";
    let straight = pinn_run(&dir, "straight", &["--iters", iters])
        .status()
        .expect("pinn runs");
    assert!(straight.success(), "the straight run failed");

    let mut child = pinn_run(&dir, "split", &["--iters", iters])
        .spawn()
        .expect("pinn starts");
    let metrics = dir.join("split").join("metrics.csv");
    // Interrupted once it has logged a few rows.
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 4 {
        assert!(
            started.elapsed().as_secs() < 120,
            "no progress in metrics.csv"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let stopped = child.wait().expect("pinn ends");
    assert!(
        !stopped.success(),
        "the run ended before the signal reached it"
    );
    last_row_of_one_iteration(&dir.join("split"));

    let resumed = pinn_run(&dir, "split", &["--iters", iters, "--resume"])
        .status()
        .expect("pinn runs");
    assert!(resumed.success(), "the resumed run failed");
    assert_eq!(
        params(&dir.join("split")),
        params(&dir.join("straight")),
        "interrupted and resumed parameters differ"
    );
    std::fs::remove_dir_all(&dir).ok();
}
