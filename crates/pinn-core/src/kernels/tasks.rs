//! Splitting work into parallel tasks that do not depend on scheduling, and filling
//! uninitialised buffers: the helpers every CPU kernel shares.

use std::mem::MaybeUninit;

use super::Real;

/// A buffer of `len` elements initialised by `fill`, with no zero-filling first (the outputs
/// here are large and every element is written by the kernels anyway).
///
/// # Safety
/// `fill` must initialise every element of the slice it is given (or panic).
#[allow(unsafe_code)]
pub(crate) unsafe fn written_by<E, R>(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<E>]) -> R,
) -> (Vec<E>, R) {
    let mut out = Vec::with_capacity(len);
    let result = fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the first `len` elements were initialised by `fill`, as the caller guarantees.
    unsafe { out.set_len(len) };
    (out, result)
}

/// Rows per task when `rows` rows are split into tasks of at least `fewest` rows where there
/// are enough, as many tasks as a multiple of the thread count, of (nearly) equal size.
pub(crate) fn even_row_tasks(rows: usize, fewest: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let tasks = rows.div_ceil(fewest).div_ceil(threads) * threads;
    rows.div_ceil(tasks.min(rows).max(1)).max(1)
}

/// `sum += part`, element by element. Partial sums of parallel tasks are collected in task
/// order and added with this one after another: rayon's `reduce` would combine them in an order
/// set by work stealing, and floating-point addition is not associative, so the same problem and
/// seed would not give the same parameters bit for bit.
pub(crate) fn add_into<E: Real>(sum: &mut [E], part: &[E]) {
    for (x, y) in sum.iter_mut().zip(part) {
        *x += *y;
    }
}
