//! Measured against modelled energy: `qnnc sim --activity --calibration` prices the counted
//! activity exactly as stated (cells of the lane, toggles, post-processing, memory bits at
//! e_local16/16) beside the model at p = PE x SIMD; `qnnc calibrate --compare` tabulates and
//! plots several reports; `qnnc explore --reprice` prices a finished sweep again and agrees
//! with `qnnc energy`; bad calibration files and results files are refused with one line.
//! The simulation needs verilator and Fashion-MNIST (`make test` installs them); fails without.

use crate::common;
use common::{assert_user_error, example, ok, qnnc};

use std::path::Path;

use qnnc::ir::{dump, passes};
use qnnc::spec::examples::example_network;
use qnnc::spec::Precision;
use qnnc::train::Net;

const TINY: (&str, &str) = ("tiny_cnn", include_str!("../../examples/tiny_cnn.toml"));

/// A calibration as `qnnc calibrate` writes it, with made-up cells at 4 x 8 and 16 x 16 bits
/// on 4 lanes.
fn calibration(version: u32) -> String {
    format!(
        r#"{{
  "format": "qnnc-calibration",
  "version": {version},
  "target": "generic",
  "simd": 4,
  "adder_stages": 1,
  "yosys": "made by hand",
  "points": [
    {{ "wbits": 4, "abits": 8, "accumulator_bits": 24, "luts": 300, "carries": 20, "flip_flops": 80, "dsps": 0, "cells": 400, "cells_per_mac": 100.0 }},
    {{ "wbits": 16, "abits": 16, "accumulator_bits": 42, "luts": 3600, "carries": 0, "flip_flops": 400, "dsps": 0, "cells": 4000, "cells_per_mac": 1000.0 }}
  ],
  "fit": {{ "beta": 1.5, "cells_per_mac16": 990.0, "rms_log_error": 0.1, "max_relative_error": 0.2 }},
  "paper": {{ "beta": 1.25, "cells_per_mac16": 900.0, "rms_log_error": 0.2, "max_relative_error": 0.3 }}
}}
"#
    )
}

