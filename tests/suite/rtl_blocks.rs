//! Unit testbenches of the hand-written Verilog blocks in `templates/verilog`, run under
//! Verilator. Each test draws seeded vectors from a reference model of one block, written here
//! from the block's documented behaviour (not from the compiler's code), writes them to a file,
//! builds the block's testbench from `rtl_tests/` with the block's parameters and runs it. The
//! testbench compares every output with the expected value and reports `errors N` and
//! `checked M`; a test passes only when nothing mismatched and every vector was checked.
//!
//! Clocked blocks take one vector line a clock cycle (see `rtl_tests/vectors.vh`): a check
//! flag, the inputs, and the outputs expected before that cycle's rising edge. Their reference
//! models therefore follow the documented latency of each block: a result is expected as many
//! lines after its inputs as the block has registered stages, and inputs that a block takes
//! only in a later stage are held for as long as the documentation says they are static.
//!
//! Verilator is required: without it these tests fail, naming the Debian package `verilator`.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Command, Output};

use rand::seq::{IndexedRandom, SliceRandom};
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

/// The vector lines of a clocked block, one a clock cycle: the check flag, the inputs, then
/// the outputs expected before the cycle's rising edge (placeholders when not checked).
struct Cycles {
    vectors: Vectors,
    outputs: usize,
}

impl Cycles {
    fn new(outputs: usize) -> Self {
        Cycles {
            vectors: Vectors::default(),
            outputs,
        }
    }

    /// One cycle driving `inputs`, checking the block's outputs against `expected` if given.
    fn cycle(&mut self, inputs: &[i64], expected: Option<&[i64]>) {
        let mut line = vec![flag(expected.is_some())];
        line.extend(inputs);
        match expected {
            Some(outputs) => {
                assert_eq!(outputs.len(), self.outputs, "one value per output");
                line.extend(outputs);
                self.vectors.check(&line);
            }
            None => {
                line.extend(std::iter::repeat_n(0, self.outputs));
                self.vectors.step(&line);
            }
        }
    }

    /// As `cycle`, for a block with one output.
    fn cycle_one(&mut self, inputs: &[i64], expected: Option<i64>) {
        self.cycle(inputs, expected.as_ref().map(std::slice::from_ref));
    }
}

/// The cycles of a block whose outputs are a function of its inputs `latency` cycles earlier:
/// each cycle's result, when it is to be checked, is expected `latency` lines later.
struct Pipeline {
    cycles: Cycles,
    latency: usize,
    in_flight: VecDeque<Option<Vec<i64>>>,
    last_inputs: Vec<i64>,
}

impl Pipeline {
    fn new(latency: usize, outputs: usize) -> Self {
        Pipeline {
            cycles: Cycles::new(outputs),
            latency,
            in_flight: VecDeque::new(),
            last_inputs: Vec::new(),
        }
    }

    /// One cycle driving `inputs`, whose outputs are `result` (`None`: not checked).
    fn issue(&mut self, inputs: &[i64], result: Option<Vec<i64>>) {
        self.in_flight.push_back(result);
        let due = if self.in_flight.len() > self.latency {
            self.in_flight.pop_front().flatten()
        } else {
            None
        };
        self.cycles.cycle(inputs, due.as_deref());
        self.last_inputs = inputs.to_vec();
    }

