//! Benchmarks of the pinn framework: the per-iteration time of every shipped problem in every
//! execution mode, the paper's per-problem tables and its Table 1 (average speed-up of each mode
//! over the plain eager run), as Markdown, JSON and a bar chart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pinn::config::{ConfigError, ProblemConfig};
use pinn::stats::median;
use pinn::{DeviceKind, LoadOptions, Mode, Problem, ProblemError, ReplayStatus, Trainer};
use serde::{Deserialize, Serialize};

// The `pinn` binary's allocator module, the one source of it: the benchmark binaries install
// the same allocator so that timings match real runs, and the `pinn` library does not export it.
#[path = "../../pinn/src/allocator.rs"]
pub mod allocator;
pub mod roofline;
pub mod scaling;

/// The paper's eight benchmark problems, by file stem under `problems/`.
pub const PROBLEMS: [&str; 8] = [
    "burgers_cont_fwd",
    "burgers_cont_inv",
    "schrodinger_cont_fwd",
    "ns_cont_inv",
    "ac_disc_fwd",
    "kdv_disc_inv",
    "burgers_disc_fwd",
    "burgers_disc_inv",
];

/// Why the workspace (the folder holding `problems/`) was not found.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// `--root` names a folder without `problems/`.
    #[error("`{0}` is not a pinn workspace: it has no `problems/` folder")]
    NotAWorkspace(PathBuf),
    /// Neither the working folder nor any folder above it has `problems/`.
    #[error(
        "no pinn workspace (a folder with `problems/`) at or above `{0}`; run from the repository or pass --root"
    )]
    NotFound(PathBuf),
}

/// The workspace a benchmark runs in: where `problems/`, `datasets/` and the PyTorch reference
/// (`benches/reference/`) live. Found at run time, never baked in at build time, so that a
/// binary built on one machine runs from a checkout on another (the GPU kit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// `root` when given (it must hold `problems/`), else the nearest folder at or above
    /// `start` that holds `problems/`.
    pub fn locate(root: Option<&Path>, start: &Path) -> Result<Self, WorkspaceError> {
        let is_workspace = |dir: &Path| dir.join("problems").is_dir();
        match root {
            Some(root) if is_workspace(root) => Ok(Self {
                root: root.to_path_buf(),
            }),
            Some(root) => Err(WorkspaceError::NotAWorkspace(root.to_path_buf())),
            None => start
                .ancestors()
                .find(|dir| is_workspace(dir))
                .map(|dir| Self {
                    root: dir.to_path_buf(),
                })
                .ok_or_else(|| WorkspaceError::NotFound(start.to_path_buf())),
        }
    }

    /// [`locate`](Self::locate) from the working folder.
    pub fn from_current_dir(root: Option<&Path>) -> Result<Self, WorkspaceError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::locate(root, &cwd)
    }

    /// The workspace's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Loads `problems/<name>.toml` on a device with the workspace's dataset cache, in a mode.
    pub fn load_problem(
        &self,
        name: &str,
        device: DeviceKind,
        mode: Mode,
    ) -> Result<Problem, ProblemError> {
        self.load_problem_with(name, device, mode, |_| Ok(()))
    }

    /// Loads a shipped problem after `edit` changes its configuration (the scaling study's
    /// batch and depth); an edit's error names the field it could not set.
    pub fn load_problem_with(
        &self,
        name: &str,
        device: DeviceKind,
        mode: Mode,
        edit: impl FnOnce(&mut ProblemConfig) -> Result<(), String>,
    ) -> Result<Problem, ProblemError> {
        let path = self.root.join("problems").join(format!("{name}.toml"));
        let mut config = ProblemConfig::load(&path)?;
        edit(&mut config).map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            field: "(benchmark edit)".into(),
            message,
        })?;
        Problem::from_config(
            config,
            &path,
            &LoadOptions {
                datasets: self.root.join("datasets"),
                device: Some(device),
                mode: Some(mode),
                ..Default::default()
            },
        )
    }
}

/// Runs `warmup` untimed Adam steps, then times `iterations` steps one by one; each step ends by
/// reading its loss back, so asynchronous devices are timed to completion. Milliseconds, and
/// how the graph modes ran (they capture the step during the warm-up).
pub fn time_steps(problem: &Problem, warmup: usize, iterations: usize) -> (Vec<f64>, ReplayStatus) {
    let mut trainer = Trainer::new(problem);
    for _ in 0..warmup {
        let (loss, _) = trainer.step();
        std::hint::black_box(loss.into_scalar::<f32>());
    }
    let times = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            let (loss, _) = trainer.step();
            std::hint::black_box(loss.into_scalar::<f32>());
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    (times, trainer.replay_status())
}

