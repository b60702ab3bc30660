//! The golden model: the integer reference that defines a network's outputs. The RTL must equal
//! it bit for bit (class index and every logit, on every image).
//!
//! It runs a lowered graph (after all passes) with integer semantics only. Every tensor between
//! operations holds integer codes; MACs are exact integer dot products, computed on the fastest
//! exact path: XNOR-popcount on bit-packed operands when weights and inputs are both bipolar,
//! otherwise a float matrix product whose every partial sum is an integer below 2^24 (f32) or
//! 2^53 (f64) in magnitude, where float arithmetic is exact whatever the summation order.
//! Zero padding contributes 0 to a convolution (also for bipolar inputs).

mod mac;

use petgraph::stable_graph::NodeIndex;
use rayon::prelude::*;

use crate::data::Dataset;
use crate::ir::verify::verify_lowered;
use crate::ir::{Graph, IrError, Op, Precision, Requantization, ThresholdTable};
use crate::train::loss::argmax;
use mac::MacPlan;

/// Images one task runs at a time: enough for efficient matrix products, small enough to stay
/// in cache.
const IMAGES_PER_TASK: usize = 64;

/// What the network says about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub class: usize,
    pub logits: Vec<i64>,
}

/// The integer outputs of one node for one image, HWC order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub node: String,
    pub values: Vec<i64>,
}

enum Step {
    Mac(MacPlan),
    Threshold(ThresholdTable, bool),
    Requantize(Requantization),
    MaxPool(mac::Pool),
    /// Flatten: HWC data is already in flat order.
    Identity,
}

/// A lowered graph compiled for execution.
pub struct Golden {
    steps: Vec<(String, Step)>,
    pixels_per_image: usize,
    classes: usize,
}

impl Golden {
    /// Compiles a lowered graph; refuses graphs that are not integer-only.
    pub fn new(graph: &Graph, file: &str) -> Result<Golden, IrError> {
        verify_lowered(graph, file)?;
        let chain = graph.chain();
        let input = graph.output_type(chain[0]).expect("typed input");
        let mut steps = Vec::new();
        let mut logits = 0;
        for &node in &chain[1..] {
            let step = compile(graph, node, file)?;
            if let Some(step) = step {
                steps.push((graph.graph[node].name.clone(), step));
            } else {
                logits = graph.input_type(node).expect("typed").shape.len();
            }
        }
        Ok(Golden {
            steps,
            pixels_per_image: input.shape.len(),
            classes: logits,
        })
    }

    /// Predictions for `images` (row-major 8-bit pixels, HWC), in parallel over the cores.
    pub fn run(&self, images: &[u8]) -> Vec<Prediction> {
        images
            .par_chunks(IMAGES_PER_TASK * self.pixels_per_image)
            .flat_map_iter(|chunk| {
                let logits = self.run_chunk(chunk, None);
                logits
                    .chunks_exact(self.classes)
                    .map(|l| Prediction {
                        class: argmax(l),
                        logits: l.to_vec(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The output of every node for one image, input to logits.
    pub fn trace(&self, image: &[u8]) -> Vec<Trace> {
        let mut traces = Vec::new();
        self.run_chunk(image, Some(&mut traces));
        traces
    }

    /// Test accuracy in percent on `data`.
    pub fn accuracy(&self, data: &Dataset) -> f64 {
        let predictions = self.run(&data.images);
        let correct = predictions
            .iter()
            .zip(&data.labels)
            .filter(|(p, &label)| p.class == label as usize)
            .count();
        100.0 * correct as f64 / data.len().max(1) as f64
    }

    fn run_chunk(&self, pixels: &[u8], mut traces: Option<&mut Vec<Trace>>) -> Vec<i64> {
        let images = pixels.len() / self.pixels_per_image;
        let mut x: Vec<i64> = pixels.iter().map(|&p| p as i64).collect();
        for (name, step) in &self.steps {
            x = match step {
                Step::Mac(plan) => plan.run(&x, images),
                Step::Threshold(table, bipolar) => threshold(&x, table, *bipolar),
                Step::Requantize(r) => requantize(&x, r),
                Step::MaxPool(pool) => pool.run(&x, images),
                Step::Identity => x,
            };
            if let Some(traces) = traces.as_deref_mut() {
                traces.push(Trace {
                    node: name.clone(),
                    values: x.clone(),
                });
            }
        }
        x
    }
}

fn compile(graph: &Graph, node: NodeIndex, file: &str) -> Result<Option<Step>, IrError> {
    let input = graph.input_type(node).expect("typed");
    let output = graph.output_type(node).expect("typed");
    Ok(Some(match &graph.graph[node].op {
        Op::Output => return Ok(None),
        Op::Flatten => Step::Identity,
        Op::MaxPool { size, stride } => Step::MaxPool(mac::Pool {
            input: input.shape,
            output: output.shape,
            size: *size,
            stride: *stride,
        }),
        Op::MultiThreshold(table) => {
            Step::Threshold(table.clone(), output.precision == Precision::Bipolar)
        }
        Op::Requantize(r) => Step::Requantize(r.clone()),
        Op::Mac { .. } => Step::Mac(MacPlan::new(graph, node, file)?),
        Op::Input | Op::BatchNorm(_) | Op::Quantize { .. } => {
            unreachable!("verify_lowered refuses these")
        }
    }))
}

/// Output code: how many thresholds of its channel each accumulator reaches.
fn threshold(acc: &[i64], table: &ThresholdTable, bipolar: bool) -> Vec<i64> {
    let channels = table.thresholds.len();
    acc.chunks_exact(channels)
        .flat_map(|row| {
            row.iter().enumerate().map(|(c, &a)| {
                let t = &table.thresholds[c];
                let count = if table.descending[c] {
                    t.partition_point(|&x| x >= a)
                } else {
                    t.partition_point(|&x| x <= a)
                } as i64;
                if bipolar {
                    2 * count - 1
                } else {
                    count
                }
            })
        })
        .collect()
}

/// `clamp((acc * M + B) >> S)`, per channel.
fn requantize(acc: &[i64], r: &Requantization) -> Vec<i64> {
    let channels = r.multiplier.len();
    acc.chunks_exact(channels)
        .flat_map(|row| {
            row.iter().enumerate().map(|(c, &a)| {
                let v = (a * r.multiplier[c] + r.offset[c]) >> r.shift;
                match r.clamp {
                    Some((lo, hi)) => v.clamp(lo, hi),
                    None => v,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
