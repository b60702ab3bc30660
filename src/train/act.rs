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
        let code_values = code_values(bits);
        if training {
            let mut passes = std::mem::take(&mut self.passes);
            passes.resize(data.len(), false);
            data.par_chunks_mut(CHUNK)
                .zip(passes.par_chunks_mut(CHUNK))
                .for_each(|(values, passes)| {
                    for (v, pass) in values.iter_mut().zip(passes) {
                        *pass = passes_gradient(bits, *v);
                        *v = activate(bits, &code_values, *v);
                    }
                });
            self.passes = passes;
        } else {
            data.par_chunks_mut(CHUNK).for_each(|values| {
                for v in values {
                    *v = activate(bits, &code_values, *v);
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

/// The quantized activation of `x`: the value of its code, looked up in `values` (the value of
/// each code, `act_value`, for two or more bits) rather than divided out for every element.
#[inline]
fn activate(bits: Option<u32>, values: &[f32], x: f32) -> f32 {
    match bits {
        None => x.max(0.0),
        Some(1) => quant::act_code(1, x) as f32,
        Some(bits) => values[quant::act_code(bits, x) as usize],
    }
}

/// The value of every code of a quantizer of two or more bits (empty for one bit and float).
fn code_values(bits: Option<u32>) -> Vec<f32> {
    match bits {
        Some(bits) if bits >= 2 => (0..=quant::act_max_code(bits))
            .map(|code| quant::act_value(bits, code))
            .collect(),
        _ => Vec::new(),
    }
}

#[inline]
fn passes_gradient(bits: Option<u32>, x: f32) -> bool {
    match bits {
        None => x > 0.0,
        Some(bits) => quant::act_passes_gradient(bits, x),
    }
}
