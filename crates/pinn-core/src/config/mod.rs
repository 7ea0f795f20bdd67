//! The problem file: every section of a `problems/*.toml`, as typed, validated structures.
//!
//! See `docs/toml.md` for the reference of every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::backend::{DeviceKind, Mode, Precision};

mod fit;
mod points;

pub use crate::activation::Activation;
pub use fit::{FitEntry, FitTarget, Fits};
pub use points::{Faces, GridSpec, NamedPointSet, PointSetConfig};

/// A configuration error, naming the file and the field or position.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read problem file `{path}`: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Malformed TOML or a key of the wrong type (the message has line and column).
    #[error("invalid problem file `{path}`: {message}")]
    Toml {
        /// File path.
        path: PathBuf,
        /// Parser message with line and column.
        message: String,
    },
    /// A semantically invalid value.
    #[error("invalid problem file `{path}`: field `{field}`: {message}")]
    Invalid {
        /// File path.
        path: PathBuf,
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A complete problem description.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemConfig {
    /// Short name, used for the output folder.
    pub name: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Seed of every random draw (points, initial weights).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Input coordinates and their bounds.
    pub domain: DomainConfig,
    /// Reference data (optional for problems without data).
    #[serde(default)]
    pub dataset: Option<DatasetConfig>,
    /// The network.
    pub network: NetworkConfig,
    /// Named constants usable in expressions.
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
    /// Discrete-time model (absent: continuous time).
    #[serde(default)]
    pub time: Option<TimeConfig>,
    /// Unknown scalar parameters learned with the network (inverse problems).
    #[serde(default)]
    pub unknowns: BTreeMap<String, UnknownConfig>,
    /// Derived outputs: `name = "expression"` of outputs and their derivatives.
    #[serde(default)]
    pub derived: BTreeMap<String, String>,
    /// PDE residuals: `name = "expression"`, driven to zero at collocation points.
    #[serde(default)]
    pub residuals: BTreeMap<String, String>,
    /// Named point sets, built in the order given.
    #[serde(default)]
    pub points: toml::Table,
    /// Loss terms, summed with their weights.
    #[serde(default)]
    pub loss: Vec<LossConfig>,
    /// The optimiser.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// Loss weights that balance themselves while training (off by default).
    #[serde(default)]
    pub loss_balance: Option<LossBalanceConfig>,
    /// What to report at the end.
    #[serde(default)]
    pub evaluate: EvaluateConfig,
    /// Device, precision and logging.
    #[serde(default)]
    pub run: RunConfig,
}

fn default_seed() -> u64 {
    1234
}

/// Input coordinates and the box they live in (also used to scale network inputs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Names of the input coordinates, e.g. `["x", "t"]`.
    pub inputs: Vec<String>,
    /// Lower bounds, one per input.
    pub lower: Vec<f64>,
    /// Upper bounds, one per input.
    pub upper: Vec<f64>,
}

/// Where a problem's reference data comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Built-in generator (e.g. `"burgers"`): the data is generated into `datasets/<name>/`
    /// on first use.
    #[serde(default)]
    pub generator: Option<String>,
    /// A folder holding the `.npy` files (relative to the problem file); overrides `generator`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `.npy` file stem of each grid axis, in the order of the field arrays' dimensions
    /// (`{ x = "x", t = "tt" }`). Every input needs an axis; extra axes (the time axis of a
    /// discrete-time problem) may be sliced but are not network inputs.
    pub axes: toml::Table,
    /// `.npy` file stem of each field (`u = "usol"`).
    pub fields: BTreeMap<String, String>,
    /// Allows input axes that reach outside `[domain]` (refused by default: the network would
    /// be evaluated outside the box its inputs are scaled from).
    #[serde(default)]
    pub outside_domain: bool,
}

impl DatasetConfig {
    /// The axes in file order as `(name, file stem)`.
    pub fn axis_list(&self) -> Result<Vec<(String, String)>, String> {
        self.axes
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(stem) => Ok((k.clone(), stem.to_string())),
                None => Err(format!("the file stem of axis `{k}` must be a string")),
            })
            .collect()
    }
}

/// Weight initialisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Glorot normal truncated at two standard deviations, zero biases (original TF1 code).
    #[default]
    GlorotTruncatedNormal,
    /// Glorot uniform weights, PyTorch's default uniform biases (PINNs-Torch).
    GlorotUniform,
}

/// The network architecture.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    /// Names of the outputs (one column each).
    pub outputs: Vec<String>,
    /// Hidden-layer activation.
    #[serde(default)]
    pub activation: Activation,
    /// Initialisation scheme.
    #[serde(default)]
    pub init: Init,
}

