//! Max-pooling over square windows of NHWC tensors.

use multiversion::multiversion;
use ndarray::Array4;
use rayon::prelude::*;

use super::buffers::Buffers;
use crate::spec::Shape;

#[derive(Debug, Clone)]
pub struct MaxPool {
    pub input: Shape,
    pub output: Shape,
    pub size: usize,
    pub stride: usize,
    /// For every output of the last training batch, the index (within its image) of the input
    /// that won; the first in window order on ties.
    winners: Vec<u32>,
    batch: usize,
}

impl MaxPool {
    pub fn new(input: Shape, output: Shape, size: usize, stride: usize) -> Self {
        MaxPool {
            input,
            output,
            size,
            stride,
            winners: Vec::new(),
            batch: 0,
        }
    }

    pub fn forward(
        &mut self,
        x: &Array4<f32>,
        training: bool,
        buffers: &mut Buffers,
    ) -> Array4<f32> {
        let batch = x.dim().0;
        let (input, output) = (self.input, self.output);
        let c = input.channels;
        // Every window writes its outputs.
        let mut y = buffers.overwritten((batch, output.height, output.width, c));
        let mut winners = std::mem::take(&mut self.winners);
        winners.resize(batch * output.len(), 0);
        y.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(output.len())
            .zip(winners.par_chunks_mut(output.len()))
            .zip(
                x.as_slice()
                    .expect("standard layout")
                    .par_chunks(input.len()),
            )
            .for_each(|((out, win), image)| {
                pool_image(image, out, win, [input, output], [self.size, self.stride])
            });
        if training {
            self.batch = batch;
        }
        self.winners = winners;
        y
    }

    /// Frees the winners of the last training batch.
    pub fn release_training_state(&mut self) {
        self.winners = Vec::new();
        self.batch = 0;
    }

    pub fn backward(&mut self, dy: &Array4<f32>, buffers: &mut Buffers) -> Array4<f32> {
        let (input, output) = (self.input, self.output);
        // Zeroed an image at a time below, while it is in cache.
        let mut dx = buffers.overwritten((self.batch, input.height, input.width, input.channels));
        dx.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(input.len())
            .zip(self.winners.par_chunks(output.len()))
            .zip(
                dy.as_slice()
                    .expect("standard layout")
                    .par_chunks(output.len()),
            )
            .for_each(|((image, win), grads)| {
                image.fill(0.0);
                for (&w, &g) in win.iter().zip(grads) {
                    image[w as usize] += g;
                }
            });
        dx
    }
}

/// Max-pools one image: the largest value of every window and channel, and where it was.
/// Channels innermost, so that one window position compares every channel at once.
#[multiversion(targets = "simd")]
fn pool_image(
    image: &[f32],
    out: &mut [f32],
    win: &mut [u32],
    shapes: [Shape; 2],
    window: [usize; 2],
) {
    let [input, output] = shapes;
    let [size, stride] = window;
    let c = input.channels;
    for oy in 0..output.height {
        for ox in 0..output.width {
            let o = (oy * output.width + ox) * c;
            let (best, best_index) = (&mut out[o..o + c], &mut win[o..o + c]);
            best.fill(f32::NEG_INFINITY);
            best_index.fill(0);
            for ky in 0..size {
                for kx in 0..size {
                    let iy = oy * stride + ky;
                    let ix = ox * stride + kx;
                    let first = (iy * input.width + ix) * c;
                    for (ch, ((b, w), &v)) in best
                        .iter_mut()
                        .zip(best_index.iter_mut())
                        .zip(&image[first..first + c])
                        .enumerate()
                    {
                        // Strictly greater: the first in window order wins ties.
                        let better = v > *b;
                        *b = if better { v } else { *b };
                        *w = if better { (first + ch) as u32 } else { *w };
                    }
                }
            }
        }
    }
}