    /// The vectors, after cycles that hold the last inputs until every result was checked.
    fn finish(mut self) -> Vectors {
        let inputs = self.last_inputs.clone();
        for _ in 0..self.latency {
            self.issue(&inputs, None);
        }
        self.cycles.vectors
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

/// Builds `rtl_tests/{testbench}.v` around the blocks `templates/verilog/{block}.v` with
/// Verilator (all warnings fatal), overriding the testbench's parameters with `parameters`,
/// runs it on `vectors` and returns its report.
fn simulate(
    testbench: &str,
    blocks: &[&str],
    parameters: &[(&str, i64)],
    vectors: &Vectors,
) -> TestbenchReport {
    simulate_with_files(testbench, blocks, parameters, &[], vectors)
}

/// As `simulate`, with `files` (name and text) written to the directory the testbench runs in.
fn simulate_with_files(
    testbench: &str,
    blocks: &[&str],
    parameters: &[(&str, i64)],
    files: &[(&str, String)],
    vectors: &Vectors,
) -> TestbenchReport {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let testbenches = root.join("rtl_tests");
    let work = tempfile::tempdir().expect("a temporary directory");
    let vector_file = work.path().join("vectors.txt");
    std::fs::write(&vector_file, &vectors.text).expect("the vector file is written");
    for (name, text) in files {
        std::fs::write(work.path().join(name), text).expect("the testbench's file is written");
    }

    let mut build = qnnc::sim::verilator_command();
    build
        .current_dir(work.path())
        .args(["--binary", "--timing", "-Wall", "-j", "2"])
        // Verilator 5.006's liveness pass drops assignments made in a loop with timing
        // controls (such as the testbenches' `checked` and `errors` counters, which then read
        // as 0 after the loop); it is off for the testbenches.
        .arg("-fno-life")
        .args(["--top-module", testbench, "--Mdir", "obj_dir", "-o", "Vtb"])
        .arg(format!("-I{}", testbenches.display()))
        .args(
            parameters
                .iter()
                .map(|(name, value)| format!("-G{name}={value}")),
        )
        .arg(testbenches.join(format!("{testbench}.v")))
        .args(
            blocks
                .iter()
                .map(|block| root.join("templates/verilog").join(format!("{block}.v"))),
        );
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

/// The latency a block's header comment states (`Latency: N cycles`, N a number or one of
/// `parameters`): the contract that its
/// vectors follow.
fn documented_latency(block: &str, parameters: &[(&str, i64)]) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates/verilog")
        .join(format!("{block}.v"));
    let source = std::fs::read_to_string(&path).expect("the block's source is readable");
    let header: String = source
        .lines()
        .take_while(|line| line.starts_with("//"))
        .map(|line| line.trim_start_matches('/').trim())
        .collect::<Vec<_>>()
        .join(" ");
    let latencies: Vec<usize> = header
        .split("Latency: ")
        .skip(1)
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let latency = words.next()?;
            let latency = match parameters.iter().find(|(name, _)| *name == latency) {
                Some(&(_, value)) => usize::try_from(value).ok()?,
                None => latency.parse().ok()?,
            };
            words.next()?.starts_with("cycle").then_some(latency)
        })
        .collect();
    match latencies.as_slice() {
        [latency] => *latency,
        _ => panic!("{block}'s header states no single 'Latency: N cycles' (N a number or a parameter):\n{header}"),
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

/// A random word of `width` bits as the fields of a wide word in the vector files: 32-bit
/// chunks, the least significant first.
fn random_word(rng: &mut ChaCha8Rng, width: u32) -> Vec<i64> {
    (0..width.div_ceil(32))
        .map(|chunk| rng.random_range(0..=unsigned_max((width - 32 * chunk).min(32))))
        .collect()
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
                                let a_value = activation_value(a, a_valid, a_bipolar);
                                // MASK mode passes the activation where bit 0 of the weight is
                                // set, whatever the weight's encoding.
                                for (mask, product) in [
                                    (false, weight_value(w, wbits, w_bipolar) * a_value),
                                    (true, (w & 1) * a_value),
                                ] {
                                    vectors.check(&[
                                        wbits.into(),
                                        ebits.into(),
                                        w,
                                        flag(w_bipolar),
                                        flag(mask),
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
    }
    simulate("tb_lane", &["qnnc_lane"], &[], &vectors).assert_all_passed(&vectors);
}

// ---- qnnc_threshold --------------------------------------------------------------------------

const THRESHOLD_ACCW: u32 = 12;
const THRESHOLD_TW: u32 = 14;
const THRESHOLD_EBITS: u32 = 8;
const THRESHOLD_PE: usize = 2;
/// Groups of channels in the memories, and their address bits.
const THRESHOLD_GROUPS: usize = 5;
const THRESHOLD_AW: u32 = 3;
/// Levels of the binary search under test: 15 thresholds, 3, and the single threshold of a
/// bipolar output.
const THRESHOLD_LEVELS: [u32; 3] = [4, 2, 1];
const THRESHOLD_CYCLES: usize = 1500;

/// The count of thresholds the accumulator reaches (`acc >= t`, or `acc <= t` on descending
/// channels).
fn threshold_code(acc: i64, thresholds: &[i64], descending: bool) -> i64 {
    thresholds
        .iter()
        .filter(|&&t| if descending { acc <= t } else { acc >= t })
        .count() as i64
}

/// A table of `count` thresholds sorted in the order they are reached (descending on
/// descending channels): the first `used` ones drawn over the accumulator's range, or now and
/// then over the threshold's whole width, and the rest padding that no accumulator reaches.
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

/// One channel: its sorted table and direction.
struct ThresholdChannel {
    table: Vec<i64>,
    descending: bool,
}

/// The memory files of `levels` levels for `channels[group][slot]`, laid out as the block's
/// header states: level l holds, per group and prefix p < 2^l, each slot's threshold at
/// index p * 2^(levels - l) + 2^(levels - l - 1) - 1, with level 0's descending flag above it.
fn threshold_files(channels: &[Vec<ThresholdChannel>], levels: u32) -> Vec<(String, String)> {
    (0..levels)
        .map(|level| {
            let slot = THRESHOLD_TW + u32::from(level == 0);
            let span = 1usize << (levels - level);
            let mut text = String::new();
            for group in channels {
                for prefix in 0..1usize << level {
                    let mut word = 0u64;
                    for (i, channel) in group.iter().enumerate() {
                        let threshold = channel.table[prefix * span + span / 2 - 1];
                        let mut field = threshold as u64 & ((1 << THRESHOLD_TW) - 1);
                        if level == 0 && channel.descending {
                            field |= 1 << THRESHOLD_TW;
                        }
                        word |= field << (i as u32 * slot);
                    }
                    let chunks = [(word & 0xffff_ffff) as i64, (word >> 32) as i64];
                    text += &(hex_word(&chunks, slot * THRESHOLD_PE as u32) + "\n");
                }
            }
            (format!("thresholds_{level}.hex"), text)
        })
        .collect()
}

#[test]
fn threshold_search_counts_reached_thresholds() {
    assert_eq!(threshold_code(5, &[1, 5, 9], false), 2);
    assert_eq!(threshold_code(5, &[9, 5, 1], true), 2);
    assert_eq!(threshold_code(0, &[1], false), 0);

    let mut rng = ChaCha8Rng::seed_from_u64(0x7e5);
    for levels in THRESHOLD_LEVELS {
        // The group is presented a cycle before the accumulator.
        let latency = documented_latency("qnnc_threshold", &[("LEVELS", levels.into())]) + 1;
        let count = (1usize << levels) - 1;
        let channels: Vec<Vec<ThresholdChannel>> = (0..THRESHOLD_GROUPS)
            .map(|_| {
                (0..THRESHOLD_PE)
                    .map(|_| {
                        let used = *[0, 1, count / 2, count, rng.random_range(0..=count)]
                            .choose(&mut rng)
                            .expect("non-empty");
                        let descending = rng.random_bool(0.5);
                        ThresholdChannel {
                            table: threshold_table(&mut rng, count, used, descending),
                            descending,
                        }
                    })
                    .collect()
            })
            .collect();
        let acc_range = signed_min(THRESHOLD_ACCW)..=signed_max(THRESHOLD_ACCW);
        let mut pipeline = Pipeline::new(latency, THRESHOLD_PE);
        for _ in 0..THRESHOLD_CYCLES {
            let group = rng.random_range(0..THRESHOLD_GROUPS);
            // Accumulators on a threshold, next to one, at the range's ends, or anywhere.
            let ties: Vec<i64> = channels[group]
                .iter()
                .flat_map(|c| c.table.iter().copied())
                .filter(|t| acc_range.contains(t))
                .collect();
            let acc = match rng.random_range(0..4) {
                0 if !ties.is_empty() => *ties.choose(&mut rng).expect("non-empty"),
                1 if !ties.is_empty() => (ties.choose(&mut rng).expect("non-empty")
                    + rng.random_range(-1..=1))
                .clamp(*acc_range.start(), *acc_range.end()),
                2 => *[*acc_range.start(), *acc_range.end(), 0, -1]
                    .choose(&mut rng)
                    .expect("non-empty"),
                _ => rng.random_range(acc_range.clone()),
            };
            let codes = channels[group]
                .iter()
                .map(|c| threshold_code(acc, &c.table, c.descending))
                .collect();
            pipeline.issue(&[group as i64, acc], Some(codes));
        }
        let vectors = pipeline.finish();
        let parameters = [
            ("ACCW", THRESHOLD_ACCW.into()),
            ("TW", THRESHOLD_TW.into()),
            ("LEVELS", levels.into()),
            ("EBITS", THRESHOLD_EBITS.into()),
            ("PE", THRESHOLD_PE as i64),
            ("DEPTH", THRESHOLD_GROUPS as i64),
            ("AW", THRESHOLD_AW.into()),
        ];
        let files = threshold_files(&channels, levels);
        let files: Vec<(&str, String)> = files
            .iter()
            .map(|(name, text)| (name.as_str(), text.clone()))
            .collect();
        simulate_with_files(
            "tb_threshold",
            &["qnnc_threshold", "qnnc_rom"],
            &parameters,
            &files,
            &vectors,
        )
        .assert_all_passed(&vectors);
    }
}

// ---- qnnc_requant ----------------------------------------------------------------------------

/// One requantizer configuration under test.
struct RequantShape {
    accw: u32,
    mw: u32,
    ow: u32,
    rqw: u32,
    shw: u32,
    clw: u32,
    outw: u32,
}

/// A clamp range wider than the output, and one narrower than it.
const REQUANT_SHAPES: [RequantShape; 2] = [
    RequantShape {
        accw: 16,
        mw: 16,
        ow: 32,
        rqw: 40,
        shw: 6,
        clw: 24,
        outw: 16,
    },
    RequantShape {
        accw: 12,
        mw: 10,
        ow: 20,
        rqw: 24,
        shw: 4,
        clw: 6,
        outw: 8,
    },
];
/// Runs of random vectors sharing the shift and the clamp, and the longest run.
const REQUANT_RUNS: usize = 1500;
const REQUANT_MAX_RUN: usize = 8;

/// `clamp((acc * multiplier + offset) >> shift, lo, hi)` with an arithmetic shift.
fn requantize(acc: i64, multiplier: i64, offset: i64, shift: u32, lo: i64, hi: i64) -> i128 {
    (requant_shifted(acc, multiplier, offset, shift)).clamp(lo.into(), hi.into())
}

fn requant_shifted(acc: i64, multiplier: i64, offset: i64, shift: u32) -> i128 {
    (i128::from(acc) * i128::from(multiplier) + i128::from(offset)) >> shift
}

impl RequantShape {
    fn max_shift(&self) -> u32 {
        unsigned_max(self.shw) as u32
    }

    /// The clamp bounds that fit both the output and the clamp ports.
    fn clamp_limits(&self) -> (i64, i64) {
        (
            signed_min(self.outw).max(signed_min(self.clw)),
            signed_max(self.outw).min(signed_max(self.clw)),
        )
    }

    /// The clamp ranges tried: the widest that fits the output and the ports, a random
    /// sub-range, a ReLU-like range, a single value, and the ports' whole range when it is
    /// wider than the output (a no-op clamp, used only when every value clamped fits the
    /// output).
    fn clamp(&self, rng: &mut ChaCha8Rng, shifted: &[i128]) -> (i64, i64) {
        let (low, high) = self.clamp_limits();
        let output = i128::from(signed_min(self.outw))..=i128::from(signed_max(self.outw));
        match rng.random_range(0..5) {
            0 => (low, high),
            1 => {
                let a = rng.random_range(low..=high);
                let b = rng.random_range(low..=high);
                (a.min(b), a.max(b))
            }
            2 => {
                let bits = 64 - high.leading_zeros();
                (0, unsigned_max(rng.random_range(1..=bits)))
            }
            3 => {
                let point = rng.random_range(low..=high);
                (point, point)
            }
            _ if self.clw > self.outw && shifted.iter().all(|s| output.contains(s)) => {
                (signed_min(self.clw), signed_max(self.clw))
            }
            _ => (low, high),
        }
    }

    /// A shift that brings the value near the output's range, as the compiler's
    /// requantization does, so that the clamp does not always decide the result.
    fn fitting_shift(&self, acc: i64, multiplier: i64, offset: i64) -> u32 {
        let scaled = i128::from(acc) * i128::from(multiplier) + i128::from(offset);
        let magnitude_bits = 128 - scaled.unsigned_abs().leading_zeros();
        magnitude_bits
            .saturating_sub(self.outw - 2)
            .min(self.max_shift())
    }

    /// Cycles of `operands` (acc, multiplier, offset) sharing `shift` and a clamp, with filler
    /// cycles after them that hold the shift and the clamp for the last one's later stages.
    fn run(
        &self,
        pipeline: &mut Pipeline,
        rng: &mut ChaCha8Rng,
        operands: &[(i64, i64, i64)],
        shift: u32,
    ) {
        let shifted: Vec<i128> = operands
            .iter()
            .map(|&(acc, multiplier, offset)| requant_shifted(acc, multiplier, offset, shift))
            .collect();
        let (lo, hi) = self.clamp(rng, &shifted);
        let output = signed_min(self.outw)..=signed_max(self.outw);
        for &(acc, multiplier, offset) in operands {
            let value = requantize(acc, multiplier, offset, shift, lo, hi);
            let value = i64::try_from(value).expect("a clamped value fits 64 bits");
            assert!(
                output.contains(&value),
                "clamp range [{lo}, {hi}] lets {value} outside the output width"
            );
            pipeline.issue(
                &[acc, multiplier, offset, shift.into(), lo, hi],
                Some(vec![value]),
            );
        }
        for _ in 1..pipeline.latency {
            let (acc, multiplier, offset) = self.random_operands(rng);
            pipeline.issue(&[acc, multiplier, offset, shift.into(), lo, hi], None);
        }
    }

    fn random_operands(&self, rng: &mut ChaCha8Rng) -> (i64, i64, i64) {
        let acc = rng.random_range(signed_min(self.accw)..=signed_max(self.accw));
        let multiplier = rng.random_range(signed_min(self.mw)..=signed_max(self.mw));
        let offset = if rng.random_bool(0.5) {
            rng.random_range(signed_min(self.ow)..=signed_max(self.ow))
        } else {
            rng.random_range(-4096..=4096)
        };
        (acc, multiplier, offset)
    }

    fn vectors(&self, rng: &mut ChaCha8Rng) -> Vectors {
        // The sum of the product and the offset fits the requantizer's width.
        assert!(self.rqw > (self.accw + self.mw).max(self.ow));
        let mut pipeline = Pipeline::new(documented_latency("qnnc_requant", &[]), 1);
        let extremes = |bits: u32| [signed_min(bits), -1, 0, 1, signed_max(bits)];
        for acc in extremes(self.accw) {
            for multiplier in extremes(self.mw) {
                for offset in extremes(self.ow) {
                    for shift in [0, 1, self.outw - 1, self.max_shift()] {
                        self.run(&mut pipeline, rng, &[(acc, multiplier, offset)], shift);
                    }
                }
            }
        }
        for _ in 0..REQUANT_RUNS {
            let operands: Vec<_> = (0..rng.random_range(1..=REQUANT_MAX_RUN))
                .map(|_| self.random_operands(rng))
                .collect();
            // Half the shifts are random; half suit the run's first value.
            let shift = if rng.random_bool(0.5) {
                rng.random_range(0..=self.max_shift())
            } else {
                let (acc, multiplier, offset) = operands[0];
                self.fitting_shift(acc, multiplier, offset)
            };
            self.run(&mut pipeline, rng, &operands, shift);
        }
        pipeline.finish()
    }
}

#[test]
fn requant_scales_shifts_and_clamps() {
    assert_eq!(requantize(-3, 1, 0, 1, -100, 100), -2);
    assert_eq!(requantize(1000, 1000, 0, 0, -128, 127), 127);
    assert_eq!(requantize(-1, 1, 0, 63, -100, 100), -1);

    let mut rng = ChaCha8Rng::seed_from_u64(0x5ca1e);
    for shape in &REQUANT_SHAPES {
        let vectors = shape.vectors(&mut rng);
        let parameters = [
            ("ACCW", shape.accw.into()),
            ("MW", shape.mw.into()),
            ("OW", shape.ow.into()),
            ("RQW", shape.rqw.into()),
            ("SHW", shape.shw.into()),
            ("CLW", shape.clw.into()),
            ("OUTW", shape.outw.into()),
        ];
        simulate("tb_requant", &["qnnc_requant"], &parameters, &vectors)
            .assert_all_passed(&vectors);
    }
}

// ---- qnnc_ram and qnnc_rom -------------------------------------------------------------------

/// One memory configuration under test: words of `width` bits, `depth` of them, addresses of
/// `aw` bits.
struct MemoryShape {
    width: u32,
    depth: usize,
    aw: u32,
}

impl MemoryShape {
    fn chunks(&self) -> usize {
        self.width.div_ceil(32) as usize
    }

    fn parameters(&self) -> [(&'static str, i64); 3] {
        [
            ("WIDTH", self.width.into()),
            ("DEPTH", self.depth as i64),
            ("AW", self.aw.into()),
        ]
    }

    /// The address of a random word (never one past the depth, which the port could carry).
    fn random_address(&self, rng: &mut ChaCha8Rng) -> usize {
        rng.random_range(0..self.depth)
    }
}

/// A word of one bit, a word of a width that is not a multiple of 32 over a depth that is
/// not a power of two, and a wide, deep one.
const RAM_SHAPES: [MemoryShape; 3] = [
    MemoryShape {
        width: 1,
        depth: 16,
        aw: 4,
    },
    MemoryShape {
        width: 36,
        depth: 12,
        aw: 4,
    },
    MemoryShape {
        width: 144,
        depth: 40,
        aw: 6,
    },
];
const RAM_RANDOM_CYCLES: usize = 1500;
const RAM_LATENCY: usize = 1;

/// The memory's words as written so far (`None`: never written), and the vector cycles.
struct RamModel<'a> {
    shape: &'a MemoryShape,
    words: Vec<Option<Vec<i64>>>,
    pipeline: Pipeline,
}

impl RamModel<'_> {
    /// One cycle: a write of random data to `write` if given (otherwise the write port carries
    /// a random address and data with the enable low) and a read of `read`, whose word is
    /// expected on the next cycle. The read address is never the one written.
    fn cycle(&mut self, rng: &mut ChaCha8Rng, write: Option<usize>, read: usize) {
        assert_ne!(write, Some(read), "no cycle reads the address it writes");
        let write_addr = write.unwrap_or_else(|| self.shape.random_address(rng));
        let data = random_word(rng, self.shape.width);
        let mut inputs = vec![flag(write.is_some()), write_addr as i64];
        inputs.extend(&data);
        inputs.push(read as i64);
        self.pipeline.issue(&inputs, self.words[read].clone());
        if write.is_some() {
            self.words[write_addr] = Some(data);
        }
    }

    /// A read address other than `write`: often `recent`, the address written the cycle
    /// before, otherwise a random one.
    fn read_address(
        &self,
        rng: &mut ChaCha8Rng,
        write: Option<usize>,
        recent: Option<usize>,
    ) -> usize {
        match recent {
            Some(recent) if recent != write.unwrap_or(usize::MAX) && rng.random_bool(0.3) => recent,
            _ => loop {
                let read = self.shape.random_address(rng);
                if Some(read) != write {
                    break read;
                }
            },
        }
    }
}

fn ram_vectors(rng: &mut ChaCha8Rng, shape: &MemoryShape) -> Vectors {
    let mut model = RamModel {
        shape,
        words: vec![None; shape.depth],
        pipeline: Pipeline::new(RAM_LATENCY, shape.chunks()),
    };
    // Write every address once, in a random order.
    let mut order: Vec<usize> = (0..shape.depth).collect();
    order.shuffle(rng);
    let mut recent = None;
    for &write in &order {
        let read = model.read_address(rng, Some(write), recent);
        model.cycle(rng, Some(write), read);
        recent = Some(write);
    }
    // Writes and reads at random, reads often of the word written the cycle before.
    for _ in 0..RAM_RANDOM_CYCLES {
        let write = rng.random_bool(0.6).then(|| shape.random_address(rng));
        let read = model.read_address(rng, write, recent);
        model.cycle(rng, write, read);
        recent = write;
    }
    // Every word once more.
    for read in 0..shape.depth {
        model.cycle(rng, None, read);
    }
    model.pipeline.finish()
}

#[test]
fn ram_reads_what_was_written() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x4a3);
    for shape in &RAM_SHAPES {
        let vectors = ram_vectors(&mut rng, shape);
        simulate("tb_ram", &["qnnc_ram"], &shape.parameters(), &vectors)
            .assert_all_passed(&vectors);
    }
}

const ROM_SHAPES: [MemoryShape; 2] = [
    MemoryShape {
        width: 40,
        depth: 13,
        aw: 4,
    },
    MemoryShape {
        width: 100,
        depth: 64,
        aw: 6,
    },
];
const ROM_RANDOM_CYCLES: usize = 500;
const ROM_LATENCY: usize = 1;

/// A word as one line of a `$readmemh` file: its hex digits, the most significant first.
fn hex_word(chunks: &[i64], width: u32) -> String {
    let digits: String = chunks
        .iter()
        .rev()
        .map(|chunk| format!("{chunk:08x}"))
        .collect();
    digits[digits.len() - width.div_ceil(4) as usize..].to_string()
}

#[test]
fn rom_reads_its_hex_file() {
    assert_eq!(hex_word(&[0x89ab_cdef, 0x1f], 40), "1f89abcdef");
    assert_eq!(hex_word(&[0x1], 1), "1");

    let mut rng = ChaCha8Rng::seed_from_u64(0x120);
    for shape in &ROM_SHAPES {
        // Random words, and words of all zeros and all ones.
        let words: Vec<Vec<i64>> = (0..shape.depth)
            .map(|address| match address % 7 {
                0 => vec![0; shape.chunks()],
                1 => (0..shape.width.div_ceil(32))
                    .map(|chunk| unsigned_max((shape.width - 32 * chunk).min(32)))
                    .collect(),
                _ => random_word(&mut rng, shape.width),
            })
            .collect();
        let file: String = words
            .iter()
            .map(|word| hex_word(word, shape.width) + "\n")
            .collect();

        // Every address in order, then at random, then every address in a random order.
        let mut addresses: Vec<usize> = (0..shape.depth).collect();
        addresses.extend((0..ROM_RANDOM_CYCLES).map(|_| shape.random_address(&mut rng)));
        let mut order: Vec<usize> = (0..shape.depth).collect();
        order.shuffle(&mut rng);
        addresses.extend(order);
        let mut pipeline = Pipeline::new(ROM_LATENCY, shape.chunks());
        for address in addresses {
            pipeline.issue(&[address as i64], Some(words[address].clone()));
        }
        let vectors = pipeline.finish();
        simulate_with_files(
            "tb_rom",
            &["qnnc_rom"],
            &shape.parameters(),
            &[("rom.hex", file)],
            &vectors,
        )
        .assert_all_passed(&vectors);
    }
}

// ---- qnnc_delay ------------------------------------------------------------------------------

/// The delays under test: a wire, one register and three, as (WIDTH, DEPTH).
const DELAY_SHAPES: [(u32, usize); 3] = [(5, 0), (1, 1), (12, 3)];
const DELAY_CYCLES: usize = 2000;

#[test]
fn delay_shifts_and_resets() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xde1a);
    for (width, depth) in DELAY_SHAPES {
        let mut cycles = Cycles::new(1);
        // The registers' contents, the oldest last (`None`: not defined before a reset).
        let mut stages: VecDeque<Option<i64>> = vec![None; depth].into();
        for cycle in 0..DELAY_CYCLES {
            // A reset on the first cycle, then now and then, sometimes on successive cycles.
            let reset = cycle == 0 || rng.random_bool(0.04);
            let d = rng.random_range(0..=unsigned_max(width));
            let q = if depth == 0 {
                Some(d)
            } else {
                *stages.back().expect("depth > 0")
            };
            cycles.cycle_one(&[flag(reset), d], q);
            if depth > 0 {
                if reset {
                    stages.iter_mut().for_each(|stage| *stage = Some(0));
                } else {
                    stages.push_front(Some(d));
                    stages.pop_back();
                }
            }
        }
        let vectors = cycles.vectors;
        let parameters = [("WIDTH", width.into()), ("DEPTH", depth as i64)];
        simulate("tb_delay", &["qnnc_delay"], &parameters, &vectors).assert_all_passed(&vectors);
    }
}

