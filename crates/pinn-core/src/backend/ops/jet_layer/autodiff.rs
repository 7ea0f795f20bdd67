//! The fused jet layer under Burn's autodiff: the forward of the inner backend, and the
//! hand-written backward steps it registers.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use crate::kernels::JetActivation;

use super::JetLayerOps;
use crate::backend::ops::backward_to_parents;

/// The backward step of [`JetLayerOps::jet_layer`].
#[derive(Debug)]
struct JetLayerBackward;

impl<B: JetLayerOps> Backward<B, 3> for JetLayerBackward {
    /// `z`, `bias`, `weight`, the activated jet `h`, and the program.
    type State = (
        (
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
        ),
        Arc<JetActivation>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_to_parents::<B, _, 3>(ops, grads, |((z, bias, weight, h), program), grad| {
            let (grad_z, grad_bias, grad_weight) =
                B::jet_layer_backward(z, bias, weight, h, grad, program);
            [grad_z, grad_bias, grad_weight]
        });
    }
}

/// The backward step of [`JetLayerOps::jet_activation`].
#[derive(Debug)]
struct JetActivationBackward;

impl<B: JetLayerOps> Backward<B, 2> for JetActivationBackward {
    /// `z`, `bias` and the program.
    type State = ((FloatTensor<B>, FloatTensor<B>), Arc<JetActivation>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_to_parents::<B, _, 2>(ops, grads, |((z, bias), program), grad| {
            let (grad_z, grad_bias) = B::jet_activation_backward(z, bias, grad, program);
            [grad_z, grad_bias]
        });
    }
}

/// The backward step of [`JetLayerOps::dense`].
#[derive(Debug)]
struct DenseBackward;

impl<B: JetLayerOps> Backward<B, 2> for DenseBackward {
    /// `a` and `b`.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        if let [None, Some(weight)] = &ops.parents {
            // The input needs no gradient (the network's stacked inputs): the weight's alone.
            let grad = grads.consume::<B>(&ops.node);
            let (a, _) = ops.state;
            grads.register::<B>(weight.id, B::dense_weight_gradient(a, grad));
            return;
        }
        backward_to_parents::<B, _, 2>(ops, grads, |(a, b), grad| {
            let (grad_a, grad_b) = B::dense_backward(a, b, grad);
            [grad_a, grad_b]
        });
    }
}

impl<B: JetLayerOps, C: CheckpointStrategy> JetLayerOps for Autodiff<B, C> {
    fn jet_layer(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self> {
        match JetLayerBackward
            .prepare::<C>([z.node(), bias.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let z = z.primitive().clone();
                let bias = bias.primitive().clone();
                let weight = weight.primitive().clone();
                let (h, output) =
                    B::jet_layer_forward(z.clone(), bias.clone(), weight.clone(), program.clone());
                prep.finish(((z, bias, weight, h), program), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::jet_layer(
                z.into_primitive(),
                bias.into_primitive(),
                weight.into_primitive(),
                program,
            )),
        }
    }

    /// Not differentiated: only [`jet_layer`](Self::jet_layer) records a backward step.
    fn jet_layer_forward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (h, out) = B::jet_layer_forward(
            Self::inner(z),
            Self::inner(bias),
            Self::inner(weight),
            program,
        );
        (Self::from_inner(h), Self::from_inner(out))
    }

    /// Not differentiated (a gradient of a gradient is never asked for).
    fn jet_layer_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        h: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (gz, gb, gw) = B::jet_layer_backward(
            Self::inner(z),
            Self::inner(bias),
            Self::inner(weight),
            Self::inner(h),
            Self::inner(grad),
            program,
        );
        (
            Self::from_inner(gz),
            Self::from_inner(gb),
            Self::from_inner(gw),
        )
    }

    fn jet_activation(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self> {
        match JetActivationBackward
            .prepare::<C>([z.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let z = z.primitive().clone();
                let bias = bias.primitive().clone();
                let h = B::jet_activation(z.clone(), bias.clone(), program.clone());
                prep.finish(((z, bias), program), h)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::jet_activation(
                z.into_primitive(),
                bias.into_primitive(),
                program,
            )),
        }
    }

    /// Not differentiated (a gradient of a gradient is never asked for).
    fn jet_activation_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gz, gb) = B::jet_activation_backward(
            Self::inner(z),
            Self::inner(bias),
            Self::inner(grad),
            program,
        );
        (Self::from_inner(gz), Self::from_inner(gb))
    }

    fn dense(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match DenseBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let a = a.primitive().clone();
                let b = b.primitive().clone();
                let out = B::dense(a.clone(), b.clone());
                prep.finish((a, b), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::dense(a.into_primitive(), b.into_primitive()))
            }
        }
    }

    /// Not differentiated (a gradient of a gradient is never asked for).
    fn dense_backward(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (ga, gb) = B::dense_backward(Self::inner(a), Self::inner(b), Self::inner(grad));
        (Self::from_inner(ga), Self::from_inner(gb))
    }

    /// Not differentiated.
    fn dense_weight_gradient(a: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::dense_weight_gradient(Self::inner(a), Self::inner(grad)))
    }
}
