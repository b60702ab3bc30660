//! `qnnc sim`: simulates a build folder on real test images and compares every output with the
//! golden model. Exit code 1 on any mismatch.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::compile::{Manifest, BUILD_FORMAT, BUILD_VERSION};
use super::train::NetworkArgs;
use super::{load_split, Format, Source};
use crate::calibrate::Calibration;
use crate::codegen::{self, digest};
use crate::data::{DatasetKind, Split};
use crate::energy::Profile;
use crate::error::{Error, Result};
use crate::golden::Golden;
use crate::input::BUILD_FILE;
use crate::ir::{dump, passes};
use crate::schedule::{self, ArrayConfig};
use crate::sim::activity::ActivityReport;
use crate::sim::measured_energy::{self, MeasuredEnergy};
use crate::sim::{self, Expectation, SimReport, Simulator};

#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Build folder written by `qnnc compile`
    pub dir: PathBuf,
    /// Use the first N test images (a simulation is slow: not the whole set by default)
    #[arg(
        long = "test-limit",
        visible_alias = "images",
        value_name = "N",
        default_value_t = 100
    )]
    pub images: usize,
    /// Clock rate at which to report the hardware's inferences per second, in MHz
    #[arg(long, value_name = "MHZ", default_value_t = 100.0)]
    pub clock_mhz: f64,
    /// Stop a simulation that prints nothing for this long, in seconds: one stuck in zero
    /// simulated time, where no cycle budget can stop it (the testbench prints a line every
    /// 2048 cycles, so a longer silence means no cycle ran)
    #[arg(long, value_name = "SECONDS", default_value_t = sim::SILENCE_LIMIT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub silence_limit: u64,
    #[arg(long, value_enum, default_value_t = Simulator::Verilator)]
    pub simulator: Simulator,
    /// Check that the build was compiled from this trained-model or QONNX file
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub scale: super::InputScaleArgs,
    /// Folder holding the data set's files (default: the Debian package's folder)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Simulate the gate-level netlist of `qnnc compile --target` (DIR/implementation) with
    /// Yosys's cell models instead of the RTL
    #[arg(long)]
    pub netlist: bool,
    /// Write the waveforms of the whole run to FILE (VCD; with Verilator, a traced build of
    /// the design is made for it). Tens of MB an image for the example networks: use few
    /// --images
    #[arg(long, value_name = "FILE")]
    pub vcd: Option<PathBuf>,
    /// Simulate a build folder whose files were edited since `qnnc compile` (refused by
    /// default) and compare it with the golden model; the edited files are named on stderr.
    /// ir.json, which the golden model is built from, must stay as compiled
    #[arg(long)]
    pub allow_edited: bool,
    /// Count, per layer, the memory words read and written, the outputs computed and stored,
    /// the MAC lane operations on real operands and the toggles of the datapath's registers,
    /// and print them beside the schedule's prediction and the energy model's counts (RTL only,
    /// not with --netlist)
    #[arg(long)]
    pub activity: bool,
    /// Price the counted activity with the calibration.json of `qnnc calibrate` and set the
    /// measured energy of each layer beside the energy model's (needs --activity)
    #[arg(long, value_name = "FILE", requires = "activity")]
    pub calibration: Option<PathBuf>,
    /// Profile of the measured and modelled energies, a preset or a TOML file; repeat for
    /// several [default: moons-dram, moons-sram and the profile.toml beside the calibration
    /// file, if there is one]
    #[arg(long = "profile", value_name = "NAME|FILE", requires = "calibration")]
    pub profiles: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LayerResult {
    pub name: String,
    pub macs: u64,
    /// Cycles of one inference (the same for every image).
    pub cycles: u64,
    pub predicted_cycles: u64,
    /// MACs over cycles x PE x SIMD, 0..=1.
    pub utilization: f64,
}

