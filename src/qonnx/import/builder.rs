//! The walk along the data path: each ONNX node read becomes IR nodes (or joins the one before).

use std::collections::{BTreeSet, HashMap};

use onnx_protobuf::NodeProto;
use petgraph::stable_graph::NodeIndex;

use super::quantizer::{quantized_weights, Quantizer, StoredWeights};
use super::supported;
use super::{
    attribute, identifier, int_attribute, ints_attribute, is_custom, is_standard, NodeFailure, Onnx,
};
use crate::ir::build::{input_type, quantizer_type};
use crate::ir::ops::{add_type, onnx_importer, ImportError, OnnxImporter};
use crate::ir::{
    BatchNormParams, Graph, Node, Op, Precision, Rounding, TensorType, Truncation, Weights,
};
use crate::qonnx::QonnxError;
use crate::spec::Shape;

/// How the data tensor is laid out at a point of the walk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// `[N, C, H, W]`.
    Nchw,
    /// `[N, H, W, C]`: after a Transpose, only a flatten may follow.
    Nhwc,
    /// `[N, features]`; `chw` is the feature map it was flattened from in C, H, W order, whose
    /// features the next dense layer reads in that order.
    Flat { chw: Option<Shape> },
}

/// The per-channel affine map `y = a * x + b`.
struct Affine {
    a: Vec<f64>,
    b: Vec<f64>,
}

pub(super) struct Builder {
    pub(super) graph: Graph,
    last: NodeIndex,
    ty: TensorType,
    layout: Layout,
    names: BTreeSet<String>,
    /// The input scale the user gave, which an input quantizer may not contradict.
    given_input_scale: Option<f64>,
    /// Whether an input quantizer set the input's scale: the graph then says what a pixel is.
    input_quantized: bool,
    /// The data's value is its codes times the scale minus this (a shift of the input, or the
    /// offset of signed codes kept as unsigned ones); the next MAC takes it into its bias.
    pending_offset: f64,
    /// The input's shape when it is an image (`[N, C, H, W]`).
    image: Option<Shape>,
    /// The first node that shifted the input (its label and op), while no input quantizer
    /// has taken the shift.
    input_shift: Option<(String, String)>,
    /// Each tensor of the path read so far: the node that produced it, its type and the
    /// pending offset of its codes, for the Adds that read it again.
    tensors: HashMap<String, (NodeIndex, TensorType, f64)>,
}

impl Builder {
    pub(super) fn new(name: &str, shape: Shape, rank: usize, input_scale: Option<f64>) -> Builder {
        let mut graph = Graph::new(name);
        let last = graph.graph.add_node(Node {
            name: "input".into(),
            op: Op::Input,
        });
        Builder {
            graph,
            last,
            ty: TensorType {
                scale: input_scale.unwrap_or(input_type(shape).scale),
                ..input_type(shape)
            },
            layout: if rank == 4 {
                Layout::Nchw
            } else {
                Layout::Flat { chw: None }
            },
            names: BTreeSet::from(["input".to_string(), "logits".to_string()]),
            given_input_scale: input_scale,
            input_quantized: false,
            pending_offset: 0.0,
            image: (rank == 4).then_some(shape),
            input_shift: None,
            tensors: HashMap::new(),
        }
    }

    /// A fresh IR name for an ONNX node.
    fn name_for(&mut self, node: &NodeProto, fallback: &str) -> String {
        let base = identifier(&Onnx::label(node)).unwrap_or_else(|| fallback.to_string());
        self.fresh_name(&base)
    }

    /// `base`, or `base_2`, `base_3`... if taken.
    fn fresh_name(&mut self, base: &str) -> String {
        let base = base.to_string();
        let mut name = base.clone();
        let mut n = 1;
        while self.names.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.names.insert(name.clone());
        name
    }

    fn push(&mut self, name: String, op: Op, out: TensorType) {
        let node = self.graph.graph.add_node(Node { name, op });
        self.graph.connect(self.last, node, 0, self.ty);
        self.last = node;
        self.ty = out;
    }

    fn last_op(&mut self) -> &mut Op {
        &mut self.graph.graph[self.last].op
    }

    pub(super) fn walk(
        &mut self,
        onnx: &Onnx,
        input: &str,
        output: &str,
    ) -> Result<(), QonnxError> {
        let mut tensor = input.to_string();
        let mut steps = 0;
        self.tensors
            .insert(tensor.clone(), (self.last, self.ty, self.pending_offset));
        while tensor != output {
            steps += 1;
            let node = onnx.consumer(&tensor)?.ok_or_else(|| QonnxError::Tensor {
                file: onnx.origin.to_string(),
                tensor: tensor.clone(),
                message: "feeds no node and is not the graph's output".into(),
            })?;
            if steps > onnx.nodes.len() {
                return Err(QonnxError::Cycle {
                    file: onnx.origin.to_string(),
                    node: Onnx::label(node),
                    op: node.op_type.clone(),
                });
            }
            let next = onnx.consumer(node.output.first().map_or("", String::as_str))?;
            tensor = self.node(onnx, node, &tensor, next)?;
            self.tensors
                .insert(tensor.clone(), (self.last, self.ty, self.pending_offset));
        }
        if self.pending_offset != 0.0 {
            return Err(QonnxError::Tensor {
                file: onnx.origin.to_string(),
                tensor: output.to_string(),
                message: "signed activation codes must be read by a conv or dense layer".into(),
            });
        }
        let shape = self.ty.shape;
        if !shape.is_flat() && shape.height * shape.width != 1 {
            return Err(QonnxError::Tensor {
                file: onnx.origin.to_string(),
                tensor: output.to_string(),
                message: "the graph's output must be a vector of logits, not a feature map".into(),
            });
        }
        let ty = self.ty;
        self.push("logits".into(), Op::Output, ty);
        Ok(())
    }

