//! Average pooling and skip connections through the IR: building from parameters, lowering,
//! the golden model against the float model and a naive evaluation of the DAG, the verifier's
//! refusals, the JSON round trip and the energy model's two readings (spec and graph).
//!
//! The trainer does not train these networks here: parameters are seeded random weight codes
//! and batch-norm statistics, given through `LayerParameters`.

use crate::common;

use std::collections::HashMap;

use petgraph::stable_graph::NodeIndex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use qnnc::energy::{work_of, work_of_graph};
use qnnc::golden::Golden;
use qnnc::ir::build;
use qnnc::ir::float_model::FloatModel;
use qnnc::ir::verify::{verify, verify_lowered};
use qnnc::ir::{dump, ops, passes, Graph, IrError, Node, Op, Precision};
use qnnc::qonnx::QonnxError;
use qnnc::spec::{self, DatasetKind, Network, Spec};

/// A conv layer, an average pool of 3x3 windows of stride 2, and a dense layer.
const AVGPOOL: &str = r#"
name = "avg"
input = { height = 28, width = 28, channels = 1 }
classes = 10
precision = { weights = BITS, activations = BITS }
layers = [
  { kind = "conv2d", filters = 8, kernel = 4, stride = 2, padding = 1 },
  { kind = "batchnorm" },
  { kind = "act" },
  { kind = "avgpool", size = 3, stride = 2 },
  { kind = "act" },
  { kind = "flatten" },
  { kind = "dense", units = 10 },
]
"#;

/// Two conv layers, then global average pooling of their 7x7 maps into the dense layer.
const GLOBAL: &str = r#"
name = "global"
input = { height = 28, width = 28, channels = 1 }
classes = 10
precision = { weights = BITS, activations = BITS }
layers = [
  { kind = "conv2d", filters = 16, kernel = 4, stride = 2, padding = 1 },
  { kind = "batchnorm" },
  { kind = "act" },
  { kind = "conv2d", filters = 16, kernel = 3, stride = 2, padding = 1 },
  { kind = "batchnorm" },
  { kind = "act" },
  { kind = "avgpool" },
  { kind = "act" },
  { kind = "flatten" },
  { kind = "dense", units = 10, bias = true },
]
"#;

/// A stem and two residual blocks of two conv layers each, then an average pool.
const RESNET: &str = r#"
name = "resnet"
input = { height = 28, width = 28, channels = 1 }
classes = 10
precision = { weights = BITS, activations = BITS }
layers = [
  { kind = "conv2d", filters = 8, kernel = 4, stride = 2, padding = 1 },
  { kind = "batchnorm" },
  { kind = "act", name = "stem" },
  { kind = "conv2d", filters = 8, kernel = 3, padding = 1, name = "b1c1" },
  { kind = "batchnorm" },
  { kind = "act" },
  { kind = "conv2d", filters = 8, kernel = 3, padding = 1, name = "b1c2" },
  { kind = "batchnorm" },
  { kind = "act" },
  { kind = "add", from = "stem", name = "add1" },
  { kind = "act", name = "block1" },
  { kind = "conv2d", filters = 8, kernel = 3, padding = 1, name = "b2c1" },
  { kind = "batchnorm" },
  { kind = "act" },
  { kind = "conv2d", filters = 8, kernel = 3, padding = 1, name = "b2c2" },
  { kind = "batchnorm" },
  { kind = "act" },
  { kind = "add", from = "block1", name = "add2" },
  { kind = "act", name = "block2" },
  { kind = "avgpool", size = 7, name = "pool" },
  { kind = "act" },
  { kind = "flatten" },
  { kind = "dense", units = 10 },
]
"#;

const SPECS: [(&str, &str); 3] = [("avg", AVGPOOL), ("global", GLOBAL), ("resnet", RESNET)];
const BITS: [u32; 5] = [1, 2, 3, 4, 8];

fn network(text: &str, bits: u32) -> Network {
    let text = text.replace("BITS", &bits.to_string());
    Spec::parse(&text, false, "t.toml")
        .and_then(|spec| spec.build("t.toml"))
        .unwrap()
}