#[derive(Debug, Serialize)]
pub struct SimSummary {
    /// The build folder, as given.
    pub build: String,
    /// The network's name.
    pub network: String,
    pub simulator: String,
    /// The target whose gate-level netlist ran, or null for the RTL.
    pub netlist: Option<String>,
    pub test_images: usize,
    pub mismatches: usize,
    pub cycles_per_inference: u64,
    pub predicted_cycles: u64,
    pub prediction_error_percent: f64,
    /// Null for a netlist, whose testbench sees no layers.
    pub utilization: Option<f64>,
    /// The clock of `hardware_inferences_per_second`.
    pub clock_mhz: f64,
    /// Inferences per second of the design at `clock_mhz`: the clock over the cycles an
    /// inference takes.
    pub hardware_inferences_per_second: f64,
    /// Inferences per second of the simulator on this machine (wall clock).
    pub simulator_inferences_per_second: f64,
    pub layers: Vec<LayerResult>,
    /// What each layer read, wrote, computed and toggled per inference (`--activity`), or null.
    pub activity: Option<ActivityReport>,
    /// The counted activity priced with a calibration beside the model (`--calibration`), or
    /// null.
    pub measured_energy: Option<MeasuredEnergy>,
}

/// Reads and checks a build folder's manifest: the format, the version, and that no file
/// changed since it was written. With `allow_edited`, files other than ir.json may differ:
/// the edited ones are returned (none is missing).
pub fn read_manifest(dir: &Path, allow_edited: bool) -> Result<(Manifest, Vec<String>)> {
    let folder = dir.display().to_string();
    let fail = |message: String| Error::Output {
        file: folder.clone(),
        message,
    };
    let text = match crate::input::read_text_inside(dir, "manifest.json", BUILD_FILE) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                "not a qnnc build folder (no manifest.json); run qnnc compile first".into(),
            ))
        }
        Err(e) => return Err(fail(format!("manifest.json: {e}"))),
    };
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| fail(format!("manifest.json: not a {BUILD_FORMAT} manifest: {e}")))?;
    if manifest.format != BUILD_FORMAT || manifest.version != BUILD_VERSION {
        return Err(fail(format!(
            "manifest.json: format {} version {} is not {BUILD_FORMAT} version {BUILD_VERSION}; compile again",
            manifest.format, manifest.version
        )));
    }
    if manifest.qnnc != env!("CARGO_PKG_VERSION") {
        return Err(fail(format!(
            "built by qnnc {} but this is qnnc {}; compile again",
            manifest.qnnc,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let mut edited = Vec::new();
    for (file, expected) in &manifest.files {
        // Only the files the manifest lists are read, each a regular file of the folder's own.
        crate::input::check_relative(file)
            .map_err(|e| fail(format!("manifest.json: file {file:?} {e}")))?;
        let text = match crate::input::read_inside(dir, file, BUILD_FILE) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail(format!(
                    "stale build: {file} is missing; compile again"
                )))
            }
            Err(e) => return Err(fail(format!("{file}: {e}"))),
        };
        if &digest(&text) != expected {
            // The golden model is built from ir.json: an edited one leaves nothing to check
            // against.
            if file == "ir.json" {
                return Err(fail(
                    "stale build: ir.json changed since qnnc compile, and the golden model is built from it; compile again".into(),
                ));
            }
            if !allow_edited {
                return Err(fail(format!(
                    "stale build: {file} changed since qnnc compile; compile again, or check the edited design against the golden model with --allow-edited"
                )));
            }
            edited.push(file.clone());
        }
    }
    Ok((manifest, edited))
}

