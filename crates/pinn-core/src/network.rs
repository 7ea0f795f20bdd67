//! What the framework needs from a network: parameters as a flat list of tensors, and a
//! forward pass that propagates a jet of input derivatives.

use burn::tensor::Tensor;

use crate::backend::TensorContext;
use crate::jet::Jet;
use crate::partial::DerivativeSet;
use crate::sampling::SeededRng;

/// A network mapping `[points, inputs]` to `[points, outputs]`, differentiable in its inputs
/// through Taylor-mode jets and in its parameters through Burn's autodiff.
///
/// Parameters are kept outside the network as a flat `Vec<Tensor<2>>`, so that optimisers,
/// checkpoints and graph capture treat every network alike.
pub trait JetNetwork: Send + Sync {
    /// Number of output columns.
    fn output_dim(&self) -> usize;
    /// Freshly initialised parameters, deterministic in `rng`.
    fn init_parameters(&self, rng: &mut SeededRng, ctx: &TensorContext) -> Vec<Tensor<2>>;
    /// The outputs and their derivatives in `derivatives` at the given input points.
    fn forward(&self, params: &[Tensor<2>], inputs: &Tensor<2>, derivatives: &DerivativeSet)
    -> Jet;
    /// A short description (layers, activation) for reports.
    fn describe(&self) -> String;
}