/// The graph of `text` at `bits` with seeded random parameters, before lowering.
fn built(text: &str, bits: u32, seed: u64) -> Graph {
    let network = network(text, bits);
    build::from_trained(
        &network,
        &common::RandomParameters {
            network: &network,
            seed,
        },
        "t.toml",
    )
    .unwrap()
}

fn lowered(graph: &Graph) -> Graph {
    let mut graph = graph.clone();
    passes::run(&mut graph, "t.toml", None).unwrap();
    graph
}

/// Images of a random background, three random rectangles of random brightness and noise: they
/// differ at every scale, so that averages of random features still tell them apart.
fn random_images(count: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut images = Vec::with_capacity(count * 784);
    for _ in 0..count {
        let mut image = vec![rng.random_range(0.0..128.0f32); 784];
        for _ in 0..3 {
            let (y0, x0) = (rng.random_range(0..24), rng.random_range(0..24));
            let (h, w) = (rng.random_range(4..28 - y0), rng.random_range(4..28 - x0));
            let level = rng.random_range(0.0..255.0f32);
            for y in y0..y0 + h {
                for x in x0..x0 + w {
                    image[y * 28 + x] = level;
                }
            }
        }
        images.extend(
            image
                .iter()
                .map(|&v| (v + rng.random_range(-20.0..20.0f32)).clamp(0.0, 255.0) as u8),
        );
    }
    images
}

