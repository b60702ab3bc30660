//! `multithreshold`: per-channel thresholds; an output code counts the thresholds its
//! accumulator reaches (`acc >= t` on ascending channels, `acc <= t` on descending ones).

use super::{type_error, Cost, FloatPlan, OpRules};
use crate::ir::{IrKind, Precision, TensorType, ThresholdTable};

pub struct MultiThreshold<'a>(pub &'a ThresholdTable);

impl OpRules for MultiThreshold<'_> {
    fn name(&self) -> &'static str {
        "multithreshold"
    }

    fn check(&self, _inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        let (table, channels) = (self.0, out.shape.channels);
        let levels = match out.precision {
            Precision::Bipolar => 1,
            Precision::Int {
                bits,
                signed: false,
            } if bits <= 16 => (1usize << bits) - 1,
            other => {
                return Err(type_error(format!(
                    "thresholds must produce unsigned or bipolar codes, not {other}"
                )))
            }
        };
        if table.thresholds.len() != channels || table.descending.len() != channels {
            return Err(type_error(format!(
                "threshold table needs {channels} channels"
            )));
        }
        for (c, (row, &descending)) in table.thresholds.iter().zip(&table.descending).enumerate() {
            if row.len() != levels {
                return Err(type_error(format!(
                    "threshold table channel {c} has {} thresholds, expected {levels}",
                    row.len()
                )));
            }
            let sorted = row.windows(2).all(|p| {
                if descending {
                    p[0] >= p[1]
                } else {
                    p[0] <= p[1]
                }
            });
            if !sorted {
                return Err(type_error(format!(
                    "threshold table channel {c} is not sorted {}",
                    if descending {
                        "descending"
                    } else {
                        "ascending"
                    }
                )));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let t = self.0;
        format!(
            "multithreshold channels={} thresholds={} descending={}",
            t.thresholds.len(),
            t.thresholds.first().map_or(0, Vec::len),
            t.descending.iter().filter(|&&d| d).count()
        )
    }

    fn colour(&self) -> &'static str {
        "#ffddaa"
    }

    fn float_plan(&self, _input: TensorType, _output: TensorType) -> FloatPlan {
        FloatPlan::Lowered
    }

    fn cost(&self, _input: TensorType, _output: TensorType) -> Cost {
        Cost::Quantizes
    }
}