impl NetworkConfig {
    /// Weights and biases of the network for `inputs` input columns and `outputs` output
    /// columns (saturating: an absurd width does not overflow).
    pub fn parameter_count(&self, inputs: usize, outputs: usize) -> usize {
        let mut fan_in = inputs;
        let mut total = 0usize;
        for &width in self.hidden.iter().chain([&outputs]) {
            total = total.saturating_add(fan_in.saturating_add(1).saturating_mul(width));
            fan_in = width;
        }
        total
    }
}

/// Widest hidden layer a problem file may ask for.
pub const MAX_WIDTH: usize = 1 << 16;

/// Most network parameters a problem file may ask for (1 GiB of `f32` weights).
pub const MAX_PARAMETERS: usize = 1 << 28;

/// Most Runge-Kutta stages a discrete-time problem may ask for (the papers use up to 500).
pub const MAX_STAGES: usize = 1000;

/// Most points one point set may hold.
pub const MAX_POINTS: usize = 100_000_000;

/// Points of an even grid with `counts` points per input, or `None` past [`MAX_POINTS`] (or
/// past `usize`).
pub fn grid_points(counts: &[usize]) -> Option<usize> {
    counts
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .filter(|&n| n <= MAX_POINTS)
}

/// How an unknown parameter is represented while training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    /// The trained value is the parameter.
    #[default]
    Identity,
    /// The parameter is `exp(trained value)` (positive, scale-free).
    Exp,
}

/// An unknown scalar parameter of an inverse problem.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnknownConfig {
    /// Initial trained value (before the transform).
    pub init: f64,
    /// Representation.
    #[serde(default)]
    pub transform: Transform,
    /// True value, for the error report.
    #[serde(default)]
    pub truth: Option<f64>,
}

/// Reduction of a loss term's squared residuals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// Mean of squares (MSE).
    #[default]
    Mean,
    /// Sum of squares (SSE).
    Sum,
}

/// One loss term.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Name in logs (defaults to the first fitted field or residual).
    #[serde(default)]
    pub name: Option<String>,
    /// The point set.
    pub points: String,
    /// Quantities fitted at the points: fields fitted to the point set's data (or to
    /// `fit_value`), or a table of targets by field or derivative.
    #[serde(default)]
    pub fit: Fits,
    /// Fields fitted to a fixed value at the points (e.g. homogeneous Dirichlet data).
    #[serde(default)]
    pub fit_value: Option<f64>,
    /// Residuals driven to zero at the points.
    #[serde(default)]
    pub residuals: Vec<String>,
    /// Expressions whose values must agree at the lower and upper bound of an axis.
    #[serde(default)]
    pub periodic: Option<PeriodicConfig>,
    /// Discrete-time term: map the fitted field's stages back to snapshot `t0` or forward to
    /// `t1` with the Runge-Kutta scheme of `[time]`, using residual `rhs` as `u_t = F(u)`.
    #[serde(default)]
    pub irk: Option<Snapshot>,
    /// The residual giving the time derivative in an `irk` term.
    #[serde(default)]
    pub rhs: Option<String>,
    /// Mean or sum of squares.
    #[serde(default)]
    pub reduction: Reduction,
    /// Weight of the term.
    #[serde(default = "one")]
    pub weight: f64,
}

/// Periodicity constraints of a loss term.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodicConfig {
    /// The periodic input (its domain bounds are the two ends).
    pub axis: String,
    /// Expressions matched at both ends, e.g. `["u", "u_x"]`.
    pub fields: Vec<String>,
}

/// A snapshot of a discrete-time problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Snapshot {
    /// The first snapshot.
    T0,
    /// The second snapshot.
    T1,
}

/// Discrete-time (implicit Runge-Kutta) problems: which stages the network outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IrkMode {
    /// Outputs the q stages and the solution at `t1`, constrained by data at `t0`.
    Forward,
    /// Outputs the q stages, constrained by data at `t0` and `t1`.
    Inverse,
}

/// `[time]`: a discrete-time model between two snapshots of the dataset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeConfig {
    /// Only `"irk"` (Gauss-Legendre implicit Runge-Kutta).
    pub scheme: String,
    /// Dataset axis holding time.
    #[serde(default = "default_time_axis")]
    pub axis: String,
    /// Index of the first snapshot on the time axis.
    pub t0: i64,
    /// Index of the second snapshot.
    pub t1: i64,
    /// Number of stages; by default the smallest with `dt^(2q)` below machine precision.
    #[serde(default)]
    pub stages: Option<usize>,
    /// Forward or inverse model.
    pub mode: IrkMode,
}