    /// Imports one node reading the data tensor `x`; returns the tensor the walk goes on with.
    fn node(
        &mut self,
        onnx: &Onnx,
        node: &NodeProto,
        x: &str,
        next: Option<&NodeProto>,
    ) -> Result<String, QonnxError> {
        let fail = |message: &str| Err(onnx.error(node, message));
        let unsupported =
            |message: &str| Err(onnx.error_of(NodeFailure::Unsupported, node, message));
        let data_input = node.input.first().map(String::as_str);
        let op = node.op_type.as_str();
        let is_data_first = data_input == Some(x);
        if !is_data_first && !matches!(op, "Add" | "Mul") {
            return fail("reads the data as its second input, which qnnc does not support");
        }
        let custom = is_custom(node);
        if !custom && !is_standard(node) {
            return unsupported(&format!(
                "domain {} is not supported; qnnc imports {}",
                node.domain,
                supported()
            ));
        }
        if let Some((label, op)) = &self.input_shift {
            let passes = matches!(
                node.op_type.as_str(),
                "Quant"
                    | "IntQuant"
                    | "BipolarQuant"
                    | "Add"
                    | "Sub"
                    | "Mul"
                    | "Div"
                    | "Flatten"
                    | "Reshape"
                    | "Identity"
                    | "Dropout"
            );
            if !passes {
                return Err(QonnxError::Invalid {
                    file: onnx.origin.to_string(),
                    node: label.clone(),
                    op: op.clone(),
                    message: "shifts the input (Add or Sub), which cannot be kept exact on 8-bit pixels unless an input quantizer follows".into(),
                });
            }
        }
        match op {
            "Quant" | "IntQuant" | "BipolarQuant" if custom => self.activation(onnx, node)?,
            "Trunc" if custom => self.truncate(onnx, node)?,
            "Identity" | "Dropout" if !custom => {}
            "Relu" | "Clip" if !custom => self.clip(onnx, node, next)?,
            "Conv" | "Gemm" | "MatMul" if !custom => self.mac(onnx, node)?,
            "Add" if onnx.is_join(node) => self.join(onnx, node, x)?,
            "Add" | "Sub" | "Mul" | "Div" if !custom => {
                let affine = self.elementwise(onnx, node, x)?;
                self.affine(onnx, node, affine)?;
            }
            "BatchNormalization" if !custom => {
                let affine = self.batch_norm(onnx, node)?;
                self.affine(onnx, node, affine)?;
            }
            "Flatten" | "Reshape" if !custom => self.flatten(onnx, node)?,
            "Transpose" if !custom => self.transpose(onnx, node)?,
            _ => match onnx_importer(op).filter(|_| !custom) {
                Some(importer) => self.imported(onnx, node, importer)?,
                None => {
                    return unsupported(&format!(
                        "this op is not supported; qnnc imports {}",
                        supported()
                    ));
                }
            },
        }
        node.output
            .first()
            .cloned()
            .ok_or_else(|| onnx.error(node, "has no output"))
    }

    fn channels(&self) -> usize {
        self.ty.shape.channels
    }

    /// Whether the data path is still the image, before any layer (flattened or not).
    fn at_input(&self) -> bool {
        let mut node = self.last;
        while self.graph.graph[node].op == Op::Flatten {
            node = self
                .graph
                .predecessor(node)
                .expect("a flatten reads a node");
        }
        self.graph.graph[node].op == Op::Input
    }

    fn activation(&mut self, onnx: &Onnx, node: &NodeProto) -> Result<(), QonnxError> {
        let q = Quantizer::read(onnx, node)?;
        let fail = |m: &str| Err(onnx.error(node, m));
        let Some(scale) = q.scale.scalar() else {
            return fail("per-channel activation scales are not supported (one scale a tensor)");
        };
        if self.at_input() {
            if self.input_shift.is_some() || self.ty.scale != self.input_type_scale() {
                return self.requantize_input(onnx, node, &q, scale);
            }
            return self.input_quantizer(onnx, node, &q, scale);
        }
        if !q.bipolar && q.bits == 1 {
            return fail("1-bit integer activations are not supported; use BipolarQuant");
        }
        if matches!(self.layout, Layout::Nhwc) {
            return fail("follows a Transpose to NHWC; only a flatten may follow that");
        }
        if self.pending_offset != 0.0 {
            return fail("follows signed codes that no conv or dense layer has read");
        }
        let offset = self.signed_offset(&q);
        if offset != 0 {
            // Signed codes c are kept as the unsigned codes c + offset: the quantizer's input
            // moves up by offset steps, and the next MAC subtracts offset steps in its bias.
            let shift = offset as f64 * scale;
            let channels = self.channels();
            self.affine(
                onnx,
                node,
                Affine {
                    a: vec![1.0; channels],
                    b: vec![shift; channels],
                },
            )?;
            self.pending_offset = shift;
        }
        let name = self.name_for(node, "act");
        let out = quantizer_type(self.ty.shape, q.bits, scale);
        self.push(
            name,
            Op::Quantize {
                bits: q.bits,
                truncation: None,
                narrow: q.narrow && !q.bipolar,
            },
            out,
        );
        Ok(())
    }

