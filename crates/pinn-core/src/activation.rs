//! The activation function of the hidden layers: one enum for the problem file, the op-by-op
//! network, the fused CPU kernels and the generated GPU kernels.

use serde::{Deserialize, Serialize};

/// Activation function of the hidden layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Hyperbolic tangent (all paper networks).
    #[default]
    Tanh,
    /// Sine.
    Sin,
    /// Logistic sigmoid.
    Sigmoid,
    /// `z · sigmoid(z)`.
    Swish,
}

impl Activation {
    /// Whether the fused jet layer has a rule for it: `tanh` and the sigmoid (derivatives are
    /// polynomials in the activation) and `sin` (derivatives cycle); `swish` runs op by op.
    pub fn has_fused_rule(self) -> bool {
        !matches!(self, Activation::Swish)
    }
}
