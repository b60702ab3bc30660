//! `batchnorm`: per-channel `gamma * (x - mean) / sqrt(var + epsilon) + beta` in float, before
//! `fold-batch-norm` folds it into the quantizer after it.

use super::{type_error, FloatPlan, FloatStep, OpRules};
use crate::ir::{BatchNormParams, IrKind, TensorType};
use crate::spec::{LayerSpec, NamedSpec};

pub struct BatchNorm<'a>(pub &'a BatchNormParams);

/// `y = x * scale[c] + shift[c]` (batch norm at inference) in the float model.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl FloatStep for Affine {
    fn run(&self, mut x: Vec<f32>, _others: &[&[f32]], _images: usize) -> Vec<f32> {
        for row in x.chunks_exact_mut(self.scale.len()) {
            for ((v, &s), &b) in row.iter_mut().zip(&self.scale).zip(&self.shift) {
                *v = *v * s + b;
            }
        }
        x
    }
}

impl OpRules for BatchNorm<'_> {
    fn name(&self) -> &'static str {
        "batchnorm"
    }

    fn check(&self, _inputs: &[TensorType], out: TensorType) -> Result<(), (IrKind, String)> {
        let (bn, channels) = (self.0, out.shape.channels);
        let lengths = [bn.gamma.len(), bn.beta.len(), bn.mean.len(), bn.var.len()];
        if lengths.iter().any(|&l| l != channels) {
            return Err(type_error(format!(
                "batch-norm parameters need {channels} values each"
            )));
        }
        let all = bn
            .gamma
            .iter()
            .chain(&bn.beta)
            .chain(&bn.mean)
            .chain(&bn.var);
        if all.clone().any(|v| !v.is_finite()) || bn.var.iter().any(|&v| v < 0.0) {
            return Err(type_error(
                "batch-norm parameters must be finite, variances not negative".into(),
            ));
        }
        if !(bn.epsilon.is_finite() && bn.epsilon >= 0.0)
            || bn.var.iter().any(|&v| v + bn.epsilon <= 0.0)
        {
            return Err(type_error("batch-norm epsilon must be finite and not negative, and every variance plus epsilon positive".into()));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "batchnorm channels={} eps={:e}",
            self.0.gamma.len(),
            self.0.epsilon
        )
    }

    fn colour(&self) -> &'static str {
        "#eeccee"
    }

    /// Batch norm at inference: `x * scale[c] + shift[c]`.
    fn float_plan(&self, _input: TensorType, _output: TensorType) -> FloatPlan {
        let bn = self.0;
        let scale: Vec<f32> = bn
            .gamma
            .iter()
            .zip(&bn.var)
            .map(|(&g, &v)| g / (v + bn.epsilon).sqrt())
            .collect();
        let shift = bn
            .beta
            .iter()
            .zip(&bn.mean)
            .zip(&scale)
            .map(|((&b, &m), &s)| b - m * s)
            .collect();
        FloatPlan::Step(Box::new(Affine { scale, shift }))
    }

    fn spec_layer(
        &self,
        name: Option<String>,
        _reads: &[&str],
        _output: TensorType,
    ) -> Option<LayerSpec> {
        Some(LayerSpec::BatchNorm(NamedSpec { name }))
    }
}