    /// The offset that makes a quantizer's signed codes unsigned: the negated smallest code.
    fn signed_offset(&self, q: &Quantizer) -> i64 {
        if q.bipolar || !q.signed {
            0
        } else {
            (1i64 << (q.bits - 1)) - q.narrow as i64
        }
    }

    /// The input scale before any arithmetic on the input.
    fn input_type_scale(&self) -> f64 {
        self.given_input_scale
            .unwrap_or(input_type(self.ty.shape).scale)
    }

    /// A quantizer after arithmetic on the input (FINN's `2x - 1` and an 8-bit signed
    /// quantizer): its codes are not the pixels, so a layer of its own computes them exactly
    /// from the pixels, a 1x1 convolution by 1 whose requantization is the preprocessing and
    /// the quantizer.
    fn requantize_input(
        &mut self,
        onnx: &Onnx,
        node: &NodeProto,
        q: &Quantizer,
        scale: f64,
    ) -> Result<(), QonnxError> {
        let fail = |m: &str| Err(onnx.error(node, m));
        if !q.bipolar && q.bits < 2 {
            return fail("1-bit integer activations are not supported; use BipolarQuant");
        }
        let mut flattened = false;
        while self.graph.graph[self.last].op == Op::Flatten {
            let before = self
                .graph
                .predecessor(self.last)
                .expect("a flatten reads a node");
            self.graph.graph.remove_node(self.last);
            self.last = before;
            flattened = true;
        }
        let Some(shape) = self.image else {
            return fail(
                "a quantizer after arithmetic on the input needs an image input [N, C, H, W]",
            );
        };
        let channels = shape.channels;
        self.layout = Layout::Nchw;
        self.ty.shape = shape;
        let offset = self.signed_offset(q);
        let mut codes = vec![0i32; channels * channels];
        for c in 0..channels {
            codes[c * channels + c] = 1;
        }
        let name = self.name_for(node, "input_quant");
        let value = TensorType {
            shape,
            precision: Precision::Float,
            scale: self.ty.scale,
        };
        self.push(
            format!("{name}_pixels"),
            Op::Mac {
                dense: false,
                kernel: 1,
                stride: 1,
                padding: 0,
                outputs: channels,
                weight_precision: Precision::Int {
                    bits: 2,
                    signed: true,
                },
                weights: Some(Weights {
                    step: 1.0,
                    fan_in: channels,
                    outputs: channels,
                    codes,
                }),
                bias: None,
            },
            value,
        );
        let shift = offset as f64 * scale - self.pending_offset;
        self.push_affine(
            format!("{name}_prepare"),
            Affine {
                a: vec![1.0; channels],
                b: vec![shift; channels],
            },
        );
        self.push(
            name,
            Op::Quantize {
                bits: q.bits,
                truncation: None,
                narrow: q.narrow && !q.bipolar,
            },
            quantizer_type(shape, q.bits, scale),
        );
        self.pending_offset = offset as f64 * scale;
        self.input_shift = None;
        self.input_quantized = true;
        if flattened {
            let name = self.fresh_name("input_flatten");
            let out = TensorType {
                shape: Shape::flat(shape.len()),
                ..self.ty
            };
            self.push(name, Op::Flatten, out);
            self.layout = Layout::Flat { chw: Some(shape) };
        }
        Ok(())
    }

    /// A quantizer on the image makes the codes the hardware reads: 8-bit unsigned pixels whose
    /// step is the quantizer's scale.
    fn input_quantizer(
        &mut self,
        onnx: &Onnx,
        node: &NodeProto,
        q: &Quantizer,
        scale: f64,
    ) -> Result<(), QonnxError> {
        let fail = |m: &str| Err(onnx.error(node, m));
        if q.bipolar || q.signed || q.narrow || q.bits != 8 {
            return fail(
                "an input quantizer must make 8-bit unsigned full-range codes, the pixels qnnc reads",
            );
        }
        if self.input_quantized {
            return fail("quantizes the input a second time");
        }
        if self.given_input_scale.is_some() {
            return fail("sets the input's scale, so --input-scale does not apply to this model");
        }
        if self.ty.scale != input_type(self.ty.shape).scale {
            return fail(
                "follows a Mul or Div of the input; put the scaling after the input quantizer",
            );
        }
        self.ty.scale = scale;
        self.input_quantized = true;
        Ok(())
    }

