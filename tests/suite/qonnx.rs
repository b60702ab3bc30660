//! QONNX import and export as a user runs them: networks trained with Brevitas (the fixtures
//! under tests/fixtures/qonnx, made by examples/qonnx/make_fixtures.sh) evaluate to the accuracy
//! Brevitas reported and compile to RTL with 0 mismatches; export followed by import gives back
//! the same network; bad files get one-line errors. Needs Fashion-MNIST, verilator (`make test`
//! installs them); fails without them.

use crate::common;
use common::{assert_user_error, ok, qnnc, train};

use std::path::{Path, PathBuf};

use onnx_protobuf::{Message, ModelProto, NodeProto};
use qnnc::commands::Source;
use qnnc::data::{self, DatasetKind, Split};
use qnnc::golden::Golden;
use qnnc::ir::{dump, passes};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qonnx")
}

/// The graph of any network file before and after the passes, as IR JSON.
fn dumps(path: &str) -> (String, String, qnnc::ir::Graph) {
    let source = Source::open(Path::new(path), &Default::default()).unwrap();
    let graph = source.graph(path).unwrap();
    let mut lowered = graph.clone();
    passes::run(&mut lowered, path, None).unwrap();
    (dump::to_json(&graph), dump::to_json(&lowered), lowered)
}

#[test]
fn export_then_import_gives_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    let test = data::load(DatasetKind::FashionMnist, None, Split::Test, Some(200)).unwrap();
    for spec in ["fmnist_mlp.toml", "fmnist_cnn.toml"] {
        for bits in ["1", "4"] {
            let model = train(dir.path(), spec, bits);
            let onnx = model.replace(".qnn", ".onnx");
            let imported = model.replace(".qnn", "_imported.qnn");
            ok(qnnc(&["export", &model, "-o", &onnx]));
            ok(qnnc(&["import", &onnx, "-o", &imported]));
            let (before, lowered, graph) = dumps(&model);
            for other in [&onnx, &imported] {
                let (other_before, other_lowered, other_graph) = dumps(other);
                assert_eq!(before, other_before, "{other}: graph before the passes");
                assert_eq!(lowered, other_lowered, "{other}: lowered graph");
                let golden = Golden::new(&graph, &model).unwrap().run(&test.images);
                let again = Golden::new(&other_graph, other).unwrap().run(&test.images);
                assert_eq!(golden, again, "{other}: golden outputs");
            }
            // The float model of the export is the network qnnc trained.
            let accuracy = |file: &str| {
                let args = ["eval", file, "--test-limit", "1000", "--format", "json"];
                let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&args))).unwrap();
                report["accuracy"].as_f64().unwrap()
            };
            let (trained, exported) = (accuracy(&model), accuracy(&onnx));
            assert!((trained - exported).abs() <= 0.3, "{trained} vs {exported}");
            // Exporting the import writes the same bytes: the file is deterministic.
            let twice = model.replace(".qnn", "_twice.onnx");
            ok(qnnc(&["export", &imported, "-o", &twice]));
            assert_eq!(
                std::fs::read(&onnx).unwrap(),
                std::fs::read(&twice).unwrap()
            );
        }
    }
}

/// A valid QONNX file of a 4-bit MLP to break in the bad-input tests.
fn exported(dir: &Path) -> (String, ModelProto) {
    exported_at(dir, "4")
}

fn exported_at(dir: &Path, bits: &str) -> (String, ModelProto) {
    let model = train(dir, "fmnist_mlp.toml", bits);
    let onnx = dir.join(format!("good{bits}.onnx")).display().to_string();
    ok(qnnc(&["export", &model, "-o", &onnx]));
    let proto = ModelProto::parse_from_bytes(&std::fs::read(&onnx).unwrap()).unwrap();
    (onnx, proto)
}

/// Writes `bytes` as `name`, then checks that import and eval refuse it with one line naming
/// every needle, and that import wrote nothing.
fn refused(dir: &Path, name: &str, bytes: &[u8], needles: &[&str]) {
    let path = dir.join(name).display().to_string();
    std::fs::write(&path, bytes).unwrap();
    let output = dir.join(format!("{name}.qnn"));
    let out = output.display().to_string();
    assert_user_error(&qnnc(&["import", &path, "-o", &out]), needles);
    assert!(!output.exists(), "{name}: import wrote {out}");
    assert_user_error(&qnnc(&["eval", &path, "--test-limit", "10"]), needles);
}

fn with(proto: &ModelProto, change: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let mut proto = proto.clone();
    change(&mut proto);
    proto.write_to_bytes().unwrap()
}

/// `proto` with the one-value initializer `name` set to `value`.
fn with_scalar(proto: &ModelProto, name: &str, value: f32) -> Vec<u8> {
    with(proto, |m| {
        rewrite::set_floats(m.graph.as_mut().unwrap(), name, &[value]);
    })
}

/// `proto` with the node `name` changed by `change`.
fn with_node(proto: &ModelProto, name: &str, change: impl FnOnce(&mut NodeProto)) -> Vec<u8> {
    with(proto, |m| {
        let graph = m.graph.as_mut().unwrap();
        change(graph.node.iter_mut().find(|n| n.name == name).unwrap());
    })
}

#[test]
fn bad_qonnx_files_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (onnx, proto) = exported(d);
    let good = std::fs::read(&onnx).unwrap();
    let not_onnx = "not an ONNX model";
    refused(
        d,
        "text.onnx",
        b"name = \"not a network\"\n",
        &["text.onnx", not_onnx],
    );
    let half = &good[..good.len() / 2];
    refused(d, "truncated.onnx", half, &["truncated.onnx", not_onnx]);
    refused(d, "empty.onnx", b"", &["empty.onnx", not_onnx]);

    let lstm = with_node(&proto, "fc2", |n| n.op_type = "LSTM".into());
    // The list of what import reads, part of which comes from the ops that import themselves.
    let supported = "qnnc imports Quant, IntQuant, BipolarQuant, Trunc, Conv, Gemm, MatMul, \
         Add, Sub, Mul, Div, (Pow, Sqrt, Reciprocal, Neg of constants), BatchNormalization, \
         Relu, Clip, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Transpose, \
         Identity, Dropout";
    let needles = [
        "unsupported.onnx",
        "fc2",
        "LSTM",
        "not supported",
        supported,
    ];
    refused(d, "unsupported.onnx", &lstm, &needles);

    for width in [0.0f32, 33.0] {
        let bytes = with_scalar(&proto, "act1_bit_width", width);
        let name = format!("width{width}.onnx");
        let width = format!("bit width {width}");
        refused(
            d,
            &name,
            &bytes,
            &[&name, "act1", "Quant", &width, "1..=16"],
        );
    }
    let bytes = with_scalar(&proto, "fc1_weight_quant_bit_width", 33.0);
    refused(
        d,
        "weights33.onnx",
        &bytes,
        &["fc1_weight_quant", "bit width 33"],
    );

    let two_inputs = with(&proto, |m| {
        let graph = m.graph.as_mut().unwrap();
        let mut second = graph.input[0].clone();
        second.name = "second_image".into();
        graph.input.push(second);
    });
    let needles = ["two_inputs.onnx", "2 inputs", "second_image"];
    refused(d, "two_inputs.onnx", &two_inputs, &needles);

    let relu = with_node(&proto, "act2", |n| {
        n.op_type = "Relu".into();
        n.domain = String::new();
        n.input.truncate(1);
        n.attribute.clear();
    });
    refused(
        d,
        "float_relu.onnx",
        &relu,
        &["act2", "Relu", "float activation"],
    );

    let bytes = with_scalar(&proto, "act1_zero_point", 3.0);
    refused(d, "zero_point.onnx", &bytes, &["act1", "zero point"]);

    // Weights behind a cycle of transposes.
    let cycle = with(&proto, |m| {
        use rewrite::{node, with_perm};
        let g = m.graph.as_mut().unwrap();
        g.node.iter_mut().find(|n| n.name == "fc2").unwrap().input[1] = "wa".into();
        g.node
            .push(with_perm(node("Transpose", "t1", &["wb"], "wa"), &[1, 0]));
        g.node
            .push(with_perm(node("Transpose", "t2", &["wa"], "wb"), &[1, 0]));
    });
    refused(d, "cycle.onnx", &cycle, &["fc2", "Gemm", "Quant"]);

    let bytes = with_scalar(&proto, "bn1_var", f32::NAN);
    refused(d, "nan_variance.onnx", &bytes, &["bn1"]);

    // The unbroken file is accepted, so the refusals above are the changes'.
    ok(qnnc(&["eval", &onnx, "--test-limit", "10"]));
}

