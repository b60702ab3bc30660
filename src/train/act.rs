//! The activation quantizer: quantized ReLU (two or more bits), sign of hard-tanh (one bit) or
//! plain ReLU (float), with its straight-through gradient.

use ndarray::Array4;
use rayon::prelude::*;

use crate::quant;

const CHUNK: usize = 1 << 14;

#[derive(Debug, Clone)]
pub struct Act {
    /// `None` is a float ReLU.
    pub bits: Option<u32>,
    /// Where the last training input let the gradient through.
    passes: Vec<bool>,
}

impl Act {
    pub fn new(bits: Option<u32>) -> Self {
        Act {
            bits,
            passes: Vec::new(),
        }
    }

    pub fn forward(&mut self, mut x: Array4<f32>, training: bool) -> Array4<f32> {
        let data = x.as_slice_mut().expect("standard layout");
        let bits = self.bits;
        if training {
            let mut passes = std::mem::take(&mut self.passes);
            passes.resize(data.len(), false);
            data.par_chunks_mut(CHUNK)
                .zip(passes.par_chunks_mut(CHUNK))
                .for_each(|(values, passes)| {
                    for (v, pass) in values.iter_mut().zip(passes) {
                        *pass = passes_gradient(bits, *v);
                        *v = activate(bits, *v);
                    }
                });
            self.passes = passes;
        } else {
            data.par_chunks_mut(CHUNK).for_each(|values| {
                for v in values {
                    *v = activate(bits, *v);
                }
            });
        }
        x
    }

    /// Frees the mask of the last training batch.
    pub fn release_training_state(&mut self) {
        self.passes = Vec::new();
    }

    pub fn backward(&mut self, mut dy: Array4<f32>) -> Array4<f32> {
        let data = dy.as_slice_mut().expect("standard layout");
        data.par_chunks_mut(CHUNK)
            .zip(self.passes.par_chunks(CHUNK))
            .for_each(|(grads, passes)| {
                for (g, &pass) in grads.iter_mut().zip(passes) {
                    if !pass {
                        *g = 0.0;
                    }
                }
            });
        dy
    }
}

#[inline]
fn activate(bits: Option<u32>, x: f32) -> f32 {
    match bits {
        None => x.max(0.0),
        Some(bits) => quant::act_value(bits, quant::act_code(bits, x)),
    }
}

#[inline]
fn passes_gradient(bits: Option<u32>, x: f32) -> bool {
    match bits {
        None => x > 0.0,
        Some(bits) => quant::act_passes_gradient(bits, x),
    }
}
