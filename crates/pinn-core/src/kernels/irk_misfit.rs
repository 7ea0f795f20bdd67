//! The discrete-time (implicit Runge-Kutta) loss term as one CPU kernel pair.
//!
//! A discrete-time term compares a snapshot with the network's stage values pushed through one
//! IRK step: its misfit is `d = u + f[:, ..q] · map − target` (`u: [rows, cols]`, the
//! right-hand side `f: [rows, ≥ q]`, `map: [q, cols]` the step's scaled Butcher weights, the
//! target broadcast from `[rows, 1]`, `[1, cols]` or `[1, 1]`), and the term is `Σ d²`. Op by op
//! that is a slice, a product, a scaling, two sums and a square over `[rows, cols]` values, and
//! as many again in the backward: a dozen passes over memory on one thread while the other
//! cores wait. Here the forward is the product with the sum of squares folded into each task's
//! rows, and the backward is one scaling pass and the product with `mapᵀ`, whose scale is the
//! product's own.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::kernels::matmul::{MatRef, par_matmul_scaled_to};
use crate::kernels::{Real, even_row_tasks, written_by};

/// Rows per task of the element-wise pass: small enough for every thread to get several.
const TASK_ROWS: usize = 32;

/// Elements from which the element-wise passes run on Rayon's threads. Below it they run on
/// the calling thread: handing a pass to the pool costs more than it saves (measured: the
/// discrete inverse problems' `[200, 81]` terms ran 2-3 % slower split).
const PARALLEL_ELEMENTS: usize = 1 << 16;

/// Shapes of one IRK misfit: `u` and the misfit are `[rows, cols]`, `f` is `[rows, f_cols]` of
/// which the first `q` columns enter, `map` is `[q, cols]`, the target `[target_rows,
/// target_cols]` with each either 1 (broadcast) or the misfit's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrkShape {
    /// Points.
    pub rows: usize,
    /// Columns of `u`, the misfit and `map`.
    pub cols: usize,
    /// Columns of `f` (at least `q`).
    pub f_cols: usize,
    /// Stages: rows of `map`, columns of `f` that enter.
    pub q: usize,
    /// Rows of the target: 1 or `rows`.
    pub target_rows: usize,
    /// Columns of the target: 1 or `cols`.
    pub target_cols: usize,
}

impl IrkShape {
    /// Checks the shapes of `u`, `f`, `map` and the target against each other; the message
    /// names the first that disagrees.
    pub fn new(
        u: [usize; 2],
        f: [usize; 2],
        map: [usize; 2],
        target: [usize; 2],
    ) -> Result<Self, String> {
        let [rows, cols] = u;
        let [q, map_cols] = map;
        if f[0] != rows || f[1] < q {
            return Err(format!(
                "right-hand side {f:?} against values {u:?} and map {map:?}"
            ));
        }
        if map_cols != cols {
            return Err(format!("map {map:?} against values {u:?}"));
        }
        let fits = |n: usize, of: usize| n == 1 || n == of;
        if !fits(target[0], rows) || !fits(target[1], cols) {
            return Err(format!("target {target:?} against values {u:?}"));
        }
        Ok(Self {
            rows,
            cols,
            f_cols: f[1],
            q,
            target_rows: target[0],
            target_cols: target[1],
        })
    }

    fn target_at<E: Real>(&self, target: &[E], row: usize, col: usize) -> E {
        let r = if self.target_rows == 1 { 0 } else { row };
        let c = if self.target_cols == 1 { 0 } else { col };
        target[r * self.target_cols + c]
    }
}

/// The misfit `d = u + f[:, ..q] · map − target` (`[rows, cols]`, row-major) and `Σ d²`.
///
/// # Panics
/// When a slice is shorter than `shape` says.
pub fn irk_misfit_forward<E: Real>(
    shape: IrkShape,
    u: &[E],
    f: &[E],
    map: &[E],
    target: &[E],
) -> (Vec<E>, f64) {
    let IrkShape { rows, cols, q, .. } = shape;
    assert!(u.len() >= rows * cols, "values shorter than {rows}×{cols}");
    assert!(
        target.len() >= shape.target_rows * shape.target_cols,
        "target shorter than its shape"
    );
    let f = MatRef::row_major(f, rows, shape.f_cols)
        .t()
        .row_range(0, q)
        .t();
    let map = MatRef::row_major(map, q, cols);
    let per_task = even_row_tasks(rows, TASK_ROWS);
    let fill = |product: &mut [MaybeUninit<E>]| -> f64 {
        par_matmul_scaled_to(product, cols, f, map, E::of(1.0));
        let misfit_rows = |t: usize, block: &mut [MaybeUninit<E>]| {
            let mut sum = 0.0;
            for (i, row) in block.chunks_exact_mut(cols.max(1)).enumerate() {
                let at = t * per_task + i;
                let u_row = &u[at * cols..(at + 1) * cols];
                for (j, (d, &u)) in row.iter_mut().zip(u_row).enumerate() {
                    // SAFETY: the product wrote every element (its rows are `cols` long).
                    #[allow(unsafe_code)]
                    let product = unsafe { d.assume_init() };
                    let misfit = u + product - shape.target_at(target, at, j);
                    d.write(misfit);
                    sum += (misfit * misfit).to_f64();
                }
            }
            sum
        };
        let chunk = (per_task * cols).max(1);
        if product.len() >= PARALLEL_ELEMENTS {
            // Collected and summed in task order: a parallel `sum` would add the tasks' sums
            // in an order set by work stealing, different bits from run to run.
            let parts: Vec<f64> = product
                .par_chunks_mut(chunk)
                .enumerate()
                .map(|(t, block)| misfit_rows(t, block))
                .collect();
            parts.into_iter().sum()
        } else {
            product
                .chunks_mut(chunk)
                .enumerate()
                .map(|(t, block)| misfit_rows(t, block))
                .sum()
        }
    };
    // SAFETY: the product writes all `rows · cols` elements (rows of `cols`).
    #[allow(unsafe_code)]
    let (out, sum) = unsafe { written_by(rows * cols, fill) };
    (out, sum)
}

