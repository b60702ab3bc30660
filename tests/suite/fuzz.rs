//! Fuzzing of everything qnnc reads: specs, trained models, IR files, QONNX files, energy
//! profiles, sweep files, command-line values and build folders.
//!
//! Each case is a whole input made by mutating a file of the seed corpus (tests/fuzz_corpus/),
//! written into a fresh temporary folder and handed to the real `qnnc` binary, which runs there
//! under a time and memory limit. The contract for bad input is one line on standard error and
//! exit code 1, with nothing half-written; a case fails when qnnc
//! - exits with a code other than 0 or 1, or is killed by a signal (abort, stack overflow, a
//!   failed allocation under the limit),
//! - prints "panicked",
//! - exits 1 with standard error that is not exactly one line,
//! - is still running at the time limit (a hang),
//! - takes more than 2 GiB of memory without training,
//! - replaces a FIFO or folder it was given as output, or
//! - leaves files in its output folder after exit 1, or a `.qnnc-build-*` staging folder or a
//!   `.tmp*` file anywhere.
//!
//! Proptest generates the mutations and shrinks a failing case to a minimal one, which is
//! written to build/fuzz-failures/<name>/ with a `repro.sh` that runs it again.
//!
//! `fuzz_smoke` runs a fixed-seed sample with `cargo test`; `fuzz_campaign` is the long run
//! (`make fuzz`, time-bounded by FUZZ_SECONDS, 600 by default; FUZZ_SEED repeats a campaign;
//! FUZZ_KINDS=build,cli runs only those kinds).
use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use onnx_protobuf::{Message, ModelProto};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Address space of one qnnc run: a size read from a file that asks for more aborts, which
/// counts as a failure, instead of taking the machine's memory. Enough for every network the
/// corpus's commands train at its sizes.
const MEMORY_LIMIT_KIB: u64 = 4 << 20;

/// Peak resident memory above which a run that does not train counts as unbounded: reading a
/// device such as /dev/zero whole may fail cleanly at the address-space limit, but only after
/// taking this much.
const PEAK_MEMORY_LIMIT: u64 = 2 << 30;

/// Longest run of a command that trains: valid work can take this long.
const TRAINING_TIME_LIMIT: Duration = Duration::from_secs(40);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Spec,
    Model,
    Ir,
    Onnx,
    Profile,
    Sweep,
    Cli,
    Build,
}

const KINDS: [Kind; 8] = [
    Kind::Spec,
    Kind::Model,
    Kind::Ir,
    Kind::Onnx,
    Kind::Profile,
    Kind::Sweep,
    Kind::Cli,
    Kind::Build,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Spec => "spec",
            Kind::Model => "model",
            Kind::Ir => "ir",
            Kind::Onnx => "onnx",
            Kind::Profile => "profile",
            Kind::Sweep => "sweep",
            Kind::Cli => "cli",
            Kind::Build => "build",
        }
    }

    /// Longest run that is not a hang: a build folder may rebuild its Verilator model (15 s
    /// here).
    fn time_limit(self) -> Duration {
        match self {
            Kind::Build => Duration::from_secs(60),
            _ => Duration::from_secs(20),
        }
    }

    /// Cases of this kind per round of the campaign: the slow kinds less often.
    fn weight(self) -> u32 {
        match self {
            Kind::Spec | Kind::Cli => 4,
            Kind::Model | Kind::Ir | Kind::Onnx => 3,
            Kind::Profile | Kind::Sweep | Kind::Build => 2,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A seed file: its name and contents.
type Seed = (String, Vec<u8>);

/// The seed files of a kind, sorted by name. ONNX also takes the Brevitas CNN and residual
/// fixtures.
fn seeds(kind: Kind) -> &'static [Seed] {
    static SEEDS: OnceLock<BTreeMap<Kind, Vec<Seed>>> = OnceLock::new();
    let all = SEEDS.get_or_init(|| {
        KINDS
            .iter()
            .map(|&kind| {
                let mut files = Vec::new();
                if let Ok(entries) = fs::read_dir(corpus_dir(kind)) {
                    for entry in entries.flatten() {
                        let name = entry.file_name().to_string_lossy().to_string();
                        files.push((name, fs::read(entry.path()).expect("corpus file reads")));
                    }
                }
                if kind == Kind::Onnx {
                    for name in ["cnn_q1.onnx", "cnn_q4.onnx", "resnet_q4.onnx"] {
                        let path = repo().join("tests/fixtures/qonnx").join(name);
                        files.push((name.to_string(), fs::read(path).expect("fixture reads")));
                    }
                }
                files.sort();
                (kind, files)
            })
            .collect()
    });
    &all[&kind]
}

fn corpus_dir(kind: Kind) -> PathBuf {
    repo().join("tests/fuzz_corpus").join(kind.name())
}

fn corpus_file(kind: Kind, name: &str) -> Vec<u8> {
    fs::read(corpus_dir(kind).join(name)).expect("corpus file reads")
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// Numbers that break sizes, counts, indices and floats.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "65536",
    "70000",
    "1000000",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-2147483648",
    "-9223372036854775808",
    "0.5",
    "-0.0",
    "1e308",
    "-1e308",
    "1e-320",
    "1e400",
    "nan",
    "inf",
    "-inf",
];

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(NUMBERS).prop_map(str::to_string),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0u32..64).prop_map(|shift| (1u64 << shift).to_string()),
    ]
}

/// Characters that break one-line messages and names.
const CONTROL: &[char] = &['\n', '\r', '\0', '\t', '\u{1b}', '\u{7f}', '\u{2028}'];

/// One change to a file.
#[derive(Clone, Debug)]
enum Edit {
    /// Replace the n-th number in the text.
    Number(Index, String),
    DropLine(Index),
    DuplicateLine(Index),
    /// Insert a control character after the n-th double quote.
    ControlInString(Index, char),
    FlipBits(Index, u8),
    InsertBytes(Index, Vec<u8>),
    DeleteBytes(Index, usize),
    Truncate(Index),
    /// A change to a field of an ONNX file (ignored for files that are not ONNX).
    Proto(ProtoEdit),
}

