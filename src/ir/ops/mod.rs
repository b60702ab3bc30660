//! Each IR operation in a file of its own, holding what the op means to every stage that asks:
//! its name and arity, its output shape and type, the precision of what it accumulates, the
//! checks of the verifier, its line in the listing, its cost in the energy model, what the
//! float and golden models compute for it, and its ONNX node. [`rules`] is the one place that
//! maps an [`Op`] to its rules; the stages call it (or [`Op::rules`]) instead of matching on
//! every op.

mod add;
mod avg_pool;
mod batch_norm;
mod flatten;
mod input;
mod mac;
mod max_pool;
mod multi_threshold;
mod output;
mod quantize;
mod requantize;

pub use add::{add_shifts, add_type, MAX_ADD_SHIFT};
pub use avg_pool::window_sum_type;
pub use mac::accumulator_bounds;

use serde::{Deserialize, Serialize};

use super::{
    BatchNormParams, IrKind, Precision, Requantization, TensorType, ThresholdTable, Truncation,
    Weights,
};
use crate::spec::{self, LayerSpec, Shape};

/// An operation of the IR, as the IR file stores it (its `kind` and parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Op {
    /// The image: 8-bit unsigned pixels.
    Input,
    /// Convolution (dense when `kernel` is 1 on a 1x1 input) producing integer accumulators.
    /// `weights` is `None` in a graph built from a spec alone.
    Mac {
        dense: bool,
        kernel: usize,
        stride: usize,
        padding: usize,
        outputs: usize,
        weight_precision: Precision,
        weights: Option<Weights>,
        /// Float bias, folded into the next threshold or requantization.
        bias: Option<Vec<f32>>,
    },
    BatchNorm(BatchNormParams),
    /// The activation quantizer of training (quantized ReLU, or sign for one bit): unsigned
    /// codes `round(z / s)` clamped to `bits` bits, `s` the scale on its output edge.
    Quantize {
        bits: u32,
        /// A truncation of the codes (QONNX's Trunc) that follows the quantizer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        truncation: Option<Truncation>,
        /// Narrow range: the largest code is `2^bits - 2` (QONNX's unsigned narrow `Quant`;
        /// a signed narrow quantizer is imported as these codes shifted by `2^(bits-1) - 1`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        narrow: bool,
    },
    MultiThreshold(ThresholdTable),
    Requantize(Requantization),
    MaxPool {
        size: usize,
        stride: usize,
    },
    /// Average pooling as a window sum: each output is the sum of the codes in its
    /// `size` x `size` window, with the scale `s / size^2` on its output edge (`s` the input's),
    /// so that its value is the average. The quantizer that follows folds the division in.
    AvgPool {
        size: usize,
        stride: usize,
    },
    /// The element-wise sum of two code tensors of one shape (input 0 the main path, input 1
    /// the skip connection), each shifted left by its `shifts` entry to the common scale on the
    /// output edge. The quantizer that follows requantizes the sums.
    Add {
        shifts: [u32; 2],
    },
    Flatten,
    /// Integer logits; the class is their argmax (the first on ties).
    Output,
}

impl Op {
    /// What the op means to the stages: see [`OpRules`].
    pub fn rules(&self) -> Box<dyn OpRules + '_> {
        rules(self)
    }

    /// The number of tensors the op reads.
    pub fn arity(&self) -> usize {
        self.rules().arity()
    }

    pub fn name(&self) -> &'static str {
        self.rules().name()
    }
}

/// What an operation means to the stages of the compiler. Every method but `name` and `colour`
/// has the default of an op of one input that passes its values on unchanged, checks nothing
/// and costs nothing.
pub trait OpRules {
    /// The op's name in listings and messages ("conv2d", "avgpool", ...).
    fn name(&self) -> &'static str;

    /// The number of tensors the op reads.
    fn arity(&self) -> usize {
        1
    }

