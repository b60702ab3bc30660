//! The quantizers of a QONNX graph: Quant, IntQuant and BipolarQuant, on activations and on the
//! weight initializers that they turn into integer codes.

use onnx_protobuf::NodeProto;

use super::NodeFailure;
use super::{attribute, int_attribute, ints_attribute, is_custom, is_standard, Onnx};
use crate::ir::Precision;
use crate::qonnx::tensor::Constant;
use crate::qonnx::QonnxError;

/// A quantizer node's parameters.
pub(super) struct Quantizer {
    /// One value, or one an output channel.
    pub(super) scale: Constant,
    pub(super) bits: u32,
    pub(super) signed: bool,
    pub(super) narrow: bool,
    pub(super) bipolar: bool,
}

impl Quantizer {
    pub(super) fn read(onnx: &Onnx, node: &NodeProto) -> Result<Quantizer, QonnxError> {
        let scale = onnx.constant(node, 1, "the scale")?.clone();
        if scale.values.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
            return Err(onnx.error_of(
                NodeFailure::Quantizer,
                node,
                "scales must be positive and finite",
            ));
        }
        if node.op_type == "BipolarQuant" {
            return Ok(Quantizer {
                scale,
                bits: 1,
                signed: true,
                narrow: false,
                bipolar: true,
            });
        }
        let zero_point = onnx.constant(node, 2, "the zero point")?;
        if zero_point.values.iter().any(|&z| z != 0.0) {
            return Err(onnx.error_of(NodeFailure::Quantizer,
                node,
                "zero points other than 0 are not supported (qnnc's codes are symmetric weights and activations that start at 0)",
            ));
        }
        let width = onnx.scalar(node, 3, "the bit width")?;
        if !(1.0..=16.0).contains(&width) || width.fract() != 0.0 {
            return Err(onnx.error_of(
                NodeFailure::Quantizer,
                node,
                &format!("bit width {width} is outside 1..=16, the integer widths qnnc supports"),
            ));
        }
        if let Some(mode) = attribute(node, "rounding_mode") {
            let mode = String::from_utf8_lossy(&mode.s).to_ascii_uppercase();
            if mode != "ROUND" {
                return Err(onnx.error_of(
                    NodeFailure::Quantizer,
                    node,
                    &format!("rounding_mode {mode} is not supported (only ROUND, half to even)"),
                ));
            }
        }
        Ok(Quantizer {
            scale,
            bits: width as u32,
            signed: int_attribute(node, "signed", 1) != 0,
            narrow: int_attribute(node, "narrow", 0) != 0,
            bipolar: false,
        })
    }

    /// The code of one value, as QONNX computes it in f32 (round half to even, clamp).
    fn code(&self, value: f64, scale: f64) -> i32 {
        if self.bipolar {
            return if value >= 0.0 { 1 } else { -1 };
        }
        let (min, max) = self.code_range();
        let q = (value as f32 / scale as f32).round_ties_even() as f64;
        q.clamp(min as f64, max as f64) as i32
    }

    pub(super) fn code_range(&self) -> (i64, i64) {
        let b = self.bits;
        match (self.signed, self.narrow) {
            (true, true) => (-(1i64 << (b - 1)) + 1, (1i64 << (b - 1)) - 1),
            (true, false) => (-(1i64 << (b - 1)), (1i64 << (b - 1)) - 1),
            (false, false) => (0, (1i64 << b) - 1),
            (false, true) => (0, (1i64 << b) - 2),
        }
    }
}

/// The weights of a MAC as the quantizer on its weight initializer gives them.
pub(super) struct StoredWeights {
    /// Shape as stored (ONNX order).
    pub(super) dims: Vec<usize>,
    pub(super) codes: Vec<i32>,
    /// The scale of each output channel, or one for all.
    pub(super) scales: Vec<f64>,
    pub(super) precision: Precision,
}

