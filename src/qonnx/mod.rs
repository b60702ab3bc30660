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
