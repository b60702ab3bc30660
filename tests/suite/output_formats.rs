//! The command line as a script meets it: every `--format json` output parses whatever other
//! flags are given, every flag a `--help` lists applies or is refused in one line, image
//! counts are said and clamped counts warned about, and `explore` scales down from the command
//! line. Needs Fashion-MNIST and Verilator (`make test` installs them).

use crate::common;
use common::{assert_user_error, example, ok, qnnc};

use std::path::Path;
use std::process::Output;

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Runs `args`: either it succeeds and standard output is one JSON document, or it is refused
/// in one line with nothing on standard output. Returns the document, if any.
fn json_or_refused(args: &[&str]) -> Option<serde_json::Value> {
    let output = qnnc(args);
    let (stdout, stderr) = text(&output);
    if output.status.success() {
        let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "qnnc {}: not one JSON document ({e}):\n{stdout}",
                args.join(" ")
            )
        });
        Some(value)
    } else {
        assert_user_error(&output, &[]);
        assert!(
            stdout.is_empty(),
            "qnnc {}: refused after printing {stdout}{stderr}",
            args.join(" ")
        );
        None
    }
}

/// Like [`json_or_refused`], for a combination that must succeed.
fn json(args: &[&str]) -> serde_json::Value {
    json_or_refused(args).unwrap_or_else(|| panic!("qnnc {} was refused", args.join(" ")))
}

/// A tiny CNN trained for one epoch on 300 images, its QONNX export and its lowered IR file.
struct Trained {
    model: String,
    onnx: String,
    ir: String,
}

fn trained(dir: &Path) -> Trained {
    let model = dir.join("tiny.qnn").display().to_string();
    let report = json(&[
        "train",
        &example("tiny_cnn.toml"),
        "--bits",
        "2",
        "--epochs",
        "1",
        "--train-limit",
        "300",
        "--test-limit",
        "100",
        "-o",
        &model,
        "--format",
        "json",
    ]);
    assert_eq!(report["wbits"], 2, "{report}");
    assert_eq!(report["test_images"], 100, "{report}");
    let onnx = dir.join("tiny.onnx").display().to_string();
    ok(qnnc(&["export", &model, "-o", &onnx]));
    let ir = dir.join("tiny_ir.json").display().to_string();
    std::fs::write(&ir, ok(qnnc(&["inspect", &model, "--format", "json"]))).unwrap();
    Trained { model, onnx, ir }
}

/// IDX files of `n` blank Fashion-MNIST images a split: a test set smaller than any limit.
fn tiny_data(dir: &Path, n: u32) -> String {
    let idx = |magic: u32, dims: &[u32], payload: Vec<u8>| {
        let mut bytes = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
        bytes.extend(payload);
        bytes
    };
    for split in ["train", "t10k"] {
        let images = idx(0x803, &[n, 28, 28], vec![0; n as usize * 784]);
        let labels = idx(0x801, &[n], (0..n).map(|i| (i % 10) as u8).collect());
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), labels).unwrap();
    }
    dir.display().to_string()
}

