//! The batch rows on Burn's CubeCL backend (CUDA, wgpu): one kernel, a thread per row, the
//! permutation of [`crate::sampling::batch_rows`] in the same 32-bit arithmetic.

use burn::backend::cubecl::dtype_to_storage_type;
use burn::tensor::{DType, Shape};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use super::BatchRowsOps;
use crate::sampling::batch_rows::{ROUNDS, half_bits};

/// [`crate::sampling::batch_rows::mix32`] on the device.
#[cube]
fn mix32(x: u32) -> u32 {
    let mut x = x;
    x ^= x >> 16u32;
    x *= 0x7feb_352du32;
    x ^= x >> 15u32;
    x *= 0x846c_a68bu32;
    x ^= x >> 16u32;
    x
}

/// Row `ABSOLUTE_POS` of the stacked draw: the round keys from the counter, the Feistel network
/// with cycle-walking, then the copy's offset.
#[cube(launch)]
fn batch_rows_kernel<F: Float>(
    counter: &Tensor<F>,
    out: &mut Tensor<i32>,
    pool: u32,
    stream_key: u32,
    batch: u32,
    copies: u32,
    #[comptime] half_bits: u32,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= usize::cast_from(batch * copies) {
        terminate!();
    }
    let i = u32::cast_from(ABSOLUTE_POS);
    let copy = i / batch;
    let position = i % batch;
    let base = mix32(stream_key ^ mix32(u32::cast_from(counter[0])));
    let mask = (1u32 << half_bits) - 1u32;
    let mut x = position;
    loop {
        let mut left = x >> half_bits;
        let mut right = x & mask;
        #[unroll]
        for r in 0..ROUNDS {
            let key = mix32(base + comptime!(((r as u32) + 1).wrapping_mul(0x9e37_79b9)));
            let next = left ^ (mix32(right ^ key) & mask);
            left = right;
            right = next;
        }
        x = (left << half_bits) | right;
        if x < pool {
            break;
        }
    }
    out[ABSOLUTE_POS] = i32::cast_from(copy * pool + x);
}

impl BatchRowsOps for CubeBackend {
    fn batch_rows(
        counter: CubeTensor,
        pool: usize,
        stream_key: u32,
        batch: usize,
        copies: usize,
    ) -> CubeTensor {
        let counter = into_contiguous(counter);
        let rows = batch * copies;
        let client = counter.client.clone();
        let out = empty_device_dtype(
            client.clone(),
            counter.device.clone(),
            Shape::new([rows]),
            DType::I32,
        );
        if rows == 0 {
            return out;
        }
        let cube_dim = CubeDim::new(&client, rows);
        let cube_count = calculate_cube_count_elemwise(&client, rows, cube_dim);
        let dtype = counter.dtype;
        batch_rows_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            counter.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            pool as u32,
            stream_key,
            batch as u32,
            copies as u32,
            half_bits(pool as u32),
            dtype_to_storage_type(dtype),
        );
        out
    }
}

#[cfg(all(test, feature = "cuda"))]
mod tests {
    use super::*;
    use crate::backend::ops::offline_cuda::{cuda_source, sm90, tensor_arg};
    use cubecl::ir::FloatKind;

    /// The kernel transpiles to CUDA C++ for an H200 and keeps its arithmetic in 32-bit
    /// unsigned integers (which wrap, as the host permutation does).
    #[test]
    fn cuda_source_of_the_batch_rows_kernel_uses_unsigned_32_bit_arithmetic() {
        let (properties, options) = sm90();
        for half_bits in [1, 9] {
            let settings = KernelSettings::new(
                *CubeDim::new_1d(256),
                ExecutionMode::Checked,
                AddressType::U32,
            );
            let kernel = batch_rows_kernel::BatchRowsKernel::new(
                settings,
                properties.clone(),
                std::sync::Arc::new(TargetProperties::default()),
                tensor_arg(),
                tensor_arg(),
                (),
                (),
                (),
                (),
                half_bits,
                ElemType::Float(FloatKind::F32),
            );
            let name = format!("batch-rows-h{half_bits}");
            let source = cuda_source(kernel, &options, &name);
            assert!(source.contains("__global__"), "{name}: no kernel\n{source}");
            assert!(
                source.contains("uint32"),
                "{name}: no unsigned arithmetic\n{source}"
            );
            assert!(
                source.contains("2146121005"),
                "{name}: the hash's first multiplier is missing\n{source}"
            );
        }
    }
}
