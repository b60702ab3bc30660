//! Unit testbenches of the hand-written Verilog blocks in `templates/verilog`, run under
//! Verilator. Each test draws seeded vectors from a reference model of one block, written here
//! from the block's documented behaviour (not from the compiler's code), writes them to a file,
//! builds the block's testbench from `rtl_tests/` with the block's parameters and runs it. The
//! testbench compares every output with the expected value and reports `errors N` and
//! `checked M`; a test passes only when nothing mismatched and every vector was checked.
//!
//! Verilator is required: without it these tests fail, naming the Debian package `verilator`.

use std::path::Path;
use std::process::{Command, Output};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Lines of a vector file and how many of them the testbench checks.
#[derive(Default)]
struct Vectors {
    text: String,
    checks: usize,
}

impl Vectors {
    /// A line the testbench compares with the block's output.
    fn check(&mut self, fields: &[i64]) {
        self.line(fields);
        self.checks += 1;
    }

    /// A line that only drives the block.
    fn step(&mut self, fields: &[i64]) {
        self.line(fields);
    }

    fn line(&mut self, fields: &[i64]) {
        let words: Vec<String> = fields.iter().map(i64::to_string).collect();
        self.text.push_str(&words.join(" "));
        self.text.push('\n');
    }
}

/// The closing lines of a testbench run, and its whole output for failure messages.
struct TestbenchReport {
    errors: u64,
    checked: u64,
    output: String,
}

impl TestbenchReport {
    fn assert_all_passed(&self, vectors: &Vectors) {
        assert_eq!(
            self.errors, 0,
            "the testbench found mismatches:\n{}",
            self.output
        );
        assert_eq!(
            self.checked, vectors.checks as u64,
            "the testbench checked {} of {} vectors:\n{}",
            self.checked, vectors.checks, self.output
        );
    }
}

/// Builds `rtl_tests/{testbench}.v` around `templates/verilog/{block}.v` with Verilator (all
/// warnings fatal), overriding the testbench's parameters with `parameters`, runs it on
/// `vectors` and returns its report.
fn simulate(
    testbench: &str,
    block: &str,
    parameters: &[(&str, i64)],
    vectors: &Vectors,
) -> TestbenchReport {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let testbenches = root.join("rtl_tests");
    let work = tempfile::tempdir().expect("a temporary directory");
    let vector_file = work.path().join("vectors.txt");
    std::fs::write(&vector_file, &vectors.text).expect("the vector file is written");

    let mut build = Command::new("verilator");
    build
        .current_dir(work.path())
        .args(["--binary", "--timing", "-Wall", "-j", "2"])
        .args(["--top-module", testbench, "--Mdir", "obj_dir", "-o", "Vtb"])
        .arg(format!("-I{}", testbenches.display()))
        .args(
            parameters
                .iter()
                .map(|(name, value)| format!("-G{name}={value}")),
        )
        .arg(testbenches.join(format!("{testbench}.v")))
        .arg(root.join("templates/verilog").join(format!("{block}.v")));
    let built = match build.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "verilator is not installed; the RTL block tests need it \
             (Debian package `verilator`: apt-get install verilator)"
        ),
        Err(e) => panic!("verilator could not be started: {e}"),
    };
    assert!(
        built.status.success(),
        "verilator failed to build {testbench}:\n{}",
        both_streams(&built)
    );

    let ran = Command::new(work.path().join("obj_dir/Vtb"))
        .current_dir(work.path())
        .arg(format!("+vectors={}", vector_file.display()))
        .output()
        .expect("the built testbench starts");
    let output = both_streams(&ran);
    assert!(ran.status.success(), "{testbench} failed:\n{output}");
    assert!(
        !output.lines().any(|l| l.starts_with("error:")),
        "{testbench} rejected its vectors:\n{output}"
    );
    let count = |key: &str| -> u64 {
        let values: Vec<u64> = output
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .collect();
        match values.as_slice() {
            [value] => *value,
            _ => panic!("{testbench} printed no single '{key} N' line:\n{output}"),
        }
    };
    TestbenchReport {
        errors: count("errors"),
        checked: count("checked"),
        output,
    }
}

