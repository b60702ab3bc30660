//! Simulation of a build folder: writes the test vectors, builds the design and its testbench
//! with Verilator (or Icarus Verilog), runs it and reads back what the testbench reports.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::ProgressBar;

use crate::golden::Prediction;

pub mod activity;
pub mod measured_energy;
pub mod netlist;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Simulator {
    Verilator,
    Icarus,
}

/// A simulation error: the build folder and what went wrong, on one line.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{tool} not found: install the Debian package {package} (apt-get install {package}), or run `make setup`")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    #[error("{dir}: {tool} failed: {message}")]
    ToolFailed {
        dir: String,
        tool: &'static str,
        message: String,
    },
    #[error("{dir}: {message}")]
    Files { dir: String, message: String },
}

/// What the testbench reported.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    pub images: usize,
    pub mismatches: usize,
    pub first_mismatch: Option<usize>,
    /// The testbench's lines about the first mismatches.
    pub mismatch_lines: Vec<String>,
    /// Cycles from the first pixel to the logits, summed over the images.
    pub cycles: u64,
    /// Cycles of each layer, summed over the images.
    pub layer_cycles: Vec<u64>,
    /// What each layer read, wrote, computed and toggled, summed over the images, when the run
    /// counted it (`+activity`).
    pub activity: Option<Vec<activity::LayerActivity>>,
    /// Wall-clock time of the simulation run (not of the build).
    pub seconds: f64,
}

/// What a run must stay within and agree with: every value the testbench prints is checked
/// against it before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// Layers of the design (per-layer cycle lines name one of them).
    pub layers: usize,
    /// Images written into `sim/images.txt`.
    pub images: usize,
    /// Clock cycles after which the testbench stops (`+max_cycles`); see [`cycle_budget`].
    pub max_cycles: u64,
    /// How long the simulation may print nothing before it is taken to be stuck in zero
    /// simulated time and stopped ([`SILENCE_LIMIT`] unless the user says otherwise).
    pub silence_limit: Duration,
}

/// Cycles an image may take beyond twice its prediction: reset, handshakes, and slack for a
/// short network whose prediction is small.
pub const CYCLE_MARGIN: u64 = 1_000;

/// The cycle budget of a simulation of `images` images that the schedule predicts at
/// `predicted` cycles each: twice the prediction plus [`CYCLE_MARGIN`] an image, and the
/// margin once more for the start. A corrupt memory image or a design that never answers stops
/// there instead of running forever.
pub fn cycle_budget(predicted: u64, images: usize) -> u64 {
    predicted
        .saturating_mul(2)
        .saturating_add(CYCLE_MARGIN)
        .saturating_mul(images as u64)
        .saturating_add(CYCLE_MARGIN)
}

/// The slowest simulation speed the wall-clock backstop allows for, in cycles a second
/// (Icarus Verilog on a gate-level netlist is the slowest case).
const SLOWEST_CYCLES_PER_SECOND: u64 = 200;

/// Wall-clock time after which a simulation process is stopped, whatever its cycle count:
/// ten minutes plus the cycle budget at [`SLOWEST_CYCLES_PER_SECOND`]. A backstop for a
/// simulator that stops advancing time; the cycle budget catches everything else first.
pub fn wall_clock_limit(max_cycles: u64) -> Duration {
    Duration::from_secs(600u64.saturating_add(max_cycles / SLOWEST_CYCLES_PER_SECOND))
}

/// The most output qnnc keeps from one simulation run (a write trace of a large network is a
/// few MiB); more is an error rather than unbounded memory.
const MAX_SIMULATION_OUTPUT: u64 = 256 << 20;

/// Checks that a tool runs, naming the Debian package that provides it.
pub fn require(tool: &'static str, package: &'static str) -> Result<(), SimError> {
    if tool_runs(tool, "-V") {
        Ok(())
    } else {
        Err(SimError::ToolMissing { tool, package })
    }
}

