//! What each layer of a network does, in the terms of the energy model: MACs, weights, outputs
//! computed and stored, and the bits of weights, input and output activations. Layers without
//! weights (batch norm, activation, max-pool, flatten) are fused into the MAC layer before them.
//! Sums without weights are layers of their own, each op saying how many accumulations it
//! makes ([`crate::ir::ops::OpRules::cost`]), the activation after them setting the bits they
//! store.
//!
//! The work is read from the IR ([`work_of_graph`]), so that a trained model, an imported QONNX
//! graph and an IR file, lowered or not, are priced alike; a spec, which may have float layers
//! the integer IR cannot hold, is priced from its layers ([`work_of`]) with the same rules.

use serde::Serialize;

use crate::ir::ops::{self, Cost};
use crate::ir::Graph;
use crate::spec::{Network, Op, Precision, Shape};

/// Bits of the input pixels that the first layer reads, whatever the network's precision.
pub const PIXEL_BITS: u32 = 8;
/// Bits of outputs that no activation quantizes: the logits of the last layer, or the raw
/// outputs of a layer followed directly by another MAC layer.
pub const UNQUANTIZED_OUTPUT_BITS: u32 = 16;
/// Bits a float weight or activation counts as.
pub const FLOAT_BITS: u32 = 32;
/// The weight bits of a sum without weights: an accumulation is a product by a one-bit mask
/// (as the hardware computes it), and no weight is stored.
pub const SUM_WEIGHT_BITS: u32 = 1;

/// The work of one MAC layer (conv2d or dense) or weightless sum, and of the layers fused into
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerWork {
    pub name: String,
    /// The name of the layer's op: "conv2d" or "dense" for a MAC layer, else that of the sum
    /// that is a layer of its own.
    pub op: String,
    /// N_c: multiply-accumulates of one inference.
    pub macs: u64,
    /// N_s: weights.
    pub weights: u64,
    /// A_s: outputs computed (before a max-pool that follows).
    pub outputs_computed: u64,
    /// A_out: outputs stored in main memory (after that max-pool).
    pub outputs_stored: u64,
    /// Qw: bits of a weight.
    pub wbits: u32,
    /// Qa_in: bits of an input activation (the previous layer's Qa_out; pixels for the first).
    pub abits_in: u32,
    /// Qa_out: bits of a stored output (the first activation after the layer).
    pub abits_out: u32,
}

/// The work of every MAC layer and weightless sum of `network`, in order. Other layers before
/// the first of them belong to none and cost nothing in the model. MACs and activations are
/// priced from the spec's precisions (which may be float); every other layer as the IR op it
/// becomes prices it ([`ops::spec_cost`]).
pub fn work_of(network: &Network) -> Vec<LayerWork> {
    let mut tally = Tally::default();
    for layer in &network.layers {
        let (cost, bits) = match layer.op {
            Op::Conv2d { weights, .. } | Op::Dense { weights, .. } => (
                Cost::Layer {
                    macs: layer.macs(),
                    weights: layer.weights(),
                    wbits: bits_of(weights),
                },
                UNQUANTIZED_OUTPUT_BITS,
            ),
            Op::Act { bits } => (Cost::Quantizes, bits_of(bits)),
            other => (
                ops::spec_cost(other, layer.output)
                    .expect("every layer but MACs and activations is priced by its op"),
                UNQUANTIZED_OUTPUT_BITS,
            ),
        };
        tally.add(&layer.name, layer.op.kind(), cost, layer.output, bits);
    }
    tally.work()
}

/// The work of every MAC node and weightless sum node of `graph`, in topological order, by the
/// rules of [`work_of`] and what each op says it costs ([`crate::ir::ops::OpRules::cost`]):
/// the first quantizer (or threshold or clamped requantization, once lowered) after a MAC sets
/// the bits it stores, a max-pool the number of outputs it stores.
pub fn work_of_graph(graph: &Graph) -> Vec<LayerWork> {
    let mut tally = Tally::default();
    for node in graph.topological_order() {
        let (Some(input), Some(output)) = (graph.input_type(node), graph.output_type(node)) else {
            continue;
        };
        let op = &graph.graph[node].op;
        tally.add(
            &graph.graph[node].name,
            op.name(),
            op.rules().cost(input, output),
            output.shape,
            output.precision.storage_bits(),
        );
    }
    tally.work()
}

/// The work of the layers priced so far, and whether the last one's outputs are quantized
/// already: only the first activation after a layer sets the precision of what it stores.
#[derive(Default)]
struct Tally {
    work: Vec<LayerWork>,
    output_quantized: bool,
}

