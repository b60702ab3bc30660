//! The FPGA implementation flow of a build folder: synthesis with Yosys for a target, place and
//! route with nextpnr where there is an open one (iCE40 UP5K, ECP5), a bitstream where the
//! packer is installed, and `implementation/report.json`.
//!
//! Everything is written into a staging folder inside the build folder (the tools run in the
//! build folder, whose `mem/` images they read) and moved to `implementation/` as a whole. A
//! tool that is missing or fails leaves no `implementation/`; a design that does not fit or
//! misses its clock leaves a complete one (its report says what went wrong), and the command
//! still fails.

pub mod board;
pub mod device;
pub mod nextpnr;
pub mod report;
pub mod tools;
pub mod yosys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use indicatif::ProgressBar;

pub use device::{Device, Family, Target};
pub use report::Report;

use report::{round, Available, CriticalPath};
use tools::Tool;

/// The board top's module name (no generated top is called this: theirs end in `_top`).
pub const BOARD_TOP: &str = "qnnc_board";
/// The folder of the implementation inside a build folder.
pub const FOLDER: &str = "implementation";

#[derive(Debug, thiserror::Error)]
pub enum ImplementError {
    #[error("{tool} not found: {how}")]
    ToolMissing { tool: &'static str, how: String },
    #[error("{dir}: {tool} failed: {message}")]
    ToolFailed {
        dir: String,
        tool: &'static str,
        message: String,
    },
    #[error("{target}: {what} (see {report})")]
    NoFit {
        target: &'static str,
        what: String,
        report: String,
    },
    #[error("{target}: Fmax {fmax:.2} MHz is below the {clock} MHz constraint (see {report})")]
    Timing {
        target: &'static str,
        fmax: f64,
        clock: String,
        report: String,
    },
    #[error("{dir}: {message}")]
    Files { dir: String, message: String },
    #[error("board template: {0}")]
    Template(String),
}

/// What to implement.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The build folder.
    pub dir: &'a Path,
    /// The design's top module.
    pub top: &'a str,
    pub cycles_per_inference: u64,
    /// The compiler's memory sizes (`codegen::Hardware::memory_bits`).
    pub memory_bits: BTreeMap<&'static str, u64>,
    pub target: Target,
    /// The clock constraint; the target's default when None.
    pub clock_mhz: Option<f64>,
}

/// Runs a tool with its log in `log`; a failure is one line: the first ERROR of the log or of
/// standard error.
pub(crate) fn run_logged(
    tool: &Tool,
    dir: &Path,
    log: &Path,
    command: &mut Command,
) -> Result<(), ImplementError> {
    let failed = |message: String| ImplementError::ToolFailed {
        dir: dir.display().to_string(),
        tool: tool.name,
        message,
    };
    let output = command.output().map_err(|e| failed(e.to_string()))?;
    if output.status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = nextpnr::first_error(&text)
        .or_else(|| {
            stderr
                .lines()
                .find(|l| l.contains("ERROR"))
                .map(|l| l.trim().to_string())
        })
        .or_else(|| stderr.lines().last().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| format!("exit status {}", output.status));
    Err(failed(line))
}

/// The tools a target needs, found before anything runs.
struct Tools {
    yosys: Tool,
    nextpnr: Option<Tool>,
    packer: Option<Tool>,
}

fn find_tools(target: Target) -> Result<Tools, ImplementError> {
    let yosys = tools::debian("yosys", "yosys")?;
    let (nextpnr, packer) = match target {
        Target::Up5k => (
            Some(tools::debian("nextpnr-ice40", "nextpnr-ice40")?),
            tools::debian("icepack", "fpga-icestorm").ok(),
        ),
        Target::Ecp5_85k => (Some(tools::nextpnr_ecp5()?), tools::ecppack()),
        Target::Generic | Target::Xc7 => (None, None),
    };
    Ok(Tools {
        yosys,
        nextpnr,
        packer,
    })
}

