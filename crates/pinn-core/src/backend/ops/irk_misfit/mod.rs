//! The discrete-time loss term `Σ (u + f[:, ..q] · map − target)²` as a Burn backend extension:
//! on `flex` the kernels of [`crate::kernels::irk_misfit`], on the CubeCL backend the backend's own
//! operations, and under autodiff a hand-written backward for `u` and `f` (`map` and the
//! target are constants of the problem).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

mod autodiff;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod cube;
mod flex;

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

/// The discrete-time loss term `Σ (u + f[:, ..q] · map − target)²` (shape `[1]`) as one
/// operation with a hand-written backward for `u` and `f` (`map` and `target` are constants):
/// `u: [rows, cols]`, `f: [rows, ≥ q]` (its first `q` columns enter), `map: [q, cols]`, the
/// target `[rows | 1, cols | 1]`, broadcast. See the backend extension `IrkMisfitOps`.
///
/// # Panics
/// When the shapes disagree ([`crate::kernels::irk_misfit::IrkShape::new`] checks them).
pub fn irk_misfit(u: Tensor<2>, f: Tensor<2>, map: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as IrkMisfitOps>::irk_misfit(
        u.into_dispatch(),
        f.into_dispatch(),
        map.into_dispatch(),
        target.into_dispatch(),
    ))
}
