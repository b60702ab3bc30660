//! `qnnc compile`: RTL, memory images, testbench and README of a trained network, written
//! into a build folder as a whole (a failed compile leaves the old folder as it was).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::Source;
use crate::codegen::{self, digest, Hardware};
use crate::error::{Error, Result};
use crate::implement::{self, Target};
use crate::ir::{dump, passes};
use crate::schedule::{self, ArrayConfig, Schedule};

/// Names the build folder's manifest format.
pub const BUILD_FORMAT: &str = "qnnc-build";
pub const BUILD_VERSION: u32 = 1;

#[derive(Debug, Clone, Args)]
pub struct CompileArgs {
    /// Trained-model file (.qnn), QONNX file (.onnx) or IR file (.json)
    pub model: PathBuf,
    #[command(flatten)]
    pub scale: super::InputScaleArgs,
    /// Output folder
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Output channels computed in parallel
    #[arg(long, default_value_t = 8)]
    pub pe: usize,
    /// Multiply lanes of each PE (a power of two, at least --pe)
    #[arg(long, default_value_t = 16)]
    pub simd: usize,
    /// Largest weight memory to build, in KiB
    #[arg(long, value_name = "KIB", default_value_t = 4096)]
    pub weight_memory: u64,
    /// Largest activation buffers (pixels and both activation buffers together) to build, in KiB
    #[arg(long, value_name = "KIB", default_value_t = 1024)]
    pub activation_memory: u64,
    /// Also implement for an FPGA target (synthesis; place and route for up5k and ecp5-85k)
    /// into DIR/implementation, and print the resources, Fmax and inferences/s
    #[arg(long, value_enum, value_name = "TARGET")]
    pub target: Option<Target>,
    /// Clock constraint for place and route, in MHz [default: up5k 30, ecp5-85k 50]
    #[arg(long, value_name = "MHZ")]
    pub clock_mhz: Option<f64>,
    /// The same as --target generic
    #[arg(long, hide = true, conflicts_with = "target")]
    pub synth: bool,
}

/// The record of a build: what it was made from and the digest of every file, so that `qnnc
/// sim` can refuse a folder that changed since or that belongs to another model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub qnnc: String,
    pub model: String,
    pub dataset: String,
    pub ir_sha256: String,
    pub top: String,
    pub pe: usize,
    pub simd: usize,
    pub macs: u64,
    pub input_cycles: u64,
    pub predicted_cycles: u64,
    pub layers: Vec<LayerRecord>,
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRecord {
    pub name: String,
    /// The IR node whose output this layer stores (its activation, or its max-pool).
    pub output_node: String,
    /// Whether the stored codes are bipolar (one bit, 1 for +1).
    pub bipolar: bool,
    pub macs: u64,
    pub ideal_cycles: u64,
    pub predicted_cycles: u64,
}

pub fn run(args: &CompileArgs) -> Result<()> {
    let start = Instant::now();
    super::check_build_path(&args.output)?;
    let target = implementation_target(args)?;
    let origin = args.model.display().to_string();
    // The network flags (--bits, --nl, ...) change a spec, and compile takes trained weights
    // only: it has none of them.
    let source = Source::open_scaled(&args.model, &Default::default(), &args.scale)?;
    if matches!(source, Source::Spec(_)) {
        return Err(Error::usage(
            &origin,
            "compile needs trained weights: give a trained-model file (qnnc train), a QONNX file or an IR file",
        ));
    }
    let dataset = source.dataset().name().to_string();
    let mut graph = source.graph(&origin)?;
    if source.needs_passes() {
        passes::run(&mut graph, &origin, None)?;
    }
    let config = ArrayConfig {
        pe: args.pe,
        simd: args.simd,
    };
    let schedule = schedule::schedule(&graph, config, &origin)?;
    // Sizes first: a network too large for the memories is refused before any image is built.
    check_memory(&Hardware::new(&schedule), args)?;
    // The clock the design is placed and routed for, if any (the README's throughput).
    let clock_mhz = target
        .filter(|t| t.places())
        .and_then(|t| args.clock_mhz.or(t.default_clock_mhz()));
    let (hw, mut files) = codegen::generate(&graph, &schedule, clock_mhz, &origin)?;
    let ir_json = dump::to_json(&graph);
    files.push(codegen::BuildFile {
        path: "ir.json".into(),
        text: ir_json.clone(),
    });
    let manifest = manifest(&graph.name, &dataset, &ir_json, &schedule, &files);
    files.push(codegen::BuildFile {
        path: "manifest.json".into(),
        text: serde_json::to_string_pretty(&manifest).expect("manifest serialises") + "\n",
    });
    write_build(&args.output, &files)?;
    let seconds = start.elapsed().as_secs_f64();

    outln!(
        "compiled {} for a {}x{} PE array into {} ({} files, {:.0} ms)",
        graph.name,
        args.pe,
        args.simd,
        args.output.display(),
        files.len(),
        seconds * 1e3
    )?;
    out!("{schedule}")?;
    // In KiB, the unit of --weight-memory and --activation-memory, with the exact bits beside.
    let bits = hw.memory_bits();
    outln!(
        "memory in KiB (--weight-memory {} KiB holds the weights, --activation-memory {} KiB the pixels and activations):",
        args.weight_memory,
        args.activation_memory
    )?;
    for (what, bits) in &bits {
        outln!("  {what:<15} {:>10.2} KiB  ({bits} bits)", kib(*bits))?;
    }
    if let Some(target) = target {
        // The tools' run times cannot be counted: a spinner names the one that runs.
        let progress = super::progress_spinner(format!("implementing for {}", target.name()));
        let implemented = implement::implement_showing(
            &implement::Request {
                dir: &args.output,
                top: &manifest.top,
                cycles_per_inference: manifest.predicted_cycles,
                memory_bits: hw.memory_bits(),
                target,
                clock_mhz: args.clock_mhz,
            },
            &progress,
        );
        progress.finish_and_clear();
        let report = implemented?;
        outln!("{}", report.synthesis_line())?;
        out!("{report}")?;
        outln!(
            "  {}",
            args.output
                .join(implement::FOLDER)
                .join("report.json")
                .display()
        )?;
        let logs = implement::logs(&args.output);
        if !logs.is_empty() {
            let names: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
            outln!("  logs (gzip): {}", names.join(", "))?;
        }
        report.verdict(&args.output)?;
    }
    Ok(())
}

