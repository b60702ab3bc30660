//! Convolution windows over NHWC tensors: im2col, its adjoint, and per-channel bias, shared by
//! training, the float model and the integer golden model.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::Shape;

/// Geometry of a convolution window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// Adds a per-channel bias to every row of an NHWC buffer.
pub fn add_bias(y: &mut [f32], bias: &[f32]) {
    y.par_chunks_mut(bias.len() * 256).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    });
}

/// Sums of each column of a matrix, accumulated in a fixed order.
pub fn column_sums(m: ArrayView2<f32>) -> Vec<f32> {
    m.sum_axis(ndarray::Axis(0)).to_vec()
}

/// Copies every receptive field of `x` into a row of `cols` (zeros where the window overhangs
/// the padding).
pub fn im2col<T: Copy + Default + Send + Sync>(
    x: &[T],
    input: Shape,
    output: Shape,
    window: Window,
    cols: &mut [T],
) {
    let c = input.channels;
    let k = window.kernel;
    let fan_in = k * k * c;
    let image_len = input.len();
    let rows_per_image = output.height * output.width;
    cols.par_chunks_mut(rows_per_image * fan_in)
        .zip(x.par_chunks(image_len))
        .for_each(|(image_cols, image)| {
            for oy in 0..output.height {
                for ox in 0..output.width {
                    let row = &mut image_cols[(oy * output.width + ox) * fan_in..][..fan_in];
                    for ky in 0..k {
                        let iy = (oy * window.stride + ky) as isize - window.padding as isize;
                        let dst = &mut row[ky * k * c..][..k * c];
                        if iy < 0 || iy >= input.height as isize {
                            dst.fill(T::default());
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * window.stride + kx) as isize - window.padding as isize;
                            let dst = &mut dst[kx * c..][..c];
                            if ix < 0 || ix >= input.width as isize {
                                dst.fill(T::default());
                            } else {
                                let src = (iy as usize * input.width + ix as usize) * c;
                                dst.copy_from_slice(&image[src..src + c]);
                            }
                        }
                    }
                }
            }
        });
}

/// The adjoint of `im2col`: adds every row of `cols` back onto the input positions it came from.
pub fn col2im(cols: &[f32], input: Shape, output: Shape, window: Window, dx: &mut [f32]) {
    let c = input.channels;
    let k = window.kernel;
    let fan_in = k * k * c;
    let rows_per_image = output.height * output.width;
    dx.par_chunks_mut(input.len())
        .zip(cols.par_chunks(rows_per_image * fan_in))
        .for_each(|(image, image_cols)| {
            for oy in 0..output.height {
                for ox in 0..output.width {
                    let row = &image_cols[(oy * output.width + ox) * fan_in..][..fan_in];
                    for ky in 0..k {
                        let iy = (oy * window.stride + ky) as isize - window.padding as isize;
                        if iy < 0 || iy >= input.height as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * window.stride + kx) as isize - window.padding as isize;
                            if ix < 0 || ix >= input.width as isize {
                                continue;
                            }
                            let dst = (iy as usize * input.width + ix as usize) * c;
                            let src = &row[(ky * k + kx) * c..][..c];
                            for (d, s) in image[dst..dst + c].iter_mut().zip(src) {
                                *d += s;
                            }
                        }
                    }
                }
            }
        });
}
