//! What each layer of a network does, in the terms of the energy model: MACs, weights, outputs
//! computed and stored, and the bits of weights, input and output activations. Layers without
//! weights (batch norm, activation, max-pool, flatten) are fused into the MAC layer before them.
//! Average pools and adds are layers of their own, without weights: each input code is
//! accumulated once (`size^2` an output for a pool, one beyond the first input for an add), the
//! activation after them setting the bits they store.
//!
//! The work is read from the IR ([`work_of_graph`]), so that a trained model, an imported QONNX
//! graph and an IR file, lowered or not, are priced alike; a spec, which may have float layers
//! the integer IR cannot hold, is priced from its layers ([`work_of`]) with the same rules.

use serde::Serialize;

use crate::ir::ops::Cost;
use crate::ir::Graph;
use crate::spec::{Network, Op, Precision};

/// Bits of the input pixels that the first layer reads, whatever the network's precision.
pub const PIXEL_BITS: u32 = 8;
/// Bits of outputs that no activation quantizes: the logits of the last layer, or the raw
/// outputs of a layer followed directly by another MAC layer.
pub const UNQUANTIZED_OUTPUT_BITS: u32 = 16;
/// Bits a float weight or activation counts as.
pub const FLOAT_BITS: u32 = 32;
/// The weight bits of an average pool or an add: an accumulation is a product by a one-bit
/// mask (as the hardware computes it), and no weight is stored.
pub const SUM_WEIGHT_BITS: u32 = 1;

/// The work of an average pool of `taps` inputs an output or an add (`taps` 1: one
/// accumulation beyond the first input) producing `outputs` values, after `work`.
fn sum_work(work: &[LayerWork], name: &str, op: &str, taps: u64, outputs: u64) -> LayerWork {
    LayerWork {
        name: name.to_string(),
        op: op.to_string(),
        macs: taps * outputs,
        weights: 0,
        outputs_computed: outputs,
        outputs_stored: outputs,
        wbits: SUM_WEIGHT_BITS,
        abits_in: work
            .last()
            .map_or(PIXEL_BITS, |previous| previous.abits_out),
        abits_out: UNQUANTIZED_OUTPUT_BITS,
    }
}

/// The work of one MAC layer (conv2d or dense) and the layers fused into it, or of an average
/// pool or an add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerWork {
    pub name: String,
    /// "conv2d", "dense", "avgpool" or "add".
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

/// The work of every MAC layer, average pool and add of `network`, in order. Other layers before
/// the first of them belong to none and cost nothing in the model.
pub fn work_of(network: &Network) -> Vec<LayerWork> {
    let mut work: Vec<LayerWork> = Vec::new();
    // Only the first activation after a MAC layer sets the precision of what it stores.
    let mut output_quantized = false;
    for layer in &network.layers {
        match layer.op {
            Op::AvgPool { .. } | Op::Add { .. } => {
                let taps = match layer.op {
                    Op::AvgPool { size, .. } => (size * size) as u64,
                    _ => 1,
                };
                work.push(sum_work(
                    &work,
                    &layer.name,
                    layer.op.kind(),
                    taps,
                    layer.output.len() as u64,
                ));
                output_quantized = false;
            }
            Op::Conv2d { weights, .. } | Op::Dense { weights, .. } => {
                let outputs = layer.output.len() as u64;
                work.push(LayerWork {
                    name: layer.name.clone(),
                    op: layer.op.kind().to_string(),
                    macs: layer.macs(),
                    weights: layer.weights(),
                    outputs_computed: outputs,
                    outputs_stored: outputs,
                    wbits: bits_of(weights),
                    abits_in: work
                        .last()
                        .map_or(PIXEL_BITS, |previous| previous.abits_out),
                    abits_out: UNQUANTIZED_OUTPUT_BITS,
                });
                output_quantized = false;
            }
            Op::MaxPool { .. } => {
                if let Some(current) = work.last_mut() {
                    current.outputs_stored = layer.output.len() as u64;
                }
            }
            Op::Act { bits } => {
                if let Some(current) = work.last_mut().filter(|_| !output_quantized) {
                    current.abits_out = bits_of(bits);
                    output_quantized = true;
                }
            }
            Op::BatchNorm | Op::Flatten => {}
        }
    }
    // The last layer ends in integer logits, whatever follows it.
    if let Some(last) = work.last_mut() {
        last.abits_out = UNQUANTIZED_OUTPUT_BITS;
    }
    work
}

/// The work of every MAC, average-pool and add node of `graph`, in topological order, by the
/// rules of [`work_of`] and what each op says it costs ([`crate::ir::ops::OpRules::cost`]):
/// the first quantizer (or threshold or clamped requantization, once lowered) after a MAC sets
/// the bits it stores, a max-pool the number of outputs it stores.
pub fn work_of_graph(graph: &Graph) -> Vec<LayerWork> {
    let mut work: Vec<LayerWork> = Vec::new();
    let mut output_quantized = false;
    for node in graph.topological_order() {
        let (Some(input), Some(output)) = (graph.input_type(node), graph.output_type(node)) else {
            continue;
        };
        let op = &graph.graph[node].op;
        match op.rules().cost(input, output) {
            Cost::Layer {
                macs,
                weights,
                wbits,
            } => {
                let outputs = output.shape.len() as u64;
                work.push(LayerWork {
                    name: graph.graph[node].name.clone(),
                    op: op.name().to_string(),
                    macs,
                    weights,
                    outputs_computed: outputs,
                    outputs_stored: outputs,
                    wbits,
                    abits_in: work
                        .last()
                        .map_or(PIXEL_BITS, |previous| previous.abits_out),
                    abits_out: UNQUANTIZED_OUTPUT_BITS,
                });
                output_quantized = false;
            }
            Cost::StoresOutputs => {
                if let Some(current) = work.last_mut() {
                    current.outputs_stored = output.shape.len() as u64;
                }
            }
            Cost::Quantizes => {
                if let Some(current) = work.last_mut().filter(|_| !output_quantized) {
                    current.abits_out = output.precision.storage_bits();
                    output_quantized = true;
                }
            }
            Cost::Free => {}
        }
    }
    if let Some(last) = work.last_mut() {
        last.abits_out = UNQUANTIZED_OUTPUT_BITS;
    }
    work
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