fn both_streams(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn signed_min(bits: u32) -> i64 {
    -(1i64 << (bits - 1))
}

fn signed_max(bits: u32) -> i64 {
    (1i64 << (bits - 1)) - 1
}

fn unsigned_max(bits: u32) -> i64 {
    (1i64 << bits) - 1
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

// ---- qnnc_lane -------------------------------------------------------------------------------

/// The widths of weights and activations the compiler supports.
const LANE_WIDTHS: [u32; 4] = [1, 2, 4, 8];

/// Lanes and modes with at most this many code pairs are tested exhaustively.
const EXHAUSTIVE_PAIRS: usize = 256;

/// Random code pairs per lane and mode when the codes are too many to test exhaustively.
const RANDOM_PAIRS: usize = 64;

/// A weight code's value: bipolar codes and one-bit weights are +1 when bit 0 is set and -1
/// otherwise; wider weights are two's complement.
fn weight_value(code: i64, wbits: u32, w_bipolar: bool) -> i64 {
    if wbits == 1 || w_bipolar {
        if code & 1 == 1 {
            1
        } else {
            -1
        }
    } else {
        let unused = 64 - wbits;
        (code << unused) >> unused
    }
}

/// An activation code's value: 0 in a padding lane, +1/-1 by bit 0 when bipolar, otherwise
/// the unsigned code.
fn activation_value(code: i64, valid: bool, bipolar: bool) -> i64 {
    match (valid, bipolar) {
        (false, _) => 0,
        (true, true) if code & 1 == 1 => 1,
        (true, true) => -1,
        (true, false) => code,
    }
}

/// Code pairs for one lane in one mode: every pair when they are few, otherwise the extreme
/// codes against each other plus random pairs.
fn lane_code_pairs(
    rng: &mut ChaCha8Rng,
    wbits: u32,
    w_bipolar: bool,
    abits: u32,
    a_bipolar: bool,
) -> Vec<(i64, i64)> {
    let w_max = if wbits == 1 || w_bipolar {
        1
    } else {
        unsigned_max(wbits)
    };
    let a_max = if a_bipolar { 1 } else { unsigned_max(abits) };
    if ((w_max + 1) * (a_max + 1)) as usize <= EXHAUSTIVE_PAIRS {
        return (0..=w_max)
            .flat_map(|w| (0..=a_max).map(move |a| (w, a)))
            .collect();
    }
    // 0, 1, -1, the most negative and the most positive weight; 0, 1 and the largest activation.
    let most_negative = 1i64 << (wbits - 1);
    let weight_extremes = [0, 1, w_max, most_negative, most_negative - 1];
    let activation_extremes = [0, 1, a_max];
    let mut pairs: Vec<(i64, i64)> = weight_extremes
        .iter()
        .flat_map(|&w| activation_extremes.iter().map(move |&a| (w, a)))
        .collect();
    pairs.extend(
        (0..RANDOM_PAIRS).map(|_| (rng.random_range(0..=w_max), rng.random_range(0..=a_max))),
    );
    pairs
}

#[test]
fn lane_multiplies_decoded_codes_at_every_width() {
    assert_eq!(weight_value(0b1000, 4, false), -8);
    assert_eq!(weight_value(0b0111, 4, false), 7);
    assert_eq!(weight_value(0b10, 2, true), -1);
    assert_eq!(weight_value(0, 1, false), -1);
    assert_eq!(activation_value(255, true, false), 255);
    assert_eq!(activation_value(0, true, true), -1);
    assert_eq!(activation_value(7, false, false), 0);

    let mut rng = ChaCha8Rng::seed_from_u64(0x1a4e);
    let mut vectors = Vectors::default();
    for wbits in LANE_WIDTHS {
        for abits in LANE_WIDTHS {
            // The design's element width, and the narrowest one holding the codes.
            let mut element_widths = vec![abits.max(8), abits];
            element_widths.dedup();
            for ebits in element_widths {
                for w_bipolar in [false, true] {
                    for a_bipolar in [false, true] {
                        for (w, a) in lane_code_pairs(&mut rng, wbits, w_bipolar, abits, a_bipolar)
                        {
                            for a_valid in [true, false] {
                                let product = weight_value(w, wbits, w_bipolar)
                                    * activation_value(a, a_valid, a_bipolar);
                                vectors.check(&[
                                    wbits.into(),
                                    ebits.into(),
                                    w,
                                    flag(w_bipolar),
                                    a,
                                    flag(a_valid),
                                    flag(a_bipolar),
                                    product,
                                ]);
                            }
                        }
                    }
                }
            }
        }
    }
    simulate("tb_lane", "qnnc_lane", &[], &vectors).assert_all_passed(&vectors);
}

// ---- qnnc_threshold --------------------------------------------------------------------------

const THRESHOLD_ACCW: u32 = 12;
const THRESHOLD_TW: u32 = 14;
const THRESHOLD_NT: usize = 15;
const THRESHOLD_EBITS: u32 = 8;
const THRESHOLD_VECTORS: usize = 3000;

/// The count of thresholds the accumulator reaches (`acc >= t`, or `acc <= t` on descending
/// channels); with a bipolar output, 1 when any is reached.
fn threshold_code(acc: i64, thresholds: &[i64], descending: bool, bipolar: bool) -> i64 {
    let reached = thresholds
        .iter()
        .filter(|&&t| if descending { acc <= t } else { acc >= t })
        .count() as i64;
    if bipolar {
        flag(reached > 0)
    } else {
        reached
    }
}

/// A sorted table of `count` thresholds (descending on descending channels): the first
/// `used` ones drawn over the accumulator's range, or now and then over the threshold's whole
/// width, and the rest padding that no accumulator reaches.
fn threshold_table(rng: &mut ChaCha8Rng, count: usize, used: usize, descending: bool) -> Vec<i64> {
    let (low, high) = if rng.random_bool(0.1) {
        (signed_min(THRESHOLD_TW), signed_max(THRESHOLD_TW))
    } else {
        (signed_min(THRESHOLD_ACCW), signed_max(THRESHOLD_ACCW))
    };
    let mut table: Vec<i64> = (0..used).map(|_| rng.random_range(low..=high)).collect();
    table.sort_unstable();
    let padding = if descending {
        table.reverse();
        signed_min(THRESHOLD_TW)
    } else {
        signed_max(THRESHOLD_TW)
    };
    table.resize(count, padding);
    table
}

#[test]
fn threshold_counts_reached_thresholds() {
    assert_eq!(threshold_code(5, &[1, 5, 9], false, false), 2);
    assert_eq!(threshold_code(5, &[9, 5, 1], true, false), 2);
    assert_eq!(threshold_code(0, &[1], false, true), 0);

    let mut rng = ChaCha8Rng::seed_from_u64(0x7e5);
    let mut vectors = Vectors::default();
    let acc_extremes = [
        signed_min(THRESHOLD_ACCW),
        signed_max(THRESHOLD_ACCW),
        0,
        -1,
    ];
    for _ in 0..THRESHOLD_VECTORS {
        let single = rng.random_bool(0.3);
        let count = if single { 1 } else { THRESHOLD_NT };
        let used = if single {
            1
        } else {
            *[1, 3, 7, THRESHOLD_NT, rng.random_range(0..=THRESHOLD_NT)]
                .choose(&mut rng)
                .expect("non-empty")
        };
        let descending = rng.random_bool(0.5);
        let bipolar = rng.random_bool(if single { 0.5 } else { 0.15 });
        let table = threshold_table(&mut rng, count, used, descending);
        let tie = table[..used]
            .iter()
            .copied()
            .filter(|t| (signed_min(THRESHOLD_ACCW)..=signed_max(THRESHOLD_ACCW)).contains(t))
            .collect::<Vec<_>>();
        let acc = match rng.random_range(0..4) {
            0 if !tie.is_empty() => *tie.choose(&mut rng).expect("non-empty"),
            1 if !tie.is_empty() => (tie.choose(&mut rng).expect("non-empty")
                + rng.random_range(-1..=1))
            .clamp(signed_min(THRESHOLD_ACCW), signed_max(THRESHOLD_ACCW)),
            2 => *acc_extremes.choose(&mut rng).expect("non-empty"),
            _ => rng.random_range(signed_min(THRESHOLD_ACCW)..=signed_max(THRESHOLD_ACCW)),
        };
        let code = threshold_code(acc, &table, descending, bipolar);
        let mut line = vec![count as i64, acc, flag(descending), flag(bipolar), code];
        line.extend(&table);
        vectors.check(&line);
    }
    let parameters = [
        ("ACCW", THRESHOLD_ACCW.into()),
        ("TW", THRESHOLD_TW.into()),
        ("NT", THRESHOLD_NT as i64),
        ("EBITS", THRESHOLD_EBITS.into()),
    ];
    simulate("tb_threshold", "qnnc_threshold", &parameters, &vectors).assert_all_passed(&vectors);
}

// ---- qnnc_requant ----------------------------------------------------------------------------

const REQUANT_ACCW: u32 = 16;
const REQUANT_MW: u32 = 16;
const REQUANT_OW: u32 = 32;
const REQUANT_RQW: u32 = 40;
const REQUANT_OUTW: u32 = 16;
const REQUANT_MAX_SHIFT: u32 = 30;
const REQUANT_RANDOM_VECTORS: usize = 4000;

/// `clamp((acc * multiplier + offset) >> shift, lo, hi)` with an arithmetic shift.
fn requantize(acc: i64, multiplier: i64, offset: i64, shift: u32, lo: i64, hi: i64) -> i128 {
    ((i128::from(acc) * i128::from(multiplier) + i128::from(offset)) >> shift)
        .clamp(lo.into(), hi.into())
}

/// The clamp ranges tried: the output's full range, a random sub-range, a ReLU-like range, a
/// single value, and the ports' full 32-bit range (a no-op clamp, used only when the value fits
/// the output).
fn requant_clamp(rng: &mut ChaCha8Rng, shifted: i128) -> (i64, i64) {
    let (out_min, out_max) = (signed_min(REQUANT_OUTW), signed_max(REQUANT_OUTW));
    match rng.random_range(0..5) {
        0 => (out_min, out_max),
        1 => {
            let a = rng.random_range(out_min..=out_max);
            let b = rng.random_range(out_min..=out_max);
            (a.min(b), a.max(b))
        }
        2 => (0, unsigned_max(rng.random_range(1..REQUANT_OUTW))),
        3 => {
            let point = rng.random_range(out_min..=out_max);
            (point, point)
        }
        _ if (i128::from(out_min)..=i128::from(out_max)).contains(&shifted) => {
            (i32::MIN.into(), i32::MAX.into())
        }
        _ => (out_min, out_max),
    }
}

fn push_requant_vector(
    vectors: &mut Vectors,
    rng: &mut ChaCha8Rng,
    acc: i64,
    multiplier: i64,
    offset: i64,
    shift: u32,
) {
    let shifted = (i128::from(acc) * i128::from(multiplier) + i128::from(offset)) >> shift;
    let (lo, hi) = requant_clamp(rng, shifted);
    let value = requantize(acc, multiplier, offset, shift, lo, hi);
    let value = i64::try_from(value).expect("a clamped value fits 64 bits");
    assert!(
        (signed_min(REQUANT_OUTW)..=signed_max(REQUANT_OUTW)).contains(&value),
        "clamp range [{lo}, {hi}] lets {value} outside the output width"
    );
    vectors.check(&[acc, multiplier, offset, shift.into(), lo, hi, value]);
}

#[test]
fn requant_scales_shifts_and_clamps() {
    assert_eq!(requantize(-3, 1, 0, 1, -100, 100), -2);
    assert_eq!(requantize(1000, 1000, 0, 0, -128, 127), 127);

    let mut rng = ChaCha8Rng::seed_from_u64(0x5ca1e);
    let mut vectors = Vectors::default();
    let acc_extremes = [signed_min(REQUANT_ACCW), -1, 0, 1, signed_max(REQUANT_ACCW)];
    let multiplier_extremes = [signed_min(REQUANT_MW), -1, 0, 1, signed_max(REQUANT_MW)];
    let offset_extremes = [signed_min(REQUANT_OW), -1, 0, 1, signed_max(REQUANT_OW)];
    for &acc in &acc_extremes {
        for &multiplier in &multiplier_extremes {
            for &offset in &offset_extremes {
                for shift in [0, 1, REQUANT_OUTW - 1, REQUANT_MAX_SHIFT] {
                    push_requant_vector(&mut vectors, &mut rng, acc, multiplier, offset, shift);
                }
            }
        }
    }
    for _ in 0..REQUANT_RANDOM_VECTORS {
        let acc = rng.random_range(signed_min(REQUANT_ACCW)..=signed_max(REQUANT_ACCW));
        let multiplier = rng.random_range(signed_min(REQUANT_MW)..=signed_max(REQUANT_MW));
        let offset = if rng.random_bool(0.5) {
            rng.random_range(signed_min(REQUANT_OW)..=signed_max(REQUANT_OW))
        } else {
            rng.random_range(-4096..=4096)
        };
        // Half the shifts are random; half bring the value near the output's range, as the
        // compiler's requantization does, so that the clamp does not always decide the result.
        let shift = if rng.random_bool(0.5) {
            rng.random_range(0..=REQUANT_MAX_SHIFT)
        } else {
            let scaled = i128::from(acc) * i128::from(multiplier) + i128::from(offset);
            let magnitude_bits = 128 - scaled.unsigned_abs().leading_zeros();
            magnitude_bits
                .saturating_sub(REQUANT_OUTW - 2)
                .min(REQUANT_MAX_SHIFT)
        };
        push_requant_vector(&mut vectors, &mut rng, acc, multiplier, offset, shift);
    }
    let parameters = [
        ("ACCW", REQUANT_ACCW.into()),
        ("MW", REQUANT_MW.into()),
        ("OW", REQUANT_OW.into()),
        ("RQW", REQUANT_RQW.into()),
        ("OUTW", REQUANT_OUTW.into()),
    ];
    simulate("tb_requant", "qnnc_requant", &parameters, &vectors).assert_all_passed(&vectors);
}

// ---- qnnc_act_buffer -------------------------------------------------------------------------

/// One buffer configuration under test.
struct BufferShape {
    simd: usize,
    ebits: u32,
    rows: usize,
    row_bits: u32,
}

const BUFFER_SHAPES: [BufferShape; 2] = [
    BufferShape {
        simd: 4,
        ebits: 8,
        rows: 12,
        row_bits: 4,
    },
    BufferShape {
        simd: 16,
        ebits: 8,
        rows: 64,
        row_bits: 6,
    },
];
const BUFFER_RANDOM_STEPS: usize = 800;

/// Step kinds of the buffer testbench's vector lines.
const BUFFER_WRITE: i64 = 0;
const BUFFER_CHECK_ROW: i64 = 1;
const BUFFER_CHECK_BANKS: i64 = 2;

/// The buffer's contents by element: element e is in bank e % SIMD, row e / SIMD.
struct BufferModel<'a> {
    shape: &'a BufferShape,
    elements: Vec<i64>,
}

impl BufferModel<'_> {
    fn element(&self, bank: usize, row: usize) -> i64 {
        self.elements[row * self.shape.simd + bank]
    }

    /// One clock edge of writes: `(write, row, data)` for each bank.
    fn write(&mut self, vectors: &mut Vectors, banks: &[(bool, usize, i64)]) {
        let mut line = vec![BUFFER_WRITE];
        for (bank, &(write, row, data)) in banks.iter().enumerate() {
            if write {
                self.elements[row * self.shape.simd + bank] = data;
            }
            line.extend([flag(write), row as i64, data]);
        }
        vectors.step(&line);
    }

    fn check_row(&self, vectors: &mut Vectors, row: usize) {
        let mut line = vec![BUFFER_CHECK_ROW, row as i64];
        line.extend((0..self.shape.simd).map(|bank| self.element(bank, row)));
        vectors.check(&line);
    }

    fn check_banks(&self, vectors: &mut Vectors, rows: &[usize]) {
        let mut line = vec![BUFFER_CHECK_BANKS];
        for (bank, &row) in rows.iter().enumerate() {
            line.extend([row as i64, self.element(bank, row)]);
        }
        vectors.check(&line);
    }
}

