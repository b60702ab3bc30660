//! Dense matrix products: a thin, checked wrapper around the `gemm` crate that
//! takes ndarray views of any strides (so transposes cost nothing) and uses every core.

use gemm::Parallelism;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Products smaller than this many multiply-adds run on one thread: splitting costs more.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// A product with at most this many outputs and at least `SPLIT_MIN_DEPTH` terms in each (a
/// weight gradient: filters x fan-in outputs, summed over every position of the batch) gives
/// the `gemm` crate too few output tiles to share among threads. It is cut along the sum into
/// `DEPTH_SLICES` slices instead, computed in parallel and added in slice order: a fixed
/// number, so the result does not depend on the number of threads.
const SPLIT_MAX_OUTPUTS: usize = 1 << 16;
const SPLIT_MIN_DEPTH: usize = 1 << 12;
const DEPTH_SLICES: usize = 8;

/// A parallel product is cut into at most this many blocks of columns, each at least
/// `COLUMN_PIECE_MIN` wide.
const COLUMN_PIECES: usize = 8;
const COLUMN_PIECE_MIN: usize = 64;

/// `c = a · b`, or `c += a · b` when `accumulate`, on every core for large products.
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, c: ArrayViewMut2<f32>, accumulate: bool) {
    product(a, b, c, accumulate, true);
}

/// `c = a · b` on the calling thread, for callers that run many products in parallel.
pub fn matmul_serial<T: Scalar>(a: ArrayView2<T>, b: ArrayView2<T>, c: ArrayViewMut2<T>) {
    product(a, b, c, false, false);
}

/// The element types qnnc multiplies with the `gemm` crate.
pub trait Scalar: Copy + Default + Send + Sync + std::ops::Add<Output = Self> + 'static {
    const ONE: Self;
    const ZERO: Self;
    /// Exact for the integer codes qnnc stores (at most 16 bits), and for integer
    /// accumulators below 2^24 (f32) or 2^53 (f64).
    fn from_i64(v: i64) -> Self;
    fn to_i64(self) -> i64;
}

impl Scalar for f32 {
    const ONE: f32 = 1.0;
    const ZERO: f32 = 0.0;
    fn from_i64(v: i64) -> Self {
        v as f32
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
}

impl Scalar for f64 {
    const ONE: f64 = 1.0;
    const ZERO: f64 = 0.0;
    fn from_i64(v: i64) -> Self {
        v as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
}

fn product<T: Scalar>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut c: ArrayViewMut2<T>,
    accumulate: bool,
    parallel: bool,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "matmul: inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "matmul: output has the wrong shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    if parallel && m * n <= SPLIT_MAX_OUTPUTS && k >= SPLIT_MIN_DEPTH {
        let slice = k.div_ceil(DEPTH_SLICES);
        let partials: Vec<Array2<T>> = (0..DEPTH_SLICES)
            .into_par_iter()
            .map(|i| {
                let depth = (i * slice).min(k)..((i + 1) * slice).min(k);
                let mut partial = Array2::from_elem((m, n), T::ZERO);
                product(
                    a.slice(s![.., depth.clone()]),
                    b.slice(s![depth, ..]),
                    partial.view_mut(),
                    false,
                    false,
                );
                partial
            })
            .collect();
        if !accumulate {
            c.fill(T::ZERO);
        }
        for partial in &partials {
            c.zip_mut_with(partial, |total, &part| *total = *total + part);
        }
        return;
    }
    let mut lhs = (a.as_ptr(), a.strides()[0], a.strides()[1]);
    let mut rhs = (b.as_ptr(), b.strides()[0], b.strides()[1]);
    let [mut c_rs, mut c_cs] = [c.strides()[0], c.strides()[1]];
    let (mut m, mut n) = (m, n);
    if m > n {
        // The crate's kernels are up to twice as fast with the long dimension as columns (a
        // convolution's rows x filters): compute the transposed product c^T = b^T a^T in place.
        (lhs, rhs) = ((rhs.0, rhs.2, rhs.1), (lhs.0, lhs.2, lhs.1));
        (c_rs, c_cs) = (c_cs, c_rs);
        (m, n) = (n, m);
    }
    // A large product is cut into blocks of columns, each computed on one thread: one fork and
    // join a product. The crate's own threading forks and joins for every block of the sum,
    // and on two cores waking the other thread that often cost as much as it gained. The
    // blocks depend on the shape alone, so the result does not depend on the number of threads
    // (the crate rounds some shapes of block differently from the whole product, though).
    let pieces = if parallel && m * n * k >= PARALLEL_MIN_MACS {
        n.div_ceil(COLUMN_PIECE_MIN).min(COLUMN_PIECES)
    } else {
        1
    };
    let width = n.div_ceil(pieces);
    // Addresses, not pointers, so that the threads can share them (raw pointers are not
    // `Send`); each piece writes its own columns.
    let (lhs_at, rhs_at, c_at) = (lhs.0 as usize, rhs.0 as usize, c.as_mut_ptr() as usize);
    let columns = |first: usize| {
        // (pieces - 1) * ceil(n / pieces) < n for the at most 8 pieces of at least 64 columns.
        assert!(first < n, "a block of columns inside the product");
        let columns = width.min(n - first);
        // SAFETY: the three views are valid for their shapes and strides, checked above to
        // agree (the transposed product reads and writes the same elements); `c` is borrowed
        // mutably, so it cannot alias `a` or `b`; each call writes its own columns of `c`.
        unsafe {
            gemm::gemm(
                m,
                columns,
                k,
                (c_at as *mut T).offset(first as isize * c_cs),
                c_cs,
                c_rs,
                accumulate,
                lhs_at as *const T,
                lhs.2,
                lhs.1,
                (rhs_at as *const T).offset(first as isize * rhs.2),
                rhs.2,
                rhs.1,
                T::ONE,
                T::ONE,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    };
    if pieces == 1 {
        columns(0);
    } else {
        (0..pieces)
            .into_par_iter()
            .for_each(|piece| columns(piece * width));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum()
        })
    }

