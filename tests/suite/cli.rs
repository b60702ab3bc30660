//! The `qnnc` binary as a user runs it: bad input of every kind gives one line naming the file
//! and the field, exit code 1, no panic and no output file; good input round-trips.

use crate::common;
use common::{assert_user_error, example, qnnc};

use std::path::{Path, PathBuf};

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// Trains into `name` and fails the test if that fails, to check what follows.
    fn train(&self, spec: &str, name: &str, extra: &[&str]) -> String {
        let out = self.path(name).display().to_string();
        let mut args = vec![
            "train",
            spec,
            "-o",
            &out,
            "--epochs",
            "1",
            "--train-limit",
            "200",
            "--test-limit",
            "100",
        ];
        args.extend(extra);
        let output = qnnc(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    }
}

fn train_refused(ws: &Workspace, spec: &str, extra: &[&str], needles: &[&str]) {
    let out = ws.path("refused.qnn");
    let out_text = out.display().to_string();
    let mut args = vec![
        "train",
        spec,
        "-o",
        &out_text,
        "--epochs",
        "1",
        "--train-limit",
        "100",
        "--test-limit",
        "50",
    ];
    args.extend(extra);
    assert_user_error(&qnnc(&args), needles);
    assert!(!out.exists(), "a refused run left {out_text}");
}

const HEADER: &str =
    "name = \"t\"\ninput = { height = 28, width = 28, channels = 1 }\nclasses = 10\n";

#[test]
fn bad_specs_are_refused_with_the_file_and_field() {
    let ws = Workspace::new();
    let spec = ws.write(
        "kind.toml",
        format!("{HEADER}[[layers]]\nkind = \"conv3d\"\n").as_bytes(),
    );
    train_refused(&ws, &spec, &[], &["kind.toml", "layers[0].kind", "conv3d"]);
    for bits in ["0", "17"] {
        let spec = ws.write(
            "bits.toml",
            format!("{HEADER}[precision]\nweights = {bits}\nactivations = 2\n[template]\nkind = \"mlp\"\nhidden = [8]\n").as_bytes(),
        );
        train_refused(
            &ws,
            &spec,
            &[],
            &["bits.toml", "precision.weights", "out of range"],
        );
        train_refused(
            &ws,
            &example("fmnist_mlp.toml"),
            &["--bits", bits],
            &["--bits", "out of range"],
        );
    }
    let spec = ws.write(
        "zero.toml",
        format!("{HEADER}[template]\nkind = \"blocks\"\nblocks = [{{ nl = 0, nf = 8 }}]\n")
            .as_bytes(),
    );
    train_refused(
        &ws,
        &spec,
        &[],
        &["zero.toml", "template.blocks[0].nl", "at least 1"],
    );
    let spec = ws.write(
        "negative.toml",
        format!("{HEADER}[template]\nkind = \"mlp\"\nhidden = [-4]\n").as_bytes(),
    );
    train_refused(&ws, &spec, &[], &["negative.toml", "template", "-4"]);
    let spec = ws.write(
        "fit.toml",
        format!("{HEADER}[[layers]]\nkind = \"conv2d\"\nfilters = 4\nkernel = 31\n[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nunits = 10\n").as_bytes(),
    );
    train_refused(
        &ws,
        &spec,
        &[],
        &["fit.toml", "layers[0] (conv1)", "does not fit"],
    );
    train_refused(
        &ws,
        &example("fmnist_cnn.toml"),
        &["--nf", "1,2"],
        &["--nf", "3 blocks"],
    );
    let spec = ws.write("broken.json", b"{\"name\": \"t\", ");
    train_refused(&ws, &spec, &[], &["broken.json"]);
    train_refused(
        &ws,
        &ws.path("missing.toml").display().to_string(),
        &[],
        &["missing.toml"],
    );
}

#[test]
fn networks_larger_than_memory_are_refused_before_allocating() {
    let ws = Workspace::new();
    train_refused(
        &ws,
        &example("fmnist_mlp.toml"),
        &["--hidden", "200000000,200000000"],
        &["fmnist_mlp.toml", "--hidden", "limit"],
    );
    train_refused(
        &ws,
        &example("fmnist_cnn.toml"),
        &["--nf", "1000000"],
        &["fmnist_cnn.toml", "limit"],
    );
}

fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(payload);
    bytes
}

/// A folder of IDX files holding `n` blank training and test images, with `edit` applied.
fn idx_folder(
    ws: &Workspace,
    folder: &str,
    n: u32,
    edit: impl Fn(&str, Vec<u8>) -> Vec<u8>,
) -> String {
    for split in ["train", "t10k"] {
        let images = idx(0x803, &[n, 28, 28], &vec![0u8; n as usize * 784]);
        let labels = idx(
            0x801,
            &[n],
            &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>(),
        );
        let images_name = format!("{split}-images-idx3-ubyte");
        let labels_name = format!("{split}-labels-idx1-ubyte");
        ws.write(
            &format!("{folder}/{images_name}"),
            &edit(&images_name, images),
        );
        ws.write(
            &format!("{folder}/{labels_name}"),
            &edit(&labels_name, labels),
        );
    }
    ws.path(folder).display().to_string()
}

#[test]
fn bad_data_files_are_refused() {
    let ws = Workspace::new();
    let mlp = example("fmnist_mlp.toml");
    let good = idx_folder(&ws, "good", 20, |_, b| b);
    let out = ws.train(&mlp, "good.qnn", &["--data", &good]);
    assert!(Path::new(&out).exists());

    let truncated = idx_folder(&ws, "truncated", 20, |name, mut b| {
        if name == "train-images-idx3-ubyte" {
            b.truncate(b.len() - 100);
        }
        b
    });
    train_refused(
        &ws,
        &mlp,
        &["--data", &truncated],
        &["train-images-idx3-ubyte", "truncated"],
    );

    let magic = idx_folder(&ws, "magic", 20, |name, mut b| {
        if name == "t10k-images-idx3-ubyte" {
            b[3] = 0x99;
        }
        b
    });
    train_refused(
        &ws,
        &mlp,
        &["--data", &magic],
        &["t10k-images-idx3-ubyte", "magic"],
    );

    let counts = idx_folder(&ws, "counts", 20, |name, b| {
        if name == "train-labels-idx1-ubyte" {
            idx(0x801, &[19], &[1u8; 19])
        } else {
            b
        }
    });
    train_refused(
        &ws,
        &mlp,
        &["--data", &counts],
        &["train-labels-idx1-ubyte", "19", "20"],
    );

    let missing = ws.path("no-such-folder").display().to_string();
    train_refused(
        &ws,
        &mlp,
        &["--data", &missing],
        &["no-such-folder", "apt-get install dataset-fashion-mnist"],
    );
}