#[test]
fn commands_take_qonnx_files_and_names_that_are_not_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let (onnx, proto) = exported(dir.path());
    // ONNX names from PyTorch look like paths; they become identifiers, never Verilog text.
    let renamed = with(&proto, |m| {
        for node in &mut m.graph.as_mut().unwrap().node {
            node.name = format!("/features/{}/*/`define", node.name);
        }
    });
    let path = dir.path().join("renamed.onnx").display().to_string();
    std::fs::write(&path, renamed).unwrap();
    let text = ok(qnnc(&["inspect", &path]));
    assert!(text.contains("features_fc1"), "{text}");
    assert!(!text.contains('`') && !text.contains("/*"), "{text}");
    let energy = ok(qnnc(&["energy", &onnx, "--format", "csv"]));
    assert!(energy.lines().count() >= 4, "{energy}");
    let build = dir.path().join("build").display().to_string();
    ok(qnnc(&["compile", &path, "-o", &build]));
}

/// The fixtures and what Brevitas reported for them (tests/fixtures/qonnx/fixtures.json).
fn brevitas_fixtures() -> Vec<(String, f64, u64)> {
    let text = std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list: Vec<(String, f64, u64)> = json["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap().to_string();
            // The record belongs to this very file.
            let bytes = std::fs::read(fixtures().join(&file)).unwrap();
            let digest = qnnc::codegen::digest(&bytes);
            assert_eq!(f["sha256"].as_str().unwrap(), digest, "{file} changed");
            let accuracy = f["brevitas_accuracy"].as_f64().unwrap();
            let images = f["test_images"].as_u64().unwrap();
            (file, accuracy, images)
        })
        .collect();
    let names: Vec<&str> = list.iter().map(|(f, _, _)| f.as_str()).collect();
    for network in ["mlp", "cnn"] {
        for q in [1, 2, 4, 8] {
            let name = format!("{network}_q{q}.onnx");
            assert!(names.contains(&name.as_str()), "{name} missing");
        }
    }
    list
}

#[test]
fn brevitas_fixtures_evaluate_to_the_accuracy_brevitas_reported() {
    for (file, brevitas, images) in brevitas_fixtures() {
        let path = fixtures().join(&file).display().to_string();
        let report: serde_json::Value =
            serde_json::from_str(&ok(qnnc(&["eval", &path, "--integer", "--format", "json"])))
                .unwrap();
        assert_eq!(report["test_images"].as_u64(), Some(images), "{file}");
        let float = report["accuracy"].as_f64().unwrap();
        let integer = report["integer_accuracy"].as_f64().unwrap();
        assert!(
            (float - brevitas).abs() <= 0.1,
            "{file}: qnnc's float model {float} % but Brevitas reported {brevitas} %"
        );
        assert!(
            (integer - float).abs() <= 0.3,
            "{file}: integer golden model {integer} % but float {float} %"
        );
    }
}

#[test]
fn brevitas_fixtures_compile_to_rtl_with_no_mismatches() {
    // The fixtures build and simulate side by side (most of a minute in a row).
    use rayon::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    brevitas_fixtures()
        .into_par_iter()
        .for_each(|(file, _, _)| {
            let path = fixtures().join(&file).display().to_string();
            let build = dir.path().join(&file).display().to_string();
            ok(qnnc(&[
                "compile", &path, "--pe", "8", "--simd", "16", "-o", &build,
            ]));
            let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
                "sim", &build, "--images", "200", "--model", &path, "--format", "json",
            ])))
            .unwrap();
            assert_eq!(report["mismatches"], 0, "{file}: {report}");
            assert_eq!(report["test_images"], 200, "{file}: {report}");
        });
}

/// The FINN example fixtures (Brevitas's bnn_pynq TFC and SFC at w1a1, w1a2, w2a2) and
/// Brevitas's accuracy on the first test images (the `finn` list of fixtures.json).
fn finn_fixtures() -> Vec<(String, f64, u64)> {
    let text = std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list: Vec<(String, f64, u64)> = json["finn"]["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap().to_string();
            let bytes = std::fs::read(fixtures().join(&file)).unwrap();
            assert_eq!(
                f["sha256"].as_str().unwrap(),
                qnnc::codegen::digest(&bytes),
                "{file} changed"
            );
            let accuracy = f["slice_accuracy"].as_f64().unwrap();
            (file, accuracy, f["slice_images"].as_u64().unwrap())
        })
        .collect();
    for network in ["tfc", "sfc"] {
        for precision in ["w1a1", "w1a2", "w2a2"] {
            let name = format!("finn_{network}_{precision}.onnx");
            assert!(list.iter().any(|(f, _, _)| *f == name), "{name} missing");
        }
    }
    list
}

/// qnnc's float model within 0.1 point of the accuracy Brevitas reported for `file`, and its
/// integer golden model within 0.3 point.
fn assert_brevitas_accuracy(file: &str, float: f64, integer: f64, brevitas: f64) {
    assert!(
        (float - brevitas).abs() <= 0.1,
        "{file}: qnnc's float model {float} % but Brevitas reported {brevitas} %"
    );
    assert!(
        (integer - brevitas).abs() <= 0.3,
        "{file}: integer golden model {integer} % but Brevitas reported {brevitas} %"
    );
}