    /// The op's sizes the verifier bounds (docs/limits.md): `(name, value, limit)`.
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        Vec::new()
    }

    /// The shape the op produces from a (non-empty) `input`, or why it cannot.
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }

    /// What `shape-inference` sets on the output beyond its shape (already in `out`), from the
    /// types the op reads: the precision and scale of ops that keep their input's codes, the
    /// scale of sums.
    fn infer_output(&self, _inputs: &[TensorType], _out: &mut TensorType) -> Result<(), String> {
        Ok(())
    }

    /// Whether the op produces integer sums (MAC accumulators, window sums, adds), onto which
    /// `fold-batch-norm` folds the batch norm and quantizer that follow.
    fn accumulates(&self) -> bool {
        false
    }

    /// The integer precision of what the op accumulates (MAC accumulators, window sums, adds),
    /// as `infer-accumulators` sizes it, or `None` when the op accumulates nothing.
    fn accumulator(&self, _inputs: &[TensorType]) -> Option<Result<Precision, String>> {
        None
    }

    /// The verifier's checks of the op's parameters against the types it reads and the type it
    /// produces (whose shape is already checked against `output_shape`).
    fn check(&self, _inputs: &[TensorType], _out: TensorType) -> Result<(), (IrKind, String)> {
        Ok(())
    }

    /// One line about the op and its attributes, as the listing shows it.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// The fill of the op's node in DOT (light, so that labels stay legible).
    fn colour(&self) -> &'static str;

    /// What the op costs in the energy model, reading `input` (its first input) and producing
    /// `output`.
    fn cost(&self, _input: TensorType, _output: TensorType) -> Cost {
        Cost::Free
    }

    /// What the float model ([`crate::ir::float_model`]) computes for the op, reading `input`
    /// (its first input) and producing `output`; the values pass unchanged by default.
    fn float_plan(&self, _input: TensorType, _output: TensorType) -> FloatPlan {
        FloatPlan::Step(Box::new(Unchanged))
    }

    /// What the golden model computes for the op in a lowered graph, reading `input` (its
    /// first input) and producing `output`; `None` for the ops it computes itself (MACs,
    /// thresholds, requantization and max-pools, which it fuses and packs for speed) and those
    /// a lowered graph does not hold.
    fn integer_step(
        &self,
        _input: TensorType,
        _output: TensorType,
    ) -> Option<Box<dyn IntegerStep>> {
        None
    }

    /// The standard ONNX node QONNX export writes for the op (on the tensors it reads, named
    /// after it), or `None` when the exporter writes the op itself (MACs with their weights,
    /// batch norms, quantizers, flatten) or refuses it (lowered ops).
    fn onnx_node(&self, _input: TensorType, _output: TensorType) -> Option<OnnxNode> {
        None
    }

    /// The spec layer named `name` that describes the op (`reads`: the names of the nodes it
    /// reads, `output`: the type it produces), or `None` for the ops a spec cannot describe
    /// (lowered ones).
    fn spec_layer(
        &self,
        _name: Option<String>,
        _reads: &[&str],
        _output: TensorType,
    ) -> Option<LayerSpec> {
        None
    }
}

