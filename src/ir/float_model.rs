//! The float semantics of a graph before lowering: what a training framework computes at
//! inference, in f32. It evaluates imported QONNX graphs the way their framework did (weights
//! as `code * step`, batch norm in float, quantizers that round half to even, as QONNX's Quant
//! does), so that an import can be checked against the accuracy the framework reported; the
//! integer golden model is then compared with it.

use std::collections::HashMap;

use ndarray::{ArrayView2, ArrayViewMut2};
use petgraph::stable_graph::NodeIndex;
use rayon::prelude::*;

use super::verify::verify;
use super::{Graph, IrError, IrKind, Op, Precision, Truncation};
use crate::kernels::gemm::matmul_serial;
use crate::kernels::window::{add_bias, im2col};
use crate::kernels::{argmax, Window};
use crate::spec::Shape;

/// Images one task runs at a time.
const IMAGES_PER_TASK: usize = 64;

enum Step {
    Mac {
        input: Shape,
        output: Shape,
        window: Window,
        /// `[fan_in, outputs]`: `code * step`.
        weights: Vec<f32>,
        bias: Option<Vec<f32>>,
    },
    /// `y = x * scale[c] + shift[c]` (batch norm at inference).
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    /// Unsigned codes `clamp(round(x / code_value), 0, max)`, or `sign(x)` for bipolar (zero
    /// counts as +1), times `code_value`.
    Quantize {
        code_value: f32,
        max_code: Option<f32>,
    },
    /// A quantizer to `truncation.input_bits` bits, then its truncation to `max_code`.
    Truncate {
        truncation: Truncation,
        code_value: f32,
        max_code: i64,
    },
    MaxPool {
        input: Shape,
        output: Shape,
        size: usize,
        stride: usize,
    },
    /// The mean of each channel over its windows.
    AvgPool {
        input: Shape,
        output: Shape,
        size: usize,
        stride: usize,
    },
    /// The element-wise sum of the two inputs' values.
    Add,
    Identity,
}

