//! Files, outputs and simulations a hostile or unlucky user hands qnnc: values a simulator
//! reports that do not fit the run, memory images that never let the design answer, closed
//! pipes and full disks on standard output, outputs that name devices or FIFOs, staging
//! folders after a failed compile, inputs that never end, and files a build folder does not
//! list. Each gets one line and exit code 1 (a closed pipe: a quiet exit 0), and nothing
//! outside qnnc's own outputs changes. The simulations use a fake simulator executable or
//! Icarus Verilog on a tiny network, so the file runs in seconds.

use crate::common;
use common::{assert_edited_run_error, assert_user_error, example, ok, qnnc};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use qnnc::ir::{dump, passes};
use qnnc::spec::examples::example_network;
use qnnc::spec::Precision;
use qnnc::train::Net;

const TINY: (&str, &str) = ("tiny_cnn", include_str!("../../examples/tiny_cnn.toml"));

/// A build folder of the tiny CNN (initialised weights, 4 bits) on a 2x4 array.
fn tiny_build(dir: &Path, name: &str) -> PathBuf {
    let network = example_network(TINY, Precision::Bits(4));
    let mut graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    passes::run(&mut graph, "tiny", None).unwrap();
    let ir = dir.join(format!("{name}.json"));
    std::fs::write(&ir, dump::to_json(&graph)).unwrap();
    let build = dir.join(name);
    ok(qnnc(&[
        "compile",
        ir.to_str().unwrap(),
        "--pe",
        "2",
        "--simd",
        "4",
        "-o",
        build.to_str().unwrap(),
    ]));
    build
}

fn manifest(build: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(build.join("manifest.json")).unwrap()).unwrap()
}

/// Replaces a build file and updates its digest in the manifest, as a faulty generator (or
/// someone covering their tracks) would leave it.
fn replace_with_digest(build: &Path, file: &str, text: &str) {
    std::fs::write(build.join(file), text).unwrap();
    let mut manifest = manifest(build);
    manifest["files"][file] = serde_json::json!(qnnc::codegen::digest(text));
    std::fs::write(build.join("manifest.json"), manifest.to_string()).unwrap();
}

/// Puts `script` where `qnnc sim` finds its cached Verilator executable, with the stamp that
/// makes the cache look fresh, so that `sim` runs it instead of building.
fn plant_simulator(build: &Path, script: &str) {
    let files = manifest(build)["files"].clone();
    let mut stamp = String::new();
    let rtl = files
        .as_object()
        .unwrap()
        .keys()
        .filter(|f| f.starts_with("rtl/") && f.ends_with(".v"));
    for file in std::iter::once(&"tb/testbench.v".to_string()).chain(rtl) {
        stamp += &format!("{file} {}\n", files[file].as_str().unwrap());
    }
    let obj_dir = build.join("obj_dir");
    std::fs::create_dir_all(&obj_dir).unwrap();
    std::fs::write(obj_dir.join("qnnc.stamp"), stamp).unwrap();
    let executable = obj_dir.join("Vtb");
    std::fs::write(&executable, format!("#!/bin/sh\n{script}")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&executable, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs qnnc, failing the test instead of hanging if it runs past `limit`.
fn qnnc_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("qnnc {args:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Runs qnnc with standard output going to `stdout`.
fn qnnc_into(args: &[&str], stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".qnnc-build-"))
        .collect()
}

fn is_char_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .unwrap()
        .file_type()
        .is_char_device()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_fifo()
}

