//! `qnnc explore`: the experiment of Moons et al. (2017) as one command. Trains every point of
//! a precision x width x depth grid, records accuracy and energy, and writes results, a report
//! that names the minimum-energy network at each accuracy target, and plots. Resumable,
//! parallel, splittable into shards; `--emit-best` compiles and simulates the winner.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::Args;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{load_split, progress_bar};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::explore::point::PointResult;
use crate::explore::slurm::{self, SlurmArgs};
use crate::explore::sweep::{compute_point, price, Cache, Cached, PointSpec, Sweep};
use crate::explore::{pareto, plot, report};

const QUICK_SWEEP: &str = include_str!("../../examples/explore_quick.toml");
const EXAMPLE_SPECS: [(&str, &str); 2] = [
    (
        "fmnist_cnn.toml",
        include_str!("../../examples/fmnist_cnn.toml"),
    ),
    (
        "fmnist_mlp.toml",
        include_str!("../../examples/fmnist_mlp.toml"),
    ),
];

/// Names the format of `points.json`.
pub const POINTS_FORMAT: &str = "qnnc-explore";

#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    /// Sweep file (TOML); see examples/explore_fmnist.toml
    #[arg(required_unless_present_any = ["quick", "collect"])]
    pub sweep: Option<PathBuf>,
    /// Output folder (default: explore-<sweep name>)
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// A tiny built-in grid on a few hundred images, to try the command in a minute
    #[arg(long, conflicts_with = "sweep")]
    pub quick: bool,
    /// Points computed at once
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Compute only slice i of N (0-based), e.g. 2/8 in a job array; then --collect the slices
    #[arg(long, value_name = "i/N")]
    pub shard: Option<String>,
    /// Merge the output folders of the shards of one sweep and write the report
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["sweep", "quick", "shard"])]
    pub collect: Vec<PathBuf>,
    /// Compile the minimum-energy network that reaches --target into this folder and simulate it
    #[arg(long, value_name = "DIR", requires = "target", conflicts_with_all = ["shard", "collect"])]
    pub emit_best: Option<PathBuf>,
    /// Test accuracy (percent) for --emit-best
    #[arg(long, requires = "emit_best")]
    pub target: Option<f64>,
    /// PE array of --emit-best: output channels computed in parallel [default: 8]
    #[arg(long, requires = "emit_best")]
    pub pe: Option<usize>,
    /// PE array of --emit-best: multiply lanes of each PE [default: 16]
    #[arg(long, requires = "emit_best")]
    pub simd: Option<usize>,
    /// Price the points of a finished sweep's results.json again, without training: each
    /// point's network is rebuilt from SWEEP, its accuracies kept and its energy recomputed
    /// under --profile (or the sweep's profiles); writes the results, report and plots to -o
    #[arg(long, value_name = "RESULTS_JSON", conflicts_with_all = ["shard", "collect", "emit_best", "epochs", "train_limit", "test_limit"])]
    pub reprice: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: SweepOverrides,
    /// Folder holding the data set's files (default: the Debian package's folder)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: SlurmArgs,
}

/// Command-line values that replace the sweep file's, to scale a sweep down or up without
/// editing it. They change the sweep (and so its digest and the cache keys of its points):
/// cached points of the unchanged sweep are never taken for points of the changed one.
#[derive(Debug, Clone, Default, Args)]
pub struct SweepOverrides {
    /// Epochs of every family (replaces the sweep file's `epochs`)
    #[arg(long, value_name = "N", conflicts_with = "collect")]
    pub epochs: Option<usize>,
    /// Use only the first N training images (replaces `train_limit`)
    #[arg(long, value_name = "N", conflicts_with = "collect")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images (replaces `test_limit`)
    #[arg(long, value_name = "N", conflicts_with = "collect")]
    pub test_limit: Option<usize>,
    /// Energy profile, a preset or a TOML file; repeat for several (replaces `profiles`; the
    /// first ranks --emit-best)
    #[arg(long, value_name = "NAME|FILE", conflicts_with = "collect")]
    pub profile: Vec<String>,
}

