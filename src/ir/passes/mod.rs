//! The passes that lower a graph to integers, one a file, each named the same in its file,
//! its type and the command line (`qnnc inspect --after NAME`).
//!
//! A transform returns whether it changed the graph. The pipeline verifies the graph after
//! every pass, so a pass that breaks an invariant is caught where it happens.

pub mod fold_batch_norm;
pub mod infer_accumulators;
pub mod remove_dead;
pub mod shape_inference;

use super::verify::verify;
use super::{Graph, IrError};

pub trait Pass {
    /// The name on the command line, e.g. `fold-batch-norm`.
    fn name(&self) -> &'static str;
    /// One line on what the pass does.
    fn description(&self) -> &'static str;
    /// Passes that compute with weights or batch-norm statistics do not apply to a graph built
    /// from a spec alone.
    fn needs_weights(&self) -> bool {
        false
    }
    /// Transforms the graph; returns whether anything changed.
    fn run(&self, graph: &mut Graph, file: &str) -> Result<bool, IrError>;
}

/// The default pipeline, in order.
pub fn pipeline() -> Vec<Box<dyn Pass>> {
    vec![
        // Everything after it relies on the shapes on the edges.
        Box::new(shape_inference::ShapeInference),
        // Before folding: thresholds are clamped to the accumulator's range.
        Box::new(infer_accumulators::InferAccumulators),
        Box::new(fold_batch_norm::FoldBatchNorm),
        // Last: folding is what leaves identities and unreachable nodes behind.
        Box::new(remove_dead::RemoveDead),
    ]
}

/// Runs the pipeline up to and including the pass named `until` (all of it for `None`),
/// verifying after each pass. Passes that need weights are skipped on weightless graphs.
pub fn run(graph: &mut Graph, file: &str, until: Option<&str>) -> Result<(), IrError> {
    let passes = pipeline();
    if let Some(name) = until {
        if !passes.iter().any(|p| p.name() == name) {
            return Err(IrError::UnknownPass {
                flag: "--after".into(),
                name: name.into(),
                passes: passes.iter().map(|p| p.name()).collect(),
            });
        }
    }
    let has_weights = graph.has_weights();
    for pass in passes {
        if has_weights || !pass.needs_weights() {
            pass.run(graph, file)?;
            graph.passes.push(pass.name().to_string());
            verify(graph, file)?;
        }
        if until == Some(pass.name()) {
            break;
        }
    }
    Ok(())
}
