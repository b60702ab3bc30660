//! QONNX: the ONNX dialect in which Brevitas, FINN and hls4ml exchange quantized networks.
//!
//! [`import`] turns a QONNX file into the IR before lowering (MACs on integer weight codes,
//! float batch norms, activation quantizers with their scales), so that every command that
//! takes a model also takes a `.onnx` file; [`export`] writes such a graph back as QONNX.
//! Export followed by import gives back the same graph.
//!
//! Layout: QONNX tensors are NCHW; qnnc's are HWC. Convolution weights are reordered on the
//! way in and out, and so are the rows of a dense layer that reads a flattened feature map.

pub mod export;
pub mod import;
mod tensor;

use crate::error::escape_controls;
use crate::ir::IrError;

/// A QONNX import or export error: the file, the ONNX node (with its op) or tensor, and what is
/// wrong, printed on one line. The variant says what kind of failure it is, for callers that
/// branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QonnxError {
    /// The file cannot be read.
    #[error("{}: (file): {}", escape_controls(.file), escape_controls(.message))]
    Read { file: String, message: String },
    /// Not an ONNX model: the protobuf does not decode, or holds no graph.
    #[error("{}: (file): {}", escape_controls(.file), escape_controls(.message))]
    Decode { file: String, message: String },
    /// An initializer that does not decode to float values.
    #[error("{}: initializer {}: {}", escape_controls(.file), escape_controls(.name), escape_controls(.message))]
    Initializer {
        file: String,
        name: String,
        message: String,
    },
    /// A graph that is not one image input leading to one output of logits through a MAC.
    #[error("{}: graph: {}", escape_controls(.file), escape_controls(.message))]
    Graph { file: String, message: String },
    /// An op (or an op's domain) that qnnc does not import.
    #[error("{}: {}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.op), escape_controls(.message))]
    UnsupportedOp {
        file: String,
        node: String,
        op: String,
        message: String,
    },
    /// A node the walk from the input reaches again: the graph has a cycle.
    #[error("{}: {}: {}: the graph has a cycle", escape_controls(.file), escape_controls(.node), escape_controls(.op))]
    Cycle {
        file: String,
        node: String,
        op: String,
    },
    /// An Add of a tensor not computed before it on the data path (a cycle, or a skip with
    /// layers of its own).
    #[error("{}: {}: {}: adds tensor {}, which is not computed before it on the data path (a cycle, or a skip connection with layers of its own, which qnnc does not import)", escape_controls(.file), escape_controls(.node), escape_controls(.op), escape_controls(.tensor))]
    LaterSkip {
        file: String,
        node: String,
        op: String,
        tensor: String,
    },
    /// A tensor read by more nodes than a chain with skip connections has.
    #[error("{}: tensor {}: feeds {readers} nodes; qnnc imports chains with skip connections, where a tensor feeds one node besides the Adds that join it again", escape_controls(.file), escape_controls(.tensor))]
    Branch {
        file: String,
        tensor: String,
        readers: usize,
    },
    /// A tensor of the data path that ends it wrongly: read by no node, a feature map or
    /// shifted codes as the output.
    #[error("{}: tensor {}: {}", escape_controls(.file), escape_controls(.tensor), escape_controls(.message))]
    Tensor {
        file: String,
        tensor: String,
        message: String,
    },
    /// Shapes that do not fit: a kernel other than its weights', an unflattened input to a
    /// dense layer, an Add of two shapes.
    #[error("{}: {}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.op), escape_controls(.message))]
    Shape {
        file: String,
        node: String,
        op: String,
        message: String,
    },
    /// A quantizer, or quantized weights, that qnnc cannot read exactly.
    #[error("{}: {}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.op), escape_controls(.message))]
    Quantizer {
        file: String,
        node: String,
        op: String,
        message: String,
    },
    /// Any other node qnnc refuses: its attributes, operands or place on the path.
    #[error("{}: {}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.op), escape_controls(.message))]
    Invalid {
        file: String,
        node: String,
        op: String,
        message: String,
    },
    /// An IR node that export cannot write as QONNX.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Export {
        file: String,
        node: String,
        message: String,
    },
    /// The imported graph does not verify.
    #[error(transparent)]
    Ir(#[from] IrError),
}

/// The domain of the QONNX custom operators (Quant, BipolarQuant, Trunc) that export writes.
pub const DOMAIN: &str = "qonnx.custom_op.general";
/// Domains whose Quant, IntQuant, BipolarQuant and Trunc import reads as QONNX's.
pub const DOMAINS: [&str; 4] = [
    DOMAIN,
    "onnx.brevitas",
    "finn.custom_op.general",
    "qonnx.custom_op",
];
/// The version of QONNX's operators export writes (Trunc with an output scale is version 2).
pub const DOMAIN_VERSION: i64 = 2;
/// The ONNX operator set export declares.
pub const OPSET: i64 = 13;

/// Whether `path` names a QONNX file (by its extension).
pub fn is_onnx_path(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "onnx")
}
