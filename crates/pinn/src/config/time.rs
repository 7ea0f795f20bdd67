//! `[time]`: discrete-time (implicit Runge-Kutta) models.

use serde::{Deserialize, Serialize};

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