impl SweepOverrides {
    /// The sweep with these values in place, and the folder its profile files are relative
    /// to: the sweep file's, or the working folder for profiles given here.
    fn apply(&self, mut sweep: Sweep, sweep_file: &Path) -> Result<(Sweep, PathBuf)> {
        use crate::limits::{at_most, MAX_EPOCHS, MAX_IMAGES};
        for (flag, value, max) in [
            ("--epochs", self.epochs, MAX_EPOCHS),
            ("--train-limit", self.train_limit, MAX_IMAGES),
            ("--test-limit", self.test_limit, MAX_IMAGES),
        ] {
            if let Some(value) = value {
                if value == 0 {
                    return Err(Error::usage(flag, "must be at least 1"));
                }
                at_most(value, max).map_err(|message| Error::usage(flag, message))?;
            }
        }
        if let Some(epochs) = self.epochs {
            for family in [&mut sweep.cnn, &mut sweep.mlp].into_iter().flatten() {
                family.epochs = epochs;
            }
        }
        sweep.train_limit = self.train_limit.or(sweep.train_limit);
        sweep.test_limit = self.test_limit.or(sweep.test_limit);
        let folder = if self.profile.is_empty() {
            sweep_file.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            sweep.profiles = self.profile.clone();
            PathBuf::from(".")
        };
        Ok((sweep, folder))
    }
}

/// What a run (or a shard) computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointsFile {
    pub format: String,
    pub sweep_sha256: String,
    pub sweep: Sweep,
    pub shard: Option<(usize, usize)>,
    /// Every point of the grid, whether or not this shard computed it.
    pub grid: Vec<String>,
    pub points: Vec<PointResult>,
}

fn parse_shard(text: &str) -> Result<(usize, usize)> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => Err(Error::usage(
            "--shard",
            format!("'{text}' is not i/N with 0 <= i < N"),
        )),
    }
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        file: path.display().to_string(),
        message: e.to_string(),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(|e| io_error(folder, e))?;
    }
    crate::output::write_atomic(path, text.as_bytes()).map_err(|e| io_error(path, e))
}

/// The quick sweep and the specs it names, written into the output folder.
fn write_quick_sweep(out: &Path) -> Result<PathBuf> {
    let folder = out.join("sweep");
    for (name, text) in EXAMPLE_SPECS {
        write(&folder.join(name), text)?;
    }
    let path = folder.join("explore_quick.toml");
    write(&path, QUICK_SWEEP)?;
    Ok(path)
}