#[test]
fn finn_example_networks_import_and_evaluate_to_brevitas_accuracy() {
    for (file, brevitas, images) in finn_fixtures() {
        let path = fixtures().join(&file).display().to_string();
        let limit = images.to_string();
        let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
            "eval",
            &path,
            "--integer",
            "--test-limit",
            &limit,
            "--format",
            "json",
        ])))
        .unwrap();
        assert_eq!(report["test_images"].as_u64(), Some(images), "{file}");
        let float = report["accuracy"].as_f64().unwrap();
        let integer = report["integer_accuracy"].as_f64().unwrap();
        assert_brevitas_accuracy(&file, float, integer, brevitas);
    }
    let dir = tempfile::tempdir().unwrap();
    // Without its input quantizer, FINN's `2x - 1` of the input cannot be kept exact on pixels.
    let bytes = std::fs::read(fixtures().join("finn_tfc_w1a2.onnx")).unwrap();
    let proto = ModelProto::parse_from_bytes(&bytes).unwrap();
    let bypass = |m: &mut ModelProto, index: usize| {
        let graph = m.graph.as_mut().unwrap();
        let node = graph.node.remove(index);
        for n in &mut graph.node {
            for x in &mut n.input {
                if *x == node.output[0] {
                    *x = node.input[0].clone();
                }
            }
        }
    };
    let input_quant = proto.graph.node.iter().position(|n| n.op_type == "Quant");
    let no_input_quant = with(&proto, |m| bypass(m, input_quant.unwrap()));
    refused(
        dir.path(),
        "no_input_quant.onnx",
        &no_input_quant,
        &["/Sub", "Sub:", "unless an input quantizer follows"],
    );
    // TFC at w1a1 (a bipolar input quantizer) and w2a2 (2-bit signed codes throughout) in
    // Verilator.
    for file in ["finn_tfc_w1a1.onnx", "finn_tfc_w2a2.onnx"] {
        let path = fixtures().join(file).display().to_string();
        let build = dir.path().join(file).display().to_string();
        ok(qnnc(&[
            "compile", &path, "--pe", "8", "--simd", "16", "-o", &build,
        ]));
        let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
            "sim", &build, "--images", "200", "--model", &path, "--format", "json",
        ])))
        .unwrap();
        assert_eq!(report["mismatches"], 0, "{file}: {report}");
        assert_eq!(report["test_images"], 200, "{file}: {report}");
    }
}

/// The MLP trained on `pixel / 256` (the `input_scale` list of fixtures.json): qnnc gives
/// Brevitas's accuracy when told the pixel's value by `--input-scale`, or by a `Mul` on the
/// input, and not without.
#[test]
fn a_network_trained_on_another_pixel_scale_evaluates_to_brevitas_accuracy() {
    let text = std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = json["input_scale"]["fixtures"].as_array().unwrap();
    let accuracy = |file: &str, flags: &[&str]| -> (f64, f64) {
        let path = fixtures().join(file).display().to_string();
        let mut args = vec!["eval", &path, "--integer", "--format", "json"];
        args.extend_from_slice(flags);
        let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&args))).unwrap();
        assert_eq!(report["test_images"], 10_000, "{file}");
        (
            report["accuracy"].as_f64().unwrap(),
            report["integer_accuracy"].as_f64().unwrap(),
        )
    };
    for (file, flags) in [
        ("scale256_mlp_q4.onnx", &["--input-scale", "1/256"][..]),
        ("scale256_mul_mlp_q4.onnx", &[][..]),
    ] {
        let record = list
            .iter()
            .find(|f| f["file"] == file)
            .unwrap_or_else(|| panic!("{file} missing from fixtures.json"));
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        assert_eq!(
            record["sha256"].as_str().unwrap(),
            qnnc::codegen::digest(&bytes),
            "{file} changed"
        );
        let brevitas = record["brevitas_accuracy"].as_f64().unwrap();
        let (float, integer) = accuracy(file, flags);
        assert_brevitas_accuracy(file, float, integer, brevitas);
    }
    // The scale is what decides: read as pixel / 255, the network computes other logits.
    let dir = tempfile::tempdir().unwrap();
    let path = fixtures()
        .join("scale256_mlp_q4.onnx")
        .display()
        .to_string();
    let logits = |flags: &[&str]| -> Vec<serde_json::Value> {
        let file = dir.path().join("logits.json").display().to_string();
        let mut args = vec!["eval", &path, "--test-limit", "200", "--logits", &file];
        args.extend_from_slice(flags);
        ok(qnnc(&args));
        let text = std::fs::read_to_string(&file).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["images"].as_array().unwrap().clone()
    };
    let (by_255, by_256) = (logits(&[]), logits(&["--input-scale", "1/256"]));
    let differ = by_255
        .iter()
        .zip(&by_256)
        .filter(|(a, b)| a["logits"] != b["logits"])
        .count();
    assert!(
        differ >= 40,
        "only {differ} of 200 images change their logits"
    );
}

#[test]
fn eval_writes_the_integer_models_logits_image_by_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixtures().join("finn_tfc_w2a2.onnx").display().to_string();
    let logits = dir.path().join("logits.json");
    let file = logits.display().to_string();
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", &path, "--test-limit", "30", "--format", "json"];
        args.extend_from_slice(extra);
        let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&args))).unwrap();
        report
    };
    // --logits implies --integer, and its classes give the integer model's accuracy.
    let report = eval(&["--logits", &file]);
    let integer = report["integer_accuracy"].as_f64().unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&logits).unwrap()).unwrap();
    assert_eq!(written["logit_scale"].as_f64(), Some(1.0 / 256.0));
    let images = written["images"].as_array().unwrap();
    assert_eq!(images.len(), 30);
    let mut correct = 0;
    for image in images {
        let codes: Vec<i64> = image["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap())
            .collect();
        assert_eq!(codes.len(), 10);
        let best = codes.iter().max().unwrap();
        let class = image["class"].as_u64().unwrap() as usize;
        assert_eq!(codes.iter().position(|c| c == best), Some(class), "{image}");
        correct += usize::from(image["label"].as_u64() == Some(class as u64));
    }
    assert!((100.0 * correct as f64 / 30.0 - integer).abs() < 1e-9);
    // The same run writes the same bytes; a folder in the way is refused, and left alone.
    let first = std::fs::read(&logits).unwrap();
    eval(&["--logits", &file]);
    assert_eq!(std::fs::read(&logits).unwrap(), first);
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    assert_user_error(
        &qnnc(&["eval", &path, "--logits", folder.to_str().unwrap()]),
        &["folder", "not a regular file"],
    );
    assert!(folder.is_dir());
}

/// `model` with a Trunc of act1's `input_bits`-bit codes by 2 bits (`rounding`) inserted
/// after act1.
fn with_truncation(proto: &ModelProto, rounding: &str, input_bits: f32) -> Vec<u8> {
    with_truncation_after(proto, "act1", rounding, input_bits)
}