/// A profile with round numbers, at p = 32 (the 4 x 8 array below).
const PROFILE: &str = r#"
name = "round"
description = "test"
units = "u"
e_mac16 = 2.0
beta = 1.25
e_local16 = 4.0
e_main16 = 80.0
parallel_macs = 32
"#;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn the_estimate_is_the_counts_priced_as_stated_and_the_model_is_qnnc_energys() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("cal.json"), calibration(1)).unwrap();
    std::fs::write(path("round.toml"), PROFILE).unwrap();
    let network = example_network(TINY, Precision::Bits(4));
    let mut graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    passes::run(&mut graph, "tiny", None).unwrap();
    std::fs::write(path("tiny.json"), dump::to_json(&graph)).unwrap();
    ok(qnnc(&[
        "compile",
        &path("tiny.json"),
        "--pe",
        "4",
        "--simd",
        "8",
        "-o",
        &path("build"),
    ]));
    let (build, cal) = (path("build"), path("cal.json"));
    let run = |extra: &[&str]| -> serde_json::Value {
        let args = [
            &[
                "sim",
                &build,
                "--images",
                "2",
                "--activity",
                "--calibration",
                &cal,
                "--format",
                "json",
            ][..],
            extra,
        ]
        .concat();
        serde_json::from_str(&ok(qnnc(&args))).unwrap()
    };
    let report = run(&["--profile", &path("round.toml")]);
    let measured = &report["measured_energy"];
    assert_eq!(
        (&measured["lane_wbits"], &measured["lane_ebits"]),
        (&4.into(), &8.into())
    );
    let profiles = measured["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 1);
    let priced = &profiles[0];
    let f = &priced["pricing"];
    let number = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("{v}"));
    // The stated figures: a 16x16 MAC is the synthesized one's 1000 cells, worth e_mac16 = 2;
    // a lane at 4 x 8 bits has (300 + 20) / 4 combinational cells and 400 / 4 in all; a
    // memory bit costs e_local16 / 16.
    assert_eq!(number(&f["cells_per_mac16"]), 1000.0);
    assert!(close(number(&f["cell_energy"]), 2.0 / 1000.0));
    assert_eq!(number(&f["lane_cells"]), 80.0);
    assert_eq!(number(&f["mac_cells"]), 100.0);
    assert_eq!(number(&f["memory_bit_energy"]), 0.25);
    assert_eq!(f["parallel_macs"], 32);

    // The model's terms are those of `qnnc energy` on the same IR and profile (p = 32 there).
    let energy: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
        "energy",
        &path("tiny.json"),
        "--profile",
        &path("round.toml"),
        "--format",
        "json",
    ])))
    .unwrap();
    let activity = report["activity"]["layers"].as_array().unwrap();
    let layers = priced["layers"].as_array().unwrap();
    assert_eq!(layers.len(), activity.len());
    assert_eq!(layers.len(), energy["layers"].as_array().unwrap().len());
    let (mut measured_total, mut model_total) = (0.0, 0.0);
    for ((layer, counted), modelled) in layers
        .iter()
        .zip(activity)
        .zip(energy["layers"].as_array().unwrap())
    {
        let at = layer["name"].as_str().unwrap();
        assert_eq!(layer["name"], counted["name"]);
        let bits: u64 = qnnc::sim::activity::COUNTERS[..qnnc::sim::activity::ACCESS_COUNTERS]
            .iter()
            .map(|m| counted[m]["bits"].as_u64().unwrap())
            .sum();
        assert!(bits > 0, "{at}");
        assert_eq!(layer["memory_bits"].as_u64(), Some(bits), "{at}");
        let toggles = number(&counted["weight_toggles"])
            + number(&counted["activation_toggles"])
            + number(&counted["accumulator_toggles"]);
        assert!(close(number(&layer["toggles"]), toggles), "{at}");
        let lane_macs = counted["lane_macs"].as_u64().unwrap() as f64;
        let outputs = counted["outputs_computed"].as_u64().unwrap() as f64;
        let cell = 2.0 / 1000.0;
        let expected = lane_macs * 80.0 * cell
            + toggles * cell
            + 3.0 * outputs * 100.0 * cell
            + bits as f64 * 0.25;
        assert!(close(number(&layer["measured"]), expected), "{at}: {layer}");
        assert!(
            close(number(&layer["e_memory"]), bits as f64 * 0.25),
            "{at}"
        );
        for term in ["e_c", "e_w", "e_a"] {
            assert!(
                close(number(&layer["model"][term]), number(&modelled[term])),
                "{at} {term}"
            );
        }
        assert!(close(
            number(&layer["ratio"]),
            expected / number(&modelled["e_layer"])
        ));
        measured_total += expected;
        model_total += number(&modelled["e_layer"]);
    }
    assert!(close(number(&priced["measured"]), measured_total));
    assert!(close(number(&priced["model"]), model_total));
    assert!(close(number(&priced["model"]), number(&energy["total"])));

    // Without --profile: moons-dram, moons-sram (no profile.toml beside the calibration).
    let default = run(&[]);
    let names: Vec<&str> = default["measured_energy"]["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pricing"]["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["moons-dram", "moons-sram"]);
    // The text report states the figures.
    let text = ok(qnnc(&[
        "sim",
        &path("build"),
        "--images",
        "1",
        "--activity",
        "--calibration",
        &path("cal.json"),
    ]));
    assert!(text.contains("every memory bit e_local16/16"), "{text}");
    assert!(
        text.contains("lanes of 4-bit weights and 8-bit operands"),
        "{text}"
    );

    // Two reports compared: a table row per layer and profile, and a plot with a point each.
    std::fs::write(path("a.json"), serde_json::to_string(&report).unwrap()).unwrap();
    std::fs::write(path("b.json"), serde_json::to_string(&default).unwrap()).unwrap();
    ok(qnnc(&[
        "calibrate",
        "-o",
        &path("compare"),
        "--compare",
        &path("a.json"),
        &path("b.json"),
    ]));
    let markdown = std::fs::read_to_string(path("compare/model_vs_measured.md")).unwrap();
    let rows = markdown
        .lines()
        .filter(|l| l.starts_with("| build | "))
        .count();
    // Energy rows (layers x profiles) and totals (profiles), over both reports.
    assert_eq!(rows, activity.len() * 5 + 5, "{markdown}");
    let svg = std::fs::read_to_string(path("compare/plots/model_vs_measured.svg")).unwrap();
    assert!(
        svg.contains("measured = model") && svg.contains("moons-sram"),
        "{svg}"
    );

    // A calibration without the lanes of the build is refused before anything is simulated.
    let other = calibration(1).replace("\"wbits\": 4, \"abits\": 8", "\"wbits\": 2, \"abits\": 2");
    std::fs::write(path("other.json"), other).unwrap();
    let output = qnnc(&[
        "sim",
        &path("build"),
        "--activity",
        "--calibration",
        &path("other.json"),
    ]);
    assert_user_error(
        &output,
        &[
            "--calibration",
            "other.json",
            "4-bit weights and 8-bit operands",
        ],
    );
}

#[test]
fn a_malformed_or_foreign_calibration_file_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never").display().to_string();
    let good = calibration(1);
    for (name, text, needles) in [
        (
            "garbage.json",
            "{ not json".to_string(),
            vec!["garbage.json", "not JSON"],
        ),
        (
            "v2.json",
            calibration(2),
            vec!["v2.json", "version", "2 is not version 1"],
        ),
        (
            "other.json",
            good.replace("qnnc-calibration", "qnnc-explore"),
            vec!["other.json", "format", "not a qnnc-calibration file"],
        ),
        (
            "short.json",
            good.replace("\"simd\": 4,", ""),
            vec!["short.json", "simd"],
        ),
        (
            "cells.json",
            good.replace("\"cells\": 400", "\"cells\": 7"),
            vec!["cells.json", "points[0].cells"],
        ),
        (
            "fit.json",
            good.replace("\"cells_per_mac16\": 990.0", "\"cells_per_mac16\": -1.0"),
            vec!["fit.json", "fit"],
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let output = qnnc(&[
            "sim",
            &never,
            "--activity",
            "--calibration",
            file.to_str().unwrap(),
        ]);
        assert_user_error(&output, &needles);
    }
    // A calibration needs the counts it prices.
    let file = dir.path().join("v2.json").display().to_string();
    let output = qnnc(&["sim", &never, "--calibration", &file]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!Path::new(&never).exists());
    // A report without a measured energy cannot be compared.
    std::fs::write(dir.path().join("plain.json"), "{\"network\": \"n\"}").unwrap();
    let output = qnnc(&[
        "calibrate",
        "-o",
        dir.path().join("out").to_str().unwrap(),
        "--compare",
        dir.path().join("plain.json").to_str().unwrap(),
    ]);
    assert_user_error(
        &output,
        &["plain.json", "qnnc sim --activity --calibration"],
    );
    assert!(!dir.path().join("out").exists());
}

