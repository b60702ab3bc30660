//! Sizes from hostile input: every number a user gives is bounded before anything is
//! allocated from it, every error is one line (names with control characters are escaped), and
//! nothing recurses as deep as a file asks. Each case gets one line and exit code 1.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{assert_user_error, example, qnnc};

/// The MLP example with `hidden` as its hidden widths (TOML text).
fn mlp_spec(dir: &Path, hidden: &str) -> String {
    let text = std::fs::read_to_string(example("fmnist_mlp.toml"))
        .unwrap()
        .replace("hidden = [256, 256]", &format!("hidden = [{hidden}]"));
    write(dir, "mlp.toml", &text)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const HEADER: &str = "dataset = \"fashion-mnist\"\ninput = { height = 28, width = 28, channels = 1 }\nclasses = 10\n";

#[test]
fn huge_hidden_widths_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    for width in ["2147483648", "9223372036854775807"] {
        let spec = mlp_spec(dir.path(), width);
        for command in ["inspect", "energy"] {
            assert_user_error(
                &qnnc(&[command, &spec]),
                &["mlp.toml", "template.hidden[0]", width, "limit"],
            );
        }
    }
    assert_user_error(
        &qnnc(&[
            "inspect",
            &example("fmnist_mlp.toml"),
            "--hidden",
            "4294967296",
        ]),
        &["fmnist_mlp.toml", "--hidden", "4294967296", "limit"],
    );
}

#[test]
fn huge_block_templates_are_refused_at_once() {
    let cnn = example("fmnist_cnn.toml");
    assert_user_error(
        &qnnc(&["inspect", &cnn, "--nf", "4294967296"]),
        &["fmnist_cnn.toml", "--nf", "4294967296", "limit"],
    );
    assert_user_error(
        &qnnc(&["energy", &cnn, "--nl", "4294967296"]),
        &["--nl", "4294967296", "limit"],
    );
    // Used to take 5.3 GiB and 26 s.
    let start = Instant::now();
    assert_user_error(
        &qnnc(&["energy", &cnn, "--nl", "1000000"]),
        &["--nl", "1000000", "limit"],
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    // Each value is below the limit, the expanded network is not.
    assert_user_error(
        &qnnc(&["energy", &cnn, "--nl", "2000"]),
        &["template", "more than 4096 layers"],
    );
    // So is a huge nl in the spec itself.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&cnn).unwrap().replace(
        "{ nl = 1, nf = 32 }, { nl = 1",
        "{ nl = 9000000000, nf = 32 }, { nl = 1",
    );
    let spec = write(dir.path(), "cnn.toml", &text);
    assert_user_error(
        &qnnc(&["energy", &spec]),
        &["template.blocks[0].nl", "limit"],
    );
}

#[test]
fn a_sweep_with_a_huge_depth_or_width_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        example("fmnist_mlp.toml"),
        dir.path().join("fmnist_mlp.toml"),
    )
    .unwrap();
    let sweep = write(
        dir.path(),
        "sweep.toml",
        "name = \"deep\"\nseed = 1\ntargets = [50.0]\nprofiles = [\"moons-dram\"]\nbatch = 25\nlearning_rate = 0.005\n[mlp]\nspec = \"fmnist_mlp.toml\"\nbits = [4]\nwidths = [8]\ndepths = [4294967296]\nepochs = 1\n",
    );
    let output = qnnc(&[
        "explore",
        &sweep,
        "-o",
        &dir.path().join("out").display().to_string(),
    ]);
    assert_user_error(&output, &["sweep.toml", "mlp.depths", "limit"]);
    let text = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("depths = [4294967296]", "depths = [1]")
        .replace("widths = [8]", "widths = [8, 9223372036854775807]");
    let sweep = write(dir.path(), "wide.toml", &text);
    let output = qnnc(&[
        "explore",
        &sweep,
        "-o",
        &dir.path().join("out").display().to_string(),
    ]);
    assert_user_error(&output, &["wide.toml", "mlp.widths", "limit"]);
}

#[test]
fn a_70000_layer_spec_is_refused_without_overflowing_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("name = \"deep\"\n{HEADER}layers = [\n{{ kind = \"flatten\" }},\n");
    for _ in 0..70_000 {
        text += "{ kind = \"act\", bits = 4 },\n";
    }
    text += "{ kind = \"dense\", units = 10 },\n]\n";
    let spec = write(dir.path(), "deep.toml", &text);
    for command in ["inspect", "energy"] {
        assert_user_error(
            &qnnc(&[command, &spec]),
            &["deep.toml", "layers", "70002 layers", "limit"],
        );
    }
}