fn default_time_axis() -> String {
    "t".into()
}

fn one() -> f64 {
    1.0
}

/// Optimiser settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Number of Adam iterations.
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Adam's first-moment decay.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Adam's second-moment decay.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Adam's epsilon.
    #[serde(default = "default_eps")]
    pub epsilon: f64,
    /// How the learning rate falls over the Adam iterations (constant when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay: Option<LrDecay>,
    /// L-BFGS run after the Adam iterations (as the original PINN code does).
    #[serde(default)]
    pub lbfgs: Option<LbfgsConfig>,
    /// The phases as a list, `[{ adam = 30000 }, { lbfgs = 50000 }]` (Adam first; either may
    /// be left out): sets `iterations` and `lbfgs.iterations`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<BTreeMap<String, usize>>,
}

impl OptimizerConfig {
    /// Folds `schedule` into `iterations` and `lbfgs`.
    fn apply_schedule(&mut self) -> Result<(), String> {
        if self.schedule.is_empty() {
            return Ok(());
        }
        let mut adam = None;
        let mut lbfgs = None;
        for (k, phase) in self.schedule.iter().enumerate() {
            let mut entries = phase.iter();
            let (Some((name, &n)), None) = (entries.next(), entries.next()) else {
                return Err(format!("phase {k} must be one `adam = N` or `lbfgs = N`"));
            };
            match name.as_str() {
                "adam" if adam.is_none() && lbfgs.is_none() => adam = Some(n),
                "lbfgs" if lbfgs.is_none() => lbfgs = Some(n),
                "adam" | "lbfgs" => {
                    return Err(format!(
                        "phase {k}: `{name}` out of order (at most one Adam phase, then one L-BFGS phase)"
                    ));
                }
                other => {
                    return Err(format!(
                        "phase {k}: unknown optimiser `{other}` (adam, lbfgs)"
                    ));
                }
            }
        }
        self.iterations = adam.unwrap_or(0);
        self.lbfgs = match (lbfgs, self.lbfgs.take()) {
            (None, _) => None,
            (Some(n), Some(mut l)) => {
                l.iterations = n;
                Some(l)
            }
            (Some(n), None) => Some(LbfgsConfig {
                iterations: n,
                history: default_history(),
                max_line_search: default_line_search(),
                ftol: default_ftol(),
                gtol: default_gtol(),
            }),
        };
        Ok(())
    }
}

fn default_iterations() -> usize {
    10_000
}
fn default_lr() -> f64 {
    1e-3
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            iterations: default_iterations(),
            lr: default_lr(),
            beta1: default_beta1(),
            beta2: default_beta2(),
            epsilon: default_eps(),
            decay: None,
            lbfgs: None,
            schedule: Vec::new(),
        }
    }
}

/// A learning-rate schedule for Adam: the rate of update `t` (counted from 0) is
/// `lr · factor(t)`.
///
/// Adam at a constant rate keeps jumping around a minimum; an inverse problem's unknowns then
/// swing by per cent until the last iteration. A falling rate lets them settle.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrDecay {
    /// `factor = rate^(t / every)`, or `rate^⌊t / every⌋` with `staircase` (a step schedule).
    Exponential {
        /// Factor per `every` iterations, in (0, 1].
        rate: f64,
        /// Iterations over which the rate is multiplied by `rate`.
        every: usize,
        /// Multiply in whole steps instead of continuously.
        #[serde(default)]
        staircase: bool,
    },
    /// `factor = 1 / (1 + rate · t / every)` (DeepXDE's "inverse time").
    InverseTime {
        /// Growth of the divisor per `every` iterations, at least 0.
        rate: f64,
        /// Iterations over which the divisor grows by `rate`.
        every: usize,
    },
    /// Half a cosine from 1 down to `floor` over `over` iterations, then `floor`.
    Cosine {
        /// Iterations the cosine takes.
        over: usize,
        /// Final factor, in [0, 1].
        #[serde(default)]
        floor: f64,
    },
}

