//! `shape-inference`: sets the shape of every edge from the operations, input to output.
//!
//! Needs: a DAG from one input. Changes: edge shapes; max-pool and flatten outputs take the
//! precision and scale of their inputs; average pools and adds get the scale of their sums
//! (precisions are `infer-accumulators`'). Invalidates nothing.

use super::infer_accumulators::{add_type, window_sum_type};
use super::Pass;
use crate::ir::{Graph, IrError, IrKind, Op};
use crate::spec::Shape;

pub struct ShapeInference;

/// The shape an operation produces from `input`, or why it cannot.
pub fn output_shape(op: &Op, input: Shape) -> Result<Shape, String> {
    if input.is_empty() {
        return Err(format!("reads an empty tensor {input}"));
    }
    let window = |size: usize, stride: usize, padding: usize| {
        let (h, w) = (input.height + 2 * padding, input.width + 2 * padding);
        if size == 0 || stride == 0 || padding >= size || size > h || size > w {
            return Err(format!(
                "window {size}x{size} with stride {stride} does not fit {input} padded by {padding}"
            ));
        }
        Ok(((h - size) / stride + 1, (w - size) / stride + 1))
    };
    Ok(match *op {
        Op::Mac { outputs: 0, .. } => return Err("a MAC needs at least one output".into()),
        Op::Mac {
            dense: true,
            outputs,
            kernel,
            stride,
            padding,
            ..
        } => {
            if !input.is_flat() {
                return Err(format!("dense needs a flat input, not {input}"));
            }
            if (kernel, stride, padding) != (1, 1, 0) {
                return Err(format!(
                    "dense takes kernel 1, stride 1, padding 0, not {kernel}, {stride}, {padding}"
                ));
            }
            Shape::flat(outputs)
        }
        Op::Mac {
            kernel,
            stride,
            padding,
            outputs,
            ..
        } => {
            let (height, width) = window(kernel, stride, padding)?;
            Shape {
                height,
                width,
                channels: outputs,
            }
        }
        Op::MaxPool { size, stride } | Op::AvgPool { size, stride } => {
            let (height, width) = window(size, stride, 0)?;
            Shape {
                height,
                width,
                channels: input.channels,
            }
        }
        Op::Flatten => Shape::flat(input.len()),
        Op::Input
        | Op::Output
        | Op::BatchNorm(_)
        | Op::Quantize { .. }
        | Op::MultiThreshold(_)
        | Op::Requantize(_)
        | Op::Add { .. } => input,
    })
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
            match graph.graph[node].op {
                Op::MaxPool { .. } | Op::Flatten => {
                    out.precision = input.precision;
                    out.scale = input.scale;
                }
                Op::AvgPool { size, .. } => {
                    out.scale = window_sum_type(input, size, shape)
                        .map_err(|message| graph.error(file, node, message))?
                        .scale;
                }
                Op::Add { .. } => {
                    let inputs = graph.input_types(node);
                    out.scale = add_type(inputs[0], inputs[1])
                        .map_err(|message| graph.error(file, node, message))?
                        .0
                        .scale;
                }
                _ => {}
            }
            if out != before {
                graph.set_output_type(node, out);
                changed = true;
            }
        }
        Ok(changed)
    }
}
