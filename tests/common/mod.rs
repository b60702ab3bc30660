//! Helpers shared by the integration tests: run the `qnnc` binary as a user would and check
//! what it says.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs the binary with `args`.
pub fn qnnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(args)
        .output()
        .expect("qnnc runs")
}

/// The path of a file in `examples/`.
pub fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Standard output of a run that must succeed; its output is shown if it did not.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Asserts a user error: exit code 1, no panic, and one line on standard error containing
/// every `needle`.
pub fn assert_user_error(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// A run of `qnnc sim --allow-edited` that fails: exit code 1, a warning naming `edited` and
/// then one error line holding every needle.
pub fn assert_edited_run_error(output: &Output, edited: &str, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "not a warning and one error: {stderr}");
    assert!(
        lines[0].starts_with("warning:") && lines[0].contains(edited),
        "{stderr}"
    );
    for needle in needles {
        assert!(lines[1].contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// A briefly trained model of `examples/{spec}` at `bits`, in `dir`: enough for activations
/// that vary, which is all bit-exactness and import need.
pub fn train(dir: &std::path::Path, spec: &str, bits: &str) -> String {
    let model = dir
        .join(format!("{}_q{bits}.qnn", spec.trim_end_matches(".toml")))
        .display()
        .to_string();
    ok(qnnc(&[
        "train",
        &example(spec),
        "--bits",
        bits,
        "--epochs",
        "1",
        "--train-limit",
        "600",
        "--test-limit",
        "50",
        "--seed",
        "3",
        "-o",
        &model,
    ]));
    model
}
