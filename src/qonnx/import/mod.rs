//! QONNX -> IR: walks the data path of an ONNX graph from its one input to its one output and
//! builds the IR before lowering. Weights come from the Quant or BipolarQuant node on each
//! weight initializer, activation precisions and scales from the quantizers on the data path.
//! Everything between a MAC and its quantizer that scales or shifts per channel (bias, batch
//! norm, Mul, Add, per-channel weight scales) becomes one batch norm that `fold-batch-norm`
//! turns into integers. Anything else is refused, naming the node and the op.
//!
//! The image's 8-bit pixels are the graph input's codes: its value is `pixel * scale`. The
//! scale is 1/255 unless the graph says otherwise (an 8-bit unsigned `Quant` on the input, or
//! a constant `Mul` or `Div` of the input, composed into the scale) or the user does
//! ([`ImportOptions::input_scale`]). A quantizer after arithmetic on the input (Brevitas's FINN
//! examples: `2x - 1`, then a 1- or 2-bit or an 8-bit signed quantizer) becomes an input layer
//! of its own that computes its codes exactly from the pixels. Signed activation codes are
//! kept as unsigned codes shifted by the negated smallest code, which the next MAC's bias
//! takes back. Arithmetic on constants alone (TensorNorm's) is evaluated first.
//!
//! Skip connections: an Add of two data tensors joins the path and a tensor computed earlier on
//! it (the output of an activation quantizer, as qnnc exports them), which is read by the
//! path's next node and by such Adds only. The path goes on through the node that is not
//! such an Add; a skip with layers of its own, or an Add of a tensor not computed before it
//! (a cycle), is refused.

use std::collections::HashMap;
use std::path::Path;

use onnx_protobuf::{type_proto, AttributeProto, Message, ModelProto, NodeProto};

mod builder;
mod quantizer;

use super::tensor::{decode, Constant};
use super::QonnxError;
use super::DOMAINS;
use crate::ir::ops::{self, OnnxAttributes};
use crate::ir::verify::verify;
use crate::ir::Graph;
use crate::spec::{is_identifier, Shape};
use builder::Builder;

/// The ops import reads, for the message that refuses the others: those it folds into ops
/// itself, those each imported as one op by the op's own function ([`ops::ONNX_IMPORTS`]), and
/// the layout ops.
fn supported() -> String {
    let imported: Vec<&str> = ops::ONNX_IMPORTS.iter().map(|i| i.op_type).collect();
    format!(
        "Quant, IntQuant, BipolarQuant, Trunc, Conv, Gemm, MatMul, Add, Sub, Mul, Div, \
         (Pow, Sqrt, Reciprocal, Neg of constants), BatchNormalization, Relu, Clip, {}, \
         Flatten, Reshape, Transpose, Identity, Dropout",
        imported.join(", ")
    )
}

/// Largest image side (or feature count) an input may have.
const MAX_INPUT_SIDE: usize = 1 << 16;

/// How to read a QONNX file beyond what it says itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ImportOptions {
    /// The value of one pixel step for a graph that has no input quantizer (`None`: 1/255).
    pub input_scale: Option<f64>,
}

/// Reads a QONNX file.
pub fn load(path: &Path) -> Result<Graph, QonnxError> {
    load_with(path, ImportOptions::default())
}

/// Reads a QONNX file with `options`.
pub fn load_with(path: &Path, options: ImportOptions) -> Result<Graph, QonnxError> {
    let origin = path.display().to_string();
    let bytes =
        crate::input::read(path, crate::input::MODEL_FILE).map_err(|e| QonnxError::Read {
            file: origin.clone(),
            message: e.to_string(),
        })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    import_with(&bytes, &origin, &stem, options)
}

/// Builds the IR of the QONNX model in `bytes`; `fallback_name` names a graph that has none.
pub fn import(bytes: &[u8], origin: &str, fallback_name: &str) -> Result<Graph, QonnxError> {
    import_with(bytes, origin, fallback_name, ImportOptions::default())
}

