//! The integer IR: a petgraph graph whose nodes are operations and whose edges carry the tensor
//! type (shape, precision, scale) flowing between them.
//!
//! A graph is built from trained parameters ([`build::from_trained`], as `Net::to_graph` does)
//! or from a spec alone ([`build::from_network`], no weights), checked by [`verify::verify`],
//! and lowered by the passes in [`passes`] until every operation is integer-only: MACs on
//! integer codes, per-channel multi-thresholds or multiply-shift requantization, max-pool on
//! codes, and integer logits.

pub mod build;
pub mod dump;
pub mod float_model;
pub mod ops;
pub mod passes;
pub mod verify;

pub use ops::Op;

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
pub struct Node {
    pub name: String,
    pub op: Op,
}

/// A tensor flowing from its producer into input `slot` of its consumer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub slot: usize,
    pub ty: TensorType,
}

/// The graph of one network: a DAG whose nodes have ordered inputs. Node indices stay valid
/// when other nodes are removed.
#[derive(Debug, Clone)]
pub struct Graph {
    pub name: String,
    pub graph: StableDiGraph<Node, Edge>,
    /// Names of the passes applied so far, in order.
    pub passes: Vec<String>,
}

/// An IR error: the graph (its source file), the node (or field), and what is wrong, printed on
/// one line. The variant says what kind of failure it is, for callers that branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IrError {
    /// Not an IR file: not JSON, another format or another version.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Format {
        file: String,
        field: String,
        message: String,
    },
    /// An IR file field that is missing, unknown or of the wrong type.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Field {
        file: String,
        field: String,
        message: String,
    },
    /// An input of a node in an IR file that names no node listed before it.
    #[error("{}: {}: input {slot} '{}' is not a node listed before it", escape_controls(.file), escape_controls(.node), escape_controls(.input))]
    UnknownInput {
        file: String,
        node: String,
        slot: usize,
        input: String,
    },
    /// A graph or node name that is not an identifier, or a node name used twice.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Name {
        file: String,
        node: String,
        message: String,
    },
    /// A size beyond the limits of docs/limits.md.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Limit {
        file: String,
        node: String,
        message: String,
    },
    /// A graph that is not one input leading through every node to one output.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Structure {
        file: String,
        node: String,
        message: String,
    },
    /// A node on a cycle.
    #[error("{}: {}: is on a cycle: a node must not read, even through others, what it produces", escape_controls(.file), escape_controls(.node))]
    Cycle { file: String, node: String },
    /// A node that reads another number of inputs than its op takes.
    #[error("{}: {}: {op} takes {expected} input(s), one at each of slots 0..{expected}, but reads {} at slots {slots:?}", escape_controls(.file), escape_controls(.node), .slots.len())]
    Arity {
        file: String,
        node: String,
        op: &'static str,
        expected: usize,
        slots: Vec<usize>,
    },
    /// A shape that does not fit: a window larger than its input, an add of two shapes, an
    /// output shape other than the op gives.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Shape {
        file: String,
        node: String,
        message: String,
    },
    /// A precision, scale or parameter table that does not fit the node's input or output.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Type {
        file: String,
        node: String,
        message: String,
    },
    /// A float node or tensor where the integer model needs integer codes.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    NotLowered {
        file: String,
        node: String,
        message: String,
    },
    /// A graph the stage cannot take as it is: a batch norm that cannot be folded, a
    /// truncation that cannot be rounded exactly, a lowered graph where one before lowering is
    /// needed, a graph a spec cannot describe.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Unsupported {
        file: String,
        node: String,
        message: String,
    },
    /// A MAC without trained weights where they are needed.
    #[error("{}: {}: has no trained weights", escape_controls(.file), escape_controls(.node))]
    NoWeights { file: String, node: String },
    /// A pass name that is not one of the pipeline's.
    #[error("{}: {}: unknown pass; the passes are {}", escape_controls(.flag), escape_controls(.name), .passes.join(", "))]
    UnknownPass {
        flag: String,
        name: String,
        passes: Vec<&'static str>,
    },
    /// Anything else a pass or a builder refuses.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Invalid {
        file: String,
        node: String,
        message: String,
    },
}

