//! The discrete-time loss term `Σ (u + f[:, ..q] · map − target)²` as a Burn backend extension:
//! on `flex` the kernels of [`crate::irk_misfit`], on the CubeCL backend the backend's own
//! operations, and under autodiff a hand-written backward for `u` and `f` (`map` and the
//! target are constants of the problem).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension,
};
use burn::tensor::{DType, Tensor, TensorData};

use super::fused_ops::{backward_to_parents, contiguous, slice};
use crate::fused::Real;
use crate::irk_misfit::{IrkShape, irk_misfit_backward, irk_misfit_forward};

/// Backends that run the IRK loss term as one operation; see the module documentation.
#[backend_extension(
    Flex,
    Cube: cfg(any(feature = "cuda", feature = "wgpu")),
    Fusion: cfg(any(feature = "cuda", feature = "wgpu")),
    Autodiff
)]
pub trait IrkMisfitOps: Backend {
    /// `Σ d²` (shape `[1]`) of the misfit `d = u + f[:, ..q] · map − target` (`u: [rows,
    /// cols]`, `f: [rows, ≥ q]`, `map: [q, cols]`, the target broadcast from `[rows | 1, cols |
    /// 1]`).
    #[fusion(meta = fusion_meta::sum)]
    fn irk_misfit(
        u: FloatTensor<Self>,
        f: FloatTensor<Self>,
        map: FloatTensor<Self>,
        target: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// [`irk_misfit`](Self::irk_misfit) that also returns the misfit `d`, which the backward
    /// needs: `(d, Σ d²)`.
    #[fusion(meta = fusion_meta::misfit_and_sum)]
    fn irk_misfit_forward(
        u: FloatTensor<Self>,
        f: FloatTensor<Self>,
        map: FloatTensor<Self>,
        target: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `u` and of `f` (`f_cols` columns) of `grad · Σ d²`, given the misfit `d`
    /// and `grad` (shape `[1]`).
    #[fusion(meta = fusion_meta::gradients)]
    fn irk_misfit_backward(
        misfit: FloatTensor<Self>,
        map: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        f_cols: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// Output shapes, which Burn's kernel fusion records before the operations run.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod fusion_meta {
    use burn::backend::fusion::custom::TensorSpec;

    pub(super) fn sum(
        u: &TensorSpec,
        _f: &TensorSpec,
        _map: &TensorSpec,
        _target: &TensorSpec,
    ) -> TensorSpec {
        TensorSpec::new(vec![1].into(), u.dtype)
    }

    pub(super) fn misfit_and_sum(
        u: &TensorSpec,
        f: &TensorSpec,
        map: &TensorSpec,
        target: &TensorSpec,
    ) -> (TensorSpec, TensorSpec) {
        (u.clone(), sum(u, f, map, target))
    }

    pub(super) fn gradients(
        misfit: &TensorSpec,
        _map: &TensorSpec,
        _grad: &TensorSpec,
        f_cols: &usize,
    ) -> (TensorSpec, TensorSpec) {
        let mut f = misfit.shape.clone();
        f[1] = *f_cols;
        (misfit.clone(), TensorSpec::new(f, misfit.dtype))
    }
}

/// `Σ (u + f[:, ..q] · map − target)²` as one operation (shape `[1]`); see [`IrkMisfitOps`].
pub(crate) fn irk_misfit(
    u: Tensor<2>,
    f: Tensor<2>,
    map: Tensor<2>,
    target: Tensor<2>,
) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as IrkMisfitOps>::irk_misfit(
        u.into_dispatch(),
        f.into_dispatch(),
        map.into_dispatch(),
        target.into_dispatch(),
    ))
}

fn dims(t: &FlexTensor) -> [usize; 2] {
    t.layout().shape().dims::<2>()
}

/// The shape of one misfit.
///
/// # Panics
/// When the shapes disagree: the caller (`pinn`'s problem assembly) checks them when the problem
/// is built.
fn flex_shape(u: &FlexTensor, f: &FlexTensor, map: &FlexTensor, target: &FlexTensor) -> IrkShape {
    IrkShape::new(dims(u), dims(f), dims(map), dims(target))
        .unwrap_or_else(|e| panic!("IRK misfit: {e}"))
}

fn flex_forward(
    u: FlexTensor,
    f: FlexTensor,
    map: FlexTensor,
    target: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let (u, f, map, target) = (
        contiguous(u),
        contiguous(f),
        contiguous(map),
        contiguous(target),
    );
    let shape = flex_shape(&u, &f, &map, &target);
    fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
        shape: IrkShape,
        (u, f, map, target): (&FlexTensor, &FlexTensor, &FlexTensor, &FlexTensor),
    ) -> (TensorData, TensorData) {
        let (misfit, sum) =
            irk_misfit_forward::<E>(shape, slice(u), slice(f), slice(map), slice(target));
        (
            TensorData::new(misfit, [shape.rows, shape.cols]),
            TensorData::new(vec![E::of(sum)], [1]),
        )
    }
    let inputs = (&u, &f, &map, &target);
    let (misfit, sum) = match u.dtype() {
        DType::F64 => run::<f64>(shape, inputs),
        _ => run::<f32>(shape, inputs),
    };
    (FlexTensor::from_data(misfit), FlexTensor::from_data(sum))
}

