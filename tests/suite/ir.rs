//! The IR: snapshots of `inspect` before and after the passes, the JSON round trip, the
//! accumulator widths on worst-case operands, and refused IR files.

use crate::common;
use common::{example, qnnc};

use proptest::prelude::*;
use qnnc::golden::Golden;
use qnnc::ir::ops::accumulator_bounds;
use qnnc::ir::{dump, passes, Graph, Op, Precision};
use qnnc::spec::examples::example_network;
use qnnc::spec::Precision as SpecPrecision;
use qnnc::train::Net;

const TINY: (&str, &str) = ("tiny_cnn", include_str!("../../examples/tiny_cnn.toml"));

/// The tiny example with freshly initialised weights: bit-exact on every machine.
fn tiny_graph(bits: u8) -> Graph {
    let net = Net::new(&example_network(TINY, SpecPrecision::Bits(bits)), 1);
    net.to_graph("tiny_cnn.qnn").unwrap()
}

#[test]
fn inspect_snapshots_before_and_after_the_passes() {
    for bits in [1u8, 4, 8] {
        let mut graph = tiny_graph(bits);
        insta::assert_snapshot!(format!("tiny_cnn_q{bits}_built"), dump::to_text(&graph));
        passes::run(&mut graph, "tiny_cnn.qnn", None).unwrap();
        insta::assert_snapshot!(format!("tiny_cnn_q{bits}_lowered"), dump::to_text(&graph));
    }
}