/// One problem in one mode: its timing, or why it was not run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    /// Problem file stem.
    pub problem: String,
    /// Execution mode.
    pub mode: Mode,
    /// Device it ran on.
    pub device: DeviceKind,
    /// Median milliseconds per training iteration; `None` when the mode did not run.
    pub median_ms: Option<f64>,
    /// Timed iterations (after the warm-up).
    pub iterations: usize,
    /// Errors after training to completion (`--full`): relative L2 per field and relative error
    /// per identified parameter.
    #[serde(default)]
    pub errors: BTreeMap<String, f64>,
    /// Why the mode did not run (not available on the device, or it failed).
    #[serde(default)]
    pub unavailable: Option<String>,
    /// For a graph mode that ran its steps without replay: why (its time is then that of
    /// plain steps).
    #[serde(default)]
    pub replay_abandoned: Option<String>,
}

/// The PyTorch reference step of one problem (benches/reference/step.py).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceTiming {
    /// Problem file stem.
    pub problem: String,
    /// The reference's mode (`eager` or `graph`).
    pub mode: String,
    /// Median milliseconds per step.
    pub median_ms: f64,
    /// Per measuring round: this step's time over our fastest mode's in the same round (empty
    /// when not measured in rounds). Their median is the speed-up the report gives, which a
    /// shared machine's drift between rounds leaves alone.
    #[serde(default)]
    pub paired_speedups: Vec<f64>,
}

/// Everything one `pinn-bench` run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BenchResults {
    /// Our measurements, per problem and mode.
    pub measurements: Vec<Measurement>,
    /// PyTorch reference timings, when asked for.
    #[serde(default)]
    pub reference: Vec<ReferenceTiming>,
}

/// One row of Table 1: a mode's average speed-up over eager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AverageSpeedup {
    /// Execution mode.
    pub mode: Mode,
    /// Arithmetic mean over problems of `eager time / mode time` (as the paper averages).
    pub mean: f64,
    /// Number of problems in the mean.
    pub problems: usize,
}

impl BenchResults {
    fn time(&self, problem: &str, mode: Mode) -> Option<f64> {
        self.measurements
            .iter()
            .find(|m| m.problem == problem && m.mode == mode)
            .and_then(|m| m.median_ms)
    }

    fn problems(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for m in &self.measurements {
            if !seen.contains(&m.problem) {
                seen.push(m.problem.clone());
            }
        }
        seen
    }

    fn modes(&self) -> Vec<Mode> {
        Mode::ALL
            .into_iter()
            .filter(|&mode| self.measurements.iter().any(|m| m.mode == mode))
            .collect()
    }

    /// The speed-up of `mode` over eager on `problem`, when both ran.
    pub fn speedup(&self, problem: &str, mode: Mode) -> Option<f64> {
        Some(self.time(problem, Mode::Eager)? / self.time(problem, mode)?)
    }

    /// Table 1: each mode's mean speed-up over eager across the problems where both ran.
    pub fn table1(&self) -> Vec<AverageSpeedup> {
        self.modes()
            .into_iter()
            .map(|mode| {
                let ratios: Vec<f64> = self
                    .problems()
                    .iter()
                    .filter_map(|p| self.speedup(p, mode))
                    .collect();
                AverageSpeedup {
                    mode,
                    mean: if ratios.is_empty() {
                        f64::NAN
                    } else {
                        ratios.iter().sum::<f64>() / ratios.len() as f64
                    },
                    problems: ratios.len(),
                }
            })
            .collect()
    }

    /// Our fastest mode's speed-up over PyTorch's fastest mode on a problem: the median of the
    /// paired per-round ratios where the run measured in rounds, else the ratio of the fastest
    /// times.
    pub fn speedup_over_reference(&self, problem: &str) -> Option<f64> {
        let best = self
            .measurements
            .iter()
            .filter(|m| m.problem == problem)
            .filter_map(|m| m.median_ms)
            .reduce(f64::min)?;
        self.reference
            .iter()
            .filter(|r| r.problem == problem)
            .map(|r| {
                if r.paired_speedups.is_empty() {
                    r.median_ms / best
                } else {
                    median(&mut r.paired_speedups.clone())
                }
            })
            .reduce(f64::min)
    }

