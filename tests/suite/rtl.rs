//! The generated RTL as a user runs it: `qnnc compile` then `qnnc sim` in Verilator must give 0
//! mismatches against the golden model, cycle counts as the scheduler predicts, worst-case
//! operands without overflow, the same outputs in Icarus Verilog, lint-clean Verilog, and
//! one-line errors for bad builds. Needs verilator, iverilog and Fashion-MNIST (`make test`
//! installs them); fails without them.

use crate::common;
use common::{assert_edited_run_error, assert_user_error, example, ok, qnnc, train};

use std::path::{Path, PathBuf};
use std::process::Command;

use qnnc::golden::Golden;
use qnnc::ir::{dump, passes, Op};
use qnnc::schedule::{self, ArrayConfig};
use qnnc::sim::{self, Simulator};
use qnnc::spec::examples::example_network;
use qnnc::spec::Precision;
use qnnc::train::Net;

const TINY: (&str, &str) = ("tiny_cnn", include_str!("../../examples/tiny_cnn.toml"));
const MLP: (&str, &str) = ("mlp", include_str!("../../examples/fmnist_mlp.toml"));
const CNN: (&str, &str) = ("cnn", include_str!("../../examples/fmnist_cnn.toml"));

fn sim_json(build: &str, images: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["sim", build, "--images", images, "--format", "json"];
    args.extend(extra);
    serde_json::from_str(&ok(qnnc(&args))).expect("sim prints JSON")
}

fn check_bit_exact(spec: &str, bits: &[&str], images: &str) {
    let dir = tempfile::tempdir().unwrap();
    for &q in bits {
        let model = train(dir.path(), spec, q);
        let build = dir.path().join(format!("build_q{q}")).display().to_string();
        ok(qnnc(&[
            "compile", &model, "--pe", "8", "--simd", "16", "-o", &build,
        ]));
        let report = sim_json(&build, images, &["--model", &model]);
        assert_eq!(report["mismatches"], 0, "{spec} at {q} bits: {report}");
        assert_eq!(report["test_images"], images.parse::<u64>().unwrap());
        assert_eq!(
            report["cycles_per_inference"].as_f64(),
            report["predicted_cycles"].as_f64(),
            "{spec} at {q} bits: the scheduler predicts every cycle: {report}"
        );
    }
}

#[test]
fn mlp_equals_the_golden_model_at_one_two_four_and_eight_bits() {
    check_bit_exact("fmnist_mlp.toml", &["1", "2", "4", "8"], "30");
}

#[test]
fn cnn_equals_the_golden_model_at_one_four_and_eight_bits() {
    check_bit_exact("fmnist_cnn.toml", &["1", "4", "8"], "8");
}

#[test]
fn cnn_at_four_bits_keeps_the_pe_array_busy() {
    let network = example_network(CNN, Precision::Bits(4));
    let mut graph = Net::new(&network, 1).to_graph("cnn").unwrap();
    passes::run(&mut graph, "cnn", None).unwrap();
    let config = ArrayConfig { pe: 8, simd: 16 };
    let schedule = schedule::schedule(&graph, config, "cnn").unwrap();
    assert!(schedule.utilization() >= 0.90, "{schedule}");
    for layer in &schedule.layers[1..3] {
        assert!(layer.utilization(config) > 0.95, "{schedule}");
    }
}

/// Writes a graph as an IR file and compiles it.
fn compile_graph(dir: &Path, graph: &qnnc::ir::Graph, name: &str) -> PathBuf {
    let ir = dir.join(format!("{name}.json"));
    std::fs::write(&ir, dump::to_json(graph)).unwrap();
    let build = dir.join(name);
    ok(qnnc(&[
        "compile",
        ir.to_str().unwrap(),
        "-o",
        build.to_str().unwrap(),
    ]));
    build
}