/// A sweep of the example MLP at two precisions and one width, and a results file for it with
/// made-up accuracies and wrong energies.
fn sweep(dir: &Path) -> (String, String) {
    let sweep = dir.join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "name = \"small\"\ntargets = [80.0]\nprofiles = [\"moons-dram\"]\n[mlp]\nspec = \"{}\"\nbits = [1, 4]\nwidths = [64]\ndepths = [1]\nepochs = 1\n",
            example("fmnist_mlp.toml")
        ),
    )
    .unwrap();
    let point = |id: &str, bits: u32, accuracy: f64| {
        format!(
            r#"{{"id": "{id}", "family": "mlp", "bits": {bits}, "width": 64, "depth": 1,
               "float_accuracy": {accuracy}, "integer_accuracy": {accuracy},
               "energy": {{"moons-dram": 1.0}}, "units": {{"moons-dram": "16-bit MAC"}},
               "layers": {{"moons-dram": []}}, "weights": 1, "macs": 1, "model_bits": 1}}"#
        )
    };
    let results = dir.join("results.json");
    std::fs::write(
        &results,
        format!(
            "[{}, {}]",
            point("mlp-q1-d1-w64", 1, 81.5),
            point("mlp-q4-d1-w64", 4, 84.25)
        ),
    )
    .unwrap();
    (sweep.display().to_string(), results.display().to_string())
}

#[test]
fn a_finished_sweep_is_repriced_as_qnnc_energy_prices_its_networks() {
    let dir = tempfile::tempdir().unwrap();
    let (sweep, results) = sweep(dir.path());
    let profile = dir.path().join("round.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let profile = profile.display().to_string();
    let out = dir.path().join("out");
    let text = ok(qnnc(&[
        "explore",
        &sweep,
        "-o",
        out.to_str().unwrap(),
        "--reprice",
        &results,
        "--profile",
        "moons-sram",
        "--profile",
        &profile,
    ]));
    assert!(text.contains("re-priced 2 points"), "{text}");
    let repriced: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let points = repriced.as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (point, bits, accuracy) in [(&points[0], "1", 81.5), (&points[1], "4", 84.25)] {
        assert_eq!(point["integer_accuracy"], accuracy);
        for name in ["moons-sram", profile.as_str()] {
            let energy: serde_json::Value = serde_json::from_str(&ok(qnnc(&[
                "energy",
                &example("fmnist_mlp.toml"),
                "--bits",
                bits,
                "--hidden",
                "64",
                "--profile",
                name,
                "--format",
                "json",
            ])))
            .unwrap();
            let total = energy["total"].as_f64().unwrap();
            let priced = point["energy"][name].as_f64().unwrap();
            assert!(close(priced, total), "{name} {bits}: {priced} vs {total}");
            assert_eq!(
                point["layers"][name].as_array().unwrap().len(),
                energy["layers"].as_array().unwrap().len()
            );
        }
        // The profile the results were priced under is gone.
        assert!(point["energy"]["moons-dram"].is_null());
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("--reprice"), "{report}");
    assert!(out.join("plots/error_vs_energy_moons-sram.svg").is_file());

    // Results that miss a point of the grid, or hold one it does not have, are refused.
    let one_point = std::fs::read_to_string(&results).unwrap();
    let cut = one_point.find(", {\"id\": \"mlp-q4").unwrap();
    std::fs::write(&results, format!("{}]", &one_point[..cut])).unwrap();
    let out2 = dir.path().join("out2");
    let reprice = || {
        qnnc(&[
            "explore",
            &sweep,
            "-o",
            out2.to_str().unwrap(),
            "--reprice",
            &results,
        ])
    };
    let output = reprice();
    assert_user_error(&output, &["results.json", "mlp-q4-d1-w64", "0 times"]);
    std::fs::write(
        &results,
        one_point.replace("mlp-q4-d1-w64", "mlp-q8-d1-w64"),
    )
    .unwrap();
    let output = reprice();
    assert_user_error(
        &output,
        &["results.json", "mlp-q8-d1-w64", "not in the grid"],
    );
    std::fs::write(&results, "[{").unwrap();
    let output = reprice();
    assert_user_error(
        &output,
        &["results.json", "not the results.json of qnnc explore"],
    );
    assert!(!out2.exists());
}