#[test]
fn inspect_of_a_spec_through_the_binary() {
    let out = qnnc(&["inspect", &example("tiny_cnn.toml"), "--bits", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("tiny_cnn_spec_q2", String::from_utf8_lossy(&out.stdout));
    let dot = qnnc(&[
        "inspect",
        &example("tiny_cnn.toml"),
        "--format",
        "dot",
        "--after",
        "none",
    ]);
    insta::assert_snapshot!("tiny_cnn_spec_dot", String::from_utf8_lossy(&dot.stdout));
    let listing = qnnc(&["inspect", "--passes"]);
    let text = String::from_utf8_lossy(&listing.stdout);
    for name in [
        "shape-inference",
        "infer-accumulators",
        "fold-batch-norm",
        "remove-dead",
    ] {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn after_names_a_pass_and_stops_there() {
    let mut graph = tiny_graph(4);
    passes::run(&mut graph, "t", Some("infer-accumulators")).unwrap();
    assert_eq!(graph.passes, ["shape-inference", "infer-accumulators"]);
    assert!(dump::to_text(&graph).contains("batchnorm"));
    let out = qnnc(&[
        "inspect",
        &example("tiny_cnn.toml"),
        "--after",
        "fold-everything",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fold-batch-norm") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn json_round_trip_gives_the_same_graph_and_outputs() {
    let mut graph = tiny_graph(2);
    passes::run(&mut graph, "t", None).unwrap();
    let json = dump::to_json(&graph);
    let back = dump::from_json(&json, "t.json").unwrap();
    assert_eq!(dump::to_json(&back), json);
    assert_eq!(dump::to_text(&back), dump::to_text(&graph));
    let images: Vec<u8> = (0..784 * 3).map(|i| (i * 37 % 256) as u8).collect();
    let a = Golden::new(&graph, "t").unwrap().run(&images);
    let b = Golden::new(&back, "t.json").unwrap().run(&images);
    assert_eq!(a, b);
}

fn lowered_json() -> serde_json::Value {
    let mut graph = tiny_graph(2);
    passes::run(&mut graph, "t", None).unwrap();
    serde_json::from_str(&dump::to_json(&graph)).unwrap()
}

fn refused(json: &serde_json::Value, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tampered.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let out = qnnc(&["inspect", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("tampered.json"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn json_lists_each_nodes_inputs_and_reads_chain_files_of_version_1() {
    let json = lowered_json();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(nodes[0]["inputs"], serde_json::json!([]));
    for pair in nodes.windows(2) {
        assert_eq!(pair[1]["inputs"], serde_json::json!([pair[0]["name"]]));
    }
    // Version 1 had no input lists: each node read the one before it.
    let mut chain = json.clone();
    chain["version"] = serde_json::json!(1);
    for node in chain["nodes"].as_array_mut().unwrap() {
        node.as_object_mut().unwrap().remove("inputs");
    }
    let back = dump::from_json(&chain.to_string(), "v1.json").unwrap();
    let again: serde_json::Value = serde_json::from_str(&dump::to_json(&back)).unwrap();
    assert_eq!(again, json);
}

#[test]
fn inputs_that_do_not_make_a_graph_are_refused() {
    // An input that names a later node (or would make a cycle).
    let mut json = lowered_json();
    let last = json["nodes"].as_array().unwrap().len() - 1;
    let later = json["nodes"][last]["name"].clone();
    json["nodes"][2]["inputs"] = serde_json::json!([later]);
    refused(&json, &["input 0", "not a node listed before it"]);
    // Two inputs where the op takes one.
    let mut json = lowered_json();
    let first = json["nodes"][0]["name"].clone();
    let second = json["nodes"][1]["name"].clone();
    json["nodes"][2]["inputs"] = serde_json::json!([second, first]);
    refused(&json, &["takes 1 input", "slots [0, 1]"]);
    // A node nobody reads.
    let mut json = lowered_json();
    json["nodes"][3]["inputs"] = json["nodes"][1]["inputs"].clone();
    refused(&json, &["feeds no other node"]);
    // Two nodes of one name.
    let mut json = lowered_json();
    json["nodes"][2]["name"] = json["nodes"][1]["name"].clone();
    refused(&json, &["is the name of two nodes"]);
}

#[test]
fn weights_beyond_their_declared_bits_are_refused() {
    let mut json = lowered_json();
    let conv = &mut json["nodes"][1];
    assert_eq!(conv["name"], "conv1");
    conv["op"]["weights"]["codes"][5] = serde_json::json!(2); // two bits hold -2..=1
    refused(&json, &["conv1", "weight code 2", "i2"]);
}

#[test]
fn zero_sizes_in_ir_files_are_refused() {
    let mut json = lowered_json();
    let last_mac = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .rposition(|n| n["op"]["kind"] == "mac")
        .unwrap();
    json["nodes"][last_mac]["op"]["outputs"] = serde_json::json!(0);
    refused(&json, &["fc1", "at least one output"]);
}

#[test]
fn tampered_threshold_tables_are_refused() {
    let json = lowered_json();
    let act = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .position(|n| n["op"]["kind"] == "multi-threshold")
        .expect("a threshold node");
    let mut unsorted = json.clone();
    let row = unsorted["nodes"][act]["op"]["thresholds"][0]
        .as_array_mut()
        .unwrap();
    row.swap(0, 2);
    if row[0] == row[2] {
        row[0] = serde_json::json!(row[0].as_i64().unwrap() + 1000);
    }
    refused(&unsorted, &["act1", "not sorted"]);
    let mut short = json.clone();
    short["nodes"][act]["op"]["thresholds"][1]
        .as_array_mut()
        .unwrap()
        .pop();
    refused(&short, &["act1", "thresholds, expected 3"]);
    let mut version = json;
    version["version"] = serde_json::json!(7);
    refused(&version, &["version"]);
}

/// Input `fan_in` pixels -> dense layer of one output with every weight `code` -> logits.
fn one_dot_product(fan_in: usize, weights: Precision, code: i32) -> Graph {
    use qnnc::ir::{Node, TensorType, Weights};
    use qnnc::spec::Shape;
    let mut graph = Graph::new("dot");
    let input = graph.graph.add_node(Node {
        name: "input".into(),
        op: Op::Input,
    });
    let dense = graph.graph.add_node(Node {
        name: "fc".into(),
        op: Op::Mac {
            dense: true,
            kernel: 1,
            stride: 1,
            padding: 0,
            outputs: 1,
            weight_precision: weights,
            weights: Some(Weights {
                step: 1.0,
                fan_in,
                outputs: 1,
                codes: vec![code; fan_in],
            }),
            bias: None,
        },
    });
    let output = graph.graph.add_node(Node {
        name: "logits".into(),
        op: Op::Output,
    });
    let pixels = TensorType {
        shape: Shape::flat(fan_in),
        precision: Precision::unsigned(8),
        scale: 1.0,
    };
    graph.connect(input, dense, 0, pixels);
    graph.connect(
        dense,
        output,
        0,
        TensorType {
            shape: Shape::flat(1),
            precision: Precision::Float,
            scale: 1.0,
        },
    );
    graph
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// On random small layers, the golden model's accumulator with every weight and pixel at an
    /// end of its range equals the inferred bound, fits the inferred width, and one bit fewer
    /// does not hold the bounds.
    #[test]
    fn accumulator_width_holds_the_extremes_and_one_bit_fewer_does_not(
        fan_in in 1usize..400,
        wbits in 1u32..=16,
        most_positive in any::<bool>(),
    ) {
        let weights = if wbits == 1 { Precision::Bipolar } else { Precision::signed(wbits) };
        let (wmin, wmax) = weights.code_range().unwrap();
        let code = if most_positive { wmax } else { wmin } as i32;
        let mut graph = one_dot_product(fan_in, weights, code);
        passes::run(&mut graph, "t", None).unwrap();
        let acc = graph.output_type(graph.topological_order()[1]).unwrap().precision;
        let (min, max) = accumulator_bounds((wmin, wmax), (0, 255), fan_in);
        let logits = Golden::new(&graph, "t").unwrap().run(&vec![255u8; fan_in]);
        let extreme = logits[0].logits[0];
        prop_assert_eq!(extreme, if code > 0 { max } else { min });
        let fits = |v: i64, bits: u32| v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1));
        let width = acc.storage_bits();
        prop_assert!(fits(extreme, width) && fits(min, width) && fits(max, width));
        prop_assert!(!fits(min, width - 1) || !fits(max, width - 1));
    }
}

#[test]
fn worst_case_operands_reach_the_inferred_bounds_in_the_golden_model() {
    // Every pixel 255 and every weight at its most negative or most positive code: the golden
    // model's accumulators equal the bounds and fit the inferred precision.
    for bits in [2u8, 4, 8] {
        let mut graph = tiny_graph(bits);
        for extreme in [-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1] {
            for node in graph.topological_order() {
                if let Op::Mac {
                    weights: Some(w), ..
                } = &mut graph.graph[node].op
                {
                    w.codes.iter_mut().for_each(|c| *c = extreme);
                }
            }
            let mut lowered = graph.clone();
            passes::run(&mut lowered, "t", Some("infer-accumulators")).unwrap();
            let conv1 = lowered.topological_order()[1];
            let acc = lowered.output_type(conv1).unwrap().precision;
            let (lo, hi) = acc.code_range().unwrap();
            let expected = 9 * 255 * extreme as i64;
            assert!(expected >= lo && expected <= hi, "{expected} outside {acc}");
            passes::run(&mut lowered, "t", None).unwrap();
            let golden = Golden::unfused(&lowered, "t").unwrap();
            let trace = golden.trace(&[255u8; 784]);
            // The pixel at (1, 1) sees a full 3x3 window.
            let conv = trace.iter().find(|t| t.node == "conv1").unwrap();
            assert_eq!(conv.values[(28 + 1) * 4], expected);
        }
    }
}
