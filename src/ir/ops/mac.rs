//! `conv2d` and `dense`: a convolution (dense when `kernel` is 1 on a flat input) of integer
//! codes with integer weight codes, producing integer accumulators; its float bias is folded
//! into the threshold or requantization after it.

use super::{
    check_precision, spec_precision, type_error, window, Cost, FloatPlan, FloatStep, OpRules,
};
use crate::ir::{IrKind, Precision, TensorType, Weights};
use crate::kernels::gemm::matmul_serial;
use crate::kernels::window::{add_bias, im2col};
use crate::kernels::Window;
use crate::limits;
use crate::spec::{Conv2dSpec, DenseSpec, LayerSpec, Shape};
use ndarray::{ArrayView2, ArrayViewMut2};

pub struct Mac<'a> {
    pub dense: bool,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub outputs: usize,
    pub weight_precision: Precision,
    pub weights: Option<&'a Weights>,
    pub bias: Option<&'a [f32]>,
}

/// Smallest and largest value of a sum of `fan_in` products of codes in the two ranges.
pub fn accumulator_bounds(weights: (i64, i64), inputs: (i64, i64), fan_in: usize) -> (i64, i64) {
    let products = [
        weights.0 * inputs.0,
        weights.0 * inputs.1,
        weights.1 * inputs.0,
        weights.1 * inputs.1,
    ];
    let min = *products.iter().min().expect("four products");
    let max = *products.iter().max().expect("four products");
    (min * fan_in as i64, max * fan_in as i64)
}

