//! The golden model: the integer reference that defines a network's outputs. The RTL must equal
//! it bit for bit (class index and every logit, on every image).
//!
//! It runs a lowered graph (after all passes), a DAG in topological order that keeps each node's
//! output while a later node still reads it, with integer semantics only. Every tensor between
//! operations holds integer codes; MACs are exact integer dot products, computed on the fastest
//! exact path: XNOR-popcount on bit-packed operands when weights and inputs are both bipolar,
//! otherwise a float matrix product whose every partial sum is an integer below 2^24 (f32) or
//! 2^53 (f64) in magnitude, where float arithmetic is exact whatever the summation order.
//! Zero padding contributes 0 to a convolution (also for bipolar inputs).

mod mac;

use std::collections::HashMap;

use petgraph::stable_graph::NodeIndex;
use rayon::prelude::*;

use crate::error::escape_controls;
use crate::ir::ops::IntegerStep;
use crate::ir::verify::verify_lowered;
use crate::ir::{Graph, IrError, Op, Precision, Requantization, ThresholdTable};
use crate::kernels::argmax;
use mac::{MacPlan, Scratch};

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
    Threshold(Thresholds),
    /// A threshold followed by a max-pool, computed as the pool of the (signed) accumulators
    /// and then the threshold: the same codes, since a count of thresholds never decreases
    /// as the signed accumulator grows, with a quarter of the comparisons for 2x2 pools.
    PoolThenThreshold(mac::Pool, Thresholds),
    Requantize(Requantization),
    MaxPool(mac::Pool),
    /// An op that computes its codes itself: window sums, adds, flatten (see
    /// [`OpRules::integer_step`](crate::ir::ops::OpRules::integer_step)).
    Op(Box<dyn IntegerStep>),
    /// Nothing (what a fused step leaves behind while it is rebuilt).
    Identity,
}

/// One step of the run: the node (or fused nodes) it computes, the values it reads (0 the
/// image, `k` the output of step `k - 1`), and the values nothing reads after it.
/// Why a graph cannot be compiled for the golden model, printed on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoldenError {
    /// The graph is not a verified, integer-only (lowered) graph.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// A MAC without trained weights.
    #[error("{}: {}: has no trained weights", escape_controls(.file), escape_controls(.node))]
    NoWeights { file: String, node: String },
    /// A node the golden model cannot compute exactly.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Unsupported {
        file: String,
        node: String,
        message: String,
    },
}

struct Planned {
    name: String,
    step: Step,
    reads: Vec<usize>,
    last_reads: Vec<usize>,
}

/// A lowered graph compiled for execution.
pub struct Golden {
    steps: Vec<Planned>,
    /// The value the output node reads.
    logits: usize,
    pixels_per_image: usize,
    classes: usize,
}

impl Golden {
    /// Compiles a lowered graph; refuses graphs that are not integer-only.
    pub fn new(graph: &Graph, file: &str) -> Result<Golden, GoldenError> {
        Golden::compile(graph, file, false)
    }

    /// Like [`Golden::new`], keeping every node a step of its own, so that [`Golden::trace`]
    /// shows each node's output.
    pub fn unfused(graph: &Graph, file: &str) -> Result<Golden, GoldenError> {
        Golden::compile(graph, file, true)
    }

    fn compile(graph: &Graph, file: &str, keep_every_node: bool) -> Result<Golden, GoldenError> {
        verify_lowered(graph, file)?;
        let order = graph.topological_order();
        let input = graph.output_type(order[0]).expect("typed input");
        let mut steps: Vec<Planned> = Vec::new();
        // The value each node's output is: 0 for the image, k for step k - 1's.
        let mut value_of: HashMap<NodeIndex, usize> = HashMap::from([(order[0], 0)]);
        let mut logits = (0, 0);
        for &node in &order[1..] {
            let name = graph.graph[node].name.clone();
            let inputs = graph.inputs(node);
            let reads: Vec<usize> = inputs.iter().map(|i| value_of[i]).collect();
            let Some(step) = compile(graph, node, file)? else {
                logits = (reads[0], graph.input_type(node).expect("typed").shape.len());
                continue;
            };
            // A max-pool that alone reads a threshold's output pools the accumulators first.
            let fusable = !keep_every_node
                && graph.consumers(inputs[0]) == [node]
                && steps.last().is_some_and(|last| {
                    matches!(last.step, Step::Threshold(_)) && reads[0] == steps.len()
                });
            match step {
                Step::MaxPool(pool) if fusable => {
                    let last = steps.last_mut().expect("fusable");
                    let Step::Threshold(table) = std::mem::replace(&mut last.step, Step::Identity)
                    else {
                        unreachable!("fusable")
                    };
                    last.step = Step::PoolThenThreshold(pool, table);
                    last.name = format!("{}+{name}", last.name);
                }
                step => steps.push(Planned {
                    name,
                    step,
                    reads,
                    last_reads: Vec::new(),
                }),
            }
            value_of.insert(node, steps.len());
        }
        // Each value is dropped after the last step that reads it (the logits are kept).
        let mut last_reader: HashMap<usize, usize> = HashMap::new();
        for (k, planned) in steps.iter().enumerate() {
            for &v in &planned.reads {
                last_reader.insert(v, k);
            }
        }
        for (v, k) in last_reader {
            if v != logits.0 {
                steps[k].last_reads.push(v);
            }
        }
        Ok(Golden {
            steps,
            logits: logits.0,
            pixels_per_image: input.shape.len(),
            classes: logits.1,
        })
    }