/// The IR file that `qnnc import` makes of the MLP fixture, as JSON.
fn imported_ir(dir: &Path) -> serde_json::Value {
    let path = dir.join("imported.qnn").display().to_string();
    let fixture = format!(
        "{}/tests/fixtures/qonnx/mlp_q4.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    common::ok(qnnc(&["import", &fixture, "-o", &path]));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn ir_files_over_the_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ir = imported_ir(dir.path());

    // 100,000 nodes (about 58,000 overflowed the stack of the old cycle check).
    let mut long = ir.clone();
    let nodes = long["nodes"].as_array_mut().unwrap();
    let flatten = nodes[1].clone();
    let tail = nodes.split_off(1);
    for i in 0..100_000 {
        let mut node = flatten.clone();
        node["name"] = format!("f{i}").into();
        nodes.push(node);
    }
    nodes.extend(tail);
    let path = write(dir.path(), "long.qnn", &long.to_string());
    assert_user_error(
        &qnnc(&["inspect", &path]),
        &["long.qnn", "nodes", "100011 nodes", "limit"],
    );

    // A dense layer with 2^62 outputs.
    let mut wide = ir.clone();
    let dense = wide["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["op"]["kind"] == "mac")
        .unwrap();
    dense["op"]["outputs"] = (1u64 << 62).into();
    dense["output"]["shape"]["channels"] = (1u64 << 62).into();
    let path = write(dir.path(), "wide.qnn", &wide.to_string());
    assert_user_error(&qnnc(&["inspect", &path]), &["wide.qnn", "limit"]);
}

#[test]
fn huge_pe_and_simd_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = format!(
        "{}/tests/fixtures/qonnx/mlp_q4.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let build = dir.path().join("build");
    let build = build.display().to_string();
    let output = qnnc(&[
        "compile",
        &fixture,
        "-o",
        &build,
        "--pe",
        "8",
        "--simd",
        "4611686018427387904",
    ]);
    assert_user_error(&output, &["--simd", "4611686018427387904", "limit"]);
    assert!(!Path::new(&build).exists());
    let output = qnnc(&[
        "compile", &fixture, "-o", &build, "--pe", "1024", "--simd", "1024",
    ]);
    assert_user_error(&output, &["--pe", "lanes", "limit"]);

    // inspect --schedule used to accept the same values; now it prints nothing but the error.
    let output = qnnc(&[
        "inspect",
        &fixture,
        "--schedule",
        "--simd",
        "4611686018427387904",
    ]);
    assert_user_error(&output, &["--simd", "limit"]);
    assert!(output.stdout.is_empty());
}

#[test]
fn huge_training_flags_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.qnn").display().to_string();
    let spec = example("fmnist_mlp.toml");
    for (flag, value) in [
        ("--epochs", "4294967296"),
        ("--batch", "1000000000"),
        ("--train-limit", "18446744073709551615"),
    ] {
        let output = qnnc(&["train", &spec, flag, value, "-o", &model]);
        assert_user_error(&output, &[flag, value, "limit"]);
    }
    assert!(!Path::new(&model).exists());
}

#[test]
fn names_with_newlines_give_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let toml = write(
        dir.path(),
        "name.toml",
        &format!("name = \"evil\\nname\"\n{HEADER}[template]\nkind = \"mlp\"\nhidden = [8]\n"),
    );
    assert_user_error(
        &qnnc(&["inspect", &toml]),
        &["name.toml", "name", "evil\\nname"],
    );
    let json = write(
        dir.path(),
        "name.json",
        r#"{"name": "a\r\nb\u001b[2J", "input": {"height": 28, "width": 28, "channels": 1},
            "classes": 10, "template": {"kind": "mlp", "hidden": [8]}}"#,
    );
    assert_user_error(
        &qnnc(&["energy", &json]),
        &["name.json", "name", "a\\r\\nb"],
    );
    let layer = write(
        dir.path(),
        "layer.toml",
        &format!(
            "name = \"t\"\n{HEADER}layers = [{{ kind = \"flatten\", name = \"x\\ny\" }}, {{ kind = \"dense\", units = 10 }}]\n"
        ),
    );
    assert_user_error(&qnnc(&["inspect", &layer]), &["layers[0].name", "x\\ny"]);

    // An IR file (import writes them as .qnn) whose graph or node name has a newline.
    let ir = imported_ir(dir.path());
    let mut renamed = ir.clone();
    renamed["name"] = "two\nlines".into();
    let path = write(dir.path(), "graph.qnn", &renamed.to_string());
    assert_user_error(&qnnc(&["inspect", &path]), &["graph.qnn", "two\\nlines"]);
    let mut renamed = ir.clone();
    renamed["nodes"][1]["name"] = "node\nname".into();
    renamed["nodes"][2]["inputs"] = serde_json::json!(["node\nname"]);
    let path = write(dir.path(), "node.qnn", &renamed.to_string());
    assert_user_error(&qnnc(&["inspect", &path]), &["node.qnn", "node\\nname"]);

    // A trained-model file whose spec is named so: refused by the spec check.
    let model = serde_json::json!({
        "format": "qnnc-model",
        "version": 1,
        "spec": {
            "name": "model\nname",
            "input": {"height": 28, "width": 28, "channels": 1},
            "classes": 10,
            "template": {"kind": "mlp", "hidden": [8]}
        },
        "training": {
            "dataset": "fashion-mnist", "train_images": 1, "test_images": 1,
            "options": {"epochs": 1, "batch": 1, "learning_rate": 0.001, "seed": 1},
            "history": [], "test_accuracy": 0.0
        },
        "parameters": {}
    });
    let path = write(dir.path(), "model.qnn", &model.to_string());
    assert_user_error(
        &qnnc(&["inspect", &path]),
        &["model.qnn", "spec.name", "model\\nname"],
    );

    // A file name with a newline.
    let path = write(dir.path(), "bad\nfile.toml", "name = 3\n");
    assert_user_error(&qnnc(&["inspect", &path]), &["bad\\nfile.toml"]);
}

