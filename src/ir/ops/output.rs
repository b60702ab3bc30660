//! `output`: the integer logits; the class is their argmax (the first on ties).

use super::{type_error, FloatPlan, OpRules};
use crate::ir::{IrKind, TensorType};

pub struct Output;

impl OpRules for Output {
    fn name(&self) -> &'static str {
        "output"
    }

    fn check(&self, _inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        if !out.shape.is_flat() {
            return Err(type_error(format!(
                "logits must be flat (1x1xC), not {}",
                out.shape
            )));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "output argmax".into()
    }

    fn colour(&self) -> &'static str {
        "#dddddd"
    }

    fn float_plan(&self, _input: TensorType, _output: TensorType) -> FloatPlan {
        FloatPlan::Logits
    }
}