fn text_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (any::<Index>(), number()).prop_map(|(i, n)| Edit::Number(i, n)),
        2 => any::<Index>().prop_map(Edit::DropLine),
        2 => any::<Index>().prop_map(Edit::DuplicateLine),
        2 => (any::<Index>(), prop::sample::select(CONTROL)).prop_map(|(i, c)| Edit::ControlInString(i, c)),
        1 => byte_edit(),
    ]
}

fn byte_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), 1u8..=255).prop_map(|(i, b)| Edit::FlipBits(i, b)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Edit::InsertBytes(i, b)),
        2 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Edit::DeleteBytes(i, n)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// A change to one field of an ONNX model.
#[derive(Clone, Debug)]
enum ProtoEdit {
    InitializerDim(Index, Index, i64),
    InitializerData(Index, Index),
    DataType(Index, i32),
    Attribute(Index, Index, i64),
    /// Make a node read the output of another node (a dangling or cyclic edge).
    NodeInput(Index, Index, Index),
    OpType(Index, &'static str),
    DropNode(Index),
    DuplicateNode(Index),
    InputDim(Index, i64),
    NameControl(Index, char),
}

const SIZES: &[i64] = &[0, -1, 1, 3, 65536, 1 << 31, 1 << 32, i64::MAX, i64::MIN];

const OP_TYPES: &[&str] = &[
    "Conv",
    "MatMul",
    "Gemm",
    "Quant",
    "BipolarQuant",
    "MultiThreshold",
    "Relu",
    "MaxPool",
    "Flatten",
    "Reshape",
    "BatchNormalization",
    "Add",
    "Mul",
    "Unknown",
];

fn proto_edit() -> impl Strategy<Value = Edit> {
    let size = prop_oneof![
        3 => prop::sample::select(SIZES),
        1 => any::<i64>(),
    ];
    prop_oneof![
        (any::<Index>(), any::<Index>(), size.clone())
            .prop_map(|(t, d, v)| ProtoEdit::InitializerDim(t, d, v)),
        (any::<Index>(), any::<Index>()).prop_map(|(t, k)| ProtoEdit::InitializerData(t, k)),
        (any::<Index>(), -1i32..20).prop_map(|(t, v)| ProtoEdit::DataType(t, v)),
        (any::<Index>(), any::<Index>(), size.clone())
            .prop_map(|(n, a, v)| ProtoEdit::Attribute(n, a, v)),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(n, i, o)| ProtoEdit::NodeInput(n, i, o)),
        (any::<Index>(), prop::sample::select(OP_TYPES)).prop_map(|(n, o)| ProtoEdit::OpType(n, o)),
        any::<Index>().prop_map(ProtoEdit::DropNode),
        any::<Index>().prop_map(ProtoEdit::DuplicateNode),
        (any::<Index>(), size).prop_map(|(d, v)| ProtoEdit::InputDim(d, v)),
        (any::<Index>(), prop::sample::select(CONTROL))
            .prop_map(|(n, c)| ProtoEdit::NameControl(n, c)),
    ]
    .prop_map(Edit::Proto)
}

/// Start offsets of the numbers in `text` (not parts of names such as `q4` or `mlp2`).
fn number_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let starts_number = text[i].is_ascii_digit()
            || (text[i] == b'-' && text.get(i + 1).is_some_and(u8::is_ascii_digit));
        let in_word = i > 0 && (text[i - 1].is_ascii_alphanumeric() || text[i - 1] == b'_');
        if starts_number && !in_word {
            let start = i;
            i += 1;
            while i < text.len()
                && (text[i].is_ascii_digit() || matches!(text[i], b'.' | b'e' | b'E' | b'+'))
            {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    spans
}

fn line_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        spans.push((start, text.len()));
    }
    spans
}

fn apply(edit: &Edit, data: &mut Vec<u8>) {
    let position = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match edit {
        Edit::Number(i, value) => {
            let spans = number_spans(data);
            if !spans.is_empty() {
                let (start, end) = spans[i.index(spans.len())];
                data.splice(start..end, value.bytes());
            }
        }
        Edit::DropLine(i) | Edit::DuplicateLine(i) => {
            let spans = line_spans(data);
            if !spans.is_empty() {
                let (start, end) = spans[i.index(spans.len())];
                if matches!(edit, Edit::DropLine(_)) {
                    data.drain(start..end);
                } else {
                    let line = data[start..end].to_vec();
                    data.splice(end..end, line);
                }
            }
        }
        Edit::ControlInString(i, c) => {
            let quotes: Vec<usize> = (0..data.len()).filter(|&k| data[k] == b'"').collect();
            if !quotes.is_empty() {
                let at = quotes[i.index(quotes.len())] + 1;
                let mut buffer = [0u8; 4];
                data.splice(at..at, c.encode_utf8(&mut buffer).bytes());
            }
        }
        Edit::FlipBits(i, bits) => {
            if !data.is_empty() {
                let at = i.index(data.len());
                data[at] ^= bits;
            }
        }
        Edit::InsertBytes(i, bytes) => {
            let at = position(i, data.len() + 1);
            data.splice(at..at, bytes.iter().copied());
        }
        Edit::DeleteBytes(i, n) => {
            if !data.is_empty() {
                let at = i.index(data.len());
                let end = (at + n).min(data.len());
                data.drain(at..end);
            }
        }
        Edit::Truncate(i) => {
            let at = position(i, data.len());
            data.truncate(at);
        }
        Edit::Proto(edit) => {
            if let Ok(mut model) = ModelProto::parse_from_bytes(data) {
                apply_proto(edit, &mut model);
                if let Ok(bytes) = model.write_to_bytes() {
                    *data = bytes;
                }
            }
        }
    }
}

