//! Views of a graph for people and tools: an aligned text listing, Graphviz DOT, and a JSON file
//! that reads back into the same graph (`qnnc-ir`, versioned, verified on load).
//!
//! All three are deterministic: text and JSON list nodes in topological order, DOT in
//! node-index order (the order they were added); floats have fixed formats.

use std::collections::HashMap;
use std::fmt;

use petgraph::dot::{Config, Dot};
use petgraph::stable_graph::{EdgeReference, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};

use super::verify::verify;
use super::{Edge, Graph, IrError, IrKind, Node, Op, Precision, TensorType};

/// Names the JSON format in its first field.
pub const FORMAT: &str = "qnnc-ir";
/// Version 2 lists each node's inputs; version 1, a chain, is still read.
pub const VERSION: u32 = 2;
const CHAIN_VERSION: u32 = 1;

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} scale={:.6e}",
            self.shape, self.precision, self.scale
        )
    }
}

/// A tensor as DOT shows it; the input it feeds is named only when it is not the first.
impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.slot > 0 {
            write!(f, "input {}: ", self.slot)?;
        }
        self.ty.fmt(f)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, describe(&self.op))
    }
}

/// One line about an operation and its attributes.
pub fn describe(op: &Op) -> String {
    op.rules().describe()
}

/// The text listing: one node a line, input to output, with the type it produces.
pub fn to_text(graph: &Graph) -> String {
    let mut rows = Vec::new();
    for node in graph.topological_order() {
        let n = &graph.graph[node];
        let ty = graph
            .output_type(node)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut op = describe(&n.op);
        // A chain reads the line above; a node of several inputs names them.
        let inputs = graph.inputs(node);
        if inputs.len() > 1 {
            let names: Vec<&str> = inputs
                .iter()
                .map(|&i| graph.graph[i].name.as_str())
                .collect();
            op += &format!(" of {}", names.join(" + "));
        }
        rows.push((n.name.clone(), op, ty));
    }
    let name_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let op_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut text = format!("graph {}\n", graph.name);
    let passes = if graph.passes.is_empty() {
        "(none)".to_string()
    } else {
        graph.passes.join(", ")
    };
    text += &format!("passes: {passes}\n");
    for (name, op, ty) in rows {
        text += &format!("  {name:<name_width$}  {op:<op_width$}  -> {ty}\n");
    }
    text
}

/// Graphviz DOT: nodes labelled with their operation and filled by its kind; edges labelled
/// with their tensor's shape and precision, coloured by the precision (the colours of the
/// explore plots), and with its scale only where a node sets a new one (a max-pool or a
/// flatten passes its input's scale on, which is not repeated).
pub fn to_dot(graph: &Graph) -> String {
    type Stable = petgraph::stable_graph::StableDiGraph<Node, Edge>;
    let edge_attributes = |_: &Stable, edge: EdgeReference<'_, Edge>| {
        let tensor = edge.weight().ty;
        // The scale is shown where it changes: not after a max-pool or a flatten.
        let scale = match graph.input_type(edge.source()) {
            Some(input) if input.scale == tensor.scale => String::new(),
            _ => format!(" scale={:.6e}", tensor.scale),
        };
        let slot = match edge.weight().slot {
            0 => String::new(),
            slot => format!("input {slot}: "),
        };
        let colour = precision_colour(tensor.precision);
        format!(
            "label = \"{slot}{} {}{scale}\" color = \"{colour}\" fontcolor = \"{colour}\" ",
            tensor.shape, tensor.precision
        )
    };
    let node_attributes = |_: &Stable, (_, node): (NodeIndex, &Node)| {
        format!("style = filled fillcolor = \"{}\" ", op_colour(&node.op))
    };
    format!(
        "{}",
        Dot::with_attr_getters(
            &graph.graph,
            &[Config::GraphContentOnly, Config::EdgeNoLabel],
            &edge_attributes,
            &node_attributes,
        )
    )
    .lines()
    .map(|line| format!("    {}\n", line.trim()))
    .fold(
        format!("digraph \"{}\" {{\n    node [shape=box];\n", graph.name),
        |text, line| text + &line,
    ) + "}\n"
}

/// The fill of a node in DOT, by the kind of its operation (light, so that labels stay legible).
fn op_colour(op: &Op) -> &'static str {
    op.rules().colour()
}