/// A staging folder in the build folder that is removed unless it is put in place.
struct Staging {
    dir: PathBuf,
    path: PathBuf,
    name: String,
    kept: bool,
}

impl Staging {
    fn new(dir: &Path) -> Result<Staging, ImplementError> {
        let files = |e: std::io::Error| ImplementError::Files {
            dir: dir.display().to_string(),
            message: e.to_string(),
        };
        let temp = tempfile::Builder::new()
            .prefix(".implementation-")
            .tempdir_in(dir)
            .map_err(files)?;
        let path = temp.keep();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        Ok(Staging {
            dir: dir.to_path_buf(),
            path,
            name,
            kept: false,
        })
    }

    fn write(&self, name: &str, text: &str) -> Result<(), ImplementError> {
        std::fs::write(self.path.join(name), text).map_err(|e| ImplementError::Files {
            dir: self.dir.display().to_string(),
            message: format!("{FOLDER}/{name}: {e}"),
        })
    }

    /// Moves the staged folder to `implementation/`, replacing an older one; the tools' logs
    /// go in gzipped (a large design's Yosys log runs to tens of MB).
    fn finish(mut self) -> Result<(), ImplementError> {
        let files = |e: std::io::Error| ImplementError::Files {
            dir: self.dir.display().to_string(),
            message: format!("{FOLDER}: {e}"),
        };
        self.compress_logs().map_err(files)?;
        let target = self.dir.join(FOLDER);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(files)?;
        }
        std::fs::rename(&self.path, &target).map_err(files)?;
        self.kept = true;
        Ok(())
    }

    /// Replaces each `*.log` of the staging folder with `*.log.gz`.
    fn compress_logs(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.path)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "log") {
                let mut zipped = path.clone().into_os_string();
                zipped.push(".gz");
                // The gzip header carries no time or name: the same log gives the same bytes.
                let mut encoder = flate2::write::GzEncoder::new(
                    std::fs::File::create(&zipped)?,
                    flate2::Compression::default(),
                );
                std::io::copy(&mut std::fs::File::open(&path)?, &mut encoder)?;
                encoder.finish()?.sync_all()?;
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The design top's `out_class` width, read from its source.
fn class_bits(dir: &Path, top: &str) -> Result<usize, ImplementError> {
    let file = format!("rtl/{top}.v");
    let source = std::fs::read_to_string(dir.join(&file)).map_err(|e| ImplementError::Files {
        dir: dir.display().to_string(),
        message: format!("{file}: {e}"),
    })?;
    let widths = board::port_widths(&source, top);
    let width = |port: &str| widths.get(port).copied().unwrap_or(0);
    if width("in_pixel") != 8 || width("out_class") == 0 {
        return Err(ImplementError::Files {
            dir: dir.display().to_string(),
            message: format!(
                "{file}: module {top} has no 8-bit in_pixel and out_class ports to put on pins"
            ),
        });
    }
    Ok(widths["out_class"])
}

/// Implements the build folder for a target and writes `implementation/`. The report comes
/// back whether or not the design fits and meets its clock (`Report::verdict` says).
pub fn implement(request: &Request) -> Result<Report, ImplementError> {
    implement_showing(request, &ProgressBar::hidden())
}

/// Implements as [`implement`] does, with the tool that runs named in `progress`'s message.
pub fn implement_showing(
    request: &Request,
    progress: &ProgressBar,
) -> Result<Report, ImplementError> {
    let Request {
        dir, top, target, ..
    } = *request;
    let tools = find_tools(target)?;
    let device = target.device();
    let clock_mhz = request.clock_mhz.or(target.default_clock_mhz());
    let class_bits = class_bits(dir, top)?;
    let staging = Staging::new(dir)?;
    let stage = staging.name.clone();

    let mut report = Report {
        target: target.name().into(),
        top: top.into(),
        fits: true,
        overflow: Vec::new(),
        logic_cells: None,
        luts: None,
        ffs: None,
        brams: None,
        dsps: None,
        io: None,
        cells: 0,
        latches: 0,
        memory_bits: request.memory_bits.values().sum(),
        available: device.as_ref().map(Available::from),
        clock_mhz: clock_mhz.filter(|_| target.places()),
        fmax_mhz: None,
        timing_met: None,
        cycles_per_inference: request.cycles_per_inference,
        inferences_per_s: None,
        critical_path: None,
        bitstream: None,
        tools: BTreeMap::new(),
        notes: Vec::new(),
    };

    // What cannot fit whatever synthesis does is refused before it runs.
    let sources = crate::sim::rtl_sources(dir).map_err(|e| ImplementError::Files {
        dir: dir.display().to_string(),
        message: e.to_string(),
    })?;
    if let Some(device) = &device {
        let mut overflow = device.memory_overflow(&request.memory_bits);
        let pins = match board::assign_pins(device, class_bits) {
            Ok(pins) => pins,
            Err(what) => {
                overflow.push(what);
                Vec::new()
            }
        };
        if !overflow.is_empty() {
            return refuse(report, overflow, staging);
        }
        let header = format!(
            "Generated by qnnc {} for {top} on {}. Do not edit.",
            env!("CARGO_PKG_VERSION"),
            device.name
        );
        for (name, text) in board::render(device, top, class_bits, &pins, clock_mhz, &header)? {
            staging.write(&name, &text)?;
        }
        report.io = Some(board::port_bits(class_bits).len() as u64);
    }

    report.tools.insert("yosys".into(), tools.yosys.version());
    let synthesize = |dsp: bool| {
        progress.set_message(format!(
            "yosys {}{}",
            target.synth_command(),
            if dsp { "" } else { " (multipliers from logic)" }
        ));
        let script = yosys::script(target, top, &sources, &stage, dsp);
        yosys::synthesize(&tools.yosys, dir, &staging.path, &stage, &script)
    };
    let family = device.as_ref().map(|d| d.family);
    let mut stat = synthesize(true)?;
    let mut resources = stat.resources(family);
    // Yosys maps every wide multiply to DSP blocks, however few the device has: when they
    // overflow, the multipliers are built from logic instead.
    if let Some(device) = device.as_ref().filter(|d| resources.dsps > d.dsps) {
        report.notes.push(format!(
            "multipliers built from logic: mapped to DSP blocks they needed {} of {}",
            resources.dsps, device.dsps
        ));
        stat = synthesize(false)?;
        resources = stat.resources(family);
    }
    report.cells = stat.total();
    report.latches = stat.latches;
    report.luts = resources.luts;
    report.ffs = Some(resources.ffs);
    if device.is_some() {
        report.brams = Some(resources.brams);
        report.dsps = Some(resources.dsps);
    }
    let mut overflow = Vec::new();
    if let Some(device) = &device {
        let logic = resources.luts.unwrap_or(0);
        for (what, used, available) in [
            ("LUTs", logic, device.logic()),
            ("flip-flops", resources.ffs, device.ffs),
            ("block RAMs", resources.brams, device.brams),
            ("DSPs", resources.dsps, device.dsps),
        ] {
            if used > available {
                overflow.push(format!("needs {used} of {available} {what}"));
            }
        }
    }

    if let (Some(nextpnr), Some(device)) = (&tools.nextpnr, &device) {
        report.tools.insert(nextpnr.name.into(), nextpnr.version());
        let clock = clock_mhz.unwrap_or(0.0);
        progress.set_message(format!(
            "{} place and route at {} MHz",
            nextpnr.name,
            board::format_mhz(clock)
        ));
        let placed = place_and_route(nextpnr, dir, &staging, device, clock)?;
        match placed {
            Err(usage_overflow) => {
                // nextpnr's counts, of the packed design, name what overflowed.
                return refuse(report, usage_overflow, staging);
            }
            Ok(placed) => {
                apply_placement(&mut report, device, &placed);
                if let Some(packer) = &tools.packer {
                    progress.set_message(format!("{} bitstream", packer.name));
                    report.bitstream = Some(pack(packer, dir, &staging, device)?);
                    report.tools.insert(packer.name.into(), packer.version());
                }
            }
        }
    } else if !overflow.is_empty() {
        return refuse(report, overflow, staging);
    }

    staging.write("report.json", &report.to_json())?;
    staging.finish()?;
    Ok(report)
}

/// The tools' logs in a finished implementation folder (`*.log.gz`), sorted.
pub fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join(FOLDER))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".log.gz"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

