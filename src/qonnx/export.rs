//! IR -> QONNX: writes a graph before lowering as ONNX with QONNX's quantizers, the form that
//! Brevitas exports and FINN, hls4ml and QONNX's own tools read. Weights are stored as floats
//! (`code * step`) behind a Quant or BipolarQuant node that gives back the codes; activation
//! quantizers keep their scales. Tensors and nodes are named after the IR's nodes.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    type_proto, AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::tensor::float_tensor;
use super::QonnxError;
use super::{DOMAIN, DOMAIN_VERSION, OPSET};
use crate::ir::verify::verify;
use crate::ir::{Graph, Op, Precision, Rounding};
use crate::spec::Shape;

/// The bytes of the QONNX file of `graph`; the same graph always gives the same bytes.
pub fn export(graph: &Graph, file: &str) -> Result<Vec<u8>, QonnxError> {
    let error = |node: petgraph::stable_graph::NodeIndex, message: &str| QonnxError::Export {
        file: file.to_string(),
        node: graph.graph[node].name.clone(),
        message: message.to_string(),
    };
    verify(graph, file)?;
    let mut onnx = GraphProto::new();
    onnx.name = graph.name.clone();
    let chain = graph.topological_order();
    let input = graph.output_type(chain[0]).expect("typed input");
    onnx.input
        .push(value_info("input", &input_dims(input.shape)));
    let mut x = "input".to_string();
    // Executors feed `pixel / 255`; a network whose pixel step is another scale gets it by a
    // Mul, which import composes back into the scale.
    let default_scale = crate::ir::build::input_type(input.shape).scale;
    if input.scale != default_scale {
        let factor = "input_rescale_factor";
        onnx.initializer.push(float_tensor(
            factor,
            &[],
            &[(input.scale / default_scale) as f32],
        ));
        let rescale = node_proto("Mul", "", "input_rescale", &[x, factor.to_string()]);
        x = rescale.output[0].clone();
        onnx.node.push(rescale);
    }
    // The feature map the last flatten read, whose features ONNX orders C, H, W.
    let mut flattened: Option<Shape> = None;
    // Each node's output tensor is named after the node; the image's is `x` as set above.
    let input_tensor = x.clone();
    let tensor_of = |node: petgraph::stable_graph::NodeIndex| match graph.graph[node].op {
        Op::Input => input_tensor.clone(),
        _ => graph.graph[node].name.clone(),
    };
    for &node in &chain[1..] {
        let name = graph.graph[node].name.clone();
        let inputs: Vec<String> = graph.inputs(node).into_iter().map(tensor_of).collect();
        x = inputs[0].clone();
        let in_type = graph.input_type(node).expect("typed");
        let out_type = graph.output_type(node).expect("typed");
        let op = &graph.graph[node].op;
        if let Some(standard) = op.rules().onnx_node(in_type, out_type) {
            let mut n = node_proto(standard.op_type, "", &name, &inputs);
            for (attribute, values) in &standard.attributes {
                n.attribute.push(ints_attribute(attribute, values));
            }
            onnx.node.push(n);
            continue;
        }
        match op {
            Op::Mac {
                dense,
                kernel,
                stride,
                padding,
                outputs,
                weight_precision,
                weights,
                bias,
            } => {
                let weights = weights.as_ref().ok_or_else(|| {
                    error(node, "has no trained weights to export")
                })?;
                let step = weights.step as f32;
                let (c, h, w) = if *dense {
                    let s = flattened.take().unwrap_or(in_type.shape);
                    (s.channels, s.height, s.width)
                } else {
                    (in_type.shape.channels, *kernel, *kernel)
                };
                // ONNX weights: [O, C, kh, kw] for a convolution, [O, I] for Gemm with transB
                // (I in C, H, W order), from qnnc's [fan_in, outputs] in (ky, kx, c) order.
                let mut values = vec![0f32; weights.codes.len()];
                for o in 0..*outputs {
                    for ci in 0..c {
                        for y in 0..h {
                            for xx in 0..w {
                                let row = (y * w + xx) * c + ci;
                                let code = weights.codes[row * outputs + o];
                                values[o * weights.fan_in + (ci * h + y) * w + xx] =
                                    code as f32 * step;
                            }
                        }
                    }
                }
                let dims = if *dense {
                    vec![*outputs, weights.fan_in]
                } else {
                    vec![*outputs, c, *kernel, *kernel]
                };
                let weight_name = format!("{name}_weight");
                onnx.initializer
                    .push(float_tensor(&weight_name, &dims, &values));
                let narrow = weights
                    .codes
                    .iter()
                    .all(|&code| Some(code as i64) != weight_precision.code_range().map(|r| r.0));
                let quantized = format!("{weight_name}_quantized");
                quantizer(
                    &mut onnx,
                    &format!("{name}_weight_quant"),
                    (&weight_name, &quantized),
                    *weight_precision,
                    step,
                    narrow,
                );
                let mut inputs = vec![x.clone(), quantized];
                if let Some(bias) = bias {
                    let bias_name = format!("{name}_bias");
                    onnx.initializer
                        .push(float_tensor(&bias_name, &[bias.len()], bias));
                    inputs.push(bias_name);
                }
                let mut mac = if *dense {
                    let mut n = node_proto("Gemm", "", &name, &inputs);
                    n.attribute.push(int_attribute("transB", 1));
                    n
                } else {
                    let mut n = node_proto("Conv", "", &name, &inputs);
                    let k = *kernel as i64;
                    let (s, p) = (*stride as i64, *padding as i64);
                    n.attribute.push(ints_attribute("kernel_shape", &[k, k]));
                    n.attribute.push(ints_attribute("strides", &[s, s]));
                    n.attribute.push(ints_attribute("pads", &[p, p, p, p]));
                    n
                };
                mac.output = vec![name.clone()];
                onnx.node.push(mac);
            }
            Op::BatchNorm(bn) => {
                // Import folds a batch norm into the conv or dense layer before it (through
                // other batch norms only): refuse here what it would refuse there.
                let mut before = graph.predecessor(node);
                while let Some(p) = before.filter(|&p| matches!(graph.graph[p].op, Op::BatchNorm(_))) {
                    before = graph.predecessor(p);
                }
                if let Some(p) = before.filter(|&p| !matches!(graph.graph[p].op, Op::Mac { .. })) {
                    return Err(error(
                        node,
                        &format!(
                            "follows {} {}; QONNX import folds a batch norm only into the conv or dense layer before it, so the file could not be read back",
                            graph.graph[p].op.name(),
                            graph.graph[p].name
                        ),
                    ));
                }
                let mut inputs = vec![x.clone()];
                for (suffix, values) in [
                    ("scale", &bn.gamma),
                    ("bias", &bn.beta),
                    ("mean", &bn.mean),
                    ("var", &bn.var),
                ] {
                    let tensor = format!("{name}_{suffix}");
                    onnx.initializer
                        .push(float_tensor(&tensor, &[values.len()], values));
                    inputs.push(tensor);
                }
                let mut n = node_proto("BatchNormalization", "", &name, &inputs);
                n.attribute.push(float_attribute("epsilon", bn.epsilon));
                onnx.node.push(n);
            }
            Op::Quantize {
                truncation: None,
                narrow,
                ..
            } => {
                let scale = out_type.scale as f32;
                quantizer(&mut onnx, &name, (&x, &name), out_type.precision, scale, *narrow);
            }
            Op::Quantize {
                bits,
                truncation: Some(t),
                ..
            } => {
                // The quantizer keeps the node's name, so that import finds the same graph.
                let codes = format!("{name}_codes");
                let input = Precision::unsigned(t.input_bits);
                let scale = t.input_scale as f32;
                quantizer(&mut onnx, &name, (&x, &codes), input, scale, false);
                let trunc = format!("{name}_trunc");
                let mut inputs = vec![codes];
                for (suffix, value) in [
                    ("scale", scale),
                    ("zero_point", 0.0),
                    ("input_bit_width", t.input_bits as f32),
                    ("output_scale", out_type.scale as f32),
                    ("output_bit_width", *bits as f32),
                ] {
                    let tensor = format!("{trunc}_{suffix}");
                    onnx.initializer.push(float_tensor(&tensor, &[], &[value]));
                    inputs.push(tensor);
                }
                let mut n = node_proto("Trunc", DOMAIN, &trunc, &inputs);
                n.output = vec![name.clone()];
                let rounding = match t.rounding {
                    Rounding::Floor => "FLOOR",
                    Rounding::Round => "ROUND",
                    Rounding::Ceil => "CEIL",
                };
                n.attribute.push(string_attribute("rounding_mode", rounding));
                n.attribute.push(int_attribute("signed", 0));
                n.attribute.push(int_attribute("narrow", 0));
                onnx.node.push(n);
            }
            Op::Flatten => {
                flattened = Some(in_type.shape);
                let mut n = node_proto("Flatten", "", &name, std::slice::from_ref(&x));
                n.attribute.push(int_attribute("axis", 1));
                onnx.node.push(n);
            }
            Op::Output => {
                onnx.output
                    .push(value_info(&x, &[1, in_type.shape.len()]));
                continue;
            }
            Op::Input => {}
            Op::MultiThreshold(_) | Op::Requantize(_) => {
                return Err(error(
                    node,
                    "is lowered to integers; export writes graphs before fold-batch-norm (a model or an imported file)",
                ))
            }
            // The other ops are written as their ONNX node, above.
            other => {
                return Err(error(
                    node,
                    &format!("{} has no QONNX form", other.name()),
                ))
            }
        }
    }
    let mut model = ModelProto::new();
    model.ir_version = 8;
    model.producer_name = "qnnc".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    for (domain, version) in [("", OPSET), (DOMAIN, DOMAIN_VERSION)] {
        let mut opset = OperatorSetIdProto::new();
        opset.domain = domain.into();
        opset.version = version;
        model.opset_import.push(opset);
    }
    model.graph = Some(onnx).into();
    Ok(model
        .write_to_bytes()
        .expect("an ONNX model always serialises"))
}