/// Gradients of `grad · Σ d²` with respect to `u` (`2 · grad · d`, `[rows, cols]`) and to `f`
/// (`2 · grad · d · mapᵀ` in its first `q` columns, zero in the rest: `[rows, f_cols]`), given
/// the misfit `d` from [`irk_misfit_forward`].
///
/// # Panics
/// When a slice is shorter than `shape` says.
pub fn irk_misfit_backward<E: Real>(
    shape: IrkShape,
    misfit: &[E],
    map: &[E],
    grad: E,
) -> (Vec<E>, Vec<E>) {
    let IrkShape {
        rows,
        cols,
        f_cols,
        q,
        ..
    } = shape;
    let twice = E::of(2.0) * grad;
    let d = MatRef::row_major(misfit, rows, cols);
    let map_t = MatRef::row_major(map, q, cols).t();
    let fill = |grad_f: &mut [MaybeUninit<E>]| {
        par_matmul_scaled_to(grad_f, f_cols, d, map_t, twice);
        if f_cols > q {
            for row in grad_f.chunks_exact_mut(f_cols) {
                zero(&mut row[q..]);
            }
        }
    };
    // SAFETY: the product writes the first `q` elements of every row and the rest are zeroed.
    #[allow(unsafe_code)]
    let (grad_f, ()) = unsafe { written_by(rows * f_cols, fill) };
    let grad_u = if misfit.len() >= PARALLEL_ELEMENTS {
        misfit.par_iter().map(|&d| twice * d).collect()
    } else {
        misfit.iter().map(|&d| twice * d).collect()
    };
    (grad_u, grad_f)
}

fn zero<E: Real>(values: &mut [MaybeUninit<E>]) {
    for v in values {
        v.write(E::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The misfit and its gradients by their definitions, in `f64`.
    fn reference(
        shape: IrkShape,
        (u, f, map, target): (&[f64], &[f64], &[f64], &[f64]),
        grad: f64,
    ) -> (Vec<f64>, f64, Vec<f64>, Vec<f64>) {
        let IrkShape {
            rows,
            cols,
            f_cols,
            q,
            ..
        } = shape;
        let mut d = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                let product: f64 = (0..q).map(|k| f[i * f_cols + k] * map[k * cols + j]).sum();
                d[i * cols + j] = u[i * cols + j] + product - shape.target_at(target, i, j);
            }
        }
        let sum = d.iter().map(|x| x * x).sum();
        let grad_u = d.iter().map(|x| 2.0 * grad * x).collect();
        let mut grad_f = vec![0.0; rows * f_cols];
        for i in 0..rows {
            for k in 0..q {
                grad_f[i * f_cols + k] = (0..cols)
                    .map(|j| 2.0 * grad * d[i * cols + j] * map[k * cols + j])
                    .sum();
            }
        }
        (d, sum, grad_u, grad_f)
    }

    fn values(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f64) / 500.0 - 1.0)
            .collect()
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                "{what}[{i}]: {x} against {y}"
            );
        }
    }

    #[test]
    fn misfit_sum_and_gradients_match_their_definitions() {
        // A forward step (f one column wider than the stages, a column target), an inverse
        // one (square map, full target), a constant target, and rows that leave a short task.
        for (rows, cols, f_cols, q, target) in [
            (67, 13, 13, 12, [67, 1]),
            (70, 9, 9, 9, [70, 9]),
            (5, 4, 6, 3, [1, 1]),
            (1, 3, 3, 3, [1, 3]),
        ] {
            let shape = IrkShape::new([rows, cols], [rows, f_cols], [q, cols], target)
                .expect("consistent shapes");
            let u = values(rows * cols, 1);
            let f = values(rows * f_cols, 2);
            let map = values(q * cols, 3);
            let t = values(target[0] * target[1], 4);
            let grad = 0.75;
            let (d, sum) = irk_misfit_forward(shape, &u, &f, &map, &t);
            let (grad_u, grad_f) = irk_misfit_backward(shape, &d, &map, grad);
            let (want_d, want_sum, want_gu, want_gf) = reference(shape, (&u, &f, &map, &t), grad);
            let case = format!("{rows}×{cols}, f {f_cols}, q {q}, target {target:?}");
            close(&d, &want_d, &format!("misfit of {case}"));
            close(&[sum], &[want_sum], &format!("sum of {case}"));
            close(&grad_u, &want_gu, &format!("grad u of {case}"));
            close(&grad_f, &want_gf, &format!("grad f of {case}"));
        }
    }

    #[test]
    fn inconsistent_shapes_are_named() {
        let err = IrkShape::new([4, 5], [4, 2], [3, 5], [4, 1]).expect_err("f too narrow");
        assert!(err.contains("right-hand side"), "{err}");
        let err = IrkShape::new([4, 5], [4, 3], [3, 6], [4, 1]).expect_err("map too wide");
        assert!(err.contains("map"), "{err}");
        let err = IrkShape::new([4, 5], [4, 3], [3, 5], [2, 1]).expect_err("target rows");
        assert!(err.contains("target"), "{err}");
    }
}
