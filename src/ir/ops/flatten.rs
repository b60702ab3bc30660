//! `flatten`: the same codes as a flat (1x1xC) tensor.

use super::{same_codes, IntegerStep, OpRules, Unchanged};
use crate::ir::{IrKind, TensorType};
use crate::spec::Shape;

pub struct Flatten;

impl OpRules for Flatten {
    fn name(&self) -> &'static str {
        "flatten"
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(Shape::flat(input.len()))
    }

    fn infer_output(&self, inputs: &[TensorType], out: &mut TensorType) -> Result<(), String> {
        out.precision = inputs[0].precision;
        out.scale = inputs[0].scale;
        Ok(())
    }

    fn check(&self, inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        same_codes(inputs[0], out)
    }

    fn colour(&self) -> &'static str {
        "#eeeeee"
    }

    fn integer_step(
        &self,
        _input: TensorType,
        _output: TensorType,
    ) -> Option<Box<dyn IntegerStep>> {
        Some(Box::new(Unchanged))
    }
}