impl IrkMisfitOps for Flex {
    fn irk_misfit(u: FlexTensor, f: FlexTensor, map: FlexTensor, target: FlexTensor) -> FlexTensor {
        flex_forward(u, f, map, target).1
    }

    fn irk_misfit_forward(
        u: FlexTensor,
        f: FlexTensor,
        map: FlexTensor,
        target: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        flex_forward(u, f, map, target)
    }

    fn irk_misfit_backward(
        misfit: FlexTensor,
        map: FlexTensor,
        grad: FlexTensor,
        f_cols: usize,
    ) -> (FlexTensor, FlexTensor) {
        let (misfit, map, grad) = (contiguous(misfit), contiguous(map), contiguous(grad));
        let [rows, cols] = dims(&misfit);
        let [q, _] = dims(&map);
        let shape = IrkShape::new([rows, cols], [rows, f_cols], [q, cols], [1, 1])
            .unwrap_or_else(|e| panic!("IRK misfit backward: {e}"));
        fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
            shape: IrkShape,
            (misfit, map, grad): (&FlexTensor, &FlexTensor, &FlexTensor),
        ) -> (TensorData, TensorData) {
            let grad = slice::<E>(grad).first().copied().unwrap_or_default();
            let (grad_u, grad_f) = irk_misfit_backward::<E>(shape, slice(misfit), slice(map), grad);
            (
                TensorData::new(grad_u, [shape.rows, shape.cols]),
                TensorData::new(grad_f, [shape.rows, shape.f_cols]),
            )
        }
        let inputs = (&misfit, &map, &grad);
        let (grad_u, grad_f) = match misfit.dtype() {
            DType::F64 => run::<f64>(shape, inputs),
            _ => run::<f32>(shape, inputs),
        };
        (FlexTensor::from_data(grad_u), FlexTensor::from_data(grad_f))
    }
}

#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod cube {
    use burn::backend::ops::FloatTensorOps;
    use burn::backend::{Scalar, TensorMetadata};
    use burn::tensor::{Shape, Slice};
    use burn_cubecl::CubeBackend;
    use burn_cubecl::tensor::CubeTensor;

    use super::IrkMisfitOps;

    /// The backend's own operations: a slice, the product, two element-wise passes and a sum
    /// forward; a scaling, the product with `mapᵀ` and a zero pad backward.
    impl IrkMisfitOps for CubeBackend {
        fn irk_misfit(
            u: CubeTensor,
            f: CubeTensor,
            map: CubeTensor,
            target: CubeTensor,
        ) -> CubeTensor {
            Self::irk_misfit_forward(u, f, map, target).1
        }

        fn irk_misfit_forward(
            u: CubeTensor,
            f: CubeTensor,
            map: CubeTensor,
            target: CubeTensor,
        ) -> (CubeTensor, CubeTensor) {
            let [rows, f_cols] = f.shape().dims::<2>();
            let q = map.shape().dims::<2>()[0];
            let f = if f_cols > q {
                Self::float_slice(f, &[Slice::from(0..rows), Slice::from(0..q)])
            } else {
                f
            };
            let misfit = Self::float_sub(Self::float_add(u, Self::float_matmul(f, map)), target);
            let sum = Self::float_sum(Self::float_mul(misfit.clone(), misfit.clone()));
            (misfit, sum)
        }

        fn irk_misfit_backward(
            misfit: CubeTensor,
            map: CubeTensor,
            grad: CubeTensor,
            f_cols: usize,
        ) -> (CubeTensor, CubeTensor) {
            let [rows, _] = misfit.shape().dims::<2>();
            let q = map.shape().dims::<2>()[0];
            let twice = Self::float_reshape(
                Self::float_mul_scalar(grad, Scalar::from(2.0)),
                Shape::new([1, 1]),
            );
            let grad_u = Self::float_mul(misfit, twice);
            let grad_f = Self::float_matmul(grad_u.clone(), Self::float_transpose(map));
            if f_cols == q {
                return (grad_u, grad_f);
            }
            let pad = Self::float_zeros(
                Shape::new([rows, f_cols - q]),
                &grad_f.device(),
                grad_f.dtype().into(),
            );
            (grad_u, Self::float_cat(vec![grad_f, pad], 1))
        }
    }
}

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