/// The same Trunc, inserted after node `after` (act1 or the max-pool after it).
fn with_truncation_after(
    proto: &ModelProto,
    after: &str,
    rounding: &str,
    input_bits: f32,
) -> Vec<u8> {
    use onnx_protobuf::attribute_proto::AttributeType;
    use onnx_protobuf::{AttributeProto, NodeProto, TensorProto};
    with(proto, |m| {
        let graph = m.graph.as_mut().unwrap();
        let scale = graph
            .initializer
            .iter()
            .find(|t| t.name == "act1_scale")
            .map(|t| f32::from_le_bytes(t.raw_data[..4].try_into().unwrap()))
            .unwrap();
        let at = graph.node.iter().position(|n| n.name == after).unwrap();
        graph.node[at].output = vec!["act1_codes".into()];
        let mut inputs = vec!["act1_codes".to_string()];
        for (name, value) in [
            ("t_scale", scale),
            ("t_zero_point", 0.0),
            ("t_input_bits", input_bits),
            ("t_output_scale", scale * 4.0),
            ("t_output_bits", input_bits - 2.0),
        ] {
            let mut t = TensorProto::new();
            t.name = name.into();
            t.data_type = 1;
            t.raw_data = value.to_le_bytes().to_vec();
            graph.initializer.push(t);
            inputs.push(name.into());
        }
        let mut trunc = NodeProto::new();
        trunc.op_type = "Trunc".into();
        trunc.domain = "qonnx.custom_op.general".into();
        trunc.name = "act1_trunc".into();
        trunc.input = inputs;
        trunc.output = vec![after.into()];
        for (name, value) in [("signed", None), ("rounding_mode", Some(rounding))] {
            let mut a = AttributeProto::new();
            a.name = name.into();
            match value {
                None => a.type_ = AttributeType::INT.into(),
                Some(s) => {
                    a.type_ = AttributeType::STRING.into();
                    a.s = s.as_bytes().to_vec();
                }
            }
            trunc.attribute.push(a);
        }
        graph.node.insert(at + 1, trunc);
    })
}

#[test]
fn a_truncation_after_a_quantizer_runs_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, proto) = exported(d);
    let (_, proto8) = exported_at(d, "8");
    // Each case builds and simulates its own design; they run side by side once collected.
    let mut cases = Vec::new();
    // 4 -> 2 bits become thresholds, 8 -> 6 bits multiply-shift.
    for (bits, model) in [(4, &proto), (8, &proto8)] {
        for rounding in ["FLOOR", "ROUND", "CEIL"] {
            let case = format!("{rounding}{bits}");
            let bytes = with_truncation(model, rounding, bits as f32);
            if (rounding, bits) == ("ROUND", 8) {
                // Rounding half to even to 6 bits needs 63 thresholds, more than qnnc makes.
                let path = d.join("round8.onnx");
                std::fs::write(&path, bytes).unwrap();
                let out = d.join("round8.qnn").display().to_string();
                let args = ["import", path.to_str().unwrap(), "-o", &out];
                assert_user_error(&qnnc(&args), &["act1", "half to even", "thresholds"]);
                continue;
            }
            cases.push((case, bytes, bits));
        }
    }
    // After the max-pool that follows the quantizer: the same codes, pooled.
    let cnn = train(d, "fmnist_cnn.toml", "4");
    let cnn_onnx = d.join("cnn4.onnx").display().to_string();
    ok(qnnc(&["export", &cnn, "-o", &cnn_onnx]));
    let cnn_proto = ModelProto::parse_from_bytes(&std::fs::read(&cnn_onnx).unwrap()).unwrap();
    let bytes = with_truncation_after(&cnn_proto, "pool1", "FLOOR", 4.0);
    cases.push(("POOL4".to_string(), bytes, 4));
    use rayon::prelude::*;
    cases
        .par_iter()
        .for_each(|(case, bytes, bits)| check_truncation(d, case, bytes, *bits));
    let wrong = d.join("trunc_wrong_width.onnx");
    std::fs::write(&wrong, with_truncation(&proto, "FLOOR", 8.0)).unwrap();
    assert_user_error(
        &qnnc(&["eval", &wrong.display().to_string()]),
        &["act1_trunc", "Trunc", "u8", "u4"],
    );
}

/// A truncated network: shown as such, integer model within 0.3 points of the float one,
/// the same graph after export and import, and 0 mismatches in the RTL.
fn check_truncation(d: &Path, case: &str, bytes: &[u8], bits: u32) {
    let path = d.join(format!("trunc_{case}.onnx")).display().to_string();
    std::fs::write(&path, bytes).unwrap();
    let text = ok(qnnc(&["inspect", &path, "--after", "none"]));
    let expected = format!("quantize bits={} truncating u{bits} >> 2", bits - 2);
    assert!(text.contains(&expected), "{text}");
    let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
        "eval",
        &path,
        "--integer",
        "--test-limit",
        "1000",
        "--format",
        "json",
    ])))
    .unwrap();
    let float = report["accuracy"].as_f64().unwrap();
    let integer = report["integer_accuracy"].as_f64().unwrap();
    // Well above chance (10 %): the truncated network still classifies.
    assert!(float > 20.0, "{case}: {report}");
    assert!((integer - float).abs() <= 0.3, "{case}: {report}");
    let again = d
        .join(format!("trunc_{case}_again.onnx"))
        .display()
        .to_string();
    ok(qnnc(&["export", &path, "-o", &again]));
    assert_eq!(dumps(&path).0, dumps(&again).0, "{case}");
    let build = d.join(format!("build_{case}")).display().to_string();
    ok(qnnc(&["compile", &path, "-o", &build]));
    let sim: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
        "sim", &build, "--images", "100", "--model", &path, "--format", "json",
    ])))
    .unwrap();
    assert_eq!(sim["mismatches"], 0, "{case}: {sim}");
}