#[test]
fn worst_case_operands_do_not_overflow_in_simulation() {
    // Every weight at its most negative (then most positive) code and every pixel at 0 or 255:
    // the accumulators reach the inferred bounds, and the RTL still equals the golden model.
    let dir = tempfile::tempdir().unwrap();
    for bits in [1u8, 4, 8] {
        for sign in [-1i32, 1] {
            let network = example_network(TINY, Precision::Bits(bits));
            let mut graph = Net::new(&network, 2).to_graph("tiny").unwrap();
            passes::run(&mut graph, "tiny", None).unwrap();
            for node in graph.topological_order() {
                if let Op::Mac {
                    weights: Some(w),
                    weight_precision,
                    ..
                } = &mut graph.graph[node].op
                {
                    let (lo, hi) = weight_precision.code_range().unwrap();
                    let code = if sign < 0 { lo } else { hi } as i32;
                    w.codes.iter_mut().for_each(|c| *c = code);
                }
            }
            let golden = Golden::unfused(&graph, "tiny").unwrap();
            let images: Vec<u8> = [255u8, 0, 255]
                .iter()
                .flat_map(|&p| std::iter::repeat_n(p, 784))
                .chain((0..784).map(|i| if i % 2 == 0 { 255 } else { 0 }))
                .collect();
            // The first layer's accumulators on the white image hit the bound exactly.
            let conv1 = graph.topological_order()[1];
            let (acc_lo, acc_hi) = graph
                .output_type(conv1)
                .unwrap()
                .precision
                .code_range()
                .unwrap();
            let trace = golden.trace(&images[..784]);
            let extreme = trace[0].values[(28 + 1) * 4];
            let w_extreme = if bits == 1 {
                sign as i64
            } else if sign < 0 {
                -(1i64 << (bits - 1))
            } else {
                (1i64 << (bits - 1)) - 1
            };
            assert_eq!(extreme, 9 * 255 * w_extreme);
            assert!(extreme >= acc_lo && extreme <= acc_hi);

            let build = compile_graph(dir.path(), &graph, &format!("worst_q{bits}_{sign}"));
            let expected = Golden::new(&graph, "tiny").unwrap().run(&images);
            sim::write_vectors(&build, &images, 784, &expected).unwrap();
            let executable = sim::build(&build, Simulator::Verilator).unwrap();
            // The array `compile` builds by default.
            let predicted = schedule::schedule(&graph, ArrayConfig { pe: 8, simd: 16 }, "tiny")
                .unwrap()
                .total_cycles;
            let expect = sim::Expectation {
                layers: 3,
                images: 4,
                max_cycles: sim::cycle_budget(predicted, 4),
                silence_limit: sim::SILENCE_LIMIT,
            };
            let report =
                sim::run(&build, Simulator::Verilator, &executable, &expect, None).unwrap();
            assert_eq!(report.images, 4);
            assert_eq!(
                report.mismatches, 0,
                "{bits} bits, sign {sign}: {:?}",
                report.mismatch_lines
            );
        }
    }
}

#[test]
fn icarus_verilog_gives_the_same_outputs_and_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "tiny_cnn.toml", "2");
    let build = dir.path().join("build").display().to_string();
    ok(qnnc(&["compile", &model, "-o", &build]));
    let verilator = sim_json(&build, "3", &[]);
    let icarus = sim_json(&build, "3", &["--simulator", "icarus"]);
    assert_eq!(verilator["mismatches"], 0);
    assert_eq!(icarus["mismatches"], 0);
    assert_eq!(icarus["simulator"], "icarus");
    assert_eq!(
        verilator["cycles_per_inference"],
        icarus["cycles_per_inference"]
    );
    assert_eq!(verilator["layers"], icarus["layers"]);
}

