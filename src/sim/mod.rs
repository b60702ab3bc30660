//! Simulation of a build folder: writes the test vectors, builds the design and its testbench
//! with Verilator (or Icarus Verilog), runs it and reads back what the testbench reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::ValueEnum;

use crate::golden::Prediction;

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
    /// Wall-clock time of the simulation run (not of the build).
    pub seconds: f64,
}

/// Checks that a tool runs, naming the Debian package that provides it.
pub fn require(tool: &'static str, package: &'static str) -> Result<(), SimError> {
    match Command::new(tool).arg("-V").output() {
        Ok(_) => Ok(()),
        Err(_) => Err(SimError::ToolMissing { tool, package }),
    }
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

/// The design's Verilog files, `rtl/*.v`, in a stable order.
pub fn rtl_sources(dir: &Path) -> Result<Vec<String>, SimError> {
    let mut rtl: Vec<String> = std::fs::read_dir(dir.join("rtl"))
        .map_err(|e| SimError::Files {
            dir: dir.display().to_string(),
            message: format!("rtl: {e}"),
        })?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".v"))
        .map(|name| format!("rtl/{name}"))
        .collect();
    rtl.sort();
    Ok(rtl)
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
}

impl Bench {
    /// The RTL simulation: tb/testbench.v and rtl/*.v.
    pub fn rtl(dir: &Path) -> Result<Bench, SimError> {
        Ok(Bench {
            sources: sources(dir)?,
            defines: Vec::new(),
            verilator_dir: "obj_dir",
            icarus_file: "sim/icarus.vvp",
        })
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
            let text = std::fs::read(dir.join(f)).unwrap_or_default();
            format!("{f} {}\n", crate::codegen::digest(&text))
        })
        .collect();
    for define in &bench.defines {
        stamp_text += &format!("-D{define}\n");
    }
    let (executable, stamp) = match simulator {
        Simulator::Verilator => (
            PathBuf::from(bench.verilator_dir).join("Vtb"),
            PathBuf::from(bench.verilator_dir).join("qnnc.stamp"),
        ),
        Simulator::Icarus => (
            PathBuf::from(bench.icarus_file),
            PathBuf::from(bench.icarus_file).with_extension("stamp"),
        ),
    };
    let fresh = dir.join(&executable).is_file()
        && std::fs::read_to_string(dir.join(&stamp)).ok().as_deref() == Some(stamp_text.as_str());
    if fresh {
        return Ok(executable);
    }
    let defines: Vec<String> = bench.defines.iter().map(|d| format!("-D{d}")).collect();
    match simulator {
        Simulator::Verilator => {
            require("verilator", "verilator")?;
            run_tool(
                dir,
                "verilator",
                Command::new("verilator")
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
                        bench.verilator_dir,
                        "-o",
                        "Vtb",
                        "-Irtl",
                    ])
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
    std::fs::write(dir.join(&stamp), stamp_text).map_err(|e| SimError::Files {
        dir: dir.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(executable)
}

/// A path inside the build folder that stays valid in a child process running there.
fn absolute(dir: &Path, path: &Path) -> PathBuf {
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .join(path)
}

/// Runs a built simulation and parses the testbench's report.
pub fn run(
    dir: &Path,
    simulator: Simulator,
    executable: &Path,
    layers: usize,
) -> Result<SimReport, SimError> {
    let start = Instant::now();
    let stdout = match simulator {
        Simulator::Verilator => run_tool(
            dir,
            "simulation",
            &mut Command::new(absolute(dir, executable)),
        )?,
        Simulator::Icarus => {
            require("vvp", "iverilog")?;
            run_tool(dir, "vvp", Command::new("vvp").arg("-n").arg(executable))?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    parse_report(&stdout, layers, seconds).map_err(|message| SimError::Files {
        dir: dir.display().to_string(),
        message,
    })
}

/// The activations each layer wrote while image `image` ran: layer -> element -> value (the
/// last write of an element wins, as in the buffer).
pub fn trace_writes(
    dir: &Path,
    simulator: Simulator,
    executable: &Path,
    image: usize,
    simd: usize,
) -> Result<BTreeMap<usize, BTreeMap<usize, i64>>, SimError> {
    let flag = format!("+trace={image}");
    let stdout = match simulator {
        Simulator::Verilator => run_tool(
            dir,
            "simulation",
            Command::new(absolute(dir, executable)).arg(&flag),
        )?,
        Simulator::Icarus => run_tool(
            dir,
            "vvp",
            Command::new("vvp").arg("-n").arg(executable).arg(&flag),
        )?,
    };
    let mut layers: BTreeMap<usize, BTreeMap<usize, i64>> = BTreeMap::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["write", layer, bank, row, value] = words.as_slice() {
            if let (Ok(layer), Ok(bank), Ok(row), Ok(value)) = (
                layer.parse(),
                bank.parse::<usize>(),
                row.parse::<usize>(),
                value.parse(),
            ) {
                layers
                    .entry(layer)
                    .or_default()
                    .insert(row * simd + bank, value);
            }
        }
    }
    Ok(layers)
}

/// Reads the testbench's closing lines.
pub fn parse_report(stdout: &str, layers: usize, seconds: f64) -> Result<SimReport, String> {
    if let Some(line) = stdout.lines().find(|l| l.starts_with("error:")) {
        return Err(format!("testbench: {line}"));
    }
    let value = |key: &str| -> Result<i64, String> {
        stdout
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.trim().parse::<i64>().ok())
            })
            .ok_or_else(|| format!("the testbench printed no '{}' line", key.trim()))
    };
    let mut layer_cycles = vec![0u64; layers];
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["layer", l, "cycles", c] = words.as_slice() {
            if let (Ok(l), Ok(c)) = (l.parse::<usize>(), c.parse::<u64>()) {
                if l < layers {
                    layer_cycles[l] = c;
                }
            }
        }
    }
    let first = value("first_mismatch ")?;
    Ok(SimReport {
        images: value("images ")? as usize,
        mismatches: value("mismatches ")? as usize,
        first_mismatch: (first >= 0).then_some(first as usize),
        mismatch_lines: stdout
            .lines()
            .filter(|l| l.starts_with("mismatch "))
            .map(str::to_string)
            .collect(),
        cycles: value("cycles ")? as u64,
        layer_cycles,
        seconds,
    })
}
