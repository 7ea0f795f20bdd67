//! The rows of a mini-batch drawn on the device: [`crate::sampling::batch_rows`]'s keyed
//! permutation evaluated at every batch position by the device itself, with the iteration read
//! from a counter in device memory (the optimiser's step count). No index tensor goes from the
//! host to the device, and a captured training step draws the rows of the step it replays: the
//! counter it reads is the one the step advances. On `flex` the rows are computed on the host
//! (the device's memory); on the CubeCL backend by one kernel; under autodiff the op is a
//! constant (nothing to differentiate).

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Int, Tensor};

mod autodiff;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod cube;
mod flex;

/// Backends that draw the rows of a mini-batch; see the module documentation.
#[backend_extension(
    Flex,
    Cube: cfg(any(feature = "cuda", feature = "wgpu")),
    Fusion: cfg(any(feature = "cuda", feature = "wgpu")),
    Autodiff
)]
pub trait BatchRowsOps: Backend {
    /// The `copies · batch` rows (shape `[copies · batch]`, i32) that the draw keyed by
    /// `stream_key` and the counter's value (`counter: [1, 1]`, a whole number) reads from a
    /// stack of `copies` pools of `pool` rows each: the batch's rows in the first pool, then
    /// the same rows in the next, and so on.
    #[fusion(meta = fusion_meta::rows)]
    fn batch_rows(
        counter: FloatTensor<Self>,
        pool: usize,
        stream_key: u32,
        batch: usize,
        copies: usize,
    ) -> IntTensor<Self>;
}

/// Output shapes, which Burn's kernel fusion records before the operations run.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod fusion_meta {
    use burn::backend::fusion::custom::TensorSpec;
    use burn::tensor::DType;

    pub(super) fn rows(
        _counter: &TensorSpec,
        _pool: &usize,
        _stream_key: &u32,
        batch: &usize,
        copies: &usize,
    ) -> TensorSpec {
        TensorSpec::new(vec![batch * copies].into(), DType::I32)
    }
}

/// The rows of one draw of a batched point set, computed where `counter` lives; see
/// the backend extension `BatchRowsOps::batch_rows`. The same rows as
/// [`BatchRows`](crate::sampling::BatchRows)`::new(pool, stream_key, counter).rows(batch)`
/// on the host.
///
/// # Panics
/// When `pool` is 0, `batch` over `pool`, or the stack of pools over `i32::MAX` rows.
pub fn batch_rows(
    counter: Tensor<2>,
    pool: usize,
    stream_key: u32,
    batch: usize,
    copies: usize,
) -> Tensor<1, Int> {
    assert!(
        pool >= 1 && batch <= pool && pool.saturating_mul(copies) <= i32::MAX as usize,
        "a batch of {batch} from a pool of {pool} rows"
    );
    Tensor::from_dispatch(<Dispatch as BatchRowsOps>::batch_rows(
        counter.into_dispatch(),
        pool,
        stream_key,
        batch,
        copies,
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;
    use crate::sampling::{BatchRows, stream_key};

    /// The rows `batch_rows` draws on `device` at `counter`, against the host permutation.
    fn check_on(device: &Device, what: &str) {
        for (pool, batch, copies, counter) in [
            (1, 1, 1, 0.0),
            (49, 16, 1, 3.0),
            (1000, 100, 2, 12_345.0),
            (100_000, 2000, 1, 19_999.0),
        ] {
            let key = stream_key(1234, 2);
            let counter_tensor: Tensor<2> =
                Tensor::from_data(TensorData::new(vec![counter as f32], [1, 1]), device);
            let got: Vec<i64> = batch_rows(counter_tensor, pool, key, batch, copies)
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .expect("integers");
            let drawn = BatchRows::new(pool, key, counter as u32).rows(batch);
            let expected: Vec<i64> = (0..copies)
                .flat_map(|c| drawn.iter().map(move |&r| (c * pool + r) as i64))
                .collect();
            assert_eq!(
                got, expected,
                "{what}: pool {pool}, batch {batch}, copies {copies}"
            );
        }
    }

    #[test]
    fn the_cpu_draws_the_host_rows() {
        check_on(&Device::flex(), "flex");
        check_on(&Device::flex().autodiff(), "flex under autodiff");
    }

    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    #[test]
    fn cube_kernels_draw_the_host_rows() {
        #[cfg(feature = "wgpu")]
        let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
        #[cfg(not(feature = "wgpu"))]
        let device = {
            use crate::backend::{DeviceKind, Mode, Precision, TensorContext};
            match TensorContext::new(DeviceKind::Cuda, Precision::F32, Mode::Fused) {
                Ok(ctx) => ctx.device().clone(),
                Err(why) => {
                    eprintln!("skipped: no device for the CubeCL kernels ({why})");
                    return;
                }
            }
        };
        check_on(&device, "CubeCL");
        check_on(&device.autodiff(), "CubeCL under autodiff");
    }
}