pub fn run(args: &ExploreArgs) -> Result<()> {
    // Outputs are checked before any point is trained.
    if let Some(out) = &args.output {
        super::check_folder_path(out)?;
    }
    if let Some(dir) = &args.emit_best {
        super::check_build_path(dir)?;
        let (pe, simd) = emit_array(args);
        crate::schedule::ArrayConfig { pe, simd }
            .check()
            .map_err(|(flag, message)| Error::usage(flag, message))?;
    }
    slurm::check(&args.cluster)?;
    if !args.collect.is_empty() {
        return collect(args);
    }
    let jobs = args.jobs.max(1);
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let given = args.sweep.clone();
    let out_default = |name: &str| PathBuf::from(format!("explore-{name}"));
    let (sweep_path, out) = if args.quick {
        let out = args.output.clone().unwrap_or_else(|| out_default("quick"));
        (write_quick_sweep(&out)?, out)
    } else {
        let path = given.expect("clap requires a sweep");
        let sweep = Sweep::load(&path)?;
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| out_default(&sweep.name));
        (path, out)
    };
    super::check_folder_path(&out)?;
    let (sweep, profile_folder) = args
        .overrides
        .apply(Sweep::load(&sweep_path)?, &sweep_path)?;
    // Resolving the profiles first reports a bad one before any training starts.
    let profiles = sweep.resolve_profiles(&profile_folder)?;
    if sweep.targets.is_empty() {
        return Err(Error::usage(
            &format!("{}: targets", sweep_path.display()),
            "give at least one accuracy target",
        ));
    }
    let grid = sweep.points(&sweep_path)?;
    if let Some(results) = &args.reprice {
        if args.cluster.slurm.is_some() {
            return Err(Error::usage(
                "--reprice",
                "trains nothing, so there is nothing to submit; drop --slurm",
            ));
        }
        return reprice(results, &sweep, &grid, &profiles, &out);
    }
    let mine: Vec<&PointSpec> = grid
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|(s, n)| i % n == s))
        .map(|(_, p)| p)
        .collect();

    let cache = Cache {
        dir: args
            .cluster
            .cache
            .clone()
            .unwrap_or_else(|| out.join("cache")),
    };
    cache.check_owner(&sweep)?;
    if args.cluster.slurm.is_some() {
        return slurm::submit(&args.cluster, &sweep, &out, &cache);
    }
    let needs_training = mine
        .iter()
        .any(|p| !matches!(cache.read(p), Cached::Hit(_)));
    let kind = grid[0].network.spec.dataset;
    let (train_data, test_data) = if needs_training {
        (
            load_split(kind, args.data.as_deref(), Split::Train, sweep.train_limit)?,
            load_split(kind, args.data.as_deref(), Split::Test, sweep.test_limit)?,
        )
    } else {
        let empty = crate::data::Dataset {
            height: 0,
            width: 0,
            channels: 0,
            classes: 0,
            images: Vec::new(),
            labels: Vec::new(),
        };
        (empty.clone(), empty)
    };
    // Refused now if another sweep owns the cache; claimed with the first point stored, so
    // that a sweep failing before then leaves nothing behind.
    cache.check_owner(&sweep)?;

    let progress = progress_bar(mine.len() as u64);
    // A point trains for minutes: the clock keeps moving, and the message names the points
    // being trained and the best so far.
    progress.enable_steady_tick(std::time::Duration::from_millis(500));
    let best = Mutex::new(None::<(f64, String)>);
    let training = Mutex::new(Vec::<String>::new());
    let computed = AtomicUsize::new(0);
    let first_profile = sweep
        .profiles
        .first()
        .map(String::as_str)
        .unwrap_or_default()
        .to_string();
    let target = sweep.targets[0];
    let show = || {
        let training = training.lock().expect("no panics while holding it");
        let best = best.lock().expect("no panics while holding it");
        let mut parts = Vec::new();
        if !training.is_empty() {
            parts.push(format!("training {}", training.join(", ")));
        }
        if let Some((energy, id)) = best.as_ref() {
            parts.push(format!(
                "best at {target} %: {id} ({energy:.3e} on {first_profile})"
            ));
        }
        progress.set_message(parts.join("; "));
    };
    // `jobs` points at a time; each point's training uses every core.
    let mut results: Vec<Result<PointResult>> = Vec::with_capacity(mine.len());
    for batch in mine.chunks(jobs) {
        let computed: Vec<Result<PointResult>> = batch
            .par_iter()
            .map(|point| {
                let result = match cache.read(point) {
                    Cached::Hit(mut result) => {
                        (result.energy, result.units, result.layers) =
                            price(point, &sweep, &profiles);
                        result
                    }
                    other => {
                        if let Cached::Corrupt(why) = other {
                            progress.suspend(|| {
                                eprintln!("warning: corrupt cache entry recomputed: {why}")
                            });
                        }
                        training
                            .lock()
                            .expect("no panics while holding it")
                            .push(point.id.clone());
                        show();
                        let computed_point =
                            compute_point(point, &sweep, &train_data, &test_data, &profiles);
                        training
                            .lock()
                            .expect("no panics while holding it")
                            .retain(|id| id != &point.id);
                        let (result, mut model) = computed_point?;
                        cache.claim(&sweep)?;
                        cache.write(point, &result, &mut model)?;
                        computed.fetch_add(1, Ordering::Relaxed);
                        result
                    }
                };
                if result.integer_accuracy >= target {
                    if let Some(&energy) = result.energy.get(&first_profile) {
                        let mut best = best.lock().expect("no panics while holding it");
                        if best.as_ref().is_none_or(|(e, _)| energy < *e) {
                            *best = Some((energy, result.id.clone()));
                        }
                    }
                }
                show();
                progress.inc(1);
                Ok(result)
            })
            .collect();
        results.extend(computed);
    }
    progress.finish_and_clear();
    let mut points = results.into_iter().collect::<Result<Vec<_>>>()?;
    sort_points(&mut points);
    let file = PointsFile {
        format: POINTS_FORMAT.into(),
        sweep_sha256: sweep.digest(),
        sweep: sweep.clone(),
        shard,
        grid: grid.iter().map(|p| p.id.clone()).collect(),
        points,
    };
    write(
        &out.join("points.json"),
        &(serde_json::to_string_pretty(&file).expect("points serialise") + "\n"),
    )?;
    let computed = computed.into_inner();
    outln!(
        "{} of {} points in {} ({computed} computed, {} from the cache)",
        file.points.len(),
        file.grid.len(),
        out.display(),
        file.points.len() - computed
    )?;
    if shard.is_none() {
        write_outputs(&out, &file, &command_line())?;
        if let (Some(dir), Some(target)) = (&args.emit_best, args.target) {
            emit_best(&file, &grid, &cache, dir, target, args)?;
        }
    }
    Ok(())
}

