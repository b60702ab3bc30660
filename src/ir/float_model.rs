//! The float semantics of a graph before lowering: what a training framework computes at
//! inference, in f32. It evaluates imported QONNX graphs the way their framework did (weights
//! as `code * step`, batch norm in float, quantizers that round half to even, as QONNX's Quant
//! does), so that an import can be checked against the accuracy the framework reported; the
//! integer golden model is then compared with it. Each op says what it computes
//! ([`OpRules::float_plan`](super::ops::OpRules::float_plan)); this file runs the steps.

use std::collections::HashMap;

use petgraph::stable_graph::NodeIndex;
use rayon::prelude::*;

use super::ops::{FloatPlan, FloatStep};
use super::verify::verify;
use super::{Graph, IrError, IrKind};
use crate::kernels::argmax;

/// Images one task runs at a time.
const IMAGES_PER_TASK: usize = 64;

/// A step, the values it reads (0 the image, `k` the output of step `k - 1`) and those nothing
/// reads after it.
struct Planned {
    step: Box<dyn FloatStep>,
    reads: Vec<usize>,
    last_reads: Vec<usize>,
}

/// A graph before `fold-batch-norm`, compiled for float evaluation.
pub struct FloatModel {
    steps: Vec<Planned>,
    /// The value the output node reads.
    logits: usize,
    pixel_value: f32,
    pixels_per_image: usize,
    classes: usize,
}

impl FloatModel {
    /// Compiles a graph that still has its float batch norms and quantizers.
    pub fn new(graph: &Graph, file: &str) -> Result<FloatModel, IrError> {
        verify(graph, file)?;
        let order = graph.topological_order();
        let input = graph.output_type(order[0]).expect("typed input");
        let mut steps: Vec<Planned> = Vec::new();
        let mut value_of: HashMap<NodeIndex, usize> = HashMap::from([(order[0], 0)]);
        let (mut logits, mut classes) = (0, 0);
        for &node in &order[1..] {
            let reads: Vec<usize> = graph.inputs(node).iter().map(|i| value_of[i]).collect();
            match step(graph, node, file)? {
                Some(step) => {
                    steps.push(Planned {
                        step,
                        reads,
                        last_reads: Vec::new(),
                    });
                    value_of.insert(node, steps.len());
                }
                None => {
                    logits = reads[0];
                    classes = graph.input_type(node).expect("typed").shape.len();
                }
            }
        }
        let mut last_reader: HashMap<usize, usize> = HashMap::new();
        for (k, planned) in steps.iter().enumerate() {
            for &v in &planned.reads {
                last_reader.insert(v, k);
            }
        }
        for (v, k) in last_reader {
            if v != logits {
                steps[k].last_reads.push(v);
            }
        }
        Ok(FloatModel {
            steps,
            logits,
            pixel_value: input.scale as f32,
            pixels_per_image: input.shape.len(),
            classes,
        })
    }

    /// The float logits of `images` (row-major 8-bit pixels, HWC), in parallel over the cores.
    pub fn logits(&self, images: &[u8]) -> Vec<Vec<f32>> {
        images
            .par_chunks(IMAGES_PER_TASK * self.pixels_per_image)
            .map(|chunk| {
                let images = chunk.len() / self.pixels_per_image;
                let mut values: Vec<Option<Vec<f32>>> = vec![None; self.steps.len() + 1];
                values[0] = Some(chunk.iter().map(|&p| p as f32 * self.pixel_value).collect());
                for (k, planned) in self.steps.iter().enumerate() {
                    // The first input is moved when this step is its last reader.
                    let first = planned.reads[0];
                    let x = if planned.last_reads.contains(&first)
                        && !planned.reads[1..].contains(&first)
                    {
                        values[first].take()
                    } else {
                        values[first].clone()
                    };
                    let x = x.expect("a value lives until its last reader");
                    let others: Vec<&[f32]> = planned.reads[1..]
                        .iter()
                        .map(|&v| values[v].as_deref().expect("computed"))
                        .collect();
                    let y = planned.step.run(x, &others, images);
                    for &v in &planned.last_reads {
                        values[v] = None;
                    }
                    values[k + 1] = Some(y);
                }
                let x = values[self.logits].take().expect("the logits are kept");
                x.chunks_exact(self.classes)
                    .map(|l| l.to_vec())
                    .collect::<Vec<_>>()
            })
            .flatten()
            .collect()
    }

    /// Test accuracy in percent, and the number of images classified correctly.
    pub fn accuracy(&self, images: &[u8], labels: &[u8]) -> (f64, usize) {
        let correct = self
            .logits(images)
            .iter()
            .zip(labels)
            .filter(|(l, &label)| argmax(l) == label as usize)
            .count();
        (100.0 * correct as f64 / labels.len().max(1) as f64, correct)
    }
}

/// The step of `node`, or `None` for the output node (whose input is the logits).
fn step(graph: &Graph, node: NodeIndex, file: &str) -> Result<Option<Box<dyn FloatStep>>, IrError> {
    let input = graph.input_type(node).expect("typed");
    let output = graph.output_type(node).expect("typed");
    match graph.graph[node].op.rules().float_plan(input, output) {
        FloatPlan::Step(step) => Ok(Some(step)),
        FloatPlan::Logits => Ok(None),
        FloatPlan::NoWeights => Err(IrError::NoWeights {
            file: file.to_string(),
            node: graph.graph[node].name.clone(),
        }),
        FloatPlan::Lowered => Err(graph.error_of(
            IrKind::Unsupported,
            file,
            node,
            "is already lowered to integers; the float model runs graphs before fold-batch-norm",
        )),
    }
}
