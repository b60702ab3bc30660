//! `add`: the element-wise sum of two code tensors of one shape (input 0 the main path, input 1
//! the skip connection), each shifted left by its `shifts` entry to the common scale on the
//! output edge; the quantizer that follows requantizes the sums.

use super::{
    check_sums, sum_codes, sum_cost, sum_precision, type_error, Cost, FloatPlan, FloatStep,
    IntegerStep, OnnxNode, Op, OpRules,
};
use crate::ir::{IrKind, Precision, TensorType};
use crate::spec::{AddSpec, LayerSpec, Shape};

pub struct Add {
    pub shifts: [u32; 2],
}

/// The largest shift of an add's input.
pub const MAX_ADD_SHIFT: u32 = 32;

/// The shifts of an add of tensors of scales `a` and `b`: each input is shifted to the smaller
/// scale, which the ratio of the two must make an exact power of two.
pub fn add_shifts(a: f64, b: f64) -> Result<[u32; 2], String> {
    let common = a.min(b);
    let shift = |s: f64| {
        let k = (s / common).log2().round();
        (k.is_finite() && (0.0..=MAX_ADD_SHIFT as f64).contains(&k) && common * k.exp2() == s)
            .then_some(k as u32)
    };
    match (shift(a), shift(b)) {
        (Some(x), Some(y)) => Ok([x, y]),
        _ => Err(format!(
            "adds tensors of scales {a:e} and {b:e}, whose ratio is not a power of two up to 2^{MAX_ADD_SHIFT}"
        )),
    }
}

/// What an add makes of codes of types `a` (main path) and `b` (skip): `(a << shifts[0]) +
/// (b << shifts[1])` at the smaller of their scales.
pub fn add_type(a: TensorType, b: TensorType) -> Result<(TensorType, [u32; 2]), String> {
    if a.shape != b.shape {
        return Err(format!(
            "adds {} (input 1) to {} (input 0): both inputs need one shape",
            b.shape, a.shape
        ));
    }
    let (range_a, range_b) = (sum_codes(a)?, sum_codes(b)?);
    let shifts = add_shifts(a.scale, b.scale)?;
    let shifted = |v: i64, s: u32| v << s;
    Ok((
        TensorType {
            shape: a.shape,
            precision: sum_precision(
                shifted(range_a.0, shifts[0]) + shifted(range_b.0, shifts[1]),
                shifted(range_a.1, shifts[0]) + shifted(range_b.1, shifts[1]),
            ),
            scale: a.scale.min(b.scale),
        },
        shifts,
    ))
}

/// The add of a spec layer, of codes of types `main` (the previous layer's) and `skip` (the
/// layer it reads again).
pub(super) fn from_spec(main: TensorType, skip: TensorType) -> Result<(Op, TensorType), String> {
    let (out, shifts) = add_type(main, skip)?;
    Ok((Op::Add { shifts }, out))
}

/// One accumulation an output beyond the first input.
pub(super) fn sums_cost(output: Shape) -> Cost {
    sum_cost(1, output)
}

/// The float model's add: the element-wise sum of the values of the two inputs.
struct FloatAdd;

impl FloatStep for FloatAdd {
    fn run(&self, x: Vec<f32>, others: &[&[f32]], _images: usize) -> Vec<f32> {
        x.iter().zip(others[0]).map(|(a, b)| a + b).collect()
    }
}

/// The golden model's add: `(a << shifts[0]) + (b << shifts[1])`, element by element.
struct ShiftedSums([u32; 2]);

impl IntegerStep for ShiftedSums {
    fn run(&self, a: &[i64], others: &[&[i64]], _images: usize) -> Vec<i64> {
        let shifts = self.0;
        a.iter()
            .zip(others[0])
            .map(|(&a, &b)| (a << shifts[0]) + (b << shifts[1]))
            .collect()
    }
}