    /// Predictions for `images` (row-major 8-bit pixels, HWC), in parallel over the cores.
    pub fn run(&self, images: &[u8]) -> Vec<Prediction> {
        images
            .par_chunks(IMAGES_PER_TASK * self.pixels_per_image)
            .map_init(Scratch::default, |scratch, chunk| {
                let logits = self.run_chunk(chunk, scratch, None);
                logits
                    .chunks_exact(self.classes)
                    .map(|l| Prediction {
                        class: argmax(l),
                        logits: l.to_vec(),
                    })
                    .collect::<Vec<_>>()
            })
            .flatten_iter()
            .collect()
    }

    /// The output of every node for one image, input to logits.
    pub fn trace(&self, image: &[u8]) -> Vec<Trace> {
        let mut traces = Vec::new();
        self.run_chunk(image, &mut Scratch::default(), Some(&mut traces));
        traces
    }

    /// Test accuracy in percent of `images` (one after another) against `labels`, and the
    /// number of images classified correctly.
    pub fn accuracy(&self, images: &[u8], labels: &[u8]) -> (f64, usize) {
        let correct = Golden::correct(&self.run(images), labels);
        (100.0 * correct as f64 / labels.len().max(1) as f64, correct)
    }

    /// How many of `predictions` name the class of their label.
    pub fn correct(predictions: &[Prediction], labels: &[u8]) -> usize {
        predictions
            .iter()
            .zip(labels)
            .filter(|(p, &label)| p.class == label as usize)
            .count()
    }

    fn run_chunk(
        &self,
        pixels: &[u8],
        scratch: &mut Scratch,
        mut traces: Option<&mut Vec<Trace>>,
    ) -> Vec<i64> {
        let images = pixels.len() / self.pixels_per_image;
        let mut values: Vec<Option<Vec<i64>>> = vec![None; self.steps.len() + 1];
        values[0] = Some(pixels.iter().map(|&p| p as i64).collect());
        for (k, planned) in self.steps.iter().enumerate() {
            let input = |slot: usize| {
                values[planned.reads[slot]]
                    .as_deref()
                    .expect("a value lives until its last reader")
            };
            let x = input(0);
            let y = match &planned.step {
                Step::Mac(plan) => plan.run(x, images, scratch),
                Step::Threshold(table) => table.count(&table.signed(x)),
                Step::PoolThenThreshold(pool, table) => {
                    table.count(&pool.run(&table.signed(x), images))
                }
                Step::Requantize(r) => requantize(x, r),
                Step::MaxPool(pool) => pool.run(x, images),
                Step::Op(step) => {
                    let others: Vec<&[i64]> = (1..planned.reads.len()).map(input).collect();
                    step.run(x, &others, images)
                }
                Step::Identity => x.to_vec(),
            };
            for &v in &planned.last_reads {
                values[v] = None;
            }
            if let Some(traces) = traces.as_deref_mut() {
                traces.push(Trace {
                    node: planned.name.clone(),
                    values: y.clone(),
                });
            }
            values[k + 1] = Some(y);
        }
        values[self.logits].take().expect("the logits are kept")
    }
}