#[test]
fn corrupted_qonnx_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "tiny_cnn.toml", "2");
    let onnx = dir.path().join("tiny.onnx").display().to_string();
    ok(qnnc(&["export", &model, "-o", &onnx]));
    let good = std::fs::read(&onnx).unwrap();
    let test = data::load(DatasetKind::FashionMnist, None, Split::Test, Some(8)).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..400 {
        let mut bytes = good.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        if rng.random_bool(0.1) {
            bytes.truncate(rng.random_range(0..bytes.len()));
        }
        // Whatever the bytes, import and everything after it either work or say why.
        match qnnc::qonnx::import::import(&bytes, "corrupt.onnx", "corrupt") {
            Err(_) => refused += 1,
            Ok(graph) => {
                accepted += 1;
                if let Ok(float) = qnnc::ir::float_model::FloatModel::new(&graph, "corrupt.onnx") {
                    if graph
                        .output_type(graph.topological_order()[0])
                        .unwrap()
                        .shape
                        .len()
                        == 784
                    {
                        float.logits(&test.images);
                    }
                }
                let mut lowered = graph.clone();
                if passes::run(&mut lowered, "corrupt.onnx", None).is_ok() {
                    let _ = Golden::new(&lowered, "corrupt.onnx");
                }
            }
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

mod rewrite {
    //! Builders for the ONNX pieces the equivalence test puts into an exported graph.
    use onnx_protobuf::attribute_proto::AttributeType;
    use onnx_protobuf::{AttributeProto, GraphProto, NodeProto, TensorProto};

    pub fn floats(graph: &GraphProto, name: &str) -> Vec<f32> {
        let t = graph.initializer.iter().find(|t| t.name == name).unwrap();
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    pub fn set_floats(graph: &mut GraphProto, name: &str, values: &[f32]) {
        let t = graph
            .initializer
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap();
        t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    }

    pub fn constant(graph: &mut GraphProto, name: &str, dims: &[i64], values: &[f32]) {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.to_vec();
        t.data_type = 1;
        t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        graph.initializer.push(t);
    }

    pub fn int64s(graph: &mut GraphProto, name: &str, values: &[i64]) {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = vec![values.len() as i64];
        t.data_type = 7;
        t.int64_data = values.to_vec();
        graph.initializer.push(t);
    }

    pub fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = name.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.into()];
        n
    }

    pub fn with_perm(mut n: NodeProto, perm: &[i64]) -> NodeProto {
        let mut a = AttributeProto::new();
        a.name = "perm".into();
        a.type_ = AttributeType::INTS.into();
        a.ints = perm.to_vec();
        n.attribute.push(a);
        n
    }

    /// Replaces the node named `name` by `nodes`.
    pub fn replace(graph: &mut GraphProto, name: &str, nodes: Vec<NodeProto>) {
        let at = graph.node.iter().position(|n| n.name == name).unwrap();
        graph.node.splice(at..=at, nodes);
    }

    /// Renames the output of the node named `name`, returning its old name.
    pub fn reroute(graph: &mut GraphProto, name: &str, output: &str) -> String {
        let n = graph.node.iter_mut().find(|n| n.name == name).unwrap();
        std::mem::replace(&mut n.output[0], output.into())
    }
}

/// The same CNN written with other ONNX ops (Mul and Add, Sub and Div instead of batch norms,
/// Reshape instead of Flatten, MatMul on transposed weights instead of Gemm, a transpose to
/// NHWC before the flatten with the dense weights reordered to match, a redundant Relu, an
/// Identity) imports to a network that classifies as the original does.
#[test]
fn equivalent_onnx_graphs_import_to_the_same_network() {
    use rewrite::*;
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "fmnist_cnn.toml", "4");
    let onnx = dir.path().join("cnn.onnx").display().to_string();
    ok(qnnc(&["export", &model, "-o", &onnx]));
    let proto = ModelProto::parse_from_bytes(&std::fs::read(&onnx).unwrap()).unwrap();
    let rewritten = with(&proto, |m| {
        let g = m.graph.as_mut().unwrap();
        // Batch norm as y = a x + b.
        let affine = |g: &onnx_protobuf::GraphProto, bn: &str| {
            let gamma = floats(g, &format!("{bn}_scale"));
            let beta = floats(g, &format!("{bn}_bias"));
            let mean = floats(g, &format!("{bn}_mean"));
            let var = floats(g, &format!("{bn}_var"));
            let a: Vec<f32> = gamma
                .iter()
                .zip(&var)
                .map(|(g, v)| g / (v + 1e-5).sqrt())
                .collect();
            let b: Vec<f32> = beta
                .iter()
                .zip(&mean)
                .zip(&a)
                .map(|((b, m), a)| b - a * m)
                .collect();
            (a, b)
        };
        let (a, b) = affine(g, "bn1");
        constant(g, "bn1_a", &[1, 32, 1, 1], &a);
        constant(g, "bn1_b", &[32, 1, 1], &b);
        replace(
            g,
            "bn1",
            vec![
                node("Mul", "bn1_mul", &["conv1", "bn1_a"], "bn1_mid"),
                node("Add", "bn1", &["bn1_b", "bn1_mid"], "bn1"),
            ],
        );
        // (x - c) / d with c = -b / a and d = 1 / a.
        let (a, b) = affine(g, "bn2");
        let c: Vec<f32> = a.iter().zip(&b).map(|(a, b)| -b / a).collect();
        let d: Vec<f32> = a.iter().map(|a| 1.0 / a).collect();
        constant(g, "bn2_c", &[1, 32, 1, 1], &c);
        constant(g, "bn2_d", &[1, 32, 1, 1], &d);
        replace(
            g,
            "bn2",
            vec![
                node("Sub", "bn2_sub", &["conv2", "bn2_c"], "bn2_mid"),
                node("Div", "bn2", &["bn2_mid", "bn2_d"], "bn2"),
            ],
        );
        // A redundant ReLU before a quantizer, and an identity after a pool.
        let act2 = g.node.iter().position(|n| n.name == "act2").unwrap();
        g.node[act2].input[0] = "bn2_relu".into();
        g.node
            .insert(act2, node("Relu", "relu2", &["bn2"], "bn2_relu"));
        let pool1 = reroute(g, "pool1", "pool1_raw");
        g.node
            .push(node("Identity", "same", &["pool1_raw"], &pool1));
        // NHWC before the flatten, as a Reshape; the dense weights follow the new order.
        let pool3 = reroute(g, "pool3", "pool3_nchw");
        g.node.push(with_perm(
            node("Transpose", "to_nhwc", &["pool3_nchw"], &pool3),
            &[0, 2, 3, 1],
        ));
        int64s(g, "flat_shape", &[1, -1]);
        replace(
            g,
            "flatten1",
            vec![node(
                "Reshape",
                "flatten1",
                &["pool3", "flat_shape"],
                "flatten1",
            )],
        );
        let chw = floats(g, "fc1_weight");
        let (c, h, w) = (32, 3, 3);
        let mut hwc = vec![0f32; chw.len()];
        for o in 0..10 {
            for ci in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        hwc[o * 288 + (y * w + x) * c + ci] = chw[o * 288 + (ci * h + y) * w + x];
                    }
                }
            }
        }
        set_floats(g, "fc1_weight", &hwc);
        // MatMul on transposed weights instead of Gemm with transB.
        let mut transpose = node("Transpose", "fc1_wt", &["fc1_weight_quantized"], "fc1_wt");
        transpose = with_perm(transpose, &[1, 0]);
        replace(
            g,
            "fc1",
            vec![
                transpose,
                node("MatMul", "fc1", &["flatten1", "fc1_wt"], "fc1"),
            ],
        );
    });
    let path = dir.path().join("rewritten.onnx").display().to_string();
    std::fs::write(&path, rewritten).unwrap();
    let test = data::load(DatasetKind::FashionMnist, None, Split::Test, Some(300)).unwrap();
    let classes = |file: &str| {
        let (_, _, lowered) = dumps(file);
        let graph = Source::open(Path::new(file), &Default::default())
            .unwrap()
            .graph(file)
            .unwrap();
        let float = qnnc::ir::float_model::FloatModel::new(&graph, file)
            .unwrap()
            .logits(&test.images);
        let golden = Golden::new(&lowered, file).unwrap().run(&test.images);
        let argmax = |l: &Vec<f32>| (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap();
        let float: Vec<usize> = float.iter().map(argmax).collect();
        let golden: Vec<usize> = golden.iter().map(|p| p.class).collect();
        (float, golden)
    };
    let (float, golden) = classes(&onnx);
    let (float2, golden2) = classes(&path);
    let differ = |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    // Scales composed in another order may move a value across a rounding step, rarely.
    assert!(
        differ(&float, &float2) <= 3,
        "float: {} of 300 differ",
        differ(&float, &float2)
    );
    assert!(
        differ(&golden, &golden2) <= 3,
        "golden: {} of 300 differ",
        differ(&golden, &golden2)
    );
    let text = ok(qnnc(&["inspect", &path, "--after", "none"]));
    assert!(!text.contains("relu") && text.contains("bn1_mul"), "{text}");
    assert!(text.contains("conv2d filters=32 kernel=3 stride=1 padding=1 weights=i4 [288x32]"));
}

