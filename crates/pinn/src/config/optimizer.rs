//! `[optimizer]`: Adam, its learning-rate decay and the L-BFGS phase.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    pub(super) fn apply_schedule(&mut self) -> Result<(), String> {
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
    pub(super) fn check(&self) -> Result<(), String> {
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