    /// A constant Mul or Div of the image changes the value of a pixel step; a shift or a
    /// per-channel scale would need codes other than the pixels.
    fn scale_input(
        &mut self,
        onnx: &Onnx,
        node: &NodeProto,
        affine: &Affine,
    ) -> Result<(), QonnxError> {
        let fail = |m: &str| Err(onnx.error(node, m));
        let (factor, shift) = (affine.a[0], affine.b[0]);
        if affine.b.iter().any(|&b| b != shift) {
            return fail(
                "shifts the input per channel, which cannot be kept exact on 8-bit pixels",
            );
        }
        if affine.a.iter().any(|&a| a != factor) {
            return fail(
                "scales the input per channel, which cannot be kept exact on 8-bit pixels",
            );
        }
        let scale = self.ty.scale * factor;
        if !(scale.is_finite() && scale > 0.0) {
            return fail("makes the input's scale zero, negative or infinite");
        }
        if self.input_quantized && shift != 0.0 {
            return fail("shifts the quantized input, which cannot be kept exact on its codes");
        }
        self.ty.scale = scale;
        // value = pixel * scale - offset, so a shift by b lowers the offset by b.
        self.pending_offset = self.pending_offset * factor - shift;
        if shift != 0.0 && self.input_shift.is_none() {
            self.input_shift = Some((Onnx::label(node), node.op_type.clone()));
        }
        Ok(())
    }

    /// A Trunc of the codes of an unsigned activation quantizer, right after it or after the
    /// max-pools and flattens that follow it (a truncation never decreases as codes grow, so it
    /// commutes with max-pooling): it becomes part of that quantizer.
    fn truncate(&mut self, onnx: &Onnx, node: &NodeProto) -> Result<(), QonnxError> {
        let fail = |m: &str| Err(onnx.error(node, m));
        let mut after = Vec::new();
        let mut quantizer = self.last;
        while matches!(
            self.graph.graph[quantizer].op,
            Op::MaxPool { .. } | Op::Flatten
        ) {
            after.push(quantizer);
            quantizer = self.graph.predecessor(quantizer).expect("not the input");
        }
        let Op::Quantize {
            bits,
            truncation: None,
            narrow: false,
        } = self.graph.graph[quantizer].op
        else {
            return fail("must follow an activation Quant (or the max-pool after it)");
        };
        let codes = if quantizer == self.last {
            self.ty
        } else {
            self.graph.output_type(quantizer).expect("typed")
        };
        let width = |index: usize, what: &str| -> Result<u32, QonnxError> {
            let w = onnx.scalar(node, index, what)?;
            if !(1.0..=16.0).contains(&w) || w.fract() != 0.0 {
                return Err(onnx.error(
                    node,
                    &format!("{what} {w} is outside 1..=16, the integer widths qnnc supports"),
                ));
            }
            Ok(w as u32)
        };
        let scale = onnx.scalar(node, 1, "the scale")?;
        if onnx.scalar(node, 2, "the zero point")? != 0.0 {
            return fail("zero points other than 0 are not supported");
        }
        let input_bits = width(3, "the input bit width")?;
        // Version 2 has an output scale before the output width, and shifts by its ratio to
        // the input scale; version 1 shifts by the difference of the widths and keeps the
        // input scale.
        let (out_scale, out_bits, shift) = match node.input.len() {
            6 => {
                let out_scale = onnx.scalar(node, 4, "the output scale")?;
                let shift = (out_scale / scale).log2().round();
                (out_scale, width(5, "the output bit width")?, shift)
            }
            5 => {
                let out_bits = width(4, "the output bit width")?;
                (scale, out_bits, input_bits as f64 - out_bits as f64)
            }
            n => return fail(&format!("has {n} inputs; versions 1 and 2 take 5 or 6")),
        };
        if bits < 2 || input_bits != bits || (scale - codes.scale).abs() > 1e-6 * codes.scale {
            return fail(&format!(
                "reads u{input_bits} codes of scale {scale}, but the quantizer before it makes {} codes of scale {}",
                codes.precision, codes.scale
            ));
        }
        if !(out_scale.is_finite() && out_scale > 0.0) {
            return fail("the output scale must be positive and finite");
        }
        if !(0.0..input_bits as f64).contains(&shift) || out_bits < 2 {
            return fail("the output must have 2 bits or more and a shift of 0 <= k < input bits");
        }
        if int_attribute(node, "signed", 1) != 0 || int_attribute(node, "narrow", 0) != 0 {
            return fail("only unsigned, full-range truncation (signed = 0, narrow = 0) of unsigned codes is supported");
        }
        let mode = attribute(node, "rounding_mode").map_or("FLOOR".to_string(), |a| {
            String::from_utf8_lossy(&a.s).to_ascii_uppercase()
        });
        let rounding = match mode.as_str() {
            "FLOOR" => Rounding::Floor,
            "ROUND" => Rounding::Round,
            "CEIL" => Rounding::Ceil,
            other => {
                return fail(&format!(
                    "rounding_mode {other} is not FLOOR, ROUND or CEIL"
                ))
            }
        };
        self.graph.graph[quantizer].op = Op::Quantize {
            bits: out_bits,
            truncation: Some(Truncation {
                input_bits,
                input_scale: codes.scale,
                shift: shift as u32,
                rounding,
            }),
            narrow: false,
        };
        let retype = |t: TensorType| TensorType {
            precision: Precision::unsigned(out_bits),
            scale: out_scale,
            ..t
        };
        for n in std::iter::once(quantizer).chain(after) {
            if n != self.last {
                let t = self.graph.output_type(n).expect("typed");
                self.graph.set_output_type(n, retype(t));
            }
        }
        self.ty = retype(self.ty);
        Ok(())
    }

