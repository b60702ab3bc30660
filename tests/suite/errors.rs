//! Each stage's error enum, produced from real bad input: the variant a caller would match on,
//! and the one line the command-line tool prints for it.

use crate::common;

use onnx_protobuf::Message;

use common::{assert_user_error, qnnc};
use qnnc::codegen::{self, CodegenError};
use qnnc::data::DataError;
use qnnc::golden::{Golden, GoldenError};
use qnnc::implement::ImplementError;
use qnnc::ir::{dump, Graph, IrError, Op};
use qnnc::qonnx::{import::import, QonnxError};
use qnnc::schedule::{self, ArrayConfig, ScheduleError};
use qnnc::sim::SimError;

const LOWERED: &str = "tests/fuzz_corpus/ir/micro_cnn_q4.lowered.json";
const BUILT: &str = "tests/fuzz_corpus/ir/micro_cnn_q4.built.json";
const RESNET: &str = "tests/fuzz_corpus/ir/micro_resnet_q4.lowered.json";
const ONNX: &str = "tests/fuzz_corpus/onnx/micro_cnn_q4.onnx";

fn text(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn lowered() -> Graph {
    dump::from_json(&text(LOWERED), "cnn.json").unwrap()
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    let line = error.to_string();
    assert!(!line.contains('\n'), "{line}");
    line
}

#[test]
fn ir_file_errors_name_the_node_or_field() {
    let edited = text(LOWERED).replacen("\"version\": 1", "\"version\": 7", 1);
    let error = dump::from_json(&edited, "cnn.json").unwrap_err();
    assert!(
        matches!(&error, IrError::Format { field, .. } if field == "version"),
        "{error:?}"
    );
    assert_eq!(
        one_line(&error),
        "cnn.json: version: file has version Some(7) but this qnnc reads versions 1 and 2"
    );

    // The first convolution reads a node that does not exist.
    let edited = text(RESNET).replacen("\"input\"\n      ]", "\"nowhere\"\n      ]", 1);
    assert_ne!(edited, text(RESNET), "the fixture lists input as an input");
    let error = dump::from_json(&edited, "resnet.json").unwrap_err();
    assert_eq!(
        error,
        IrError::UnknownInput {
            file: "resnet.json".into(),
            node: "conv".into(),
            slot: 0,
            input: "nowhere".into()
        }
    );
    assert_eq!(
        one_line(&error),
        "resnet.json: conv: input 0 'nowhere' is not a node listed before it"
    );
}

#[test]
fn golden_errors_wrap_the_ir_error_or_name_the_mac() {
    // A graph before lowering: the IR verifier's error, kept whole.
    let built = dump::from_json(&text(BUILT), "built.json").unwrap();
    let error = Golden::new(&built, "built.json").err().unwrap();
    assert!(
        matches!(error, GoldenError::Ir(IrError::NotLowered { .. })),
        "{error:?}"
    );
    assert_eq!(
        one_line(&error),
        "built.json: conv: produces float values; the integer model needs integer codes (after conv2d)"
    );

    let mut graph = lowered();
    let conv = graph.macs()[0];
    if let Op::Mac { weights, .. } = &mut graph.graph[conv].op {
        *weights = None;
    }
    let error = Golden::new(&graph, "cnn.json").err().unwrap();
    assert_eq!(
        error,
        GoldenError::NoWeights {
            file: "cnn.json".into(),
            node: "conv".into()
        }
    );
    assert_eq!(one_line(&error), "cnn.json: conv: has no trained weights");
}

#[test]
fn schedule_errors_name_the_flag_of_an_array_that_does_not_fit() {
    let graph = lowered();
    let error =
        schedule::schedule(&graph, ArrayConfig { pe: 0, simd: 16 }, "cnn.json").unwrap_err();
    assert!(
        matches!(error, ScheduleError::Array { flag: "--pe", .. }),
        "{error:?}"
    );
    assert_eq!(one_line(&error), "cnn.json: --pe: must be at least 1");
    let error =
        schedule::schedule(&graph, ArrayConfig { pe: 32, simd: 16 }, "cnn.json").unwrap_err();
    assert!(
        matches!(error, ScheduleError::Array { flag: "--pe", .. }),
        "{error:?}"
    );
    assert_eq!(
        one_line(&error),
        "cnn.json: --pe: 32 must not exceed --simd 16 (one write per bank a cycle)"
    );
    // The command line prints the same line and exits 1, writing nothing.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("build");
    let output = qnnc(&[
        "compile",
        LOWERED,
        "--pe",
        "32",
        "--simd",
        "16",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_user_error(&output, &["--pe: 32 must not exceed --simd 16"]);
    assert!(!out.exists());

    let built = dump::from_json(&text(BUILT), "built.json").unwrap();
    let error =
        schedule::schedule(&built, ArrayConfig { pe: 2, simd: 4 }, "built.json").unwrap_err();
    assert!(
        matches!(error, ScheduleError::Ir(IrError::NotLowered { .. })),
        "{error:?}"
    );
}

#[test]
fn codegen_refuses_a_name_that_could_inject_verilog() {
    let mut graph = lowered();
    let schedule = schedule::schedule(&graph, ArrayConfig { pe: 2, simd: 4 }, "cnn.json").unwrap();
    graph.name = "cnn; $finish".into();
    let error = codegen::generate(&graph, &schedule, None, "cnn.json")
        .err()
        .unwrap();
    assert!(
        matches!(&error, CodegenError::Name { node, .. } if node == "(graph)"),
        "{error:?}"
    );
    assert_eq!(
        one_line(&error),
        "cnn.json: (graph): network name 'cnn; $finish' is not a safe identifier"
    );
}

#[test]
fn qonnx_errors_say_what_kind_of_file_or_node_is_refused() {
    let error = import(b"\x08\x07garbage", "bad.onnx", "bad").unwrap_err();
    assert!(matches!(error, QonnxError::Decode { .. }), "{error:?}");
    assert!(one_line(&error).starts_with("bad.onnx: (file): not an ONNX model"));

    let bytes = std::fs::read(ONNX).unwrap();
    let mut model = onnx_protobuf::ModelProto::parse_from_bytes(&bytes).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let conv = graph.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
    conv.op_type = "ConvTranspose".into();
    let name = conv.name.clone();
    let edited = model.write_to_bytes().unwrap();
    let error = import(&edited, "cnn.onnx", "cnn").unwrap_err();
    assert!(
        matches!(&error, QonnxError::UnsupportedOp { node, op, .. } if *node == name && op == "ConvTranspose"),
        "{error:?}"
    );
    assert!(
        one_line(&error).starts_with(&format!(
            "cnn.onnx: {name}: ConvTranspose: this op is not supported"
        )),
        "{error}"
    );
}

#[test]
fn data_sim_and_implement_errors_name_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none-idx3-ubyte");
    let error = qnnc::data::idx::read_images(&missing).unwrap_err();
    assert!(matches!(error, DataError::Io { .. }), "{error:?}");
    assert!(one_line(&error).starts_with(&missing.display().to_string()));

    let error = qnnc::sim::rtl_sources(dir.path()).unwrap_err();
    assert!(matches!(error, SimError::Files { .. }), "{error:?}");
    assert!(one_line(&error).contains("manifest.json"), "{error}");

    let error = qnnc::implement::read_report(dir.path()).unwrap_err();
    assert!(matches!(error, ImplementError::Files { .. }), "{error:?}");
    assert!(one_line(&error).starts_with(&dir.path().display().to_string()));
}
