//! Burn backend extensions for the operations the framework fuses, one folder per op in Burn's
//! style: the trait and its dispatch in `mod.rs`, the `flex` CPU forward in `flex.rs`, the
//! CubeCL forward in `cube.rs` (CUDA, wgpu), and the hand-written backward registered with
//! Burn's autodiff in `autodiff.rs`. This file holds what the ops share.

use burn::backend::Backend;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;

use crate::kernels::Real;

pub(super) mod batch_rows;
pub(super) mod irk_misfit;
pub(super) mod jet_layer;
#[cfg(all(test, feature = "cuda"))]
mod offline_cuda;

/// `t` itself when its buffer is contiguous from its start, else a contiguous copy: what the CPU
/// kernels read.
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    }
}

/// The elements of a contiguous tensor (see [`contiguous`]).
pub(crate) fn slice<E: Real + burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> &[E] {
    t.as_slice::<E>().unwrap_or(&[])
}

/// The common body of a hand-written backward step: takes the gradient of the op's output,
/// runs `backward` on the saved state with it, and registers each of the results with its
/// parent where that parent is tracked (the rest are dropped).
pub(crate) fn backward_to_parents<B: Backend, S, const N: usize>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
    backward: impl FnOnce(S, FloatTensor<B>) -> [FloatTensor<B>; N],
) {
    let grad = grads.consume::<B>(&ops.node);
    for (node, grad) in ops.parents.into_iter().zip(backward(ops.state, grad)) {
        if let Some(node) = node {
            grads.register::<B>(node.id, grad);
        }
    }
}