fn buffer_vectors(rng: &mut ChaCha8Rng, shape: &BufferShape) -> Vectors {
    let mut vectors = Vectors::default();
    let mut model = BufferModel {
        shape,
        elements: vec![0; shape.simd * shape.rows],
    };
    let data_max = unsigned_max(shape.ebits);
    // Fill every row, each bank at a different row in the same cycle.
    for step in 0..shape.rows {
        let banks: Vec<_> = (0..shape.simd)
            .map(|bank| {
                (
                    true,
                    (step + bank) % shape.rows,
                    rng.random_range(0..=data_max),
                )
            })
            .collect();
        model.write(&mut vectors, &banks);
    }
    // Partial writes (disabled banks carry data too) mixed with reads of both kinds.
    for _ in 0..BUFFER_RANDOM_STEPS {
        match rng.random_range(0..10) {
            0..=3 => {
                let banks: Vec<_> = (0..shape.simd)
                    .map(|_| {
                        (
                            rng.random_bool(0.5),
                            rng.random_range(0..shape.rows),
                            rng.random_range(0..=data_max),
                        )
                    })
                    .collect();
                model.write(&mut vectors, &banks);
            }
            4..=6 => model.check_row(&mut vectors, rng.random_range(0..shape.rows)),
            _ => {
                let rows: Vec<_> = (0..shape.simd)
                    .map(|_| rng.random_range(0..shape.rows))
                    .collect();
                model.check_banks(&mut vectors, &rows);
            }
        }
    }
    // Every element once more through each port.
    for row in 0..shape.rows {
        model.check_row(&mut vectors, row);
        let rows: Vec<_> = (0..shape.simd)
            .map(|bank| (row + bank) % shape.rows)
            .collect();
        model.check_banks(&mut vectors, &rows);
    }
    vectors
}