/// The closing report is only as good as the testbenches' counters: a run of the delay's
/// testbench with some expected values wrong must count exactly those lines as mismatches.
#[test]
fn testbench_counts_every_mismatch() {
    const WRONG: [usize; 3] = [5, 17, 18];
    let mut cycles = Cycles::new(1);
    let mut q = None;
    for cycle in 0..40 {
        let d = (cycle as i64 * 7) % 16;
        let expected = q.map(|q: i64| if WRONG.contains(&cycle) { q ^ 1 } else { q });
        cycles.cycle_one(&[flag(cycle == 0), d], expected);
        q = Some(if cycle == 0 { 0 } else { d });
    }
    let vectors = cycles.vectors;
    let report = simulate(
        "tb_delay",
        &["qnnc_delay"],
        &[("WIDTH", 4), ("DEPTH", 1)],
        &vectors,
    );
    assert_eq!(
        (report.errors, report.checked),
        (WRONG.len() as u64, vectors.checks as u64),
        "{}",
        report.output
    );
}

// ---- qnnc_argmax -----------------------------------------------------------------------------

const ARGMAX_CLASSES: usize = 10;
const ARGMAX_LW: u32 = 12;
const ARGMAX_CW: u32 = 4;
const ARGMAX_SCANS: usize = 3000;

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