pub fn run(args: &SimArgs) -> Result<()> {
    let dir = &args.dir;
    let folder = dir.display().to_string();
    if args.images == 0 {
        return Err(Error::usage("--test-limit", "must be at least 1"));
    }
    if args.activity && args.netlist {
        return Err(Error::usage(
            "--activity",
            "counts signals of the RTL, which a gate-level netlist does not have; drop --netlist",
        ));
    }
    if !(args.clock_mhz.is_finite() && args.clock_mhz > 0.0 && args.clock_mhz <= 1000.0) {
        return Err(Error::usage(
            "--clock-mhz",
            format!("{} is not a clock rate in MHz (0 to 1000)", args.clock_mhz),
        ));
    }
    // Read before the simulation, so that a bad file costs no build.
    let pricing = args
        .calibration
        .as_deref()
        .map(|file| calibration_and_profiles(file, &args.profiles))
        .transpose()?;
    let (manifest, mut edited) = read_manifest(dir, args.allow_edited)?;
    let vcd = args.vcd.as_deref().map(absolute_output).transpose()?;
    let ir_text =
        crate::input::read_text_inside(dir, "ir.json", BUILD_FILE).map_err(|e| Error::Output {
            file: folder.clone(),
            message: format!("ir.json: {e}"),
        })?;
    let graph = dump::from_json(&ir_text, &format!("{folder}/ir.json"))?;
    let schedule = check_against_compile(
        &folder,
        &manifest,
        &graph,
        &ir_text,
        args.allow_edited,
        &mut edited,
    )?;
    if let Some(p) = &pricing {
        measured_energy::lane_point(&p.calibration, &codegen::Hardware::new(&schedule), &p.file)
            .map_err(|message| Error::usage("--calibration", message))?;
    }
    if !edited.is_empty() {
        eprintln!(
            "warning: {folder}: simulating an edited design; these files differ from what qnnc compile wrote: {}",
            edited.join(", ")
        );
    }
    if let Some(model) = &args.model {
        let origin = model.display().to_string();
        let mut expected =
            Source::open_scaled(model, &NetworkArgs::default(), &args.scale)?.graph(&origin)?;
        passes::run(&mut expected, &origin, None)?;
        if digest(dump::to_json(&expected)) != manifest.ir_sha256 {
            return Err(Error::Output {
                file: folder,
                message: format!("was compiled from another model than {origin}; compile it again"),
            });
        }
    }
    let golden = Golden::new(&graph, &folder)?;
    let kind = match manifest.dataset.as_str() {
        "mnist" => DatasetKind::Mnist,
        "cifar10" => DatasetKind::Cifar10,
        _ => DatasetKind::FashionMnist,
    };
    let data = load_split(kind, args.data.as_deref(), Split::Test, Some(args.images))?;
    let inputs = graph
        .output_type(graph.topological_order()[0])
        .map_or(0, |t| t.shape.len());
    if data.pixels_per_image() != inputs {
        return Err(Error::Output {
            file: folder,
            message: format!(
                "the design reads {inputs} pixels an image but {} images have {}",
                manifest.dataset,
                data.pixels_per_image()
            ),
        });
    }
    let expect = Expectation {
        layers: manifest.layers.len(),
        images: data.len(),
        max_cycles: sim::cycle_budget(schedule.total_cycles, data.len()),
        silence_limit: std::time::Duration::from_secs(args.silence_limit),
    };
    let expected = golden.run(&data.images);
    sim::write_vectors(dir, &data.images, data.pixels_per_image(), &expected)?;
    let (mut bench, netlist) = if args.netlist {
        let (bench, target) = sim::netlist::bench(dir)?;
        (bench, Some(target))
    } else {
        (sim::Bench::rtl(dir)?, None)
    };
    if args.simulator == Simulator::Icarus {
        if let Some(warning) = icarus_warning(
            manifest.predicted_cycles,
            data.len(),
            manifest.pe * manifest.simd,
            netlist.is_some(),
        ) {
            eprintln!("{warning}");
        }
    }
    bench.trace = vcd.is_some();
    let simulator = format!("{:?}", args.simulator).to_lowercase();
    // A spinner while the simulator builds (its time cannot be counted), then a count of the
    // images as the testbench reports them. Cleared whatever happens, so that an error line
    // stands alone.
    let progress = super::progress_spinner(format!("building {} with {simulator}", manifest.top));
    let built = sim::build_bench(dir, args.simulator, &bench).and_then(|executable| {
        progress.set_style(super::counting_style());
        progress.set_length(data.len() as u64);
        progress.reset();
        progress.set_message(format!("images simulated in {simulator}"));
        let report = sim::run_counting(
            dir,
            args.simulator,
            &executable,
            &expect,
            vcd.as_deref(),
            args.activity,
            &progress,
        )?;
        Ok((executable, report))
    });
    progress.finish_and_clear();
    let (executable, report) = built?;
    let mut summary = summarize(&folder, &manifest, args, netlist, &report);
    let work = crate::energy::work_of_graph(&graph);
    summary.activity = report
        .activity
        .as_deref()
        .map(|counted| sim::activity::report(&schedule, &work, counted, report.images));
    if let (Some(activity), Some(p)) = (&summary.activity, &pricing) {
        let hw = codegen::Hardware::new(&schedule);
        summary.measured_energy = Some(
            measured_energy::estimate(activity, &hw, &work, &p.calibration, &p.file, &p.profiles)
                .map_err(|message| Error::usage("--calibration", message))?,
        );
    }
    match args.format {
        Format::Json => super::print_json(&summary)?,
        Format::Table => print_summary(&summary)?,
    }
    if let (true, Some(image), Some(target)) =
        (report.mismatches > 0, report.first_mismatch, netlist)
    {
        return Err(Error::Output {
            file: folder,
            message: format!(
                "{} of {} images mismatch the golden model in the {} netlist; first: image {image} (qnnc sim without --netlist locates the layer in the RTL)",
                report.mismatches,
                report.images,
                target.name()
            ),
        });
    }
    if let (true, Some(image)) = (report.mismatches > 0, report.first_mismatch) {
        let pixels = &data.images[image * data.pixels_per_image()..][..data.pixels_per_image()];
        let place = locate_mismatch(
            dir,
            &manifest,
            &graph,
            &Runner {
                simulator: args.simulator,
                executable: &executable,
                expect: &expect,
            },
            image,
            pixels,
        )?;
        return Err(Error::Output {
            file: folder,
            message: format!(
                "{} of {} images mismatch the golden model; first: image {image}, {place}",
                report.mismatches, report.images
            ),
        });
    }
    Ok(())
}

