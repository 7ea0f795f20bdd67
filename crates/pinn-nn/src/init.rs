//! How an [`Mlp`](crate::Mlp)'s weights and biases are first drawn.

use serde::{Deserialize, Serialize};

/// Weight initialisation (`[network] init` in a problem file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Glorot normal truncated at two standard deviations, zero biases (original TF1 code).
    #[default]
    GlorotTruncatedNormal,
    /// Glorot uniform weights, PyTorch's default uniform biases (PINNs-Torch).
    GlorotUniform,
    /// Glorot normal weights, `N(0, 2 / (fan_in + fan_out))` without truncation, and zero
    /// biases (DeepXDE's and PINNacle's default).
    GlorotNormal,
}