    /// ReLU and clipping are kept only where the quantizer after them makes them redundant:
    /// an unsigned quantizer clips at 0 and at its largest code, a sign ignores magnitudes.
    fn clip(
        &mut self,
        onnx: &Onnx,
        node: &NodeProto,
        next: Option<&NodeProto>,
    ) -> Result<(), QonnxError> {
        let (low, high) = if node.op_type == "Relu" {
            (0.0, f64::INFINITY)
        } else {
            let bound = |index: usize, attr: &str, default: f64| -> Result<f64, QonnxError> {
                match node.input.get(index).filter(|n| !n.is_empty()) {
                    Some(_) => onnx.scalar(node, index, attr),
                    None => Ok(attribute(node, attr).map_or(default, |a| a.f as f64)),
                }
            };
            (
                bound(1, "min", f64::NEG_INFINITY)?,
                bound(2, "max", f64::INFINITY)?,
            )
        };
        let redundant = match next.filter(|n| is_custom(n)) {
            Some(n) if n.op_type == "BipolarQuant" => low < 0.0 && high >= 0.0,
            Some(n) if matches!(n.op_type.as_str(), "Quant" | "IntQuant") => {
                match Quantizer::read(onnx, n) {
                    Ok(q) if !q.signed && !q.narrow => {
                        let largest =
                            q.scale.scalar().unwrap_or(f64::INFINITY) * q.code_range().1 as f64;
                        low <= 0.0 && high >= largest
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if redundant {
            Ok(())
        } else {
            Err(onnx.error(
                node,
                "is supported only right before an unsigned Quant (quantized ReLU) or a BipolarQuant that it does not change: a float activation cannot run on the integer model",
            ))
        }
    }

    fn mac(&mut self, onnx: &Onnx, node: &NodeProto) -> Result<(), QonnxError> {
        let fail = |m: &str| Err(onnx.error(node, m));
        let shape = |m: &str| Err(onnx.error_of(NodeFailure::Shape, node, m));
        let weights_name = node.input.get(1).map(String::as_str).unwrap_or("");
        let conv = node.op_type == "Conv";
        // The output axis of the weight tensor as stored.
        let (output_axis, transposed) = match node.op_type.as_str() {
            "Conv" => (0, true),
            "Gemm" => {
                if attribute(node, "alpha").is_some_and(|a| a.f != 1.0)
                    || attribute(node, "beta").is_some_and(|a| a.f != 1.0)
                    || int_attribute(node, "transA", 0) != 0
                {
                    return fail("only alpha = 1, beta = 1 and transA = 0 are supported");
                }
                let t = int_attribute(node, "transB", 0) != 0;
                (if t { 0 } else { 1 }, t)
            }
            _ => (1, false),
        };
        let StoredWeights {
            dims,
            codes,
            scales,
            precision,
        } = quantized_weights(onnx, node, weights_name, output_axis, true)?;
        let outputs = dims[output_axis];
        let (input_shape, fan_in, kernel, stride, padding) = if conv {
            if self.layout != Layout::Nchw || dims.len() != 4 {
                return fail("needs an NCHW feature map and 4-D weights");
            }
            let (cin, k) = (dims[1], dims[2]);
            if dims[3] != k || k == 0 {
                return fail("only square kernels are supported");
            }
            if ints_attribute(node, "kernel_shape").is_some_and(|ks| ks != [k as i64, k as i64]) {
                return shape("kernel_shape differs from the weights' shape");
            }
            if int_attribute(node, "group", 1) != 1 {
                return fail("grouped convolutions are not supported");
            }
            if ints_attribute(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                return fail("dilations other than 1 are not supported");
            }
            if attribute(node, "auto_pad")
                .is_some_and(|a| !a.s.is_empty() && a.s.as_slice() != b"NOTSET")
            {
                return fail("auto_pad is not supported; give explicit pads");
            }
            let strides = ints_attribute(node, "strides").unwrap_or(vec![1, 1]);
            let pads = ints_attribute(node, "pads").unwrap_or(vec![0; 4]);
            if strides.len() != 2 || strides[0] != strides[1] || strides[0] < 1 {
                return fail("strides must be equal in both dimensions");
            }
            if pads.len() != 4 || pads.iter().any(|&p| p != pads[0]) || pads[0] < 0 {
                return fail("pads must be the same on every side");
            }
            if cin != self.channels() {
                return shape(&format!(
                    "weights read {cin} channels but the input has {}",
                    self.channels()
                ));
            }
            (
                self.ty.shape,
                k * k * cin,
                k,
                strides[0] as usize,
                pads[0] as usize,
            )
        } else {
            let Layout::Flat { chw } = self.layout else {
                return shape("needs a flattened input (a Flatten or Reshape before it)");
            };
            if dims.len() != 2 {
                return fail("needs 2-D weights");
            }
            let fan_in = dims[1 - output_axis];
            if fan_in != self.ty.shape.len() {
                return shape(&format!(
                    "weights read {fan_in} features but the input has {}",
                    self.ty.shape.len()
                ));
            }
            (chw.unwrap_or(self.ty.shape), fan_in, 1, 1, 0)
        };
        // qnnc's weights are [fan_in, outputs], rows in (ky, kx, channel) order: the HWC order
        // of the receptive field, or of the feature map a dense layer reads.
        let mut ir_codes = vec![0i32; fan_in * outputs];
        let c = input_shape.channels;
        let (h, w) = if conv {
            (kernel, kernel)
        } else {
            (input_shape.height, input_shape.width)
        };
        for o in 0..outputs {
            for ci in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let chw = (ci * h + y) * w + x;
                        let stored = if transposed {
                            o * fan_in + chw
                        } else {
                            chw * outputs + o
                        };
                        ir_codes[((y * w + x) * c + ci) * outputs + o] = codes[stored];
                    }
                }
            }
        }
        let step = scales.iter().cloned().fold(0.0, f64::max);
        let bias: Option<Vec<f64>> = match node.input.get(2).filter(|n| !n.is_empty()) {
            Some(_) => {
                let b = onnx.constant(node, 2, "the bias")?;
                let along_outputs = matches!(b.dims.as_slice(), [n] | [1, n] if *n == outputs);
                if !along_outputs {
                    return fail(&format!(
                        "the bias needs {outputs} values along the outputs"
                    ));
                }
                Some(b.values.clone())
            }
            None => None,
        };
        // Codes read with an offset (signed codes kept unsigned, or a shifted input): the layer
        // subtracts the offset times the sum of each output's weights.
        let bias = if self.pending_offset != 0.0 {
            if padding > 0 {
                return fail("pads signed or shifted codes, whose zero is not the code 0");
            }
            let offset = self.pending_offset;
            let mut b = bias.unwrap_or_else(|| vec![0.0; outputs]);
            for (o, b) in b.iter_mut().enumerate() {
                let scale = scales[if scales.len() > 1 { o } else { 0 }];
                let sum: i64 = (0..fan_in).map(|i| ir_codes[i * outputs + o] as i64).sum();
                *b -= offset * scale * sum as f64;
            }
            self.pending_offset = 0.0;
            Some(b)
        } else {
            bias
        };
        // With per-channel weight scales the bias joins the batch norm that applies them.
        let (mac_bias, scale_shift) = match bias {
            Some(b) if scales.len() > 1 => (None, b),
            other => (
                other.map(|b| b.iter().map(|&v| v as f32).collect()),
                vec![0.0; outputs],
            ),
        };
        let out_shape = if conv {
            let size = |n: usize| {
                (n + 2 * padding)
                    .checked_sub(kernel)
                    .map(|d| d / stride + 1)
            };
            match (size(input_shape.height), size(input_shape.width)) {
                (Some(height), Some(width)) => Shape {
                    height,
                    width,
                    channels: outputs,
                },
                _ => return fail("the kernel is larger than the padded input"),
            }
        } else {
            Shape::flat(outputs)
        };
        let name = self.name_for(node, if conv { "conv" } else { "dense" });
        let out = TensorType {
            shape: out_shape,
            precision: Precision::Float,
            scale: step * self.ty.scale,
        };
        let op = Op::Mac {
            dense: !conv,
            kernel,
            stride,
            padding,
            outputs,
            weight_precision: precision,
            weights: Some(Weights {
                step,
                fan_in,
                outputs,
                codes: ir_codes,
            }),
            bias: mac_bias,
        };
        self.push(name.clone(), op, out);
        self.layout = if conv {
            Layout::Nchw
        } else {
            Layout::Flat { chw: None }
        };
        if scales.len() > 1 {
            // Per-channel weight scales: the MAC counts in units of the largest, a batch norm
            // after it scales each channel by its own.
            let affine = Affine {
                a: scales.iter().map(|s| s / step).collect(),
                b: scale_shift,
            };
            let scale_name = self.fresh_name(&format!("{name}_weight_scale"));
            self.push_affine(scale_name, affine);
        }
        Ok(())
    }

    /// A per-channel Add, Sub, Mul or Div by a constant.
    fn elementwise(&self, onnx: &Onnx, node: &NodeProto, x: &str) -> Result<Affine, QonnxError> {
        let other = if node.input.first().map(String::as_str) == Some(x) {
            1
        } else {
            0
        };
        let c = onnx.constant(node, other, "the other operand")?;
        if self.layout == Layout::Nhwc {
            return Err(onnx.error(node, "arithmetic on NHWC data is not supported"));
        }
        let channels = self.channels();
        let values: Vec<f64> = if c.values.len() == 1 {
            vec![c.values[0]; channels]
        } else {
            // Channels are axis 1 of NCHW and of [N, features] alike.
            let channel_axis = 1;
            let rank = if self.layout == Layout::Nchw { 4 } else { 2 };
            if c.dims.len() > rank {
                return Err(onnx.error(node, "the constant has more dimensions than the data"));
            }
            let mut dims = vec![1; rank];
            let offset = dims.len() - c.dims.len();
            dims[offset..].copy_from_slice(&c.dims);
            let per_channel = dims
                .iter()
                .enumerate()
                .all(|(i, &d)| d == 1 || (i == channel_axis && d == channels));
            if !per_channel || c.values.len() != channels {
                return Err(onnx.error(node, "only scalar or per-channel constants are supported"));
            }
            c.values.clone()
        };
        let ones = vec![1.0; channels];
        let zeros = vec![0.0; channels];
        Ok(match node.op_type.as_str() {
            "Add" => Affine { a: ones, b: values },
            "Sub" => Affine {
                a: ones,
                b: values.iter().map(|v| -v).collect(),
            },
            "Mul" => Affine {
                a: values,
                b: zeros,
            },
            _ => {
                if values.contains(&0.0) {
                    return Err(onnx.error(node, "divides by zero"));
                }
                Affine {
                    a: values.iter().map(|v| 1.0 / v).collect(),
                    b: zeros,
                }
            }
        })
    }

    fn batch_norm(&mut self, onnx: &Onnx, node: &NodeProto) -> Result<Affine, QonnxError> {
        if self.layout == Layout::Nhwc {
            return Err(onnx.error(node, "batch norm of NHWC data is not supported"));
        }
        if int_attribute(node, "training_mode", 0) != 0 || node.output.len() > 1 {
            return Err(onnx.error(node, "training mode is not supported"));
        }
        let channels = self.channels();
        let mut params = Vec::new();
        for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            let c = onnx.constant(node, i, what)?;
            if c.values.len() != channels {
                return Err(onnx.error(node, &format!("{what} needs {channels} values")));
            }
            params.push(c.values.iter().map(|&v| v as f32).collect::<Vec<f32>>());
        }
        let epsilon = attribute(node, "epsilon").map_or(1e-5, |a| a.f);
        let bn = BatchNormParams {
            gamma: params[0].clone(),
            beta: params[1].clone(),
            mean: params[2].clone(),
            var: params[3].clone(),
            epsilon,
        };
        if matches!(self.last_op(), Op::Mac { .. }) {
            // Right after its MAC, a batch norm is kept as it is (export writes it so).
            let name = self.name_for(node, "bn");
            let out = TensorType {
                precision: Precision::Float,
                scale: 1.0,
                ..self.ty
            };
            self.push(name, Op::BatchNorm(bn), out);
            return Ok(Affine {
                a: vec![1.0; channels],
                b: vec![0.0; channels],
            });
        }
        Ok(normalized(&bn))
    }

