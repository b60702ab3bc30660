//! `quantize`: the activation quantizer of training (quantized ReLU, or sign for one bit):
//! unsigned codes `round(z / s)` clamped to `bits` bits (`s` the scale on its output edge),
//! optionally narrow or followed by a truncation; `fold-batch-norm` lowers it to thresholds.

use super::{spec_precision, type_error, Cost, FloatPlan, FloatStep, OpRules};
use crate::ir::{IrKind, Precision, TensorType, Truncation};
use crate::spec::{ActSpec, LayerSpec};

pub struct Quantize {
    pub bits: u32,
    pub truncation: Option<Truncation>,
    pub narrow: bool,
}

/// Unsigned codes `clamp(round(x / code_value), 0, max)`, or `sign(x)` for bipolar (zero
/// counts as +1), times `code_value`, in the float model.
struct FloatQuantize {
    code_value: f32,
    max_code: Option<f32>,
}

impl FloatStep for FloatQuantize {
    fn run(&self, mut x: Vec<f32>, _others: &[&[f32]], _images: usize) -> Vec<f32> {
        let code_value = self.code_value;
        for v in &mut x {
            *v = match self.max_code {
                None if *v >= 0.0 => code_value,
                None => -code_value,
                Some(max) => (*v / code_value).round_ties_even().clamp(0.0, max) * code_value,
            };
        }
        x
    }
}

/// A quantizer to `truncation.input_bits` bits, then its truncation to `max_code`, in the float
/// model.
struct FloatTruncate {
    truncation: Truncation,
    code_value: f32,
    max_code: i64,
}

impl FloatStep for FloatTruncate {
    fn run(&self, mut x: Vec<f32>, _others: &[&[f32]], _images: usize) -> Vec<f32> {
        let input_step = self.truncation.input_scale as f32;
        let input_max = self.truncation.input_max() as f32;
        for v in &mut x {
            let q = (*v / input_step).round_ties_even().clamp(0.0, input_max);
            *v = self.truncation.code(q as i64, self.max_code) as f32 * self.code_value;
        }
        x
    }
}

impl OpRules for Quantize {
    fn name(&self) -> &'static str {
        "quantize"
    }

    fn check(&self, _inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        let (bits, truncation) = (self.bits, self.truncation);
        if self.narrow && (bits < 2 || truncation.is_some()) {
            return Err(type_error(format!(
                "a narrow-range quantizer needs 2 bits or more and no truncation, not {bits} bits{}",
                if truncation.is_some() { " with a truncation" } else { "" }
            )));
        }
        if !(1..=16).contains(&bits) {
            return Err(type_error(format!(
                "activation bit width {bits} is out of range 1..=16"
            )));
        }
        if !(out.scale.is_finite() && out.scale > 0.0) {
            return Err(type_error(format!(
                "scale {} must be positive and finite",
                out.scale
            )));
        }
        let expected = crate::ir::build::quantizer_type(out.shape, bits, out.scale);
        if out.precision != expected.precision {
            return Err(type_error(format!(
                "a {bits}-bit quantizer makes {} codes, not {}",
                expected.precision, out.precision
            )));
        }
        if let Some(t) = truncation {
            if bits < 2
                || !(2..=16).contains(&t.input_bits)
                || t.shift >= t.input_bits
                || !(t.input_scale.is_finite() && t.input_scale > 0.0)
            {
                return Err(type_error(format!(
                    "truncation of u{} by {} bits to u{bits} with input scale {} is not valid",
                    t.input_bits, t.shift, t.input_scale
                )));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let bits = self.bits;
        match self.truncation {
            None => format!(
                "quantize bits={bits}{}",
                if self.narrow { " narrow" } else { "" }
            ),
            Some(t) => format!(
                "quantize bits={bits} truncating u{} >> {} ({:?})",
                t.input_bits, t.shift, t.rounding
            ),
        }
    }

    fn colour(&self) -> &'static str {
        "#ffccbb"
    }

    /// Rounds half to even, as QONNX's Quant does.
    fn float_plan(&self, _input: TensorType, output: TensorType) -> FloatPlan {
        let code_value = output.scale as f32;
        let max_code = output.precision.code_range().map(|(_, max)| max);
        FloatPlan::Step(match self.truncation {
            Some(truncation) => Box::new(FloatTruncate {
                truncation,
                code_value,
                max_code: max_code.expect("integer codes"),
            }),
            None => Box::new(FloatQuantize {
                code_value,
                max_code: match output.precision {
                    Precision::Bipolar => None,
                    _ => Some((max_code.expect("integer codes") - self.narrow as i64) as f32),
                },
            }),
        })
    }

    fn cost(&self, _input: TensorType, _output: TensorType) -> Cost {
        Cost::Quantizes
    }

    /// An activation of the bits of its codes (the spec has no truncation nor narrow range).
    fn spec_layer(
        &self,
        name: Option<String>,
        _reads: &[&str],
        output: TensorType,
    ) -> Option<LayerSpec> {
        Some(LayerSpec::Act(ActSpec {
            name,
            bits: spec_precision(output.precision),
        }))
    }
}
