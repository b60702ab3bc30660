//! Numeric kernels shared by training, the float model and the integer golden model: tensor
//! shapes, convolution windows (im2col and its adjoint), matrix products, argmax. A leaf: it
//! uses no other module of qnnc, so every stage can build on it.

pub mod gemm;
mod shape;
pub mod window;

pub use shape::Shape;
pub use window::Window;

/// Index of the largest value; the first on ties.
pub fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}
