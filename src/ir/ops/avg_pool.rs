//! `avgpool`: average pooling as a window sum. Each output is the sum of the codes of its
//! channel in a `size` x `size` window (no padding), worth `s / size^2` a unit (`s` the input's
//! scale), so that its value is the window's average; the quantizer that follows folds the
//! division in.

use super::{
    check_sums, fold_windows, onnx_pool_window, onnx_window, onnx_window_output, pool_output,
    sum_codes, sum_cost, sum_precision, type_error, Cost, FloatPlan, FloatPool, ImportError,
    IntegerStep, OnnxAttributes, OnnxNode, Op, OpRules,
};
use crate::ir::{IrKind, Precision, TensorType};
use crate::limits;
use crate::spec::{AvgPoolSpec, LayerSpec, Shape};

pub struct AvgPool {
    pub size: usize,
    pub stride: usize,
}

/// What an average pool of `size` x `size` windows makes of codes of type `input`: window sums
/// of shape `output`, worth `s / size^2` a unit (`s` the input's scale), so that a sum's value is
/// the window's average.
pub fn window_sum_type(
    input: TensorType,
    size: usize,
    output: Shape,
) -> Result<TensorType, String> {
    let (min, max) = sum_codes(input)?;
    let taps = size
        .checked_mul(size)
        .filter(|&t| t > 0 && t <= limits::MAX_WINDOW * limits::MAX_WINDOW)
        .ok_or_else(|| format!("window {size}x{size} is out of range"))? as i64;
    Ok(TensorType {
        shape: output,
        precision: sum_precision(min * taps, max * taps),
        scale: input.scale / (taps as f64),
    })
}

/// The average pool of a spec layer, reading codes of type `input` and producing window sums of
/// shape `output`.
pub(super) fn from_spec(
    size: usize,
    stride: usize,
    input: TensorType,
    output: Shape,
) -> Result<(Op, TensorType), String> {
    Ok((
        Op::AvgPool { size, stride },
        window_sum_type(input, size, output)?,
    ))
}

/// Each output accumulates the `size^2` codes of its window.
pub(super) fn window_sums_cost(size: usize, output: Shape) -> Cost {
    sum_cost((size * size) as u64, output)
}

/// The average pool of an ONNX `AveragePool` or `GlobalAveragePool` node reading codes of type
/// `input` (`shifted`: signed codes kept shifted by an offset, which window sums would sum).
pub(super) fn from_onnx(
    node: &dyn OnnxAttributes,
    input: TensorType,
    shifted: bool,
) -> Result<(Op, TensorType), ImportError> {
    if shifted {
        return Err(ImportError::Invalid(
            "averages signed codes, which qnnc keeps shifted; it needs unsigned or bipolar codes"
                .into(),
        ));
    }
    let shape = input.shape;
    let (size, stride) = if node.op_type() == "GlobalAveragePool" {
        if shape.height != shape.width {
            return Err(ImportError::Shape(format!(
                "global average pooling needs a square input, not {shape}"
            )));
        }
        (shape.height, shape.height)
    } else {
        onnx_pool_window(node)?
    };
    let output = onnx_window_output(shape, size, stride)?;
    let out = window_sum_type(input, size, output).map_err(ImportError::Invalid)?;
    Ok((Op::AvgPool { size, stride }, out))
}

/// The golden model's average pool: the sum of each channel over its windows.
struct WindowSums {
    input: Shape,
    output: Shape,
    size: usize,
    stride: usize,
}

impl IntegerStep for WindowSums {
    fn run(&self, x: &[i64], _others: &[&[i64]], images: usize) -> Vec<i64> {
        let windows = (self.input, self.output, self.size, self.stride);
        fold_windows(x, images, windows, 0, |sum, v| sum + v)
    }
}

