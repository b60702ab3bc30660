//! `qnnc calibrate`: the cost of arithmetic by precision, measured on qnnc's own processing
//! element with Yosys, and a profile whose beta is fitted to it.

use std::path::PathBuf;

use clap::Args;

use super::check_folder_path;
use crate::calibrate::{self, PRECISIONS};
use crate::energy::{profile::DEFAULT_PROFILE, Profile};
use crate::error::{Error, Result};
use crate::implement::device::Target;
use crate::implement::tools;

#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// Folder for calibration.json and profile.toml
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// What to synthesize for
    #[arg(long, value_enum, default_value_t = Target::Generic)]
    pub target: Target,
    /// Multiply lanes of the processing element (a power of two)
    #[arg(long, default_value_t = 16)]
    pub simd: usize,
    /// Precisions calibrated, for weights and activations alike (every pair is synthesized)
    #[arg(long, value_delimiter = ',', default_values_t = PRECISIONS)]
    pub bits: Vec<u32>,
    /// Profile whose energies the calibrated profile keeps: a preset or a TOML file
    #[arg(long, value_name = "NAME|FILE", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// Synthesize nothing: set the energy model beside the measured energy of these reports of
    /// `qnnc sim DIR --activity --calibration CAL --format json`, in DIR/model_vs_measured.md
    /// and DIR/plots/model_vs_measured.svg
    #[arg(long, value_name = "SIM_JSON", num_args = 1.., conflicts_with_all = ["target", "simd", "bits", "profile"])]
    pub compare: Vec<PathBuf>,
}

pub fn run(args: &CalibrateArgs) -> Result<()> {
    if !args.compare.is_empty() {
        return compare(args);
    }
    if !args.simd.is_power_of_two() || args.simd > 1024 {
        return Err(Error::usage(
            "--simd",
            format!("{} must be a power of two up to 1024", args.simd),
        ));
    }
    let mut bits = args.bits.clone();
    bits.sort_unstable();
    bits.dedup();
    if let Some(bad) = bits.iter().find(|&&b| !(1..=16).contains(&b)) {
        return Err(Error::usage("--bits", format!("{bad} is outside 1..=16")));
    }
    if bits.len() < 2 {
        return Err(Error::usage(
            "--bits",
            "give at least two precisions: one pair cannot say how the cost grows",
        ));
    }
    let base = Profile::resolve(&args.profile)?;
    check_folder_path(&args.output)?;
    let yosys = tools::debian("yosys", "yosys")?;
    let work = tempfile::tempdir().map_err(|e| Error::Output {
        file: "temporary folder".into(),
        message: e.to_string(),
    })?;
    let progress = super::progress_bar(0);
    progress.set_message(format!(
        "synthesizing {} processing elements for {}",
        bits.len() * bits.len(),
        args.target.name()
    ));
    progress.enable_steady_tick(std::time::Duration::from_millis(200));
    let result = calibrate::calibrate(&yosys, args.target, args.simd, &bits, work.path());
    progress.finish_and_clear();
    let calibration = result.map_err(|message| Error::Output {
        file: args.output.display().to_string(),
        message,
    })?;
    let profile = calibration.profile(&base);
    let profile_text = toml::to_string(&profile).expect("profile serialises");
    // The written profile is read back as any profile is: it must pass the same checks.
    Profile::parse(&profile_text, "profile.toml")?;
    std::fs::create_dir_all(&args.output).map_err(|e| Error::Output {
        file: args.output.display().to_string(),
        message: e.to_string(),
    })?;
    for (name, text) in [
        ("calibration.json", calibration.to_json()),
        ("profile.toml", profile_text),
    ] {
        let path = args.output.join(name);
        crate::output::write_atomic(&path, text.as_bytes()).map_err(|e| Error::Output {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    crate::output::print(calibration.to_table())
}

/// The model against the measurement for every report of `--compare`.
fn compare(args: &CalibrateArgs) -> Result<()> {
    use crate::sim::measured_energy::{comparison, SimRun};
    check_folder_path(&args.output)?;
    let runs = args
        .compare
        .iter()
        .map(|path| {
            let file = path.display().to_string();
            let refuse = |message: String| Error::Output {
                file: file.clone(),
                message,
            };
            let text = crate::input::read_text(path, crate::input::BUILD_FILE)
                .map_err(|e| refuse(e.to_string()))?;
            let mut deserializer = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize::<_, SimRun>(&mut deserializer).map_err(|e| {
                refuse(format!(
                    "{}: {} (not a report of qnnc sim --activity --calibration --format json)",
                    e.path(),
                    e.inner()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let units = runs
        .iter()
        .flat_map(|r| r.measured_energy.profiles.first())
        .map(|p| p.pricing.units.clone())
        .next()
        .unwrap_or_default();
    let (markdown, points) = comparison(&runs, "plots/model_vs_measured.svg");
    let svg = crate::explore::plot::model_against_measured_svg(&points, &units);
    for (name, text) in [
        ("model_vs_measured.md", markdown),
        ("plots/model_vs_measured.svg", svg),
    ] {
        let path = args.output.join(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| Error::Output {
                file: folder.display().to_string(),
                message: e.to_string(),
            })?;
        }
        crate::output::write_atomic(&path, text.as_bytes()).map_err(|e| Error::Output {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    outln!(
        "compared {} networks; wrote {}",
        runs.len(),
        args.output.join("model_vs_measured.md").display()
    )?;
    Ok(())
}
