//! `requantize`: per-channel multiply-shift `clamp((acc * multiplier + offset) >> shift)`,
//! unclamped for logits.

use super::{type_error, Cost, FloatPlan, OpRules};
use crate::ir::{IrKind, Requantization, TensorType};

pub struct Requantize<'a>(pub &'a Requantization);

impl OpRules for Requantize<'_> {
    fn name(&self) -> &'static str {
        "requantize"
    }

    fn check(&self, inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        let (r, channels) = (self.0, out.shape.channels);
        if r.multiplier.len() != channels || r.offset.len() != channels {
            return Err(type_error(format!(
                "requantization needs {channels} multipliers and offsets"
            )));
        }
        if r.shift > 62 {
            return Err(type_error(format!("shift {} is larger than 62", r.shift)));
        }
        if let Some((lo, hi)) = r.clamp {
            if lo > hi {
                return Err(type_error(format!("clamp range {lo}..={hi} is empty")));
            }
        }
        let (min, max) = inputs[0]
            .precision
            .code_range()
            .ok_or_else(|| type_error("requantization needs integer input".into()))?;
        for (&m, &b) in r.multiplier.iter().zip(&r.offset) {
            let fits = [min, max]
                .iter()
                .all(|&acc| acc.checked_mul(m).and_then(|p| p.checked_add(b)).is_some());
            if !fits {
                return Err(type_error(format!(
                    "multiplier {m} and offset {b} overflow 64 bits on accumulators {min}..={max}"
                )));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let r = self.0;
        format!(
            "requantize channels={} shift={}{}",
            r.multiplier.len(),
            r.shift,
            r.clamp
                .map(|(lo, hi)| format!(" clamp={lo}..={hi}"))
                .unwrap_or_default()
        )
    }

    fn colour(&self) -> &'static str {
        "#ffeeaa"
    }

    fn float_plan(&self, _input: TensorType, _output: TensorType) -> FloatPlan {
        FloatPlan::Lowered
    }

    /// Clamped codes are stored at their bits; unclamped ones are logits.
    fn cost(&self, _input: TensorType, _output: TensorType) -> Cost {
        match self.0.clamp {
            Some(_) => Cost::Quantizes,
            None => Cost::Free,
        }
    }
}