impl OpRules for AvgPool {
    fn name(&self) -> &'static str {
        "avgpool"
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        pool_output(input, self.size, self.stride)
    }

    fn infer_output(&self, inputs: &[TensorType], out: &mut TensorType) -> Result<(), String> {
        out.scale = window_sum_type(inputs[0], self.size, out.shape)?.scale;
        Ok(())
    }

    fn accumulator(&self, inputs: &[TensorType]) -> Option<Result<Precision, String>> {
        Some(window_sum_type(inputs[0], self.size, inputs[0].shape).map(|ty| ty.precision))
    }

    fn check(&self, inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        let sums = window_sum_type(inputs[0], self.size, out.shape).map_err(type_error)?;
        check_sums(sums, out).map_err(type_error)
    }

    fn describe(&self) -> String {
        format!(
            "avgpool size={} stride={} (window sums)",
            self.size, self.stride
        )
    }

    fn colour(&self) -> &'static str {
        "#ddffdd"
    }

    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![
            ("size", self.size, limits::MAX_WINDOW),
            ("stride", self.stride, limits::MAX_WINDOW),
        ]
    }

    /// Values, not sums: the Quant after it carries the scale of the average.
    fn onnx_node(&self, input: TensorType, output: TensorType) -> Option<OnnxNode> {
        let global = input.shape.height == self.size
            && input.shape.width == self.size
            && output.shape.height == 1
            && output.shape.width == 1;
        Some(if global {
            OnnxNode {
                op_type: "GlobalAveragePool",
                attributes: Vec::new(),
            }
        } else {
            onnx_window("AveragePool", self.size, self.stride)
        })
    }

    fn accumulates(&self) -> bool {
        true
    }

    /// The window sums, computed directly (never through weights, so that the hardware's
    /// mask-weight convolutions are checked against an independent computation).
    fn integer_step(&self, input: TensorType, output: TensorType) -> Option<Box<dyn IntegerStep>> {
        Some(Box::new(WindowSums {
            input: input.shape,
            output: output.shape,
            size: self.size,
            stride: self.stride,
        }))
    }

    /// The mean of each channel over its windows.
    fn float_plan(&self, input: TensorType, output: TensorType) -> FloatPlan {
        let taps = (self.size * self.size) as f32;
        FloatPlan::Step(Box::new(FloatPool {
            input: input.shape,
            output: output.shape,
            size: self.size,
            stride: self.stride,
            start: 0.0,
            fold: |a, b| a + b,
            finish: move |sum| sum / taps,
        }))
    }

    fn cost(&self, _input: TensorType, output: TensorType) -> Cost {
        window_sums_cost(self.size, output.shape)
    }

    fn spec_layer(
        &self,
        name: Option<String>,
        _reads: &[&str],
        _output: TensorType,
    ) -> Option<LayerSpec> {
        Some(LayerSpec::AvgPool(AvgPoolSpec {
            name,
            size: Some(self.size),
            stride: Some(self.stride),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(bits: u32, scale: f64) -> TensorType {
        crate::ir::build::quantizer_type(Shape::flat(4), bits, scale)
    }

    #[test]
    fn sums_are_unsigned_for_unsigned_codes_and_signed_for_bipolar_ones() {
        assert_eq!(sum_precision(0, 6), Precision::unsigned(3));
        assert_eq!(sum_precision(0, 0), Precision::unsigned(1));
        assert_eq!(sum_precision(-2, 2), Precision::signed(3));
        // 2x2 windows of 2-bit codes: 0..=12; of bipolar codes: -4..=4.
        let pooled = window_sum_type(codes(2, 1.0 / 3.0), 2, Shape::flat(4)).unwrap();
        assert_eq!(pooled.precision, Precision::unsigned(4));
        assert_eq!(pooled.scale, 1.0 / 3.0 / 4.0);
        let pooled = window_sum_type(codes(1, 1.0), 2, Shape::flat(4)).unwrap();
        assert_eq!(pooled.precision, Precision::signed(4));
        let float = TensorType {
            precision: Precision::Float,
            ..codes(2, 1.0)
        };
        assert!(window_sum_type(float, 2, Shape::flat(4)).is_err());
    }

    /// An ONNX node of `op_type` with integer-list attributes only.
    struct Node(&'static str, Vec<(&'static str, Vec<i64>)>);

    impl OnnxAttributes for Node {
        fn op_type(&self) -> &str {
            self.0
        }
        fn outputs(&self) -> usize {
            1
        }
        fn int(&self, _name: &str, default: i64) -> i64 {
            default
        }
        fn ints(&self, name: &str) -> Option<Vec<i64>> {
            self.1
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
        fn string(&self, _name: &str) -> Option<&[u8]> {
            None
        }
    }

    #[test]
    fn onnx_average_pools_become_window_sums_or_are_refused_with_their_reason() {
        let square = TensorType {
            shape: Shape {
                height: 4,
                width: 4,
                channels: 3,
            },
            ..codes(2, 1.0 / 3.0)
        };
        let global = Node("GlobalAveragePool", Vec::new());
        let (op, out) = from_onnx(&global, square, false).unwrap();
        assert_eq!(op, Op::AvgPool { size: 4, stride: 4 });
        assert_eq!(out, window_sum_type(square, 4, Shape::flat(3)).unwrap());
        let windows = Node(
            "AveragePool",
            vec![("kernel_shape", vec![2, 2]), ("strides", vec![2, 2])],
        );
        let (op, out) = from_onnx(&windows, square, false).unwrap();
        assert_eq!(op, Op::AvgPool { size: 2, stride: 2 });
        assert_eq!((out.shape.height, out.shape.width), (2, 2));
        assert!(matches!(
            from_onnx(&global, square, true),
            Err(ImportError::Invalid(m)) if m.contains("averages signed codes")
        ));
        let oblong = TensorType {
            shape: Shape {
                height: 4,
                width: 2,
                channels: 3,
            },
            ..square
        };
        assert!(matches!(
            from_onnx(&global, oblong, false),
            Err(ImportError::Shape(m)) if m.contains("needs a square input, not 4x2x3")
        ));
        let large = Node("AveragePool", vec![("kernel_shape", vec![5, 5])]);
        assert!(matches!(
            from_onnx(&large, square, false),
            Err(ImportError::Shape(m)) if m == "the window is larger than the input"
        ));
    }

    #[test]
    fn window_sums_by_hand() {
        // One image 3x3x2: channel 0 holds 1..=9, channel 1 holds 10 * (1..=9).
        let x: Vec<i64> = (1..=9).flat_map(|v| [v, 10 * v]).collect();
        let pool = |size, stride, out| WindowSums {
            input: Shape {
                height: 3,
                width: 3,
                channels: 2,
            },
            output: Shape {
                height: out,
                width: out,
                channels: 2,
            },
            size,
            stride,
        };
        // 2x2 windows, stride 1: [1 2 4 5] = 12, [2 3 5 6] = 16, [4 5 7 8] = 24, [5 6 8 9] = 28.
        assert_eq!(
            pool(2, 1, 2).run(&x, &[], 1),
            vec![12, 120, 16, 160, 24, 240, 28, 280]
        );
        // 2x2, stride 2 (floor mode): the top-left window only.
        assert_eq!(pool(2, 2, 1).run(&x, &[], 1), vec![12, 120]);
        // Global: 45 and 450.
        assert_eq!(pool(3, 3, 1).run(&x, &[], 1), vec![45, 450]);
        // Two images, the second the negation of the first (bipolar-like signed codes).
        let two: Vec<i64> = x.iter().copied().chain(x.iter().map(|v| -v)).collect();
        assert_eq!(pool(3, 3, 1).run(&two, &[], 2), vec![45, 450, -45, -450]);
    }
}