/// A Verilator command that builds its model as fast as it can without slowing the model:
/// - through ccache when it is installed: Verilator's makefile compiles through $OBJCACHE, so
///   the run-time library it compiles into every model is built once, not once a build, and a
///   design built again elsewhere is not compiled again (a user's own OBJCACHE is kept);
/// - with the model's C++ at -O1 instead of Verilator's -Os: for the example CNN at 4 bits that
///   halves the compiler's time (9.0 to 5.0 CPU-s) and simulates as fast (19.1 against 18.4
///   images a second; -O0 builds little faster and simulates 3.7x slower).
pub fn verilator_command() -> Command {
    let mut verilator = Command::new("verilator");
    if std::env::var_os("OBJCACHE").is_none() && tool_runs("ccache", "--version") {
        verilator.env("OBJCACHE", "ccache");
    }
    verilator.args(["-MAKEFLAGS", "OPT_FAST=-O1"]);
    verilator
}

/// Whether `tool` is found and starts (asked for its version by `flag`).
fn tool_runs(tool: &str, flag: &str) -> bool {
    Command::new(tool)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Writes `sim/images.txt` (count, then pixels in hex) and `sim/expected.txt` (class and
/// logits of each image, decimal).
pub fn write_vectors(
    dir: &Path,
    pixels: &[u8],
    per_image: usize,
    expected: &[Prediction],
) -> Result<(), SimError> {
    let files_error = |e: std::io::Error| SimError::Files {
        dir: dir.display().to_string(),
        message: e.to_string(),
    };
    // The vectors are written inside the build folder, never through a link out of it.
    if std::fs::symlink_metadata(dir.join("sim")).is_ok_and(|m| !m.is_dir()) {
        return Err(SimError::Files {
            dir: dir.display().to_string(),
            message: "sim is not a folder (a link or a file); remove it".into(),
        });
    }
    std::fs::create_dir_all(dir.join("sim")).map_err(files_error)?;
    let mut images = format!("{}\n", expected.len());
    for image in pixels.chunks_exact(per_image).take(expected.len()) {
        let line: Vec<String> = image.iter().map(|p| format!("{p:02x}")).collect();
        images += &line.join(" ");
        images.push('\n');
    }
    let mut outputs = String::new();
    for p in expected {
        let logits: Vec<String> = p.logits.iter().map(|l| l.to_string()).collect();
        outputs += &format!("{} {}\n", p.class, logits.join(" "));
    }
    crate::output::write_atomic(&dir.join("sim/images.txt"), images.as_bytes())
        .map_err(files_error)?;
    crate::output::write_atomic(&dir.join("sim/expected.txt"), outputs.as_bytes())
        .map_err(files_error)?;
    Ok(())
}

/// The testbench and the design's files, in a stable order.
fn sources(dir: &Path) -> Result<Vec<String>, SimError> {
    let mut files = vec!["tb/testbench.v".to_string()];
    files.extend(rtl_sources(dir)?);
    Ok(files)
}

/// Only the file list of a build folder's manifest.
#[derive(serde::Deserialize)]
struct ManifestFiles {
    files: BTreeMap<String, String>,
}

/// The design's Verilog files, `rtl/*.v` as the build folder's manifest lists them, in a
/// stable order. Other files in `rtl/` are not the build's and are never compiled.
pub fn rtl_sources(dir: &Path) -> Result<Vec<String>, SimError> {
    let fail = |message: String| SimError::Files {
        dir: dir.display().to_string(),
        message,
    };
    let text = crate::input::read_text_inside(dir, "manifest.json", crate::input::BUILD_FILE)
        .map_err(|e| fail(format!("manifest.json: {e}")))?;
    let manifest: ManifestFiles =
        serde_json::from_str(&text).map_err(|e| fail(format!("manifest.json: {e}")))?;
    let mut rtl = Vec::new();
    for file in manifest.files.keys() {
        if file.starts_with("rtl/") && file.ends_with(".v") {
            crate::input::check_relative(file)
                .map_err(|e| fail(format!("manifest.json: file {file:?} {e}")))?;
            rtl.push(file.clone());
        }
    }
    rtl.sort();
    Ok(rtl)
}

/// The line the testbench prints after each image under `+progress` (then the count).
const PROGRESS_LINE: &str = "progress ";

/// The line the testbench prints every 2048 cycles (then the cycle).
const HEARTBEAT_LINE: &str = "heartbeat ";

/// How long a simulation may print nothing before it is taken to be stuck in zero simulated
/// time: its heartbeat every 2048 cycles comes within about 10 s even at
/// [`SLOWEST_CYCLES_PER_SECOND`], and start-up (loading the memory images) is shorter.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// Runs a simulation process: stopped after `limit` of wall-clock time or `silence` without
/// output (`limits`), its output kept up to [`MAX_SIMULATION_OUTPUT`]. Returns its standard
/// output, without the progress and heartbeat lines; the progress counts move `progress`
/// while it runs.
fn run_simulation(
    dir: &Path,
    tool: &'static str,
    command: &mut Command,
    (limit, silence): (Duration, Duration),
    progress: &ProgressBar,
) -> Result<String, SimError> {
    let fail = |message: String| SimError::ToolFailed {
        dir: dir.display().to_string(),
        tool,
        message,
    };
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(crate::input::plain(e).to_string()))?;
    // Each pipe is read on its own thread, line by line; past the limit the process is stopped.
    let overflow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let images_done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // Milliseconds from `start` to the last line either pipe delivered.
    let last_line = Arc::new(AtomicU64::new(0));
    let capture = |pipe: Option<Box<dyn Read + Send>>| {
        let overflow = overflow.clone();
        let images_done = images_done.clone();
        let last_line = last_line.clone();
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(pipe) = pipe {
                let mut reader = BufReader::new(pipe.take(MAX_SIMULATION_OUTPUT + 1));
                loop {
                    let line_start = kept.len();
                    match reader.read_until(b'\n', &mut kept) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    last_line.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    let line = std::str::from_utf8(&kept[line_start..]).unwrap_or_default();
                    let line = line.trim_end();
                    if line.starts_with(HEARTBEAT_LINE) {
                        kept.truncate(line_start);
                    } else if let Some(count) = line
                        .strip_prefix(PROGRESS_LINE)
                        .and_then(|n| n.parse::<u64>().ok())
                    {
                        images_done.store(count, Ordering::Relaxed);
                        kept.truncate(line_start);
                    }
                }
                if reader.into_inner().limit() == 0 {
                    overflow.store(true, Ordering::Relaxed);
                }
            }
            kept
        })
    };
    let stdout = capture(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = capture(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stop = |child: &mut std::process::Child, message: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(fail(message))
    };
    let status = loop {
        if overflow.load(std::sync::atomic::Ordering::Relaxed) {
            return stop(
                &mut child,
                format!(
                    "printed more than {} MiB and was stopped",
                    MAX_SIMULATION_OUTPUT >> 20
                ),
            );
        }
        progress.set_position(images_done.load(Ordering::Relaxed));
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= limit => {
                return stop(
                    &mut child,
                    format!(
                        "ran longer than its wall-clock limit of {} s and was stopped",
                        limit.as_secs()
                    ),
                )
            }
            Ok(None)
                if start.elapsed()
                    > Duration::from_millis(last_line.load(Ordering::Relaxed)) + silence =>
            {
                return stop(
                    &mut child,
                    format!(
                        "printed nothing for {} s, so its simulated time stopped advancing, and was stopped",
                        silence.as_secs()
                    ),
                )
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return stop(&mut child, e.to_string()),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if overflow.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(fail(format!(
            "printed more than {} MiB",
            MAX_SIMULATION_OUTPUT >> 20
        )));
    }
    let stdout = String::from_utf8_lossy(&stdout).to_string();
    // The testbench exits with status 1 after reporting mismatches or its cycle budget; the
    // report says more than the status.
    if !status.success() && !reports_failure(&stdout) {
        let stderr = String::from_utf8_lossy(&stderr);
        let first = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| l.contains("rror"))
            .or_else(|| stderr.lines().next())
            .unwrap_or("no output")
            .trim()
            .to_string();
        return Err(fail(first));
    }
    Ok(stdout)
}