fn lint(build: &Path) -> String {
    let top = std::fs::read_dir(build.join("rtl"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|n| n.ends_with("_top.v"))
        .unwrap();
    let mut sources: Vec<String> = std::fs::read_dir(build.join("rtl"))
        .unwrap()
        .map(|e| format!("rtl/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    sources.sort();
    let output = Command::new("verilator")
        .args([
            "--lint-only",
            "-Wall",
            "-Irtl",
            "--top-module",
            top.trim_end_matches(".v"),
        ])
        .args(&sources)
        .current_dir(build)
        .output()
        .expect("verilator is needed: apt-get install verilator");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn generated_verilog_is_lint_clean_for_the_examples() {
    let dir = tempfile::tempdir().unwrap();
    for example in [MLP, CNN, TINY] {
        for bits in [1u8, 4, 8] {
            let network = example_network(example, Precision::Bits(bits));
            let mut graph = Net::new(&network, 1).to_graph("x").unwrap();
            passes::run(&mut graph, "x", None).unwrap();
            let build = compile_graph(dir.path(), &graph, &format!("{}_q{bits}", example.0));
            let warnings = lint(&build);
            assert!(
                warnings.trim().is_empty(),
                "{} at {bits} bits:\n{warnings}",
                example.0
            );
        }
    }
}

#[test]
fn generated_files_snapshots_for_a_tiny_network() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [1u8, 4] {
        let network = example_network(TINY, Precision::Bits(bits));
        let mut graph = Net::new(&network, 1).to_graph("tiny").unwrap();
        passes::run(&mut graph, "tiny", None).unwrap();
        let build = compile_graph(dir.path(), &graph, &format!("tiny_q{bits}"));
        for file in [
            "rtl/tiny_cnn_top.v",
            "rtl/qnnc_layout.vh",
            "tb/testbench.v",
            "mem/layers.hex",
            "README.md",
            "manifest.json",
        ] {
            let text = std::fs::read_to_string(build.join(file)).unwrap();
            insta::assert_snapshot!(
                format!("tiny_q{bits}_{}", file.replace(['/', '.'], "_")),
                text
            );
        }
        // The same graph compiles to the same bytes.
        let again = compile_graph(dir.path(), &graph, &format!("tiny_q{bits}_again"));
        for file in [
            "mem/weights.hex",
            "mem/thresholds_0.hex",
            "mem/requant.hex",
            "rtl/qnnc_core.v",
        ] {
            assert_eq!(
                std::fs::read(build.join(file)).unwrap(),
                std::fs::read(again.join(file)).unwrap(),
                "{file}"
            );
        }
    }
}

#[test]
fn bad_array_sizes_and_memories_are_refused_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "fmnist_mlp.toml", "4");
    let build = dir.path().join("refused");
    let out = build.to_str().unwrap();
    for (flags, needles) in [
        (vec!["--pe", "0"], vec!["--pe", "at least 1"]),
        (vec!["--simd", "0"], vec!["--simd", "power of two"]),
        (vec!["--simd", "12"], vec!["--simd", "power of two"]),
        (
            vec!["--pe", "32", "--simd", "16"],
            vec!["--pe", "must not exceed"],
        ),
        (
            vec!["--weight-memory", "16"],
            vec!["--weight-memory", "needs", "bits", "KiB"],
        ),
        (
            vec!["--activation-memory", "1"],
            vec!["--activation-memory", "needs"],
        ),
    ] {
        let mut args = vec!["compile", model.as_str(), "-o", out];
        args.extend(flags);
        assert_user_error(&qnnc(&args), &needles);
        assert!(!build.exists(), "a refused compile left {out}");
    }
    let spec = qnnc(&["compile", &example("fmnist_mlp.toml"), "-o", out]);
    assert_user_error(&spec, &["trained"]);
}

#[test]
fn stale_foreign_and_missing_builds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mlp = train(dir.path(), "fmnist_mlp.toml", "2");
    let other = train(dir.path(), "fmnist_mlp.toml", "1");
    let build = dir.path().join("build");
    let out = build.to_str().unwrap();
    ok(qnnc(&["compile", &mlp, "-o", out]));
    assert_user_error(&qnnc(&["sim", out, "--model", &other]), &["another model"]);
    let top = build.join("rtl/fmnist_mlp_top.v");
    let text = std::fs::read_to_string(&top).unwrap();
    std::fs::write(&top, text.replace("rst", "rst ")).unwrap();
    assert_user_error(
        &qnnc(&["sim", out]),
        &["stale build", "rtl/fmnist_mlp_top.v"],
    );
    // A manifest whose digests were recomputed after the edit does not hide it: sim compares
    // the build with what compile writes for its ir.json.
    let manifest_path = build.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let edited = std::fs::read_to_string(&top).unwrap();
    manifest["files"]["rtl/fmnist_mlp_top.v"] = qnnc::codegen::digest(&edited).into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    assert_user_error(
        &qnnc(&["sim", out]),
        &[
            "stale build",
            "rtl/fmnist_mlp_top.v",
            "is not what qnnc compile writes",
        ],
    );
    // So does a manifest field changed by hand.
    manifest["predicted_cycles"] = 1.into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    assert_user_error(
        &qnnc(&["sim", out]),
        &["stale build", "manifest.json does not describe ir.json"],
    );
    let nothing = dir.path().join("nothing");
    std::fs::create_dir(&nothing).unwrap();
    assert_user_error(
        &qnnc(&["sim", nothing.to_str().unwrap()]),
        &["not a qnnc build folder"],
    );
    // A folder that is not a build is never overwritten.
    std::fs::write(nothing.join("notes.txt"), "mine").unwrap();
    assert_user_error(
        &qnnc(&["compile", &mlp, "-o", nothing.to_str().unwrap()]),
        &["not a qnnc build folder"],
    );
    assert!(nothing.join("notes.txt").exists());
}

#[test]
fn a_missing_verilator_names_its_package() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "tiny_cnn.toml", "4");
    let build = dir.path().join("build").display().to_string();
    ok(qnnc(&["compile", &model, "-o", &build]));
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(["sim", &build, "--images", "2"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_user_error(
        &output,
        &["verilator not found", "apt-get install verilator"],
    );
}

#[test]
fn a_mismatch_names_the_image_layer_and_element() {
    // A build whose threshold memory was altered after compiling (with its digest updated, as
    // a faulty generator would leave it): sim finds the edit, and with --allow-edited the
    // simulation fails and says where it diverges.
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "tiny_cnn.toml", "4");
    let build = dir.path().join("build");
    ok(qnnc(&["compile", &model, "-o", build.to_str().unwrap()]));
    let thresholds = build.join("mem/thresholds_0.hex");
    let text = std::fs::read_to_string(&thresholds).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let first_word = lines.iter().position(|l| !l.starts_with("//")).unwrap();
    lines[first_word] = "0".repeat(lines[first_word].len());
    let altered = lines.join("\n") + "\n";
    std::fs::write(&thresholds, &altered).unwrap();
    let manifest_path = build.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["files"]["mem/thresholds_0.hex"] = serde_json::json!(qnnc::codegen::digest(&altered));
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let out = build.to_str().unwrap();
    assert_user_error(
        &qnnc(&["sim", out, "--images", "5"]),
        &["stale build", "mem/thresholds_0.hex", "--allow-edited"],
    );
    assert_edited_run_error(
        &qnnc(&["sim", out, "--images", "5", "--allow-edited"]),
        "mem/thresholds_0.hex",
        &[
            "mismatch the golden model",
            "first: image 0",
            "layer conv1 (pool1) element",
        ],
    );
}

