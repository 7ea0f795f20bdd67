//! The IRK misfit on the `flex` CPU backend: the kernels of [`crate::kernels::irk_misfit`].

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};

use crate::kernels::Real;
use crate::kernels::irk_misfit::{IrkShape, irk_misfit_backward, irk_misfit_forward};

use super::IrkMisfitOps;
use crate::backend::ops::{contiguous, slice};

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