/// The logits of one scan.
fn argmax_logits(rng: &mut ChaCha8Rng, classes: usize) -> Vec<i64> {
    let (low, high) = (signed_min(ARGMAX_LW), signed_max(ARGMAX_LW));
    let mut logits: Vec<i64> = match rng.random_range(0..4) {
        // Full-range logits.
        0 => (0..classes).map(|_| rng.random_range(low..=high)).collect(),
        // Few distinct values: ties are frequent.
        1 => (0..classes).map(|_| rng.random_range(-2..=2)).collect(),
        // All equal: the answer is class 0.
        2 => vec![rng.random_range(low..=high); classes],
        // The extremes: mostly the smallest logit, the largest at some classes.
        _ => (0..classes)
            .map(|_| if rng.random_bool(0.2) { high } else { low })
            .collect(),
    };
    // Now and then repeat the maximum at a later class, so the first one must win.
    if rng.random_bool(0.3) {
        let first = argmax(&logits);
        let later = rng.random_range(first..classes);
        logits[later] = logits[first];
    }
    logits
}

/// A cycle that gives the block no logit: `start`, the logit and the index are random.
fn argmax_idle(rng: &mut ChaCha8Rng) -> [i64; 4] {
    [
        0,
        flag(rng.random_bool(0.5)),
        rng.random_range(signed_min(ARGMAX_LW)..=signed_max(ARGMAX_LW)),
        rng.random_range(0..=unsigned_max(ARGMAX_CW)),
    ]
}

