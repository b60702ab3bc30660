//! Builds the IR of a network: from trained parameters (integer weight codes and batch-norm
//! statistics, through [`LayerParameters`]) or from a spec alone (shapes and precisions, no
//! weights).
//!
//! Edges leaving MACs and batch norms are float until `infer-accumulators` and
//! `fold-batch-norm` lower them.

use petgraph::stable_graph::NodeIndex;

use super::ops;
use super::{BatchNormParams, Graph, IrError, IrKind, Node, Op, Precision, TensorType, Weights};
use crate::quant;
use crate::spec::{self, DatasetKind, Network, Shape, Spec};

/// The type of the image: 8-bit pixels, value = pixel / 255.
pub fn input_type(shape: Shape) -> TensorType {
    TensorType {
        shape,
        precision: Precision::unsigned(8),
        scale: 1.0 / 255.0,
    }
}

/// The precision and scale of the activation codes of networks qnnc trains, at `bits`. The
/// scale is the f32 nearest to 1 / (2^Q - 1), so that it survives a file that stores it as f32
/// (a QONNX export) unchanged.
pub fn activation_type(shape: Shape, bits: u32) -> TensorType {
    let scale = if bits == 1 {
        1.0
    } else {
        1.0 / quant::act_max_code(bits) as f32
    };
    quantizer_type(shape, bits, scale as f64)
}

/// The precision and scale of activation codes at `bits` whose one code is worth `scale`:
/// unsigned codes for two bits or more, bipolar {-1, +1} for one.
pub fn quantizer_type(shape: Shape, bits: u32, scale: f64) -> TensorType {
    let precision = if bits == 1 {
        Precision::Bipolar
    } else {
        Precision::unsigned(bits)
    };
    TensorType {
        shape,
        precision,
        scale,
    }
}

/// The precision of weight codes at `bits`.
pub fn weight_precision(bits: u32) -> Precision {
    if bits == 1 {
        Precision::Bipolar
    } else {
        Precision::signed(bits)
    }
}

/// The learnt parameters of a network's layers, indexed as `Network::layers`: what a trainer
/// provides so that the IR needs to know nothing of how they were learnt.
pub trait LayerParameters {
    /// The integer weight codes at `bits` and the float bias of MAC layer `layer`, if it has
    /// learnt weights.
    fn mac(&self, layer: usize, bits: u32) -> Option<(Weights, Option<Vec<f32>>)>;
    /// The statistics of batch-norm layer `layer`, if it has learnt ones.
    fn batch_norm(&self, layer: usize) -> Option<BatchNormParams>;
}

/// The IR of a trained network, with its integer weight codes.
pub fn from_trained(
    network: &Network,
    parameters: &dyn LayerParameters,
    origin: &str,
) -> Result<Graph, IrError> {
    build(network, Some(parameters), origin)
}

/// The IR of a network described by a spec alone: shapes and precisions, no weights.
pub fn from_network(network: &Network, origin: &str) -> Result<Graph, IrError> {
    build(network, None, origin)
}