fn pick<'a, T>(items: &'a mut [T], i: &Index) -> Option<&'a mut T> {
    if items.is_empty() {
        None
    } else {
        let at = i.index(items.len());
        items.get_mut(at)
    }
}

fn apply_proto(edit: &ProtoEdit, model: &mut ModelProto) {
    let graph = model.graph.mut_or_insert_default();
    match edit {
        ProtoEdit::InitializerDim(t, d, value) => {
            if let Some(tensor) = pick(&mut graph.initializer, t) {
                if let Some(dim) = pick(&mut tensor.dims, d) {
                    *dim = *value;
                } else {
                    tensor.dims.push(*value);
                }
            }
        }
        ProtoEdit::InitializerData(t, keep) => {
            if let Some(tensor) = pick(&mut graph.initializer, t) {
                let raw = tensor.raw_data.len();
                tensor
                    .raw_data
                    .truncate(if raw == 0 { 0 } else { keep.index(raw) });
                let floats = tensor.float_data.len();
                tensor
                    .float_data
                    .truncate(if floats == 0 { 0 } else { keep.index(floats) });
            }
        }
        ProtoEdit::DataType(t, value) => {
            if let Some(tensor) = pick(&mut graph.initializer, t) {
                tensor.data_type = *value;
            }
        }
        ProtoEdit::Attribute(n, a, value) => {
            if let Some(node) = pick(&mut graph.node, n) {
                if let Some(attribute) = pick(&mut node.attribute, a) {
                    attribute.i = *value;
                    attribute.f = *value as f32;
                    for v in attribute.ints.iter_mut() {
                        *v = *value;
                    }
                }
            }
        }
        ProtoEdit::NodeInput(n, i, o) => {
            let outputs: Vec<String> = graph.node.iter().flat_map(|n| n.output.clone()).collect();
            if outputs.is_empty() {
                return;
            }
            let name = outputs[o.index(outputs.len())].clone();
            if let Some(node) = pick(&mut graph.node, n) {
                if let Some(input) = pick(&mut node.input, i) {
                    *input = name;
                }
            }
        }
        ProtoEdit::OpType(n, op) => {
            if let Some(node) = pick(&mut graph.node, n) {
                node.op_type = op.to_string();
            }
        }
        ProtoEdit::DropNode(n) => {
            if !graph.node.is_empty() {
                let at = n.index(graph.node.len());
                graph.node.remove(at);
            }
        }
        ProtoEdit::DuplicateNode(n) => {
            if !graph.node.is_empty() {
                let at = n.index(graph.node.len());
                let copy = graph.node[at].clone();
                graph.node.insert(at, copy);
            }
        }
        ProtoEdit::InputDim(d, value) => {
            if let Some(input) = graph.input.first_mut() {
                let shape = input
                    .type_
                    .mut_or_insert_default()
                    .mut_tensor_type()
                    .shape
                    .mut_or_insert_default();
                if let Some(dim) = pick(&mut shape.dim, d) {
                    dim.set_dim_value(*value);
                }
            }
        }
        ProtoEdit::NameControl(n, c) => {
            if let Some(node) = pick(&mut graph.node, n) {
                node.name.insert(0, *c);
                if let Some(output) = node.output.first_mut() {
                    output.push(*c);
                }
            }
        }
    }
}

/// One change to a command line.
#[derive(Clone, Debug)]
enum CliEdit {
    /// Give the n-th flag that takes a value another value.
    SetValue(Index, String),
    /// Add a flag with a value.
    AddFlag(&'static str, String),
    /// Replace the input file (the first argument after the command).
    Input(String),
    DropArgument(Index),
    /// Standard output on a full disk.
    StdoutFull,
}

/// Values for any flag: numbers, lists, words and paths. Paths are relative to the case's
/// folder; the devices are read, never written.
const WORDS: &[&str] = &[
    "",
    "abc",
    "1,2",
    "0,0",
    "4294967296,1",
    "1,,2",
    "-5",
    "/dev/zero",
    "/dev/null",
    "fifo",
    "folder",
    "missing.toml",
    "model.qnn",
    "model.onnx",
    "spec.toml",
    "profile.toml",
    "moons-dram",
    "none",
    "fold-batch-norm",
    "json",
    "up5k",
    "ecp5-85k",
];

/// Values for an output flag: always inside the case's `out` folder.
const OUTPUTS: &[&str] = &[
    "out/x.qnn",
    "out",
    "out/.",
    "out/fifo",
    "out/folder",
    "out/missing/x.qnn",
    "out/name\nwith a newline",
    "out/x.onnx",
    // Longer than a file name may be.
    "out/LONG",
];

const FLAGS: &[&str] = &[
    "--epochs",
    "--batch",
    "--lr",
    "--seed",
    "--train-limit",
    "--test-limit",
    "--bits",
    "--wbits",
    "--abits",
    "--nl",
    "--nf",
    "--hidden",
    "--pe",
    "--simd",
    "--weight-memory",
    "--activation-memory",
    "--clock-mhz",
    "--profile",
    "--after",
    "--format",
    "--data",
    "--schedule",
    "--integer",
];

fn cli_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => number(),
        2 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => (1usize..300).prop_map(|n| "a".repeat(n)),
    ]
}

fn cli_edit() -> impl Strategy<Value = CliEdit> {
    prop_oneof![
        6 => (any::<Index>(), cli_value()).prop_map(|(i, v)| CliEdit::SetValue(i, v)),
        3 => (prop::sample::select(FLAGS), cli_value()).prop_map(|(f, v)| CliEdit::AddFlag(f, v)),
        2 => prop::sample::select(WORDS).prop_map(|v| CliEdit::Input(v.to_string())),
        1 => any::<Index>().prop_map(CliEdit::DropArgument),
        1 => Just(CliEdit::StdoutFull),
    ]
}