    /// Applies a per-channel affine map to the data: into the bias of the MAC before it, or
    /// composed with the batch norm before it, or as a new batch norm after a MAC.
    fn affine(&mut self, onnx: &Onnx, node: &NodeProto, affine: Affine) -> Result<(), QonnxError> {
        if affine.a.iter().all(|&a| a == 1.0) && affine.b.iter().all(|&b| b == 0.0) {
            return Ok(());
        }
        if self.at_input() {
            return self.scale_input(onnx, node, &affine);
        }
        if let Layout::Flat { chw: Some(_) } = self.layout {
            return Err(onnx.error(
                node,
                "per-feature arithmetic on a flattened feature map is not supported",
            ));
        }
        let only_shift = affine.a.iter().all(|&a| a == 1.0);
        match self.last_op() {
            Op::Mac { bias, .. } if only_shift => {
                let old = bias.take().unwrap_or_else(|| vec![0.0; affine.b.len()]);
                *bias = Some(
                    old.iter()
                        .zip(&affine.b)
                        .map(|(&o, &b)| (o as f64 + b) as f32)
                        .collect(),
                );
            }
            Op::Mac { .. } => {
                let name = self.name_for(node, "affine");
                self.push_affine(name, affine);
            }
            Op::BatchNorm(bn) => {
                let before = normalized(bn);
                let composed = Affine {
                    a: before.a.iter().zip(&affine.a).map(|(x, y)| x * y).collect(),
                    b: before
                        .b
                        .iter()
                        .zip(affine.a.iter().zip(&affine.b))
                        .map(|(b0, (a, b))| a * b0 + b)
                        .collect(),
                };
                *bn = affine_batch_norm(&composed);
            }
            _ => return Err(onnx.error(
                node,
                "scales or shifts are folded only between a conv or dense layer and its quantizer",
            )),
        }
        Ok(())
    }

