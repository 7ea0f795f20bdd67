//! The batch rows under Burn's autodiff: a constant of the parameters.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend};

use super::BatchRowsOps;

impl<B: BatchRowsOps, C: CheckpointStrategy> BatchRowsOps for Autodiff<B, C> {
    fn batch_rows(
        counter: FloatTensor<Self>,
        pool: usize,
        stream_key: u32,
        batch: usize,
        copies: usize,
    ) -> IntTensor<Self> {
        B::batch_rows(Self::inner(counter), pool, stream_key, batch, copies)
    }
}
