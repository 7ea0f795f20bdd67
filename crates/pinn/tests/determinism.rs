//! Same problem, seed and thread count, same parameters bit for bit, at a size where the fused
//! layers split into many parallel tasks (whose partial gradients must be combined in a fixed
//! order, not in the order work stealing happens to finish them).

use std::path::{Path, PathBuf};

use std::cell::Cell;

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

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pinn-determinism-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn params(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("params.json")).expect("params.json")
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
    // The row written at the stop has the loss terms of that iteration: they add up to its
    // total (unit weights).
    let metrics = std::fs::read_to_string(stopped.join("metrics.csv")).expect("metrics");
    let last = metrics.lines().last().expect("a row");
    let fields: Vec<f64> = last
        .split(',')
        .map(|f| f.parse().expect("a number"))
        .collect();
    assert_eq!(fields[0], 7.0, "{last}");
    let (total, terms) = (fields[1], fields[2] + fields[3]);
    assert!((total - terms).abs() <= 1e-6 * total, "{metrics}");
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
