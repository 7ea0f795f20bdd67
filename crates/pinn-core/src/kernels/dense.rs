//! Plain dense products and their gradients, multi-threaded over row tasks (the network's
//! last layer and the unfused paths).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::Real;
use super::matmul::{MatRef, matmul_to};
use super::tasks::{even_row_tasks, written_by};

/// Fewest rows of a parallel task of [`dense_forward`] and [`dense_backward`].
pub(crate) const DENSE_TASK_ROWS: usize = 64;

/// Row tasks of a product with `rows` rows: a multiple of the thread count, at least
/// [`DENSE_TASK_ROWS`] rows each where there are enough.
pub(crate) fn dense_rows_per_task(rows: usize) -> usize {
    even_row_tasks(rows, DENSE_TASK_ROWS)
}

/// `a · b` for `a: [m, k]` (row-major, or a transposed view), `b: [k, n]`: row tasks in
/// parallel, each one single-threaded `gemm` call. For the small inner dimensions of a network (`k` = 20-200)
/// this ran 3-7 times faster than Burn's `flex` product on the 2-core machine
/// (`[250, 50] · [50, 501]`: 0.15 against 0.8 ms).
pub fn dense_forward<E: Real>(a: MatRef<'_, E>, b: MatRef<'_, E>) -> Vec<E> {
    let (m, n) = (a.rows(), b.cols());
    let rows = dense_rows_per_task(m);
    let fill = |out: &mut [MaybeUninit<E>]| {
        out.par_chunks_mut((rows * n).max(1))
            .enumerate()
            .for_each(|(t, out)| {
                let first = t * rows;
                let task_rows = out.len() / n.max(1);
                matmul_to(out, a.row_range(first, task_rows), b);
            });
    };
    // SAFETY: the chunks cover the buffer and `matmul_to` writes every element of each.
    #[allow(unsafe_code)]
    let (out, ()) = unsafe { written_by(m * n, fill) };
    out
}

/// Gradients of [`dense_forward`]: `grad · bᵀ` (`[m, k]`) and `aᵀ · grad` (`[k, n]`), the two
/// side by side, each over row tasks of its own result. The weight gradient's tasks each
/// contract over all `m` rows and need no partial sums; summing per-task partial products over
/// the input's row tasks (as a layer's tasks do) was 5-10 % slower for `[250, 50] · [50, 501]`
/// and `[600, 200] · [200, 101]`.
pub fn dense_backward<E: Real>(
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    grad: MatRef<'_, E>,
) -> (Vec<E>, Vec<E>) {
    rayon::join(|| dense_forward(grad, b.t()), || dense_forward(a.t(), grad))
}