// Case 1: every value a simulator reports is checked before it is used.
#[test]
fn simulator_values_outside_the_run_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let build = tiny_build(dir.path(), "build");
    let out = build.to_str().unwrap();
    for (report, needle) in [
        (
            "images 3\nmismatches 1\nfirst_mismatch 99\ncycles 10\n",
            "first_mismatch 99",
        ),
        (
            "images 3\nmismatches 0\nfirst_mismatch -1\ncycles -10\n",
            "cycles -10",
        ),
        (
            "images 3\nmismatches 7\nfirst_mismatch 0\ncycles 10\n",
            "mismatches 7",
        ),
        (
            "images 3\nmismatches 0\nfirst_mismatch -1\ncycles 10\nlayer 9 cycles 1\n",
            "layer 9",
        ),
    ] {
        let script = report
            .lines()
            .map(|l| format!("echo '{l}'\n"))
            .collect::<String>();
        plant_simulator(&build, &script);
        let output = qnnc(&["sim", out, "--images", "3"]);
        assert_user_error(&output, &[out, needle]);
    }
}

// Case 2: a corrupt memory image whose digest was recomputed stops at the cycle budget.
#[test]
fn a_corrupt_descriptor_image_stops_at_the_cycle_budget() {
    let dir = tempfile::tempdir().unwrap();
    let build = tiny_build(dir.path(), "build");
    let text = std::fs::read_to_string(build.join("mem/layers.hex")).unwrap();
    let corrupt: String = text
        .lines()
        .map(|l| {
            if l.starts_with("//") {
                l.to_string()
            } else {
                "f".repeat(l.len())
            }
        })
        .map(|l| l + "\n")
        .collect();
    replace_with_digest(&build, "mem/layers.hex", &corrupt);
    let predicted = manifest(&build)["predicted_cycles"].as_u64().unwrap();
    let budget = qnnc::sim::cycle_budget(predicted, 2);
    // The edit is found although the digest was recomputed; run anyway, it stops in time.
    let out = build.to_str().unwrap();
    let args = ["sim", out, "--images", "2", "--simulator", "icarus"];
    assert_user_error(&qnnc(&args), &["stale build", "mem/layers.hex"]);
    let start = Instant::now();
    let output = qnnc_within(
        &[&args[..], &["--allow-edited"]].concat(),
        Duration::from_secs(300),
    );
    assert_edited_run_error(
        &output,
        "mem/layers.hex",
        &[&format!(
            "simulation exceeded its cycle budget of {budget} cycles"
        )],
    );
    assert!(start.elapsed() < Duration::from_secs(120));
}