/// How fast Icarus Verilog simulates the RTL and its testbench here, in clock cycles a second:
/// about this over the array's lanes plus 16 (measured: 5,800 cycles/s for a 2x4 array, 900
/// for 8x16).
const ICARUS_CYCLE_LANES_PER_SECOND: f64 = 125_000.0;
/// How much slower a gate-level netlist simulates than the RTL in Icarus Verilog (measured: the
/// tiny CNN's UP5K netlist at 42 cycles/s).
const ICARUS_NETLIST_SLOWDOWN: f64 = 120.0;

/// Expected durations above this are announced before an Icarus run starts.
const SLOW_RUN_SECONDS: f64 = 60.0;

/// The warning printed before a long Icarus Verilog run: how long it should take, and that
/// Verilator is faster.
fn icarus_warning(
    predicted_cycles: u64,
    images: usize,
    lanes: usize,
    netlist: bool,
) -> Option<String> {
    let slowdown = if netlist {
        ICARUS_NETLIST_SLOWDOWN
    } else {
        1.0
    };
    let rate = ICARUS_CYCLE_LANES_PER_SECOND / (lanes as f64 + 16.0) / slowdown;
    let seconds = predicted_cycles as f64 * images as f64 / rate;
    (seconds > SLOW_RUN_SECONDS).then(|| {
        format!(
            "warning: Icarus Verilog simulates about {rate:.0} cycles a second: {images} images of {predicted_cycles} cycles will take about {}; Verilator (the default simulator) is much faster",
            duration_words(seconds)
        )
    })
}