/// Per-channel weight scales with a bias (as Brevitas exports a biased layer with per-channel
/// weights) give what the same scales give with the bias added after the layer.
#[test]
fn a_bias_with_per_channel_weight_scales_is_added_after_the_scales() {
    use rewrite::*;
    let dir = tempfile::tempdir().unwrap();
    let (_, proto) = exported(dir.path());
    let per_channel = |bias_as_add: bool| {
        with(&proto, |m| {
            let g = m.graph.as_mut().unwrap();
            let step = floats(g, "fc3_weight_quant_scale")[0];
            let scales: Vec<f32> = (0..10).map(|c| step * (1.0 + 0.2 * c as f32)).collect();
            let t = g
                .initializer
                .iter_mut()
                .find(|t| t.name == "fc3_weight_quant_scale")
                .unwrap();
            t.dims = vec![10, 1];
            t.raw_data = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
            let bias: Vec<f32> = (0..10).map(|c| 0.3 * c as f32 - 1.0).collect();
            constant(g, "fc3_b", &[10], &bias);
            if bias_as_add {
                let out = reroute(g, "fc3", "fc3_raw");
                g.node
                    .push(node("Add", "fc3_add", &["fc3_raw", "fc3_b"], &out));
            } else {
                let fc3 = g.node.iter_mut().find(|n| n.name == "fc3").unwrap();
                fc3.input.push("fc3_b".into());
            }
        })
    };
    let test = data::load(DatasetKind::FashionMnist, None, Split::Test, Some(100)).unwrap();
    let logits = |bytes: Vec<u8>| {
        let graph = qnnc::qonnx::import::import(&bytes, "per_channel.onnx", "x").unwrap();
        qnnc::ir::float_model::FloatModel::new(&graph, "per_channel.onnx")
            .unwrap()
            .logits(&test.images)
    };
    let (in_layer, after) = (logits(per_channel(false)), logits(per_channel(true)));
    let mut largest = 0f32;
    for (a, b) in in_layer.iter().flatten().zip(after.iter().flatten()) {
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
        largest = largest.max(b.abs());
    }
    assert!(largest > 0.5, "the bias must show in the logits");
}

/// `proto` with `op` (a constant Mul, Div, Add or Sub by `values`, or an 8-bit Quant of scale
/// `values[0]` with `signed`) between the graph input and the first node.
fn with_input_node(proto: &ModelProto, op: &str, values: &[f32], signed: bool) -> Vec<u8> {
    use onnx_protobuf::attribute_proto::AttributeType;
    use onnx_protobuf::{AttributeProto, NodeProto, TensorProto};
    with(proto, |m| {
        let graph = m.graph.as_mut().unwrap();
        let input = graph.input[0].name.clone();
        for node in graph.node.iter_mut() {
            for i in node.input.iter_mut().filter(|i| **i == input) {
                *i = "input_prepared".into();
            }
        }
        let constant = |name: &str, values: &[f32], dims: Vec<i64>| {
            let mut t = TensorProto::new();
            t.name = name.into();
            t.data_type = 1;
            t.dims = dims;
            t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            t
        };
        let mut node = NodeProto::new();
        node.op_type = op.into();
        node.name = "input_prepare".into();
        node.output = vec!["input_prepared".into()];
        if op == "Quant" {
            node.domain = "qonnx.custom_op.general".into();
            for (name, value) in [("q_scale", values[0]), ("q_zero", 0.0), ("q_bits", 8.0)] {
                graph.initializer.push(constant(name, &[value], Vec::new()));
            }
            node.input = vec![input, "q_scale".into(), "q_zero".into(), "q_bits".into()];
            for (name, value) in [("signed", signed as i64), ("narrow", 0)] {
                let mut a = AttributeProto::new();
                a.name = name.into();
                a.type_ = AttributeType::INT.into();
                a.i = value;
                node.attribute.push(a);
            }
        } else {
            let dims = if values.len() == 1 {
                Vec::new()
            } else {
                vec![1, values.len() as i64]
            };
            graph.initializer.push(constant("c_input", values, dims));
            node.input = vec![input, "c_input".into()];
        }
        graph.node.insert(0, node);
    })
}

