//! What a run reports: errors, timings, the L-BFGS phase, graph replay, loss weights.

use super::*;

/// The report written at the end of a run (`report.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Problem name.
    pub problem: String,
    /// Network description.
    pub network: String,
    /// Seed.
    pub seed: u64,
    /// Device.
    pub device: String,
    /// Precision.
    pub precision: String,
    /// The execution plan the run followed (`fused on cpu: fused layers, fused IRK term`).
    pub execution: String,
    /// Iterations run.
    pub iterations: usize,
    /// Final total loss.
    pub final_loss: f64,
    /// Final loss components.
    pub final_components: std::collections::BTreeMap<String, f64>,
    /// Errors and identified parameters.
    pub evaluation: Evaluation,
    /// Median wall time of one Adam iteration, in milliseconds (0 when only L-BFGS ran).
    pub median_ms_per_iteration: f64,
    /// Total training wall time, in seconds.
    pub training_seconds: f64,
    /// The L-BFGS phase, if configured.
    pub lbfgs: Option<LbfgsSummary>,
    /// How the graph modes ran the steps (absent in the other modes): replayed as a graph, or
    /// why not.
    pub graph_replay: Option<String>,
    /// The final loss-balancing weight of each component (with `[loss_balance]`).
    pub loss_weights: Option<std::collections::BTreeMap<String, f64>>,
}

/// What the L-BFGS phase did.
#[derive(Clone, Debug, Serialize)]
pub struct LbfgsSummary {
    /// Iterations done.
    pub iterations: usize,
    /// Loss and gradient evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub stop_reason: crate::lbfgs::StopReason,
    /// Loss at the end.
    pub final_loss: f64,
}

/// Outcome of a run: the report and the trained parameters.
pub struct Trained {
    /// The report.
    pub report: Report,
    /// Trained parameters (network, then unknowns).
    pub params: Vec<Tensor<2>>,
}