#[test]
fn every_json_output_parses_whatever_other_flags_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained(dir.path());
    let spec = example("tiny_cnn.toml");

    // eval: every kind of source, with and without the integer model.
    for source in [&t.model, &t.onnx, &t.ir] {
        for integer in [false, true] {
            let mut args = vec!["eval", source, "--test-limit", "50", "--format", "json"];
            if integer {
                args.push("--integer");
            }
            let report = json_or_refused(&args);
            if let Some(report) = report {
                assert_eq!(report["test_images"], 50, "{report}");
                assert!(report["wbits"].is_u64(), "{report}");
            }
        }
    }

    // inspect: every source, after no pass, the first pass and all of them, with and without
    // the schedule (which needs the lowered graph; refusing the others is fine).
    let passes = ok(qnnc(&["inspect", "--passes"]));
    let first_pass = passes.split_whitespace().next().unwrap().to_string();
    for source in [&spec, &t.model, &t.onnx, &t.ir] {
        for after in [None, Some("none"), Some(first_pass.as_str())] {
            for schedule in [false, true] {
                let mut args = vec!["inspect", source.as_str(), "--format", "json"];
                if let Some(after) = after {
                    args.extend(["--after", after]);
                }
                if schedule {
                    args.extend(["--schedule", "--pe", "4", "--simd", "8"]);
                }
                if let Some(value) = json_or_refused(&args) {
                    if schedule {
                        assert_eq!(value["schedule"]["config"]["pe"], 4, "{value}");
                        assert!(value["ir"]["nodes"].is_array(), "{value}");
                    } else {
                        assert!(value["nodes"].is_array(), "{value}");
                    }
                }
            }
        }
    }
    // The schedule of a trained model is always there in JSON.
    json(&["inspect", &t.model, "--format", "json", "--schedule"]);

    // energy: a spec and a model, on every preset.
    for source in [&spec, &t.model] {
        for profile in ["moons-dram", "moons-sram", "horowitz45-pj"] {
            let report = json(&["energy", source, "--profile", profile, "--format", "json"]);
            assert!(report["total"].is_f64(), "{report}");
        }
    }

    // bench: both benchmarks, on a few images.
    let golden = json(&[
        "bench",
        "golden",
        "--test-limit",
        "20",
        "--repeat",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(golden[0]["images"], 20, "{golden}");
    assert!(golden[0]["bits"].is_u64(), "{golden}");
    json(&[
        "bench", "train", "--images", "50", "--batch", "5", "--format", "json",
    ]);

    // sim: both simulators, with and without the model check, at a stated clock.
    let build = dir.path().join("build").display().to_string();
    ok(qnnc(&["compile", &t.model, "-o", &build]));
    for simulator in ["verilator", "icarus"] {
        for check in [false, true] {
            let mut args = vec!["sim", &build, "--test-limit", "2", "--simulator", simulator];
            args.extend(["--format", "json", "--clock-mhz", "50"]);
            if check {
                args.extend(["--model", &t.model]);
            }
            let report = json(&args);
            assert_eq!(report["test_images"], 2, "{report}");
            assert_eq!(report["network"], "tiny_cnn", "{report}");
            let cycles = report["cycles_per_inference"].as_u64().expect("an integer");
            let hardware = report["hardware_inferences_per_second"].as_f64().unwrap();
            assert!((hardware - 50e6 / cycles as f64).abs() < 1e-6, "{report}");
            assert!(report["simulator_inferences_per_second"].as_f64().unwrap() > 0.0);
        }
    }
}

#[test]
fn eval_of_a_model_and_of_its_qonnx_export_agree_on_the_same_images() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained(dir.path());
    let eval = |source: &str, limit: Option<&str>| {
        let mut args = vec!["eval", source, "--format", "json"];
        if let Some(limit) = limit {
            args.extend(["--test-limit", limit]);
        }
        json(&args)
    };
    let (model, onnx) = (eval(&t.model, Some("300")), eval(&t.onnx, Some("300")));
    assert_eq!(model["test_images"], 300);
    assert_eq!(onnx["test_images"], 300);
    assert_eq!(model["correct"], onnx["correct"], "{model} {onnx}");
    assert_eq!(model["accuracy"], onnx["accuracy"]);
    // Without --test-limit: the whole test set, not the 100 images the model was trained
    // with (those are reported beside).
    let (model, onnx) = (eval(&t.model, None), eval(&t.onnx, None));
    assert_eq!(model["test_images"], 10000, "{model}");
    assert_eq!(model["trained_test_images"], 100, "{model}");
    assert_eq!(onnx["test_images"], 10000, "{onnx}");
    assert_eq!(model["correct"], onnx["correct"]);
    let table = ok(qnnc(&["eval", &t.model, "--test-limit", "300"]));
    assert!(table.contains("/300 test images"), "{table}");
}

