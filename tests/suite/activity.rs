//! `qnnc sim --activity`: the reads, writes and outputs the simulation counts in each layer
//! equal what the schedule predicts from its loops, the MAC lane operations equal the taps of
//! each window that fall inside the image, and the report sets the energy model's counts
//! beside them. Needs verilator and Fashion-MNIST (`make test` installs them); fails without.

use crate::common;
use common::{assert_user_error, ok, qnnc};

use std::path::Path;

use qnnc::ir::{dump, passes, Graph};
use qnnc::schedule::{self, ArrayConfig, LayerTraffic};
use qnnc::spec::examples::example_network;
use qnnc::spec::Precision;
use qnnc::train::Net;

const TINY: (&str, &str) = ("tiny_cnn", include_str!("../../examples/tiny_cnn.toml"));
const MLP: (&str, &str) = ("mlp", include_str!("../../examples/fmnist_mlp.toml"));

/// An untrained network at `bits`, lowered: the golden model and the RTL agree on any weights.
fn graph(example: (&str, &str), bits: u8) -> Graph {
    let network = example_network(example, Precision::Bits(bits));
    let mut graph = Net::new(&network, 1).to_graph(example.0).unwrap();
    passes::run(&mut graph, example.0, None).unwrap();
    graph
}

/// Compiles `graph` for a `config` array into `dir/name` and returns the build folder.
fn compile(dir: &Path, graph: &Graph, name: &str, config: ArrayConfig) -> String {
    let ir = dir.join(format!("{name}.json"));
    std::fs::write(&ir, dump::to_json(graph)).unwrap();
    let build = dir.join(name).display().to_string();
    let (pe, simd) = (config.pe.to_string(), config.simd.to_string());
    ok(qnnc(&[
        "compile",
        ir.to_str().unwrap(),
        "--pe",
        &pe,
        "--simd",
        &simd,
        "-o",
        &build,
    ]));
    build
}

fn words(layer: &serde_json::Value, field: &str) -> u64 {
    layer[field]["words"]
        .as_u64()
        .unwrap_or_else(|| panic!("{field}: {layer}"))
}

fn count(layer: &serde_json::Value, field: &str) -> u64 {
    layer[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field}: {layer}"))
}

#[test]
fn counted_reads_and_writes_equal_the_schedules_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = [
        ArrayConfig { pe: 8, simd: 16 },
        ArrayConfig { pe: 3, simd: 4 },
    ];
    for (example, bits) in [(TINY, 4), (TINY, 1), (MLP, 4), (MLP, 2)] {
        let graph = graph(example, bits);
        // One precision on each array shape, the other precision on the other.
        let config = shapes[(bits == 1 || bits == 2) as usize];
        let name = format!("{}_q{bits}_{}x{}", example.0, config.pe, config.simd);
        let build = compile(dir.path(), &graph, &name, config);
        let report: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
            "sim",
            &build,
            "--images",
            "2",
            "--activity",
            "--format",
            "json",
        ])))
        .unwrap();
        assert_eq!(report["mismatches"], 0, "{name}: {report}");
        let activity = &report["activity"];
        assert_eq!(
            activity["parallel_macs"].as_u64(),
            Some((config.pe * config.simd) as u64)
        );
        let schedule = schedule::schedule(&graph, config, &name).unwrap();
        let layers = activity["layers"].as_array().expect("a layer list");
        assert_eq!(layers.len(), schedule.layers.len(), "{name}");
        let mut toggles = 0.0;
        for (layer, counted) in schedule.layers.iter().zip(layers) {
            let at = format!("{name} {}", layer.name);
            let p: LayerTraffic = schedule::predicted_traffic(layer, config);
            let measured = LayerTraffic {
                weight_reads: words(counted, "weight_reads"),
                source_reads: words(counted, "source_reads"),
                window_writes: words(counted, "window_writes"),
                window_reads: words(counted, "window_reads"),
                activation_writes: words(counted, "activation_writes"),
                outputs_computed: count(counted, "outputs_computed"),
                outputs_stored: count(counted, "outputs_stored"),
                parameter_reads: words(counted, "parameter_reads"),
                lane_macs: count(counted, "lane_macs"),
            };
            assert_eq!(measured, p, "{at}: {counted}");
            assert_eq!(counted["as_predicted"], true, "{at}");
            // Independent of the loader's pieces: the taps inside the image.
            assert_eq!(measured.lane_macs, layer.macs_inside_image(), "{at}");
            // One weight word a chunk, each weight read used once: N_c / sqrt(p) undercounts
            // the weight reads by at least sqrt(p) (less the outputs a max-pool drops, which
            // the model counts and the array does not compute), and the ratio says so.
            let model_macs = counted["model"]["macs"].as_u64().unwrap();
            let ratio = counted["ratios"]["weight_reads"].as_f64().unwrap();
            let reuse = ((config.pe * config.simd) as f64).sqrt();
            assert!(
                ratio >= reuse * layer.macs as f64 / model_macs as f64 * 0.999,
                "{at}: {ratio}"
            );
            toggles += counted["accumulator_toggles"].as_f64().unwrap()
                + counted["weight_toggles"].as_f64().unwrap()
                + counted["activation_toggles"].as_f64().unwrap();
        }
        assert!(toggles > 0.0, "{name}: no register toggled");
    }
}

#[test]
fn the_text_report_sets_the_models_counts_beside_the_counted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = ArrayConfig { pe: 8, simd: 16 };
    let build = compile(dir.path(), &graph(TINY, 4), "tiny", config);
    let text = ok(qnnc(&["sim", &build, "--images", "1", "--activity"]));
    assert!(text.contains("at p = PE x SIMD = 128"), "{text}");
    for layer in ["conv1", "conv2", "fc1"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("  {layer}: N_c "))
                    && l.ends_with("as the schedule predicts")),
            "{layer}: {text}"
        );
    }
    let weight_rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("weight reads (words)"))
        .collect();
    assert_eq!(weight_rows.len(), 3, "{text}");
    assert!(weight_rows.iter().all(|l| l.contains("(N_c/sqrt(p) x Qw)")));
    // Icarus Verilog runs the same counters and counts the same accesses and operations.
    let counted = |simulator: &str| -> serde_json::Value {
        let args = [
            "sim",
            &build,
            "--images",
            "1",
            "--activity",
            "--format",
            "json",
        ];
        let json = ok(qnnc(&[&args[..], &["--simulator", simulator]].concat()));
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut layers = report["activity"]["layers"].clone();
        // Icarus does not count toggles of bits read from never-written memory (X).
        for layer in layers.as_array_mut().expect("a layer list") {
            for toggles in [
                "weight_toggles",
                "activation_toggles",
                "accumulator_toggles",
            ] {
                layer.as_object_mut().unwrap().remove(toggles);
            }
        }
        layers
    };
    assert_eq!(counted("icarus"), counted("verilator"));
    // Without --activity the report has no activity.
    let plain = ok(qnnc(&["sim", &build, "--images", "1"]));
    assert!(!plain.contains("activity"), "{plain}");
    let json = ok(qnnc(&["sim", &build, "--images", "1", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(json["activity"].is_null(), "{json}");
}

#[test]
fn activity_of_a_netlist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("never");
    let output = qnnc(&["sim", build.to_str().unwrap(), "--netlist", "--activity"]);
    assert_user_error(&output, &["--activity", "netlist"]);
    assert!(!build.exists());
}