#[test]
fn argmax_keeps_the_first_largest_logit() {
    assert_eq!(argmax(&[1, 3, 3, 2]), 1);

    let mut rng = ChaCha8Rng::seed_from_u64(0xa59);
    let mut cycles = Cycles::new(1);
    // The best index so far: undefined until the first scan starts.
    let mut best: Option<i64> = None;
    for _ in 0..ARGMAX_SCANS {
        let classes = match rng.random_range(0..10) {
            0 => 1,
            1 => 1 << ARGMAX_CW,
            _ => ARGMAX_CLASSES,
        };
        let logits = argmax_logits(&mut rng, classes);
        for (class, &logit) in logits.iter().enumerate() {
            // Now and then cycles without a logit, before or within the scan.
            while rng.random_bool(0.1) {
                cycles.cycle_one(&argmax_idle(&mut rng), best);
            }
            cycles.cycle_one(&[1, flag(class == 0), logit, class as i64], best);
            // The running maximum: the best of the scan's logits so far.
            best = Some(argmax(&logits[..=class]) as i64);
        }
        assert_eq!(best, Some(argmax(&logits) as i64));
    }
    cycles.cycle_one(&argmax_idle(&mut rng), best);
    let vectors = cycles.vectors;
    let parameters = [("LW", ARGMAX_LW.into()), ("CW", ARGMAX_CW.into())];
    simulate("tb_argmax", &["qnnc_argmax"], &parameters, &vectors).assert_all_passed(&vectors);
}