/// Where a build folder is changed besides its files' contents. All but `None` recompute the
/// manifest's digests after the changes, so that they pass its check.
#[derive(Clone, Debug)]
enum Extra {
    None,
    Redigest,
    /// A Verilog file the manifest does not list.
    UnlistedVerilog,
    /// A Verilog file that is a link to /dev/zero.
    LinkToZero,
    RemoveFile,
    /// A simulator executable that prints this report.
    FakeSimulator(Vec<(usize, String)>),
}

fn extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        3 => Just(Extra::None),
        4 => Just(Extra::Redigest),
        1 => Just(Extra::UnlistedVerilog),
        1 => Just(Extra::LinkToZero),
        1 => Just(Extra::RemoveFile),
        2 => prop::collection::vec((0usize..5, number()), 1..4).prop_map(Extra::FakeSimulator),
    ]
}

/// A whole input: which seed, which command reads it, and what was changed.
#[derive(Clone, Debug)]
struct Case {
    kind: Kind,
    seed: Index,
    command: Index,
    edits: Vec<Edit>,
    cli: Vec<CliEdit>,
    extra: Extra,
    /// Simulate a build folder in Icarus rather than Verilator.
    icarus: bool,
}

/// Cases of `kind`; build folders are simulated in Verilator one time in eight, or never
/// when not `verilator`.
fn case(kind: Kind, verilator: bool) -> BoxedStrategy<Case> {
    let edits = match kind {
        Kind::Onnx => {
            prop::collection::vec(prop_oneof![2 => proto_edit(), 1 => byte_edit()], 1..4).boxed()
        }
        Kind::Model | Kind::Ir => {
            prop::collection::vec(prop_oneof![3 => text_edit(), 1 => byte_edit()], 1..4).boxed()
        }
        Kind::Cli => Just(Vec::new()).boxed(),
        // A build folder may also be damaged by its extra change alone.
        Kind::Build => prop::collection::vec(text_edit(), 0..4).boxed(),
        _ => prop::collection::vec(text_edit(), 1..4).boxed(),
    };
    let cli = match kind {
        Kind::Cli => prop::collection::vec(cli_edit(), 1..4).boxed(),
        _ => Just(Vec::new()).boxed(),
    };
    let extra = match kind {
        Kind::Build => extra().boxed(),
        _ => Just(Extra::None).boxed(),
    };
    let icarus = if verilator {
        prop::bool::weighted(0.125).boxed()
    } else {
        Just(true).boxed()
    };
    (any::<Index>(), any::<Index>(), edits, cli, extra, icarus)
        .prop_map(move |(seed, command, edits, cli, extra, icarus)| Case {
            kind,
            seed,
            command,
            edits,
            cli,
            extra,
            icarus,
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Cases as files and command lines

/// Commands that read a file of each kind; `IN` is the input's path, outputs go to `out/`.
fn commands(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Spec => &[
            "inspect IN",
            "energy IN",
            "inspect IN --format json --after none",
            "energy IN --profile moons-sram --format json",
            "compile IN --pe 2 --simd 4 -o out/build",
            "train IN --epochs 1 --train-limit 100 --test-limit 50 --batch 50 -o out/m.qnn",
        ],
        Kind::Model | Kind::Ir => &[
            "eval IN --test-limit 20 --integer",
            "inspect IN --schedule --pe 2 --simd 4",
            "energy IN",
            "inspect IN --format json",
            "export IN -o out/m.onnx",
            "compile IN --pe 2 --simd 4 -o out/build",
        ],
        Kind::Onnx => &[
            "import IN -o out/m.qnn",
            "eval IN --test-limit 20",
            "inspect IN",
            "energy IN",
            "compile IN --pe 2 --simd 4 -o out/build",
        ],
        Kind::Profile => &[
            "energy model.qnn --profile IN",
            "energy spec.toml --profile IN --format json",
            "energy fmnist_cnn.toml --profile IN",
        ],
        // Without data the sweep is parsed and its grid expanded, then loading fails: cheap.
        Kind::Sweep => &[
            "explore IN -o out/x --data folder",
            "explore IN -o out/x --data folder",
            "explore IN -o out/x",
        ],
        Kind::Cli => &[],
        Kind::Build => &[
            "sim build --images 2",
            "sim build --images 2 --simulator icarus",
        ],
    }
}

/// A case made concrete in a folder: the arguments and where standard output goes.
struct Prepared {
    args: Vec<String>,
    stdout_full: bool,
}

/// Writes `case` into `dir` (which exists and is empty) and returns its command line.
fn prepare(case: &Case, dir: &Path) -> Prepared {
    fs::create_dir_all(dir.join("out")).unwrap();
    fs::create_dir_all(dir.join("folder")).unwrap();
    mkfifo(&dir.join("fifo"));
    if case.kind == Kind::Cli {
        mkfifo(&dir.join("out/fifo"));
        fs::create_dir_all(dir.join("out/folder")).unwrap();
    }
    // What commands read besides the input: a model, specs and a profile.
    fs::write(
        dir.join("model.qnn"),
        corpus_file(Kind::Model, "micro_cnn_q4.qnn"),
    )
    .unwrap();
    fs::write(
        dir.join("model.onnx"),
        corpus_file(Kind::Onnx, "micro_cnn_q4.onnx"),
    )
    .unwrap();
    fs::write(
        dir.join("spec.toml"),
        corpus_file(Kind::Spec, "micro_mlp.toml"),
    )
    .unwrap();
    for name in ["fmnist_cnn.toml", "fmnist_mlp.toml"] {
        fs::write(dir.join(name), corpus_file(Kind::Spec, name)).unwrap();
    }
    fs::write(
        dir.join("profile.toml"),
        corpus_file(Kind::Profile, "moons-sram.toml"),
    )
    .unwrap();
    fs::write(
        dir.join("moons-dram.toml"),
        corpus_file(Kind::Profile, "moons-dram.toml"),
    )
    .unwrap();

    match case.kind {
        Kind::Cli => prepare_cli(case),
        Kind::Build => {
            prepare_build(case, &dir.join("build"));
            // A fake simulator stands in for Verilator's.
            let icarus = case.icarus && !matches!(case.extra, Extra::FakeSimulator(_));
            let command = commands(Kind::Build)[usize::from(icarus)];
            Prepared {
                args: command.split(' ').map(str::to_string).collect(),
                stdout_full: false,
            }
        }
        kind => {
            let seeds = seeds(kind);
            let (name, seed) = &seeds[case.seed.index(seeds.len())];
            let mut data = seed.clone();
            for edit in &case.edits {
                apply(edit, &mut data);
            }
            let extension = Path::new(name)
                .extension()
                .map_or("toml".into(), |e| e.to_string_lossy().to_string());
            let input = format!("input.{extension}");
            fs::write(dir.join(&input), data).unwrap();
            let commands = commands(kind);
            let command = commands[case.command.index(commands.len())];
            let mut args: Vec<String> = command
                .split(' ')
                .map(|a| {
                    if a == "IN" {
                        input.clone()
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            // Only the one-point sweeps train; the larger ones stop at the data.
            if kind == Kind::Sweep && !name.starts_with("micro") && !args.contains(&"--data".into())
            {
                args.extend(["--data".into(), "folder".into()]);
            }
            Prepared {
                args,
                stdout_full: false,
            }
        }
    }
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

fn takes_value(flag: &str) -> bool {
    flag.starts_with('-') && !matches!(flag, "--schedule" | "--integer" | "--passes")
}

fn is_output_flag(flag: &str) -> bool {
    matches!(flag, "-o" | "--output")
}

fn prepare_cli(case: &Case) -> Prepared {
    let lines: Vec<&str> = std::str::from_utf8(&seeds(Kind::Cli)[0].1)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let mut args: Vec<String> = lines[case.seed.index(lines.len())]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut stdout_full = false;
    for edit in &case.cli {
        match edit {
            CliEdit::SetValue(i, value) => {
                let flags: Vec<usize> = (1..args.len().saturating_sub(1))
                    .filter(|&k| takes_value(&args[k]))
                    .collect();
                if flags.is_empty() {
                    continue;
                }
                let flag = flags[i.index(flags.len())];
                args[flag + 1] = if is_output_flag(&args[flag]) {
                    OUTPUTS[i.index(OUTPUTS.len())].replace("LONG", &"a".repeat(300))
                } else {
                    value.clone()
                };
            }
            CliEdit::AddFlag(flag, value) => {
                args.push(flag.to_string());
                if takes_value(flag) {
                    args.push(value.clone());
                }
            }
            CliEdit::Input(value) => {
                if args.len() > 1 {
                    args[1] = value.clone();
                }
            }
            CliEdit::DropArgument(i) => {
                // Never the command, nor an output flag's value (which would make the next
                // argument the output).
                if args.len() > 1 {
                    let at = 1 + i.index(args.len() - 1);
                    if !is_output_flag(&args[at - 1]) && !is_output_flag(&args[at]) {
                        args.remove(at);
                    }
                }
            }
            CliEdit::StdoutFull => stdout_full = true,
        }
    }
    Prepared { args, stdout_full }
}

/// A build folder compiled once from the corpus's micro CNN; with its Verilator model built when
/// `verilator`.
fn template_build(verilator: bool) -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    static WITH_VERILATOR: OnceLock<PathBuf> = OnceLock::new();
    if verilator {
        return WITH_VERILATOR.get_or_init(|| {
            let build = template_build(false).with_file_name("verilator");
            copy_tree(template_build(false), &build);
            let build_arg = build.display().to_string();
            common::ok(common::qnnc(&["sim", &build_arg, "--images", "2"]));
            build
        });
    }
    TEMPLATE.get_or_init(|| {
        // Made again by each run, in the folder Cargo keeps for integration tests.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-build-template");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let model = dir.join("model.qnn");
        fs::write(&model, corpus_file(Kind::Model, "micro_cnn_q4.qnn")).unwrap();
        let build = dir.join("build");
        let (model, build_arg) = (model.display().to_string(), build.display().to_string());
        common::ok(common::qnnc(&[
            "compile", &model, "--pe", "2", "--simd", "4", "-o", &build_arg,
        ]));
        build
    })
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The files of a build folder that a user could damage: all but the simulators' output.
fn build_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(dir.join(&folder)).unwrap().flatten() {
            let relative = folder.join(entry.file_name());
            let name = relative.display().to_string();
            if entry.file_type().unwrap().is_dir() {
                if !name.starts_with("obj_dir") && !name.starts_with("sim") {
                    folders.push(relative);
                }
            } else {
                files.push(name);
            }
        }
    }
    files.sort();
    files
}

fn prepare_build(case: &Case, build: &Path) {
    copy_tree(template_build(!case.icarus), build);
    let files = build_files(build);
    let file = &files[case.seed.index(files.len())];
    let path = build.join(file);
    let mut data = fs::read(&path).unwrap();
    for edit in &case.edits {
        apply(edit, &mut data);
    }
    fs::write(&path, data).unwrap();
    match &case.extra {
        Extra::None | Extra::Redigest => {}
        Extra::UnlistedVerilog => fs::write(
            build.join("rtl/extra.v"),
            "module extra(input wire a, output wire b);\n  assign b = ~a;\nendmodule\n",
        )
        .unwrap(),
        Extra::LinkToZero => {
            std::os::unix::fs::symlink("/dev/zero", build.join("rtl/zero.v")).unwrap()
        }
        Extra::RemoveFile => fs::remove_file(&path).unwrap(),
        Extra::FakeSimulator(values) => {
            let keys = [
                "images",
                "mismatches",
                "first_mismatch",
                "cycles",
                "layer 0 cycles",
            ];
            let mut report: BTreeMap<&str, String> = [
                ("images", "2"),
                ("mismatches", "0"),
                ("first_mismatch", "-1"),
                ("cycles", "1000"),
                ("layer 0 cycles", "500"),
            ]
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
            for (key, value) in values {
                report.insert(keys[*key], value.clone());
            }
            let mut script = String::from("#!/bin/sh\n");
            for (key, value) in report {
                writeln!(script, "echo '{key} {value}'").unwrap();
            }
            fs::create_dir_all(build.join("obj_dir")).unwrap();
            let vtb = build.join("obj_dir/Vtb");
            fs::write(&vtb, script).unwrap();
            Command::new("chmod").arg("+x").arg(&vtb).status().unwrap();
            // The stamp that makes qnnc take the executable as built from these sources.
            let mut sources = vec!["tb/testbench.v".to_string()];
            let mut rtl: Vec<String> = fs::read_dir(build.join("rtl"))
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .filter(|name| name.ends_with(".v"))
                        .map(|name| format!("rtl/{name}"))
                        .collect()
                })
                .unwrap_or_default();
            rtl.sort();
            sources.extend(rtl);
            let stamp: String = sources
                .iter()
                .map(|f| {
                    let text = fs::read(build.join(f)).unwrap_or_default();
                    format!("{f} {}\n", qnnc::codegen::digest(&text))
                })
                .collect();
            fs::write(build.join("obj_dir/qnnc.stamp"), stamp).unwrap();
        }
    }
    if !matches!(case.extra, Extra::None) {
        redigest(build);
    }
}

/// Makes the manifest's digests match the files as they are now.
fn redigest(build: &Path) {
    let Ok(text) = fs::read_to_string(build.join("manifest.json")) else {
        return;
    };
    let Ok(mut manifest) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    if let Some(files) = manifest.get_mut("files").and_then(|f| f.as_object_mut()) {
        for (file, digest) in files.iter_mut() {
            if let Ok(text) = fs::read_to_string(build.join(file)) {
                *digest = serde_json::Value::String(qnnc::codegen::digest(&text));
            }
        }
    }
    fs::write(
        build.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Running a case and judging it

/// What went wrong, as a key that groups cases with one cause and a description.
#[derive(Clone, Debug)]
struct Failure {
    key: String,
    description: String,
}

/// Every file under `dir`, relative to it (links not followed).
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = fs::read_dir(dir.join(&folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let relative = folder.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(relative.clone());
            }
            found.insert(relative.display().to_string());
        }
    }
    found
}

/// How a run of qnnc ended.
struct Run {
    /// None when it was killed at the time limit.
    status: Option<std::process::ExitStatus>,
    stderr: String,
    /// Peak resident memory in bytes, as last seen while it ran.
    peak_memory: u64,
}

/// The peak resident memory of a running process (Linux), or 0.
fn peak_memory(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Runs `qnnc` with `args` in `dir`, killing it (and what it started) at `limit`.
fn run_qnnc(dir: &Path, prepared: &Prepared, limit: Duration) -> Run {
    let stdout = if prepared.stdout_full {
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    } else {
        fs::File::create(dir.join(".stdout")).unwrap()
    };
    let stderr_path = dir.join(".stderr");
    let stderr = fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} 2>/dev/null; exec \"$@\""
        ))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_qnnc"))
        .args(&prepared.args)
        .current_dir(dir)
        // As users run it: a panic prints its one message, not a backtrace.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .expect("qnnc starts");
    let start = Instant::now();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(peak_memory(child.id()));
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            // The whole process group: a simulator or compiler that qnnc started too.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = String::from_utf8_lossy(&fs::read(&stderr_path).unwrap_or_default()).to_string();
    Run {
        status,
        stderr,
        peak_memory: peak,
    }
}

