//! The verifier: every invariant of a graph, checked after building, after every pass, and on
//! every graph read from a file. A lowered graph that passes `verify_lowered` can be run by the
//! golden model; what the RTL assumes beyond that is checked when it is scheduled.

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;

use super::ops::check_precision;
use super::passes::shape_inference::output_shape;
use super::{Graph, IrError, IrKind, Op, Precision, TensorType};
use crate::limits;
use crate::spec::is_identifier;

/// Nodes of a graph beyond its layers: the input and the output.
const FIXED_NODES: usize = 2;

/// Checks structure, shapes, precisions and parameter tables.
pub fn verify(graph: &Graph, file: &str) -> Result<(), IrError> {
    let whole = |kind: IrKind, message: String| IrError::new(kind, file, "(graph)", message);
    let g = &graph.graph;
    if g.node_count() > limits::MAX_LAYERS + FIXED_NODES {
        return Err(whole(
            IrKind::Limit,
            format!(
                "has {} nodes, more than the limit of {} layers (see docs/limits.md)",
                g.node_count(),
                limits::MAX_LAYERS
            ),
        ));
    }
    if !is_identifier(&graph.name) {
        return Err(whole(IrKind::Name, format!(
            "graph name '{}' is not a valid name (letters, digits and '_', not starting with a digit, at most 64)",
            graph.name
        )));
    }
    if let Some(node) = g.node_indices().find(|&i| !is_identifier(&g[i].name)) {
        return Err(graph.error_of(
            IrKind::Name,
            file,
            node,
            "is not a valid node name (letters, digits and '_', not starting with a digit, at most 64)",
        ));
    }
    // Every size is bounded before any is multiplied or used to allocate.
    for edge in g.edge_references() {
        let shape = edge.weight().ty.shape;
        if shape
            .checked_len()
            .is_none_or(|len| len > limits::MAX_TENSOR_LEN)
        {
            return Err(graph.error_of(
                IrKind::Limit,
                file,
                edge.target(),
                format!(
                    "reads a tensor {shape} of more than {} values, the limit (see docs/limits.md)",
                    limits::MAX_TENSOR_LEN
                ),
            ));
        }
    }
    for node in g.node_indices() {
        let sizes = g[node].op.rules().sizes();
        for (what, value, max) in sizes {
            limits::at_most(value, max).map_err(|message| {
                graph.error_of(IrKind::Limit, file, node, format!("{what} {message}"))
            })?;
        }
    }
    let count = |op: fn(&Op) -> bool| g.node_indices().filter(|&i| op(&g[i].op)).count();
    let inputs = count(|op| *op == Op::Input);
    let outputs = count(|op| *op == Op::Output);
    if inputs != 1 || outputs != 1 {
        return Err(whole(
            IrKind::Structure,
            format!(
                "needs one input and one output node, has {inputs} inputs and {outputs} outputs"
            ),
        ));
    }
    // The order is found with a work list, not recursion: a long chain cannot overflow the
    // call stack (petgraph's is_cyclic_directed recurses once a node).
    let order = graph.topological_order();
    if order.len() != g.node_count() {
        let node = on_a_cycle(graph, &order);
        return Err(IrError::Cycle {
            file: file.to_string(),
            node: g[node].name.clone(),
        });
    }
    for node in g.node_indices() {
        let mut slots: Vec<usize> = g
            .edges_directed(node, Direction::Incoming)
            .map(|e| e.weight().slot)
            .collect();
        slots.sort_unstable();
        let arity = g[node].op.arity();
        if !slots.iter().copied().eq(0..arity) {
            return Err(IrError::Arity {
                file: file.to_string(),
                node: g[node].name.clone(),
                op: g[node].op.name(),
                expected: arity,
                slots,
            });
        }
        let readers: Vec<TensorType> = g
            .edges_directed(node, Direction::Outgoing)
            .map(|e| e.weight().ty)
            .collect();
        // Every node but the output feeds another: a node nobody reads is dead code, and a
        // path that does not reach the output would be computed for nothing.
        let is_output = g[node].op == Op::Output;
        if readers.is_empty() != is_output {
            return Err(graph.error_of(
                IrKind::Structure,
                file,
                node,
                if is_output {
                    "the output feeds no other node".to_string()
                } else {
                    "feeds no other node: every node must lead to the output".to_string()
                },
            ));
        }
        if readers.windows(2).any(|pair| pair[0] != pair[1]) {
            return Err(graph.error_of(
                IrKind::Structure,
                file,
                node,
                "its readers disagree on the type of what it produces",
            ));
        }
    }
    let (mut total_weights, mut total_macs) = (0u64, 0u64);
    for &node in &order {
        verify_node(graph, node, file)?;
        if let (Op::Mac { kernel, .. }, Some(input), Some(output)) =
            (&g[node].op, graph.input_type(node), graph.output_type(node))
        {
            // The kernel and the shapes are bounded above, so fan_in fits in 64 bits.
            let fan_in = (kernel * kernel * input.shape.channels) as u64;
            let add = |total: u64, factor: usize| {
                fan_in
                    .checked_mul(factor as u64)
                    .and_then(|n| n.checked_add(total))
            };
            let totals = add(total_weights, output.shape.channels)
                .zip(add(total_macs, output.shape.len()))
                .filter(|&(weights, macs)| {
                    weights <= limits::MAX_NETWORK_WEIGHTS && macs <= limits::MAX_NETWORK_MACS
                });
            if let Some((weights, macs)) = totals {
                total_weights = weights;
                total_macs = macs;
            } else {
                return Err(graph.error_of(
                    IrKind::Limit,
                    file,
                    node,
                    format!(
                        "brings the network over the limit of {} weights or {} MACs an image (see docs/limits.md)",
                        limits::MAX_NETWORK_WEIGHTS,
                        limits::MAX_NETWORK_MACS
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks, beyond [`verify`], that every tensor is integer: the golden model and the RTL can run it.
pub fn verify_lowered(graph: &Graph, file: &str) -> Result<(), IrError> {
    verify(graph, file)?;
    for node in graph.topological_order() {
        let name = graph.graph[node].op.name();
        if matches!(graph.graph[node].op, Op::BatchNorm(_) | Op::Quantize { .. }) {
            return Err(graph.error_of(
                IrKind::NotLowered,
                file,
                node,
                format!("{name} is not lowered to integers (run fold-batch-norm)"),
            ));
        }
        if let Some(ty) = graph.output_type(node) {
            if ty.precision == Precision::Float {
                return Err(graph.error_of(
                    IrKind::NotLowered,
                    file,
                    node,
                    format!("produces float values; the integer model needs integer codes (after {name})"),
                ));
            }
        }
    }
    Ok(())
}

fn verify_node(graph: &Graph, node: NodeIndex, file: &str) -> Result<(), IrError> {
    let fail = |message: String| Err(graph.error_of(IrKind::Type, file, node, message));
    let out = graph
        .output_type(node)
        .expect("every node but the output has a reader, and the output reads one");
    check_precision(out.precision).or_else(fail)?;
    if !(out.scale.is_finite() && out.scale > 0.0) {
        return fail(format!("scale {} must be finite and positive", out.scale));
    }
    let Some(input) = graph.input_type(node) else {
        return match out.precision {
            Precision::Int {
                bits: 8,
                signed: false,
            } => Ok(()),
            other => fail(format!("input must be 8-bit unsigned pixels, not {other}")),
        };
    };
    let expected = output_shape(&graph.graph[node].op, input.shape)
        .map_err(|message| graph.error_of(IrKind::Shape, file, node, message))?;
    if expected != out.shape {
        return Err(graph.error_of(
            IrKind::Shape,
            file,
            node,
            format!(
                "produces {} but its operation on {} gives {expected}",
                out.shape, input.shape
            ),
        ));
    }
    graph.graph[node]
        .op
        .rules()
        .check(&graph.input_types(node), out)
        .map_err(|(kind, message)| graph.error_of(kind, file, node, message))
}

/// A node on a cycle of a graph whose topological `order` (which leaves out the nodes on
/// cycles and those after them) is incomplete: every node left out reads one left out, so
/// walking back through those must come round to a node seen before, which is on a cycle.
fn on_a_cycle(graph: &Graph, order: &[NodeIndex]) -> NodeIndex {
    let g = &graph.graph;
    let mut left: std::collections::BTreeSet<NodeIndex> = g.node_indices().collect();
    for node in order {
        left.remove(node);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut node = *left.first().expect("a node is left out");
    while seen.insert(node) {
        node = g
            .neighbors_directed(node, Direction::Incoming)
            .filter(|n| left.contains(n))
            .min()
            .expect("a node left out reads one left out");
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{build, Node};
    use crate::spec::Shape;
    use petgraph::algo::toposort;

    /// A chain input -> `layers` flattens -> output, the flattens' names unique.
    fn long_chain(layers: usize) -> Graph {
        let mut graph = Graph::new("long");
        let ty = build::input_type(Shape::flat(4));
        let mut previous = graph.graph.add_node(Node {
            name: "input".into(),
            op: Op::Input,
        });
        for i in 0..layers {
            let node = graph.graph.add_node(Node {
                name: format!("flatten{i}"),
                op: Op::Flatten,
            });
            graph.connect(previous, node, 0, ty);
            previous = node;
        }
        let output = graph.graph.add_node(Node {
            name: "logits".into(),
            op: Op::Output,
        });
        graph.connect(previous, output, 0, ty);
        graph
    }

    #[test]
    fn a_graph_of_100000_nodes_is_refused_without_overflowing_the_stack() {
        let graph = long_chain(100_000);
        let error = verify(&graph, "long.json").unwrap_err();
        assert!(matches!(error, IrError::Limit { .. }), "{error:?}");
        assert!(error.to_string().contains("limit"), "{error}");
        // The cycle check itself, which used to recurse once a node, on the whole chain.
        assert!(toposort(&graph.graph, None).is_ok());
        assert_eq!(graph.topological_order().len(), 100_002);
    }

    #[test]
    fn a_chain_at_the_limit_verifies_and_a_cycle_is_found() {
        let mut graph = long_chain(limits::MAX_LAYERS);
        verify(&graph, "long.json").unwrap();
        let nodes: Vec<_> = graph.topological_order();
        let ty = graph.output_type(nodes[1]).unwrap();
        graph.connect(nodes[10], nodes[5], 1, ty);
        let error = verify(&graph, "long.json").unwrap_err();
        assert!(matches!(error, IrError::Cycle { .. }), "{error:?}");
        assert!(toposort(&graph.graph, None).is_err());
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        let mut graph = long_chain(1);
        let first = graph.topological_order()[1];
        graph.graph[first].name = "a\nb".into();
        let error = verify(&graph, "g.json").unwrap_err();
        assert!(!error.to_string().contains('\n'), "{error}");
        assert!(error.to_string().contains("a\\nb"), "{error}");
        let mut graph = long_chain(1);
        graph.name = "evil\r\u{1b}[2J".into();
        let error = verify(&graph, "g.json").unwrap_err();
        assert!(!error.to_string().chars().any(char::is_control), "{error}");
    }
}