/// Writes the report of a design that does not fit and puts the folder in place.
fn refuse(
    mut report: Report,
    overflow: Vec<String>,
    staging: Staging,
) -> Result<Report, ImplementError> {
    report.fits = false;
    report.overflow = overflow;
    staging.write("report.json", &report.to_json())?;
    staging.finish()?;
    Ok(report)
}

/// nextpnr's result: what it placed and routed, or what overflowed the device.
fn place_and_route(
    nextpnr: &Tool,
    dir: &Path,
    staging: &Staging,
    device: &Device,
    clock_mhz: f64,
) -> Result<Result<nextpnr::Placed, Vec<String>>, ImplementError> {
    let stage = &staging.name;
    let mut command = nextpnr.command();
    match device.family {
        Family::Ice40 => command.args([
            "--up5k",
            "--package",
            "sg48",
            "--pcf",
            &format!("{stage}/board.pcf"),
            "--asc",
            &format!("{stage}/board.asc"),
        ]),
        _ => command.args([
            "--85k",
            "--package",
            "CABGA381",
            "--lpf",
            &format!("{stage}/board.lpf"),
            "--textcfg",
            &format!("{stage}/board.config"),
        ]),
    };
    command
        .args(["--freq", &board::format_mhz(clock_mhz)])
        .args(["--json", &format!("{stage}/netlist.json")])
        .args(["--report", &format!("{stage}/nextpnr.json")])
        .args(["-l", &format!("{stage}/nextpnr.log")])
        .args(["--seed", "1", "--timing-allow-fail", "-q"])
        .current_dir(dir);
    let log_path = staging.path.join("nextpnr.log");
    let result = run_logged(nextpnr, dir, &log_path, &mut command);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if let Err(error) = result {
        let usage = nextpnr::parse_log_utilization(&log);
        let overflow: Vec<String> = usage
            .iter()
            .filter(|(_, u)| u.used > u.available)
            .map(|(cell, u)| {
                format!(
                    "needs {} of {} {}",
                    u.used,
                    u.available,
                    cell_description(cell)
                )
            })
            .collect();
        return if overflow.is_empty() {
            Err(error)
        } else {
            Ok(Err(overflow))
        };
    }
    let text = std::fs::read_to_string(staging.path.join("nextpnr.json")).unwrap_or_default();
    let placed = nextpnr::parse_report(&text).map_err(|message| ImplementError::ToolFailed {
        dir: dir.display().to_string(),
        tool: nextpnr.name,
        message,
    })?;
    Ok(Ok(placed))
}