// Case 8: standard output that fails is an error; one that closes is a quiet end.
#[test]
fn a_full_disk_on_standard_output_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let build = tiny_build(dir.path(), "build");
    let ir = dir.path().join("build.json");
    let spec = example("tiny_cnn.toml");
    for args in [
        vec!["eval", ir.to_str().unwrap(), "--test-limit", "5"],
        vec!["inspect", &spec],
        vec!["inspect", &spec, "--format", "json"],
        vec!["energy", &spec, "--format", "csv"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = qnnc_into(&args, Stdio::from(full));
        assert_user_error(&output, &["standard output: No space left on device"]);
    }
    assert!(build.join("manifest.json").is_file());
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let build = tiny_build(dir.path(), "build");
    plant_simulator(
        &build,
        "echo 'images 2'\necho 'mismatches 0'\necho 'first_mismatch -1'\necho 'cycles 14424'\n",
    );
    let spec = example("tiny_cnn.toml");
    let ir = dir.path().join("build.json");
    let ir = ir.to_str().unwrap();
    let onnx = format!(
        "{}/tests/fixtures/qonnx/mlp_q4.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = |name: &str| dir.path().join(name).display().to_string();
    let (compiled, exported, imported) = (out("compiled"), out("x.onnx"), out("x.json"));
    let (trained, swept, calibrated) = (out("t.qnn"), out("swept"), out("calibrated"));
    for args in [
        vec![
            "train",
            &spec,
            "-o",
            &trained,
            "--epochs",
            "1",
            "--train-limit",
            "100",
            "--test-limit",
            "50",
        ],
        vec!["explore", "--quick", "-o", &swept],
        vec!["bench", "golden", "--test-limit", "20", "--repeat", "1"],
        vec![
            "calibrate",
            "-o",
            &calibrated,
            "--bits",
            "1,2",
            "--simd",
            "2",
        ],
        vec!["inspect", &spec, "--format", "json"],
        vec!["inspect", "--passes"],
        vec!["energy", &spec],
        vec!["eval", ir, "--test-limit", "5"],
        vec!["compile", ir, "-o", &compiled],
        vec!["export", &onnx, "-o", &exported],
        vec!["import", &onnx, "-o", &imported],
        vec!["sim", build.to_str().unwrap(), "--images", "2"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_qnnc"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before anything is written.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

// Case 9: an output path is a regular file (or a build folder for compile), or refused.
#[test]
fn outputs_at_devices_fifos_and_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example("tiny_cnn.toml");
    let onnx = format!(
        "{}/tests/fixtures/qonnx/mlp_q4.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let link = dir.path().join("link-to-null");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let targets = [
        ("/dev/null".to_string(), "character device"),
        (fifo.display().to_string(), "FIFO"),
        (link.display().to_string(), "character device"),
        (folder.display().to_string(), "folder"),
    ];
    for (target, kind) in &targets {
        let train = qnnc_within(
            &[
                "train",
                &spec,
                "--epochs",
                "1",
                "--train-limit",
                "100",
                "-o",
                target,
            ],
            Duration::from_secs(60),
        );
        assert_user_error(&train, &[target, kind]);
        let import = qnnc_within(&["import", &onnx, "-o", target], Duration::from_secs(60));
        assert_user_error(&import, &[target, kind]);
        let export = qnnc_within(&["export", &onnx, "-o", target], Duration::from_secs(60));
        assert_user_error(&export, &[target, kind]);
    }
    let ir = dir.path().join("graph.json");
    let network = example_network(TINY, Precision::Bits(4));
    let graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    std::fs::write(&ir, dump::to_json(&graph)).unwrap();
    for target in ["/dev/null", fifo.to_str().unwrap(), link.to_str().unwrap()] {
        let compile = qnnc(&["compile", ir.to_str().unwrap(), "-o", target]);
        assert_user_error(&compile, &[target, "build folder"]);
        let explore = qnnc(&["explore", "--quick", "-o", target]);
        assert_user_error(&explore, &[target, "not a folder"]);
        let emit = qnnc(&[
            "explore",
            "--quick",
            "-o",
            dir.path().join("explore").to_str().unwrap(),
            "--emit-best",
            target,
            "--target",
            "10",
        ]);
        assert_user_error(&emit, &[target, "build folder"]);
    }
    assert!(!dir.path().join("explore").exists(), "nothing was trained");
    assert!(is_char_device("/dev/null"), "/dev/null was replaced");
    assert!(is_fifo(&fifo), "the FIFO was replaced");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

// Case 10: a compile that cannot put its build in place leaves no staging folder.
#[test]
fn failed_compiles_leave_no_staging_folder() {
    let dir = tempfile::tempdir().unwrap();
    let network = example_network(TINY, Precision::Bits(4));
    let graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    let ir = dir.path().join("graph.json");
    std::fs::write(&ir, dump::to_json(&graph)).unwrap();
    let ir = ir.to_str().unwrap();
    let parent = dir.path().join("parent");
    std::fs::create_dir(&parent).unwrap();
    let existing = parent.join("bb");
    ok(qnnc(&["compile", ir, "-o", existing.to_str().unwrap()]));
    let long = parent.join("x".repeat(300));
    for target in [
        format!("{}/.", existing.display()),
        format!("{}/..", existing.display()),
        format!("{}/new/.", parent.display()),
        long.display().to_string(),
    ] {
        let output = qnnc(&["compile", ir, "-o", &target]);
        assert_user_error(&output, &[&target]);
        assert_eq!(leftovers(&parent), Vec::<String>::new(), "{target}");
        assert_eq!(leftovers(&existing), Vec::<String>::new(), "{target}");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "{target}");
    }
    // The earlier build is intact.
    assert!(existing.join("manifest.json").is_file());
    ok(qnnc(&["compile", ir, "-o", existing.to_str().unwrap()]));
    assert_eq!(leftovers(&parent), Vec::<String>::new());
}

// Case 13: inputs are regular files of bounded size; a build folder is read only through its
// manifest, never through a link.
#[test]
fn endless_and_special_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example("tiny_cnn.toml");
    let fifo = dir.path().join("model.qnn");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let limit = Duration::from_secs(30);
    assert_user_error(
        &qnnc_within(&["eval", "/dev/zero"], limit),
        &["/dev/zero", "character device"],
    );
    assert_user_error(
        &qnnc_within(&["energy", &spec, "--profile", "/dev/zero"], limit),
        &["/dev/zero", "character device"],
    );
    assert_user_error(&qnnc_within(&["eval", fifo], limit), &[fifo, "FIFO"]);
    assert_user_error(
        &qnnc_within(&["inspect", "/dev/zero"], limit),
        &["/dev/zero", "character device"],
    );
    assert_user_error(
        &qnnc_within(&["explore", "/dev/zero"], limit),
        &["/dev/zero", "character device"],
    );
    let large = dir.path().join("large.toml");
    let file = std::fs::File::create(&large).unwrap();
    file.set_len(qnnc::input::CONFIG_FILE.bytes + 1).unwrap();
    assert_user_error(
        &qnnc_within(&["inspect", large.to_str().unwrap()], limit),
        &["large.toml", "larger than 16 MiB"],
    );
    // A data set file past its limit (sparse: no disk is used).
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let images = data.join("t10k-images-idx3-ubyte");
    let file = std::fs::File::create(&images).unwrap();
    file.set_len(qnnc::input::DATA_FILE.bytes + 1).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), [0u8; 8]).unwrap();
    let ir = dir.path().join("graph.json");
    let network = example_network(TINY, Precision::Bits(4));
    let graph = Net::new(&network, 1).to_graph("tiny").unwrap();
    std::fs::write(&ir, dump::to_json(&graph)).unwrap();
    assert_user_error(
        &qnnc_within(
            &[
                "eval",
                ir.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
            ],
            limit,
        ),
        &["t10k-images-idx3-ubyte", "larger than 1 GiB"],
    );
}