/// Adds the node `name` quantizing tensor `from` into tensor `to` at `precision` (bipolar, or
/// integer codes of `scale`).
fn quantizer(
    onnx: &mut GraphProto,
    name: &str,
    (from, to): (&str, &str),
    precision: Precision,
    scale: f32,
    narrow: bool,
) {
    let scale_name = format!("{name}_scale");
    onnx.initializer
        .push(float_tensor(&scale_name, &[], &[scale]));
    let mut node = match precision {
        Precision::Int { bits, signed } => {
            let zero_point = format!("{name}_zero_point");
            let bit_width = format!("{name}_bit_width");
            onnx.initializer
                .push(float_tensor(&zero_point, &[], &[0.0]));
            onnx.initializer
                .push(float_tensor(&bit_width, &[], &[bits as f32]));
            let mut n = node_proto(
                "Quant",
                DOMAIN,
                name,
                &[from.to_string(), scale_name, zero_point, bit_width],
            );
            n.attribute.push(int_attribute("signed", signed as i64));
            n.attribute.push(int_attribute("narrow", narrow as i64));
            n.attribute.push(string_attribute("rounding_mode", "ROUND"));
            n
        }
        Precision::Bipolar | Precision::Float => node_proto(
            "BipolarQuant",
            DOMAIN,
            name,
            &[from.to_string(), scale_name],
        ),
    };
    node.output = vec![to.to_string()];
    onnx.node.push(node);
}

fn node_proto(op: &str, domain: &str, name: &str, inputs: &[String]) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.domain = domain.into();
    n.name = name.into();
    n.input = inputs.to_vec();
    n.output = vec![name.into()];
    n
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

fn ints_attribute(name: &str, values: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    a
}

fn float_attribute(name: &str, value: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::FLOAT.into();
    a.f = value;
    a
}

fn string_attribute(name: &str, value: &str) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::STRING.into();
    a.s = value.as_bytes().to_vec();
    a
}

/// `[1, C, H, W]`, or `[1, features]` for an input that is a vector (as import reads them).
fn input_dims(shape: Shape) -> Vec<usize> {
    if shape.height == 1 && shape.width == 1 {
        vec![1, shape.channels]
    } else {
        vec![1, shape.channels, shape.height, shape.width]
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for &d in dims {
        let mut dim = Dimension::new();
        dim.value = Some(dimension::Value::DimValue(d as i64));
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = DataType::FLOAT as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}