/// The epochs a training run reported in its table on standard output (`path`): the rows that
/// follow the `epoch` header.
fn epochs_finished(path: &Path) -> usize {
    let stdout = String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).to_string();
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("epoch"))
        .skip(1)
        .take_while(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|epoch| epoch.parse::<u32>().is_ok())
        })
        .count()
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        7 => "SIGBUS",
        _ => "signal",
    }
}

/// Runs a case in a fresh folder and returns how it broke the contract, if it did.
fn run_case(case: &Case, dir: &Path) -> Option<Failure> {
    let prepared = prepare(case, dir);
    let before = listing(&dir.join("out"));
    let command = prepared.args.first().cloned().unwrap_or_default();
    // Training (and a sweep that has the data) is valid work that may be slow; its time
    // running out is told apart from a hang of a command that only reads and checks.
    let trains = command == "train"
        || (command == "explore" && !prepared.args.iter().any(|a| a == "--data"));
    // A FIFO that no one writes blocks at once; seconds tell.
    let reads_fifo = prepared.args.iter().any(|a| a == "fifo");
    let limit = if reads_fifo {
        Duration::from_secs(5)
    } else if trains {
        TRAINING_TIME_LIMIT
    } else {
        case.kind.time_limit()
    };
    let Run {
        status,
        stderr,
        peak_memory,
    } = run_qnnc(dir, &prepared, limit);
    let first_line = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    let kind = case.kind.name();
    let failure = |key: String, description: String| {
        Some(Failure {
            key: format!("{kind} {command}: {key}"),
            description,
        })
    };
    let Some(status) = status else {
        // Whatever the command, reading a FIFO that no one writes is one cause.
        if reads_fifo {
            return Some(Failure {
                key: format!("{kind}: hang on a FIFO given as input"),
                description: format!("still running after {} s", limit.as_secs()),
            });
        }
        // A training that asked for much work (a hundred epochs of the full set, say) and
        // finished epochs until the limit is working, not hanging.
        if trains && epochs_finished(&dir.join(".stdout")) > 0 {
            return None;
        }
        let key = if trains { "slow training" } else { "hang" };
        return failure(
            key.into(),
            format!("still running after {} s", limit.as_secs()),
        );
    };
    if let Some(at) = stderr.find("panicked at ") {
        let place: String = stderr[at + 12..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        // The source file and line (not the column, nor the toolchain's folder).
        let place = place.trim_end_matches(':');
        let place = place.rsplit_once(':').map_or(place, |(p, _)| p);
        let place = place
            .split_once("/library/")
            .map_or(place, |(_, p)| p)
            .to_string();
        let message = stderr[at..].lines().nth(1).unwrap_or("").to_string();
        // One place is one bug, whichever command got there.
        return Some(Failure {
            key: format!("{kind}: panic at {place}"),
            description: format!("{command} panicked at {place}: {message}"),
        });
    }
    if let Some(signal) = status.signal() {
        if first_line.starts_with("memory allocation of") {
            return failure(
                format!(
                    "allocation failed under the {} GiB limit",
                    MEMORY_LIMIT_KIB >> 20
                ),
                format!("killed by signal {signal}; stderr: {first_line}"),
            );
        }
        return failure(
            format!("killed by {}", signal_name(signal)),
            format!("killed by signal {signal}; stderr: {first_line}"),
        );
    }
    let code = status.code().unwrap_or(-1);
    // Training a valid wide network may take gigabytes; reading and checking never should.
    if peak_memory > PEAK_MEMORY_LIMIT && !trains {
        return failure(
            format!("peak memory over {} GiB", PEAK_MEMORY_LIMIT >> 30),
            format!(
                "exit {code} after taking {:.1} GiB; stderr: {first_line}",
                peak_memory as f64 / (1u64 << 30) as f64
            ),
        );
    }
    if code != 0 && code != 1 {
        return failure(
            format!("exit code {code}"),
            format!("exit code {code}: {first_line}"),
        );
    }
    let leftovers: Vec<String> = listing(dir)
        .into_iter()
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or(path);
            name.starts_with(".qnnc-build-") || name.starts_with(".tmp")
        })
        .collect();
    if !leftovers.is_empty() {
        return failure(
            "staging left behind".into(),
            format!("exit {code} left {}", leftovers.join(", ")),
        );
    }
    // What was there and is not a regular file stays what it was, whatever the exit code.
    for (name, is_kind) in [
        ("out/fifo", is_fifo as fn(&Path) -> bool),
        ("out/folder", Path::is_dir),
    ] {
        let path = dir.join(name);
        if before.contains(name.trim_start_matches("out/")) && !is_kind(&path) {
            return failure(
                "replaced a non-regular file".into(),
                format!("exit {code} and {name} is no longer a FIFO or folder"),
            );
        }
    }
    if code == 1 {
        let lines = stderr.trim_end().lines().count();
        if lines != 1 {
            // Most often a name echoed raw, whichever command echoes it.
            return Some(Failure {
                key: format!("{kind}: error not one line"),
                description: format!("{command}: exit 1 with {lines} lines on stderr: {stderr:?}"),
            });
        }
        let written: Vec<String> = listing(&dir.join("out"))
            .difference(&before)
            .cloned()
            .collect();
        // A report that cannot be printed (stdout full) fails the command after its output
        // was written whole, by an atomic rename: that file is complete, not half-written.
        let report_failed = stderr.starts_with("error: standard output:");
        if !written.is_empty() && case.kind != Kind::Build && !report_failed {
            return failure(
                "half-written output".into(),
                format!(
                    "exit 1 ({stderr:?}) but left out/{}",
                    written.join(", out/")
                ),
            );
        }
    }
    None
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./,=".contains(&b))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''").replace('\n', "'$'\\n''"))
    }
}