#[test]
fn the_input_scale_comes_from_an_input_quantizer_a_constant_scaling_or_the_user() {
    use qnnc::qonnx::import::{import, import_with, ImportOptions};
    let dir = tempfile::tempdir().unwrap();
    let (_, proto) = exported(dir.path());
    let plain = proto.write_to_bytes().unwrap();
    let input_scale = |graph: &qnnc::ir::Graph| {
        let input = graph.input_node().unwrap();
        graph.output_type(input).unwrap().scale
    };
    let images: Vec<u8> = (0..784 * 20).map(|i| (i * 7919 % 256) as u8).collect();
    let run = |graph: &qnnc::ir::Graph| {
        let mut lowered = graph.clone();
        qnnc::ir::passes::run(&mut lowered, "x", None).unwrap();
        qnnc::golden::Golden::new(&lowered, "x")
            .unwrap()
            .run(&images)
    };
    let default = import(&plain, "plain.onnx", "m").unwrap();
    assert_eq!(input_scale(&default), 1.0 / 255.0);
    let given = ImportOptions {
        input_scale: Some(1.0 / 256.0),
    };
    let by_flag = import_with(&plain, "plain.onnx", "m", given).unwrap();
    assert_eq!(input_scale(&by_flag), 1.0 / 256.0);
    let by_mul = import(
        &with_input_node(&proto, "Mul", &[255.0 / 256.0], false),
        "mul.onnx",
        "m",
    )
    .unwrap();
    let by_div = import(
        &with_input_node(&proto, "Div", &[256.0 / 255.0], false),
        "div.onnx",
        "m",
    )
    .unwrap();
    let by_quant = import(
        &with_input_node(&proto, "Quant", &[1.0 / 256.0], false),
        "quant.onnx",
        "m",
    )
    .unwrap();
    for graph in [&by_mul, &by_div, &by_quant] {
        assert!((input_scale(graph) - 1.0 / 256.0).abs() < 1e-9);
        assert_eq!(run(graph), run(&by_flag));
    }
    // An export keeps the scale as a Mul on the input.
    let exported = qnnc::qonnx::export::export(&by_flag, "x.onnx").unwrap();
    let back = import(&exported, "x.onnx", "m").unwrap();
    assert!((input_scale(&back) - 1.0 / 256.0).abs() < 1e-9);
    assert_eq!(run(&back), run(&by_flag));
    // The thresholds move with the pixel's value: a different scale is a different network.
    assert_ne!(
        qnnc::ir::dump::to_text(&default),
        qnnc::ir::dump::to_text(&by_flag)
    );

    let refused = |bytes: &[u8], options: ImportOptions, needles: &[&str]| {
        let error = import_with(bytes, "bad.onnx", "m", options)
            .unwrap_err()
            .to_string();
        assert!(!error.contains('\n'), "{error}");
        for needle in needles {
            assert!(error.contains(needle), "{needle:?} not in {error}");
        }
    };
    let none = ImportOptions::default();
    // A scale per pixel (the one channel of a grey image has a single scale).
    let per_feature: Vec<f32> = (0..784).map(|i| 1.0 + (i % 2) as f32).collect();
    refused(
        &with_input_node(&proto, "Add", &[0.5], false),
        none,
        &["input_prepare", "Add", "cannot be kept exact"],
    );
    refused(
        &with_input_node(&proto, "Mul", &per_feature, false),
        none,
        &[
            "input_prepare",
            "Mul",
            "only scalar or per-channel constants",
        ],
    );
    refused(
        &with_input_node(&proto, "Quant", &[1.0 / 256.0], true),
        none,
        &["input_prepare", "Quant", "8-bit unsigned"],
    );
    refused(
        &with_input_node(&proto, "Quant", &[1.0 / 256.0], false),
        given,
        &["input_prepare", "--input-scale does not apply"],
    );
    // The same through the command line.
    let quantized = dir.path().join("quantized.onnx");
    std::fs::write(
        &quantized,
        with_input_node(&proto, "Quant", &[1.0 / 256.0], false),
    )
    .unwrap();
    let quantized = quantized.to_str().unwrap();
    for command in ["eval", "energy", "inspect"] {
        assert_user_error(
            &qnnc(&[command, quantized, "--input-scale", "1/256"]),
            &["input_prepare", "--input-scale does not apply"],
        );
    }
    let plain_file = dir.path().join("plain.onnx");
    std::fs::write(&plain_file, &plain).unwrap();
    let plain_file = plain_file.to_str().unwrap();
    let by_flag_text = ok(qnnc(&["inspect", plain_file, "--input-scale", "1/256"]));
    let by_quant_text = ok(qnnc(&["inspect", quantized]));
    assert_eq!(
        by_flag_text.lines().skip(1).collect::<Vec<_>>(),
        by_quant_text.lines().skip(1).collect::<Vec<_>>()
    );
    assert_user_error(
        &qnnc(&["eval", plain_file, "--input-scale", "0"]),
        &["--input-scale", "positive and finite"],
    );
    assert_user_error(
        &qnnc(&[
            "energy",
            "examples/fmnist_mlp.toml",
            "--input-scale",
            "1/256",
        ]),
        &["--input-scale", "applies to a QONNX file"],
    );
    for scale in [0.0, -1.0, f64::NAN] {
        refused(
            &plain,
            ImportOptions {
                input_scale: Some(scale),
            },
            &["--input-scale", "positive and finite"],
        );
    }
}

#[test]
fn a_per_channel_affine_after_the_last_layer_folds_into_the_logits() {
    use onnx_protobuf::{NodeProto, TensorProto};
    use qnnc::qonnx::import::import;
    let dir = tempfile::tempdir().unwrap();
    let (_, proto) = exported(dir.path());
    // TensorNorm's form: logits * a + b, per class, after the last dense layer.
    let bytes = with(&proto, |m| {
        let graph = m.graph.as_mut().unwrap();
        let output = graph.output[0].name.clone();
        let last = graph
            .node
            .iter_mut()
            .find(|n| n.output.contains(&output))
            .unwrap();
        last.output = vec!["before_norm".into()];
        for (name, values) in [
            (
                "norm_a",
                (0..10).map(|c| 0.5 + c as f32 * 0.1).collect::<Vec<_>>(),
            ),
            ("norm_b", (0..10).map(|c| c as f32 * 0.01 - 0.05).collect()),
        ] {
            let mut t = TensorProto::new();
            t.name = name.into();
            t.data_type = 1;
            t.dims = vec![1, 10];
            t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            graph.initializer.push(t);
        }
        for (op, from, constant, to) in [
            ("Mul", "before_norm", "norm_a", "normed"),
            ("Add", "normed", "norm_b", output.as_str()),
        ] {
            let mut node = NodeProto::new();
            node.op_type = op.into();
            node.name = format!("norm_{op}");
            node.input = vec![from.into(), constant.into()];
            node.output = vec![to.into()];
            graph.node.push(node);
        }
    });
    let graph = import(&bytes, "norm.onnx", "norm").unwrap();
    let float = qnnc::ir::float_model::FloatModel::new(&graph, "norm.onnx").unwrap();
    let mut lowered = graph.clone();
    qnnc::ir::passes::run(&mut lowered, "norm.onnx", None).unwrap();
    let images: Vec<u8> = (0..784 * 50).map(|i| (i * 7919 % 256) as u8).collect();
    let golden = qnnc::golden::Golden::new(&lowered, "norm.onnx")
        .unwrap()
        .run(&images);
    let agree = float
        .logits(&images)
        .iter()
        .zip(&golden)
        .filter(|(l, g)| qnnc::kernels::argmax(l) == g.class)
        .count();
    assert!(agree >= 49, "{agree} of 50 classes agree");
    let plain = import(&proto.write_to_bytes().unwrap(), "plain.onnx", "plain").unwrap();
    assert_ne!(
        qnnc::ir::dump::to_text(&graph),
        qnnc::ir::dump::to_text(&plain)
    );
}

/// The Brevitas-trained residual network (`make_fixtures.sh --residual`) and its record.
fn residual_fixture() -> (String, f64, u64) {
    let text = std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let record = &json["residual"]["fixtures"][0];
    let file = record["file"].as_str().unwrap().to_string();
    let bytes = std::fs::read(fixtures().join(&file)).unwrap();
    assert_eq!(
        record["sha256"].as_str().unwrap(),
        qnnc::codegen::digest(&bytes),
        "{file} changed"
    );
    (
        fixtures().join(&file).display().to_string(),
        record["brevitas_accuracy"].as_f64().unwrap(),
        record["test_images"].as_u64().unwrap(),
    )
}

