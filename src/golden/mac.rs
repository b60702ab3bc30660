//! Exact integer MACs (dense and convolution) and max-pooling on integer codes.

use ndarray::{ArrayView2, ArrayViewMut2};
use petgraph::stable_graph::NodeIndex;

use super::GoldenError;
use crate::ir::ops::accumulator_bounds;
use crate::ir::{Graph, Op, Precision};
use crate::kernels::gemm::{matmul_serial, Scalar};
use crate::kernels::window::im2col;
use crate::kernels::Window;
use crate::spec::Shape;

/// Largest magnitude every partial sum may have for f32 (f64) arithmetic to be exact.
const F32_EXACT: i64 = 1 << 24;
const F64_EXACT: i64 = 1 << 53;

enum Kernel {
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Bipolar weights on bipolar inputs: bit 1 stands for +1. `[outputs][words]`.
    Xnor(Vec<u64>),
}

pub struct MacPlan {
    input: Shape,
    output: Shape,
    window: Window,
    fan_in: usize,
    kernel: Kernel,
}

impl MacPlan {
    pub fn new(graph: &Graph, node: NodeIndex, file: &str) -> Result<MacPlan, GoldenError> {
        let input = graph.input_type(node).expect("typed");
        let output = graph.output_type(node).expect("typed");
        let Op::Mac {
            kernel,
            stride,
            padding,
            weight_precision,
            weights: Some(weights),
            ..
        } = &graph.graph[node].op
        else {
            return Err(GoldenError::NoWeights {
                file: file.to_string(),
                node: graph.graph[node].name.clone(),
            });
        };
        let fan_in = weights.fan_in;
        let input_range = input.precision.code_range().expect("lowered graph");
        let weight_range = weight_precision.code_range().expect("lowered graph");
        let (min, max) = accumulator_bounds(weight_range, input_range, fan_in);
        let bound = min.abs().max(max.abs());
        let kernel_plan =
            if *weight_precision == Precision::Bipolar && input.precision == Precision::Bipolar {
                Kernel::Xnor(pack_columns(&weights.codes, fan_in, weights.outputs))
            } else if bound < F32_EXACT {
                Kernel::F32(weights.codes.iter().map(|&c| c as f32).collect())
            } else if bound < F64_EXACT {
                Kernel::F64(weights.codes.iter().map(|&c| c as f64).collect())
            } else {
                return Err(GoldenError::Unsupported {
                    file: file.to_string(),
                    node: graph.graph[node].name.clone(),
                    message: format!(
                    "accumulators up to {bound} exceed the 2^53 the golden model computes exactly"
                ),
                });
            };
        Ok(MacPlan {
            input: input.shape,
            output: output.shape,
            window: Window {
                kernel: *kernel,
                stride: *stride,
                padding: *padding,
            },
            fan_in,
            kernel: kernel_plan,
        })
    }

    /// Accumulators `[images * out_h * out_w, outputs]` of codes `[images, h, w, c]`.
    pub fn run(&self, x: &[i64], images: usize, scratch: &mut Scratch) -> Vec<i64> {
        let rows = images * self.output.height * self.output.width;
        let outputs = self.output.channels;
        match &self.kernel {
            Kernel::F32(w) => self.float_product(x, w, rows, outputs, &mut scratch.f32),
            Kernel::F64(w) => self.float_product(x, w, rows, outputs, &mut scratch.f64),
            Kernel::Xnor(w) => self.xnor_product(x, w, rows, outputs),
        }
    }

    fn float_product<T: Scalar>(
        &self,
        x: &[i64],
        w: &[T],
        rows: usize,
        outputs: usize,
        scratch: &mut [Vec<T>; 3],
    ) -> Vec<i64> {
        let [codes, cols, acc] = scratch;
        codes.clear();
        codes.extend(x.iter().map(|&v| T::from_i64(v)));
        // Both buffers are overwritten whole below: what they held does not matter.
        let (cols_len, acc_len) = (rows * self.fan_in, rows * outputs);
        cols.resize(cols_len, T::default());
        acc.resize(acc_len, T::default());
        im2col(
            codes,
            self.input,
            self.output,
            self.window,
            &mut cols[..cols_len],
        );
        matmul_serial(
            ArrayView2::from_shape((rows, self.fan_in), &cols[..cols_len]).expect("im2col shape"),
            ArrayView2::from_shape((self.fan_in, outputs), w).expect("weight shape"),
            ArrayViewMut2::from_shape((rows, outputs), &mut acc[..acc_len]).expect("output shape"),
        );
        acc[..acc_len].iter().map(|&v| v.to_i64()).collect()
    }

    fn xnor_product(&self, x: &[i64], w: &[u64], rows: usize, outputs: usize) -> Vec<i64> {
        // Codes +1 -> bit 1, -1 -> bit 0; padding positions are 0 and excluded by the mask.
        let mut cols = vec![0i64; rows * self.fan_in];
        im2col(x, self.input, self.output, self.window, &mut cols);
        let words = self.fan_in.div_ceil(64);
        let mut acc = Vec::with_capacity(rows * outputs);
        let mut bits = vec![0u64; words];
        let mut valid = vec![0u64; words];
        for row in cols.chunks_exact(self.fan_in) {
            bits.fill(0);
            valid.fill(0);
            for (i, &v) in row.iter().enumerate() {
                if v != 0 {
                    valid[i / 64] |= 1 << (i % 64);
                    if v > 0 {
                        bits[i / 64] |= 1 << (i % 64);
                    }
                }
            }
            let count: i64 = valid.iter().map(|v| v.count_ones() as i64).sum();
            for column in w.chunks_exact(words) {
                let differ: i64 = bits
                    .iter()
                    .zip(&valid)
                    .zip(column)
                    .map(|((&a, &m), &w)| ((a ^ w) & m).count_ones() as i64)
                    .sum();
                acc.push(count - 2 * differ);
            }
        }
        acc
    }
}

/// Buffers a task reuses from one batch of images to the next: codes, im2col rows and
/// accumulators, as f32 and as f64.
#[derive(Default)]
pub struct Scratch {
    f32: [Vec<f32>; 3],
    f64: [Vec<f64>; 3],
}

/// Bipolar weight columns `[fan_in, outputs]` packed per output: bit 1 for +1.
fn pack_columns(codes: &[i32], fan_in: usize, outputs: usize) -> Vec<u64> {
    let words = fan_in.div_ceil(64);
    let mut packed = vec![0u64; outputs * words];
    for i in 0..fan_in {
        for o in 0..outputs {
            if codes[i * outputs + o] > 0 {
                packed[o * words + i / 64] |= 1 << (i % 64);
            }
        }
    }
    packed
}

/// Max-pooling over windows of codes.
pub struct Pool {
    pub input: Shape,
    pub output: Shape,
    pub size: usize,
    pub stride: usize,
}

impl Pool {
    pub fn run(&self, x: &[i64], images: usize) -> Vec<i64> {
        self.fold(x, images, i64::MIN, i64::max)
    }

    /// Each channel of every window, folded from `start` with `fold`.
    fn fold(
        &self,
        x: &[i64],
        images: usize,
        start: i64,
        fold: impl Fn(i64, i64) -> i64,
    ) -> Vec<i64> {
        let windows = (self.input, self.output, self.size, self.stride);
        crate::ir::ops::fold_windows(x, images, windows, start, fold)
    }
}