/// Writes a minimal failing case to build/fuzz-failures/ and returns the command that runs it.
fn record(case: &Case, failure: &Failure, number: usize) -> String {
    let slug: String = failure
        .key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let folder = repo()
        .join("build/fuzz-failures")
        .join(format!("{number:02}-{}", slug.trim_matches('-')));
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder).unwrap();
    let prepared = prepare(case, &folder);
    let args: Vec<String> = prepared.args.iter().map(|a| shell_quote(a)).collect();
    let redirect = if prepared.stdout_full {
        " > /dev/full"
    } else {
        ""
    };
    let command = format!("qnnc {}{redirect}", args.join(" "));
    let script = format!(
        "#!/bin/sh\n# {}\n# {}\n# {case:?}\ncd \"$(dirname \"$0\")\" && rm -rf out/* && exec \"${{QNNC:-../../../target/release/qnnc}}\" {}{redirect}\n",
        failure.key,
        failure.description.replace('\n', "\\n"),
        args.join(" ")
    );
    fs::write(folder.join("repro.sh"), script).unwrap();
    let relative = folder
        .strip_prefix(repo())
        .unwrap_or(&folder)
        .display()
        .to_string();
    format!("cd {relative} && {command}   (or sh {relative}/repro.sh)")
}

// ---------------------------------------------------------------------------------------------
// The campaign