/// Whether a testbench's output reports what its failing exit status means: mismatches with
/// the golden model, or a stop at the cycle budget.
fn reports_failure(stdout: &str) -> bool {
    stdout.lines().any(|line| {
        line.starts_with(BUDGET_EXCEEDED)
            || line
                .strip_prefix("mismatches ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
    })
}

fn run_tool(dir: &Path, tool: &'static str, command: &mut Command) -> Result<String, SimError> {
    let output = command
        .current_dir(dir)
        .output()
        .map_err(|e| SimError::ToolFailed {
            dir: dir.display().to_string(),
            tool,
            message: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| l.contains("rror"))
            .or_else(|| stderr.lines().next())
            .unwrap_or("no output")
            .trim()
            .to_string();
        return Err(SimError::ToolFailed {
            dir: dir.display().to_string(),
            tool,
            message: first,
        });
    }
    Ok(stdout)
}

/// What a simulation is built from: the testbench and the design's sources (paths relative to
/// the build folder, or absolute), the macros defined, and where the executable goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bench {
    pub sources: Vec<String>,
    pub defines: Vec<String>,
    /// Verilator's folder (its executable is `Vtb` in it).
    pub verilator_dir: &'static str,
    /// Icarus Verilog's compiled design.
    pub icarus_file: &'static str,
    /// Build with waveform tracing (Verilator's --trace, into its own folder); Icarus always
    /// can dump waveforms.
    pub trace: bool,
}