/// The points of a finished sweep's `results` under `profiles`: energy depends on the network
/// alone, so the accuracies stay and only the prices change. Every point of the grid must be
/// there, and nothing else.
fn reprice(
    results: &Path,
    sweep: &Sweep,
    grid: &[PointSpec],
    profiles: &[crate::energy::Profile],
    out: &Path,
) -> Result<()> {
    let refuse = |message: String| io_error(results, message);
    let text = crate::input::read_text(results, crate::input::BUILD_FILE)
        .map_err(|e| refuse(e.to_string()))?;
    let measured: Vec<PointResult> = serde_json::from_str(&text)
        .map_err(|e| refuse(format!("not the results.json of qnnc explore: {e}")))?;
    if let Some(stranger) = measured.iter().find(|p| !grid.iter().any(|g| g.id == p.id)) {
        return Err(refuse(format!(
            "point {} is not in the grid of sweep {}: re-price a sweep's results with its own sweep file",
            stranger.id, sweep.name
        )));
    }
    let mut points = Vec::with_capacity(grid.len());
    for spec in grid {
        let mut found = measured.iter().filter(|p| p.id == spec.id);
        let (Some(result), None) = (found.next(), found.next()) else {
            return Err(refuse(format!(
                "holds point {} of the grid {} times, not once",
                spec.id,
                measured.iter().filter(|p| p.id == spec.id).count()
            )));
        };
        if (
            result.family.as_str(),
            result.bits,
            result.width,
            result.depth,
        ) != (spec.family.as_str(), spec.bits, spec.width, spec.depth)
        {
            return Err(refuse(format!(
                "point {}: family, bits, width or depth differ from the sweep's",
                spec.id
            )));
        }
        let mut result = result.clone();
        (result.energy, result.units, result.layers) = price(spec, sweep, profiles);
        points.push(result);
    }
    sort_points(&mut points);
    let file = PointsFile {
        format: POINTS_FORMAT.into(),
        sweep_sha256: sweep.digest(),
        sweep: sweep.clone(),
        shard: None,
        grid: grid.iter().map(|p| p.id.clone()).collect(),
        points,
    };
    outln!(
        "re-priced {} points of {} under {}",
        file.points.len(),
        results.display(),
        sweep.profiles.join(", ")
    )?;
    write_outputs(out, &file, &command_line())
}

fn sort_points(points: &mut [PointResult]) {
    points.sort_by(|a, b| {
        (a.family.as_str(), a.bits, a.depth, a.width).cmp(&(
            b.family.as_str(),
            b.bits,
            b.depth,
            b.width,
        ))
    });
}

/// The command as typed, without the binary's path, for the report.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("qnnc {}", args.join(" "))
}

fn collect(args: &ExploreArgs) -> Result<()> {
    let mut merged: Option<PointsFile> = None;
    for dir in &args.collect {
        let path = dir.join("points.json");
        let text = crate::input::read_text(&path, crate::input::BUILD_FILE)
            .map_err(|e| io_error(&path, e))?;
        let file: PointsFile = serde_json::from_str(&text)
            .map_err(|e| io_error(&path, format!("not a {POINTS_FORMAT} file: {e}")))?;
        match &mut merged {
            None => merged = Some(file),
            Some(all) => {
                if all.sweep_sha256 != file.sweep_sha256 {
                    return Err(Error::usage(
                        "--collect",
                        format!(
                            "{} holds a slice of another sweep (sweep digest differs)",
                            dir.display()
                        ),
                    ));
                }
                for point in file.points {
                    if !all.points.iter().any(|p| p.id == point.id) {
                        all.points.push(point);
                    }
                }
            }
        }
    }
    let mut file =
        merged.ok_or_else(|| Error::usage("--collect", "give the shards' output folders"))?;
    sort_points(&mut file.points);
    file.shard = None;
    let missing: Vec<&String> = file
        .grid
        .iter()
        .filter(|id| !file.points.iter().any(|p| &p.id == *id))
        .collect();
    if let Some(first) = missing.first() {
        return Err(Error::usage(
            "--collect",
            format!(
                "{} of {} points are missing (first: {first}); collect every shard",
                missing.len(),
                file.grid.len()
            ),
        ));
    }
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("explore-{}", file.sweep.name)));
    write(
        &out.join("points.json"),
        &(serde_json::to_string_pretty(&file).expect("points serialise") + "\n"),
    )?;
    let command = args.cluster.report_command.clone();
    write_outputs(&out, &file, &command.unwrap_or_else(command_line))?;
    outln!(
        "collected {} points from {} folders into {}",
        file.points.len(),
        args.collect.len(),
        out.display()
    )?;
    Ok(())
}