#[test]
fn build_folders_are_read_only_through_their_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let build = tiny_build(dir.path(), "build");
    let out = build.to_str().unwrap();
    // A file that is not the build's is never read nor compiled, even one that never ends.
    std::os::unix::fs::symlink("/dev/zero", build.join("rtl/zzz.v")).unwrap();
    let output = qnnc_within(
        &["sim", out, "--images", "1", "--simulator", "icarus"],
        Duration::from_secs(300),
    );
    ok(output);
    std::fs::remove_file(build.join("rtl/zzz.v")).unwrap();

    // A listed file that became a link is refused, even to an identical copy.
    let top = build.join("rtl/tiny_cnn_top.v");
    let copy = dir.path().join("copy.v");
    std::fs::rename(&top, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &top).unwrap();
    assert_user_error(
        &qnnc_within(&["sim", out, "--images", "1"], Duration::from_secs(60)),
        &[out, "rtl/tiny_cnn_top.v", "symbolic link"],
    );
    std::fs::remove_file(&top).unwrap();
    std::fs::rename(&copy, &top).unwrap();

    // A manifest that lists a file outside the folder is refused before reading it.
    let mut manifest = manifest(&build);
    manifest["files"]["../outside.v"] = serde_json::json!("0");
    std::fs::write(build.join("manifest.json"), manifest.to_string()).unwrap();
    assert_user_error(
        &qnnc_within(&["sim", out, "--images", "1"], Duration::from_secs(60)),
        &[out, "../outside.v", "not a plain relative path"],
    );
}