impl LrDecay {
    /// The factor at update `t` (0 for the first), in f64 on the host: the reference the
    /// optimiser's device computation is tested against.
    pub fn factor(&self, t: u64) -> f64 {
        let t = t as f64;
        match *self {
            Self::Exponential {
                rate,
                every,
                staircase,
            } => {
                let periods = t / every as f64;
                rate.powf(if staircase { periods.floor() } else { periods })
            }
            Self::InverseTime { rate, every } => 1.0 / (1.0 + rate * t / every as f64),
            Self::Cosine { over, floor } => {
                let progress = t.min(over as f64) / over as f64;
                floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Why these settings are not a schedule, if they are not.
    fn check(&self) -> Result<(), String> {
        match *self {
            Self::Exponential { rate, every, .. } if !(rate > 0.0 && rate <= 1.0) || every == 0 => {
                Err("exponential decay needs 0 < rate <= 1 and every >= 1".into())
            }
            Self::InverseTime { rate, every }
                if !(rate >= 0.0 && rate.is_finite()) || every == 0 =>
            {
                Err("inverse_time decay needs a finite rate >= 0 and every >= 1".into())
            }
            Self::Cosine { over, floor } if over == 0 || !(0.0..=1.0).contains(&floor) => {
                Err("cosine decay needs over >= 1 and 0 <= floor <= 1".into())
            }
            _ => Ok(()),
        }
    }
}

/// `[loss_balance]`: loss weights set while training from the terms' gradients.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossBalanceConfig {
    /// The scheme.
    pub kind: LossBalanceKind,
    /// Adam iterations between weight updates (the first update is before the first step).
    #[serde(default = "default_balance_every")]
    pub every: usize,
    /// Smoothing: each update keeps this fraction of the old weight.
    #[serde(default = "default_balance_alpha")]
    pub alpha: f64,
}

/// Loss-balancing schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossBalanceKind {
    /// Learning-rate annealing (Wang, Teng & Perdikaris 2021, as jaxpi uses it): each loss
    /// component's weight becomes the sum of all components' parameter-gradient norms over its
    /// own, smoothed.
    GradNorm,
}

fn default_balance_every() -> usize {
    100
}

fn default_balance_alpha() -> f64 {
    0.9
}

/// L-BFGS settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbfgsConfig {
    /// Maximum number of iterations.
    pub iterations: usize,
    /// Number of correction pairs kept (`maxcor`).
    #[serde(default = "default_history")]
    pub history: usize,
    /// Maximum function evaluations per line search (`maxls`).
    #[serde(default = "default_line_search")]
    pub max_line_search: usize,
    /// Stop when `(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ ftol`.
    #[serde(default = "default_ftol")]
    pub ftol: f64,
    /// Stop when the largest gradient component is at most `gtol`.
    #[serde(default = "default_gtol")]
    pub gtol: f64,
}

fn default_history() -> usize {
    50
}
fn default_line_search() -> usize {
    50
}
fn default_ftol() -> f64 {
    f64::EPSILON
}
fn default_gtol() -> f64 {
    1e-5
}

impl LbfgsConfig {
    /// SciPy-like defaults with the given iteration limit.
    pub fn with_iterations(iterations: usize) -> Self {
        Self {
            iterations,
            history: default_history(),
            max_line_search: default_line_search(),
            ftol: default_ftol(),
            gtol: default_gtol(),
        }
    }
}

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

/// A TOML error as a [`ConfigError`]: when the error points at a key or value of the file (a
/// wrong type, an unknown key or variant, a missing key) it becomes a [`ConfigError::Invalid`]
/// naming the key's dotted path, with line and column; a syntax error keeps the parser's
/// message.
fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let message = e.message();
    let field = e.span().and_then(|span| {
        // An empty span at the start is the whole document (a missing top-level key).
        let mut field = if span.is_empty() && span.start == 0 {
            String::new()
        } else {
            key_path_at(text, span.clone())?
        };
        // "missing field `x`" points at the table that lacks it: name the key itself.
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(missing);
        }
        (!field.is_empty()).then_some((field, span.start))
    });
    match field {
        Some((field, at)) => {
            let line = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
            ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                message: format!("{message} (line {line}, column {column})"),
            }
        }
        None => ConfigError::Toml {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// The dotted path (`loss[1].weight`) of the innermost key whose key or value (for a table
/// given by a header, the header) covers `span` of a TOML document; `None` if the text does
/// not parse or no key covers it.
fn key_path_at(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    let covers = |outer: std::ops::Range<usize>| outer.start <= span.start && span.end <= outer.end;
    // Header tables' bodies lie outside their value spans: search every child, deepest first.
    fn find(
        value: &DeValue<'_>,
        covers: &dyn Fn(std::ops::Range<usize>) -> bool,
    ) -> Option<Vec<String>> {
        let found = |segment: String, child: &DeValue<'_>, own: bool| {
            find(child, covers)
                .map(|mut below| {
                    below.insert(0, segment.clone());
                    below
                })
                .or_else(|| own.then(|| vec![segment]))
        };
        match value {
            DeValue::Table(table) => table.iter().find_map(|(key, child)| {
                let own = covers(key.span()) || covers(child.span());
                found(key.get_ref().to_string(), child.get_ref(), own)
            }),
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| found(format!("[{i}]"), item.get_ref(), covers(item.span()))),
            _ => None,
        }
    }
    let root = DeTable::parse(text).ok()?;
    let segments = find(&DeValue::Table(root.into_inner()), &covers)?;
    let mut path = String::new();
    for segment in segments {
        if !path.is_empty() && !segment.starts_with('[') {
            path.push('.');
        }
        path.push_str(&segment);
    }
    Some(path)
}

