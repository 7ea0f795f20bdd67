//! `[evaluate]` and `[run]`: what is reported, and on what device and in which mode a run executes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use pinn_core::{DeviceKind, Mode, Precision};

/// The final report's contents.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateConfig {
    /// Fields whose relative L2 error over the dataset grid is reported.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Restricts the evaluation to one grid slice, e.g. `{ t = 100 }` (negative indices count
    /// from the end); the whole grid when empty. Discrete-time problems evaluate at `time.t1`.
    #[serde(default)]
    pub at: BTreeMap<String, i64>,
    /// Exact solutions as expressions of the inputs and constants
    /// (`{ u = "exp(-t)*sin(pi*x)" }`): the reference instead of the dataset, on `grid`.
    #[serde(default)]
    pub exact: BTreeMap<String, String>,
    /// Points per input of the even grid the exact solutions are evaluated on; by default
    /// about 10,000 points in all (⌊10^(4/d)⌋ per input, at least 2).
    #[serde(default)]
    pub grid: Option<Vec<usize>>,
    /// A table of scattered reference points (relative to the problem file): CSV or
    /// whitespace text naming the inputs and fields in its header, or `.npy` with `columns`.
    /// The reference instead of a dataset grid or `exact`.
    #[serde(default)]
    pub points: Option<std::path::PathBuf>,
    /// The columns of an `.npy` `points` file, in order.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
}

impl EvaluateConfig {
    /// Points per input of the exact-solution grid for `inputs` inputs.
    pub fn grid_counts(&self, inputs: usize) -> Vec<usize> {
        self.grid.clone().unwrap_or_else(|| {
            let n = 10f64.powf(4.0 / inputs.max(1) as f64).floor() as usize;
            vec![n.max(2); inputs]
        })
    }
}

/// Device, precision and logging.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Device.
    #[serde(default)]
    pub device: DeviceKind,
    /// Precision.
    #[serde(default)]
    pub precision: Precision,
    /// Iterations between log lines in `metrics.csv`.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Adam iterations between checkpoints (`checkpoint.json`, for `pinn run --resume`);
    /// 0 disables them.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Execution mode (`eager`, `fused`, ...): `fused` runs each hidden layer as one fused
    /// operation where the device and activation allow; `eager` is the op-by-op reference.
    #[serde(default)]
    pub mode: Mode,
    /// Whether the fused modes run the hidden layers as fused jet operations (the default).
    /// `false` keeps the rest of the mode (on a GPU, Burn's kernel fusion) with the layers op by
    /// op, which measures what the fused layer adds.
    #[serde(default = "default_fuse_layers")]
    pub fuse_layers: bool,
}

fn default_fuse_layers() -> bool {
    true
}

fn default_checkpoint_every() -> usize {
    1000
}

fn default_log_every() -> usize {
    100
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            device: DeviceKind::default(),
            precision: Precision::default(),
            log_every: default_log_every(),
            checkpoint_every: default_checkpoint_every(),
            mode: Mode::default(),
            fuse_layers: default_fuse_layers(),
        }
    }
}