/// The target to implement for (`--synth` is `--target generic`), with the clock checked
/// before anything is written.
fn implementation_target(args: &CompileArgs) -> Result<Option<Target>> {
    let target = args.target.or(args.synth.then_some(Target::Generic));
    if let Some(mhz) = args.clock_mhz {
        match target {
            Some(t) if t.places() => {}
            _ => {
                return Err(Error::usage(
                    "--clock-mhz",
                    "applies to the targets that are placed and routed: --target up5k or ecp5-85k",
                ))
            }
        }
        if !(mhz.is_finite() && mhz > 0.0 && mhz <= 1000.0) {
            return Err(Error::usage(
                "--clock-mhz",
                format!("{mhz} is not a clock rate in MHz (0 to 1000)"),
            ));
        }
    }
    Ok(target)
}

/// Bits as KiB (1024 bytes).
fn kib(bits: u64) -> f64 {
    bits as f64 / (8.0 * 1024.0)
}

fn check_memory(hw: &Hardware, args: &CompileArgs) -> Result<()> {
    let bits = hw.memory_bits();
    for (what, needed, limit_kib, flag) in [
        (
            "weight",
            bits["weights"],
            args.weight_memory,
            "--weight-memory",
        ),
        (
            "activation",
            bits["activations"] + bits["pixels"],
            args.activation_memory,
            "--activation-memory",
        ),
    ] {
        let limit = limit_kib.saturating_mul(8 * 1024);
        if needed > limit {
            return Err(Error::usage(
                flag,
                format!(
                    "the network needs {needed} bits ({} KiB) of {what} memory but {flag} allows {limit_kib} KiB",
                    needed.div_ceil(8 * 1024)
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) fn manifest(
    model: &str,
    dataset: &str,
    ir_json: &str,
    schedule: &Schedule,
    files: &[codegen::BuildFile],
) -> Manifest {
    Manifest {
        format: BUILD_FORMAT.into(),
        version: BUILD_VERSION,
        qnnc: env!("CARGO_PKG_VERSION").into(),
        model: model.into(),
        dataset: dataset.into(),
        ir_sha256: digest(ir_json),
        top: codegen::top_name(model),
        pe: schedule.config.pe,
        simd: schedule.config.simd,
        macs: schedule.macs,
        input_cycles: schedule.input_cycles,
        predicted_cycles: schedule.total_cycles,
        layers: schedule
            .layers
            .iter()
            .map(|l| LayerRecord {
                name: l.name.clone(),
                output_node: l.output_node.clone(),
                bipolar: matches!(l.post, schedule::Post::Threshold { bipolar: true, .. }),
                macs: l.macs,
                ideal_cycles: l.ideal_cycles,
                predicted_cycles: l.cycles,
            })
            .collect(),
        files: files
            .iter()
            .map(|f| (f.path.clone(), digest(&f.text)))
            .collect(),
    }
}

/// Writes every file into a fresh folder beside `dir`, then puts it in `dir`'s place. An
/// existing `dir` must be an earlier build (it has a manifest) or empty. On any error the
/// staging folder is removed and an earlier build stays in place.
fn write_build(dir: &Path, files: &[codegen::BuildFile]) -> Result<()> {
    let output_error = |e: std::io::Error| Error::Output {
        file: dir.display().to_string(),
        message: crate::input::plain(e).to_string(),
    };
    crate::output::check_build_target(dir).map_err(output_error)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(output_error)?;
    // Dropping the TempDir on an error path removes the staging folder.
    let staging = tempfile::Builder::new()
        .prefix(".qnnc-build-")
        .tempdir_in(parent)
        .map_err(output_error)?;
    for file in files {
        let path = staging.path().join(&file.path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(output_error)?;
        }
        std::fs::write(&path, &file.text).map_err(output_error)?;
    }
    // The old folder is moved aside before the new one takes its place, so that at every
    // moment one complete build exists; if the new one cannot take its place, the old one
    // goes back.
    let retired = staging.path().with_extension("old");
    let had_build = dir.exists();
    if had_build {
        std::fs::rename(dir, &retired).map_err(output_error)?;
    }
    if let Err(e) = std::fs::rename(staging.path(), dir) {
        if had_build {
            let _ = std::fs::rename(&retired, dir);
        }
        return Err(output_error(e));
    }
    // The staging folder is the build now: nothing is left to remove.
    let _ = staging.keep();
    if had_build {
        std::fs::remove_dir_all(&retired).map_err(output_error)?;
    }
    Ok(())
}
