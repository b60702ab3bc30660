//! The verifier: every invariant of a graph, checked after building, after every pass, and on
//! every graph read from a file. A lowered graph that passes `verify_lowered` can be run by the
//! golden model; what the RTL assumes beyond that is checked when it is scheduled.

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;

use super::passes::infer_accumulators::{add_type, window_sum_type};
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
        let sizes = match g[node].op {
            Op::Mac {
                kernel,
                stride,
                padding,
                outputs,
                ..
            } => vec![
                ("kernel", kernel, limits::MAX_WINDOW),
                ("stride", stride, limits::MAX_WINDOW),
                ("padding", padding, limits::MAX_WINDOW),
                ("outputs", outputs, limits::MAX_WIDTH),
            ],
            Op::MaxPool { size, stride } | Op::AvgPool { size, stride } => vec![
                ("size", size, limits::MAX_WINDOW),
                ("stride", stride, limits::MAX_WINDOW),
            ],
            _ => Vec::new(),
        };
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
    let channels = out.shape.channels;
    match &graph.graph[node].op {
        Op::AvgPool { size, .. } => {
            let sums = window_sum_type(input, *size, out.shape)
                .map_err(|message| graph.error_of(IrKind::Type, file, node, message))?;
            check_sums(sums, out).or_else(fail)?;
        }
        Op::Add { shifts } => {
            let inputs = graph.input_types(node);
            let kind = if inputs[0].shape == inputs[1].shape {
                IrKind::Type
            } else {
                IrKind::Shape
            };
            let (sums, expected) = add_type(inputs[0], inputs[1])
                .map_err(|message| graph.error_of(kind, file, node, message))?;
            if *shifts != expected {
                return fail(format!(
                    "shifts {shifts:?} do not bring scales {:e} and {:e} to the smaller; they must be {expected:?}",
                    inputs[0].scale, inputs[1].scale
                ));
            }
            check_sums(sums, out).or_else(fail)?;
        }
        Op::Input => {}
        Op::Output => {
            if !out.shape.is_flat() {
                return fail(format!("logits must be flat (1x1xC), not {}", out.shape));
            }
        }
        Op::Flatten => same_codes(input, out).or_else(fail)?,
        Op::MaxPool { .. } => same_codes(input, out).or_else(fail)?,
        Op::Mac {
            kernel,
            weights,
            weight_precision,
            bias,
            ..
        } => {
            check_precision(*weight_precision).or_else(fail)?;
            if let Some(bias) = bias {
                if bias.len() != channels || bias.iter().any(|b| !b.is_finite()) {
                    return fail(format!("bias needs {channels} finite values"));
                }
            }
            if let Some(w) = weights {
                // Bounded: kernel by MAX_WINDOW, channels by MAX_TENSOR_LEN.
                let fan_in = kernel * kernel * input.shape.channels;
                let codes = fan_in.checked_mul(channels);
                if w.fan_in != fan_in || w.outputs != channels || Some(w.codes.len()) != codes {
                    return fail(format!(
                        "weights are {}x{} with {} codes but the layer needs {fan_in}x{channels}",
                        w.fan_in,
                        w.outputs,
                        w.codes.len()
                    ));
                }
                if !(w.step.is_finite() && w.step > 0.0) {
                    return fail(format!(
                        "weight step {} must be finite and positive",
                        w.step
                    ));
                }
                let (min, max) = weight_precision.code_range().ok_or_else(|| {
                    graph.error_of(
                        IrKind::Type,
                        file,
                        node,
                        "weights must be integer codes, not float",
                    )
                })?;
                if let Some((i, &code)) = w.codes.iter().enumerate().find(|(_, &c)| {
                    let c = c as i64;
                    c < min || c > max || (*weight_precision == Precision::Bipolar && c == 0)
                }) {
                    return fail(format!(
                        "weight code {code} at index {i} does not fit its declared precision {} ({min}..={max})",
                        weight_precision
                    ));
                }
            }
        }
        Op::BatchNorm(bn) => {
            let lengths = [bn.gamma.len(), bn.beta.len(), bn.mean.len(), bn.var.len()];
            if lengths.iter().any(|&l| l != channels) {
                return fail(format!("batch-norm parameters need {channels} values each"));
            }
            let all = bn
                .gamma
                .iter()
                .chain(&bn.beta)
                .chain(&bn.mean)
                .chain(&bn.var);
            if all.clone().any(|v| !v.is_finite()) || bn.var.iter().any(|&v| v < 0.0) {
                return fail("batch-norm parameters must be finite, variances not negative".into());
            }
            if !(bn.epsilon.is_finite() && bn.epsilon >= 0.0)
                || bn.var.iter().any(|&v| v + bn.epsilon <= 0.0)
            {
                return fail("batch-norm epsilon must be finite and not negative, and every variance plus epsilon positive".into());
            }
        }
        Op::Quantize {
            bits,
            truncation,
            narrow,
        } => {
            if *narrow && (*bits < 2 || truncation.is_some()) {
                return fail(format!(
                    "a narrow-range quantizer needs 2 bits or more and no truncation, not {bits} bits{}",
                    if truncation.is_some() { " with a truncation" } else { "" }
                ));
            }
            if !(1..=16).contains(bits) {
                return fail(format!(
                    "activation bit width {bits} is out of range 1..=16"
                ));
            }
            if !(out.scale.is_finite() && out.scale > 0.0) {
                return fail(format!("scale {} must be positive and finite", out.scale));
            }
            let expected = crate::ir::build::quantizer_type(out.shape, *bits, out.scale);
            if out.precision != expected.precision {
                return fail(format!(
                    "a {bits}-bit quantizer makes {} codes, not {}",
                    expected.precision, out.precision
                ));
            }
            if let Some(t) = truncation {
                if *bits < 2
                    || !(2..=16).contains(&t.input_bits)
                    || t.shift >= t.input_bits
                    || !(t.input_scale.is_finite() && t.input_scale > 0.0)
                {
                    return fail(format!(
                        "truncation of u{} by {} bits to u{bits} with input scale {} is not valid",
                        t.input_bits, t.shift, t.input_scale
                    ));
                }
            }
        }
        Op::MultiThreshold(table) => {
            let levels = match out.precision {
                Precision::Bipolar => 1,
                Precision::Int {
                    bits,
                    signed: false,
                } if bits <= 16 => (1usize << bits) - 1,
                other => {
                    return fail(format!(
                        "thresholds must produce unsigned or bipolar codes, not {other}"
                    ))
                }
            };
            if table.thresholds.len() != channels || table.descending.len() != channels {
                return fail(format!("threshold table needs {channels} channels"));
            }
            for (c, (row, &descending)) in
                table.thresholds.iter().zip(&table.descending).enumerate()
            {
                if row.len() != levels {
                    return fail(format!(
                        "threshold table channel {c} has {} thresholds, expected {levels}",
                        row.len()
                    ));
                }
                let sorted = row.windows(2).all(|p| {
                    if descending {
                        p[0] >= p[1]
                    } else {
                        p[0] <= p[1]
                    }
                });
                if !sorted {
                    return fail(format!(
                        "threshold table channel {c} is not sorted {}",
                        if descending {
                            "descending"
                        } else {
                            "ascending"
                        }
                    ));
                }
            }
        }
        Op::Requantize(r) => {
            if r.multiplier.len() != channels || r.offset.len() != channels {
                return fail(format!(
                    "requantization needs {channels} multipliers and offsets"
                ));
            }
            if r.shift > 62 {
                return fail(format!("shift {} is larger than 62", r.shift));
            }
            if let Some((lo, hi)) = r.clamp {
                if lo > hi {
                    return fail(format!("clamp range {lo}..={hi} is empty"));
                }
            }
            let (min, max) = input.precision.code_range().ok_or_else(|| {
                graph.error_of(
                    IrKind::Type,
                    file,
                    node,
                    "requantization needs integer input",
                )
            })?;
            for (&m, &b) in r.multiplier.iter().zip(&r.offset) {
                let fits = [min, max]
                    .iter()
                    .all(|&acc| acc.checked_mul(m).and_then(|p| p.checked_add(b)).is_some());
                if !fits {
                    return fail(format!(
                        "multiplier {m} and offset {b} overflow 64 bits on accumulators {min}..={max}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A sum's output edge has the scale of its sums and a precision that holds them all.
fn check_sums(sums: TensorType, out: TensorType) -> Result<(), String> {
    if out.scale != sums.scale {
        return Err(format!(
            "sums are worth {:e} a unit, not the {:e} on its output",
            sums.scale, out.scale
        ));
    }
    let range = sums.precision.code_range().expect("integer sums");
    let holds = match (out.precision, out.precision.code_range()) {
        (Precision::Int { .. }, Some((min, max))) => min <= range.0 && range.1 <= max,
        _ => false,
    };
    if !holds {
        return Err(format!(
            "sums {}..={} do not fit {}; they need {}",
            range.0, range.1, out.precision, sums.precision
        ));
    }
    Ok(())
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

fn check_precision(precision: Precision) -> Result<(), String> {
    match precision {
        Precision::Int { bits, .. } if !(1..=63).contains(&bits) => {
            Err(format!("integer width {bits} is out of range 1..=63"))
        }
        _ => Ok(()),
    }
}

fn same_codes(input: TensorType, output: TensorType) -> Result<(), String> {
    if input.precision != output.precision {
        return Err(format!(
            "must keep the precision of its input ({}), not {}",
            input.precision, output.precision
        ));
    }
    Ok(())
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