    fn push_affine(&mut self, name: String, affine: Affine) {
        let out = TensorType {
            precision: Precision::Float,
            scale: 1.0,
            ..self.ty
        };
        self.push(name, Op::BatchNorm(affine_batch_norm(&affine)), out);
    }

    /// A node that one op imports ([`ops::ONNX_IMPORTS`]): the op reads an NCHW feature map,
    /// and says what it makes of the node and of the codes it reads.
    fn imported(
        &mut self,
        onnx: &Onnx,
        node: &NodeProto,
        importer: &OnnxImporter,
    ) -> Result<(), QonnxError> {
        if self.layout != Layout::Nchw {
            return Err(onnx.error(node, "needs an NCHW feature map"));
        }
        let (op, out) =
            (importer.import)(node, self.ty, self.pending_offset != 0.0).map_err(|error| {
                match error {
                    ImportError::Invalid(message) => onnx.error(node, &message),
                    ImportError::Shape(message) => {
                        onnx.error_of(NodeFailure::Shape, node, &message)
                    }
                }
            })?;
        let name = self.name_for(node, importer.fallback_name);
        self.push(name, op, out);
        Ok(())
    }

    /// An Add of the path's data `x` and a tensor computed earlier on the path: the path at
    /// input 0, the skip at input 1, whatever ONNX's order.
    fn join(&mut self, onnx: &Onnx, node: &NodeProto, x: &str) -> Result<(), QonnxError> {
        let fail = |m: String| Err(onnx.error(node, &m));
        if self.layout == Layout::Nhwc {
            return fail("arithmetic on NHWC data is not supported".into());
        }
        let skip = if node.input[0] == x {
            &node.input[1]
        } else {
            &node.input[0]
        };
        let Some(&(source, skip_type, skip_offset)) = self.tensors.get(skip) else {
            return Err(QonnxError::LaterSkip {
                file: onnx.origin.to_string(),
                node: Onnx::label(node),
                op: node.op_type.clone(),
                tensor: skip.clone(),
            });
        };
        if self.pending_offset != 0.0 || skip_offset != 0.0 {
            return fail(
                "adds signed codes, which qnnc keeps shifted; adds need unsigned or bipolar codes"
                    .into(),
            );
        }
        // A node that later merged into the one before (a Trunc into its Quant) changed what
        // the tensor's node produces.
        let now = if source == self.last {
            Some(self.ty)
        } else {
            self.graph.output_type(source)
        };
        if now != Some(skip_type) {
            return fail(format!(
                "adds tensor {skip}, which qnnc merged with the node after it"
            ));
        }
        let kind = if self.ty.shape == skip_type.shape {
            NodeFailure::Invalid
        } else {
            NodeFailure::Shape
        };
        let (out, shifts) =
            add_type(self.ty, skip_type).map_err(|m| onnx.error_of(kind, node, &m))?;
        let name = self.name_for(node, "add");
        self.push(name, Op::Add { shifts }, out);
        self.graph.connect(source, self.last, 1, skip_type);
        Ok(())
    }

