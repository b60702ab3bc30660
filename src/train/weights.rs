//! Weights with quantization-aware training: latent float weights, their quantized values for
//! the forward pass, and the straight-through estimator that routes gradients back to them.

use multiversion::multiversion;
use rand::Rng;
use rayon::prelude::*;

use super::act::mask_gradient;
use super::param::Param;
use crate::quant;

/// Weights one task quantizes.
const CHUNK: usize = 1 << 14;

/// The weight matrix of a conv2d or dense layer, `[fan_in, outputs]` row-major.
#[derive(Debug, Clone)]
pub struct QuantWeights {
    pub param: Param,
    /// `None` trains in float.
    pub bits: Option<u32>,
    /// The quantized weights of the last forward pass (empty in float).
    quantized: Vec<f32>,
    /// Where the straight-through estimator passes the gradient.
    passes: Vec<bool>,
}

impl QuantWeights {
    /// Uniform initialisation with the variance of He et al. (2015) for the layer's fan-in.
    pub fn init(fan_in: usize, outputs: usize, bits: Option<u32>, rng: &mut impl Rng) -> Self {
        let bound = (6.0 / fan_in as f32).sqrt();
        let values = (0..fan_in * outputs)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        Self::from_values(fan_in, outputs, bits, values)
    }

    pub fn from_values(fan_in: usize, outputs: usize, bits: Option<u32>, values: Vec<f32>) -> Self {
        let mut param = Param::trainable("weight", vec![fan_in, outputs], values);
        if bits == Some(1) {
            // BinaryConnect: latent weights beyond +-1 would never flip sign again.
            param.clip = Some(1.0);
        }
        QuantWeights {
            param,
            bits,
            quantized: Vec::new(),
            passes: Vec::new(),
        }
    }

    pub fn fan_in(&self) -> usize {
        self.param.shape[0]
    }

    pub fn outputs(&self) -> usize {
        self.param.shape[1]
    }

    /// The step of one weight code at the current latent weights (1 in float).
    pub fn step(&self) -> f32 {
        match self.bits {
            Some(bits) => quant::weight_step(bits, &self.param.value),
            None => 1.0,
        }
    }

    /// Values the forward pass uses: the quantized weights, or in float the latent ones.
    pub fn effective(&self) -> &[f32] {
        match self.bits {
            Some(_) => &self.quantized,
            None => &self.param.value,
        }
    }

    /// Recomputes the quantized weights from the latent ones; call before every forward pass.
    pub fn quantize(&mut self) {
        let latent = &self.param.value;
        match self.bits {
            None => {
                self.quantized.clear();
                self.passes.clear();
            }
            Some(bits) => {
                let step = quant::weight_step(bits, latent);
                self.quantized.resize(latent.len(), 0.0);
                self.passes.resize(latent.len(), false);
                latent
                    .par_chunks(CHUNK)
                    .zip(self.quantized.par_chunks_mut(CHUNK))
                    .zip(self.passes.par_chunks_mut(CHUNK))
                    .for_each(|((latent, effective), passes)| {
                        quantize_block(bits, step, latent, effective, passes)
                    });
            }
        }
    }

    /// Frees what only training needs (the gradient, the optimizer moments and the mask) and
    /// the quantized copy, which the next forward pass recomputes.
    pub fn release_training_state(&mut self) {
        self.param.release_training_state();
        self.quantized = Vec::new();
        self.passes = Vec::new();
    }

    /// Stores the gradient with respect to the latent weights, given the one with respect to the
    /// effective weights (in place in `grad_effective`'s buffer, which becomes the param's grad).
    pub fn set_gradient(&mut self, mut grad_effective: Vec<f32>) {
        if !self.passes.is_empty() {
            grad_effective
                .par_chunks_mut(CHUNK)
                .zip(self.passes.par_chunks(CHUNK))
                .for_each(|(grads, passes)| mask_gradient(grads, passes));
        }
        self.param.grad = grad_effective;
    }
}

/// The quantized value of each latent weight, and whether its gradient passes.
#[multiversion(targets = "simd")]
fn quantize_block(
    bits: u32,
    step: f32,
    latent: &[f32],
    effective: &mut [f32],
    passes: &mut [bool],
) {
    // One loop per case with no branch inside, so that each compiles to vector code.
    let weights = latent.iter().zip(effective).zip(passes);
    if bits == 1 {
        for ((&w, e), p) in weights {
            *e = if w >= 0.0 { step } else { -step };
            *p = quant::weight_passes_gradient(1, step, w);
        }
    } else {
        let max = quant::weight_max_code(bits);
        let limit = quant::multi_bit_gradient_limit(max, step);
        for ((&w, e), p) in weights {
            *e = quant::multi_bit_weight_value(max, step, w);
            *p = w.abs() <= limit;
        }
    }
}