// ---- qnnc_pe ---------------------------------------------------------------------------------

/// One processing-element configuration under test.
struct PeShape {
    simd: usize,
    simd_log2: u32,
    wbits: u32,
    ebits: u32,
    accw: u32,
    adder_stages: u32,
}

/// One lane; four lanes with no, one and two registered adder levels over binary, 2-bit and
/// 4-bit weights (the 2-bit one with an accumulator as wide as the adder tree's sum); sixteen
/// lanes with two registered levels.
const PE_SHAPES: [PeShape; 5] = [
    PeShape {
        simd: 1,
        simd_log2: 0,
        wbits: 8,
        ebits: 8,
        accw: 22,
        adder_stages: 0,
    },
    PeShape {
        simd: 4,
        simd_log2: 2,
        wbits: 1,
        ebits: 8,
        accw: 16,
        adder_stages: 0,
    },
    PeShape {
        simd: 4,
        simd_log2: 2,
        wbits: 2,
        ebits: 8,
        accw: 14,
        adder_stages: 1,
    },
    PeShape {
        simd: 4,
        simd_log2: 2,
        wbits: 4,
        ebits: 4,
        accw: 16,
        adder_stages: 2,
    },
    PeShape {
        simd: 16,
        simd_log2: 4,
        wbits: 4,
        ebits: 8,
        accw: 20,
        adder_stages: 2,
    },
];
const PE_DOT_PRODUCTS: usize = 500;
/// The most chunks (SIMD operands each) in one dot product.
const PE_MAX_CHUNKS: i64 = 6;