/// The colour of a precision in DOT: that of the explore plots for 1 to 16 bits (bipolar as 1),
/// grey for wider sums and floats.
fn precision_colour(precision: Precision) -> String {
    let bits = match precision {
        Precision::Bipolar => 1,
        Precision::Int { bits, .. } if bits <= 16 => bits,
        _ => 0,
    };
    let (r, g, b) = crate::palette::precision_rgb(bits);
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphFile {
    format: String,
    version: u32,
    name: String,
    passes: Vec<String>,
    /// In topological order: a node comes after the nodes it reads.
    nodes: Vec<NodeEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    name: String,
    op: Op,
    /// The names of the nodes it reads, in the order of its inputs (version 2; in version 1
    /// each node reads the one before it).
    #[serde(default)]
    inputs: Vec<String>,
    /// The type of the tensor the node produces.
    output: TensorType,
}

/// The graph as JSON.
pub fn to_json(graph: &Graph) -> String {
    serde_json::to_string_pretty(&to_serializable(graph)).expect("graph serialises") + "\n"
}

/// The graph as the value [`to_json`] writes, to embed in a larger JSON document.
pub fn to_serializable(graph: &Graph) -> impl Serialize {
    let nodes = graph
        .topological_order()
        .into_iter()
        .map(|i| NodeEntry {
            name: graph.graph[i].name.clone(),
            op: graph.graph[i].op.clone(),
            inputs: graph
                .inputs(i)
                .into_iter()
                .map(|input| graph.graph[input].name.clone())
                .collect(),
            output: graph.output_type(i).expect("verified nodes are typed"),
        })
        .collect();
    GraphFile {
        format: FORMAT.into(),
        version: VERSION,
        name: graph.name.clone(),
        passes: graph.passes.clone(),
        nodes,
    }
}

/// Reads a graph written by [`to_json`], and verifies it.
pub fn from_json(text: &str, file: &str) -> Result<Graph, IrError> {
    let format_error = |field: &str, message: String| IrError::Format {
        file: file.to_string(),
        field: field.to_string(),
        message,
    };
    #[derive(Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<u32>,
    }
    let header: Header = serde_json::from_str(text)
        .map_err(|e| format_error("(file)", format!("not a {FORMAT} file: {e}")))?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(format_error("format", format!("expected \"{FORMAT}\"")));
    }
    let version = match header.version {
        Some(v @ (CHAIN_VERSION | VERSION)) => v,
        other => {
            return Err(format_error(
                "version",
                format!(
                    "file has version {other:?} but this qnnc reads versions {CHAIN_VERSION} and {VERSION}"
                ),
            ))
        }
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: GraphFile =
        serde_path_to_error::deserialize(&mut de).map_err(|e| IrError::Field {
            file: file.to_string(),
            field: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
    // The verifier refuses more nodes too, but only after they are built.
    if parsed.nodes.len() > crate::limits::MAX_LAYERS + 2 {
        return Err(IrError::new(
            IrKind::Limit,
            file,
            "nodes",
            format!(
                "{} nodes are more than the limit of {} layers (see docs/limits.md)",
                parsed.nodes.len(),
                crate::limits::MAX_LAYERS
            ),
        ));
    }
    let mut graph = Graph::new(&parsed.name);
    graph.passes = parsed.passes;
    // Each node's index and the type it produces, by name: inputs name earlier nodes.
    let mut earlier: HashMap<String, (NodeIndex, TensorType)> = HashMap::new();
    let mut previous: Option<String> = None;
    for entry in parsed.nodes {
        let inputs = if version == CHAIN_VERSION {
            previous.iter().cloned().collect()
        } else {
            entry.inputs
        };
        let node = graph.graph.add_node(Node {
            name: entry.name.clone(),
            op: entry.op,
        });
        for (slot, input) in inputs.iter().enumerate() {
            let Some(&(source, ty)) = earlier.get(input) else {
                return Err(IrError::UnknownInput {
                    file: file.to_string(),
                    node: entry.name,
                    slot,
                    input: input.clone(),
                });
            };
            graph.connect(source, node, slot, ty);
        }
        if earlier
            .insert(entry.name.clone(), (node, entry.output))
            .is_some()
        {
            return Err(IrError::new(
                IrKind::Name,
                file,
                &entry.name,
                "is the name of two nodes".into(),
            ));
        }
        previous = Some(entry.name);
    }
    verify(&graph, file)?;
    // The output node records the logits it reads; a different type is a tampered file.
    for (node, ty) in earlier.into_values() {
        if graph.graph[node].op == Op::Output && graph.input_type(node) != Some(ty) {
            return Err(graph.error_of(
                IrKind::Structure,
                file,
                node,
                "output type differs from the logits it reads",
            ));
        }
    }
    Ok(graph)
}
