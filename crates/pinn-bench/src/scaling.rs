//! The paper's batch-size and depth study (PINNs-Torch §3.2, Figure 3): one training step of
//! the 3-D Navier-Stokes problem (`problems/beltrami3d.toml`) timed against the batch of its
//! interior points, and against the depth of its network at one batch, in each execution mode.

use std::path::Path;

use pinn::config::ProblemConfig;
use pinn::{DeviceKind, Mode};
use serde::{Deserialize, Serialize};

/// The problem the study trains.
pub const PROBLEM: &str = "beltrami3d";
/// The point set whose batch the study varies (the residuals' collocation points).
pub const SCALED_SET: &str = "interior";
/// Batch sizes of the batch sweep (the paper's 512 and up, by fours).
pub const BATCHES: [usize; 5] = [512, 2_048, 8_192, 32_768, 131_072];
/// Hidden layers of the depth sweep.
pub const DEPTHS: [usize; 5] = [2, 4, 6, 8, 10];
/// The batch of the depth sweep.
pub const DEPTH_BATCH: usize = 8_192;
/// The depth of the batch sweep (the problem's own network).
pub const BATCH_DEPTH: usize = 4;
/// Width of every hidden layer.
pub const WIDTH: usize = 50;
/// The modes compared (the paper's: plain, fused, graph replay and both).
pub const MODES: [Mode; 4] = [Mode::Eager, Mode::Fused, Mode::Graph, Mode::GraphFused];

/// Which sweep a measurement belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// Batch sizes at the problem's depth.
    Batch,
    /// Depths at [`DEPTH_BATCH`].
    Depth,
}

/// One configuration of the study: the interior batch and the hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingPoint {
    /// Interior points per iteration.
    pub batch: usize,
    /// Hidden layers (each [`WIDTH`] wide).
    pub depth: usize,
}

impl ScalingPoint {
    /// Every point of a sweep, in order.
    pub fn sweep(sweep: Sweep) -> Vec<ScalingPoint> {
        match sweep {
            Sweep::Batch => BATCHES
                .iter()
                .map(|&batch| ScalingPoint {
                    batch,
                    depth: BATCH_DEPTH,
                })
                .collect(),
            Sweep::Depth => DEPTHS
                .iter()
                .map(|&depth| ScalingPoint {
                    batch: DEPTH_BATCH,
                    depth,
                })
                .collect(),
        }
    }

    /// The study's problem at this point: the interior set read in batches of `batch` (its
    /// pool grown to the batch where it is smaller) and `depth` hidden layers of [`WIDTH`].
    pub fn apply(&self, config: &mut ProblemConfig) -> Result<(), String> {
        let set = config
            .points
            .get_mut(SCALED_SET)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| format!("the problem has no point set `{SCALED_SET}`"))?;
        let pool = set
            .get("uniform")
            .and_then(toml::Value::as_integer)
            .ok_or_else(|| format!("point set `{SCALED_SET}` is not `uniform = N`"))?;
        let batch = self.batch as i64;
        set.insert("uniform".into(), toml::Value::Integer(pool.max(batch)));
        set.insert("batch".into(), toml::Value::Integer(batch));
        config.network.hidden = vec![WIDTH; self.depth];
        Ok(())
    }
}

/// One timed configuration in one mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScalingRow {
    /// The sweep.
    pub sweep: Sweep,
    /// The configuration.
    pub point: ScalingPoint,
    /// The mode.
    pub mode: Mode,
    /// Median milliseconds per training step; `None` when not run (see `note`).
    pub median_ms: Option<f64>,
    /// Why the mode did not run, or why its graph was not replayed.
    pub note: Option<String>,
}

/// The whole study on one device (`scaling.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScalingResults {
    /// The device.
    pub device: DeviceKind,
    /// Every measurement, in the order taken.
    pub rows: Vec<ScalingRow>,
}

