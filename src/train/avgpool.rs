//! Average pooling over square windows of NHWC tensors (no padding, floor mode); global
//! average pooling is the window of the whole input.

use ndarray::Array4;
use rayon::prelude::*;

use crate::spec::Shape;

#[derive(Debug, Clone)]
pub struct AvgPool {
    pub input: Shape,
    pub output: Shape,
    pub size: usize,
    pub stride: usize,
}

impl AvgPool {
    pub fn new(input: Shape, output: Shape, size: usize, stride: usize) -> Self {
        AvgPool {
            input,
            output,
            size,
            stride,
        }
    }

    /// The mean of each channel over each window. The backward pass needs nothing of the
    /// input, so training keeps no state.
    pub fn forward(&self, x: &Array4<f32>) -> Array4<f32> {
        let batch = x.dim().0;
        let (input, output) = (self.input, self.output);
        let c = input.channels;
        let scale = 1.0 / (self.size * self.size) as f32;
        let mut y = Array4::<f32>::zeros((batch, output.height, output.width, c));
        y.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(output.len())
            .zip(
                x.as_slice()
                    .expect("standard layout")
                    .par_chunks(input.len()),
            )
            .for_each(|(out, image)| {
                for oy in 0..output.height {
                    for ox in 0..output.width {
                        let sums = &mut out[(oy * output.width + ox) * c..][..c];
                        // Window order, one channel row at a time: the same sum on every run.
                        for ky in 0..self.size {
                            for kx in 0..self.size {
                                let iy = oy * self.stride + ky;
                                let ix = ox * self.stride + kx;
                                let row = &image[(iy * input.width + ix) * c..][..c];
                                for (s, &v) in sums.iter_mut().zip(row) {
                                    *s += v;
                                }
                            }
                        }
                        for s in sums {
                            *s *= scale;
                        }
                    }
                }
            });
        y
    }

    /// Spreads each output's gradient evenly over its window (overlapping windows add up).
    pub fn backward(&self, dy: &Array4<f32>) -> Array4<f32> {
        let batch = dy.dim().0;
        let (input, output) = (self.input, self.output);
        let c = input.channels;
        let scale = 1.0 / (self.size * self.size) as f32;
        let mut dx = Array4::<f32>::zeros((batch, input.height, input.width, c));
        dx.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(input.len())
            .zip(
                dy.as_slice()
                    .expect("standard layout")
                    .par_chunks(output.len()),
            )
            .for_each(|(image, grads)| {
                for oy in 0..output.height {
                    for ox in 0..output.width {
                        let g = &grads[(oy * output.width + ox) * c..][..c];
                        for ky in 0..self.size {
                            for kx in 0..self.size {
                                let iy = oy * self.stride + ky;
                                let ix = ox * self.stride + kx;
                                let row = &mut image[(iy * input.width + ix) * c..][..c];
                                for (d, &g) in row.iter_mut().zip(g) {
                                    *d += g * scale;
                                }
                            }
                        }
                    }
                }
            });
        dx
    }
}