/// The kinds of [`IrError`] that carry a node and a message.
#[derive(Debug, Clone, Copy)]
pub enum IrKind {
    Name,
    Limit,
    Structure,
    Shape,
    Type,
    NotLowered,
    Unsupported,
    Invalid,
}

impl IrError {
    pub(crate) fn new(kind: IrKind, file: &str, node: &str, message: String) -> IrError {
        let (file, node) = (file.to_string(), node.to_string());
        match kind {
            IrKind::Name => IrError::Name {
                file,
                node,
                message,
            },
            IrKind::Limit => IrError::Limit {
                file,
                node,
                message,
            },
            IrKind::Structure => IrError::Structure {
                file,
                node,
                message,
            },
            IrKind::Shape => IrError::Shape {
                file,
                node,
                message,
            },
            IrKind::Type => IrError::Type {
                file,
                node,
                message,
            },
            IrKind::NotLowered => IrError::NotLowered {
                file,
                node,
                message,
            },
            IrKind::Unsupported => IrError::Unsupported {
                file,
                node,
                message,
            },
            IrKind::Invalid => IrError::Invalid {
                file,
                node,
                message,
            },
        }
    }

    /// The node (or the field of an IR file, or the pass) the error is about, as printed.
    pub fn node(&self) -> &str {
        match self {
            IrError::Format { field, .. } | IrError::Field { field, .. } => field,
            IrError::UnknownPass { name, .. } => name,
            IrError::UnknownInput { node, .. }
            | IrError::Name { node, .. }
            | IrError::Limit { node, .. }
            | IrError::Structure { node, .. }
            | IrError::Cycle { node, .. }
            | IrError::Arity { node, .. }
            | IrError::Shape { node, .. }
            | IrError::Type { node, .. }
            | IrError::NotLowered { node, .. }
            | IrError::Unsupported { node, .. }
            | IrError::NoWeights { node, .. }
            | IrError::Invalid { node, .. } => node,
        }
    }

    /// The file (or the flag) the error is about, as printed.
    pub fn file(&self) -> &str {
        match self {
            IrError::UnknownPass { flag, .. } => flag,
            IrError::Format { file, .. }
            | IrError::Field { file, .. }
            | IrError::UnknownInput { file, .. }
            | IrError::Name { file, .. }
            | IrError::Limit { file, .. }
            | IrError::Structure { file, .. }
            | IrError::Cycle { file, .. }
            | IrError::Arity { file, .. }
            | IrError::Shape { file, .. }
            | IrError::Type { file, .. }
            | IrError::NotLowered { file, .. }
            | IrError::Unsupported { file, .. }
            | IrError::NoWeights { file, .. }
            | IrError::Invalid { file, .. } => file,
        }
    }
}

impl Graph {
    pub fn new(name: &str) -> Self {
        Graph {
            name: name.to_string(),
            graph: StableDiGraph::new(),
            passes: Vec::new(),
        }
    }

    /// Feeds the tensor `from` produces, of type `ty`, into input `slot` of `to`.
    pub fn connect(&mut self, from: NodeIndex, to: NodeIndex, slot: usize, ty: TensorType) {
        self.graph.add_edge(from, to, Edge { slot, ty });
    }

    /// The nodes in a topological order, every node after the nodes it reads; among the nodes
    /// ready at one time, the one added first comes first, so the order is deterministic (a
    /// chain's order is its own). Nodes on a cycle, which the verifier refuses, are left out.
    pub fn topological_order(&self) -> Vec<NodeIndex> {
        let g = &self.graph;
        let mut waiting: std::collections::HashMap<NodeIndex, usize> = g
            .node_indices()
            .map(|i| (i, g.edges_directed(i, Direction::Incoming).count()))
            .collect();
        let mut ready: std::collections::BTreeSet<NodeIndex> = waiting
            .iter()
            .filter(|&(_, &n)| n == 0)
            .map(|(&i, _)| i)
            .collect();
        let mut order = Vec::with_capacity(g.node_count());
        while let Some(node) = ready.pop_first() {
            order.push(node);
            for edge in g.edges_directed(node, Direction::Outgoing) {
                let count = waiting.get_mut(&edge.target()).expect("every node counted");
                *count -= 1;
                if *count == 0 {
                    ready.insert(edge.target());
                }
            }
        }
        order
    }

