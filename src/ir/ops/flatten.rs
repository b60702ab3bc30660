//! `flatten`: the same codes as a flat (1x1xC) tensor.

use super::{same_codes, IntegerStep, Op, OpRules, Unchanged};
use crate::ir::{IrKind, TensorType};
use crate::spec::{LayerSpec, NamedSpec, Shape};

pub struct Flatten;

/// The flatten of a spec layer reading codes of type `input`: the same codes, of shape `output`.
pub(super) fn from_spec(input: TensorType, output: Shape) -> (Op, TensorType) {
    (
        Op::Flatten,
        TensorType {
            shape: output,
            ..input
        },
    )
}

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

    fn spec_layer(
        &self,
        name: Option<String>,
        _reads: &[&str],
        _output: TensorType,
    ) -> Option<LayerSpec> {
        Some(LayerSpec::Flatten(NamedSpec { name }))
    }
}