/// A duration in the largest fitting unit: "40 s", "12 min", "3.5 h".
fn duration_words(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 2.0 * 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// The waveform file of `--vcd` as the simulator, which runs in the build folder, must name
/// it: absolute, in a folder that exists.
fn absolute_output(file: &Path) -> Result<PathBuf> {
    let refuse = |message: &str| Error::usage("--vcd", format!("{}: {message}", file.display()));
    let name = file.file_name().ok_or_else(|| refuse("names no file"))?;
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let folder = folder
        .canonicalize()
        .map_err(|_| refuse("its folder does not exist"))?;
    let path = folder.join(name);
    if path.is_dir() {
        return Err(refuse("is a folder"));
    }
    // The testbench reads the name as a plusarg: one word.
    if path
        .to_str()
        .is_none_or(|p| p.chars().any(char::is_whitespace))
    {
        return Err(refuse("the path must be UTF-8 without spaces"));
    }
    Ok(path)
}

/// Compares the build with what `qnnc compile` writes for its ir.json on its array, so that a
/// manifest whose digests were recomputed after an edit does not hide the edit: a file that
/// differs is edited (refused unless `allow_edited`, else added to `edited`), and a manifest
/// field that differs (the predicted cycles, which set the cycle budget, among them) makes the
/// build stale. Returns the schedule.
fn check_against_compile(
    folder: &str,
    manifest: &Manifest,
    graph: &crate::ir::Graph,
    ir_json: &str,
    allow_edited: bool,
    edited: &mut Vec<String>,
) -> Result<schedule::Schedule> {
    let config = ArrayConfig {
        pe: manifest.pe,
        simd: manifest.simd,
    };
    let origin = format!("{folder}/ir.json");
    let schedule = schedule::schedule(graph, config, &origin)?;
    let (_, mut files) = codegen::generate(graph, &schedule, None, &origin)?;
    files.push(codegen::BuildFile {
        path: "ir.json".into(),
        text: ir_json.into(),
    });
    let expected =
        super::compile::manifest(&graph.name, &manifest.dataset, ir_json, &schedule, &files);
    let stale = |message: String| Error::Output {
        file: folder.to_string(),
        message: format!("stale build: {message}"),
    };
    let same_fields = Manifest {
        files: manifest.files.clone(),
        ..expected.clone()
    };
    if &same_fields != manifest {
        return Err(stale(format!(
            "manifest.json does not describe ir.json on a {}x{} array; compile again",
            manifest.pe, manifest.simd
        )));
    }
    // The README states the clock a target was implemented for, which the manifest does not
    // record; it is documentation, never read by a tool.
    let listed = expected.files.keys().chain(manifest.files.keys());
    for file in listed.filter(|f| f.as_str() != "README.md") {
        if expected.files.get(file) == manifest.files.get(file) || edited.contains(file) {
            continue;
        }
        if !allow_edited {
            return Err(stale(format!(
                "{file} is not what qnnc compile writes for ir.json on a {}x{} array; compile again, or check the edited design against the golden model with --allow-edited",
                manifest.pe, manifest.simd
            )));
        }
        edited.push(file.clone());
    }
    edited.sort();
    edited.dedup();
    Ok(schedule)
}

/// A built simulation and what its runs must stay within.
struct Runner<'a> {
    simulator: Simulator,
    executable: &'a Path,
    expect: &'a Expectation,
}

/// The first layer and element where the RTL's activations for `image` differ from the golden
/// model's, or the logits if every stored layer agrees.
fn locate_mismatch(
    dir: &Path,
    manifest: &Manifest,
    graph: &crate::ir::Graph,
    runner: &Runner,
    image: usize,
    pixels: &[u8],
) -> Result<String> {
    let writes = sim::trace_writes(
        dir,
        runner.simulator,
        runner.executable,
        image,
        manifest.simd,
        runner.expect,
    )?;
    let traces = Golden::unfused(graph, &dir.display().to_string())?.trace(pixels);
    let empty = std::collections::BTreeMap::new();
    for (l, layer) in manifest
        .layers
        .iter()
        .enumerate()
        .take(manifest.layers.len().saturating_sub(1))
    {
        let Some(golden) = traces.iter().find(|t| t.node == layer.output_node) else {
            continue;
        };
        let rtl = writes.get(&l).unwrap_or(&empty);
        for (e, &value) in golden.values.iter().enumerate() {
            let expected = if layer.bipolar {
                (value > 0) as i64
            } else {
                value
            };
            match rtl.get(&e) {
                Some(&got) if got == expected => {}
                Some(&got) => {
                    return Ok(format!(
                        "layer {} ({}) element {e}: RTL {got}, golden {expected}",
                        layer.name, layer.output_node
                    ))
                }
                None => {
                    return Ok(format!(
                        "layer {} ({}) element {e}: never written, golden {expected}",
                        layer.name, layer.output_node
                    ))
                }
            }
        }
    }
    let last = manifest.layers.last().map_or("logits", |l| l.name.as_str());
    Ok(format!(
        "layer {last} (logits): every stored activation agrees; the logits differ"
    ))
}