/// What a nextpnr cell type is, in the words of the report.
fn cell_description(cell: &str) -> String {
    match cell {
        "ICESTORM_LC" => "logic cells".into(),
        "ICESTORM_RAM" | "DP16KD" => "block RAMs".into(),
        "ICESTORM_DSP" | "MULT18X18D" => "DSPs".into(),
        "SB_IO" | "TRELLIS_IO" => "I/O".into(),
        "TRELLIS_COMB" => "LUTs".into(),
        "TRELLIS_FF" => "flip-flops".into(),
        "ICESTORM_SPRAM" => "SPRAMs".into(),
        other => format!("{other} cells"),
    }
}

fn apply_placement(report: &mut Report, device: &Device, placed: &nextpnr::Placed) {
    let used = |cell: &str| placed.utilization.get(cell).map(|u| u.used);
    match device.family {
        Family::Ice40 => {
            report.logic_cells = used("ICESTORM_LC").or(report.logic_cells);
            report.brams = used("ICESTORM_RAM").or(report.brams);
            report.dsps = used("ICESTORM_DSP").or(report.dsps);
            report.io = used("SB_IO").or(report.io);
        }
        _ => {
            report.luts = used("TRELLIS_COMB").or(report.luts);
            report.ffs = used("TRELLIS_FF").or(report.ffs);
            report.brams = used("DP16KD").or(report.brams);
            report.dsps = used("MULT18X18D").or(report.dsps);
            report.io = used("TRELLIS_IO").or(report.io);
        }
    }
    report.fmax_mhz = placed.fmax_mhz.map(|f| round(f, 2));
    if let (Some(fmax), Some(clock)) = (report.fmax_mhz, report.clock_mhz) {
        report.timing_met = Some(fmax >= clock);
        if report.cycles_per_inference > 0 {
            report.inferences_per_s =
                Some(round(fmax * 1e6 / report.cycles_per_inference as f64, 1));
        }
    }
    report.critical_path = placed
        .critical_path
        .as_ref()
        .map(|(from, to)| CriticalPath {
            from: from.clone(),
            to: to.clone(),
        });
}