/// A standard ONNX node: its op type and integer-list attributes, in the order written.
pub struct OnnxNode {
    pub op_type: &'static str,
    pub attributes: Vec<(&'static str, Vec<i64>)>,
}

/// The ONNX node of a `size` x `size` window at `stride` (kernel shape and strides).
fn onnx_window(op_type: &'static str, size: usize, stride: usize) -> OnnxNode {
    let (k, s) = (size as i64, stride as i64);
    OnnxNode {
        op_type,
        attributes: vec![("kernel_shape", vec![k, k]), ("strides", vec![s, s])],
    }
}

/// One op of the float model, compiled for the types it reads and produces.
pub trait FloatStep: Send + Sync {
    /// The op's outputs for `images` images, from the values of its first input (`x`, moved in
    /// so that element-wise ops can work in place) and of its other inputs.
    fn run(&self, x: Vec<f32>, others: &[&[f32]], images: usize) -> Vec<f32>;
}

/// What the float model makes of an op.
pub enum FloatPlan {
    Step(Box<dyn FloatStep>),
    /// The node whose input is the model's logits.
    Logits,
    /// A MAC without trained weights.
    NoWeights,
    /// An op that exists only after lowering; the float model runs graphs before it.
    Lowered,
}

/// The values pass unchanged (input, flatten; HWC data is already in flat order).
struct Unchanged;

impl FloatStep for Unchanged {
    fn run(&self, x: Vec<f32>, _others: &[&[f32]], _images: usize) -> Vec<f32> {
        x
    }
}

/// A pooling of each channel over `size` x `size` windows (at `stride`, no padding) of HWC
/// feature maps of shape `input`, into `output`, in the float model: each window folded from
/// `start` with `fold`, then `finish`ed.
struct FloatPool<Fold, Finish> {
    input: Shape,
    output: Shape,
    size: usize,
    stride: usize,
    start: f32,
    fold: Fold,
    finish: Finish,
}

impl<Fold, Finish> FloatStep for FloatPool<Fold, Finish>
where
    Fold: Fn(f32, f32) -> f32 + Send + Sync,
    Finish: Fn(f32) -> f32 + Send + Sync,
{
    fn run(&self, x: Vec<f32>, _others: &[&[f32]], images: usize) -> Vec<f32> {
        let windows = (self.input, self.output, self.size, self.stride);
        let mut y = fold_windows(&x, images, windows, self.start, &self.fold);
        for v in &mut y {
            *v = (self.finish)(*v);
        }
        y
    }
}

/// Each channel of every `size` x `size` window (at `stride`, no padding) of `images` HWC
/// feature maps of shape `input`, folded from `start` with `fold`, window rows then columns,
/// into feature maps of shape `output`.
pub(crate) fn fold_windows<T: Copy>(
    x: &[T],
    images: usize,
    (input, output, size, stride): (Shape, Shape, usize, usize),
    start: T,
    fold: impl Fn(T, T) -> T,
) -> Vec<T> {
    let c = input.channels;
    let mut y = vec![start; images * output.len()];
    for (image, out_image) in x
        .chunks_exact(input.len())
        .zip(y.chunks_exact_mut(output.len()))
    {
        for (o, out) in out_image.chunks_exact_mut(c).enumerate() {
            let (oy, ox) = (o / output.width, o % output.width);
            for ky in 0..size {
                let row = (oy * stride + ky) * input.width;
                for kx in 0..size {
                    let at = (row + ox * stride + kx) * c;
                    for (folded, &v) in out.iter_mut().zip(&image[at..at + c]) {
                        *folded = fold(*folded, v);
                    }
                }
            }
        }
    }
    y
}

/// One op of the golden model, on integer codes.
pub trait IntegerStep: Send + Sync {
    /// The op's output codes for `images` images, from the codes of its first input (`x`) and
    /// of its other inputs.
    fn run(&self, x: &[i64], others: &[&[i64]], images: usize) -> Vec<i64>;
}

impl IntegerStep for Unchanged {
    fn run(&self, x: &[i64], _others: &[&[i64]], _images: usize) -> Vec<i64> {
        x.to_vec()
    }
}

/// What a node is to the energy model ([`crate::energy::work_of_graph`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A layer of its own (MACs, average pools, adds): `macs` accumulations and `weights`
    /// weights of `wbits` bits, computing and storing its outputs.
    Layer { macs: u64, weights: u64, wbits: u32 },
    /// Fused into the layer before it, whose stored outputs are this op's (a max-pool).
    StoresOutputs,
    /// Fused into the layer before it: the first such op after a layer sets the bits of the
    /// outputs it stores (quantizers, thresholds, clamped requantization).
    Quantizes,
    /// Nothing in the model.
    Free,
}

/// The cost of a sum of `taps` inputs an output (window sums, adds) producing `output`: one
/// accumulation of a one-bit mask an input, no weights stored.
fn sum_cost(taps: u64, output: Shape) -> Cost {
    Cost::Layer {
        macs: taps * output.len() as u64,
        weights: 0,
        wbits: crate::energy::work::SUM_WEIGHT_BITS,
    }
}

/// The layers whose ops accumulate ([`OpRules::accumulates`]), as messages name them.
pub const ACCUMULATING_LAYERS: &str = "conv2d, dense, avgpool or add";

/// The rules of `op`: the one place that maps each op to its file.
pub fn rules(op: &Op) -> Box<dyn OpRules + '_> {
    match op {
        Op::Input => Box::new(input::Input),
        Op::Mac {
            dense,
            kernel,
            stride,
            padding,
            outputs,
            weight_precision,
            weights,
            bias,
        } => Box::new(mac::Mac {
            dense: *dense,
            kernel: *kernel,
            stride: *stride,
            padding: *padding,
            outputs: *outputs,
            weight_precision: *weight_precision,
            weights: weights.as_ref(),
            bias: bias.as_deref(),
        }),
        Op::BatchNorm(params) => Box::new(batch_norm::BatchNorm(params)),
        Op::Quantize {
            bits,
            truncation,
            narrow,
        } => Box::new(quantize::Quantize {
            bits: *bits,
            truncation: *truncation,
            narrow: *narrow,
        }),
        Op::MultiThreshold(table) => Box::new(multi_threshold::MultiThreshold(table)),
        Op::Requantize(requantization) => Box::new(requantize::Requantize(requantization)),
        Op::MaxPool { size, stride } => Box::new(max_pool::MaxPool {
            size: *size,
            stride: *stride,
        }),
        Op::AvgPool { size, stride } => Box::new(avg_pool::AvgPool {
            size: *size,
            stride: *stride,
        }),
        Op::Add { shifts } => Box::new(add::Add { shifts: *shifts }),
        Op::Flatten => Box::new(flatten::Flatten),
        Op::Output => Box::new(output::Output),
    }
}