#[test]
fn flags_that_cannot_apply_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained(dir.path());
    let build = dir.path().join("build").display().to_string();
    // compile takes trained weights only: the spec flags are not among its flags.
    for flag in ["--bits", "--nl", "--nf", "--hidden"] {
        let help = ok(qnnc(&["compile", "--help"]));
        assert!(!help.contains(flag), "compile --help lists {flag}");
        assert_user_error(
            &qnnc(&["compile", &t.model, "-o", &build, flag, "2"]),
            &[flag],
        );
    }
    // inspect: the array size needs --schedule; a schedule has no place in a dot drawing.
    for flag in ["--pe", "--simd"] {
        assert_user_error(&qnnc(&["inspect", &t.model, flag, "4"]), &["--schedule"]);
    }
    assert_user_error(
        &qnnc(&["inspect", &t.model, "--schedule", "--format", "dot"]),
        &["--schedule", "dot"],
    );
    // explore: --target and the array size are for --emit-best.
    for flags in [["--target", "50"], ["--pe", "4"], ["--simd", "8"]] {
        let mut args = vec!["explore", "--quick"];
        args.extend(flags);
        assert_user_error(&qnnc(&args), &["--emit-best"]);
    }
    // A limit past the test set is clamped, and said so on standard error.
    let data = std::fs::create_dir(dir.path().join("data"))
        .map(|_| tiny_data(&dir.path().join("data"), 3))
        .unwrap();
    let output = qnnc(&[
        "eval",
        &t.model,
        "--data",
        &data,
        "--test-limit",
        "20000",
        "--format",
        "json",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--test-limit 20000 is more than the 3 test images; using 3"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["test_images"], 3);
    ok(qnnc(&["compile", &t.model, "-o", &build]));
    let output = qnnc(&["sim", &build, "--data", &data, "--images", "20000"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--test-limit 20000 is more than the 3 test images; using 3"),
        "{stderr}"
    );
    assert!(stdout.contains(": 3 test images"), "{stdout}");
}

#[test]
fn explore_scales_down_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quick").display().to_string();
    let small = [
        "--epochs",
        "1",
        "--train-limit",
        "100",
        "--test-limit",
        "50",
        "--profile",
        "moons-sram",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["explore", "--quick", "-o", &out];
        args.extend(small);
        args.extend(extra);
        qnnc(&args)
    };
    // Nothing reaches 99.9 %: said in one line, exit 1, nothing emitted.
    let emit = dir.path().join("best").display().to_string();
    let output = run(&["--emit-best", &emit, "--target", "99.9"]);
    assert_user_error(&output, &["--target", "99.9"]);
    assert!(!Path::new(&emit).exists());
    let report = std::fs::read_to_string(dir.path().join("quick/report.md")).unwrap();
    assert!(
        report.contains("100 training images, 50 test images"),
        "{report}"
    );
    let points: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("quick/points.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        points["sweep"]["profiles"],
        serde_json::json!(["moons-sram"])
    );
    assert_eq!(points["sweep"]["cnn"]["epochs"], 1);

    // The same overrides reuse the cache; the winner is emitted on the array given, and the
    // line says which profile and array were used.
    let stdout = ok(run(&[
        "--emit-best",
        &emit,
        "--target",
        "1",
        "--pe",
        "4",
        "--simd",
        "8",
    ]));
    assert!(
        stdout.contains("(0 computed, 6 from the cache)"),
        "{stdout}"
    );
    assert!(stdout.contains("on moons-sram (--profile)"), "{stdout}");
    assert!(
        stdout.contains("for a 4x8 PE array (--pe/--simd)"),
        "{stdout}"
    );
    assert!(stdout.contains("mismatches: 0"), "{stdout}");

    // Another override is another sweep: no cached point is taken for it.
    let mut args = vec!["explore", "--quick", "-o", &out, "--epochs", "1"];
    args.extend(["--train-limit", "100", "--test-limit", "40"]);
    let stdout = ok(qnnc(&args));
    assert!(
        stdout.contains("(6 computed, 0 from the cache)"),
        "{stdout}"
    );
}

#[test]
fn a_copied_sweep_names_itself_and_the_field_of_a_missing_spec() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("copied.toml");
    std::fs::copy(example("explore_quick.toml"), &sweep).unwrap();
    let output = qnnc(&[
        "explore",
        sweep.to_str().unwrap(),
        "-o",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_user_error(
        &output,
        &[
            "copied.toml",
            "cnn.spec",
            "fmnist_cnn.toml",
            "relative to the sweep file",
        ],
    );
    // Beside its specs, the same file runs: spec paths are relative to the sweep file, not
    // to the working folder.
    for spec in ["fmnist_cnn.toml", "fmnist_mlp.toml"] {
        std::fs::copy(example(spec), dir.path().join(spec)).unwrap();
    }
    let output = qnnc(&[
        "explore",
        sweep.to_str().unwrap(),
        "-o",
        dir.path().join("o").to_str().unwrap(),
        "--epochs",
        "1",
        "--train-limit",
        "50",
        "--test-limit",
        "20",
        "--profile",
        "moons-dram",
    ]);
    ok(output);
}