fn node(graph: &Graph, name: &str) -> NodeIndex {
    graph
        .graph
        .node_indices()
        .find(|&i| graph.graph[i].name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

#[test]
fn lowering_leaves_integer_ops_with_a_quantizer_folded_after_every_sum() {
    for (name, text) in SPECS {
        for bits in BITS {
            let graph = lowered(&built(text, bits, 1));
            verify_lowered(&graph, "t.toml").unwrap();
            let mut sums = 0;
            for n in graph.graph.node_indices() {
                let op = &graph.graph[n].op;
                assert!(
                    !matches!(op, Op::BatchNorm(_) | Op::Quantize { .. }),
                    "{name} {bits}: {op:?} left"
                );
                if matches!(op, Op::AvgPool { .. } | Op::Add { .. }) {
                    sums += 1;
                    let ty = graph.output_type(n).unwrap();
                    assert!(
                        matches!(ty.precision, Precision::Int { .. }),
                        "{name} {bits}"
                    );
                    let next = graph.successor(n).unwrap();
                    let expected = if bits <= 4 {
                        "multithreshold"
                    } else {
                        "requantize"
                    };
                    assert_eq!(graph.graph[next].op.name(), expected, "{name} {bits}");
                }
            }
            let expected = match name {
                "resnet" => 3,
                _ => 1,
            };
            assert_eq!(sums, expected, "{name} {bits}");
        }
    }
}

#[test]
fn sums_have_the_precisions_and_scales_of_the_contract() {
    for bits in [1, 2, 4] {
        let graph = lowered(&built(RESNET, bits, 2));
        let code = build::activation_type(spec::Shape::flat(1), bits);
        for (name, count) in [("add1", 2i64), ("add2", 2), ("pool", 49)] {
            let n = node(&graph, name);
            let ty = graph.output_type(n).unwrap();
            let max = code.precision.code_range().unwrap().1 * count;
            let expected = if bits == 1 {
                Precision::signed_for_range(-count, count)
            } else {
                Precision::unsigned(64 - (max as u64).leading_zeros())
            };
            assert_eq!(ty.precision, expected, "{name} at {bits} bits");
            let scale = match name {
                "pool" => code.scale / 49.0,
                _ => code.scale,
            };
            assert_eq!(ty.scale, scale, "{name} at {bits} bits");
            if let Op::Add { shifts } = graph.graph[n].op {
                assert_eq!(shifts, [0, 0]);
                // The main path at input 0, the skip at input 1.
                let inputs: Vec<String> = graph
                    .inputs(n)
                    .iter()
                    .map(|&i| graph.graph[i].name.clone())
                    .collect();
                let skip = if name == "add1" { "stem" } else { "block1" };
                assert_eq!(inputs[1], skip);
                assert_ne!(inputs[0], skip);
            }
        }
    }
}

#[test]
fn golden_equals_a_naive_evaluation_of_the_dag() {
    let images = random_images(24, 7);
    for (name, text) in SPECS {
        for bits in BITS {
            let graph = lowered(&built(text, bits, 3));
            let predictions = Golden::new(&graph, "t.toml").unwrap().run(&images);
            for (image, p) in images.chunks_exact(784).zip(&predictions) {
                assert_eq!(
                    p.logits,
                    common::naive(&graph, image),
                    "{name} at {bits} bits"
                );
            }
            assert_varied(name, bits, &predictions);
        }
    }
}

#[test]
fn golden_agrees_with_the_float_model() {
    let images = random_images(200, 8);
    for (name, text) in SPECS {
        for bits in BITS {
            let graph = built(text, bits, 4);
            let float = FloatModel::new(&graph, "t.toml").unwrap().logits(&images);
            let lowered = lowered(&graph);
            let logit_step = lowered.output_type(node(&lowered, "logits")).unwrap().scale;
            let golden = Golden::new(&lowered, "t.toml").unwrap().run(&images);
            let (mut same_class, mut within_a_step) = (0, 0);
            for (f, g) in float.iter().zip(&golden) {
                // Integer logits tie often at low precision, which the float ones break.
                let best = *g.logits.iter().max().unwrap();
                same_class += (g.logits[qnnc::kernels::argmax(f)] == best) as usize;
                let close = f.iter().zip(&g.logits).all(|(&f, &g)| {
                    (f as f64 - g as f64 * logit_step).abs() <= logit_step + 1e-4 * f.abs() as f64
                });
                within_a_step += close as usize;
            }
            assert_varied(name, bits, &golden);
            assert!(
                same_class >= 196,
                "{name} at {bits} bits: {same_class} of 200 classes agree"
            );
            assert!(
                within_a_step >= 190,
                "{name} at {bits} bits: {within_a_step} of 200 images have every logit within a step"
            );
        }
    }
}

/// The logits differ from image to image, so that comparing them compares something. A
/// bipolar residual network is the exception: an add of -1/+1 codes is 0 as often as -2,
/// and the sign after it makes 0 +1, so that two blocks make nearly every code +1 and a
/// global pool of them a constant.
fn assert_varied(name: &str, bits: u32, predictions: &[qnnc::golden::Prediction]) {
    let distinct: std::collections::BTreeSet<&Vec<i64>> =
        predictions.iter().map(|p| &p.logits).collect();
    if (name, bits) != ("resnet", 1) {
        assert!(
            distinct.len() * 20 >= predictions.len(),
            "{name} at {bits} bits: {} distinct logits of {} images",
            distinct.len(),
            predictions.len()
        );
    }
}

/// input 2x2x2 -> add(input, input) -> global average pool -> logits: the sums by hand.
#[test]
fn window_sums_and_shifted_sums_by_hand() {
    let shape = spec::Shape {
        height: 2,
        width: 2,
        channels: 2,
    };
    let pixels = build::input_type(shape);
    let mut graph = Graph::new("hand");
    let add = |graph: &mut Graph, name: &str, op| {
        graph.graph.add_node(Node {
            name: name.into(),
            op,
        })
    };
    let input = add(&mut graph, "input", Op::Input);
    let sum = add(&mut graph, "sum", Op::Add { shifts: [0, 0] });
    let pool = add(&mut graph, "pool", Op::AvgPool { size: 2, stride: 2 });
    let output = add(&mut graph, "logits", Op::Output);
    let (sum_type, shifts) = ops::add_type(pixels, pixels).unwrap();
    assert_eq!(
        (sum_type.precision, shifts),
        (Precision::unsigned(9), [0, 0])
    );
    let pooled = ops::window_sum_type(sum_type, 2, spec::Shape::flat(2)).unwrap();
    assert_eq!(pooled.precision, Precision::unsigned(11));
    assert_eq!(pooled.scale, pixels.scale / 4.0);
    graph.connect(input, sum, 0, pixels);
    graph.connect(input, sum, 1, pixels);
    graph.connect(sum, pool, 0, sum_type);
    graph.connect(pool, output, 0, pooled);
    verify_lowered(&graph, "hand.json").unwrap();
    // Pixels in HWC order: channel 0 holds 1, 3, 5, 7 and channel 1 holds 2, 4, 6, 255.
    let image = [1u8, 2, 3, 4, 5, 6, 7, 255];
    let golden = Golden::unfused(&graph, "hand.json").unwrap();
    let traces = golden.trace(&image);
    assert_eq!(traces[0].values, vec![2, 4, 6, 8, 10, 12, 14, 510]);
    assert_eq!(traces[1].values, vec![2 * 16, 2 * 267]);
    assert_eq!(golden.run(&image)[0].logits, vec![32, 534]);
    // The float model: the mean of the doubled values.
    let float = FloatModel::new(&graph, "hand.json").unwrap().logits(&image);
    let expected = [32.0 / 4.0 / 255.0, 534.0 / 4.0 / 255.0];
    for (f, e) in float[0].iter().zip(expected) {
        assert!((f - e).abs() < 1e-6, "{f} vs {e}");
    }
    // A shift: the skip counted twice over, as if its codes were worth twice as much.
    graph.graph[sum].op = Op::Add { shifts: [0, 1] };
    assert!(verify(&graph, "hand.json").is_err());
}

fn one_line_naming(error: &qnnc::ir::IrError, node: &str, needle: &str) {
    assert_eq!(error.node(), node, "{error}");
    one_line_saying(error, needle);
}

fn one_line_saying(error: &dyn std::fmt::Display, needle: &str) {
    let text = error.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains(needle), "{text}");
}

#[test]
fn verify_refuses_adds_of_other_shapes_wrong_arity_and_cycles() {
    let network = network(RESNET, 2);
    let graph = build::from_network(&network, "t.toml").unwrap();
    verify(&graph, "t.toml").unwrap();
    let add1 = node(&graph, "add1");
    let skip_edge = |graph: &Graph| {
        graph
            .graph
            .edges_directed(add1, petgraph::Direction::Incoming)
            .find(|e| e.weight().slot == 1)
            .map(|e| petgraph::visit::EdgeRef::id(&e))
            .unwrap()
    };

    // The skip read from the image instead: 28x28x1 against 14x14x8.
    let mut other_shape = graph.clone();
    let edge = skip_edge(&other_shape);
    other_shape.graph.remove_edge(edge);
    let input = other_shape.input_node().unwrap();
    let ty = other_shape.output_type(input).unwrap();
    other_shape.connect(input, add1, 1, ty);
    let error = verify(&other_shape, "t.toml").unwrap_err();
    assert!(matches!(error, IrError::Shape { .. }), "{error:?}");
    one_line_naming(&error, "add1", "one shape");

    // The skip read from a batch norm: float values, not codes.
    let mut float = graph.clone();
    let edge = skip_edge(&float);
    float.graph.remove_edge(edge);
    let bn = node(&float, "bn1");
    let ty = float.output_type(bn).unwrap();
    float.connect(bn, add1, 1, ty);
    let error = verify(&float, "t.toml").unwrap_err();
    assert!(matches!(error, IrError::Type { .. }), "{error:?}");
    one_line_naming(&error, "add1", "reads float values");

    // One input only.
    let mut one_input = graph.clone();
    let edge = skip_edge(&one_input);
    one_input.graph.remove_edge(edge);
    let error = verify(&one_input, "t.toml").unwrap_err();
    assert!(
        matches!(&error, IrError::Arity { expected: 2, slots, .. } if slots == &[0]),
        "{error:?}"
    );
    one_line_naming(&error, "add1", "takes 2 input(s)");

    // Three inputs.
    let mut three = graph.clone();
    let stem = node(&three, "stem");
    let ty = three.output_type(stem).unwrap();
    three.connect(stem, add1, 2, ty);
    let error = verify(&three, "t.toml").unwrap_err();
    one_line_naming(&error, "add1", "takes 2 input(s)");

    // The block's output fed back into its first conv: a cycle.
    let mut cycle = graph.clone();
    let (block1, b1c1) = (node(&cycle, "block1"), node(&cycle, "b1c1"));
    let ty = cycle.output_type(block1).unwrap();
    cycle.connect(block1, b1c1, 1, ty);
    let error = verify(&cycle, "t.toml").unwrap_err();
    let on_cycle = [
        "b1c1", "bn2", "act1", "b1c2", "bn3", "act2", "add1", "block1",
    ];
    assert!(matches!(error, IrError::Cycle { .. }), "{error:?}");
    assert!(on_cycle.contains(&error.node()), "{error}");
    assert!(error.to_string().contains("cycle"), "{error}");
    assert!(!error.to_string().contains('\n'), "{error}");

    // Shifts that do not match the scales.
    let mut shifted = graph.clone();
    shifted.graph[add1].op = Op::Add { shifts: [1, 0] };
    let error = verify(&shifted, "t.toml").unwrap_err();
    one_line_naming(&error, "add1", "shifts [1, 0]");
}

#[test]
fn a_residual_graph_reads_back_from_json_exactly() {
    for bits in [1, 4, 8] {
        let graph = built(RESNET, bits, 5);
        for g in [graph.clone(), lowered(&graph)] {
            let json = dump::to_json(&g);
            let back = dump::from_json(&json, "r.json").unwrap();
            assert_eq!(dump::to_json(&back), json);
            assert_eq!(dump::to_text(&back), dump::to_text(&g));
            // The same graph: node for node, edge for edge.
            let edges = |g: &Graph| {
                let mut edges: Vec<String> = g
                    .graph
                    .edge_indices()
                    .map(|e| {
                        let (a, b) = g.graph.edge_endpoints(e).unwrap();
                        let w = g.graph[e];
                        format!(
                            "{} -> {} @{} {:?}",
                            g.graph[a].name, g.graph[b].name, w.slot, w.ty
                        )
                    })
                    .collect();
                edges.sort();
                edges
            };
            assert_eq!(edges(&back), edges(&g));
        }
    }
    let text = dump::to_text(&lowered(&built(RESNET, 2, 5)));
    assert!(text.contains("add shifts=0, 0 of act2 + stem"), "{text}");
    assert!(
        text.contains("avgpool size=7 stride=7 (window sums)"),
        "{text}"
    );
    let dot = dump::to_dot(&built(RESNET, 2, 5));
    assert!(dot.contains("input 1: 14x14x8"), "{dot}");
}

#[test]
fn energy_of_a_residual_spec_equals_that_of_its_graph() {
    for (name, text) in SPECS {
        for bits in BITS {
            let network = network(text, bits);
            let from_spec = work_of(&network);
            let graph = build::from_network(&network, "t.toml").unwrap();
            assert_eq!(work_of_graph(&graph), from_spec, "{name} at {bits} bits");
            let trained = built(text, bits, 6);
            assert_eq!(work_of_graph(&trained), from_spec, "{name} at {bits} bits");
            assert_eq!(
                work_of_graph(&lowered(&trained)),
                from_spec,
                "{name} lowered at {bits} bits"
            );
        }
    }
    // The contract's counts, for the residual network at 4 bits.
    let work = work_of(&network(RESNET, 4));
    let ops: Vec<&str> = work.iter().map(|w| w.op.as_str()).collect();
    assert_eq!(
        ops,
        ["conv2d", "conv2d", "conv2d", "add", "conv2d", "conv2d", "add", "avgpool", "dense"]
    );
    let add = &work[3];
    assert_eq!(
        (
            add.macs,
            add.weights,
            add.outputs_computed,
            add.outputs_stored
        ),
        (14 * 14 * 8, 0, 14 * 14 * 8, 14 * 14 * 8)
    );
    assert_eq!((add.abits_in, add.abits_out), (4, 4));
    let pool = &work[7];
    assert_eq!(
        (pool.macs, pool.weights, pool.outputs_stored),
        (49 * 2 * 2 * 8, 0, 2 * 2 * 8)
    );
    assert_eq!((pool.abits_in, pool.abits_out), (4, 4));
    assert_eq!(work[8].abits_in, 4);
}

#[test]
fn a_residual_graph_gives_back_its_spec() {
    for (name, text) in SPECS {
        let network = network(text, 2);
        let graph = built(text, 2, 1);
        let spec = build::to_spec(&graph, DatasetKind::FashionMnist, "t.json").unwrap();
        let rebuilt = spec.build("t.json").unwrap();
        let layers = |n: &Network| -> Vec<(String, spec::Op, spec::Shape)> {
            n.layers
                .iter()
                .map(|l| (l.name.clone(), l.op, l.output))
                .collect()
        };
        assert_eq!(layers(&rebuilt), layers(&network), "{name}");
    }
}

#[test]
fn the_golden_trace_names_the_adds_and_keeps_the_skip() {
    let graph = lowered(&built(RESNET, 2, 9));
    let golden = Golden::unfused(&graph, "t.toml").unwrap();
    let image = random_images(1, 3);
    let traces = golden.trace(&image);
    let by_name: HashMap<&str, &Vec<i64>> = traces
        .iter()
        .map(|t| (t.node.as_str(), &t.values))
        .collect();
    let (stem, main, sum) = (by_name["stem"], by_name["act2"], by_name["add1"]);
    let expected: Vec<i64> = main.iter().zip(stem).map(|(a, b)| a + b).collect();
    assert_eq!(sum, &expected);
    assert!(stem.iter().any(|&v| v > 0) && main.iter().any(|&v| v > 0));
    assert_eq!(traces.last().unwrap().values, common::naive(&graph, &image));
    // Bipolar sums are -2, 0 and 2.
    let graph = lowered(&built(RESNET, 1, 9));
    let traces = Golden::unfused(&graph, "t.toml").unwrap().trace(&image);
    let sums: std::collections::BTreeSet<i64> = traces
        .iter()
        .find(|t| t.node == "add1")
        .unwrap()
        .values
        .iter()
        .copied()
        .collect();
    assert_eq!(sums, [-2, 0, 2].into());
}

/// `bytes` (an ONNX model) with `edit` applied to its graph.
fn edited(bytes: &[u8], edit: impl FnOnce(&mut onnx_protobuf::GraphProto)) -> Vec<u8> {
    use onnx_protobuf::Message;
    let mut model = onnx_protobuf::ModelProto::parse_from_bytes(bytes).unwrap();
    edit(model.graph.as_mut().unwrap());
    model.write_to_bytes().unwrap()
}

#[test]
fn residual_graphs_export_to_qonnx_and_import_back_the_same() {
    use qnnc::qonnx::{export::export, import::import};
    let images = random_images(40, 12);
    for (name, text) in SPECS {
        for bits in [1, 2, 4, 8] {
            let graph = built(text, bits, 10);
            let bytes = export(&graph, "r.onnx").unwrap();
            let back = import(&bytes, "r.onnx", "r").unwrap();
            let (json, expected) = (dump::to_json(&back), dump::to_json(&graph));
            let first_difference = json.lines().zip(expected.lines()).position(|(a, b)| a != b);
            assert_eq!(
                first_difference,
                None,
                "{name} at {bits} bits: {:?}",
                first_difference.map(|i| (json.lines().nth(i), expected.lines().nth(i)))
            );
            assert_eq!(json, expected, "{name} at {bits} bits");
            assert_eq!(export(&back, "r.onnx").unwrap(), bytes);
            let (a, b) = (lowered(&graph), lowered(&back));
            assert_eq!(
                Golden::new(&a, "a").unwrap().run(&images),
                Golden::new(&b, "b").unwrap().run(&images)
            );
        }
    }
    // The ops of the file: a global pool is written as such.
    use onnx_protobuf::Message;
    let ops = |text: &str| -> Vec<String> {
        let bytes = export(&built(text, 2, 10), "r.onnx").unwrap();
        let model = onnx_protobuf::ModelProto::parse_from_bytes(&bytes[..]).unwrap();
        model.graph.node.iter().map(|n| n.op_type.clone()).collect()
    };
    assert!(ops(GLOBAL).contains(&"GlobalAveragePool".to_string()));
    assert!(ops(AVGPOOL).contains(&"AveragePool".to_string()));
    let resnet = ops(RESNET);
    assert_eq!(resnet.iter().filter(|op| *op == "Add").count(), 2);
}

#[test]
fn qonnx_import_refuses_adds_of_other_shapes_and_cycles() {
    use qnnc::qonnx::{export::export, import::import};
    let bytes = export(&built(RESNET, 2, 10), "r.onnx").unwrap();
    let rewire = |skip: &'static str| {
        edited(&bytes, move |g| {
            let add = g.node.iter_mut().find(|n| n.name == "add1").unwrap();
            add.input[1] = skip.into();
        })
    };
    // The skip from the image: 28x28x1 against 14x14x8.
    let error = import(&rewire("input"), "r.onnx", "r").unwrap_err();
    assert!(
        matches!(&error, QonnxError::Shape { node, op, .. } if node == "add1" && op == "Add"),
        "{error:?}"
    );
    one_line_saying(&error, "r.onnx: add1: Add: adds 28x28x1 (input 1)");
    one_line_saying(&error, "one shape");
    // The skip from a tensor computed after the add: a cycle.
    let error = import(&rewire("block2"), "r.onnx", "r").unwrap_err();
    assert!(
        matches!(&error, QonnxError::LaterSkip { node, tensor, .. } if node == "add1" && tensor == "block2"),
        "{error:?}"
    );
    one_line_saying(
        &error,
        "r.onnx: add1: Add: adds tensor block2, which is not computed before it",
    );
    // A skip with a layer of its own: the tensor feeds two nodes besides the add.
    let branched = edited(&bytes, |g| {
        let mut extra = g.node.iter().find(|n| n.name == "b1c1").unwrap().clone();
        extra.name = "side".into();
        extra.output = vec!["side".into()];
        g.node.push(extra);
    });
    let error = import(&branched, "r.onnx", "r").unwrap_err();
    assert!(
        matches!(error, QonnxError::Branch { readers: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("feeds 3 nodes"), "{error}");
    assert!(!error.to_string().contains('\n'), "{error}");
}

/// The quantizer after a 2x2 average pool, folded into the window sum: code = the average
/// rounded, exact ties (sums of 2 mod 4) half to even by thresholds (up to 4 bits) and up by
/// multiply-shift (wider codes), as after a MAC.
#[test]
fn the_quantizer_after_an_average_pool_rounds_the_window_sum_by_hand() {
    let shape = spec::Shape {
        height: 2,
        width: 2,
        channels: 1,
    };
    for bits in [2u32, 8] {
        let codes = qnnc::ir::TensorType {
            shape,
            ..build::input_type(shape)
        };
        let mut graph = Graph::new("pool");
        let add = |graph: &mut Graph, name: &str, op| {
            graph.graph.add_node(Node {
                name: name.into(),
                op,
            })
        };
        let input = add(&mut graph, "input", Op::Input);
        let pool = add(&mut graph, "pool", Op::AvgPool { size: 2, stride: 2 });
        let act = add(
            &mut graph,
            "act",
            Op::Quantize {
                bits,
                truncation: None,
                narrow: false,
            },
        );
        let output = add(&mut graph, "logits", Op::Output);
        let flat = spec::Shape::flat(1);
        let sums = ops::window_sum_type(codes, 2, flat).unwrap();
        graph.connect(input, pool, 0, codes);
        graph.connect(pool, act, 0, sums);
        graph.connect(
            act,
            output,
            0,
            build::quantizer_type(flat, bits, codes.scale),
        );
        passes::run(&mut graph, "pool.json", None).unwrap();
        let folded = graph.successor(node(&graph, "pool")).unwrap();
        let expected_op = if bits <= 4 {
            "multithreshold"
        } else {
            "requantize"
        };
        assert_eq!(graph.graph[folded].op.name(), expected_op);
        let golden = Golden::new(&graph, "pool.json").unwrap();
        let max = (1i64 << bits) - 1;
        for (pixels, even, up) in [
            ([0u8, 0, 1, 1], 0, 1),   // 0.5
            ([1, 1, 1, 0], 1, 1),     // 0.75
            ([1, 1, 2, 2], 2, 2),     // 1.5
            ([2, 2, 3, 3], 2, 3),     // 2.5
            ([3, 3, 3, 4], 3, 3),     // 3.25
            ([9, 9, 10, 10], 10, 10), // 9.5
        ] {
            let expected = if bits <= 4 { even } else { up };
            assert_eq!(
                golden.run(&pixels)[0].logits,
                vec![expected.min(max)],
                "{pixels:?} at {bits} bits"
            );
        }
    }
}