/// The IR op a spec layer that needs nothing learnt becomes (window ops, adds, flatten), and
/// the type it produces from the types it reads (`inputs`: the previous layer's output, then
/// the output of the layer an add reads again), or why it cannot be made. `None` for the
/// layers the builder makes from learnt parameters or a precision of the spec (MACs, batch
/// norms, activation quantizers).
pub fn from_spec(
    op: spec::Op,
    inputs: &[TensorType],
    output: Shape,
) -> Option<Result<(Op, TensorType), String>> {
    match op {
        spec::Op::MaxPool { size, stride } => {
            Some(Ok(max_pool::from_spec(size, stride, inputs[0], output)))
        }
        spec::Op::AvgPool { size, stride } => {
            Some(avg_pool::from_spec(size, stride, inputs[0], output))
        }
        spec::Op::Add { .. } => Some(add::from_spec(inputs[0], inputs[1])),
        spec::Op::Flatten => Some(Ok(flatten::from_spec(inputs[0], output))),
        spec::Op::Conv2d { .. }
        | spec::Op::Dense { .. }
        | spec::Op::BatchNorm
        | spec::Op::Act { .. } => None,
    }
}

/// What a spec layer producing `output` costs in the energy model, as the IR op it becomes
/// prices it, for the layers whose cost needs no precision; `None` for MACs and activation
/// quantizers, whose precisions a spec may leave float.
pub fn spec_cost(op: spec::Op, output: Shape) -> Option<Cost> {
    match op {
        spec::Op::MaxPool { .. } => Some(max_pool::COST),
        spec::Op::AvgPool { size, .. } => Some(avg_pool::window_sums_cost(size, output)),
        spec::Op::Add { .. } => Some(add::sums_cost(output)),
        spec::Op::BatchNorm | spec::Op::Flatten => Some(Cost::Free),
        spec::Op::Conv2d { .. } | spec::Op::Dense { .. } | spec::Op::Act { .. } => None,
    }
}

/// The spec's precision of integer codes of `precision`, `None` for float.
fn spec_precision(precision: Precision) -> Option<spec::Precision> {
    match precision {
        Precision::Bipolar => Some(spec::Precision::Bits(1)),
        Precision::Int { bits, .. } => spec::Precision::from_bits(bits as i64).ok(),
        Precision::Float => None,
    }
}

/// A standard ONNX node as QONNX import shows it to an op's import function: its op type, the
/// number of its outputs and its attributes.
pub trait OnnxAttributes {
    fn op_type(&self) -> &str;
    fn outputs(&self) -> usize;
    /// An integer attribute, or `default` when the node has none of that name.
    fn int(&self, name: &str, default: i64) -> i64;
    fn ints(&self, name: &str) -> Option<Vec<i64>>;
    /// The bytes of a string attribute.
    fn string(&self, name: &str) -> Option<&[u8]>;
}

/// Why an op cannot be made of an ONNX node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// Attributes or codes the op cannot take.
    Invalid(String),
    /// An input shape the op cannot take.
    Shape(String),
}

/// The op and the type it produces made of an ONNX node reading codes of a type (`shifted`:
/// signed codes that import keeps shifted by an offset, the next MAC taking it in its bias).
pub type OnnxImport =
    fn(&dyn OnnxAttributes, TensorType, bool) -> Result<(Op, TensorType), ImportError>;

/// How QONNX import makes one op of a standard ONNX node that reads an NCHW feature map.
pub struct OnnxImporter {
    pub op_type: &'static str,
    /// The IR name of a node that has no name of its own.
    pub fallback_name: &'static str,
    pub import: OnnxImport,
}

