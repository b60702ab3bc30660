//! `qnnc energy`: the energy of one inference of a network, layer by layer, on a hardware
//! profile, as a table, JSON or CSV. The network comes from a trained-model file, a QONNX file,
//! an IR file (lowered or not) or a spec.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::train::NetworkArgs;
use super::Source;
use crate::energy::{self, profile::DEFAULT_PROFILE, Profile};
use crate::error::Result;

#[derive(Debug, Clone, Args)]
pub struct EnergyArgs {
    /// Trained-model file (.qnn), QONNX file (.onnx), IR file (.json) or network spec (.toml or .json)
    #[arg(value_name = "MODEL_OR_SPEC")]
    pub input: PathBuf,
    /// Hardware profile: a preset (moons-dram, moons-sram, horowitz45-pj) or a TOML file
    #[arg(long, value_name = "NAME|FILE", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(flatten)]
    pub scale: super::InputScaleArgs,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// How the energy report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

pub fn run(args: &EnergyArgs) -> Result<()> {
    let origin = args.input.display().to_string();
    let source = Source::open_scaled(&args.input, &args.network, &args.scale)?;
    let profile = Profile::resolve(&args.profile)?;
    // A spec may have float layers, which the integer IR cannot hold; everything else is
    // priced on its graph.
    let work = match &source {
        Source::Spec(network) => energy::work_of(network),
        _ => energy::work_of_graph(&source.graph(&origin)?),
    };
    let report = energy::estimate(&work, &profile);
    let text = match args.format {
        ReportFormat::Table => report.to_table(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Csv => report.to_csv(),
    };
    crate::output::print(text)
}