/// The float model's convolution: im2col, then a product with the weights' values.
struct FloatMac {
    input: Shape,
    output: Shape,
    window: Window,
    /// `[fan_in, outputs]`: `code * step`.
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl FloatStep for FloatMac {
    fn run(&self, x: Vec<f32>, _others: &[&[f32]], images: usize) -> Vec<f32> {
        let (input, output) = (self.input, self.output);
        let fan_in = self.window.kernel * self.window.kernel * input.channels;
        let rows = images * output.height * output.width;
        let mut cols = vec![0f32; rows * fan_in];
        im2col(&x, input, output, self.window, &mut cols);
        let mut y = vec![0f32; rows * output.channels];
        matmul_serial(
            ArrayView2::from_shape((rows, fan_in), &cols).expect("im2col shape"),
            ArrayView2::from_shape((fan_in, output.channels), &self.weights).expect("weights"),
            ArrayViewMut2::from_shape((rows, output.channels), &mut y).expect("shape"),
        );
        if let Some(bias) = &self.bias {
            add_bias(&mut y, bias);
        }
        y
    }
}

impl OpRules for Mac<'_> {
    fn name(&self) -> &'static str {
        if self.dense {
            "dense"
        } else {
            "conv2d"
        }
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let (kernel, stride, padding) = (self.kernel, self.stride, self.padding);
        if self.outputs == 0 {
            return Err("a MAC needs at least one output".into());
        }
        if self.dense {
            if !input.is_flat() {
                return Err(format!("dense needs a flat input, not {input}"));
            }
            if (kernel, stride, padding) != (1, 1, 0) {
                return Err(format!(
                    "dense takes kernel 1, stride 1, padding 0, not {kernel}, {stride}, {padding}"
                ));
            }
            return Ok(Shape::flat(self.outputs));
        }
        let (height, width) = window(input, kernel, stride, padding)?;
        Ok(Shape {
            height,
            width,
            channels: self.outputs,
        })
    }

    /// The narrowest signed integer holding the worst case: `fan_in` products each at the
    /// extreme of weight code times input code over the declared precisions.
    fn accumulator(&self, inputs: &[TensorType]) -> Option<Result<Precision, String>> {
        let input = inputs[0];
        let Some(codes) = input.precision.code_range() else {
            return Some(Err(
                "reads float values; put an activation quantizer before it".into(),
            ));
        };
        let Some(weights) = self.weight_precision.code_range() else {
            return Some(Err("weights must be integer codes".into()));
        };
        let fan_in = self.kernel * self.kernel * input.shape.channels;
        let (min, max) = accumulator_bounds(weights, codes, fan_in);
        Some(Ok(Precision::signed_for_range(min, max)))
    }

    fn check(&self, inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        let (input, channels) = (inputs[0], out.shape.channels);
        let weight_precision = self.weight_precision;
        check_precision(weight_precision).map_err(type_error)?;
        if let Some(bias) = self.bias {
            if bias.len() != channels || bias.iter().any(|b| !b.is_finite()) {
                return Err(type_error(format!("bias needs {channels} finite values")));
            }
        }
        let Some(w) = self.weights else {
            return Ok(());
        };
        // Bounded: kernel by MAX_WINDOW, channels by MAX_TENSOR_LEN.
        let fan_in = self.kernel * self.kernel * input.shape.channels;
        let codes = fan_in.checked_mul(channels);
        if w.fan_in != fan_in || w.outputs != channels || Some(w.codes.len()) != codes {
            return Err(type_error(format!(
                "weights are {}x{} with {} codes but the layer needs {fan_in}x{channels}",
                w.fan_in,
                w.outputs,
                w.codes.len()
            )));
        }
        if !(w.step.is_finite() && w.step > 0.0) {
            return Err(type_error(format!(
                "weight step {} must be finite and positive",
                w.step
            )));
        }
        let (min, max) = weight_precision
            .code_range()
            .ok_or_else(|| type_error("weights must be integer codes, not float".into()))?;
        if let Some((i, &code)) = w.codes.iter().enumerate().find(|(_, &c)| {
            let c = c as i64;
            c < min || c > max || (weight_precision == Precision::Bipolar && c == 0)
        }) {
            return Err(type_error(format!(
                "weight code {code} at index {i} does not fit its declared precision {weight_precision} ({min}..={max})"
            )));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let (kernel, stride, padding, outputs) =
            (self.kernel, self.stride, self.padding, self.outputs);
        let mut text = if self.dense {
            format!("dense units={outputs}")
        } else {
            format!("conv2d filters={outputs} kernel={kernel} stride={stride} padding={padding}")
        };
        text += &format!(" weights={}", self.weight_precision);
        if let Some(w) = self.weights {
            text += &format!(" [{}x{}] step={:.6e}", w.fan_in, w.outputs, w.step);
        }
        if self.bias.is_some() {
            text += " bias";
        }
        text
    }

    fn colour(&self) -> &'static str {
        if self.dense {
            "#99bbee"
        } else {
            "#bbddff"
        }
    }

    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![
            ("kernel", self.kernel, limits::MAX_WINDOW),
            ("stride", self.stride, limits::MAX_WINDOW),
            ("padding", self.padding, limits::MAX_WINDOW),
            ("outputs", self.outputs, limits::MAX_WIDTH),
        ]
    }

    fn accumulates(&self) -> bool {
        true
    }

    /// Weights as `code * step`, in f32.
    fn float_plan(&self, input: TensorType, output: TensorType) -> FloatPlan {
        let Some(weights) = self.weights else {
            return FloatPlan::NoWeights;
        };
        FloatPlan::Step(Box::new(FloatMac {
            input: input.shape,
            output: output.shape,
            window: Window {
                kernel: self.kernel,
                stride: self.stride,
                padding: self.padding,
            },
            weights: weights
                .codes
                .iter()
                .map(|&c| (c as f64 * weights.step) as f32)
                .collect(),
            bias: self.bias.map(<[f32]>::to_vec),
        }))
    }

    fn cost(&self, input: TensorType, output: TensorType) -> Cost {
        let fan_in = if self.dense {
            input.shape.len() as u64
        } else {
            (self.kernel * self.kernel * input.shape.channels) as u64
        };
        Cost::Layer {
            macs: output.shape.len() as u64 * fan_in,
            weights: output.shape.channels as u64 * fan_in,
            wbits: self.weight_precision.storage_bits(),
        }
    }

    fn spec_layer(
        &self,
        name: Option<String>,
        _reads: &[&str],
        _output: TensorType,
    ) -> Option<LayerSpec> {
        let (wbits, bias) = (spec_precision(self.weight_precision), self.bias.is_some());
        Some(if self.dense {
            LayerSpec::Dense(DenseSpec {
                name,
                units: self.outputs,
                wbits,
                bias,
            })
        } else {
            LayerSpec::Conv2d(Conv2dSpec {
                name,
                filters: self.outputs,
                kernel: self.kernel,
                stride: self.stride,
                padding: self.padding,
                wbits,
                bias,
            })
        })
    }
}