/// The standard ONNX ops each imported as one op by the op's own function, in the order the
/// list of supported ops names them: the one place that maps those ONNX op types to ops. Import
/// reads the others itself (it folds chains of several nodes into one op, or into none).
pub const ONNX_IMPORTS: &[OnnxImporter] = &[
    OnnxImporter {
        op_type: "MaxPool",
        fallback_name: "pool",
        import: max_pool::from_onnx,
    },
    OnnxImporter {
        op_type: "AveragePool",
        fallback_name: "avgpool",
        import: avg_pool::from_onnx,
    },
    OnnxImporter {
        op_type: "GlobalAveragePool",
        fallback_name: "avgpool",
        import: avg_pool::from_onnx,
    },
];

/// How import makes an op of a standard ONNX node of `op_type`, if one op does.
pub fn onnx_importer(op_type: &str) -> Option<&'static OnnxImporter> {
    ONNX_IMPORTS
        .iter()
        .find(|importer| importer.op_type == op_type)
}

/// The window side and stride of an ONNX pool (MaxPool, AveragePool): square, one stride, no
/// padding, floor mode, no dilation.
fn onnx_pool_window(node: &dyn OnnxAttributes) -> Result<(usize, usize), ImportError> {
    let fail = |m: &str| Err(ImportError::Invalid(m.into()));
    let kernel = node.ints("kernel_shape").unwrap_or_default();
    let strides = node.ints("strides").unwrap_or(vec![1, 1]);
    let pads = node.ints("pads").unwrap_or(vec![0; 4]);
    if kernel.len() != 2 || kernel[0] != kernel[1] || kernel[0] < 1 {
        return fail("only square 2-D windows are supported");
    }
    if strides.len() != 2 || strides[0] != strides[1] || strides[0] < 1 {
        return fail("strides must be equal in both dimensions");
    }
    let auto_pad = node.string("auto_pad").unwrap_or_default();
    if !matches!(auto_pad, b"" | b"NOTSET" | b"VALID")
        || pads.iter().any(|&p| p != 0)
        || node.int("ceil_mode", 0) != 0
        || node
            .ints("dilations")
            .is_some_and(|d| d.iter().any(|&v| v != 1))
    {
        return fail("padding (auto_pad too), ceil_mode and dilations are not supported");
    }
    Ok((kernel[0] as usize, strides[0] as usize))
}

/// The output shape of an ONNX pool of `size` x `size` windows at `stride` over `input`.
fn onnx_window_output(input: Shape, size: usize, stride: usize) -> Result<Shape, ImportError> {
    if size > input.height || size > input.width {
        return Err(ImportError::Shape(
            "the window is larger than the input".into(),
        ));
    }
    pool_output(input, size, stride).map_err(ImportError::Invalid)
}

/// The output size `(height, width)` of `size` x `size` windows at `stride` over `input`
/// padded by `padding` on every side, or why they do not fit.
fn window(
    input: Shape,
    size: usize,
    stride: usize,
    padding: usize,
) -> Result<(usize, usize), String> {
    let (h, w) = (input.height + 2 * padding, input.width + 2 * padding);
    if size == 0 || stride == 0 || padding >= size || size > h || size > w {
        return Err(format!(
            "window {size}x{size} with stride {stride} does not fit {input} padded by {padding}"
        ));
    }
    Ok(((h - size) / stride + 1, (w - size) / stride + 1))
}

/// The output shape of a pool of `size` x `size` windows at `stride` over `input` (no
/// padding): every channel pooled on its own.
fn pool_output(input: Shape, size: usize, stride: usize) -> Result<Shape, String> {
    let (height, width) = window(input, size, stride, 0)?;
    Ok(Shape {
        height,
        width,
        channels: input.channels,
    })
}

/// The narrowest integer holding every value in `[min, max]`: unsigned when none is negative.
pub fn sum_precision(min: i64, max: i64) -> Precision {
    if min >= 0 {
        Precision::unsigned((64 - max.leading_zeros()).max(1))
    } else {
        Precision::signed_for_range(min, max)
    }
}

/// The code range of a tensor a sum reads, or why it cannot be summed.
fn sum_codes(ty: TensorType) -> Result<(i64, i64), String> {
    match ty.precision {
        Precision::Int { bits, .. } if bits > 16 => Err(format!(
            "reads {} values; sums take activation codes of at most 16 bits",
            ty.precision
        )),
        other => other
            .code_range()
            .ok_or_else(|| "reads float values; put an activation quantizer before it".into()),
    }
}