#[test]
fn yosys_synthesizes_without_latches_at_one_four_and_eight_bits() {
    // A small array keeps synthesis to a minute; `make synth-check` synthesizes the examples.
    // The three syntheses run side by side (a minute in a row).
    use rayon::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    ["1", "4", "8"].par_iter().for_each(|&bits| {
        let model = train(dir.path(), "tiny_cnn.toml", bits);
        let build = dir.path().join(format!("synth_q{bits}"));
        let out = ok(qnnc(&[
            "compile",
            &model,
            "--pe",
            "2",
            "--simd",
            "4",
            "-o",
            build.to_str().unwrap(),
            "--synth",
        ]));
        let summary = out
            .lines()
            .find(|l| l.starts_with("yosys"))
            .expect("a synthesis summary");
        assert!(summary.contains(" 0 latches"), "{bits} bits: {summary}");
        let flip_flops: u64 = summary
            .split(", ")
            .find_map(|part| part.strip_suffix(" flip-flops"))
            .and_then(|n| n.parse().ok())
            .expect("a flip-flop count");
        assert!(flip_flops > 1000, "{bits} bits: {summary}");
        let mut log = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(
                std::fs::File::open(build.join("implementation/yosys.log.gz")).unwrap(),
            ),
            &mut log,
        )
        .unwrap();
        assert!(log.contains("Number of cells"), "{bits} bits");
        assert!(!log.contains("ERROR"), "{bits} bits");
    });
}

#[test]
fn build_folders_given_as_relative_paths_simulate() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "tiny_cnn.toml", "1");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qnnc"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    ok(run(&["compile", &model, "-o", "relative/build"]));
    let out = ok(run(&["sim", "relative/build", "--images", "2"]));
    assert!(out.contains("mismatches: 0"), "{out}");
}

#[test]
fn names_that_would_inject_verilog_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let network = example_network(TINY, Precision::Bits(2));
    let mut graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    passes::run(&mut graph, "tiny", None).unwrap();
    let conv = graph.topological_order()[1];
    graph.graph[conv].name = "x; $finish".into();
    let ir = dir.path().join("evil.json");
    std::fs::write(&ir, dump::to_json(&graph)).unwrap();
    let build = dir.path().join("build");
    let output = qnnc(&[
        "compile",
        ir.to_str().unwrap(),
        "-o",
        build.to_str().unwrap(),
    ]);
    assert_user_error(
        &output,
        &["evil.json", "x; $finish", "is not a valid node name"],
    );
    assert!(!build.exists());
}

#[test]
fn odd_array_shapes_build_and_equal_the_golden_model() {
    // One PE with one lane (every vector one element wide), and a PE count that divides
    // neither the channels nor the lanes: output groups spill across rows of the buffers.
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "tiny_cnn.toml", "1");
    for (pe, simd) in [("1", "1"), ("3", "4")] {
        let build = dir.path().join(format!("build_{pe}x{simd}"));
        let out = build.display().to_string();
        ok(qnnc(&[
            "compile", &model, "--pe", pe, "--simd", simd, "-o", &out,
        ]));
        let report = sim_json(&out, "2", &[]);
        assert_eq!(report["mismatches"], 0, "{pe}x{simd}: {report}");
        assert_eq!(
            report["cycles_per_inference"].as_f64(),
            report["predicted_cycles"].as_f64(),
            "{pe}x{simd}: {report}"
        );
        assert!(lint(&build).trim().is_empty(), "{pe}x{simd}");
    }
}

/// The `define`s of a generated `qnnc_layout.vh`: name -> (lsb, width) of each field.
fn layout_fields(include: &str) -> std::collections::BTreeMap<String, (usize, usize)> {
    let mut fields = std::collections::BTreeMap::new();
    for line in include.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["`define", name, lsb, "+:", width] => {
                fields.insert(
                    name.to_string(),
                    (lsb.parse().unwrap(), width.parse().unwrap()),
                );
            }
            ["`define", name, bit]
                if !name.ends_with("_W") && !["QNNC_XW", "QNNC_DESC_BITS"].contains(name) =>
            {
                fields.insert(name.to_string(), (bit.parse().unwrap(), 1));
            }
            _ => {}
        }
    }
    fields
}