/// [`import`] with `options`.
pub fn import_with(
    bytes: &[u8],
    origin: &str,
    fallback_name: &str,
    options: ImportOptions,
) -> Result<Graph, QonnxError> {
    let file_error = |message: String| QonnxError::Decode {
        file: origin.to_string(),
        message,
    };
    let model = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| file_error(format!("not an ONNX model (protobuf: {e})")))?;
    let graph = model
        .graph
        .as_ref()
        .filter(|g| model.ir_version > 0 && !g.node.is_empty())
        .ok_or_else(|| file_error("not an ONNX model (no IR version or no graph)".into()))?;
    let onnx = Onnx::new(graph.node.as_slice(), origin)?;
    let mut constants = onnx.constants;
    for t in &graph.initializer {
        let c = decode(t).map_err(|m| QonnxError::Initializer {
            file: origin.to_string(),
            name: t.name.clone(),
            message: m,
        })?;
        constants.insert(t.name.clone(), c);
    }
    let mut onnx = Onnx { constants, ..onnx };
    onnx.fold_constants()?;
    let graph_error = |message: String| QonnxError::Graph {
        file: origin.to_string(),
        message,
    };
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !onnx.constants.contains_key(&i.name))
        .collect();
    if inputs.len() != 1 {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(graph_error(format!(
            "has {} inputs ({}); qnnc reads networks with one image input",
            inputs.len(),
            names.join(", ")
        )));
    }
    if graph.output.len() != 1 {
        return Err(graph_error(format!(
            "has {} outputs; qnnc reads networks with one output (the logits)",
            graph.output.len()
        )));
    }
    let input = inputs[0];
    let dims = tensor_dims(input).ok_or_else(|| {
        graph_error(format!(
            "input {} is not a float tensor of known shape",
            input.name
        ))
    })?;
    let (shape, rank) = match dims.as_slice() {
        [_, c, h, w] => (
            Shape {
                height: *h,
                width: *w,
                channels: *c,
            },
            4,
        ),
        [_, f] => (Shape::flat(*f), 2),
        _ => {
            return Err(graph_error(format!(
                "input {} has shape {dims:?}; qnnc reads [N, C, H, W] images or [N, features]",
                input.name
            )))
        }
    };
    if dims.iter().any(|&d| d == 0 || d > MAX_INPUT_SIDE) {
        return Err(graph_error(format!(
            "input {} has shape {dims:?}; every dimension must be 1..={MAX_INPUT_SIDE}",
            input.name
        )));
    }
    // PyTorch names every graph it exports alike; the file name says more.
    let generic = ["main_graph", "torch_jit", "torch-jit-export"].contains(&graph.name.as_str());
    let name = identifier(&graph.name)
        .filter(|_| !generic)
        .or_else(|| identifier(fallback_name))
        .unwrap_or_else(|| "imported".to_string());
    if let Some(scale) = options.input_scale {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(graph_error(format!(
                "--input-scale {scale} must be positive and finite"
            )));
        }
    }
    let mut builder = Builder::new(&name, shape, rank, options.input_scale);
    builder.walk(&onnx, &input.name, &graph.output[0].name)?;
    let ir = builder.graph;
    if ir.macs().is_empty() {
        return Err(graph_error("has no conv or dense layer".into()));
    }
    verify(&ir, origin)?;
    Ok(ir)
}

/// The dimensions of a value's tensor type; symbolic dimensions (a batch size) count as 1.
fn tensor_dims(value: &onnx_protobuf::ValueInfoProto) -> Option<Vec<usize>> {
    let Some(type_proto::Value::TensorType(t)) = value.type_.as_ref()?.value.as_ref() else {
        return None;
    };
    if t.elem_type != onnx_protobuf::tensor_proto::DataType::FLOAT as i32 {
        return None;
    }
    t.shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(onnx_protobuf::tensor_shape_proto::dimension::Value::DimValue(v)) => {
                usize::try_from(*v).ok()
            }
            _ => Some(1),
        })
        .collect()
}

