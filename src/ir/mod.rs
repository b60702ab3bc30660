//! The integer IR: a petgraph graph whose nodes are operations and whose edges carry the tensor
//! type (shape, precision, scale) flowing between them.
//!
//! A graph is built from trained parameters ([`build::from_trained`], as `Net::to_graph` does)
//! or from a spec alone ([`build::from_network`], no weights), checked by [`verify::verify`],
//! and lowered by the passes in [`passes`] until every operation is integer-only: MACs on integer codes, per-channel
//! multi-thresholds or multiply-shift requantization, max-pool on codes, and integer logits.

pub mod build;
pub mod dump;
pub mod float_model;
pub mod passes;
pub mod verify;

use crate::error::escape_controls;
use std::fmt;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};

use crate::spec::Shape;

/// The number format of a tensor's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Precision {
    /// Two's-complement (signed) or unsigned integer codes of `bits` bits.
    Int { bits: u32, signed: bool },
    /// {-1, +1}, stored as one bit (1 for +1).
    Bipolar,
    /// Not yet lowered to integers (batch-norm outputs before folding).
    Float,
}

impl Precision {
    pub fn unsigned(bits: u32) -> Self {
        Precision::Int {
            bits,
            signed: false,
        }
    }

    pub fn signed(bits: u32) -> Self {
        Precision::Int { bits, signed: true }
    }

    /// Smallest and largest code, or `None` for float.
    pub fn code_range(self) -> Option<(i64, i64)> {
        match self {
            Precision::Bipolar => Some((-1, 1)),
            Precision::Int { bits, signed: true } => {
                Some((-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1))
            }
            Precision::Int {
                bits,
                signed: false,
            } => Some((0, (1i64 << bits) - 1)),
            Precision::Float => None,
        }
    }

    /// Bits one element occupies in memory (float counts as 32).
    pub fn storage_bits(self) -> u32 {
        match self {
            Precision::Int { bits, .. } => bits,
            Precision::Bipolar => 1,
            Precision::Float => 32,
        }
    }

    /// The smallest signed integer type holding every value in `[min, max]`.
    pub fn signed_for_range(min: i64, max: i64) -> Self {
        let mut bits = 1;
        while bits < 64 && !(min >= -(1i64 << (bits - 1)) && max < (1i64 << (bits - 1))) {
            bits += 1;
        }
        Precision::signed(bits)
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Precision::Int { bits, signed: true } => write!(f, "i{bits}"),
            Precision::Int {
                bits,
                signed: false,
            } => write!(f, "u{bits}"),
            Precision::Bipolar => f.write_str("bipolar"),
            Precision::Float => f.write_str("f32"),
        }
    }
}

/// The type of the tensor on an edge: the value of a code is `code * scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorType {
    pub shape: Shape,
    pub precision: Precision,
    pub scale: f64,
}

/// Integer weight codes `[fan_in, outputs]` (rows ordered ky, kx, input channel) and the value
/// of one code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    pub step: f64,
    pub fan_in: usize,
    pub outputs: usize,
    pub codes: Vec<i32>,
}

/// Batch-norm parameters, per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNormParams {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub epsilon: f32,
}

/// Per-channel thresholds: the output code counts the thresholds the accumulator reaches.
/// Ascending channels count `acc >= t`, descending ones (negative batch-norm gamma) `acc <= t`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdTable {
    /// `[channels][count]`, sorted ascending (or descending for descending channels).
    pub thresholds: Vec<Vec<i64>>,
    pub descending: Vec<bool>,
}

/// Per-channel multiply-shift: `out = clamp((acc * multiplier + offset) >> shift, min, max)`,
/// the shift arithmetic (rounding towards minus infinity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requantization {
    pub multiplier: Vec<i64>,
    pub offset: Vec<i64>,
    pub shift: u32,
    /// Output range; `None` for logits, which keep every value.
    pub clamp: Option<(i64, i64)>,
}

/// A quantizer followed by a truncation: it first makes `input_bits`-bit unsigned codes
/// `q = clamp(round(z / input_scale))`, which the truncation divides by `2^shift` and rounds.
/// The output codes have the quantizer's `bits` and the scale on its output edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Truncation {
    pub input_bits: u32,
    pub input_scale: f64,
    pub shift: u32,
    pub rounding: Rounding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rounding {
    Floor,
    /// Half to even.
    Round,
    Ceil,
}

impl Truncation {
    /// The output code of input code `q`, at most `max`.
    pub fn code(&self, q: i64, max: i64) -> i64 {
        let v = q as f64 / (1u64 << self.shift) as f64;
        let rounded = match self.rounding {
            Rounding::Floor => v.floor(),
            Rounding::Round => v.round_ties_even(),
            Rounding::Ceil => v.ceil(),
        };
        (rounded as i64).clamp(0, max)
    }

    /// The largest input code.
    pub fn input_max(&self) -> i64 {
        (1i64 << self.input_bits) - 1
    }

