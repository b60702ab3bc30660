//! `infer-accumulators`: gives every MAC output the narrowest signed integer that holds its
//! worst case, `fan_in` products each at the extreme of weight code times input code over the
//! declared precisions, so that no input and no weights of those precisions can overflow it;
//! and every sum (average-pool window sums, adds) the narrowest integer that holds its range:
//! unsigned when its inputs are, signed when one is bipolar.
//!
//! Needs: shapes; integer inputs to every MAC and sum. Changes: MAC and sum output precisions.

use super::Pass;
use crate::ir::{Graph, IrError, Op, Precision, TensorType};
use crate::spec::Shape;

pub struct InferAccumulators;

/// The narrowest integer holding every value in `[min, max]`: unsigned when none is negative.
pub fn sum_precision(min: i64, max: i64) -> Precision {
    if min >= 0 {
        Precision::unsigned((64 - max.leading_zeros()).max(1))
    } else {
        Precision::signed_for_range(min, max)
    }
}

/// What an average pool of `size` x `size` windows makes of codes of type `input`: window sums
/// of shape `output`, worth `s / size^2` a unit (`s` the input's scale), so that a sum's value is
/// the window's average.
pub fn window_sum_type(
    input: TensorType,
    size: usize,
    output: Shape,
) -> Result<TensorType, String> {
    let (min, max) = codes(input)?;
    let taps = size
        .checked_mul(size)
        .filter(|&t| t > 0 && t <= crate::limits::MAX_WINDOW * crate::limits::MAX_WINDOW)
        .ok_or_else(|| format!("window {size}x{size} is out of range"))? as i64;
    Ok(TensorType {
        shape: output,
        precision: sum_precision(min * taps, max * taps),
        scale: input.scale / (taps as f64),
    })
}

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

/// The largest shift of an add's input.
pub const MAX_ADD_SHIFT: u32 = 32;

/// What an add makes of codes of types `a` (main path) and `b` (skip): `(a << shifts[0]) +
/// (b << shifts[1])` at the smaller of their scales.
pub fn add_type(a: TensorType, b: TensorType) -> Result<(TensorType, [u32; 2]), String> {
    if a.shape != b.shape {
        return Err(format!(
            "adds {} (input 1) to {} (input 0): both inputs need one shape",
            b.shape, a.shape
        ));
    }
    let (range_a, range_b) = (codes(a)?, codes(b)?);
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

/// The code range of a tensor a sum reads, or why it cannot be summed.
fn codes(ty: TensorType) -> Result<(i64, i64), String> {
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

impl Pass for InferAccumulators {
    fn name(&self) -> &'static str {
        "infer-accumulators"
    }

    fn description(&self) -> &'static str {
        "sizes every MAC accumulator from the worst case of its precisions and fan-in"
    }

    fn run(&self, graph: &mut Graph, file: &str) -> Result<bool, IrError> {
        let mut changed = false;
        for node in graph.macs() {
            let input = graph.input_type(node).expect("a MAC has an input");
            let Op::Mac {
                kernel,
                weight_precision,
                ..
            } = graph.graph[node].op
            else {
                continue;
            };
            let inputs = input.precision.code_range().ok_or_else(|| {
                graph.error(
                    file,
                    node,
                    "reads float values; put an activation quantizer before it",
                )
            })?;
            let weights = weight_precision
                .code_range()
                .ok_or_else(|| graph.error(file, node, "weights must be integer codes"))?;
            let fan_in = kernel * kernel * input.shape.channels;
            let (min, max) = accumulator_bounds(weights, inputs, fan_in);
            let mut out = graph.output_type(node).expect("a MAC has an output");
            let precision = Precision::signed_for_range(min, max);
            if out.precision != precision {
                out.precision = precision;
                graph.set_output_type(node, out);
                changed = true;
            }
        }
        for node in graph.topological_order() {
            let inputs = graph.input_types(node);
            let sum = match graph.graph[node].op {
                Op::AvgPool { size, .. } => {
                    window_sum_type(inputs[0], size, inputs[0].shape).map(|ty| ty.precision)
                }
                Op::Add { .. } => add_type(inputs[0], inputs[1]).map(|(ty, _)| ty.precision),
                _ => continue,
            };
            let precision = sum.map_err(|message| graph.error(file, node, message))?;
            let mut out = graph.output_type(node).expect("a sum has an output");
            if out.precision != precision {
                out.precision = precision;
                graph.set_output_type(node, out);
                changed = true;
            }
        }
        Ok(changed)
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
}