#[test]
fn energy_refuses_sizes_that_would_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let json = write(
        dir.path(),
        "wrap.json",
        r#"{"name": "wrap", "input": {"height": 28, "width": 28, "channels": 1}, "classes": 10,
            "layers": [{"kind": "conv2d", "filters": 18446744073709551615, "kernel": 3},
                       {"kind": "flatten"}, {"kind": "dense", "units": 10}]}"#,
    );
    assert_user_error(
        &qnnc(&["energy", &json]),
        &["wrap.json", "layers[0]", "18446744073709551615", "limit"],
    );
    // Widths within the limit whose product is not: 2^20 filters on a 26x26 map.
    let json = write(
        dir.path(),
        "big.json",
        r#"{"name": "big", "input": {"height": 28, "width": 28, "channels": 1}, "classes": 10,
            "layers": [{"kind": "conv2d", "filters": 1048576, "kernel": 3},
                       {"kind": "flatten"}, {"kind": "dense", "units": 10}]}"#,
    );
    assert_user_error(
        &qnnc(&["energy", &json]),
        &["big.json", "layers[0]", "limit"],
    );
}

#[test]
fn profiles_whose_energies_would_overflow_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = |field: &str, value: &str| {
        let mut text = String::from("name = \"p\"\ndescription = \"d\"\nunits = \"pJ\"\n");
        for (name, default) in [
            ("e_mac16", "1.0"),
            ("beta", "1.25"),
            ("e_local16", "1.0"),
            ("e_main16", "100.0"),
        ] {
            let value = if name == field { value } else { default };
            text += &format!("{name} = {value}\n");
        }
        text += "parallel_macs = 64\n";
        write(dir.path(), &format!("{field}.toml"), &text)
    };
    for (field, value) in [
        ("e_mac16", "1e308"),
        ("e_main16", "1e300"),
        ("e_local16", "1.7e308"),
        ("beta", "1e6"),
    ] {
        let path = profile(field, value);
        let output = qnnc(&["energy", &example("fmnist_cnn.toml"), "--profile", &path]);
        assert_user_error(&output, &[&format!("{field}.toml"), field, "at most"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.contains("inf") && !stdout.contains("NaN"),
            "{stdout}"
        );
    }
}

#[test]
fn export_refuses_what_import_cannot_read_back() {
    let dir = tempfile::tempdir().unwrap();
    // A batch norm after the activation, not after the dense layer: trains and evaluates,
    // but QONNX import folds batch norms only into the MAC before them.
    let spec = write(
        dir.path(),
        "late_bn.toml",
        &format!(
            "name = \"late_bn\"\n{HEADER}precision = {{ weights = 4, activations = 4 }}\nlayers = [\n\
             {{ kind = \"flatten\" }}, {{ kind = \"dense\", units = 8 }}, {{ kind = \"act\" }},\n\
             {{ kind = \"batchnorm\" }}, {{ kind = \"dense\", units = 10 }}]\n"
        ),
    );
    let model = dir.path().join("late_bn.qnn").display().to_string();
    common::ok(qnnc(&[
        "train",
        &spec,
        "--epochs",
        "1",
        "--train-limit",
        "100",
        "--test-limit",
        "10",
        "-o",
        &model,
    ]));
    let onnx = dir.path().join("late_bn.onnx");
    let output = qnnc(&["export", &model, "-o", &onnx.display().to_string()]);
    assert_user_error(
        &output,
        &["late_bn.qnn", "bn1", "follows quantize act1", "read back"],
    );
    assert!(!onnx.exists());
}