    pub fn input_node(&self) -> Option<NodeIndex> {
        self.graph
            .node_indices()
            .find(|&i| self.graph[i].op == Op::Input)
    }

    /// The nodes a node reads, in the order of its inputs.
    pub fn inputs(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut edges: Vec<_> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| (e.weight().slot, e.source()))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, source)| source).collect()
    }

    /// The types of the tensors a node reads, in the order of its inputs.
    pub fn input_types(&self, node: NodeIndex) -> Vec<TensorType> {
        let mut edges: Vec<_> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| (e.weight().slot, e.weight().ty))
            .collect();
        edges.sort_by_key(|&(slot, _)| slot);
        edges.into_iter().map(|(_, ty)| ty).collect()
    }

    /// The nodes that read what a node produces, in the order they were added.
    pub fn consumers(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut consumers: Vec<_> = self
            .graph
            .neighbors_directed(node, Direction::Outgoing)
            .collect();
        consumers.sort();
        consumers.dedup();
        consumers
    }

    /// The only node that reads what `node` produces, if exactly one does: a node whose output
    /// has several readers cannot be fused into its reader.
    pub fn successor(&self, node: NodeIndex) -> Option<NodeIndex> {
        match self.consumers(node)[..] {
            [only] => Some(only),
            _ => None,
        }
    }

    /// The node a node reads at its first input.
    pub fn predecessor(&self, node: NodeIndex) -> Option<NodeIndex> {
        self.inputs(node).first().copied()
    }

    /// The type of the tensor a node reads at its first input (the input node reads nothing).
    pub fn input_type(&self, node: NodeIndex) -> Option<TensorType> {
        self.input_types(node).first().copied()
    }

    /// The type of the tensor a node produces (the output node produces the logits it reads).
    /// Every reader of a node reads the same type, which the verifier checks.
    pub fn output_type(&self, node: NodeIndex) -> Option<TensorType> {
        self.graph
            .edges_directed(node, Direction::Outgoing)
            .next()
            .map(|e| e.weight().ty)
            .or_else(|| match self.graph[node].op {
                Op::Output => self.input_type(node),
                _ => None,
            })
    }

    /// Sets the type of the tensor a node produces, on the edge to every reader.
    pub fn set_output_type(&mut self, node: NodeIndex, ty: TensorType) {
        let edges: Vec<_> = self
            .graph
            .edges_directed(node, Direction::Outgoing)
            .map(|e| e.id())
            .collect();
        for edge in edges {
            self.graph[edge].ty = ty;
        }
    }

    /// Removes `node`, which has one input, and feeds what it read to each of its readers, at
    /// the input it took `node`'s output, with type `ty`.
    pub fn bypass(&mut self, node: NodeIndex, ty: TensorType) {
        let Some(source) = self.predecessor(node) else {
            return;
        };
        let readers: Vec<_> = self
            .graph
            .edges_directed(node, Direction::Outgoing)
            .map(|e| (e.target(), e.weight().slot))
            .collect();
        self.graph.remove_node(node);
        for (reader, slot) in readers {
            self.connect(source, reader, slot, ty);
        }
    }

    /// The MAC nodes in topological order.
    pub fn macs(&self) -> Vec<NodeIndex> {
        self.topological_order()
            .into_iter()
            .filter(|&i| matches!(self.graph[i].op, Op::Mac { .. }))
            .collect()
    }

    /// An [`IrError::Invalid`] about `node`.
    pub fn error(&self, file: &str, node: NodeIndex, message: impl Into<String>) -> IrError {
        self.error_of(IrKind::Invalid, file, node, message)
    }

    /// An error of the given kind about `node`.
    pub(crate) fn error_of(
        &self,
        kind: IrKind,
        file: &str,
        node: NodeIndex,
        message: impl Into<String>,
    ) -> IrError {
        IrError::new(kind, file, &self.graph[node].name, message.into())
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