impl Tally {
    /// Prices a layer (or node) `name` of kind `op` that costs `cost` and produces `output`,
    /// of `bits` bits an element.
    fn add(&mut self, name: &str, op: &str, cost: Cost, output: Shape, bits: u32) {
        match cost {
            Cost::Layer {
                macs,
                weights,
                wbits,
            } => {
                let outputs = output.len() as u64;
                let abits_in = self
                    .work
                    .last()
                    .map_or(PIXEL_BITS, |previous| previous.abits_out);
                self.work.push(LayerWork {
                    name: name.to_string(),
                    op: op.to_string(),
                    macs,
                    weights,
                    outputs_computed: outputs,
                    outputs_stored: outputs,
                    wbits,
                    abits_in,
                    abits_out: UNQUANTIZED_OUTPUT_BITS,
                });
                self.output_quantized = false;
            }
            Cost::StoresOutputs => {
                if let Some(current) = self.work.last_mut() {
                    current.outputs_stored = output.len() as u64;
                }
            }
            Cost::Quantizes => {
                if let Some(current) = self.work.last_mut().filter(|_| !self.output_quantized) {
                    current.abits_out = bits;
                    self.output_quantized = true;
                }
            }
            Cost::Free => {}
        }
    }

    /// The work, the last layer ending in integer logits whatever follows it.
    fn work(mut self) -> Vec<LayerWork> {
        if let Some(last) = self.work.last_mut() {
            last.abits_out = UNQUANTIZED_OUTPUT_BITS;
        }
        self.work
    }
}

fn bits_of(precision: Precision) -> u32 {
    precision.bits().unwrap_or(FLOAT_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn network(text: &str) -> Network {
        Spec::parse(text, false, "test.toml")
            .and_then(|spec| spec.build("test.toml"))
            .unwrap()
    }

    #[test]
    fn fuses_pool_and_act_into_the_mac_layer_before_them() {
        let net = network(
            r#"
            name = "t"
            input = { height = 28, width = 28, channels = 1 }
            classes = 10
            precision = { weights = 4, activations = 2 }
            layers = [
              { kind = "conv2d", filters = 2, kernel = 4, stride = 4 },
              { kind = "batchnorm" },
              { kind = "act" },
              { kind = "act", bits = 5 },
              { kind = "maxpool", size = 7 },
              { kind = "flatten" },
              { kind = "dense", units = 10, wbits = "float" },
            ]
            "#,
        );
        let work = work_of(&net);
        assert_eq!(
            work,
            vec![
                LayerWork {
                    name: "conv1".into(),
                    op: "conv2d".into(),
                    macs: 7 * 7 * 2 * 4 * 4,
                    weights: 2 * 4 * 4,
                    outputs_computed: 7 * 7 * 2,
                    outputs_stored: 2,
                    wbits: 4,
                    abits_in: PIXEL_BITS,
                    abits_out: 2,
                },
                LayerWork {
                    name: "fc1".into(),
                    op: "dense".into(),
                    macs: 2 * 10,
                    weights: 2 * 10,
                    outputs_computed: 10,
                    outputs_stored: 10,
                    wbits: FLOAT_BITS,
                    abits_in: 2,
                    abits_out: UNQUANTIZED_OUTPUT_BITS,
                },
            ]
        );
    }

    #[test]
    fn float_activations_count_as_32_bits_and_a_final_act_still_gives_logits() {
        let net = network(
            r#"
            name = "t"
            input = { height = 28, width = 28, channels = 1 }
            classes = 10
            precision = { weights = "float", activations = "float" }
            layers = [
              { kind = "flatten" },
              { kind = "dense", units = 3 },
              { kind = "act" },
              { kind = "dense", units = 3 },
              { kind = "dense", units = 10 },
              { kind = "act" },
            ]
            "#,
        );
        let bits: Vec<_> = work_of(&net)
            .iter()
            .map(|w| (w.wbits, w.abits_in, w.abits_out))
            .collect();
        assert_eq!(
            bits,
            vec![
                (FLOAT_BITS, PIXEL_BITS, FLOAT_BITS),
                (FLOAT_BITS, FLOAT_BITS, UNQUANTIZED_OUTPUT_BITS),
                (FLOAT_BITS, UNQUANTIZED_OUTPUT_BITS, UNQUANTIZED_OUTPUT_BITS),
            ]
        );
    }
}
