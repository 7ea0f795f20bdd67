//! `[[loss]]` and `[loss_balance]`: the loss terms and their weights.

use serde::{Deserialize, Serialize};

use super::{Fits, Snapshot};

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

fn one() -> f64 {
    1.0
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