/// A step, the values it reads (0 the image, `k` the output of step `k - 1`) and those nothing
/// reads after it.
struct Planned {
    step: Step,
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
                    let y = match planned.step {
                        Step::Add => {
                            let other = values[planned.reads[1]].as_deref().expect("computed");
                            x.iter().zip(other).map(|(a, b)| a + b).collect()
                        }
                        ref step => run(step, x, images),
                    };
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

fn step(graph: &Graph, node: NodeIndex, file: &str) -> Result<Option<Step>, IrError> {
    let input = graph.input_type(node).expect("typed");
    let output = graph.output_type(node).expect("typed");
    Ok(Some(match &graph.graph[node].op {
        Op::AvgPool { size, stride } => Step::AvgPool {
            input: input.shape,
            output: output.shape,
            size: *size,
            stride: *stride,
        },
        Op::Add { .. } => Step::Add,
        Op::Mac {
            kernel,
            stride,
            padding,
            weights,
            bias,
            ..
        } => {
            let weights = weights.as_ref().ok_or_else(|| IrError::NoWeights {
                file: file.to_string(),
                node: graph.graph[node].name.clone(),
            })?;
            Step::Mac {
                input: input.shape,
                output: output.shape,
                window: Window {
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                },
                weights: weights
                    .codes
                    .iter()
                    .map(|&c| (c as f64 * weights.step) as f32)
                    .collect(),
                bias: bias.clone(),
            }
        }
        Op::BatchNorm(bn) => {
            let scale: Vec<f32> = bn
                .gamma
                .iter()
                .zip(&bn.var)
                .map(|(&g, &v)| g / (v + bn.epsilon).sqrt())
                .collect();
            let shift = bn
                .beta
                .iter()
                .zip(&bn.mean)
                .zip(&scale)
                .map(|((&b, &m), &s)| b - m * s)
                .collect();
            Step::Affine { scale, shift }
        }
        Op::Quantize {
            truncation: Some(truncation),
            ..
        } => Step::Truncate {
            truncation: *truncation,
            code_value: output.scale as f32,
            max_code: output.precision.code_range().expect("integer codes").1,
        },
        Op::Quantize { narrow, .. } => Step::Quantize {
            code_value: output.scale as f32,
            max_code: match output.precision {
                Precision::Bipolar => None,
                other => {
                    Some((other.code_range().expect("integer codes").1 - *narrow as i64) as f32)
                }
            },
        },
        Op::MaxPool { size, stride } => Step::MaxPool {
            input: input.shape,
            output: output.shape,
            size: *size,
            stride: *stride,
        },
        Op::Flatten | Op::Input => Step::Identity,
        Op::Output => return Ok(None),
        Op::MultiThreshold(_) | Op::Requantize(_) => return Err(graph.error_of(
            IrKind::Unsupported,
            file,
            node,
            "is already lowered to integers; the float model runs graphs before fold-batch-norm",
        )),
    }))
}

fn run(step: &Step, mut x: Vec<f32>, images: usize) -> Vec<f32> {
    match step {
        Step::Mac {
            input,
            output,
            window,
            weights,
            bias,
        } => {
            let fan_in = window.kernel * window.kernel * input.channels;
            let rows = images * output.height * output.width;
            let mut cols = vec![0f32; rows * fan_in];
            im2col(&x, *input, *output, *window, &mut cols);
            let mut y = vec![0f32; rows * output.channels];
            matmul_serial(
                ArrayView2::from_shape((rows, fan_in), &cols).expect("im2col shape"),
                ArrayView2::from_shape((fan_in, output.channels), weights).expect("weights"),
                ArrayViewMut2::from_shape((rows, output.channels), &mut y).expect("shape"),
            );
            if let Some(bias) = bias {
                add_bias(&mut y, bias);
            }
            y
        }
        Step::Affine { scale, shift } => {
            for row in x.chunks_exact_mut(scale.len()) {
                for ((v, &s), &b) in row.iter_mut().zip(scale).zip(shift) {
                    *v = *v * s + b;
                }
            }
            x
        }
        Step::Quantize {
            code_value,
            max_code,
        } => {
            for v in &mut x {
                *v = match max_code {
                    None if *v >= 0.0 => *code_value,
                    None => -*code_value,
                    Some(max) => (*v / code_value).round_ties_even().clamp(0.0, *max) * code_value,
                };
            }
            x
        }
        Step::Truncate {
            truncation,
            code_value,
            max_code,
        } => {
            let input_step = truncation.input_scale as f32;
            let input_max = truncation.input_max() as f32;
            for v in &mut x {
                let q = (*v / input_step).round_ties_even().clamp(0.0, input_max);
                *v = truncation.code(q as i64, *max_code) as f32 * code_value;
            }
            x
        }
        Step::MaxPool {
            input,
            output,
            size,
            stride,
        } => pool(
            x,
            images,
            (*input, *output),
            (*size, *stride),
            f32::NEG_INFINITY,
            f32::max,
            |m| m,
        ),
        Step::AvgPool {
            input,
            output,
            size,
            stride,
        } => {
            let taps = (size * size) as f32;
            pool(
                x,
                images,
                (*input, *output),
                (*size, *stride),
                0.0,
                |a, b| a + b,
                |sum| sum / taps,
            )
        }
        Step::Add => unreachable!("an add reads two inputs"),
        Step::Identity => x,
    }
}

/// Each channel of every `size` x `size` window (at `stride`, no padding) of `images` HWC
/// feature maps, folded from `start` with `fold`, then `finish`ed.
fn pool(
    x: Vec<f32>,
    images: usize,
    (input, output): (Shape, Shape),
    (size, stride): (usize, usize),
    start: f32,
    fold: impl Fn(f32, f32) -> f32,
    finish: impl Fn(f32) -> f32,
) -> Vec<f32> {
    let c = input.channels;
    let mut y = vec![start; images * output.len()];
    for (image, pooled) in x
        .chunks_exact(input.len())
        .zip(y.chunks_exact_mut(output.len()))
    {
        for oy in 0..output.height {
            for ox in 0..output.width {
                let out = &mut pooled[(oy * output.width + ox) * c..][..c];
                for ky in 0..size {
                    for kx in 0..size {
                        let (iy, ix) = (oy * stride + ky, ox * stride + kx);
                        let src = &image[(iy * input.width + ix) * c..][..c];
                        for (o, &v) in out.iter_mut().zip(src) {
                            *o = fold(*o, v);
                        }
                    }
                }
                for o in out.iter_mut() {
                    *o = finish(*o);
                }
            }
        }
    }
    y
}