/// The operands of one cycle: the bipolar flags and each lane's weight code, activation code
/// and valid flag.
struct PeOperands {
    w_bipolar: bool,
    a_bipolar: bool,
    lanes: Vec<(i64, i64, bool)>,
}

impl PeOperands {
    /// The sum of the lanes' products.
    fn sum(&self, wbits: u32) -> i64 {
        self.lanes
            .iter()
            .map(|&(w, a, valid)| {
                weight_value(w, wbits, self.w_bipolar) * activation_value(a, valid, self.a_bipolar)
            })
            .sum()
    }
}

/// What the accumulator does with a cycle's operands when their sum reaches it: nothing, start
/// a dot product, or add to it.
#[derive(Clone, Copy, PartialEq)]
enum PeStep {
    Idle,
    First,
    Add,
}

impl PeShape {
    /// The sum's latency: the products' register and the adder tree's registered levels.
    fn latency(&self) -> usize {
        1 + self.adder_stages as usize
    }

    /// The largest magnitude of one cycle's sum.
    fn max_sum(&self) -> i64 {
        let weight = if self.wbits == 1 {
            1
        } else {
            1i64 << (self.wbits - 1)
        };
        self.simd as i64 * weight * unsigned_max(self.ebits)
    }

    /// Chunks per dot product such that no partial sum overflows the accumulator.
    fn max_chunks(&self) -> i64 {
        (signed_max(self.accw) / self.max_sum()).min(PE_MAX_CHUNKS)
    }

    /// Operands of a dot product's chunk. Bipolar codes are 0 or 1; padding lanes carry
    /// random codes. Some chunks give every lane the most negative or the most positive
    /// product.
    fn chunk(&self, rng: &mut ChaCha8Rng, w_bipolar: bool, a_bipolar: bool) -> PeOperands {
        let w_max = if w_bipolar {
            1
        } else {
            unsigned_max(self.wbits)
        };
        let a_max = if a_bipolar {
            1
        } else {
            unsigned_max(self.ebits)
        };
        // The most negative weight code, and the most positive one.
        let (w_negative, w_positive) = if w_bipolar || self.wbits == 1 {
            (0, 1)
        } else {
            (1i64 << (self.wbits - 1), (1i64 << (self.wbits - 1)) - 1)
        };
        let valid: Vec<bool> = match rng.random_range(0..8) {
            // Padding lanes at the tail, as at the end of a row.
            0 | 1 => {
                let count = rng.random_range(1..=self.simd);
                (0..self.simd).map(|j| j < count).collect()
            }
            2 => (0..self.simd).map(|_| rng.random_bool(0.5)).collect(),
            _ => vec![true; self.simd],
        };
        let extreme = rng.random_range(0..10);
        let lanes = valid
            .into_iter()
            .map(|valid| {
                if !valid {
                    let w = rng.random_range(0..=unsigned_max(self.wbits));
                    let a = rng.random_range(0..=unsigned_max(self.ebits));
                    return (w, a, false);
                }
                match extreme {
                    0 => (w_negative, a_max, true),
                    1 => (w_positive, a_max, true),
                    _ => (
                        rng.random_range(0..=w_max),
                        rng.random_range(0..=a_max),
                        true,
                    ),
                }
            })
            .collect();
        PeOperands {
            w_bipolar,
            a_bipolar,
            lanes,
        }
    }