fn build(
    network: &Network,
    parameters: Option<&dyn LayerParameters>,
    origin: &str,
) -> Result<Graph, IrError> {
    let mut graph = Graph::new(&network.spec.name);
    let mut previous = graph.graph.add_node(Node {
        name: "input".into(),
        op: Op::Input,
    });
    let mut ty = input_type(network.input());
    // The node of each layer and the type it produces, for the adds that read them again.
    let mut layers: Vec<(NodeIndex, TensorType)> = Vec::with_capacity(network.layers.len());
    for (i, plan) in network.layers.iter().enumerate() {
        let error = |message: String| IrError::Invalid {
            file: origin.to_string(),
            node: plan.name.clone(),
            message,
        };
        let float_error = |message: &str| IrError::NotLowered {
            file: origin.to_string(),
            node: plan.name.clone(),
            message: message.to_string(),
        };
        let mac = |dense: bool,
                   window: (usize, usize, usize),
                   outputs: usize,
                   weights: spec::Precision| {
            let bits = weights.bits().ok_or_else(|| {
                float_error(
                    "weights are float; the integer model needs 1..=16 bits (train with --bits)",
                )
            })?;
            let (codes, bias) = match parameters.and_then(|p| p.mac(i, bits)) {
                Some((weights, bias)) => (Some(weights), bias),
                None => (None, None),
            };
            let scale = codes.as_ref().map_or(1.0, |w| w.step) * ty.scale;
            let (kernel, stride, padding) = window;
            let op = Op::Mac {
                dense,
                kernel,
                stride,
                padding,
                outputs,
                weight_precision: weight_precision(bits),
                weights: codes,
                bias,
            };
            let out = TensorType {
                shape: plan.output,
                precision: Precision::Float,
                scale,
            };
            Ok((op, out))
        };
        // The layer a skip connection comes from, read as the second input.
        let skip = match plan.op.skip_from() {
            Some(from) => Some(*layers.get(from).ok_or_else(|| {
                error(format!("adds layer {from}, which is not an earlier layer"))
            })?),
            None => None,
        };
        let inputs: Vec<TensorType> = std::iter::once(ty)
            .chain(skip.map(|(_, source_type)| source_type))
            .collect();
        // MACs, batch norms and quantizers are made here, from learnt parameters and the spec's
        // precisions; every other layer by its op.
        let (op, out) = match plan.op {
            spec::Op::Conv2d {
                kernel,
                stride,
                padding,
                filters,
                weights,
                ..
            } => mac(false, (kernel, stride, padding), filters, weights)?,
            spec::Op::Dense { units, weights, .. } => mac(true, (1, 1, 0), units, weights)?,
            spec::Op::BatchNorm => {
                let params = match parameters.and_then(|p| p.batch_norm(i)) {
                    Some(params) => params,
                    None => {
                        let c = plan.output.channels;
                        BatchNormParams {
                            gamma: vec![1.0; c],
                            beta: vec![0.0; c],
                            mean: vec![0.0; c],
                            var: vec![1.0; c],
                            epsilon: 1e-5,
                        }
                    }
                };
                let out = TensorType {
                    shape: plan.output,
                    precision: Precision::Float,
                    scale: 1.0,
                };
                (Op::BatchNorm(params), out)
            }
            spec::Op::Act { bits } => {
                let bits = bits.bits().ok_or_else(|| {
                    float_error("activations are float; the integer model needs 1..=16 bits (train with --bits)")
                })?;
                (
                    Op::Quantize {
                        bits,
                        truncation: None,
                        narrow: false,
                    },
                    activation_type(plan.output, bits),
                )
            }
            other => ops::from_spec(other, &inputs, plan.output)
                .expect("every layer that needs nothing learnt has its op")
                .map_err(error)?,
        };
        let node = graph.graph.add_node(Node {
            name: plan.name.clone(),
            op,
        });
        graph.connect(previous, node, 0, ty);
        if let Some((source, source_type)) = skip {
            graph.connect(source, node, 1, source_type);
        }
        layers.push((node, out));
        previous = node;
        ty = out;
    }
    let output: NodeIndex = graph.graph.add_node(Node {
        name: "logits".into(),
        op: Op::Output,
    });
    graph.connect(previous, output, 0, ty);
    Ok(graph)
}

/// The main path of a graph: from the input to the output, each node the first input of the
/// next. A spec lists its layers along it, an add naming its second input.
fn main_path(graph: &Graph, origin: &str) -> Result<Vec<NodeIndex>, IrError> {
    let g = &graph.graph;
    let mut node = g
        .node_indices()
        .find(|&i| g[i].op == Op::Output)
        .expect("a verified graph has an output");
    let mut path = vec![node];
    while let Some(previous) = graph.predecessor(node) {
        node = previous;
        path.push(node);
    }
    path.reverse();
    if path.len() != g.node_count() {
        let on_path: std::collections::BTreeSet<NodeIndex> = path.iter().copied().collect();
        let off = graph
            .topological_order()
            .into_iter()
            .find(|n| !on_path.contains(n))
            .expect("a node off the path");
        return Err(graph.error_of(
            IrKind::Unsupported,
            origin,
            off,
            "is off the main path (the first input of each node from the output back): a spec describes a chain whose adds read earlier layers",
        ));
    }
    Ok(path)
}

/// The spec of a graph before lowering (an imported one): its layers, shapes and precisions,
/// for what works on specs, such as the energy model. Activation scales are not part of a spec.
/// Each op says which layer describes it ([`ops::OpRules::spec_layer`]).
pub fn to_spec(graph: &Graph, dataset: DatasetKind, origin: &str) -> Result<Spec, IrError> {
    let chain = main_path(graph, origin)?;
    let input = graph.output_type(chain[0]).expect("typed input");
    let mut layers = Vec::new();
    let mut classes = 0;
    for &node in &chain[1..] {
        let op = &graph.graph[node].op;
        if *op == Op::Output {
            classes = graph.input_type(node).expect("typed").shape.len();
            continue;
        }
        let name = Some(graph.graph[node].name.clone());
        let reads: Vec<&str> = graph
            .inputs(node)
            .into_iter()
            .map(|read| graph.graph[read].name.as_str())
            .collect();
        let output = graph.output_type(node).expect("typed");
        let layer = op.rules().spec_layer(name, &reads, output).ok_or_else(|| {
            graph.error_of(
                IrKind::Unsupported,
                origin,
                node,
                "is lowered to integers; a spec describes a graph before fold-batch-norm",
            )
        })?;
        layers.push(layer);
    }
    Ok(Spec {
        name: graph.name.clone(),
        dataset,
        input: input.shape,
        classes,
        precision: Default::default(),
        layers,
        template: None,
    })
}