impl OpRules for Add {
    fn name(&self) -> &'static str {
        "add"
    }

    fn arity(&self) -> usize {
        2
    }

    fn infer_output(&self, inputs: &[TensorType], out: &mut TensorType) -> Result<(), String> {
        out.scale = add_type(inputs[0], inputs[1])?.0.scale;
        Ok(())
    }

    fn accumulator(&self, inputs: &[TensorType]) -> Option<Result<Precision, String>> {
        Some(add_type(inputs[0], inputs[1]).map(|(ty, _)| ty.precision))
    }

    fn check(&self, inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        let kind = if inputs[0].shape == inputs[1].shape {
            IrKind::Type
        } else {
            IrKind::Shape
        };
        let (sums, expected) = add_type(inputs[0], inputs[1]).map_err(|message| (kind, message))?;
        if self.shifts != expected {
            return Err(type_error(format!(
                "shifts {:?} do not bring scales {:e} and {:e} to the smaller; they must be {expected:?}",
                self.shifts, inputs[0].scale, inputs[1].scale
            )));
        }
        check_sums(sums, out).map_err(type_error)
    }

    fn describe(&self) -> String {
        format!("add shifts={}, {}", self.shifts[0], self.shifts[1])
    }

    fn colour(&self) -> &'static str {
        "#ccf0f0"
    }

    /// The sum of the two inputs' values; shifts only bring their codes to one scale.
    fn onnx_node(&self, _input: TensorType, _output: TensorType) -> Option<OnnxNode> {
        Some(OnnxNode {
            op_type: "Add",
            attributes: Vec::new(),
        })
    }

    fn accumulates(&self) -> bool {
        true
    }

    /// The shifted sums, computed directly (never through weights, as the hardware computes
    /// them).
    fn integer_step(
        &self,
        _input: TensorType,
        _output: TensorType,
    ) -> Option<Box<dyn IntegerStep>> {
        Some(Box::new(ShiftedSums(self.shifts)))
    }

    /// The element-wise sum of the two inputs' values.
    fn float_plan(&self, _input: TensorType, _output: TensorType) -> FloatPlan {
        FloatPlan::Step(Box::new(FloatAdd))
    }

    fn cost(&self, _input: TensorType, output: TensorType) -> Cost {
        sums_cost(output.shape)
    }

    /// The add of the layer the skip connection comes from.
    fn spec_layer(
        &self,
        name: Option<String>,
        reads: &[&str],
        _output: TensorType,
    ) -> Option<LayerSpec> {
        Some(LayerSpec::Add(AddSpec {
            name,
            from: reads[1].to_string(),
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
    fn adds_shift_to_the_smaller_scale_by_powers_of_two_only() {
        let s = 1.0 / 15.0;
        assert_eq!(add_shifts(s, s), Ok([0, 0]));
        assert_eq!(add_shifts(4.0 * s, s), Ok([2, 0]));
        assert_eq!(add_shifts(s, 2.0 * s), Ok([0, 1]));
        assert!(add_shifts(s, 3.0 * s).is_err());
        assert!(add_shifts(1.0 / 3.0, 1.0 / 15.0).is_err());
        assert!(add_shifts(s, s * 2f64.powi(40)).is_err());
        // 4-bit codes (0..=15) at twice the scale of 4-bit codes: 0..=45 at the smaller one.
        let (sum, shifts) = add_type(codes(4, 2.0 * s), codes(4, s)).unwrap();
        assert_eq!(shifts, [1, 0]);
        assert_eq!((sum.precision, sum.scale), (Precision::unsigned(6), s));
        let (sum, _) = add_type(codes(1, 1.0), codes(1, 1.0)).unwrap();
        assert_eq!(sum.precision, Precision::signed(3));
        let other = TensorType {
            shape: Shape::flat(5),
            ..codes(2, s)
        };
        assert!(add_type(codes(2, s), other)
            .unwrap_err()
            .contains("one shape"));
    }

    #[test]
    fn shifted_sums_by_hand() {
        let add = |a: &[i64], b: &[i64], shifts| ShiftedSums(shifts).run(a, &[b], 1);
        assert_eq!(add(&[0, 1, 3], &[2, 2, 3], [0, 0]), vec![2, 3, 6]);
        assert_eq!(add(&[-1, 1, 1], &[1, 1, -1], [0, 0]), vec![0, 2, 0]);
        assert_eq!(add(&[1, 2, 3], &[1, 1, 1], [2, 0]), vec![5, 9, 13]);
        assert_eq!(add(&[1, 2, 3], &[1, 1, 1], [0, 1]), vec![3, 4, 5]);
    }
}
