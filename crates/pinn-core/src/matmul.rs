//! Dense matrix products for the fused CPU layer kernels, on the `gemm` crate (the kernels Burn's
//! `flex` backend also uses), single-threaded inside the kernels' own parallel tasks and written
//! straight into the kernels' (possibly uninitialised) output ranges:
//! no zero-filled scratch, no realigning copy, and transposes as strides instead of copies.
#![allow(unsafe_code)] // the one call into `gemm::gemm`, whose bounds are checked just before it

use crate::fused::Real;

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

    /// Rows `first..first + count` of a row-major view.
    ///
    /// # Panics
    /// When the view is not row-major (a transpose) or the rows are out of range.
    pub fn row_range(self, first: usize, count: usize) -> Self {
        assert_eq!(self.col_stride, 1, "row range of a transposed view");
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

/// The one call into `gemm`: `lhs · rhs` into the row-major `lhs.rows × rhs.cols` matrix at
/// `dst`, on this thread (the fused kernels call it from their own parallel tasks).
///
/// # Safety
/// `dst` must be valid for writes (and, with [`Write::Accumulate`], reads of initialised values)
/// of `lhs.rows · rhs.cols` elements, and must not overlap `lhs` or `rhs`.
unsafe fn gemm_into<E: Real>(dst: *mut E, lhs: MatRef<'_, E>, rhs: MatRef<'_, E>, write: Write) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    // SAFETY: `dst` is valid for `m · n` elements, written (and read when accumulating) at
    // `i · n + j` for `i < m`, `j < n`, as the caller guarantees. `lhs` is read at
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
            n as isize,
            write == Write::Accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            E::of(1.0),
            E::of(1.0),
            false,
            false,
            false,
            gemm::Parallelism::None,
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
    check_inner(&lhs, &rhs);
    assert_eq!(dst.len(), lhs.rows * rhs.cols, "product destination");
    if lhs.cols == 0 {
        dst.iter_mut().for_each(|d| {
            d.write(E::default());
        });
        return;
    }
    if dst.is_empty() {
        return;
    }
    // SAFETY: `dst` is an exclusive slice of exactly `m · n` elements, so it cannot overlap
    // the shared `lhs` and `rhs`; `Overwrite` needs no initialised values.
    unsafe { gemm_into(dst.as_mut_ptr().cast::<E>(), lhs, rhs, Write::Overwrite) };
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
    // SAFETY: `dst` is an exclusive, initialised slice of exactly `m · n` elements, so it cannot
    // overlap the shared `lhs` and `rhs`.
    unsafe { gemm_into(dst.as_mut_ptr(), lhs, rhs, Write::Accumulate) };
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
    #[should_panic(expected = "matmul of")]
    fn mismatched_inner_dimensions_are_refused() {
        let a = [1.0_f64; 6];
        let _ = product(MatRef::row_major(&a, 2, 3), MatRef::row_major(&a, 2, 3));
    }
}