#[test]
fn eval_reproduces_the_training_accuracy_and_json_has_it() {
    let ws = Workspace::new();
    let model = ws.train(&example("fmnist_mlp.toml"), "mlp4.qnn", &["--bits", "4"]);
    let json: serde_json::Value = serde_json::from_slice(
        &qnnc(&[
            "train",
            &example("fmnist_mlp.toml"),
            "-o",
            &ws.path("again.qnn").display().to_string(),
            "--epochs",
            "1",
            "--train-limit",
            "200",
            "--test-limit",
            "100",
            "--bits",
            "4",
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    // On the images the training evaluated on: eval uses the whole set unless told.
    let output = qnnc(&["eval", &model, "--test-limit", "100", "--format", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let eval: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(eval["accuracy"], json["accuracy"]);
    assert_eq!(eval["test_images"], 100);
    // The same training gives the same file, byte for byte.
    assert_eq!(
        std::fs::read(&model).unwrap(),
        std::fs::read(ws.path("again.qnn")).unwrap()
    );
}

#[test]
fn tampered_or_foreign_model_files_are_refused() {
    let ws = Workspace::new();
    let model = ws.train(&example("fmnist_mlp.toml"), "m.qnn", &["--bits", "2"]);
    let text = std::fs::read_to_string(&model).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();

    let mut other_version = json.clone();
    other_version["version"] = serde_json::json!(99);
    let path = ws.write("v99.qnn", other_version.to_string().as_bytes());
    assert_user_error(&qnnc(&["eval", &path]), &["v99.qnn", "version", "99"]);

    let mut shape = json.clone();
    shape["parameters"]["fc1.weight"]["shape"] = serde_json::json!([784, 255]);
    let path = ws.write("shape.qnn", shape.to_string().as_bytes());
    assert_user_error(
        &qnnc(&["eval", &path]),
        &["shape.qnn", "fc1.weight", "shape"],
    );

    let mut values = json.clone();
    values["parameters"]["bn1.gamma"]["f32_le_base64"] = serde_json::json!("AAAA");
    let path = ws.write("values.qnn", values.to_string().as_bytes());
    assert_user_error(&qnnc(&["eval", &path]), &["values.qnn", "bn1.gamma"]);

    json["spec"]["precision"]["weights"] = serde_json::json!(0);
    let path = ws.write("bits.qnn", json.to_string().as_bytes());
    assert_user_error(
        &qnnc(&["eval", &path]),
        &["bits.qnn", "spec.precision.weights"],
    );

    let path = ws.write("truncated.qnn", &text.as_bytes()[..text.len() / 2]);
    assert_user_error(&qnnc(&["eval", &path]), &["truncated.qnn"]);
    let path = ws.write("foreign.qnn", b"{\"format\": \"onnx\"}");
    assert_user_error(&qnnc(&["eval", &path]), &["foreign.qnn", "format"]);
    let path = ws.write("binary.qnn", &[0x08, 0x07, 0xff, 0x00]);
    assert_user_error(&qnnc(&["eval", &path]), &["binary.qnn"]);
}

#[test]
fn usage_errors_are_one_line_with_exit_code_one() {
    assert_user_error(&qnnc(&["train"]), &["error"]);
    assert_user_error(&qnnc(&["frobnicate"]), &["frobnicate"]);
    let ws = Workspace::new();
    train_refused(
        &ws,
        &example("fmnist_mlp.toml"),
        &["--batch", "0"],
        &["--batch"],
    );
    let help = qnnc(&["train", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--bits"));
}

#[test]
fn huge_sizes_in_files_and_flags_are_refused_without_allocating() {
    let ws = Workspace::new();
    let model = ws.train(&example("fmnist_mlp.toml"), "m.qnn", &["--bits", "2"]);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    json["spec"]["template"]["hidden"] = serde_json::json!([256, 4_000_000_000u64]);
    let path = ws.write("huge.qnn", json.to_string().as_bytes());
    assert_user_error(&qnnc(&["eval", &path]), &["huge.qnn", "spec", "limit"]);
    let spec = ws.write(
        "kernel.toml",
        format!("{HEADER}[[layers]]\nkind = \"conv2d\"\nfilters = 4\nkernel = 4294967296\npadding = 2147483647\n[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nunits = 10\n").as_bytes(),
    );
    train_refused(&ws, &spec, &[], &["kernel.toml", "at most"]);
    assert_user_error(
        &qnnc(&["bench", "train", "--batch", "7000", "--images", "10"]),
        &["--images/--batch", "warm-up"],
    );
}

#[test]
fn train_prints_each_epoch_row_as_the_epoch_ends() {
    use std::io::BufRead;
    let ws = Workspace::new();
    let model = ws.path("tiny.qnn").display().to_string();
    let args = |epochs: &'static str, images: &'static str| {
        vec![
            "train".to_string(),
            example("tiny_cnn.toml"),
            "-o".into(),
            model.clone(),
            "--epochs".into(),
            epochs.into(),
            "--train-limit".into(),
            images.into(),
            "--test-limit".into(),
            "100".into(),
        ]
    };
    // A run stopped during its second epoch (of many) has printed the first epoch's row, with
    // its test accuracy, and written no model.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(args("50", "2000"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let first_row = line.trim_start().starts_with("1 ");
        printed.push(line);
        if first_row {
            break;
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "{printed:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        printed[1], "epoch  loss     train acc  test acc  img/s",
        "{printed:?}"
    );
    let row: Vec<&str> = printed[2].split_whitespace().collect();
    assert_eq!(row.len(), 5, "{printed:?}");
    assert!(row[3].ends_with('%') && row[3] != "-", "{printed:?}");
    assert!(!Path::new(&model).exists());

    // When standard error is not a terminal, no bar is drawn on it; the table has every row.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(args("2", "200"))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with("trained on"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[1].trim_start().starts_with("2 "), "{stdout}");
}
