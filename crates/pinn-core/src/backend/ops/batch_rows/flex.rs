//! The batch rows on the `flex` CPU backend: the host permutation, the counter read from memory.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};

use super::BatchRowsOps;
use crate::backend::ops::contiguous;
use crate::sampling::BatchRows;

impl BatchRowsOps for Flex {
    fn batch_rows(
        counter: FlexTensor,
        pool: usize,
        stream_key: u32,
        batch: usize,
        copies: usize,
    ) -> FlexTensor {
        let counter = contiguous(counter);
        let value = match counter.dtype() {
            DType::F64 => counter.as_slice::<f64>().and_then(|s| s.first().copied()),
            _ => counter
                .as_slice::<f32>()
                .and_then(|s| s.first().map(|&v| f64::from(v))),
        }
        .unwrap_or_default();
        let drawn = BatchRows::new(pool, stream_key, value as u32).rows(batch);
        let rows: Vec<i32> = (0..copies)
            .flat_map(|c| drawn.iter().map(move |&r| (c * pool + r) as i32))
            .collect();
        let n = rows.len();
        FlexTensor::from_data(TensorData::new(rows, [n]))
    }
}