/// A sum's output edge has the scale of its sums and a precision that holds them all.
fn check_sums(sums: TensorType, out: TensorType) -> Result<(), String> {
    if out.scale != sums.scale {
        return Err(format!(
            "sums are worth {:e} a unit, not the {:e} on its output",
            sums.scale, out.scale
        ));
    }
    let range = sums.precision.code_range().expect("integer sums");
    let holds = match (out.precision, out.precision.code_range()) {
        (Precision::Int { .. }, Some((min, max))) => min <= range.0 && range.1 <= max,
        _ => false,
    };
    if !holds {
        return Err(format!(
            "sums {}..={} do not fit {}; they need {}",
            range.0, range.1, out.precision, sums.precision
        ));
    }
    Ok(())
}

/// An op that passes its input's codes on unchanged keeps their precision.
fn same_codes(input: TensorType, output: TensorType) -> Result<(), (IrKind, String)> {
    if input.precision != output.precision {
        return Err((
            IrKind::Type,
            format!(
                "must keep the precision of its input ({}), not {}",
                input.precision, output.precision
            ),
        ));
    }
    Ok(())
}

/// An integer width the IR can hold.
pub(crate) fn check_precision(precision: Precision) -> Result<(), String> {
    match precision {
        Precision::Int { bits, .. } if !(1..=63).contains(&bits) => {
            Err(format!("integer width {bits} is out of range 1..=63"))
        }
        _ => Ok(()),
    }
}

/// A type error of the verifier.
fn type_error(message: String) -> (IrKind, String) {
    (IrKind::Type, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Requantization, ThresholdTable};

    /// One op of each kind.
    fn every_op() -> Vec<Op> {
        let pool = (2, 2);
        vec![
            Op::Input,
            Op::Mac {
                dense: false,
                kernel: 3,
                stride: 1,
                padding: 1,
                outputs: 4,
                weight_precision: Precision::signed(4),
                weights: None,
                bias: None,
            },
            Op::BatchNorm(crate::ir::BatchNormParams {
                gamma: vec![1.0],
                beta: vec![0.0],
                mean: vec![0.0],
                var: vec![1.0],
                epsilon: 1e-5,
            }),
            Op::Quantize {
                bits: 2,
                truncation: None,
                narrow: false,
            },
            Op::MultiThreshold(ThresholdTable {
                thresholds: vec![vec![1]],
                descending: vec![false],
            }),
            Op::Requantize(Requantization {
                multiplier: vec![1],
                offset: vec![0],
                shift: 0,
                clamp: None,
            }),
            Op::MaxPool {
                size: pool.0,
                stride: pool.1,
            },
            Op::AvgPool {
                size: pool.0,
                stride: pool.1,
            },
            Op::Add { shifts: [0, 1] },
            Op::Flatten,
            Op::Output,
        ]
    }

    #[test]
    fn every_op_is_registered_under_its_own_name_and_colour() {
        let ops = every_op();
        let names: Vec<_> = ops.iter().map(Op::name).collect();
        assert_eq!(
            names,
            [
                "input",
                "conv2d",
                "batchnorm",
                "quantize",
                "multithreshold",
                "requantize",
                "maxpool",
                "avgpool",
                "add",
                "flatten",
                "output"
            ]
        );
        let colours: Vec<_> = ops.iter().map(|op| op.rules().colour()).collect();
        assert_eq!(
            colours,
            [
                "#dddddd", "#bbddff", "#eeccee", "#ffccbb", "#ffddaa", "#ffeeaa", "#cceecc",
                "#ddffdd", "#ccf0f0", "#eeeeee", "#dddddd"
            ]
        );
        let arities: Vec<_> = ops.iter().map(Op::arity).collect();
        assert_eq!(arities, [0, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1]);
        let accumulating: Vec<_> = ops
            .iter()
            .filter(|op| op.rules().accumulates())
            .map(Op::name)
            .collect();
        assert_eq!(accumulating, ["conv2d", "avgpool", "add"]);
        for name in accumulating.iter().chain(&["dense"]) {
            assert!(ACCUMULATING_LAYERS.contains(name), "{name}");
        }
    }

    #[test]
    fn ops_that_accumulate_say_what_precision_and_others_do_not() {
        let codes = crate::ir::build::quantizer_type(Shape::flat(4), 2, 0.25);
        for op in every_op() {
            let rules = op.rules();
            let inputs = vec![codes; rules.arity()];
            assert_eq!(
                rules.accumulator(&inputs).is_some(),
                rules.accumulates(),
                "{}",
                rules.name()
            );
        }
    }
}
