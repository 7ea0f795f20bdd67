//! Mini-batches: the point sets read `batch` points at a time, and the rows each iteration
//! reads from them.
//!
//! A batched set keeps all its points (the pool) and their data on the device; every iteration
//! reads `batch` distinct rows of it: positions `0..batch` of a pseudo-random permutation of the
//! pool keyed by the problem's seed, the set and the iteration ([`BatchRows`]). The draw is a
//! pure function of those three numbers, so a resumed run reads the batches it would have read,
//! with no sampler state to save, and the same seed gives the same batches on every machine.
//! The device computes the rows itself ([`backend::batch_rows`]: a kernel on a GPU) from an
//! iteration counter in its memory, in training the optimiser's step count, and gathers the
//! points and targets from the pool: nothing goes from the host to the device per iteration,
//! and a captured training step draws fresh rows every time it is replayed.

use super::*;

/// A point set read in mini-batches.
#[derive(Clone, Debug)]
pub(super) struct BatchedSet {
    /// The set's name (`[points.<name>]`).
    pub(super) name: String,
    /// The key of its stream of draws, from the seed and the set's position in `[points]` (so
    /// that adding a set after it leaves its batches unchanged).
    pub(super) key: u32,
    /// Points in the pool.
    pub(super) pool: usize,
    /// Points read per iteration.
    pub(super) size: usize,
}

impl BatchedSet {
    /// The pool rows that iteration `iteration` reads: `size` distinct rows in random order
    /// (the iteration counts modulo 2³²).
    pub(super) fn rows(&self, iteration: usize) -> Vec<usize> {
        BatchRows::new(self.pool, self.key, iteration as u32).rows(self.size)
    }
}

/// Which rows of a loss term's (or a pass's) inputs one iteration reads: those drawn from
/// batched set `set`, in each of `copies` stacked copies of the pool (a periodic term stacks
/// the set's points at the lower and the upper end of its axis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pick {
    pub(super) set: usize,
    pub(super) copies: usize,
}

impl Problem {
    /// Whether any loss term reads its points in mini-batches.
    pub fn is_batched(&self) -> bool {
        !self.batches.is_empty()
    }

    /// The rows of point set `set` that iteration `iteration` trains on, when the set is read
    /// in mini-batches (`None` otherwise, or for an unknown set).
    pub fn batch_rows(&self, set: &str, iteration: usize) -> Option<Vec<usize>> {
        self.batches
            .iter()
            .find(|b| b.name == set)
            .map(|b| b.rows(iteration))
    }

    /// Every pick's rows at the iteration `counter` holds (`[1, 1]`, a whole number), drawn
    /// on the counter's device, by forward pass.
    pub(super) fn draw_picks(&self, counter: &Tensor<2>) -> Vec<Option<Tensor<1, Int>>> {
        self.passes
            .iter()
            .map(|p| {
                p.pick.map(|pick| {
                    let b = &self.batches[pick.set];
                    backend::batch_rows(counter.clone(), b.pool, b.key, b.size, pick.copies)
                })
            })
            .collect()
    }
}
