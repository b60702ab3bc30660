//! `remove-dead`: removes nodes that cannot affect the logits (not reachable from the input or
//! not reaching the output) and operations that are identities on the data: a flatten of a
//! tensor that is already flat, a 1x1 max-pool of stride 1.
//!
//! Needs: shapes. Changes: removes nodes. Invalidates nothing (the data on every remaining edge
//! is unchanged).

use petgraph::visit::{Bfs, Reversed};

use super::Pass;
use crate::ir::{Graph, IrError, Op};

pub struct RemoveDead;

impl Pass for RemoveDead {
    fn name(&self) -> &'static str {
        "remove-dead"
    }

    fn description(&self) -> &'static str {
        "removes nodes that cannot reach the logits and operations that are identities"
    }

    fn run(&self, graph: &mut Graph, _file: &str) -> Result<bool, IrError> {
        let mut changed = false;
        let input = graph.input_node();
        let output = graph
            .graph
            .node_indices()
            .find(|&i| graph.graph[i].op == Op::Output);
        if let (Some(input), Some(output)) = (input, output) {
            let mut live_forward = std::collections::BTreeSet::new();
            let mut bfs = Bfs::new(&graph.graph, input);
            while let Some(n) = bfs.next(&graph.graph) {
                live_forward.insert(n);
            }
            let mut live = std::collections::BTreeSet::new();
            let reversed = Reversed(&graph.graph);
            let mut bfs = Bfs::new(reversed, output);
            while let Some(n) = bfs.next(reversed) {
                if live_forward.contains(&n) {
                    live.insert(n);
                }
            }
            let dead: Vec<_> = graph
                .graph
                .node_indices()
                .filter(|n| !live.contains(n))
                .collect();
            for node in dead {
                graph.graph.remove_node(node);
                changed = true;
            }
        }
        for node in graph.topological_order() {
            let (Some(input), Some(out)) = (graph.input_type(node), graph.output_type(node)) else {
                continue;
            };
            let identity = match graph.graph[node].op {
                Op::Flatten => input.shape == out.shape,
                Op::MaxPool { size: 1, stride: 1 } => true,
                _ => false,
            };
            if identity {
                graph.bypass(node, input);
                changed = true;
            }
        }
        Ok(changed)
    }
}
