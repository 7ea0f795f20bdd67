//! The IRK misfit on Burn's CubeCL backend (CUDA, wgpu): the backend's own operations.

use burn::backend::ops::FloatTensorOps;
use burn::backend::{Scalar, TensorMetadata};
use burn::tensor::{Shape, Slice};
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;

use super::IrkMisfitOps;

/// The backend's own operations: a slice, the product, two element-wise passes and a sum
/// forward; a scaling, the product with `mapᵀ` and a zero pad backward.
impl IrkMisfitOps for CubeBackend {
    fn irk_misfit(u: CubeTensor, f: CubeTensor, map: CubeTensor, target: CubeTensor) -> CubeTensor {
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
