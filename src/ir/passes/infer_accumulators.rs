//! `infer-accumulators`: gives every MAC output the narrowest signed integer that holds its
//! worst case, `fan_in` products each at the extreme of weight code times input code over the
//! declared precisions, so that no input and no weights of those precisions can overflow it;
//! and every sum (average-pool window sums, adds) the narrowest integer that holds its range:
//! unsigned when its inputs are, signed when one is bipolar. Each op says what it accumulates
//! ([`OpRules::accumulator`](crate::ir::ops::OpRules::accumulator)).
//!
//! Needs: shapes; integer inputs to every MAC and sum. Changes: MAC and sum output precisions.

use super::Pass;
use crate::ir::{Graph, IrError};

pub struct InferAccumulators;

impl Pass for InferAccumulators {
    fn name(&self) -> &'static str {
        "infer-accumulators"
    }

    fn description(&self) -> &'static str {
        "sizes every MAC accumulator from the worst case of its precisions and fan-in"
    }

    fn run(&self, graph: &mut Graph, file: &str) -> Result<bool, IrError> {
        let mut changed = false;
        // The MACs first, then the sums in order: a graph wrong in both is refused for a MAC.
        let macs = graph.macs();
        let sums = graph
            .topological_order()
            .into_iter()
            .filter(|node| !macs.contains(node));
        for node in macs.clone().into_iter().chain(sums) {
            let inputs = graph.input_types(node);
            let Some(precision) = graph.graph[node].op.rules().accumulator(&inputs) else {
                continue;
            };
            let precision = precision.map_err(|message| graph.error(file, node, message))?;
            let mut out = graph
                .output_type(node)
                .expect("an accumulator has an output");
            if out.precision != precision {
                out.precision = precision;
                graph.set_output_type(node, out);
                changed = true;
            }
        }
        Ok(changed)
    }
}