    /// Operands that the accumulator ignores: random codes and flags.
    fn idle(&self, rng: &mut ChaCha8Rng) -> PeOperands {
        PeOperands {
            w_bipolar: rng.random_bool(0.5),
            a_bipolar: rng.random_bool(0.5),
            lanes: (0..self.simd)
                .map(|_| {
                    (
                        rng.random_range(0..=unsigned_max(self.wbits)),
                        rng.random_range(0..=unsigned_max(self.ebits)),
                        rng.random_bool(0.5),
                    )
                })
                .collect(),
        }
    }

    /// The operands of each cycle and what the accumulator does with their sum: dot products
    /// of several chunks, back to back or apart, now and then with idle cycles between chunks.
    fn schedule(&self, rng: &mut ChaCha8Rng) -> Vec<(PeOperands, PeStep)> {
        let mut schedule = Vec::new();
        for _ in 0..PE_DOT_PRODUCTS {
            let w_bipolar = self.wbits > 1 && rng.random_bool(0.25);
            let a_bipolar = rng.random_bool(0.25);
            let chunks = rng.random_range(1..=self.max_chunks());
            for chunk in 0..chunks {
                while rng.random_bool(if chunk == 0 { 0.3 } else { 0.1 }) {
                    schedule.push((self.idle(rng), PeStep::Idle));
                }
                let step = if chunk == 0 {
                    PeStep::First
                } else {
                    PeStep::Add
                };
                schedule.push((self.chunk(rng, w_bipolar, a_bipolar), step));
            }
        }
        schedule
    }

    /// The vector cycles: each cycle's operands, with `accumulate` and `first` of the
    /// operands `latency` cycles earlier, and the accumulator expected before the cycle's edge.
    fn vectors(&self, rng: &mut ChaCha8Rng) -> Vectors {
        assert!(
            self.max_chunks() >= 2,
            "dot products of several chunks fit ACCW"
        );
        let schedule = self.schedule(rng);
        let latency = self.latency();
        let mut cycles = Cycles::new(1);
        // The accumulator: undefined until the first dot product starts.
        let mut acc: Option<i64> = None;
        for cycle in 0..schedule.len() + latency + 1 {
            let idle;
            let operands = match schedule.get(cycle) {
                Some((operands, _)) => operands,
                None => {
                    idle = self.idle(rng);
                    &idle
                }
            };
            let (step, sum) = match cycle.checked_sub(latency).and_then(|c| schedule.get(c)) {
                Some((operands, step)) => (*step, operands.sum(self.wbits)),
                None => (PeStep::Idle, 0),
            };
            // `first` is random when nothing is accumulated.
            let first = match step {
                PeStep::Idle => rng.random_bool(0.5),
                PeStep::First => true,
                PeStep::Add => false,
            };
            let mut inputs = vec![
                flag(operands.w_bipolar),
                flag(operands.a_bipolar),
                flag(step != PeStep::Idle),
                flag(first),
            ];
            for &(w, a, valid) in &operands.lanes {
                inputs.extend([w, a, flag(valid)]);
            }
            cycles.cycle_one(&inputs, acc);
            acc = match step {
                PeStep::Idle => acc,
                PeStep::First => Some(sum),
                PeStep::Add => Some(acc.expect("a dot product starts with its first chunk") + sum),
            };
            if let Some(acc) = acc {
                assert!(
                    (signed_min(self.accw)..=signed_max(self.accw)).contains(&acc),
                    "the accumulator overflows"
                );
            }
        }
        cycles.vectors
    }
}

#[test]
fn pe_accumulates_pipelined_dot_products() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x9e);
    for shape in &PE_SHAPES {
        assert_eq!(1 << shape.simd_log2, shape.simd);
        let vectors = shape.vectors(&mut rng);
        let parameters = [
            ("SIMD", shape.simd as i64),
            ("SIMD_LOG2", shape.simd_log2.into()),
            ("WBITS", shape.wbits.into()),
            ("EBITS", shape.ebits.into()),
            ("ACCW", shape.accw.into()),
            ("ADDER_STAGES", shape.adder_stages.into()),
        ];
        simulate("tb_pe", &["qnnc_pe", "qnnc_lane"], &parameters, &vectors)
            .assert_all_passed(&vectors);
    }
}

// ---- qnnc_rotate -----------------------------------------------------------------------------

/// (LANES, EW): one lane, and words up to 32 bits.
const ROTATE_SHAPES: [(u32, u32); 4] = [(1, 8), (4, 8), (8, 4), (16, 2)];

#[test]
fn rotate_moves_every_element_up_by_its_amount() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x7047);
    for (lanes, ew) in ROTATE_SHAPES {
        let log2 = lanes.trailing_zeros();
        let bits = log2.max(1);
        let mut vectors = Vectors::default();
        for _ in 0..400 {
            let word = rng.random_range(0..=unsigned_max(lanes * ew));
            let by = rng.random_range(0..lanes as i64);
            let element = |w: i64, i: u32| (w >> (i * ew)) & unsigned_max(ew);
            let expected = (0..lanes).fold(0i64, |acc, i| {
                let lane = (i + by as u32) % lanes;
                acc | element(word, i) << (lane * ew)
            });
            vectors.check(&[1, by, word, expected]);
        }
        let parameters = [
            ("LANES", lanes as i64),
            ("LANES_LOG2", log2 as i64),
            ("EW", ew as i64),
            ("BW", bits as i64),
        ];
        simulate("tb_rotate", &["qnnc_rotate"], &parameters, &vectors).assert_all_passed(&vectors);
    }
}