fn compile(graph: &Graph, node: NodeIndex, file: &str) -> Result<Option<Step>, GoldenError> {
    let input = graph.input_type(node).expect("typed");
    let output = graph.output_type(node).expect("typed");
    Ok(Some(match &graph.graph[node].op {
        Op::Output => return Ok(None),
        Op::MaxPool { size, stride } => Step::MaxPool(mac::Pool {
            input: input.shape,
            output: output.shape,
            size: *size,
            stride: *stride,
        }),
        Op::MultiThreshold(table) => Step::Threshold(Thresholds::new(
            table,
            output.precision == Precision::Bipolar,
            input.precision.code_range().expect("lowered graph"),
        )),
        Op::Requantize(r) => Step::Requantize(r.clone()),
        Op::Mac { .. } => Step::Mac(MacPlan::new(graph, node, file)?),
        op => Step::Op(
            op.rules()
                .integer_step(input, output)
                .expect("verify_lowered refuses the ops without integer steps"),
        ),
    }))
}

/// A threshold table laid out for counting: every channel's thresholds padded to the same
/// length with a value no accumulator reaches, descending channels negated (`acc <= t` is
/// `-acc >= -t`), so that a count is one comparison per threshold, branch-free; in 32 bits
/// where the accumulators fit, which vectorizes twice as wide.
struct Thresholds {
    /// `[channels][width]`.
    values: Vec<i64>,
    narrow: Option<Vec<i32>>,
    width: usize,
    /// +1 for ascending channels, -1 for descending ones.
    sign: Vec<i64>,
    bipolar: bool,
}

impl Thresholds {
    fn new(table: &ThresholdTable, bipolar: bool, acc_range: (i64, i64)) -> Self {
        let width = table.thresholds.iter().map(Vec::len).max().unwrap_or(0);
        let mut values = Vec::with_capacity(table.thresholds.len() * width);
        let mut sign = Vec::with_capacity(table.thresholds.len());
        for (row, &descending) in table.thresholds.iter().zip(&table.descending) {
            let s = if descending { -1 } else { 1 };
            values.extend(row.iter().map(|&t| s * t));
            values.extend(std::iter::repeat_n(i64::MAX, width - row.len()));
            sign.push(s);
        }
        // Accumulators (negated too) and thresholds (clamped to one beyond the accumulator
        // range) all fit in 32 bits when the range does, with a margin of one.
        let fits = |v: i64| v.unsigned_abs() < i32::MAX as u64;
        let narrow = (fits(acc_range.0) && fits(acc_range.1)).then(|| {
            values
                .iter()
                .map(|&v| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                .collect()
        });
        Thresholds {
            values,
            narrow,
            width,
            sign,
            bipolar,
        }
    }

    /// Accumulators with descending channels negated: their order is the order of the codes.
    fn signed(&self, acc: &[i64]) -> Vec<i64> {
        let channels = self.sign.len();
        let mut out = acc.to_vec();
        for row in out.chunks_exact_mut(channels) {
            for (a, &s) in row.iter_mut().zip(&self.sign) {
                *a *= s;
            }
        }
        out
    }

    /// Output code: how many thresholds of its channel each signed accumulator reaches.
    fn count(&self, signed: &[i64]) -> Vec<i64> {
        let channels = self.sign.len();
        let mut out = vec![0i64; signed.len()];
        for (out_row, row) in out
            .chunks_exact_mut(channels)
            .zip(signed.chunks_exact(channels))
        {
            for (c, (o, &a)) in out_row.iter_mut().zip(row).enumerate() {
                let count = match &self.narrow {
                    Some(narrow) => {
                        let a = a as i32;
                        let t = &narrow[c * self.width..][..self.width];
                        t.iter().map(|&x| (a >= x) as i64).sum::<i64>()
                    }
                    None => {
                        let t = &self.values[c * self.width..][..self.width];
                        t.iter().map(|&x| (a >= x) as i64).sum::<i64>()
                    }
                };
                *o = if self.bipolar { 2 * count - 1 } else { count };
            }
        }
        out
    }
}

/// `clamp((acc * M + B) >> S)`, per channel.
fn requantize(acc: &[i64], r: &Requantization) -> Vec<i64> {
    let channels = r.multiplier.len();
    let (lo, hi) = r.clamp.unwrap_or((i64::MIN, i64::MAX));
    let mut out = vec![0i64; acc.len()];
    for (out_row, row) in out
        .chunks_exact_mut(channels)
        .zip(acc.chunks_exact(channels))
    {
        for (c, (o, &a)) in out_row.iter_mut().zip(row).enumerate() {
            *o = ((a * r.multiplier[c] + r.offset[c]) >> r.shift).clamp(lo, hi);
        }
    }
    out
}
