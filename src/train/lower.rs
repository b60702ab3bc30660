//! A trained network's parameters as the IR takes them: integer weight codes exactly as the
//! training forward pass used them, and batch-norm statistics.

use super::conv::Conv2d;
use super::net::{Layer, Net};
use crate::ir::build::{self, LayerParameters};
use crate::ir::{BatchNormParams, Graph, IrError, Weights};
use crate::quant;

impl Net {
    /// The IR of this network, with its integer weight codes.
    pub fn to_graph(&self, origin: &str) -> Result<Graph, IrError> {
        build::from_trained(&self.network, self, origin)
    }
}

impl LayerParameters for Net {
    fn mac(&self, layer: usize, bits: u32) -> Option<(Weights, Option<Vec<f32>>)> {
        match self.layers.get(layer)? {
            Layer::Mac(conv) => Some(weight_codes(conv, bits)),
            _ => None,
        }
    }

    fn batch_norm(&self, layer: usize) -> Option<BatchNormParams> {
        match self.layers.get(layer)? {
            Layer::BatchNorm(bn) => Some(BatchNormParams {
                gamma: bn.gamma.value.clone(),
                beta: bn.beta.value.clone(),
                mean: bn.running_mean.value.clone(),
                var: bn.running_var.value.clone(),
                epsilon: bn.epsilon,
            }),
            _ => None,
        }
    }
}

/// Integer codes of a trained layer's weights, exactly as its training forward pass used them.
fn weight_codes(conv: &Conv2d, bits: u32) -> (Weights, Option<Vec<f32>>) {
    let latent = &conv.weights.param.value;
    let step = quant::weight_step(bits, latent);
    let codes = latent
        .iter()
        .map(|&w| quant::weight_code(bits, step, w))
        .collect();
    let weights = Weights {
        step: step as f64,
        fan_in: conv.weights.fan_in(),
        outputs: conv.weights.outputs(),
        codes,
    };
    (weights, conv.bias.as_ref().map(|b| b.value.clone()))
}
