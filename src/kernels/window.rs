//! Convolution windows over NHWC tensors: im2col, its adjoint, and per-channel bias, shared by
//! training, the float model and the integer golden model.

use multiversion::multiversion;
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

impl Window {
    /// A 1x1 window with stride 1 and no padding (a dense layer, or a pointwise convolution):
    /// its im2col is the input itself, and its col2im the column gradients themselves.
    pub fn is_pointwise(&self) -> bool {
        (self.kernel, self.stride, self.padding) == (1, 1, 0)
    }
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
                        // The window's columns inside the image are one contiguous run of
                        // the input row: one copy, and zeros either side of it.
                        let left = (ox * window.stride) as isize - window.padding as isize;
                        let first = (-left).clamp(0, k as isize) as usize;
                        let end = (input.width as isize - left).clamp(first as isize, k as isize)
                            as usize;
                        dst[..first * c].fill(T::default());
                        dst[end * c..].fill(T::default());
                        if first < end {
                            let src =
                                (iy as usize * input.width + (left + first as isize) as usize) * c;
                            dst[first * c..end * c]
                                .copy_from_slice(&image[src..src + (end - first) * c]);
                        }
                    }
                }
            }
        });
}

/// The adjoint of `im2col`: the sum, at every input position, of the rows of `cols` it went to.
/// Overwrites `dx`.
pub fn col2im(cols: &[f32], input: Shape, output: Shape, window: Window, dx: &mut [f32]) {
    let c = input.channels;
    let k = window.kernel;
    let fan_in = k * k * c;
    let rows_per_image = output.height * output.width;
    dx.par_chunks_mut(input.len())
        .zip(cols.par_chunks(rows_per_image * fan_in))
        .for_each(|(image, image_cols)| {
            image.fill(0.0);
            add_image_columns(image_cols, input, output, window, image)
        });
}

/// [`col2im`] of one image.
#[multiversion(targets = "simd")]
fn add_image_columns(
    image_cols: &[f32],
    input: Shape,
    output: Shape,
    window: Window,
    image: &mut [f32],
) {
    let c = input.channels;
    let k = window.kernel;
    let fan_in = k * k * c;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The element of `im2col`'s row for output `(oy, ox)` at window position `(ky, kx)` and
    /// channel `ch`, straight from the definition.
    fn receptive_value(x: &[i32], input: Shape, window: Window, at: [usize; 5]) -> i32 {
        let [oy, ox, ky, kx, ch] = at;
        let iy = (oy * window.stride + ky) as isize - window.padding as isize;
        let ix = (ox * window.stride + kx) as isize - window.padding as isize;
        if iy < 0 || ix < 0 || iy >= input.height as isize || ix >= input.width as isize {
            0
        } else {
            x[(iy as usize * input.width + ix as usize) * input.channels + ch]
        }
    }

    #[test]
    fn im2col_copies_every_receptive_field_and_col2im_is_its_adjoint() {
        for (height, width, channels) in [(1, 1, 1), (5, 4, 1), (4, 7, 3), (6, 6, 2)] {
            let input = Shape {
                height,
                width,
                channels,
            };
            for (kernel, stride, padding) in (1..=4)
                .flat_map(|k| (1..=3).flat_map(move |s| (0..k).map(move |p| (k, s, p))))
                .filter(|&(k, _, p)| k <= height + 2 * p && k <= width + 2 * p)
            {
                let window = Window {
                    kernel,
                    stride,
                    padding,
                };
                let output = Shape {
                    height: (height + 2 * padding - kernel) / stride + 1,
                    width: (width + 2 * padding - kernel) / stride + 1,
                    channels,
                };
                let x: Vec<i32> = (1..=input.len() as i32 * 2).collect();
                let fan_in = kernel * kernel * channels;
                let rows = output.height * output.width;
                let mut cols = vec![-1; 2 * rows * fan_in];
                im2col(&x, input, output, window, &mut cols);
                let mut expected = Vec::new();
                for image in 0..2 {
                    let x = &x[image * input.len()..][..input.len()];
                    for (oy, ox) in
                        (0..output.height).flat_map(|y| (0..output.width).map(move |x| (y, x)))
                    {
                        for (ky, kx) in (0..kernel).flat_map(|y| (0..kernel).map(move |x| (y, x))) {
                            for ch in 0..channels {
                                expected.push(receptive_value(
                                    x,
                                    input,
                                    window,
                                    [oy, ox, ky, kx, ch],
                                ));
                            }
                        }
                    }
                }
                assert_eq!(cols, expected, "{input:?} {window:?}");
                // <im2col(x), c> = <x, col2im(c)> for integer-valued data (exact in f32).
                let c: Vec<f32> = (0..cols.len()).map(|i| (i % 7) as f32 - 3.0).collect();
                // NaN first: col2im must overwrite every value.
                let mut dx = vec![f32::NAN; x.len()];
                col2im(&c, input, output, window, &mut dx);
                let lhs: f64 = cols
                    .iter()
                    .zip(&c)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum();
                let rhs: f64 = x.iter().zip(&dx).map(|(&a, &b)| a as f64 * b as f64).sum();
                assert_eq!(lhs, rhs, "{input:?} {window:?}");
            }
        }
    }
}