#[test]
fn the_descriptor_image_decodes_with_the_layout_include() {
    // The include and the image come from one definition: decoding each layer's word with the
    // include's field positions gives back the schedule's values, every macro the RTL uses is
    // defined, and the fields tile the word without overlap.
    let dir = tempfile::tempdir().unwrap();
    let network = example_network(TINY, Precision::Bits(4));
    let mut graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    passes::run(&mut graph, "tiny", None).unwrap();
    // The array `compile` builds by default.
    let config = ArrayConfig { pe: 8, simd: 16 };
    let schedule = schedule::schedule(&graph, config, "tiny").unwrap();
    let build = compile_graph(dir.path(), &graph, "tiny");
    let include = std::fs::read_to_string(build.join("rtl/qnnc_layout.vh")).unwrap();
    let fields = layout_fields(&include);
    let bits: usize = include
        .lines()
        .find_map(|l| l.strip_prefix("`define QNNC_DESC_BITS "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut covered = vec![false; bits];
    for (name, &(lsb, width)) in &fields {
        assert!(
            lsb + width <= bits,
            "{name} ends past the word's {bits} bits"
        );
        for (bit, taken) in covered.iter_mut().enumerate().skip(lsb).take(width) {
            assert!(!*taken, "{name} overlaps another field at bit {bit}");
            *taken = true;
        }
    }
    assert!(
        covered.iter().all(|&c| c),
        "the fields leave gaps in {bits} bits"
    );

    let image = std::fs::read_to_string(build.join("mem/layers.hex")).unwrap();
    let words: Vec<&str> = image.lines().filter(|l| !l.starts_with("//")).collect();
    assert_eq!(words.len(), schedule.layers.len());
    let decode = |word: &str, name: &str| -> u64 {
        let (lsb, width) = fields[&format!("QNNC_{name}")];
        let bit = |b: usize| {
            let digit = word.len() - 1 - b / 4;
            (word.as_bytes()[digit] as char).to_digit(16).unwrap() >> (b % 4) & 1
        };
        (0..width).fold(0u64, |v, b| v | (bit(lsb + b) as u64) << b)
    };
    for (layer, word) in schedule.layers.iter().zip(&words) {
        assert!(word.len() * 4 >= bits, "{word}");
        assert_eq!(
            decode(word, "T_LAST"),
            layer.chunks as u64 - 1,
            "{}",
            layer.name
        );
        assert_eq!(
            decode(word, "G_LAST"),
            layer.groups as u64 - 1,
            "{}",
            layer.name
        );
        assert_eq!(
            decode(word, "K_LAST"),
            layer.kernel as u64 - 1,
            "{}",
            layer.name
        );
        assert_eq!(
            decode(word, "W_BASE"),
            layer.weight_base as u64,
            "{}",
            layer.name
        );
        assert_eq!(
            decode(word, "KC"),
            (layer.kernel * layer.input.channels) as u64,
            "{}",
            layer.name
        );
        assert_eq!(decode(word, "LAST"), layer.last as u64, "{}", layer.name);
        assert_eq!(
            decode(word, "DIRECT"),
            layer.direct as u64,
            "{}",
            layer.name
        );
        assert_eq!(
            decode(word, "P_LAST"),
            layer.pool.map_or(0, |(size, _)| size as u64 - 1),
            "{}",
            layer.name
        );
        assert_eq!(
            decode(word, "SRC_REGION"),
            layer.source_region as u64,
            "{}",
            layer.name
        );
        assert_eq!(
            decode(word, "DST_REGION"),
            layer.dest_region as u64,
            "{}",
            layer.name
        );
    }

    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/verilog");
    for entry in std::fs::read_dir(templates).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for used in text.split('`').skip(1) {
            let name: String = used
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.starts_with("QNNC_") {
                let defined =
                    fields.contains_key(&name) || include.contains(&format!("`define {name} "));
                assert!(
                    defined,
                    "{} uses `{name}, which the include does not define",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn control_has_no_run_time_multiplies() {
    // A product of two signals is a multiplier in hardware. Only the datapath may have them:
    // the lane's weight times activation and the requantization's multiply. Every other `*`
    // multiplies by a parameter (a constant at elaboration).
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/verilog");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(templates).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if ["qnnc_lane.v", "qnnc_requant.v"].contains(&file.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            let bytes: Vec<char> = code.chars().collect();
            for (at, &c) in bytes.iter().enumerate() {
                if c != '*'
                    || code[..at].trim_end().ends_with('(')
                    || code[at + 1..].starts_with(')')
                {
                    continue;
                }
                let left: String = bytes[..at]
                    .iter()
                    .rev()
                    .skip_while(|c| c.is_whitespace())
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let right: String = bytes[at + 1..]
                    .iter()
                    .skip_while(|c| c.is_whitespace())
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                // Genvars (single letters) index generate loops: elaboration-time constants.
                let signal = |name: &str| {
                    name.len() > 1 && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                };
                if signal(&left) && signal(&right) {
                    found.push(format!("{file}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "run-time multiplies:\n{}",
        found.join("\n")
    );
}

/// A build folder of the tiny CNN at 4 bits (untrained: the golden model and the RTL agree on
/// any weights), compiled in `dir`.
fn tiny_build(dir: &Path, name: &str) -> PathBuf {
    let network = example_network(TINY, Precision::Bits(4));
    let mut graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    passes::run(&mut graph, "tiny", None).unwrap();
    compile_graph(dir, &graph, name)
}

#[test]
fn a_hand_edited_design_is_refused_unless_allowed_and_then_checked() {
    let dir = tempfile::tempdir().unwrap();
    let build = tiny_build(dir.path(), "edited");
    let out = build.to_str().unwrap();
    // A comment: refused as stale by default.
    let pe = build.join("rtl/qnnc_pe.v");
    let text = std::fs::read_to_string(&pe).unwrap();
    std::fs::write(&pe, text.replacen("//", "// hand-edited:", 1)).unwrap();
    assert_user_error(
        &qnnc(&["sim", out, "--images", "2"]),
        &["stale build", "rtl/qnnc_pe.v", "--allow-edited"],
    );
    // With the override it runs, says so, and agrees with the golden model.
    let allowed = qnnc(&["sim", out, "--images", "2", "--allow-edited"]);
    let stderr = String::from_utf8_lossy(&allowed.stderr).to_string();
    assert!(ok(allowed).contains("mismatches: 0"));
    assert!(
        stderr.starts_with("warning:")
            && stderr.contains("edited design")
            && stderr.contains("rtl/qnnc_pe.v"),
        "{stderr}"
    );
    // A change of logic: the argmax keeps the smallest logit.
    let argmax = build.join("rtl/qnnc_argmax.v");
    let text = std::fs::read_to_string(&argmax).unwrap();
    assert!(text.contains("value > best"));
    std::fs::write(&argmax, text.replace("value > best", "value < best")).unwrap();
    let wrong = qnnc(&["sim", out, "--images", "2", "--allow-edited"]);
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("rtl/qnnc_argmax.v, rtl/qnnc_pe.v")
            && stderr.contains("2 of 2 images mismatch the golden model"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("mismatches: 2"));
    // The testbench itself exits with status 1 on the mismatches, after its report.
    let testbench = Command::new(build.join("obj_dir/Vtb"))
        .current_dir(&build)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&testbench.stdout);
    assert_eq!(testbench.status.code(), Some(1), "{report}");
    assert!(report.contains("mismatches 2"), "{report}");
    // A testbench stuck in zero simulated time, where no cycle budget can stop it, falls silent
    // and is stopped (here after 5 s instead of the default 30).
    let bench = build.join("tb/testbench.v");
    let text = std::fs::read_to_string(&bench).unwrap();
    let step = "c = 0; c < CLASSES; c = c + 1";
    assert!(text.contains(step));
    std::fs::write(&bench, text.replace(step, "c = 0; c < CLASSES; c = c + 0")).unwrap();
    let started = std::time::Instant::now();
    assert_edited_run_error(
        &qnnc(&[
            "sim",
            out,
            "--images",
            "2",
            "--allow-edited",
            "--silence-limit",
            "5",
        ]),
        "tb/testbench.v",
        &["error:", "printed nothing for 5 s"],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // ir.json, which the golden model is built from, is never allowed to differ.
    let ir = build.join("ir.json");
    let text = std::fs::read_to_string(&ir).unwrap();
    std::fs::write(&ir, text.replacen('{', "{ ", 1)).unwrap();
    assert_user_error(
        &qnnc(&["sim", out, "--allow-edited"]),
        &["ir.json", "golden model"],
    );
}

#[test]
fn the_testbench_dumps_waveforms_and_runs_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let build = tiny_build(dir.path(), "waves");
    let out = build.to_str().unwrap();
    // `sim --vcd` builds a traced simulation and writes the waveforms where it is told.
    let vcd = dir.path().join("waves.vcd");
    let report = ok(qnnc(&[
        "sim",
        out,
        "--images",
        "1",
        "--vcd",
        vcd.to_str().unwrap(),
    ]));
    assert!(report.contains("mismatches: 0"), "{report}");
    let waves = std::fs::read_to_string(&vcd).unwrap();
    assert!(
        waves.starts_with("$version")
            && waves.contains("$enddefinitions")
            && waves.contains(" in_ready "),
        "{}",
        &waves[..waves.len().min(500)]
    );
    assert_user_error(
        &qnnc(&[
            "sim",
            out,
            "--vcd",
            dir.path().join("no/such/folder/w.vcd").to_str().unwrap(),
        ]),
        &["--vcd", "folder does not exist"],
    );
    // The testbench compiled elsewhere, run from another folder: the memory images through
    // the MEM_DIR parameter, the vectors through plusargs. Exit status 0 with no mismatch,
    // and +vcd alone writes sim/waves.vcd (Icarus dumps without a traced build).
    let elsewhere = tempfile::tempdir().unwrap();
    let mut sources = vec![build.join("tb/testbench.v").display().to_string()];
    for entry in std::fs::read_dir(build.join("rtl")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "v") {
            sources.push(path.display().to_string());
        }
    }
    sources.sort();
    let compiled = Command::new("iverilog")
        .args(["-g2012", "-o", "tb.vvp", "-s", "tb"])
        .arg(format!("-I{}", build.join("rtl").display()))
        .arg(format!("-Ptb.MEM_DIR=\"{}\"", build.join("mem").display()))
        .args(&sources)
        .current_dir(elsewhere.path())
        .output()
        .expect("iverilog is needed: apt-get install iverilog");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    std::fs::create_dir(elsewhere.path().join("sim")).unwrap();
    let run = Command::new("vvp")
        .args(["-n", "tb.vvp", "+vcd"])
        .arg(format!(
            "+images={}",
            build.join("sim/images.txt").display()
        ))
        .arg(format!(
            "+expected={}",
            build.join("sim/expected.txt").display()
        ))
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let both = format!("{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{both}");
    assert!(
        stdout.contains("mismatches 0") && !both.contains("nable to open"),
        "{both}"
    );
    assert!(elsewhere.path().join("sim/waves.vcd").is_file());
}

/// The lowered graph of a spec at `bits`, with seeded random parameters.
fn random_graph(spec: &str, bits: u8, seed: u64) -> qnnc::ir::Graph {
    let origin = "test.toml";
    let mut spec = qnnc::spec::Spec::parse(spec, false, origin).unwrap();
    spec.apply(
        &qnnc::spec::Overrides {
            bits: Some(Precision::Bits(bits)),
            ..qnnc::spec::Overrides::default()
        },
        origin,
    )
    .unwrap();
    let network = spec.build(origin).unwrap();
    let parameters = common::RandomParameters {
        network: &network,
        seed,
    };
    let mut graph = qnnc::ir::build::from_trained(&network, &parameters, origin).unwrap();
    passes::run(&mut graph, origin, None).unwrap();
    graph
}

/// Compiles a graph at 8x16, simulates `images` test images in Verilator and checks 0
/// mismatches against the golden model, the cycles as predicted, and lint-clean Verilog.
fn check_graph_bit_exact(dir: &Path, graph: &qnnc::ir::Graph, name: &str, images: &str) {
    let build = compile_graph(dir, graph, name);
    let report = sim_json(build.to_str().unwrap(), images, &["--activity"]);
    assert_eq!(report["mismatches"], 0, "{name}: {report}");
    // The memory reads and writes, outputs and lane MACs counted in the simulation, layer by
    // layer, are the schedule's prediction.
    for layer in report["activity"]["layers"]
        .as_array()
        .expect("a layer list")
    {
        assert_eq!(layer["as_predicted"], true, "{name}: {layer}");
    }
    assert_eq!(
        report["cycles_per_inference"].as_f64(),
        report["predicted_cycles"].as_f64(),
        "{name}: the scheduler predicts every cycle: {report}"
    );
    assert!(lint(&build).trim().is_empty(), "{name}: {}", lint(&build));
    // Shown with --nocapture: the figures the assertions compared.
    println!(
        "{name}: {} images, {} mismatches, {} cycles simulated, {} predicted",
        report["test_images"],
        report["mismatches"],
        report["cycles_per_inference"],
        report["predicted_cycles"]
    );
}

/// Average pooling, 2x2 and global, each followed by its activation.
const AVGPOOL_NET: &str = r#"
name = "avgpool_net"
dataset = "fashion-mnist"
input = { height = 28, width = 28, channels = 1 }
classes = 10
[precision]
weights = 4
activations = 4
[[layers]]
kind = "conv2d"
filters = 6
kernel = 3
stride = 2
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
[[layers]]
kind = "avgpool"
size = 2
[[layers]]
kind = "act"
[[layers]]
kind = "conv2d"
filters = 20
kernel = 3
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
[[layers]]
kind = "avgpool"
[[layers]]
kind = "act"
[[layers]]
kind = "flatten"
[[layers]]
kind = "dense"
units = 10
"#;

/// The shape of `examples/fmnist_resnet.toml`, smaller: a stem convolution with max-pooling,
/// a stage convolution, a residual block whose addition is max-pooled, another stage
/// convolution and block, global average pooling and a dense classifier with batch norm.
const RESIDUAL_NET: &str = r#"
name = "residual_net"
dataset = "fashion-mnist"
input = { height = 28, width = 28, channels = 1 }
classes = 10
[precision]
weights = 4
activations = 4
[[layers]]
kind = "conv2d"
filters = 8
kernel = 3
stride = 2
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
[[layers]]
kind = "maxpool"
size = 2
[[layers]]
kind = "conv2d"
filters = 12
kernel = 3
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
name = "stage1"
[[layers]]
kind = "conv2d"
filters = 12
kernel = 3
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
[[layers]]
kind = "conv2d"
filters = 12
kernel = 3
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
[[layers]]
kind = "add"
from = "stage1"
[[layers]]
kind = "act"
[[layers]]
kind = "maxpool"
size = 2
[[layers]]
kind = "conv2d"
filters = 16
kernel = 3
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
name = "stage2"
[[layers]]
kind = "conv2d"
filters = 16
kernel = 3
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
[[layers]]
kind = "conv2d"
filters = 16
kernel = 3
padding = 1
[[layers]]
kind = "batchnorm"
[[layers]]
kind = "act"
[[layers]]
kind = "add"
from = "stage2"
[[layers]]
kind = "act"
[[layers]]
kind = "avgpool"
[[layers]]
kind = "act"
[[layers]]
kind = "flatten"
[[layers]]
kind = "dense"
units = 10
[[layers]]
kind = "batchnorm"
"#;

#[test]
fn an_average_pooling_net_equals_the_golden_model() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [1u8, 4] {
        let graph = random_graph(AVGPOOL_NET, bits, 7);
        let config = ArrayConfig { pe: 8, simd: 16 };
        let schedule = schedule::schedule(&graph, config, "avgpool_net").unwrap();
        let kinds: Vec<_> = schedule.layers.iter().map(|l| l.kind).collect();
        use schedule::LayerKind::{AvgPool, Mac};
        assert_eq!(kinds, [Mac, AvgPool, Mac, AvgPool, Mac], "{schedule}");
        // The global pooling reads its whole input as the array's rows; the 2x2 one loads windows.
        assert!(!schedule.layers[1].direct && schedule.layers[3].direct);
        check_graph_bit_exact(dir.path(), &graph, &format!("avg_q{bits}"), "20");
    }
}

#[test]
fn a_residual_net_equals_the_golden_model() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [1u8, 2, 4, 8] {
        let graph = random_graph(RESIDUAL_NET, bits, 3);
        let config = ArrayConfig { pe: 8, simd: 16 };
        let schedule = schedule::schedule(&graph, config, "residual_net").unwrap();
        // Stem, stage, block (conv, conv, add with max-pool), stage, block (conv, conv, add),
        // pooling, classifier. A block's input stays in a third region while the block runs.
        use schedule::LayerKind::{Add, AvgPool, Mac};
        let kinds: Vec<_> = schedule.layers.iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            [Mac, Mac, Mac, Mac, Add, Mac, Mac, Mac, Add, AvgPool, Mac],
            "{schedule}"
        );
        assert_eq!(schedule.regions, 3, "{schedule}");
        for (add, stage) in [(4, 1), (8, 5)] {
            let layer = &schedule.layers[add];
            assert_eq!(layer.fan_in, 2 * layer.input.channels, "{schedule}");
            assert_eq!(layer.sources, [Some(add - 1), Some(stage)], "{schedule}");
            assert_eq!(layer.skip_region, schedule.layers[stage].dest_region);
        }
        assert!(schedule.layers[4].pool.is_some(), "{schedule}");
        check_graph_bit_exact(dir.path(), &graph, &format!("res_q{bits}"), "10");
    }
}

#[test]
fn an_addition_of_shifted_codes_is_refused_in_one_line_naming_it() {
    // The main path's codes worth twice the skip's: a valid graph (shifts [1, 0]), which the
    // PE array, adding codes of one scale, does not take.
    let dir = tempfile::tempdir().unwrap();
    let mut graph = random_graph(RESIDUAL_NET, 4, 3);
    let add = graph
        .topological_order()
        .into_iter()
        .find(|&n| matches!(graph.graph[n].op, Op::Add { .. }))
        .unwrap();
    let inputs = graph.inputs(add);
    let mut main = graph.output_type(inputs[0]).unwrap();
    main.scale *= 2.0;
    graph.set_output_type(inputs[0], main);
    let skip = graph.output_type(inputs[1]).unwrap();
    let (sum, shifts) = qnnc::ir::ops::add_type(main, skip).unwrap();
    assert_eq!(shifts, [1, 0]);
    graph.graph[add].op = Op::Add { shifts };
    graph.set_output_type(add, sum);
    qnnc::ir::verify::verify_lowered(&graph, "shifted").unwrap();
    let name = graph.graph[add].name.clone();
    let error = schedule::schedule(&graph, ArrayConfig { pe: 8, simd: 16 }, "shifted").unwrap_err();
    assert!(
        matches!(&error, schedule::ScheduleError::Unsupported { node, .. } if node == &name),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("the RTL adds tensors of one scale only"),
        "{error}"
    );
    let ir = dir.path().join("shifted.json");
    std::fs::write(&ir, dump::to_json(&graph)).unwrap();
    let build = dir.path().join("shifted");
    let output = qnnc(&[
        "compile",
        ir.to_str().unwrap(),
        "-o",
        build.to_str().unwrap(),
    ]);
    assert_user_error(&output, &["shifted.json", &name, "shifted by [1, 0]"]);
    assert!(!build.exists());
}