    #[test]
    fn agrees_with_the_definition_for_any_layout() {
        let a = Array2::from_shape_fn((37, 19), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let b = Array2::from_shape_fn((19, 23), |(i, j)| ((i * 5 + j) % 7) as f32 - 3.0);
        let expected = naive(&a, &b);
        let mut c = Array2::zeros((37, 23));
        matmul(a.view(), b.view(), c.view_mut(), false);
        assert_eq!(c, expected);
        // Transposed operands and a column-major output.
        let at = a.t().to_owned();
        let bt = b.t().to_owned();
        let mut c2 = Array2::zeros((37, 23).f());
        matmul(at.t(), bt.t(), c2.view_mut(), false);
        assert_eq!(c2, expected);
        matmul(a.view(), b.view(), c2.view_mut(), true);
        assert_eq!(c2, &expected * 2.0);
        // More columns than rows: the product is not transposed.
        let expected_t = naive(&bt, &at);
        let mut c3 = Array2::zeros((23, 37));
        matmul(bt.view(), at.view(), c3.view_mut(), false);
        assert_eq!(c3, expected_t);
        let mut c4 = Array2::zeros((37, 23));
        matmul_serial(a.view(), b.view(), c4.view_mut());
        assert_eq!(c4, expected);
    }

    #[test]
    fn a_large_product_cut_into_blocks_of_columns_is_exact() {
        // Integer values, so that a column computed twice, or not at all, shows. The second
        // product has more rows than columns, so its blocks are of the transposed product.
        for (m, k, n) in [(40, 300, 200), (500, 30, 40), (7, 4000, 130)] {
            assert!(m * n * k >= PARALLEL_MIN_MACS);
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 7) as f32 - 3.0);
            let expected = naive(&a, &b);
            let mut c = Array2::from_elem((m, n), f32::NAN);
            matmul(a.view(), b.view(), c.view_mut(), false);
            assert_eq!(c, expected, "{m}x{k}x{n}");
            matmul(a.view(), b.view(), c.view_mut(), true);
            assert_eq!(c, &expected * 2.0, "{m}x{k}x{n} accumulated");
        }
    }

    #[test]
    fn a_deep_product_is_cut_along_its_sum_and_still_exact() {
        // Integer values: every order of summation gives the exact sum, so any slip in the
        // slices (a term lost or added twice) shows.
        let k = SPLIT_MIN_DEPTH * 2 + 13;
        let a = Array2::from_shape_fn((9, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let b = Array2::from_shape_fn((k, 5), |(i, j)| ((i * 5 + j) % 7) as f32 - 3.0);
        let expected = naive(&a, &b);
        let mut c = Array2::from_elem((9, 5), 1.0);
        matmul(a.view(), b.view(), c.view_mut(), false);
        assert_eq!(c, expected);
        matmul(a.view(), b.view(), c.view_mut(), true);
        assert_eq!(c, &expected * 2.0);
    }
}
