//! `maxpool`: the largest code of each channel in each `size` x `size` window (no padding).

use super::{
    onnx_pool_window, onnx_window, onnx_window_output, pool_output, same_codes, Cost, FloatPlan,
    FloatPool, ImportError, OnnxAttributes, OnnxNode, Op, OpRules,
};
use crate::ir::{IrKind, TensorType};
use crate::limits;
use crate::spec::{LayerSpec, MaxPoolSpec, Shape};

pub struct MaxPool {
    pub size: usize,
    pub stride: usize,
}

/// Fused into the layer before it, whose stored outputs are the pool's.
pub(super) const COST: Cost = Cost::StoresOutputs;

/// The max-pool of a spec layer reading codes of type `input`: the same codes, of shape `output`.
pub(super) fn from_spec(
    size: usize,
    stride: usize,
    input: TensorType,
    output: Shape,
) -> (Op, TensorType) {
    (
        Op::MaxPool { size, stride },
        TensorType {
            shape: output,
            ..input
        },
    )
}

/// The max-pool of an ONNX `MaxPool` node reading codes of type `input` (shifted or not: the
/// largest code is the largest value either way).
pub(super) fn from_onnx(
    node: &dyn OnnxAttributes,
    input: TensorType,
    _shifted: bool,
) -> Result<(Op, TensorType), ImportError> {
    if node.outputs() > 1 {
        return Err(ImportError::Invalid("indices are not supported".into()));
    }
    let (size, stride) = onnx_pool_window(node)?;
    let output = onnx_window_output(input.shape, size, stride)?;
    Ok(from_spec(size, stride, input, output))
}

impl OpRules for MaxPool {
    fn name(&self) -> &'static str {
        "maxpool"
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        pool_output(input, self.size, self.stride)
    }

    fn infer_output(&self, inputs: &[TensorType], out: &mut TensorType) -> Result<(), String> {
        out.precision = inputs[0].precision;
        out.scale = inputs[0].scale;
        Ok(())
    }

    fn check(&self, inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        same_codes(inputs[0], out)
    }

    fn describe(&self) -> String {
        format!("maxpool size={} stride={}", self.size, self.stride)
    }

    fn colour(&self) -> &'static str {
        "#cceecc"
    }

    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![
            ("size", self.size, limits::MAX_WINDOW),
            ("stride", self.stride, limits::MAX_WINDOW),
        ]
    }

    fn onnx_node(&self, _input: TensorType, _output: TensorType) -> Option<OnnxNode> {
        Some(onnx_window("MaxPool", self.size, self.stride))
    }

    fn float_plan(&self, input: TensorType, output: TensorType) -> FloatPlan {
        FloatPlan::Step(Box::new(FloatPool {
            input: input.shape,
            output: output.shape,
            size: self.size,
            stride: self.stride,
            start: f32::NEG_INFINITY,
            fold: f32::max,
            finish: |m| m,
        }))
    }

    fn cost(&self, _input: TensorType, _output: TensorType) -> Cost {
        COST
    }

    fn spec_layer(
        &self,
        name: Option<String>,
        _reads: &[&str],
        _output: TensorType,
    ) -> Option<LayerSpec> {
        Some(LayerSpec::MaxPool(MaxPoolSpec {
            name,
            size: self.size,
            stride: Some(self.stride),
        }))
    }
}