impl ProblemConfig {
    /// Parses a problem from TOML text; `path` is only used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: ProblemConfig = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
        cfg.finish(path)
    }

    /// Builds a problem from a TOML table (the builder API); `path` names it in messages.
    pub fn from_table(table: toml::Table, path: &Path) -> Result<Self, ConfigError> {
        let cfg: ProblemConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Toml {
                    path: path.to_path_buf(),
                    message: e.message().to_string(),
                })?;
        cfg.finish(path)
    }

    fn finish(mut self, path: &Path) -> Result<Self, ConfigError> {
        self.optimizer
            .apply_schedule()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                field: "optimizer.schedule".into(),
                message,
            })?;
        self.validate(path)?;
        Ok(self)
    }

    /// Reads and parses a problem file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The `[points]` sets, parsed, in file order.
    pub fn point_sets(&self, path: &Path) -> Result<Vec<NamedPointSet>, ConfigError> {
        self.points
            .iter()
            .map(|(name, value)| {
                let spec: PointSetConfig =
                    value.clone().try_into().map_err(|e: toml::de::Error| {
                        ConfigError::Invalid {
                            path: path.to_path_buf(),
                            field: format!("points.{name}"),
                            message: e.message().to_string(),
                        }
                    })?;
                Ok(NamedPointSet {
                    name: name.clone(),
                    spec,
                })
            })
            .collect()
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let d = &self.domain;
        if d.inputs.is_empty() {
            return Err(invalid(
                "domain.inputs",
                "at least one input is needed".into(),
            ));
        }
        for (field, v) in [("domain.lower", &d.lower), ("domain.upper", &d.upper)] {
            if v.len() != d.inputs.len() {
                return Err(invalid(
                    field,
                    format!("has {} values for {} inputs", v.len(), d.inputs.len()),
                ));
            }
        }
        for (i, name) in d.inputs.iter().enumerate() {
            for (field, bound) in [("domain.lower", d.lower[i]), ("domain.upper", d.upper[i])] {
                if !bound.is_finite() {
                    return Err(invalid(
                        field,
                        format!("the bound of `{name}` must be finite, got {bound}"),
                    ));
                }
            }
            if d.lower[i].partial_cmp(&d.upper[i]) != Some(std::cmp::Ordering::Less) {
                return Err(invalid(
                    "domain",
                    format!("lower bound of `{name}` must be below its upper bound"),
                ));
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "domain.inputs",
                    format!("input name `{name}` must be alphanumeric (no `_`)"),
                ));
            }
        }
        if self.network.outputs.is_empty() {
            return Err(invalid(
                "network.outputs",
                "at least one output is needed".into(),
            ));
        }
        if self.network.hidden.is_empty() {
            return Err(invalid(
                "network.hidden",
                "at least one hidden layer is needed (without one the network is linear)".into(),
            ));
        }
        if let Some(&width) = self
            .network
            .hidden
            .iter()
            .find(|&&w| w == 0 || w > MAX_WIDTH)
        {
            return Err(invalid(
                "network.hidden",
                format!("layer widths must be between 1 and {MAX_WIDTH}, got {width}"),
            ));
        }
        // A discrete-time network has a column per stage, and one more in a forward model.
        let output_columns = match &self.time {
            Some(t) => t.stages.unwrap_or(1).min(MAX_STAGES) + 1,
            None => self.network.outputs.len(),
        };
        let parameters = self.network.parameter_count(d.inputs.len(), output_columns);
        if parameters > MAX_PARAMETERS {
            return Err(invalid(
                "network.hidden",
                format!(
                    "the network would have {parameters} parameters (at most {MAX_PARAMETERS})"
                ),
            ));
        }
        for (name, value) in &self.constants {
            if !value.is_finite() {
                return Err(invalid(
                    &format!("constants.{name}"),
                    format!("must be finite, got {value}"),
                ));
            }
        }
        for (name, u) in &self.unknowns {
            for (key, value) in [("init", Some(u.init)), ("truth", u.truth)] {
                if let Some(v) = value.filter(|v| !v.is_finite()) {
                    return Err(invalid(
                        &format!("unknowns.{name}.{key}"),
                        format!("must be finite, got {v}"),
                    ));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in self
            .network
            .outputs
            .iter()
            .chain(self.derived.keys())
            .chain(self.unknowns.keys())
            .chain(self.constants.keys())
            .chain(d.inputs.iter())
        {
            if !seen.insert(name.as_str()) {
                return Err(invalid("", format!("the name `{name}` is defined twice")));
            }
        }
        if self.loss.is_empty() {
            return Err(invalid(
                "loss",
                "at least one [[loss]] term is needed".into(),
            ));
        }
        for (i, l) in self.loss.iter().enumerate() {
            if l.fit.is_empty() && l.residuals.is_empty() && l.periodic.is_none() {
                return Err(invalid(
                    &format!("loss[{i}]"),
                    "a term needs `fit`, `residuals` or `periodic`".into(),
                ));
            }
            if l.irk.is_some() {
                if self.time.is_none() {
                    return Err(invalid(
                        &format!("loss[{i}].irk"),
                        "needs a [time] section".into(),
                    ));
                }
                if l.rhs.is_none() || l.fit.len() != 1 || !l.residuals.is_empty() {
                    return Err(invalid(
                        &format!("loss[{i}].irk"),
                        "an irk term needs `rhs` and exactly one `fit` field, and no `residuals`"
                            .into(),
                    ));
                }
            }
            if l.fit.has_targets() && l.fit_value.is_some() {
                return Err(invalid(
                    &format!("loss[{i}].fit_value"),
                    "cannot be combined with targets in `fit` (give each target there)".into(),
                ));
            }
            if l.irk.is_some() && l.fit.has_targets() {
                return Err(invalid(
                    &format!("loss[{i}].fit"),
                    "an irk term fits its field to the snapshot data: give `fit = [\"<field>\"]`"
                        .into(),
                ));
            }
            for f in l.fit.iter() {
                if let FitTarget::Value(v) = f.target
                    && !v.is_finite()
                {
                    return Err(invalid(
                        &format!("loss[{i}].fit.{}", f.quantity),
                        format!("must be finite, got {v}"),
                    ));
                }
            }
            if let Some(v) = l.fit_value.filter(|v| !v.is_finite()) {
                return Err(invalid(
                    &format!("loss[{i}].fit_value"),
                    format!("must be finite, got {v}"),
                ));
            }
            if !l.weight.is_finite() || l.weight < 0.0 {
                return Err(invalid(
                    &format!("loss[{i}].weight"),
                    "must be finite and >= 0".into(),
                ));
            }
        }
        let o = &self.optimizer;
        if !(o.lr > 0.0 && o.lr <= 1.0) {
            return Err(invalid(
                "optimizer.lr",
                format!(
                    "must be in (0, 1], got {} (Adam moves every parameter by up to about lr per step)",
                    o.lr
                ),
            ));
        }
        if !(o.epsilon.is_finite() && o.epsilon > 0.0) {
            return Err(invalid(
                "optimizer.epsilon",
                format!("must be finite and > 0, got {}", o.epsilon),
            ));
        }
        for (field, beta) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(invalid(field, format!("must be in [0, 1), got {beta}")));
            }
        }
        if let Some(decay) = &o.decay {
            decay
                .check()
                .map_err(|message| invalid("optimizer.decay", message))?;
        }
        if let Some(t) = &self.time {
            if t.scheme != "irk" {
                return Err(invalid(
                    "time.scheme",
                    format!("unknown scheme `{}` (only `irk`)", t.scheme),
                ));
            }
            if self.network.outputs.len() != 1 {
                return Err(invalid(
                    "network.outputs",
                    "a discrete-time network has one output (its columns are the stages)".into(),
                ));
            }
            if let Some(q) = t.stages.filter(|&q| q == 0 || q > MAX_STAGES) {
                return Err(invalid(
                    "time.stages",
                    format!("must be between 1 and {MAX_STAGES}, got {q}"),
                ));
            }
        }
        if let Some(b) = &self.loss_balance {
            if b.every == 0 {
                return Err(invalid("loss_balance.every", "must be at least 1".into()));
            }
            if !(0.0..1.0).contains(&b.alpha) {
                return Err(invalid(
                    "loss_balance.alpha",
                    format!("must be in [0, 1), got {}", b.alpha),
                ));
            }
        }
        let e = &self.evaluate;
        if let Some(counts) = &e.grid {
            if e.exact.is_empty() {
                return Err(invalid(
                    "evaluate.grid",
                    "is the grid of the exact solutions: give `exact` too".into(),
                ));
            }
            if counts.len() != d.inputs.len() || counts.iter().any(|&n| n < 2) {
                return Err(invalid(
                    "evaluate.grid",
                    format!(
                        "needs a count of at least 2 for each of the {} inputs, got {counts:?}",
                        d.inputs.len()
                    ),
                ));
            }
            if grid_points(counts).is_none() {
                return Err(invalid(
                    "evaluate.grid",
                    format!("more than {MAX_POINTS} points"),
                ));
            }
        }
        if !e.exact.is_empty() && self.time.is_some() {
            return Err(invalid(
                "evaluate.exact",
                "a discrete-time model is evaluated on its dataset's snapshot".into(),
            ));
        }
        if self.run.log_every == 0 {
            return Err(invalid("run.log_every", "must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[domain]
inputs = ["x", "t"]
lower = [-1.0, 0.0]
upper = [1.0, 1.0]
[network]
hidden = [4]
outputs = ["u"]
[residuals]
f = "u_t"
[points.c]
lhs = 10
[[loss]]
points = "c"
residuals = ["f"]
"#;

    #[test]
    fn parses_a_minimal_problem() {
        let c = ProblemConfig::from_toml(MINIMAL, Path::new("p.toml")).expect("valid");
        assert_eq!(c.seed, 1234);
        assert_eq!(c.optimizer.lr, 1e-3);
        let sets = c.point_sets(Path::new("p.toml")).expect("valid");
        assert_eq!(sets[0].spec.lhs, Some(10));
    }

    #[test]
    fn an_optimiser_schedule_sets_both_phases() {
        let with = |schedule: &str| {
            ProblemConfig::from_toml(
                &format!("{MINIMAL}\n[optimizer]\nschedule = {schedule}\n"),
                Path::new("p.toml"),
            )
        };
        let c = with("[{ adam = 300 }, { lbfgs = 500 }]").expect("valid");
        assert_eq!(c.optimizer.iterations, 300);
        assert_eq!(c.optimizer.lbfgs.as_ref().map(|l| l.iterations), Some(500));
        assert_eq!(c.optimizer.lbfgs.as_ref().map(|l| l.history), Some(50));
        let c = with("[{ lbfgs = 50000 }]").expect("L-BFGS only");
        assert_eq!(c.optimizer.iterations, 0);
        let msg = with("[{ lbfgs = 5 }, { adam = 3 }]")
            .expect_err("Adam after L-BFGS")
            .to_string();
        assert!(
            msg.contains("optimizer.schedule") && msg.contains("out of order"),
            "{msg}"
        );
        let msg = with("[{ sgd = 5 }]").expect_err("unknown").to_string();
        assert!(msg.contains("sgd"), "{msg}");
    }

    #[test]
    fn learning_rate_decays_parse_and_follow_their_formulas() {
        let with = |decay: &str| {
            ProblemConfig::from_toml(
                &format!("{MINIMAL}\n[optimizer]\ndecay = {decay}\n"),
                Path::new("p.toml"),
            )
        };
        let decay = |text: &str| with(text).expect("valid").optimizer.decay.expect("a decay");
        let smooth = decay(r#"{ kind = "exponential", rate = 0.5, every = 100 }"#);
        assert!((smooth.factor(0) - 1.0).abs() < 1e-15);
        assert!((smooth.factor(50) - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((smooth.factor(200) - 0.25).abs() < 1e-15);
        let steps = decay(r#"{ kind = "exponential", rate = 0.5, every = 100, staircase = true }"#);
        assert_eq!(
            (steps.factor(99), steps.factor(100), steps.factor(250)),
            (1.0, 0.5, 0.25)
        );
        let inverse = decay(r#"{ kind = "inverse_time", rate = 1.0, every = 10 }"#);
        assert!((inverse.factor(30) - 0.25).abs() < 1e-15);
        let cosine = decay(r#"{ kind = "cosine", over = 100, floor = 0.1 }"#);
        assert!((cosine.factor(0) - 1.0).abs() < 1e-15);
        assert!((cosine.factor(50) - 0.55).abs() < 1e-15);
        assert!((cosine.factor(100) - 0.1).abs() < 1e-15);
        assert!((cosine.factor(1000) - 0.1).abs() < 1e-15);
        for bad in [
            r#"{ kind = "exponential", rate = 1.5, every = 100 }"#,
            r#"{ kind = "exponential", rate = 0.5, every = 0 }"#,
            r#"{ kind = "inverse_time", rate = -1.0, every = 10 }"#,
            r#"{ kind = "cosine", over = 100, floor = 2.0 }"#,
        ] {
            let msg = with(bad).expect_err(bad).to_string();
            assert!(msg.contains("optimizer.decay"), "{bad}: {msg}");
        }
        let msg = with(r#"{ kind = "linear", over = 10 }"#)
            .expect_err("unknown kind")
            .to_string();
        assert!(msg.contains("linear") && msg.contains("p.toml"), "{msg}");
    }

    #[test]
    fn malformed_toml_names_file_line_and_column() {
        let text = MINIMAL.replace("hidden = [4]", "hidden = [4,");
        let e = ProblemConfig::from_toml(&text, Path::new("bad.toml")).expect_err("malformed");
        let msg = e.to_string();
        assert!(msg.contains("bad.toml") && msg.contains("line"), "{msg}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let text = MINIMAL.replace("hidden = [4]", "hiden = [4]");
        let msg = ProblemConfig::from_toml(&text, Path::new("p.toml"))
            .expect_err("typo")
            .to_string();
        assert!(msg.contains("hiden"), "{msg}");
        let text = MINIMAL.replace("lower = [-1.0, 0.0]", "lower = [-1.0]");
        let msg = ProblemConfig::from_toml(&text, Path::new("p.toml"))
            .expect_err("short bounds")
            .to_string();
        assert!(
            msg.contains("domain.lower") && msg.contains("1 values for 2 inputs"),
            "{msg}"
        );
        let text = MINIMAL.replace("lhs = 10", "lhs = 10\nbogus = 1");
        let c = ProblemConfig::from_toml(&text, Path::new("p.toml")).expect("lazy point sets");
        let msg = c
            .point_sets(Path::new("p.toml"))
            .expect_err("bogus")
            .to_string();
        assert!(msg.contains("points.c") && msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn values_that_would_only_fail_during_training_are_refused_at_load() {
        let cases = [
            (
                "upper = [1.0, 1.0]",
                "upper = [1.0, inf]",
                "domain.upper",
                "`t` must be finite",
            ),
            (
                "lower = [-1.0, 0.0]",
                "lower = [nan, 0.0]",
                "domain.lower",
                "`x` must be finite",
            ),
            (
                "hidden = [4]",
                "hidden = []",
                "network.hidden",
                "at least one hidden layer",
            ),
            (
                "[residuals]",
                "[constants]\nk = nan\n[residuals]",
                "constants.k",
                "finite",
            ),
            (
                "[residuals]",
                "[optimizer]\nlr = 0.0\n[residuals]",
                "optimizer.lr",
                "(0, 1]",
            ),
            (
                "[residuals]",
                "[optimizer]\nlr = 1e300\n[residuals]",
                "optimizer.lr",
                "(0, 1]",
            ),
            (
                "[residuals]",
                "[optimizer]\nepsilon = nan\n[residuals]",
                "optimizer.epsilon",
                "finite and > 0",
            ),
            (
                "[residuals]",
                "[unknowns]\nk = { init = inf }\n[residuals]",
                "unknowns.k.init",
                "finite",
            ),
            (
                "hidden = [4]",
                "hidden = [4, 9223372036854775807]",
                "network.hidden",
                "between 1 and 65536",
            ),
            (
                "hidden = [4]",
                "hidden = [60000, 60000, 60000]",
                "network.hidden",
                "parameters (at most",
            ),
            (
                "hidden = [4]",
                "hidden = [4, \"wide\"]",
                "network.hidden[1]",
                "invalid type: string",
            ),
            (
                "[residuals]",
                "[optimizer]\nbeta2 = 1.0\n[residuals]",
                "optimizer.beta2",
                "[0, 1)",
            ),
        ];
        for (from, to, field, cause) in cases {
            let text = MINIMAL.replace(from, to);
            let msg = ProblemConfig::from_toml(&text, Path::new("p.toml"))
                .expect_err(to)
                .to_string();
            assert!(
                msg.contains("p.toml") && msg.contains(field) && msg.contains(cause),
                "{to}: {msg}"
            );
        }
    }
}
