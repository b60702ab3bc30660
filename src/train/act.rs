//! The activation quantizer: quantized ReLU (two or more bits), sign of hard-tanh (one bit) or
//! plain ReLU (float), with its straight-through gradient.

use multiversion::multiversion;
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
                .for_each(|(values, passes)| activate_training(bits, values, passes));
            self.passes = passes;
        } else {
            data.par_chunks_mut(CHUNK)
                .for_each(|values| activate(bits, values));
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
            .for_each(|(grads, passes)| mask_gradient(grads, passes));
        dy
    }
}

/// Quantizes `values` in place. One loop per precision, with no per-element branch on it, so
/// that each compiles to vector code (for the widest vector unit the processor has).
#[multiversion(targets = "simd")]
fn activate(bits: Option<u32>, values: &mut [f32]) {
    match bits {
        None => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        Some(1) => values
            .iter_mut()
            .for_each(|v| *v = quant::act_code(1, *v) as f32),
        Some(bits) => {
            let max = quant::act_max_code(bits);
            values
                .iter_mut()
                .for_each(|v| *v = quant::multi_bit_act_value(max, *v))
        }
    }
}

/// [`activate`], noting in `passes` where the straight-through estimator passes the gradient.
#[multiversion(targets = "simd")]
fn activate_training(bits: Option<u32>, values: &mut [f32], passes: &mut [bool]) {
    match bits {
        None => values
            .iter()
            .zip(passes.iter_mut())
            .for_each(|(&v, p)| *p = v > 0.0),
        Some(bits) => values
            .iter()
            .zip(passes.iter_mut())
            .for_each(|(&v, p)| *p = quant::act_passes_gradient(bits, v)),
    }
    activate(bits, values);
}

/// Zeroes the gradients the straight-through estimator stops (of activations, and of weights).
#[multiversion(targets = "simd")]
pub(super) fn mask_gradient(grads: &mut [f32], passes: &[bool]) {
    for (g, &pass) in grads.iter_mut().zip(passes) {
        *g = if pass { *g } else { 0.0 };
    }
}