    /// For each output code k >= 1, the smallest input code that truncates to k or more
    /// (`None` when none does).
    pub fn first_inputs(&self, max: i64) -> Vec<Option<i64>> {
        (1..=max)
            .map(|k| (0..=self.input_max()).find(|&q| self.code(q, max) >= k))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Op {
    /// The image: 8-bit unsigned pixels.
    Input,
    /// Convolution (dense when `kernel` is 1 on a 1x1 input) producing integer accumulators.
    /// `weights` is `None` in a graph built from a spec alone.
    Mac {
        dense: bool,
        kernel: usize,
        stride: usize,
        padding: usize,
        outputs: usize,
        weight_precision: Precision,
        weights: Option<Weights>,
        /// Float bias, folded into the next threshold or requantization.
        bias: Option<Vec<f32>>,
    },
    BatchNorm(BatchNormParams),
    /// The activation quantizer of training (quantized ReLU, or sign for one bit): unsigned
    /// codes `round(z / s)` clamped to `bits` bits, `s` the scale on its output edge.
    Quantize {
        bits: u32,
        /// A truncation of the codes (QONNX's Trunc) that follows the quantizer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        truncation: Option<Truncation>,
    },
    MultiThreshold(ThresholdTable),
    Requantize(Requantization),
    MaxPool {
        size: usize,
        stride: usize,
    },
    Flatten,
    /// Integer logits; the class is their argmax (the first on ties).
    Output,
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Mac { dense: true, .. } => "dense",
            Op::Mac { dense: false, .. } => "conv2d",
            Op::BatchNorm(_) => "batchnorm",
            Op::Quantize { .. } => "quantize",
            Op::MultiThreshold(_) => "multithreshold",
            Op::Requantize(_) => "requantize",
            Op::MaxPool { .. } => "maxpool",
            Op::Flatten => "flatten",
            Op::Output => "output",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub op: Op,
}

/// The graph of one network. Node indices stay valid when other nodes are removed.
#[derive(Debug, Clone)]
pub struct Graph {
    pub name: String,
    pub graph: StableDiGraph<Node, TensorType>,
    /// Names of the passes applied so far, in order.
    pub passes: Vec<String>,
}

/// An IR error: the graph (its source file), the node, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
pub struct IrError {
    pub file: String,
    pub node: String,
    pub message: String,
}

impl Graph {
    pub fn new(name: &str) -> Self {
        Graph {
            name: name.to_string(),
            graph: StableDiGraph::new(),
            passes: Vec::new(),
        }
    }

    /// The nodes from input to output. Graphs are chains (every node has at most one input
    /// and one consumer), which the verifier checks; the order follows the edges.
    pub fn chain(&self) -> Vec<NodeIndex> {
        let Some(mut node) = self.input_node() else {
            return Vec::new();
        };
        let mut order = vec![node];
        let mut seen = std::collections::HashSet::from([node]);
        while let Some(next) = self.successor(node) {
            if !seen.insert(next) {
                break;
            }
            order.push(next);
            node = next;
        }
        order
    }

    pub fn input_node(&self) -> Option<NodeIndex> {
        self.graph
            .node_indices()
            .find(|&i| self.graph[i].op == Op::Input)
    }

    pub fn successor(&self, node: NodeIndex) -> Option<NodeIndex> {
        self.graph
            .neighbors_directed(node, Direction::Outgoing)
            .next()
    }

    pub fn predecessor(&self, node: NodeIndex) -> Option<NodeIndex> {
        self.graph
            .neighbors_directed(node, Direction::Incoming)
            .next()
    }

    /// The type of the tensor a node reads (the input node reads nothing).
    pub fn input_type(&self, node: NodeIndex) -> Option<TensorType> {
        self.graph
            .edges_directed(node, Direction::Incoming)
            .next()
            .map(|e| *e.weight())
    }

    /// The type of the tensor a node produces (the output node produces the logits it reads).
    pub fn output_type(&self, node: NodeIndex) -> Option<TensorType> {
        self.graph
            .edges_directed(node, Direction::Outgoing)
            .next()
            .map(|e| *e.weight())
            .or_else(|| match self.graph[node].op {
                Op::Output => self.input_type(node),
                _ => None,
            })
    }

    /// Sets the type of the tensor a node produces.
    pub fn set_output_type(&mut self, node: NodeIndex, ty: TensorType) {
        let edge = self
            .graph
            .edges_directed(node, Direction::Outgoing)
            .next()
            .map(|e| e.id());
        if let Some(edge) = edge {
            self.graph[edge] = ty;
        }
    }

    /// Removes `node` from the chain, joining its predecessor to its successor with `ty`.
    pub fn bypass(&mut self, node: NodeIndex, ty: TensorType) {
        let (Some(pred), Some(succ)) = (self.predecessor(node), self.successor(node)) else {
            return;
        };
        self.graph.remove_node(node);
        self.graph.add_edge(pred, succ, ty);
    }

    /// The MAC nodes in chain order.
    pub fn macs(&self) -> Vec<NodeIndex> {
        self.chain()
            .into_iter()
            .filter(|&i| matches!(self.graph[i].op, Op::Mac { .. }))
            .collect()
    }

    pub fn error(&self, file: &str, node: NodeIndex, message: impl Into<String>) -> IrError {
        IrError {
            file: file.to_string(),
            node: self.graph[node].name.clone(),
            message: message.into(),
        }
    }
}

impl Graph {
    /// Whether the MACs carry trained weights (a graph from a spec alone has none).
    pub fn has_weights(&self) -> bool {
        self.graph
            .node_indices()
            .all(|i| !matches!(self.graph[i].op, Op::Mac { weights: None, .. }))
    }
}
