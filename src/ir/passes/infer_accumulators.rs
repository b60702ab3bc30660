//! `infer-accumulators`: gives every MAC output the narrowest signed integer that holds its
//! worst case, `fan_in` products each at the extreme of weight code times input code over the
//! declared precisions, so that no input and no weights of those precisions can overflow it.
//!
//! Needs: shapes; integer inputs to every MAC. Changes: MAC output precisions.

use super::Pass;
use crate::ir::{Graph, IrError, Op, Precision};

pub struct InferAccumulators;

/// Smallest and largest value of a sum of `fan_in` products of codes in the two ranges.
pub fn accumulator_bounds(weights: (i64, i64), inputs: (i64, i64), fan_in: usize) -> (i64, i64) {
    let products = [
        weights.0 * inputs.0,
        weights.0 * inputs.1,
        weights.1 * inputs.0,
        weights.1 * inputs.1,
    ];
    let min = *products.iter().min().expect("four products");
    let max = *products.iter().max().expect("four products");
    (min * fan_in as i64, max * fan_in as i64)
}

impl Pass for InferAccumulators {
    fn name(&self) -> &'static str {
        "infer-accumulators"
    }

    fn description(&self) -> &'static str {
        "sizes every MAC accumulator from the worst case of its precisions and fan-in"
    }

    fn run(&self, graph: &mut Graph, file: &str) -> Result<bool, IrError> {
        let mut changed = false;
        for node in graph.macs() {
            let input = graph.input_type(node).expect("a MAC has an input");
            let Op::Mac {
                kernel,
                weight_precision,
                ..
            } = graph.graph[node].op
            else {
                continue;
            };
            let inputs = input.precision.code_range().ok_or_else(|| {
                graph.error(
                    file,
                    node,
                    "reads float values; put an activation quantizer before it",
                )
            })?;
            let weights = weight_precision
                .code_range()
                .ok_or_else(|| graph.error(file, node, "weights must be integer codes"))?;
            let fan_in = kernel * kernel * input.shape.channels;
            let (min, max) = accumulator_bounds(weights, inputs, fan_in);
            let mut out = graph.output_type(node).expect("a MAC has an output");
            let precision = Precision::signed_for_range(min, max);
            if out.precision != precision {
                out.precision = precision;
                graph.set_output_type(node, out);
                changed = true;
            }
        }
        Ok(changed)
    }
}
