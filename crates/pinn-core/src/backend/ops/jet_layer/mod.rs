//! The fused jet layer as a Burn backend extension: `σ` of a stacked jet followed by the next
//! layer's matrix product, in one op, with forwards on the `flex` CPU backend (`flex.rs`) and
//! the CubeCL backend (`cube.rs`) and a hand-written backward registered with Burn's autodiff
//! (`autodiff.rs`).

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

use crate::kernels::JetActivation;

mod autodiff;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod cube;
mod flex;

/// Backends that run the fused jet layer: the `flex` CPU backend (one pass over the elements
/// with the products inline) and, with the `cuda` or `wgpu` feature, the CubeCL backend (an
/// unrolled kernel per derivative set plus the backend's own matrix products) behind Burn's
/// kernel fusion. The autodiff backend wraps either with the hand-written backward.
#[backend_extension(
    Flex,
    Cube: cfg(any(feature = "cuda", feature = "wgpu")),
    Fusion: cfg(any(feature = "cuda", feature = "wgpu")),
    Autodiff
)]
pub trait JetLayerOps: Backend {
    /// `σ(z + bias) · weight` for a stacked jet `z` (`weight: [width, next]`).
    #[fusion(meta = fusion_meta::product)]
    fn jet_layer(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self>;

    /// [`jet_layer`](Self::jet_layer) that also returns the activated jet `h = σ(z + bias)`,
    /// which the backward's weight gradient needs: `(h, h · weight)`.
    #[fusion(meta = fusion_meta::activation_and_product)]
    fn jet_layer_forward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `z`, `bias` and `weight` of [`jet_layer`](Self::jet_layer), given `h` from
    /// [`jet_layer_forward`](Self::jet_layer_forward) and `grad`, the gradient of its output.
    #[fusion(meta = fusion_meta::gradients)]
    fn jet_layer_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        h: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `σ(z + bias)` for a stacked jet `z`, without a product: the last hidden layer of a
    /// network whose output is wider than that layer, whose streams are cut apart before the
    /// output product (see `pinn_nn::Mlp`).
    #[fusion(meta = fusion_meta::activation)]
    fn jet_activation(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self>;

    /// Gradients of `z` and `bias` of [`jet_activation`](Self::jet_activation), given `grad`,
    /// the gradient of its output.
    #[fusion(meta = fusion_meta::activation_gradients)]
    fn jet_activation_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The matrix product `a · b` of a network layer (`a: [rows, k]`, `b: [k, n]`): on the CPU
    /// the fused layer's row-tiled product, much faster than `flex`'s for a layer's small `k`.
    #[fusion(meta = fusion_meta::dense)]
    fn dense(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradients `(grad · bᵀ, aᵀ · grad)` of [`dense`](Self::dense).
    #[fusion(meta = fusion_meta::dense_gradients)]
    fn dense_backward(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The weight gradient `aᵀ · grad` of [`dense`](Self::dense) alone, for an input `a` that
    /// needs no gradient (the network's stacked inputs): half of
    /// [`dense_backward`](Self::dense_backward)'s work.
    #[fusion(meta = fusion_meta::dense_weight_gradient)]
    fn dense_weight_gradient(a: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Output shapes of the fused layer's operations, which Burn's kernel fusion records before
/// the operations run.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod fusion_meta {
    use super::*;
    use burn::backend::fusion::custom::TensorSpec;

    pub(super) fn product(
        z: &TensorSpec,
        _bias: &TensorSpec,
        weight: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> TensorSpec {
        let mut shape = z.shape.clone();
        shape[1] = weight.shape[1];
        TensorSpec::new(shape, z.dtype)
    }

    pub(super) fn activation_and_product(
        z: &TensorSpec,
        bias: &TensorSpec,
        weight: &TensorSpec,
        program: &Arc<JetActivation>,
    ) -> (TensorSpec, TensorSpec) {
        (z.clone(), product(z, bias, weight, program))
    }

    pub(super) fn gradients(
        z: &TensorSpec,
        bias: &TensorSpec,
        weight: &TensorSpec,
        _h: &TensorSpec,
        _grad: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> (TensorSpec, TensorSpec, TensorSpec) {
        (z.clone(), bias.clone(), weight.clone())
    }

    pub(super) fn activation(
        z: &TensorSpec,
        _bias: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> TensorSpec {
        z.clone()
    }

    pub(super) fn activation_gradients(
        z: &TensorSpec,
        bias: &TensorSpec,
        _grad: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> (TensorSpec, TensorSpec) {
        (z.clone(), bias.clone())
    }

    pub(super) fn dense(a: &TensorSpec, b: &TensorSpec) -> TensorSpec {
        let mut shape = a.shape.clone();
        shape[1] = b.shape[1];
        TensorSpec::new(shape, a.dtype)
    }

    pub(super) fn dense_gradients(
        a: &TensorSpec,
        b: &TensorSpec,
        _grad: &TensorSpec,
    ) -> (TensorSpec, TensorSpec) {
        (a.clone(), b.clone())
    }

    pub(super) fn dense_weight_gradient(a: &TensorSpec, grad: &TensorSpec) -> TensorSpec {
        TensorSpec::new([a.shape[1], grad.shape[1]].into(), a.dtype)
    }
}

/// The fused jet layer: the jet activation `σ(z + bias)` of a stacked jet `z: [streams · points,
/// width]` (see [`crate::kernels`]) followed by the product with the next layer's `weight: [width,
/// next]`, as one operation with one hand-written backward, on every device (the CPU kernels,
/// or the CubeCL ones on CUDA and wgpu).
pub fn jet_layer(
    z: Tensor<2>,
    bias: Tensor<2>,
    weight: Tensor<2>,
    program: &Arc<JetActivation>,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as JetLayerOps>::jet_layer(
        z.into_dispatch(),
        bias.into_dispatch(),
        weight.into_dispatch(),
        program.clone(),
    ))
}

/// The activated stacked jet `σ(z + bias)` alone (bias on the value rows only): the fused
/// activation without the next layer's product, for the last hidden layer of a network whose
/// output is wider than it.
pub fn jet_activation(z: Tensor<2>, bias: Tensor<2>, program: &Arc<JetActivation>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as JetLayerOps>::jet_activation(
        z.into_dispatch(),
        bias.into_dispatch(),
        program.clone(),
    ))
}

/// A network layer's matrix product `a · b` with a hand-written backward: on the CPU the fused
/// layer's row-tiled product (several times faster than the backend's for a layer's small
/// inner dimension), on the CubeCL backend its own.
pub fn dense(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as JetLayerOps>::dense(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}