fn summarize(
    folder: &str,
    manifest: &Manifest,
    args: &SimArgs,
    netlist: Option<crate::implement::Target>,
    report: &SimReport,
) -> SimSummary {
    let n = report.images.max(1) as u64;
    // Every image takes the same cycles; the mean, rounded, is that count.
    let per_image = |total: u64| (total + n / 2) / n;
    let lanes = (manifest.pe * manifest.simd) as f64;
    // A netlist's testbench counts no layers: totals only.
    let layers: Vec<LayerResult> = manifest
        .layers
        .iter()
        .filter(|_| netlist.is_none())
        .zip(&report.layer_cycles)
        .map(|(l, &cycles)| LayerResult {
            name: l.name.clone(),
            macs: l.macs,
            cycles: per_image(cycles),
            predicted_cycles: l.predicted_cycles,
            utilization: l.macs as f64 * n as f64 / (cycles as f64 * lanes),
        })
        .collect();
    let layer_cycles: u64 = report.layer_cycles.iter().sum();
    let cycles = per_image(report.cycles);
    SimSummary {
        build: folder.to_string(),
        network: manifest.model.clone(),
        simulator: format!("{:?}", args.simulator).to_lowercase(),
        netlist: netlist.map(|t| t.name().to_string()),
        test_images: report.images,
        mismatches: report.mismatches,
        cycles_per_inference: cycles,
        predicted_cycles: manifest.predicted_cycles,
        prediction_error_percent: 100.0
            * (report.cycles as f64 / n as f64 - manifest.predicted_cycles as f64)
            / manifest.predicted_cycles as f64,
        utilization: (netlist.is_none())
            .then(|| manifest.macs as f64 * n as f64 / (layer_cycles as f64 * lanes)),
        clock_mhz: args.clock_mhz,
        hardware_inferences_per_second: args.clock_mhz * 1e6 / cycles.max(1) as f64,
        simulator_inferences_per_second: report.images as f64 / report.seconds,
        layers,
        activity: None,
        measured_energy: None,
    }
}

/// What `--calibration` prices the counted activity with.
struct Pricing {
    calibration: Calibration,
    /// The calibration file, as given.
    file: String,
    /// Each profile with the name it was given by.
    profiles: Vec<(String, Profile)>,
}