/// The weights of a MAC from the quantizer on its weight initializer, seen through one
/// transpose (as PyTorch exports Linear for MatMul) when `allow_transpose`.
pub(super) fn quantized_weights(
    onnx: &Onnx,
    mac: &NodeProto,
    name: &str,
    output_axis: usize,
    allow_transpose: bool,
) -> Result<StoredWeights, QonnxError> {
    if onnx.constants.contains_key(name) {
        return Err(onnx.error_of(
            NodeFailure::Quantizer,
            mac,
            "weights are float; qnnc needs a Quant or BipolarQuant node on them",
        ));
    }
    let producer = onnx.producer.get(name).map(|&i| &onnx.nodes[i]);
    let transpose = producer.filter(|n| n.op_type == "Transpose" && is_standard(n));
    if let Some(t) = transpose.filter(|_| allow_transpose) {
        // PyTorch's Linear stores [outputs, inputs] and exports a transpose for MatMul.
        if ints_attribute(t, "perm").as_deref() != Some(&[1, 0]) || output_axis > 1 {
            return Err(onnx.error_of(
                NodeFailure::Quantizer,
                t,
                "only 2-D transposes of weights are supported",
            ));
        }
        let source = t.input.first().map(String::as_str).unwrap_or("");
        let StoredWeights {
            dims,
            codes,
            scales,
            precision,
        } = quantized_weights(onnx, mac, source, 1 - output_axis, false)?;
        let &[rows, cols] = dims.as_slice() else {
            return Err(onnx.error_of(
                NodeFailure::Quantizer,
                t,
                "only 2-D transposes of weights are supported",
            ));
        };
        let mut transposed = vec![0; codes.len()];
        for r in 0..rows {
            for c in 0..cols {
                transposed[c * rows + r] = codes[r * cols + c];
            }
        }
        return Ok(StoredWeights {
            dims: vec![cols, rows],
            codes: transposed,
            scales,
            precision,
        });
    }
    let quant = producer
        .filter(|n| {
            is_custom(n) && matches!(n.op_type.as_str(), "Quant" | "IntQuant" | "BipolarQuant")
        })
        .ok_or_else(|| {
            onnx.error_of(
                NodeFailure::Quantizer,
                mac,
                "weights must come from a Quant or BipolarQuant node on a constant",
            )
        })?;
    let q = Quantizer::read(onnx, quant)?;
    let w = onnx.constant(quant, 0, "the weights it quantizes")?;
    if !q.bipolar && (!q.signed || q.bits < 2) {
        return Err(onnx.error_of(
            NodeFailure::Quantizer,
            quant,
            "weights need a signed Quant of 2 bits or more, or a BipolarQuant",
        ));
    }
    let rank = w.dims.len();
    if output_axis >= rank {
        return Err(onnx.error_of(
            NodeFailure::Quantizer,
            mac,
            "weights have too few dimensions",
        ));
    }
    let outputs = w.dims[output_axis];
    if w.values.is_empty() {
        return Err(onnx.error_of(NodeFailure::Quantizer, quant, "the weights are empty"));
    }
    let scales: Vec<f64> = if q.scale.values.len() == 1 {
        q.scale.values.clone()
    } else {
        let mut dims = vec![1; rank.max(q.scale.dims.len())];
        let offset = dims.len() - q.scale.dims.len();
        dims[offset..].copy_from_slice(&q.scale.dims);
        let per_channel = dims.len() == rank
            && dims
                .iter()
                .enumerate()
                .all(|(i, &d)| d == 1 || (i == output_axis && d == outputs));
        if !per_channel || q.scale.values.len() != outputs {
            return Err(onnx.error_of(
                NodeFailure::Quantizer,
                quant,
                "scales must be one value or one an output channel",
            ));
        }
        q.scale.values.clone()
    };
    // Index of the output channel of each stored element.
    let inner: usize = w.dims[output_axis + 1..].iter().product();
    let codes = w
        .values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let channel = (i / inner.max(1)) % outputs.max(1);
            q.code(v, scales[if scales.len() == 1 { 0 } else { channel }])
        })
        .collect();
    let precision = if q.bipolar {
        Precision::Bipolar
    } else {
        Precision::signed(q.bits)
    };
    Ok(StoredWeights {
        dims: w.dims.clone(),
        codes,
        scales,
        precision,
    })
}
