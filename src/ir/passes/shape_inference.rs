//! `shape-inference`: sets the shape of every edge from the operations, input to output.
//!
//! Needs: a DAG from one input. Changes: edge shapes; max-pool and flatten outputs take the
//! precision and scale of their inputs; average pools and adds get the scale of their sums
//! (precisions are `infer-accumulators`'). Invalidates nothing.

use super::Pass;
use crate::ir::{Graph, IrError, IrKind, Op};
use crate::spec::Shape;

pub struct ShapeInference;

/// The shape an operation produces from `input`, or why it cannot.
pub fn output_shape(op: &Op, input: Shape) -> Result<Shape, String> {
    if input.is_empty() {
        return Err(format!("reads an empty tensor {input}"));
    }
    op.rules().output_shape(input)
}

impl Pass for ShapeInference {
    fn name(&self) -> &'static str {
        "shape-inference"
    }

    fn description(&self) -> &'static str {
        "sets the shape of every edge from the operations, input to output"
    }

    fn run(&self, graph: &mut Graph, file: &str) -> Result<bool, IrError> {
        let mut changed = false;
        for node in graph.topological_order() {
            let Some(input) = graph.input_type(node) else {
                continue;
            };
            let Some(mut out) = graph.output_type(node) else {
                continue;
            };
            let shape = output_shape(&graph.graph[node].op, input.shape)
                .map_err(|message| graph.error_of(IrKind::Shape, file, node, message))?;
            let before = out;
            out.shape = shape;
            graph.graph[node]
                .op
                .rules()
                .infer_output(&graph.input_types(node), &mut out)
                .map_err(|message| graph.error(file, node, message))?;
            if out != before {
                graph.set_output_type(node, out);
                changed = true;
            }
        }
        Ok(changed)
    }
}
