//! The IRK misfit under Burn's autodiff: the hand-written backward for `u` and `f`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, TensorMetadata};

use super::IrkMisfitOps;
use crate::backend::ops::backward_to_parents;

/// The backward step of [`IrkMisfitOps::irk_misfit`].
#[derive(Debug)]
struct IrkMisfitBackward;

impl<B: IrkMisfitOps> Backward<B, 2> for IrkMisfitBackward {
    /// The misfit, the map and the columns of `f`.
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_to_parents::<B, _, 2>(ops, grads, |(misfit, map, f_cols), grad| {
            let (grad_u, grad_f) = B::irk_misfit_backward(misfit, map, grad, f_cols);
            [grad_u, grad_f]
        });
    }
}

impl<B: IrkMisfitOps, C: CheckpointStrategy> IrkMisfitOps for Autodiff<B, C> {
    /// Differentiated in `u` and `f`; `map` and the target are taken as constants.
    fn irk_misfit(
        u: FloatTensor<Self>,
        f: FloatTensor<Self>,
        map: FloatTensor<Self>,
        target: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let map = Self::inner(map);
        let target = Self::inner(target);
        match IrkMisfitBackward
            .prepare::<C>([u.node(), f.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let u = u.primitive().clone();
                let f = f.primitive().clone();
                let f_cols = f.shape().dims::<2>()[1];
                let (misfit, sum) = B::irk_misfit_forward(u, f, map.clone(), target);
                prep.finish((misfit, map, f_cols), sum)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::irk_misfit(
                u.into_primitive(),
                f.into_primitive(),
                map,
                target,
            )),
        }
    }

    /// Not differentiated: only [`irk_misfit`](Self::irk_misfit) records a backward step.
    fn irk_misfit_forward(
        u: FloatTensor<Self>,
        f: FloatTensor<Self>,
        map: FloatTensor<Self>,
        target: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (misfit, sum) = B::irk_misfit_forward(
            Self::inner(u),
            Self::inner(f),
            Self::inner(map),
            Self::inner(target),
        );
        (Self::from_inner(misfit), Self::from_inner(sum))
    }

    /// Not differentiated (a gradient of a gradient is never asked for).
    fn irk_misfit_backward(
        misfit: FloatTensor<Self>,
        map: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        f_cols: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (grad_u, grad_f) = B::irk_misfit_backward(
            Self::inner(misfit),
            Self::inner(map),
            Self::inner(grad),
            f_cols,
        );
        (Self::from_inner(grad_u), Self::from_inner(grad_f))
    }
}