struct Campaign {
    /// Stop a kind at its first failure (the smoke test) rather than look for more.
    stop_at_first: bool,
    max_shrink_iters: u32,
    max_shrink_time: Duration,
    /// Whether build folders are simulated in Verilator too, not only in Icarus.
    verilator: bool,
    /// Cases generated, by kind.
    counts: BTreeMap<Kind, u64>,
    /// Runs of simpler cases while shrinking a failure.
    shrink_runs: u64,
    /// Keys of the failures found, with their minimal repro.
    found: BTreeMap<String, (Failure, String)>,
    /// Cases that failed, by key (including repeats of a known failure).
    hits: BTreeMap<String, u64>,
    /// When the counts were last printed.
    progress: Instant,
}

impl Campaign {
    fn new(
        stop_at_first: bool,
        max_shrink_iters: u32,
        max_shrink_time: Duration,
        verilator: bool,
    ) -> Campaign {
        Campaign {
            stop_at_first,
            max_shrink_iters,
            max_shrink_time,
            verilator,
            counts: BTreeMap::new(),
            shrink_runs: 0,
            found: BTreeMap::new(),
            hits: BTreeMap::new(),
            progress: Instant::now(),
        }
    }

    fn attempt(&mut self, case: &Case) -> Option<Failure> {
        let dir = tempfile::Builder::new()
            .prefix("qnnc-fuzz-")
            .tempdir()
            .unwrap();
        run_case(case, dir.path())
    }