    fn flatten(&mut self, onnx: &Onnx, node: &NodeProto) -> Result<(), QonnxError> {
        let len = self.ty.shape.len() as f64;
        if node.op_type == "Flatten" {
            if int_attribute(node, "axis", 1) != 1 {
                return Err(onnx.error(node, "only axis 1 is supported"));
            }
        } else {
            let target = &onnx.constant(node, 1, "the shape")?.values;
            let flat = matches!(target.as_slice(), [n, f] if (*n == 1.0 || *n == 0.0 || *n == -1.0)
                && (*f == -1.0 || *f == len));
            if !flat {
                return Err(onnx.error(
                    node,
                    "only reshapes that flatten to [N, features] are supported",
                ));
            }
        }
        let shape = self.ty.shape;
        self.layout = match self.layout {
            Layout::Flat { .. } => return Ok(()),
            Layout::Nchw => Layout::Flat { chw: Some(shape) },
            // Flattening NHWC is qnnc's own (HWC) order.
            Layout::Nhwc => Layout::Flat { chw: None },
        };
        let name = self.name_for(node, "flatten");
        let out = TensorType {
            shape: Shape::flat(shape.len()),
            ..self.ty
        };
        self.push(name, Op::Flatten, out);
        Ok(())
    }

    fn transpose(&mut self, onnx: &Onnx, node: &NodeProto) -> Result<(), QonnxError> {
        let perm = ints_attribute(node, "perm").unwrap_or_default();
        match (self.layout, perm.as_slice()) {
            (Layout::Nchw, [0, 2, 3, 1]) => self.layout = Layout::Nhwc,
            (Layout::Nhwc, [0, 3, 1, 2]) => self.layout = Layout::Nchw,
            (Layout::Nchw | Layout::Nhwc, [0, 1, 2, 3]) | (Layout::Flat { .. }, [0, 1]) => {}
            _ => {
                return Err(onnx.error(
                    node,
                    "only transposes between NCHW and NHWC (or identities) are supported",
                ))
            }
        }
        Ok(())
    }
}

/// A batch norm as `y = a * x + b`.
fn normalized(bn: &BatchNormParams) -> Affine {
    let a: Vec<f64> = bn
        .gamma
        .iter()
        .zip(&bn.var)
        .map(|(&g, &v)| g as f64 / (v as f64 + bn.epsilon as f64).sqrt())
        .collect();
    let b = bn
        .beta
        .iter()
        .zip(&bn.mean)
        .zip(&a)
        .map(|((&beta, &mean), a)| beta as f64 - a * mean as f64)
        .collect();
    Affine { a, b }
}

/// `y = a * x + b` as a batch norm (mean 0, variance 1, epsilon 0).
fn affine_batch_norm(affine: &Affine) -> BatchNormParams {
    let n = affine.a.len();
    BatchNormParams {
        gamma: affine.a.iter().map(|&v| v as f32).collect(),
        beta: affine.b.iter().map(|&v| v as f32).collect(),
        mean: vec![0.0; n],
        var: vec![1.0; n],
        epsilon: 0.0,
    }
}
