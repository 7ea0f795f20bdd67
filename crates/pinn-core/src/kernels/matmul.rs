//! Dense matrix products for the fused CPU kernels, on the `gemm` crate (the kernels Burn's
//! `flex` backend also uses), single-threaded inside the kernels' own parallel tasks (or, for
//! one large product, split by `gemm` itself) and written
//! straight into the kernels' (possibly uninitialised) output ranges:
//! no zero-filled scratch, no realigning copy, and transposes as strides instead of copies.
#![allow(unsafe_code)] // the one call into `gemm::gemm`, whose bounds are checked just before it

use crate::kernels::Real;

/// A read-only matrix view over a slice: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, E> {
    data: &'a [E],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, E> MatRef<'a, E> {
    /// A row-major `rows × cols` matrix.
    ///
    /// # Panics
    /// When `data` holds fewer than `rows · cols` elements.
    pub fn row_major(data: &'a [E], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "matrix view of {rows}×{cols} over {} elements",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Rows `first..first + count` of the view (of a transpose: columns of the stored matrix).
    ///
    /// # Panics
    /// When the rows are out of range.
    pub fn row_range(self, first: usize, count: usize) -> Self {
        assert!(
            first + count <= self.rows,
            "rows {first}..{} of {}",
            first + count,
            self.rows
        );
        let start = first * self.row_stride;
        Self {
            data: &self.data[start.min(self.data.len())..],
            rows: count,
            ..self
        }
    }

    /// The transpose, as a view of the same elements.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

fn check_inner<E>(lhs: &MatRef<'_, E>, rhs: &MatRef<'_, E>) {
    assert_eq!(
        lhs.cols, rhs.rows,
        "matmul of {}×{} by {}×{}",
        lhs.rows, lhs.cols, rhs.rows, rhs.cols
    );
}

/// How a product treats its destination.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// `dst = lhs · rhs`; `dst` may be uninitialised.
    Overwrite,
    /// `dst += lhs · rhs`; `dst` must be initialised.
    Accumulate,
}

/// Where a product goes: `dst` holds `lhs.rows` rows of `row_stride ≥ rhs.cols` elements, of
/// which the product fills the first `rhs.cols`, times `scale`.
#[derive(Clone, Copy)]
struct Destination<E> {
    row_stride: usize,
    scale: E,
    write: Write,
    /// Whether `gemm` splits the product over Rayon's threads itself (for one large product
    /// outside the kernels' own tasks: the packed right-hand side is then shared).
    parallel: bool,
}

/// The one call into `gemm`: `scale · lhs · rhs` into the first `rhs.cols` elements of each of
/// the `lhs.rows` rows at `dst`, on this thread (the fused kernels call it from their own
/// parallel tasks) unless `to.parallel`.
///
/// # Safety
/// `dst` must be valid for writes (and, with [`Write::Accumulate`], reads of initialised values)
/// of `(lhs.rows - 1) · row_stride + rhs.cols` elements, and must not overlap `lhs` or `rhs`.
unsafe fn gemm_into<E: Real>(
    dst: *mut E,
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
    to: Destination<E>,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    // SAFETY: `dst` is valid at `i · row_stride + j` for `i < m`, `j < n`, written there (and
    // read when accumulating), as the caller guarantees. `lhs` is read at
    // `i · rs + p · cs` for `i < m`, `p < k` and `rhs` at `p · rs + j · cs` for `p < k`,
    // `j < n`, all inside their slices by the assertion in `row_major` (which `t` and `row_range`
    // preserve).
    // With `read_dst = false` (and `k > 0`, checked by the callers) gemm stores all `m · n`
    // elements without reading them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            to.row_stride as isize,
            to.write == Write::Accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            E::of(1.0),
            to.scale,
            false,
            false,
            false,
            if to.parallel {
                gemm::Parallelism::Rayon(0)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

/// `dst = lhs · rhs` on this thread, into a row-major `lhs.rows × rhs.cols` slice that need not
/// be initialised (the fused layer kernels write their tiles' products with it).
///
/// # Panics
/// When the inner dimensions differ or `dst` has the wrong length.
pub fn matmul_to<E: Real>(
    dst: &mut [std::mem::MaybeUninit<E>],
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
) {
    overwrite_rows(dst, lhs, rhs, overwrite(rhs.cols, E::of(1.0)));
}

fn overwrite<E>(row_stride: usize, scale: E) -> Destination<E> {
    Destination {
        row_stride,
        scale,
        write: Write::Overwrite,
        parallel: false,
    }
}

/// Multiply-adds from which [`par_matmul_scaled_to`] runs on all threads: `192³`, the threshold
/// of Burn's `flex` backend (below it the threads' hand-offs cost more than they save).
pub const PARALLEL_PRODUCT: usize = 192 * 192 * 192;

/// `scale · lhs · rhs` into the first `rhs.cols` elements of each row of `dst`, whose rows are
/// `row_stride` long: the rest of each row is left as it was (uninitialised unless the caller
/// writes it). One product, which `gemm` splits over Rayon's threads when it has at least
/// [`PARALLEL_PRODUCT`] multiply-adds (row tasks that each call `gemm` would each pack the
/// right-hand side again).
///
/// # Panics
/// When the inner dimensions differ, the rows are shorter than the product's, or `dst` holds
/// other than `lhs.rows` rows.
pub fn par_matmul_scaled_to<E: Real>(
    dst: &mut [std::mem::MaybeUninit<E>],
    row_stride: usize,
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
    scale: E,
) {
    let to = Destination {
        parallel: lhs.rows * lhs.cols * rhs.cols >= PARALLEL_PRODUCT,
        ..overwrite(row_stride, scale)
    };
    overwrite_rows(dst, lhs, rhs, to);
}

/// The checks and the `gemm` call of [`matmul_to`] and [`par_matmul_scaled_to`]: an
/// overwriting product into the first `rhs.cols` elements of each of `dst`'s rows.
fn overwrite_rows<E: Real>(
    dst: &mut [std::mem::MaybeUninit<E>],
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
    to: Destination<E>,
) {
    check_inner(&lhs, &rhs);
    let row_stride = to.row_stride;
    assert!(
        row_stride >= rhs.cols,
        "product rows of {row_stride} < {}",
        rhs.cols
    );
    assert_eq!(dst.len(), lhs.rows * row_stride, "product destination");
    if dst.is_empty() || rhs.cols == 0 {
        return;
    }
    if lhs.cols == 0 {
        for row in dst.chunks_exact_mut(row_stride) {
            row[..rhs.cols].iter_mut().for_each(|d| {
                d.write(E::default());
            });
        }
        return;
    }
    // SAFETY: `dst` is an exclusive slice of `m · row_stride` elements, so it cannot overlap the
    // shared `lhs` and `rhs`; an overwrite needs no initialised values.
    unsafe { gemm_into(dst.as_mut_ptr().cast::<E>(), lhs, rhs, to) };
}

/// `dst += lhs · rhs` on this thread, for a row-major `lhs.rows × rhs.cols` slice.
///
/// # Panics
/// When the inner dimensions differ or `dst` has the wrong length.
pub fn matmul_add<E: Real>(dst: &mut [E], lhs: MatRef<'_, E>, rhs: MatRef<'_, E>) {
    check_inner(&lhs, &rhs);
    assert_eq!(dst.len(), lhs.rows * rhs.cols, "product destination");
    if lhs.cols == 0 || dst.is_empty() {
        return;
    }
    let to = Destination {
        write: Write::Accumulate,
        ..overwrite(rhs.cols, E::of(1.0))
    };
    // SAFETY: `dst` is an exclusive, initialised slice of exactly `m · n` elements, so it cannot
    // overlap the shared `lhs` and `rhs`.
    unsafe { gemm_into(dst.as_mut_ptr(), lhs, rhs, to) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    /// `lhs · rhs` through `matmul_add` onto zeros (exact: `0 + x = x`).
    fn product(lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>) -> Vec<f64> {
        let mut dst = vec![0.0; lhs.rows() * rhs.cols()];
        matmul_add(&mut dst, lhs, rhs);
        dst
    }

    fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let mut t = vec![0.0; a.len()];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = a[i * cols + j];
            }
        }
        t
    }

    #[test]
    fn products_and_transposed_products_match_the_definition() {
        for &(m, k, n) in &[(1, 1, 1), (7, 5, 3), (300, 20, 20), (257, 190, 200)] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 13) % 7) as f64 * 0.5).collect();
            let want = naive(&a, &b, m, k, n);
            let got = product(MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
            assert_eq!(got, want, "{m}×{k}·{k}×{n}");
            // aᵀ stored, viewed transposed; and b stored transposed, viewed transposed.
            let at = transpose(&a, m, k);
            let bt = transpose(&b, k, n);
            let got = product(
                MatRef::row_major(&at, k, m).t(),
                MatRef::row_major(&bt, n, k).t(),
            );
            assert_eq!(got, want, "transposed views {m}×{k}·{k}×{n}");
        }
    }

    #[test]
    fn single_thread_products_overwrite_and_accumulate() {
        let (m, k, n) = (37, 20, 23);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 13) % 7) as f64 * 0.5).collect();
        let want = naive(&a, &b, m, k, n);
        let mut dst = vec![std::mem::MaybeUninit::new(f64::NAN); m * n];
        matmul_to(
            &mut dst,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
        );
        // SAFETY: every element was initialised (to NaN) before the product overwrote it.
        let got: Vec<f64> = dst.iter().map(|d| unsafe { d.assume_init() }).collect();
        assert_eq!(got, want);
        let mut sum = got.clone();
        matmul_add(
            &mut sum,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
        );
        let doubled: Vec<f64> = want.iter().map(|v| 2.0 * v).collect();
        assert_eq!(sum, doubled);
    }

    #[test]
    fn scaled_products_fill_the_front_of_longer_rows_on_one_or_all_threads() {
        // Below and above `PARALLEL_PRODUCT`: the padding columns keep what they held.
        for (m, k, n) in [(7, 5, 3), (300, 200, 130)] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 13) % 7) as f64 * 0.5).collect();
            let want = naive(&a, &b, m, k, n);
            let stride = n + 3;
            let mut dst = vec![std::mem::MaybeUninit::new(f64::NAN); m * stride];
            par_matmul_scaled_to(
                &mut dst,
                stride,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                -0.5,
            );
            for i in 0..m {
                for j in 0..stride {
                    // SAFETY: every element was initialised (to NaN) before the product.
                    let got = unsafe { dst[i * stride + j].assume_init() };
                    if j < n {
                        assert_eq!(got, -0.5 * want[i * n + j], "{m}×{k}·{k}×{n} at ({i}, {j})");
                    } else {
                        assert!(got.is_nan(), "padding ({i}, {j}) overwritten");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "matmul of")]
    fn mismatched_inner_dimensions_are_refused() {
        let a = [1.0_f64; 6];
        let _ = product(MatRef::row_major(&a, 2, 3), MatRef::row_major(&a, 2, 3));
    }
}
