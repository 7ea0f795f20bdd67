//! `[network]` and `[unknowns]`: what is learned.

use serde::{Deserialize, Serialize};

pub use pinn_core::Activation;
pub use pinn_nn::Init;

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