    /// Runs `cases` cases of `kind` drawn by `runner`; false once it should stop.
    fn run_kind(
        &mut self,
        runner: &mut TestRunner,
        kind: Kind,
        cases: u32,
        deadline: Instant,
    ) -> bool {
        let strategy = case(kind, self.verilator);
        for _ in 0..cases {
            if Instant::now() > deadline {
                return false;
            }
            if self.progress.elapsed() > Duration::from_secs(60) {
                self.progress = Instant::now();
                eprint!("{}", self.counts_line());
            }
            let mut tree = strategy.new_tree(runner).expect("cases generate");
            *self.counts.entry(kind).or_default() += 1;
            let Some(failure) = self.attempt(&tree.current()) else {
                continue;
            };
            *self.hits.entry(failure.key.clone()).or_default() += 1;
            if self.found.contains_key(&failure.key) {
                continue;
            }
            let (minimal, failure) = self.shrink(&mut tree, failure);
            let repro = record(&minimal, &failure, self.found.len() + 1);
            eprintln!(
                "fuzz: FAILURE {}\n  {}\n  minimal case: {minimal:?}\n  reproduce: {repro}",
                failure.key, failure.description
            );
            self.found.insert(failure.key.clone(), (failure, repro));
            if self.stop_at_first {
                return false;
            }
        }
        true
    }

    /// Proptest's shrinking: simplify while the case still fails with the same key.
    fn shrink(
        &mut self,
        tree: &mut impl ValueTree<Value = Case>,
        first: Failure,
    ) -> (Case, Failure) {
        let mut minimal = (tree.current(), first.clone());
        let mut iterations = 0;
        let start = Instant::now();
        if !tree.simplify() {
            return minimal;
        }
        while iterations < self.max_shrink_iters && start.elapsed() < self.max_shrink_time {
            iterations += 1;
            self.shrink_runs += 1;
            let case = tree.current();
            match self.attempt(&case) {
                Some(failure) if failure.key == first.key => {
                    minimal = (case, failure);
                    if !tree.simplify() {
                        break;
                    }
                }
                _ => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
        minimal
    }

    fn counts_line(&self) -> String {
        let counts: Vec<String> = KINDS
            .iter()
            .map(|k| format!("{} {}", k.name(), self.counts.get(k).copied().unwrap_or(0)))
            .collect();
        let total: u64 = self.counts.values().sum();
        format!(
            "fuzz: {total} cases: {} ({} failing; {} more runs shrinking)\n",
            counts.join(", "),
            self.hits.values().sum::<u64>(),
            self.shrink_runs
        )
    }

    fn summary(&self) -> String {
        let mut text = self.counts_line();
        writeln!(text, "fuzz: {} distinct failures", self.found.len()).unwrap();
        for (key, (failure, repro)) in &self.found {
            writeln!(
                text,
                "  {key} ({} cases)\n    {}\n    {repro}",
                self.hits[key], failure.description
            )
            .unwrap();
        }
        text
    }
}

fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// A fixed sample of every kind (fifty cases, two build folders simulated in Icarus), each kind
/// stopping at its first failure: a quick, deterministic check that runs with `cargo test`.
#[test]
fn a_training_cut_short_counts_the_epochs_it_finished() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = dir.path().join(".stdout");
    fs::write(&stdout, "net: 270 weights\n").unwrap();
    assert_eq!(epochs_finished(&stdout), 0);
    fs::write(
        &stdout,
        "net: 270 weights\nepoch  loss     train acc  test acc  img/s\n    1  1.29  56.34%  58.00%  30706\n    2  0.82  71.25%  64.00%  31558\n",
    )
    .unwrap();
    assert_eq!(epochs_finished(&stdout), 2);
    assert_eq!(epochs_finished(&dir.path().join("absent")), 0);
}

#[test]
fn fuzz_smoke() {
    let mut campaign = Campaign::new(true, 8, Duration::from_secs(20), false);
    let deadline = Instant::now() + Duration::from_secs(3600);
    for (i, &kind) in KINDS.iter().enumerate() {
        let cases = if kind == Kind::Build { 2 } else { 50 };
        campaign.run_kind(&mut runner(17 + i as u64), kind, cases, deadline);
    }
    let summary = campaign.summary();
    eprint!("{summary}");
    assert!(campaign.found.is_empty(), "{summary}");
}

/// The campaign of `make fuzz`: rounds over every kind until FUZZ_SECONDS have passed.
#[test]
#[ignore = "long; run by make fuzz"]
fn fuzz_campaign() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    eprintln!("fuzz: {seconds} s, FUZZ_SEED={seed}");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut campaign = Campaign::new(false, 48, Duration::from_secs(120), true);
    let mut runners: Vec<TestRunner> = (0..KINDS.len() as u64)
        .map(|i| runner(seed.wrapping_add(i)))
        .collect();
    // FUZZ_KINDS=spec,cli limits the campaign to those kinds.
    let chosen = std::env::var("FUZZ_KINDS").unwrap_or_default();
    let chosen: Vec<&str> = chosen
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    'rounds: loop {
        for (i, &kind) in KINDS.iter().enumerate() {
            if !chosen.is_empty() && !chosen.contains(&kind.name()) {
                continue;
            }
            if !campaign.run_kind(&mut runners[i], kind, kind.weight(), deadline) {
                break 'rounds;
            }
        }
    }
    let summary = campaign.summary();
    eprint!("{summary}");
    assert!(campaign.found.is_empty(), "{summary}");
}