#[test]
fn a_brevitas_residual_network_imports_to_its_accuracy_and_runs_bit_exactly() {
    let (path, brevitas, images) = residual_fixture();
    let (graph_json, _, lowered) = dumps(&path);
    // Two adds, each reading the block's input through a skip connection, and a global pool.
    let graph: serde_json::Value = serde_json::from_str(&graph_json).unwrap();
    let nodes = graph["nodes"].as_array().unwrap();
    let kinds = |kind: &str| nodes.iter().filter(|n| n["op"]["kind"] == kind).count();
    assert_eq!((kinds("add"), kinds("avg-pool")), (2, 1), "{graph_json}");
    assert!(lowered
        .topological_order()
        .iter()
        .all(|&n| !matches!(lowered.graph[n].op, qnnc::ir::Op::Quantize { .. })));

    // The evaluation on the whole test set and the build and simulation run side by side.
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("build").display().to_string();
    let (evaluated, simulated) = rayon::join(
        || ok(qnnc(&["eval", &path, "--integer", "--format", "json"])),
        || {
            ok(qnnc(&[
                "compile", &path, "--pe", "8", "--simd", "16", "-o", &build,
            ]));
            ok(qnnc(&[
                "sim", &build, "--images", "200", "--model", &path, "--format", "json",
            ]))
        },
    );
    let report: serde_json::Value = serde_json::from_str(&evaluated).unwrap();
    assert_eq!(report["test_images"].as_u64(), Some(images));
    let float = report["accuracy"].as_f64().unwrap();
    let integer = report["integer_accuracy"].as_f64().unwrap();
    assert!(
        (float - brevitas).abs() <= 0.1,
        "qnnc's float model {float} % but Brevitas reported {brevitas} %"
    );
    assert!(
        (integer - float).abs() <= 0.1,
        "integer golden model {integer} % but float {float} %"
    );

    // The PE array computes the adds and the average pool as the golden model does.
    let sim: serde_json::Value = serde_json::from_str(&simulated).unwrap();
    assert_eq!(sim["mismatches"], 0, "{sim}");
    assert_eq!(sim["test_images"], 200, "{sim}");
    assert_eq!(
        sim["cycles_per_inference"], sim["predicted_cycles"],
        "{sim}"
    );

    // Export then import gives the same graph.
    let exported = dir.path().join("resnet.onnx").display().to_string();
    ok(qnnc(&["export", &path, "-o", &exported]));
    let again = dumps(&exported);
    let (_, lowered_json, _) = dumps(&path);
    assert_eq!(again.1, lowered_json);
}

#[test]
fn bad_skip_connections_in_qonnx_files_get_one_line_errors() {
    let (path, _, _) = residual_fixture();
    let proto = ModelProto::parse_from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tensor_of = |op: &str, index: usize| {
        let graph = proto.graph.as_ref().unwrap();
        let nodes: Vec<&NodeProto> = graph.node.iter().filter(|n| n.op_type == op).collect();
        nodes[index].output[0].clone()
    };
    let skip_from = |add: usize, tensor: String| {
        with(&proto, |m| {
            let graph = m.graph.as_mut().unwrap();
            let adds: Vec<&mut NodeProto> = graph
                .node
                .iter_mut()
                .filter(|n| n.op_type == "Add")
                .collect();
            adds.into_iter().nth(add).unwrap().input[1] = tensor;
        })
    };
    // A skip from a later layer: the second max-pool's output into the first block's add.
    let later = skip_from(0, tensor_of("MaxPool", 1));
    refused(
        d,
        "later.onnx",
        &later,
        &["later.onnx", "/Add", "not computed before it"],
    );
    // A skip from the add's own output: a cycle.
    let cycle = skip_from(0, tensor_of("Add", 0));
    refused(
        d,
        "cycle.onnx",
        &cycle,
        &["cycle.onnx", "/Add", "not computed before it"],
    );
    // A skip of another shape: 28x28 into the second block's 14x14 add.
    let shapes = skip_from(1, tensor_of("Quant", 3));
    refused(
        d,
        "shapes.onnx",
        &shapes,
        &["shapes.onnx", "/Add_1", "one shape"],
    );
    // A tensor that feeds two layers besides an add is no residual block.
    let forked = with(&proto, |m| {
        let graph = m.graph.as_mut().unwrap();
        let stem_act = graph
            .node
            .iter()
            .find(|n| n.op_type == "Conv")
            .unwrap()
            .output[0]
            .clone();
        let flatten = graph
            .node
            .iter_mut()
            .find(|n| n.op_type == "GlobalAveragePool")
            .unwrap();
        flatten.input[0] = stem_act;
    });
    refused(
        d,
        "forked.onnx",
        &forked,
        &["forked.onnx", "feeds 2 nodes", "skip connections"],
    );
}

/// Pools import through their ops' own functions; what those refuse still names the file, the
/// node and its op type on one line.
#[test]
fn bad_pools_in_qonnx_files_get_one_line_errors() {
    use onnx_protobuf::attribute_proto::AttributeType;
    use onnx_protobuf::AttributeProto;
    let (path, _, _) = residual_fixture();
    let proto = ModelProto::parse_from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Sets attribute `name` of `n` to `values`, in place of any it has.
    let set = |n: &mut NodeProto, name: &str, values: &[i64]| {
        let mut a = AttributeProto::new();
        a.name = name.into();
        a.type_ = AttributeType::INTS.into();
        a.ints = values.to_vec();
        n.attribute.retain(|old| old.name != name);
        n.attribute.push(a);
    };
    // The first node of `op`, changed.
    let with_first = |op: &str, change: &dyn Fn(&mut NodeProto)| {
        with(&proto, |m| {
            let graph = m.graph.as_mut().unwrap();
            change(graph.node.iter_mut().find(|n| n.op_type == op).unwrap());
        })
    };
    let padded = with_first("MaxPool", &|n| set(n, "pads", &[1, 1, 1, 1]));
    refused(
        d,
        "padded.onnx",
        &padded,
        &["padded.onnx", "MaxPool", "padding (auto_pad too)"],
    );
    let indices = with_first("MaxPool", &|n| n.output.push("indices".into()));
    refused(
        d,
        "indices.onnx",
        &indices,
        &["indices.onnx", "MaxPool", "indices are not supported"],
    );
    let window = |kernel: &'static [i64]| {
        move |n: &mut NodeProto| {
            n.op_type = "AveragePool".into();
            set(n, "kernel_shape", kernel);
            set(n, "strides", &[1, 1]);
        }
    };
    let oblong = with_first("GlobalAveragePool", &window(&[2, 3]));
    refused(
        d,
        "oblong.onnx",
        &oblong,
        &["oblong.onnx", "AveragePool", "only square 2-D windows"],
    );
    let large = with_first("GlobalAveragePool", &window(&[99, 99]));
    refused(
        d,
        "large.onnx",
        &large,
        &[
            "large.onnx",
            "AveragePool",
            "the window is larger than the input",
        ],
    );
}