/// The calibration file and the profiles its estimate is priced under.
fn calibration_and_profiles(file: &Path, given: &[String]) -> Result<Pricing> {
    let calibration = Calibration::from_file(file)?;
    let names: Vec<String> = if given.is_empty() {
        let beside = file.with_file_name("profile.toml");
        let mut names = vec!["moons-dram".to_string(), "moons-sram".to_string()];
        if beside.is_file() {
            names.push(beside.display().to_string());
        }
        names
    } else {
        given.to_vec()
    };
    let profiles = names
        .into_iter()
        .map(|name| Ok((name.clone(), Profile::resolve(&name)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Pricing {
        calibration,
        file: file.display().to_string(),
        profiles,
    })
}

fn print_summary(s: &SimSummary) -> Result<()> {
    let what = match &s.netlist {
        Some(target) => format!("{} netlist", target),
        None => s.simulator.clone(),
    };
    let how = if s.netlist.is_some() {
        format!(" in {}", s.simulator)
    } else {
        String::new()
    };
    outln!(
        "{} ({}) in {what}{how}: {} test images, mismatches: {}",
        s.network,
        s.build,
        s.test_images,
        s.mismatches
    )?;
    outln!(
        "cycles per inference: {} (predicted {}, {:+.2} %)",
        s.cycles_per_inference,
        s.predicted_cycles,
        s.prediction_error_percent
    )?;
    if !s.layers.is_empty() {
        outln!(
            "  {:<10} {:>10} {:>10} {:>10} {:>6}",
            "layer",
            "macs",
            "cycles",
            "predicted",
            "utilization"
        )?;
        for l in &s.layers {
            outln!(
                "  {:<10} {:>10} {:>10} {:>10} {:>11.3}",
                l.name,
                l.macs,
                l.cycles,
                l.predicted_cycles,
                l.utilization
            )?;
        }
    }
    if let Some(utilization) = s.utilization {
        outln!("PE utilization over the layers: {utilization:.3}")?;
    }
    outln!(
        "hardware inferences per second at {} MHz: {:.0} (--clock-mhz to change)",
        s.clock_mhz,
        s.hardware_inferences_per_second
    )?;
    outln!(
        "simulator inferences per second on this machine: {:.1}",
        s.simulator_inferences_per_second
    )?;
    if let Some(activity) = &s.activity {
        print_activity(activity)?;
    }
    match &s.measured_energy {
        Some(measured) => out!("{}", measured.to_table()),
        None => Ok(()),
    }
}

/// The activity of each layer: the counts beside the model's, and their ratio.
fn print_activity(a: &ActivityReport) -> Result<()> {
    outln!(
        "activity per inference, counted in the simulation, beside the energy model's counts at p = PE x SIMD = {} (ratio: measured over model):",
        a.parallel_macs
    )?;
    for (index, l) in a.layers.iter().enumerate() {
        let m = &l.model;
        outln!(
            "  {}: N_c {}, N_s {}, A_s {}, A_out {}, N_c/sqrt(p) {:.1}; {}",
            l.name,
            m.macs,
            m.weights,
            m.outputs_computed,
            m.outputs_stored,
            m.local_reads,
            if l.as_predicted {
                "reads, writes and outputs as the schedule predicts"
            } else {
                "NOT as the schedule predicts (--format json gives both)"
            }
        )?;
        outln!(
            "    {:<26} {:>10} {:>12}  {:<34} {:>6}",
            "counted",
            "measured",
            "bits",
            "model",
            "ratio"
        )?;
        let row = |what: &str, count: u64, bits: Option<u64>, model: String, ratio: Option<f64>| {
            let line = format!(
                "    {:<26} {:>10} {:>12}  {:<34} {:>6}",
                what,
                count,
                bits.map(|b| b.to_string()).unwrap_or_default(),
                model,
                ratio.map(|r| format!("{r:.2}")).unwrap_or_default()
            );
            outln!("{}", line.trim_end())
        };
        let r = &l.ratios;
        row(
            "weight reads (words)",
            l.weight_reads.words,
            Some(l.weight_reads.bits),
            format!("{:.0} bits (N_c/sqrt(p) x Qw)", m.weight_read_bits),
            Some(r.weight_reads),
        )?;
        row(
            "activation reads (words)",
            l.source_reads.words + l.window_reads.words,
            Some(l.source_reads.bits + l.window_reads.bits),
            format!("{:.0} bits (N_c/sqrt(p) x Qa_in)", m.activation_read_bits),
            Some(r.activation_reads),
        )?;
        let source = if index == 0 {
            "  of the pixel buffer"
        } else {
            "  of the activation buffer"
        };
        row(
            source,
            l.source_reads.words,
            Some(l.source_reads.bits),
            String::new(),
            None,
        )?;
        row(
            "  of the window memory",
            l.window_reads.words,
            Some(l.window_reads.bits),
            String::new(),
            None,
        )?;
        row(
            "window writes (words)",
            l.window_writes.words,
            Some(l.window_writes.bits),
            String::new(),
            None,
        )?;
        row(
            "activation writes (words)",
            l.activation_writes.words,
            Some(l.activation_writes.bits),
            format!("{} bits (A_out x Qa_out)", m.activation_write_bits),
            Some(r.activation_writes),
        )?;
        row(
            "parameter reads (groups)",
            l.parameter_reads.words,
            Some(l.parameter_reads.bits),
            String::new(),
            None,
        )?;
        row(
            "outputs computed",
            l.outputs_computed,
            None,
            format!("{} (A_s)", m.outputs_computed),
            Some(r.outputs_computed),
        )?;
        row(
            "outputs stored",
            l.outputs_stored,
            None,
            format!("{} (A_out)", m.outputs_stored),
            Some(r.outputs_stored),
        )?;
        row(
            "MAC lane operations",
            l.lane_macs,
            None,
            format!("{} (N_c)", m.macs),
            Some(r.lane_macs),
        )?;
        outln!(
            "    toggles: weight word {:.1}, activation word {:.1}, accumulators {:.1}",
            l.weight_toggles,
            l.activation_toggles,
            l.accumulator_toggles
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_icarus_run_is_announced_with_its_duration() {
        // The example MLP on an 8x16 array, all the test set: hours.
        let warning = icarus_warning(2951, 10_000, 128, false).expect("a warning");
        assert!(warning.starts_with("warning: Icarus Verilog"), "{warning}");
        assert!(warning.contains("10000 images of 2951 cycles"), "{warning}");
        assert!(warning.ends_with("Verilator (the default simulator) is much faster"));
        assert!(warning.contains(" h;"), "{warning}");
        // A few images of a tiny design: no warning; the netlist is slower.
        assert_eq!(icarus_warning(7221, 5, 8, false), None);
        assert!(icarus_warning(7221, 5, 8, true).is_some());
    }

    #[test]
    fn durations_are_written_in_their_unit() {
        assert_eq!(duration_words(40.0), "40 s");
        assert_eq!(duration_words(720.0), "12 min");
        assert_eq!(duration_words(12_600.0), "3.5 h");
    }
}