#[test]
fn act_buffer_reads_back_banked_writes() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xbaf);
    for shape in &BUFFER_SHAPES {
        let vectors = buffer_vectors(&mut rng, shape);
        let parameters = [
            ("SIMD", shape.simd as i64),
            ("EBITS", shape.ebits.into()),
            ("ROWS", shape.rows as i64),
            ("RW", shape.row_bits.into()),
        ];
        simulate("tb_act_buffer", "qnnc_act_buffer", &parameters, &vectors)
            .assert_all_passed(&vectors);
    }
}

// ---- qnnc_argmax -----------------------------------------------------------------------------

const ARGMAX_CLASSES: usize = 10;
const ARGMAX_LW: u32 = 12;
const ARGMAX_CW: u32 = 4;
const ARGMAX_VECTORS: usize = 3000;

/// The index of the largest logit, the first one on ties.
fn argmax(logits: &[i64]) -> usize {
    let mut best = 0;
    for (index, &logit) in logits.iter().enumerate() {
        if logit > logits[best] {
            best = index;
        }
    }
    best
}

#[test]
fn argmax_picks_first_largest_logit() {
    assert_eq!(argmax(&[1, 3, 3, 2]), 1);

    let mut rng = ChaCha8Rng::seed_from_u64(0xa59);
    let mut vectors = Vectors::default();
    let (low, high) = (signed_min(ARGMAX_LW), signed_max(ARGMAX_LW));
    for _ in 0..ARGMAX_VECTORS {
        let mut logits: Vec<i64> = match rng.random_range(0..4) {
            // Full-range logits.
            0 => (0..ARGMAX_CLASSES)
                .map(|_| rng.random_range(low..=high))
                .collect(),
            // Few distinct values: ties are frequent.
            1 => (0..ARGMAX_CLASSES)
                .map(|_| rng.random_range(-2..=2))
                .collect(),
            // All equal: the answer is class 0.
            2 => vec![rng.random_range(low..=high); ARGMAX_CLASSES],
            // The extremes: mostly the smallest logit, the largest at some classes.
            _ => (0..ARGMAX_CLASSES)
                .map(|_| if rng.random_bool(0.2) { high } else { low })
                .collect(),
        };
        // Now and then repeat the maximum at a later class, so the first one must win.
        if rng.random_bool(0.3) {
            let first = argmax(&logits);
            let later = rng.random_range(first..ARGMAX_CLASSES);
            logits[later] = logits[first];
        }
        let mut line = vec![argmax(&logits) as i64];
        line.extend(&logits);
        vectors.check(&line);
    }
    let parameters = [
        ("CLASSES", ARGMAX_CLASSES as i64),
        ("LW", ARGMAX_LW.into()),
        ("CW", ARGMAX_CW.into()),
    ];
    simulate("tb_argmax", "qnnc_argmax", &parameters, &vectors).assert_all_passed(&vectors);
}