impl Bench {
    /// The RTL simulation: tb/testbench.v and rtl/*.v.
    pub fn rtl(dir: &Path) -> Result<Bench, SimError> {
        Ok(Bench {
            sources: sources(dir)?,
            defines: Vec::new(),
            verilator_dir: "obj_dir",
            icarus_file: "sim/icarus.vvp",
            trace: false,
        })
    }

    /// Verilator's folder for this bench: a traced build has its own.
    pub fn verilator_dir(&self) -> String {
        if self.trace {
            format!("{}_trace", self.verilator_dir)
        } else {
            self.verilator_dir.to_string()
        }
    }
}

/// Builds the RTL simulation executable (again only when the sources changed) and returns it.
pub fn build(dir: &Path, simulator: Simulator) -> Result<PathBuf, SimError> {
    build_bench(dir, simulator, &Bench::rtl(dir)?)
}

/// Builds a simulation executable (again only when its sources changed) and returns it.
pub fn build_bench(dir: &Path, simulator: Simulator, bench: &Bench) -> Result<PathBuf, SimError> {
    let sources = &bench.sources;
    let mut stamp_text: String = sources
        .iter()
        .map(|f| {
            let text =
                crate::input::read(&dir.join(f), crate::input::BUILD_FILE).unwrap_or_default();
            format!("{f} {}\n", crate::codegen::digest(&text))
        })
        .collect();
    for define in &bench.defines {
        stamp_text += &format!("-D{define}\n");
    }
    let verilator_dir = bench.verilator_dir();
    let (executable, stamp) = match simulator {
        Simulator::Verilator => (
            PathBuf::from(&verilator_dir).join("Vtb"),
            PathBuf::from(&verilator_dir).join("qnnc.stamp"),
        ),
        Simulator::Icarus => (
            PathBuf::from(bench.icarus_file),
            PathBuf::from(bench.icarus_file).with_extension("stamp"),
        ),
    };
    let fresh = dir.join(&executable).is_file()
        && crate::input::read_text_inside(dir, &stamp.to_string_lossy(), crate::input::BUILD_FILE)
            .ok()
            .as_deref()
            == Some(stamp_text.as_str());
    if fresh {
        return Ok(executable);
    }
    let defines: Vec<String> = bench.defines.iter().map(|d| format!("-D{d}")).collect();
    match simulator {
        Simulator::Verilator => {
            require("verilator", "verilator")?;
            let mut verilator = verilator_command();
            run_tool(
                dir,
                "verilator",
                verilator
                    .args([
                        "--binary",
                        "--timing",
                        "-O3",
                        "-Wno-fatal",
                        "-Wno-lint",
                        "-Wno-style",
                    ])
                    .args([
                        "--top-module",
                        "tb",
                        "-j",
                        "2",
                        "--Mdir",
                        &verilator_dir,
                        "-o",
                        "Vtb",
                        "-Irtl",
                    ])
                    .args(bench.trace.then_some("--trace"))
                    .args(&defines)
                    .args(sources),
            )?;
        }
        Simulator::Icarus => {
            require("iverilog", "iverilog")?;
            if let Some(folder) = dir.join(bench.icarus_file).parent() {
                std::fs::create_dir_all(folder).map_err(|e| SimError::Files {
                    dir: dir.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            run_tool(
                dir,
                "iverilog",
                Command::new("iverilog")
                    .args(["-g2012", "-I", "rtl", "-o", bench.icarus_file, "-s", "tb"])
                    .args(&defines)
                    .args(sources),
            )?;
        }
    }
    crate::output::write_atomic(&dir.join(&stamp), stamp_text.as_bytes()).map_err(|e| {
        SimError::Files {
            dir: dir.display().to_string(),
            message: e.to_string(),
        }
    })?;
    Ok(executable)
}

/// A path inside the build folder that stays valid in a child process running there.
fn absolute(dir: &Path, path: &Path) -> PathBuf {
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .join(path)
}

/// The testbench's argument that sets its cycle budget.
fn budget_flag(max_cycles: u64) -> String {
    format!("+max_cycles={max_cycles}")
}

/// Runs a built simulation and parses the testbench's report, checked against `expect`. With
/// `vcd` (an absolute path; a Verilator bench must be built with `trace`), the testbench
/// writes the waveforms there.
pub fn run(
    dir: &Path,
    simulator: Simulator,
    executable: &Path,
    expect: &Expectation,
    vcd: Option<&Path>,
) -> Result<SimReport, SimError> {
    run_counting(
        dir,
        simulator,
        executable,
        expect,
        vcd,
        false,
        &ProgressBar::hidden(),
    )
}

/// Runs a built simulation as [`run`] does, with `progress` at the number of images done as
/// the testbench reports them. With `activity` (an RTL simulation only: a netlist has none of
/// the signals counted), the testbench counts what each layer reads, writes, computes and
/// toggles.
pub fn run_counting(
    dir: &Path,
    simulator: Simulator,
    executable: &Path,
    expect: &Expectation,
    vcd: Option<&Path>,
    activity: bool,
    progress: &ProgressBar,
) -> Result<SimReport, SimError> {
    let start = Instant::now();
    let mut flags = vec![budget_flag(expect.max_cycles), "+progress".to_string()];
    if let Some(vcd) = vcd {
        flags.push(format!("+vcd={}", vcd.display()));
    }
    if activity {
        flags.push("+activity".to_string());
    }
    let limits = (wall_clock_limit(expect.max_cycles), expect.silence_limit);
    let stdout = match simulator {
        Simulator::Verilator => run_simulation(
            dir,
            "simulation",
            Command::new(absolute(dir, executable)).args(&flags),
            limits,
            progress,
        )?,
        Simulator::Icarus => {
            require("vvp", "iverilog")?;
            run_simulation(
                dir,
                "vvp",
                Command::new("vvp").arg("-n").arg(executable).args(&flags),
                limits,
                progress,
            )?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let parsed = parse_report(&stdout, expect, seconds).and_then(|report| {
        Ok(SimReport {
            activity: activity
                .then(|| activity::parse_activity(&stdout, expect))
                .transpose()?,
            ..report
        })
    });
    parsed.map_err(|message| SimError::Files {
        dir: dir.display().to_string(),
        message,
    })
}

/// The activations each layer wrote while image `image` ran: layer -> element -> value (the
/// last write of an element wins, as in the buffer). Every write names a layer of the design
/// and a lane of the array, or the run is refused.
pub fn trace_writes(
    dir: &Path,
    simulator: Simulator,
    executable: &Path,
    image: usize,
    simd: usize,
    expect: &Expectation,
) -> Result<BTreeMap<usize, BTreeMap<usize, i64>>, SimError> {
    let flag = format!("+trace={image}");
    let budget = budget_flag(expect.max_cycles);
    let limits = (wall_clock_limit(expect.max_cycles), expect.silence_limit);
    let stdout = match simulator {
        Simulator::Verilator => run_simulation(
            dir,
            "simulation",
            Command::new(absolute(dir, executable))
                .arg(&flag)
                .arg(&budget),
            limits,
            &ProgressBar::hidden(),
        )?,
        Simulator::Icarus => run_simulation(
            dir,
            "vvp",
            Command::new("vvp")
                .arg("-n")
                .arg(executable)
                .arg(&flag)
                .arg(&budget),
            limits,
            &ProgressBar::hidden(),
        )?,
    };
    let fail = |message: String| SimError::Files {
        dir: dir.display().to_string(),
        message,
    };
    if stdout.lines().any(|l| l.starts_with(BUDGET_EXCEEDED)) {
        return Err(fail(budget_message(expect.max_cycles)));
    }
    let mut layers: BTreeMap<usize, BTreeMap<usize, i64>> = BTreeMap::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["write", layer, bank, row, value] = words.as_slice() {
            if let (Ok(layer), Ok(bank), Ok(row), Ok(value)) = (
                layer.parse::<usize>(),
                bank.parse::<usize>(),
                row.parse::<usize>(),
                value.parse(),
            ) {
                let element = row.checked_mul(simd).and_then(|e| e.checked_add(bank));
                match element {
                    Some(element) if layer < expect.layers && bank < simd => {
                        layers.entry(layer).or_default().insert(element, value);
                    }
                    _ => {
                        return Err(fail(format!(
                            "the simulator traced a write to layer {layer} lane {bank} row {row}, outside the design's {} layers and {simd} lanes",
                            expect.layers
                        )))
                    }
                }
            }
        }
    }
    Ok(layers)
}

/// The line the testbench prints when it stops at its cycle budget.
pub const BUDGET_EXCEEDED: &str = "cycle_budget_exceeded";

fn budget_message(max_cycles: u64) -> String {
    format!(
        "simulation exceeded its cycle budget of {max_cycles} cycles (twice the predicted cycles an image plus {CYCLE_MARGIN}); a memory image is corrupt or the design never answers"
    )
}

/// Reads the testbench's closing lines, and checks every value against `expect`: a count or
/// an index outside the simulated images or layers, or cycles past the budget, is refused.
pub fn parse_report(stdout: &str, expect: &Expectation, seconds: f64) -> Result<SimReport, String> {
    if stdout.lines().any(|l| l.starts_with(BUDGET_EXCEEDED)) {
        return Err(budget_message(expect.max_cycles));
    }
    if let Some(line) = stdout.lines().find(|l| l.starts_with("error:")) {
        return Err(format!("testbench: {line}"));
    }
    let value = |key: &str| -> Result<i64, String> {
        let text = stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .ok_or_else(|| format!("the testbench printed no '{}' line", key.trim()))?;
        text.parse::<i64>().map_err(|_| {
            format!(
                "the simulator reported {}{text}, which is not a number",
                key
            )
        })
    };
    let count = |key: &str, most: u64| -> Result<u64, String> {
        let v = value(key)?;
        u64::try_from(v)
            .ok()
            .filter(|&v| v <= most)
            .ok_or_else(|| out_of_range(key, v, expect, most))
    };
    let images = count("images ", expect.images as u64)?;
    if images != expect.images as u64 {
        return Err(format!(
            "the simulator reported images {images} but {} images were written; run qnnc sim again",
            expect.images
        ));
    }
    let mismatches = count("mismatches ", images)?;
    let first = value("first_mismatch ")?;
    let first_mismatch = match (mismatches, first) {
        (0, -1) => None,
        (m, f) if m > 0 && f >= 0 && (f as u64) < images => Some(f as usize),
        _ => {
            return Err(format!(
                "the simulator reported first_mismatch {first} with {mismatches} mismatches in {images} images"
            ))
        }
    };
    let cycles = count("cycles ", expect.max_cycles)?;
    let mut layer_cycles = vec![0u64; expect.layers];
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["layer", l, "cycles", c] = words.as_slice() {
            match (l.parse::<usize>(), c.parse::<u64>()) {
                (Ok(l), Ok(c)) if l < expect.layers && c <= expect.max_cycles => {
                    layer_cycles[l] = c
                }
                _ => {
                    return Err(format!(
                        "the simulator reported layer {l} cycles {c}, outside the design's {} layers and the budget of {} cycles",
                        expect.layers, expect.max_cycles
                    ))
                }
            }
        }
    }
    Ok(SimReport {
        images: images as usize,
        mismatches: mismatches as usize,
        first_mismatch,
        mismatch_lines: stdout
            .lines()
            .filter(|l| l.starts_with("mismatch "))
            .map(str::to_string)
            .collect(),
        cycles,
        layer_cycles,
        activity: None,
        seconds,
    })
}

fn out_of_range(key: &str, value: i64, expect: &Expectation, most: u64) -> String {
    format!(
        "the simulator reported {}{value}, outside 0..={most} for {} images",
        key, expect.images
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECT: Expectation = Expectation {
        layers: 2,
        images: 3,
        max_cycles: 10_000,
        silence_limit: SILENCE_LIMIT,
    };

    fn report(first: &str, mismatches: &str, images: &str, cycles: &str) -> String {
        format!(
            "images {images}\nmismatches {mismatches}\nfirst_mismatch {first}\ncycles {cycles}\nlayer 0 cycles 10\nlayer 1 cycles 20\n"
        )
    }

    #[test]
    fn a_consistent_report_is_read() {
        let r = parse_report(&report("1", "2", "3", "900"), &EXPECT, 1.0).unwrap();
        assert_eq!(
            (r.images, r.mismatches, r.first_mismatch, r.cycles),
            (3, 2, Some(1), 900)
        );
        assert_eq!(r.layer_cycles, vec![10, 20]);
        let clean = parse_report(&report("-1", "0", "3", "900"), &EXPECT, 1.0).unwrap();
        assert_eq!(clean.first_mismatch, None);
    }

    #[test]
    fn values_outside_the_simulation_are_refused() {
        for (text, needle) in [
            (report("99", "1", "3", "900"), "first_mismatch 99"),
            (report("-1", "1", "3", "900"), "first_mismatch -1"),
            (report("0", "0", "3", "900"), "first_mismatch 0"),
            (report("0", "4", "3", "900"), "mismatches 4"),
            (report("0", "1", "2", "900"), "images 2"),
            (report("0", "1", "-3", "900"), "images -3"),
            (report("0", "1", "3", "-1"), "cycles -1"),
            (report("0", "1", "3", "10001"), "cycles 10001"),
            (report("0", "1", "3", "x"), "cycles x"),
            (report("0", "1", "3", "9") + "layer 7 cycles 1\n", "layer 7"),
            (
                report("0", "1", "3", "9") + "layer 0 cycles 99999999999\n",
                "layer 0 cycles 99999999999",
            ),
        ] {
            let error = parse_report(&text, &EXPECT, 1.0).unwrap_err();
            assert!(error.contains(needle), "{needle:?} not in {error:?}");
        }
        let stopped = format!("{BUDGET_EXCEEDED} 10000\n");
        let error = parse_report(&stopped, &EXPECT, 1.0).unwrap_err();
        assert!(
            error.contains("exceeded its cycle budget of 10000 cycles"),
            "{error}"
        );
    }

    #[test]
    fn the_budget_follows_the_prediction_and_saturates() {
        assert_eq!(
            cycle_budget(500, 2),
            2 * (1000 + CYCLE_MARGIN) + CYCLE_MARGIN
        );
        assert_eq!(cycle_budget(u64::MAX, 3), u64::MAX);
        assert!(wall_clock_limit(u64::MAX) > Duration::from_secs(600));
    }
}