    /// The Markdown report: per-problem times and speed-ups per mode, errors when trained to
    /// completion, the PyTorch reference ratio, and Table 1.
    pub fn markdown(&self, device: DeviceKind) -> String {
        let modes = self.modes();
        let mut out = format!("# Training-step benchmark ({device})\n\n");
        out.push_str(
            "Median milliseconds per Adam iteration (speed-up over eager), the fastest of the \
             measuring rounds. The PyTorch column is the plain PyTorch step of \
             benches/reference/step.py (CUDA graphs where faster), timed in the same rounds, and \
             the last column our fastest mode's speed-up over it: the median over rounds of the \
             ratio within each round.\n\n",
        );
        out.push_str("| problem |");
        for m in &modes {
            out.push_str(&format!(" {m} |"));
        }
        let with_reference = !self.reference.is_empty();
        if with_reference {
            out.push_str(" PyTorch | speed-up over PyTorch |");
        }
        out.push_str("\n| --- |");
        for _ in &modes {
            out.push_str(" ---: |");
        }
        if with_reference {
            out.push_str(" ---: | ---: |");
        }
        out.push('\n');
        for p in self.problems() {
            out.push_str(&format!("| {p} |"));
            for &m in &modes {
                match (self.time(&p, m), self.speedup(&p, m)) {
                    (Some(t), Some(s)) => out.push_str(&format!(" {t:.2} ({s:.2}×) |")),
                    (Some(t), None) => out.push_str(&format!(" {t:.2} |")),
                    _ => out.push_str(" n/a |"),
                }
            }
            if with_reference {
                let torch = self
                    .reference
                    .iter()
                    .filter(|r| r.problem == p)
                    .map(|r| r.median_ms)
                    .fold(f64::NAN, f64::min);
                match self.speedup_over_reference(&p) {
                    Some(s) if !torch.is_nan() => out.push_str(&format!(" {torch:.2} | {s:.2}× |")),
                    _ => out.push_str(" n/a | n/a |"),
                }
            }
            out.push('\n');
        }

        let trained: Vec<&Measurement> = self
            .measurements
            .iter()
            .filter(|m| !m.errors.is_empty())
            .collect();
        if !trained.is_empty() {
            out.push_str("\n## Errors after training to completion\n\n");
            out.push_str("| problem | mode | errors |\n| --- | --- | --- |\n");
            for m in trained {
                let errors: Vec<String> = m
                    .errors
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.3e}"))
                    .collect();
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    m.problem,
                    m.mode,
                    errors.join(", ")
                ));
            }
        }

        let abandoned: Vec<&Measurement> = self
            .measurements
            .iter()
            .filter(|m| m.replay_abandoned.is_some())
            .collect();
        if !abandoned.is_empty() {
            out.push_str("\n## Graph modes timed without replay\n\n");
            for m in abandoned {
                let why = m.replay_abandoned.as_deref().unwrap_or_default();
                out.push_str(&format!("- {} / {}: {why}\n", m.problem, m.mode));
            }
        }

        if self.measurements.iter().any(|m| m.unavailable.is_some()) {
            out.push_str("\n## Not run\n\n");
            // One line per distinct reason keeps the list short when a whole mode is missing.
            let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for m in &self.measurements {
                if let Some(why) = &m.unavailable {
                    reasons
                        .entry(format!("{}: {why}", m.mode))
                        .or_default()
                        .push(m.problem.clone());
                }
            }
            let all = self.problems().len();
            for (reason, problems) in reasons {
                let which = if problems.len() == all && all > 1 {
                    "all problems".to_string()
                } else {
                    problems.join(", ")
                };
                out.push_str(&format!("- {reason} ({which})\n"));
            }
        }

        out.push_str("\n## Table 1: average speed-up over eager\n\n| mode | speed-up | problems |\n| --- | ---: | ---: |\n");
        for row in self.table1() {
            if row.problems == 0 {
                out.push_str(&format!("| {} | n/a | 0 |\n", row.mode));
            } else {
                out.push_str(&format!(
                    "| {} | {:.2}× | {} |\n",
                    row.mode, row.mean, row.problems
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(problem: &str, mode: Mode, ms: Option<f64>) -> Measurement {
        Measurement {
            problem: problem.into(),
            mode,
            device: DeviceKind::Cpu,
            median_ms: ms,
            iterations: 10,
            errors: BTreeMap::new(),
            unavailable: ms.is_none().then(|| "not here".to_string()),
            replay_abandoned: None,
        }
    }

    #[test]
    fn table1_averages_speedups_over_problems_where_both_modes_ran() {
        let results = BenchResults {
            measurements: vec![
                measured("a", Mode::Eager, Some(10.0)),
                measured("a", Mode::Fused, Some(5.0)),
                measured("b", Mode::Eager, Some(9.0)),
                measured("b", Mode::Fused, Some(2.25)),
                measured("c", Mode::Eager, Some(1.0)),
                measured("c", Mode::Fused, None),
            ],
            reference: vec![],
        };
        let table = results.table1();
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].mode, Mode::Eager);
        assert!((table[0].mean - 1.0).abs() < 1e-12);
        assert_eq!(table[0].problems, 3);
        assert_eq!(table[1].mode, Mode::Fused);
        assert!((table[1].mean - 3.0).abs() < 1e-12, "{}", table[1].mean);
        assert_eq!(table[1].problems, 2);
        let md = results.markdown(DeviceKind::Cpu);
        assert!(md.contains("| fused | 3.00× | 2 |"), "{md}");
        assert!(md.contains("n/a"), "{md}");
        assert!(!md.contains("without replay"), "{md}");
    }

    #[test]
    fn graph_modes_that_fell_back_are_listed_with_the_reason() {
        let mut fell_back = measured("a", Mode::GraphFused, Some(5.0));
        fell_back.replay_abandoned = Some("capturing the step failed: out of pool".into());
        let results = BenchResults {
            measurements: vec![
                measured("a", Mode::Fused, Some(5.0)),
                fell_back,
                measured("b", Mode::GraphFused, Some(1.0)),
            ],
            reference: vec![],
        };
        let md = results.markdown(DeviceKind::Cuda);
        let section = md
            .split("## Graph modes timed without replay")
            .nth(1)
            .unwrap_or_else(|| panic!("no fallback section in\n{md}"));
        assert!(
            section.contains("- a / graph+fused: capturing the step failed: out of pool"),
            "{md}"
        );
        assert!(!section.contains("- b /"), "{md}");
    }

    #[test]
    fn speedup_over_pytorch_is_the_median_of_paired_rounds() {
        let reference = |problem: &str, ms: f64, paired: Vec<f64>| ReferenceTiming {
            problem: problem.into(),
            mode: "eager".into(),
            median_ms: ms,
            paired_speedups: paired,
        };
        let results = BenchResults {
            measurements: vec![
                measured("a", Mode::Eager, Some(10.0)),
                measured("a", Mode::Fused, Some(4.0)),
                measured("b", Mode::Fused, Some(2.0)),
            ],
            // `a`: the fastest times alone (12 against 4) would say 3×; the rounds, measured
            // side by side, say 2.0, 2.5 and 4.0.
            reference: vec![
                reference("a", 12.0, vec![2.5, 4.0, 2.0]),
                reference("b", 5.0, vec![]),
            ],
        };
        let a = results.speedup_over_reference("a").expect("a was compared");
        assert!((a - 2.5).abs() < 1e-12, "{a}");
        let b = results.speedup_over_reference("b").expect("b was compared");
        assert!((b - 2.5).abs() < 1e-12, "{b}");
        assert_eq!(results.speedup_over_reference("c"), None);
        let md = results.markdown(DeviceKind::Cpu);
        assert!(md.contains("| 12.00 | 2.50× |"), "{md}");
    }

    #[test]
    fn the_workspace_is_found_at_run_time_from_any_folder_inside_it() {
        let base = std::env::temp_dir().join(format!("pinn-ws-{}", std::process::id()));
        let inside = base.join("runs/deep");
        std::fs::create_dir_all(base.join("problems")).expect("temp dir");
        std::fs::create_dir_all(&inside).expect("temp dir");
        let found = Workspace::locate(None, &inside).expect("found above");
        assert_eq!(found.root(), base);
        let given = Workspace::locate(Some(&base), Path::new("/")).expect("given");
        assert_eq!(given, found);

        let e = Workspace::locate(Some(&inside), &base).expect_err("no problems/ there");
        assert!(e.to_string().contains("runs/deep"), "{e}");
        assert!(e.to_string().contains("no `problems/`"), "{e}");
        let outside = std::env::temp_dir().join(format!("pinn-nows-{}", std::process::id()));
        std::fs::create_dir_all(&outside).expect("temp dir");
        let e = Workspace::locate(None, &outside).expect_err("nothing above");
        assert!(e.to_string().contains("--root"), "{e}");
        std::fs::remove_dir_all(&base).ok();
        std::fs::remove_dir_all(&outside).ok();
    }
}
