//! `qnnc calibrate`: the processing element synthesized by Yosys at each precision pair, the
//! fitted beta, a profile the energy model takes, the same bytes on every run, and bad flags
//! refused with one line.

use crate::common;
use common::{assert_user_error, ok, qnnc};

#[test]
fn calibration_measures_growing_cost_and_writes_a_profile_energy_takes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal");
    let out = out.to_str().unwrap();
    let table = ok(qnnc(&[
        "calibrate",
        "-o",
        out,
        "--bits",
        "1,2,4",
        "--simd",
        "4",
    ]));
    assert!(table.contains("fitted: beta"), "{table}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cal/calibration.json")).unwrap(),
    )
    .unwrap();
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 9);
    let cells = |w: u64, a: u64| {
        points
            .iter()
            .find(|p| p["wbits"] == w && p["abits"] == a)
            .unwrap()["cells"]
            .as_u64()
            .unwrap()
    };
    // More bits on both operands always cost more logic.
    assert!(cells(1, 1) < cells(2, 2) && cells(2, 2) < cells(4, 4));
    let beta = json["fit"]["beta"].as_f64().unwrap();
    assert!((0.5..3.0).contains(&beta), "beta {beta}");
    assert_eq!(json["paper"]["beta"], 1.25);

    // The profile keeps the base profile's energies and takes the fitted beta.
    let profile = dir.path().join("cal/profile.toml");
    let profile = profile.to_str().unwrap();
    let text = std::fs::read_to_string(profile).unwrap();
    assert!(text.contains(&format!("beta = {beta}")), "{text}");
    let calibrated = ok(qnnc(&[
        "energy",
        "examples/fmnist_mlp.toml",
        "--profile",
        profile,
        "--format",
        "json",
    ]));
    let base = ok(qnnc(&[
        "energy",
        "examples/fmnist_mlp.toml",
        "--format",
        "json",
    ]));
    assert_ne!(calibrated, base);

    // The same flags give the same bytes.
    let again = dir.path().join("again");
    ok(qnnc(&[
        "calibrate",
        "-o",
        again.to_str().unwrap(),
        "--bits",
        "1,2,4",
        "--simd",
        "4",
    ]));
    for file in ["calibration.json", "profile.toml"] {
        assert_eq!(
            std::fs::read(dir.path().join("cal").join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn bad_calibration_flags_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal");
    let out = out.to_str().unwrap();
    assert_user_error(
        &qnnc(&["calibrate", "-o", out, "--bits", "0,4"]),
        &["--bits", "0"],
    );
    assert_user_error(
        &qnnc(&["calibrate", "-o", out, "--bits", "4"]),
        &["--bits", "two"],
    );
    assert_user_error(
        &qnnc(&["calibrate", "-o", out, "--simd", "6"]),
        &["--simd", "power of two"],
    );
    assert_user_error(
        &qnnc(&["calibrate", "-o", out, "--profile", "nope"]),
        &["nope"],
    );
    assert!(!dir.path().join("cal").exists());
}