impl ScalingResults {
    /// The median step time of `mode` at `point` of `sweep`.
    pub fn time(&self, sweep: Sweep, point: ScalingPoint, mode: Mode) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.sweep == sweep && r.point == point && r.mode == mode)?
            .median_ms
    }

    /// Eager's time over `mode`'s at `point` of `sweep`.
    pub fn speedup(&self, sweep: Sweep, point: ScalingPoint, mode: Mode) -> Option<f64> {
        Some(self.time(sweep, point, Mode::Eager)? / self.time(sweep, point, mode)?)
    }

    /// The modes measured (with a time) in `sweep`, in [`MODES`] order.
    fn modes(&self, sweep: Sweep) -> Vec<Mode> {
        MODES
            .into_iter()
            .filter(|&m| {
                self.rows
                    .iter()
                    .any(|r| r.sweep == sweep && r.mode == m && r.median_ms.is_some())
            })
            .collect()
    }

    /// The study as Markdown: per sweep, milliseconds per step and the speed-up over eager.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Batch size and depth ({PROBLEM}, {})\n\nMedian milliseconds per training step \
             (speed-up over eager in brackets). Batch sweep: {BATCH_DEPTH} hidden layers of \
             {WIDTH}; depth sweep: batch {DEPTH_BATCH}. The batch is the interior (residual) \
             points'; the initial and wall sets keep their own batches.\n",
            self.device.name()
        );
        for (sweep, title, key) in [
            (Sweep::Batch, "Batch size", "batch"),
            (Sweep::Depth, "Hidden layers", "depth"),
        ] {
            let modes = self.modes(sweep);
            out.push_str(&format!("\n## {title}\n\n| {key} |"));
            for m in &modes {
                out.push_str(&format!(" {m} |"));
            }
            out.push_str("\n| ---: |");
            out.push_str(&" ---: |".repeat(modes.len()));
            out.push('\n');
            for point in ScalingPoint::sweep(sweep) {
                let x = match sweep {
                    Sweep::Batch => point.batch,
                    Sweep::Depth => point.depth,
                };
                out.push_str(&format!("| {x} |"));
                for &m in &modes {
                    let cell = match (self.time(sweep, point, m), self.speedup(sweep, point, m)) {
                        (Some(t), Some(s)) if m != Mode::Eager => format!(" {t:.2} ({s:.2}x) |"),
                        (Some(t), _) => format!(" {t:.2} |"),
                        (None, _) => " n/a |".to_string(),
                    };
                    out.push_str(&cell);
                }
                out.push('\n');
            }
        }
        // Each distinct note once, with the configurations it applies to.
        let mut notes: Vec<(Mode, &str, Vec<String>)> = Vec::new();
        for r in &self.rows {
            let Some(note) = r.note.as_deref() else {
                continue;
            };
            let at = format!("{}/{}", r.point.batch, r.point.depth);
            match notes
                .iter_mut()
                .find(|(m, n, _)| *m == r.mode && *n == note)
            {
                Some((_, _, points)) => points.push(at),
                None => notes.push((r.mode, note, vec![at])),
            }
        }
        if !notes.is_empty() {
            out.push_str("\nNotes (batch/depth):\n");
            for (mode, note, points) in notes {
                let total = self.rows.iter().filter(|r| r.mode == mode).count();
                let at = if points.len() == total {
                    "every configuration".to_string()
                } else {
                    points.join(", ")
                };
                out.push_str(&format!("- {mode}, {at}: {note}\n"));
            }
        }
        out
    }

    /// The paper's Figure 3 for each sweep: time per step and speed-up over eager, one line
    /// per mode (`scaling_batch.png`, `scaling_depth.png` in `out`). Returns the files written.
    pub fn plot(&self, out: &Path) -> Result<Vec<std::path::PathBuf>, pinn::plot::PlotError> {
        let mut written = Vec::new();
        for (sweep, name, x_label) in [
            (Sweep::Batch, "scaling_batch.png", "log2(batch size)"),
            (Sweep::Depth, "scaling_depth.png", "hidden layers"),
        ] {
            let x = |p: ScalingPoint| match sweep {
                Sweep::Batch => (p.batch as f64).log2(),
                Sweep::Depth => p.depth as f64,
            };
            let series = |value: &dyn Fn(ScalingPoint, Mode) -> Option<f64>, modes: &[Mode]| {
                modes
                    .iter()
                    .map(|&m| {
                        let line = ScalingPoint::sweep(sweep)
                            .into_iter()
                            .filter_map(|p| Some((x(p), value(p, m)?)))
                            .collect();
                        (m.to_string(), line)
                    })
                    .filter(|(_, line): &(String, Vec<(f64, f64)>)| !line.is_empty())
                    .collect::<Vec<_>>()
            };
            let modes = self.modes(sweep);
            let times = series(&|p, m| self.time(sweep, p, m), &modes);
            let speedups = series(&|p, m| self.speedup(sweep, p, m), &modes);
            if times.is_empty() {
                continue;
            }
            let path = out.join(name);
            pinn::plot::line_charts(
                &path,
                &[
                    pinn::plot::LineChart {
                        caption: "time per iteration",
                        x_label,
                        y_label: "ms",
                        series: &times,
                    },
                    pinn::plot::LineChart {
                        caption: "speed-up over eager",
                        x_label,
                        y_label: "speed-up",
                        series: &speedups,
                    },
                ],
            )?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaling_point_sets_the_batch_the_pool_and_the_depth() {
        let workspace = crate::Workspace::from_current_dir(None).expect("inside the workspace");
        let path = workspace
            .root()
            .join("problems")
            .join(format!("{PROBLEM}.toml"));
        let mut config = ProblemConfig::load(&path).expect("the shipped problem");
        let point = ScalingPoint {
            batch: 131_072,
            depth: 6,
        };
        point.apply(&mut config).expect("applies");
        let set = config.points[SCALED_SET].as_table().expect("a table");
        assert_eq!(set["batch"].as_integer(), Some(131_072));
        assert_eq!(set["uniform"].as_integer(), Some(131_072));
        assert_eq!(config.network.hidden, vec![WIDTH; 6]);
    }

    #[test]
    fn speedups_are_eager_over_the_mode_and_missing_modes_are_left_out() {
        let point = ScalingPoint {
            batch: 512,
            depth: 4,
        };
        let row = |mode, ms| ScalingRow {
            sweep: Sweep::Batch,
            point,
            mode,
            median_ms: ms,
            note: None,
        };
        let results = ScalingResults {
            device: DeviceKind::Cpu,
            rows: vec![
                row(Mode::Eager, Some(30.0)),
                row(Mode::Fused, Some(10.0)),
                row(Mode::Graph, None),
            ],
        };
        assert_eq!(results.speedup(Sweep::Batch, point, Mode::Fused), Some(3.0));
        assert_eq!(results.speedup(Sweep::Batch, point, Mode::Graph), None);
        assert_eq!(results.modes(Sweep::Batch), [Mode::Eager, Mode::Fused]);
        let md = results.markdown();
        assert!(md.contains("| 512 | 30.00 | 10.00 (3.00x) |"), "{md}");
    }
}
