//! The energy model and `qnnc energy`: every term of a small network against hand arithmetic,
//! how energy moves with the precision and the size, snapshots of the three report formats
//! through the binary, and bad input refused with one line naming the file and the field.

use crate::common;
use common::{assert_user_error, qnnc};

use std::path::Path;

use qnnc::energy::{estimate, work_of, work_of_graph, EnergyReport, LayerWork, Profile};
use qnnc::ir::{build, passes};
use qnnc::model::{Model, TrainingRecord};
use qnnc::spec::{Network, Overrides, Precision, Spec};
use qnnc::train::{Net, TrainOptions};

const PRECISIONS: [u8; 5] = [16, 8, 4, 2, 1];

fn stdout_of(args: &[&str]) -> String {
    let output = qnnc(args);
    assert!(
        output.status.success(),
        "qnnc {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// An example spec at `bits` for weights and activations, with the given hidden widths.
fn example(name: &str, bits: u8, hidden: Option<Vec<usize>>) -> Network {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let mut spec = Spec::from_file(&path).unwrap();
    let overrides = Overrides {
        bits: Some(Precision::Bits(bits)),
        hidden,
        ..Overrides::default()
    };
    spec.apply(&overrides, name).unwrap();
    spec.build(name).unwrap()
}

fn energy_of(network: &Network, profile: &Profile) -> EnergyReport {
    estimate(&work_of(network), profile)
}

fn presets() -> Vec<Profile> {
    Profile::preset_names()
        .into_iter()
        .map(|name| Profile::resolve(name).unwrap())
        .collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

#[test]
fn every_term_of_a_two_layer_network_matches_hand_arithmetic() {
    // conv 4x4 stride 4, 2 filters on 28x28x1 -> 7x7x2, 2-bit act, 7x7 max-pool -> 1x1x2;
    // dense 2 -> 10.
    let spec = Spec::parse(
        r#"
        name = "two"
        input = { height = 28, width = 28, channels = 1 }
        classes = 10
        precision = { weights = 4, activations = 2 }
        layers = [
          { kind = "conv2d", filters = 2, kernel = 4, stride = 4 },
          { kind = "batchnorm" },
          { kind = "act" },
          { kind = "maxpool", size = 7 },
          { kind = "flatten" },
          { kind = "dense", units = 10 },
          { kind = "batchnorm" },
        ]
        "#,
        false,
        "two.toml",
    )
    .unwrap();
    let network = spec.build("two.toml").unwrap();
    // beta = 2 makes E_MAC = e_mac16 * Qw*Qa/256 exactly; p = 4 makes sqrt(p) = 2.
    let profile = Profile {
        name: "hand".into(),
        description: "round numbers".into(),
        units: "u".into(),
        e_mac16: 1.0,
        beta: 2.0,
        e_local16: 2.0,
        e_main16: 10.0,
        parallel_macs: 4,
    };
    let report = energy_of(&network, &profile);
    let [conv, dense] = &report.layers[..] else {
        panic!("two layers expected, got {:?}", report.layers)
    };

    // conv1: N_c = 7*7*2 outputs * 4*4*1 = 1568, N_s = 2*4*4 = 32, A_s = 98, A_out = 2,
    // Qw = 4, Qa_in = 8 (pixels), Qa_out = 2.
    assert_eq!(
        (
            conv.macs,
            conv.weights,
            conv.outputs_computed,
            conv.outputs_stored
        ),
        (1568, 32, 98, 2)
    );
    assert_eq!((conv.wbits, conv.abits_in, conv.abits), (4, 8, 2));
    let conv_e_mac = 1.0 * (4.0 * 8.0 / 256.0);
    let conv_e_c = conv_e_mac * (1568.0 + 3.0 * 98.0);
    let conv_e_w = (10.0 * 4.0 / 16.0) * 32.0 + (2.0 * 4.0 / 16.0) * 1568.0 / 2.0;
    let conv_e_a = 2.0 * (10.0 * 2.0 / 16.0) * 2.0 + (2.0 * 8.0 / 16.0) * 1568.0 / 2.0;
    assert_close(conv.e_mac, conv_e_mac, "conv E_MAC");
    assert_close(conv.e_c, conv_e_c, "conv E_C");
    assert_close(conv.e_w, conv_e_w, "conv E_W");
    assert_close(conv.e_a, conv_e_a, "conv E_A");
    assert_eq!((conv.e_c, conv.e_w, conv.e_a), (232.75, 472.0, 789.0));

    // fc1: N_c = N_s = 2*10 = 20, A_s = A_out = 10, Qw = 4, Qa_in = 2, Qa_out = 16 (logits).
    assert_eq!(
        (
            dense.macs,
            dense.weights,
            dense.outputs_computed,
            dense.outputs_stored
        ),
        (20, 20, 10, 10)
    );
    assert_eq!((dense.wbits, dense.abits_in, dense.abits), (4, 2, 16));
    let dense_e_mac = 1.0 * (4.0 * 2.0 / 256.0);
    let dense_e_c = dense_e_mac * (20.0 + 3.0 * 10.0);
    let dense_e_w = (10.0 * 4.0 / 16.0) * 20.0 + (2.0 * 4.0 / 16.0) * 20.0 / 2.0;
    let dense_e_a = 2.0 * (10.0 * 16.0 / 16.0) * 10.0 + (2.0 * 2.0 / 16.0) * 20.0 / 2.0;
    assert_close(dense.e_mac, dense_e_mac, "dense E_MAC");
    assert_close(dense.e_c, dense_e_c, "dense E_C");
    assert_close(dense.e_w, dense_e_w, "dense E_W");
    assert_close(dense.e_a, dense_e_a, "dense E_A");
    assert_eq!((dense.e_c, dense.e_w, dense.e_a), (1.5625, 55.0, 202.5));

    let total = conv_e_c + conv_e_w + conv_e_a + dense_e_c + dense_e_w + dense_e_a;
    assert_close(report.total, total, "total");
    assert_close(report.totals.e_c, conv_e_c + dense_e_c, "total E_C");
    assert_close(report.totals.e_w, conv_e_w + dense_e_w, "total E_W");
    assert_close(report.totals.e_a, conv_e_a + dense_e_a, "total E_A");
    assert_close(conv.share, (232.75 + 472.0 + 789.0) / total, "conv share");
    assert_eq!(
        (report.totals.macs, report.totals.weights),
        (1568 + 20, 32 + 20)
    );
}

#[test]
fn energy_falls_with_the_precision_at_a_fixed_shape_on_every_profile() {
    for profile in presets() {
        for name in ["fmnist_mlp.toml", "fmnist_cnn.toml"] {
            let totals: Vec<f64> = PRECISIONS
                .iter()
                .map(|&bits| energy_of(&example(name, bits, None), &profile).total)
                .collect();
            for (pair, bits) in totals.windows(2).zip(PRECISIONS.windows(2)) {
                assert!(
                    pair[1] < pair[0],
                    "{name} on {}: E(Q={}) = {} is not below E(Q={}) = {}",
                    profile.name,
                    bits[1],
                    pair[1],
                    bits[0],
                    pair[0]
                );
            }
        }
    }
}

#[test]
fn weight_energy_grows_with_the_weights() {
    let profile = Profile::resolve("moons-dram").unwrap();
    // The same work with more weights (less reuse of each): only N_s changes.
    let layer = LayerWork {
        name: "fc1".into(),
        op: "dense".into(),
        macs: 4096,
        weights: 1024,
        outputs_computed: 64,
        outputs_stored: 64,
        wbits: 4,
        abits_in: 4,
        abits_out: 16,
    };
    let mut previous = 0.0;
    for weights in [1024, 2048, 4096] {
        let work = LayerWork {
            weights,
            ..layer.clone()
        };
        let e_w = estimate(&[work], &profile).totals.e_w;
        assert!(e_w > previous, "E_W = {e_w} with N_s = {weights}");
        previous = e_w;
    }
    // A wider network: more weights in the hidden layers.
    let mut previous = 0.0;
    for width in [64, 128, 256, 512] {
        let network = example("fmnist_mlp.toml", 4, Some(vec![width, width]));
        let e_w = energy_of(&network, &profile).totals.e_w;
        assert!(e_w > previous, "E_W = {e_w} with hidden width {width}");
        previous = e_w;
    }
}

#[test]
fn sixteen_bits_cost_over_ten_times_one_bit_for_the_cnn() {
    for profile in presets() {
        let energy = |bits| energy_of(&example("fmnist_cnn.toml", bits, None), &profile).total;
        let ratio = energy(16) / energy(1);
        println!(
            "fmnist_cnn on {}: E(Q=16) / E(Q=1) = {ratio:.2}",
            profile.name
        );
        if profile.name == "moons-dram" {
            assert!(ratio > 10.0, "E(16)/E(1) = {ratio} on moons-dram");
        }
    }
}

#[test]
fn the_reports_of_the_example_mlp_match_their_snapshots() {
    let args = |format| {
        stdout_of(&[
            "energy",
            "examples/fmnist_mlp.toml",
            "--bits",
            "4",
            "--profile",
            "moons-dram",
            "--format",
            format,
        ])
    };
    insta::assert_snapshot!("mlp_q4_moons_dram_table", args("table"));
    insta::assert_snapshot!("mlp_q4_moons_dram_json", args("json"));
    insta::assert_snapshot!("mlp_q4_moons_dram_csv", args("csv"));
    let default_profile_table = stdout_of(&["energy", "examples/fmnist_mlp.toml", "--bits", "4"]);
    assert_eq!(default_profile_table, args("table"));
}

#[test]
fn the_table_of_the_example_cnn_matches_its_snapshot() {
    let table = stdout_of(&[
        "energy",
        "examples/fmnist_cnn.toml",
        "--bits",
        "2",
        "--profile",
        "horowitz45-pj",
    ]);
    insta::assert_snapshot!("cnn_q2_horowitz45_pj_table", table);
}

#[test]
fn the_json_report_is_the_library_report() {
    let json = stdout_of(&[
        "energy",
        "examples/fmnist_cnn.toml",
        "--bits",
        "1",
        "--format",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let profile = Profile::resolve("moons-dram").unwrap();
    let report = energy_of(&example("fmnist_cnn.toml", 1, None), &profile);
    let total = value["total"].as_f64().unwrap();
    assert!((total - report.total).abs() < 1e-5 * report.total);
    assert_eq!(value["profile"], "moons-dram");
    assert_eq!(value["units"], "16-bit MAC");
    assert_eq!(
        value["layers"].as_array().unwrap().len(),
        report.layers.len()
    );
}

#[test]
fn a_trained_model_file_gives_the_energy_of_its_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlp2.qnn");
    let mut model = Model {
        net: Net::new(&example("fmnist_mlp.toml", 2, None), 1),
        training: TrainingRecord {
            dataset: "fashion-mnist".into(),
            train_images: 0,
            test_images: 0,
            options: TrainOptions::default(),
            history: Vec::new(),
            test_accuracy: 0.0,
        },
    };
    model.save(&path).unwrap();
    let path = path.display().to_string();
    assert_eq!(
        stdout_of(&["energy", &path, "--format", "csv"]),
        stdout_of(&[
            "energy",
            "examples/fmnist_mlp.toml",
            "--bits",
            "2",
            "--format",
            "csv"
        ])
    );
    assert_user_error(
        &qnnc(&["energy", &path, "--bits", "4"]),
        &["--bits", "applies to a spec, not to"],
    );
    assert_user_error(
        &qnnc(&["energy", &path, "--hidden", "64"]),
        &["--hidden", "applies to a spec, not to"],
    );
}

#[test]
fn the_ir_is_priced_as_the_spec_before_and_after_lowering() {
    for name in [
        "fmnist_mlp.toml",
        "fmnist_cnn.toml",
        "tiny_cnn.toml",
        "cifar10_vgg.toml",
    ] {
        for bits in [1u8, 2, 4, 8] {
            let network = example(name, bits, None);
            let from_spec = work_of(&network);
            assert!(!from_spec.is_empty(), "{name}");
            let graph = build::from_network(&network, name).unwrap();
            assert_eq!(work_of_graph(&graph), from_spec, "{name} at {bits} bits");
            // A trained graph, lowered to thresholds or multiply-shift requantization.
            let mut lowered = Net::new(&network, 1).to_graph(name).unwrap();
            passes::run(&mut lowered, name, None).unwrap();
            assert_eq!(
                work_of_graph(&lowered),
                from_spec,
                "{name} lowered at {bits} bits"
            );
        }
    }
}

#[test]
fn an_ir_file_is_priced_as_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let network = example("tiny_cnn.toml", 4, None);
    let mut graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    passes::run(&mut graph, "tiny", None).unwrap();
    let ir = dir.path().join("tiny.json");
    std::fs::write(&ir, qnnc::ir::dump::to_json(&graph)).unwrap();
    assert_eq!(
        stdout_of(&["energy", ir.to_str().unwrap(), "--format", "csv"]),
        stdout_of(&[
            "energy",
            "examples/tiny_cnn.toml",
            "--bits",
            "4",
            "--format",
            "csv"
        ])
    );
}

const VALID_PROFILE: &str = "name = \"mine\"\ndescription = \"test\"\nunits = \"pJ\"\n\
    e_mac16 = 1.0\nbeta = 1.25\ne_local16 = 1.0\ne_main16 = 100.0\nparallel_macs = 64\n";

#[test]
fn a_profile_file_is_read_from_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, VALID_PROFILE).unwrap();
    let path = path.display().to_string();
    let table = stdout_of(&["energy", "examples/fmnist_mlp.toml", "--profile", &path]);
    assert!(
        table.starts_with("energy of one inference on profile mine, in units of pJ\n"),
        "{table}"
    );
}

#[test]
fn bad_profiles_are_refused_with_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "negative.toml",
            VALID_PROFILE.replace("e_main16 = 100.0", "e_main16 = -100.0"),
            "e_main16",
        ),
        (
            "zero.toml",
            VALID_PROFILE.replace("e_mac16 = 1.0", "e_mac16 = 0.0"),
            "e_mac16",
        ),
        (
            "missing.toml",
            VALID_PROFILE.replace("beta = 1.25\n", ""),
            "beta",
        ),
        (
            "no_parallelism.toml",
            VALID_PROFILE.replace("parallel_macs = 64", "parallel_macs = 0"),
            "parallel_macs",
        ),
    ];
    for (name, text, field) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        assert_user_error(
            &qnnc(&["energy", "examples/fmnist_mlp.toml", "--profile", &path]),
            &[&path, &format!(": {field}: ")],
        );
    }
}

#[test]
fn an_unknown_profile_name_lists_the_presets() {
    let mut needles = vec!["no-such-chip", "profile"];
    needles.extend(Profile::preset_names());
    assert_user_error(
        &qnnc(&[
            "energy",
            "examples/fmnist_mlp.toml",
            "--profile",
            "no-such-chip",
        ]),
        &needles,
    );
}

#[test]
fn bad_network_input_is_refused_with_the_file_and_field() {
    assert_user_error(
        &qnnc(&["energy", "examples/fmnist_mlp.toml", "--bits", "0"]),
        &["--bits", "out of range"],
    );
    assert_user_error(
        &qnnc(&["energy", "examples/fmnist_mlp.toml", "--nf", "8"]),
        &["examples/fmnist_mlp.toml", "--nl/--nf"],
    );
    assert_user_error(
        &qnnc(&["energy", "examples/no_such_spec.toml"]),
        &["examples/no_such_spec.toml", "(file)"],
    );
    assert_user_error(
        &qnnc(&["energy", "examples/fmnist_mlp.toml", "--format", "xml"]),
        &["--format", "xml"],
    );
}