/// A profile name or path as a plain file-name part.
fn file_stem(profile: &str) -> String {
    profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// results.json, results.csv, report.md and the plots.
fn write_outputs(out: &Path, file: &PointsFile, command: &str) -> Result<()> {
    let sweep = &file.sweep;
    let points = &file.points;
    write(
        &out.join("results.json"),
        &(serde_json::to_string_pretty(points).expect("points serialise") + "\n"),
    )?;
    write(
        &out.join("results.csv"),
        &report::results_csv(points, &sweep.profiles),
    )?;
    let heading =
        format!(
        "Sweep `{}`: {} points, seed {}, {} training images, {} test images. Command: `{command}`.",
        sweep.name,
        points.len(),
        sweep.seed,
        sweep.train_limit.map_or("all".to_string(), |n| n.to_string()),
        sweep.test_limit.map_or("all".to_string(), |n| n.to_string()),
    );
    write(
        &out.join("report.md"),
        &report::report_markdown(points, &sweep.profiles, &sweep.targets, &heading),
    )?;
    for profile in &sweep.profiles {
        write(
            &out.join(format!("plots/error_vs_energy_{}.svg", file_stem(profile))),
            &plot::error_vs_energy_svg(points, profile, &sweep.targets),
        )?;
        let chosen = plot::winners(points, profile, &sweep.targets);
        if !chosen.is_empty() {
            write(
                &out.join(format!("plots/energy_breakdown_{}.svg", file_stem(profile))),
                &plot::energy_breakdown_svg(&chosen, profile),
            )?;
        }
    }
    let answer = sweep.targets.iter().map(|&t| {
        let profile = sweep.profiles.first().cloned().unwrap_or_default();
        match pareto::min_energy_at(points, &profile, t, None) {
            Some(i) => format!(
                "  at {t} %: {} ({:.3e} on {profile})",
                points[i].id, points[i].energy[&profile]
            ),
            None => format!("  at {t} %: no point reaches the target"),
        }
    });
    outln!("minimum-energy networks:")?;
    for line in answer {
        outln!("{line}")?;
    }
    outln!("wrote {}", out.join("report.md").display())?;
    Ok(())
}

/// The PE array --emit-best compiles for.
fn emit_array(args: &ExploreArgs) -> (usize, usize) {
    (args.pe.unwrap_or(8), args.simd.unwrap_or(16))
}

/// Compiles and simulates the point of least energy on the first profile among those that
/// reach `target`; none reaching it is an error (exit 1), so that a script sees it.
fn emit_best(
    file: &PointsFile,
    grid: &[PointSpec],
    cache: &Cache,
    dir: &Path,
    target: f64,
    args: &ExploreArgs,
) -> Result<()> {
    let profile = file.sweep.profiles.first().cloned().unwrap_or_default();
    let Some(best) = pareto::min_energy_at(&file.points, &profile, target, None) else {
        let best_accuracy = file
            .points
            .iter()
            .map(|p| p.integer_accuracy)
            .fold(f64::NEG_INFINITY, f64::max);
        return Err(Error::usage(
            "--target",
            format!(
                "no point reaches {target} % (the best reaches {best_accuracy:.2} %): nothing emitted"
            ),
        ));
    };
    let point = &file.points[best];
    let spec = grid
        .iter()
        .find(|p| p.id == point.id)
        .expect("points come from the grid");
    let (pe, simd) = emit_array(args);
    let profile_origin = if args.overrides.profile.is_empty() {
        "the sweep's first profile; --profile to choose"
    } else {
        "--profile"
    };
    let array_origin = if args.pe.is_some() || args.simd.is_some() {
        "--pe/--simd"
    } else {
        "the default; --pe/--simd to choose"
    };
    outln!(
        "emitting {} ({:.2} %, {:.3e} on {profile} ({profile_origin})) for a {pe}x{simd} PE array ({array_origin}) into {}",
        point.id,
        point.integer_accuracy,
        point.energy[&profile],
        dir.display()
    )?;
    super::compile::run(&super::compile::CompileArgs {
        model: cache.model(&spec.key),
        output: dir.to_path_buf(),
        pe,
        simd,
        weight_memory: 4096,
        activation_memory: 1024,
        target: None,
        clock_mhz: None,
        synth: false,
        scale: Default::default(),
    })?;
    super::sim::run(&super::sim::SimArgs {
        dir: dir.to_path_buf(),
        images: 100,
        clock_mhz: 100.0,
        silence_limit: crate::sim::SILENCE_LIMIT.as_secs(),
        simulator: crate::sim::Simulator::Verilator,
        model: None,
        data: args.data.clone(),
        format: super::Format::Table,
        netlist: false,
        vcd: None,
        allow_edited: false,
        activity: false,
        calibration: None,
        profiles: Vec::new(),
        scale: Default::default(),
    })?;
    Ok(())
}