/// An ONNX name as an IR name: letters, digits and underscores, not starting with a digit
/// (`/features/0/Conv` becomes `features_0_Conv`).
fn identifier(name: &str) -> Option<String> {
    let mut id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_string();
    id.truncate(48);
    if id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert(0, 'n');
    }
    is_identifier(&id).then_some(id)
}

/// The kinds of [`QonnxError`] about one ONNX node.
#[derive(Debug, Clone, Copy)]
enum NodeFailure {
    Unsupported,
    Shape,
    Quantizer,
    Invalid,
}

/// The nodes of an ONNX graph, indexed by the tensors they produce and read.
struct Onnx<'a> {
    origin: &'a str,
    nodes: &'a [NodeProto],
    constants: HashMap<String, Constant>,
    producer: HashMap<&'a str, usize>,
    consumers: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Onnx<'a> {
    fn new(nodes: &'a [NodeProto], origin: &'a str) -> Result<Self, QonnxError> {
        let mut onnx = Onnx {
            origin,
            nodes,
            constants: HashMap::new(),
            producer: HashMap::new(),
            consumers: HashMap::new(),
        };
        for (i, node) in nodes.iter().enumerate() {
            for output in &node.output {
                onnx.producer.insert(output.as_str(), i);
            }
            for input in node.input.iter().filter(|n| !n.is_empty()) {
                onnx.consumers.entry(input.as_str()).or_default().push(i);
            }
            if node.op_type == "Constant" {
                let value = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| onnx.error(node, "has no tensor value attribute"))?;
                let c = decode(value).map_err(|m| onnx.error(node, &format!("value {m}")))?;
                if let Some(out) = node.output.first() {
                    onnx.constants.insert(out.clone(), c);
                }
            }
        }
        Ok(onnx)
    }

    /// Evaluates the arithmetic whose inputs are all constants (TensorNorm's
    /// `(var + eps) ^ 0.5`, for example), so that its result is a constant operand.
    fn fold_constants(&mut self) -> Result<(), QonnxError> {
        for node in self.nodes {
            let op = node.op_type.as_str();
            let arity = match op {
                "Add" | "Sub" | "Mul" | "Div" | "Pow" => 2,
                "Sqrt" | "Reciprocal" | "Neg" | "Identity" => 1,
                _ => continue,
            };
            if !is_standard(node) || node.input.len() != arity || node.output.len() != 1 {
                continue;
            }
            let Some(inputs) = node
                .input
                .iter()
                .map(|name| self.constants.get(name))
                .collect::<Option<Vec<&Constant>>>()
            else {
                continue;
            };
            let (a, b) = (inputs[0], inputs[inputs.len() - 1]);
            let dims = if a.values.len() >= b.values.len() {
                a.dims.clone()
            } else {
                b.dims.clone()
            };
            let len = a.values.len().max(b.values.len());
            let value = |c: &Constant, i: usize| c.values[if c.values.len() == 1 { 0 } else { i }];
            if [a, b]
                .iter()
                .any(|c| c.values.len() != 1 && c.values.len() != len)
            {
                return Err(self.error(
                    node,
                    "constant operands must be scalars or of the same size",
                ));
            }
            let values = (0..len)
                .map(|i| {
                    let (x, y) = (value(a, i), value(b, i));
                    match op {
                        "Add" => x + y,
                        "Sub" => x - y,
                        "Mul" => x * y,
                        "Div" => x / y,
                        "Pow" => x.powf(y),
                        "Sqrt" => x.sqrt(),
                        "Reciprocal" => 1.0 / x,
                        "Neg" => -x,
                        _ => x,
                    }
                })
                .collect();
            self.constants
                .insert(node.output[0].clone(), Constant { dims, values });
        }
        Ok(())
    }

    fn label(node: &NodeProto) -> String {
        if node.name.is_empty() {
            node.output.first().cloned().unwrap_or_default()
        } else {
            node.name.clone()
        }
    }

    /// A [`QonnxError::Invalid`] about `node`.
    fn error(&self, node: &NodeProto, message: &str) -> QonnxError {
        self.error_of(NodeFailure::Invalid, node, message)
    }

    /// An error of the given kind about `node`.
    fn error_of(&self, kind: NodeFailure, node: &NodeProto, message: &str) -> QonnxError {
        let (file, node, op) = (
            self.origin.to_string(),
            Self::label(node),
            node.op_type.clone(),
        );
        let message = message.to_string();
        match kind {
            NodeFailure::Unsupported => QonnxError::UnsupportedOp {
                file,
                node,
                op,
                message,
            },
            NodeFailure::Shape => QonnxError::Shape {
                file,
                node,
                op,
                message,
            },
            NodeFailure::Quantizer => QonnxError::Quantizer {
                file,
                node,
                op,
                message,
            },
            NodeFailure::Invalid => QonnxError::Invalid {
                file,
                node,
                op,
                message,
            },
        }
    }

    /// A constant input of `node`.
    fn constant(
        &self,
        node: &NodeProto,
        index: usize,
        what: &str,
    ) -> Result<&Constant, QonnxError> {
        node.input
            .get(index)
            .and_then(|name| self.constants.get(name))
            .ok_or_else(|| self.error(node, &format!("{what} must be a constant")))
    }

    fn scalar(&self, node: &NodeProto, index: usize, what: &str) -> Result<f64, QonnxError> {
        self.constant(node, index, what)?
            .scalar()
            .ok_or_else(|| self.error(node, &format!("{what} must be one value")))
    }

    /// Whether `node` adds two data tensors (a skip connection), not a constant to one.
    fn is_join(&self, node: &NodeProto) -> bool {
        node.op_type == "Add"
            && is_standard(node)
            && node.input.len() == 2
            && node
                .input
                .iter()
                .all(|i| !i.is_empty() && !self.constants.contains_key(i))
    }

    /// The node the data path goes on with after `tensor`: its one reader, or the one reader
    /// that is not an Add joining a skip connection.
    fn consumer(&self, tensor: &str) -> Result<Option<&'a NodeProto>, QonnxError> {
        let mut readers = self.consumers.get(tensor).cloned().unwrap_or_default();
        readers.dedup();
        let path: Vec<usize> = readers
            .iter()
            .copied()
            .filter(|&i| !self.is_join(&self.nodes[i]))
            .collect();
        match (readers.as_slice(), path.as_slice()) {
            ([], _) => Ok(None),
            ([one], _) | (_, [one]) => Ok(Some(&self.nodes[*one])),
            (many, _) => Err(QonnxError::Branch {
                file: self.origin.to_string(),
                tensor: tensor.to_string(),
                readers: many.len(),
            }),
        }
    }
}

fn attribute<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn int_attribute(node: &NodeProto, name: &str, default: i64) -> i64 {
    attribute(node, name).map_or(default, |a| a.i)
}

fn ints_attribute(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attribute(node, name).map(|a| a.ints.clone())
}

impl OnnxAttributes for NodeProto {
    fn op_type(&self) -> &str {
        &self.op_type
    }

    fn outputs(&self) -> usize {
        self.output.len()
    }

    fn int(&self, name: &str, default: i64) -> i64 {
        int_attribute(self, name, default)
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        ints_attribute(self, name)
    }

    fn string(&self, name: &str) -> Option<&[u8]> {
        attribute(self, name).map(|a| a.s.as_slice())
    }
}

fn is_custom(node: &NodeProto) -> bool {
    DOMAINS.contains(&node.domain.as_str())
}

fn is_standard(node: &NodeProto) -> bool {
    node.domain.is_empty() || node.domain == "ai.onnx"
}