/// Packs the routed design into a bitstream; returns its path relative to the build folder.
fn pack(
    packer: &Tool,
    dir: &Path,
    staging: &Staging,
    device: &Device,
) -> Result<String, ImplementError> {
    let stage = &staging.name;
    let (input, output) = match device.family {
        Family::Ice40 => ("board.asc", "board.bin"),
        _ => ("board.config", "board.bit"),
    };
    let log = staging.path.join(format!("{}.log", packer.name));
    run_logged(
        packer,
        dir,
        &log,
        packer
            .command()
            .args([format!("{stage}/{input}"), format!("{stage}/{output}")])
            .current_dir(dir),
    )?;
    Ok(format!("{FOLDER}/{output}"))
}

impl Report {
    /// Ok when the design fits and meets its clock; otherwise the one-line error that names
    /// what overflowed or the Fmax.
    pub fn verdict(&self, dir: &Path) -> Result<(), ImplementError> {
        let target = Target::from_name(&self.target).map_or("target", Target::name);
        let report = dir.join(FOLDER).join("report.json").display().to_string();
        if !self.fits {
            return Err(ImplementError::NoFit {
                target,
                what: self.overflow.join("; "),
                report,
            });
        }
        if let (Some(false), Some(fmax), Some(clock)) =
            (self.timing_met, self.fmax_mhz, self.clock_mhz)
        {
            return Err(ImplementError::Timing {
                target,
                fmax,
                clock: board::format_mhz(clock),
                report,
            });
        }
        Ok(())
    }

    /// The line of Yosys's figures the summary opens with.
    pub fn synthesis_line(&self) -> String {
        let command = Target::from_name(&self.target).map_or("synth", Target::synth_command);
        format!(
            "yosys {command}: {} cells, {} flip-flops, {} latches",
            self.cells,
            self.ffs.unwrap_or(0),
            self.latches
        )
    }
}

/// Reads `implementation/report.json` of a build folder.
pub fn read_report(dir: &Path) -> Result<Report, ImplementError> {
    let path = dir.join(FOLDER).join("report.json");
    let text = crate::input::read_text(&path, crate::input::BUILD_FILE).map_err(|_| ImplementError::Files {
        dir: dir.display().to_string(),
        message: format!(
            "no {FOLDER}/report.json: compile with --target first (qnnc compile MODEL --target up5k -o DIR)"
        ),
    })?;
    serde_json::from_str(&text).map_err(|e| ImplementError::Files {
        dir: dir.display().to_string(),
        message: format!("{FOLDER}/report.json: {e}"),
    })
}
