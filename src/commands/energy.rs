//! `qnnc energy`: the energy of one inference of a network, layer by layer, on a hardware
//! profile, as a table, JSON or CSV. The network comes from a trained-model file or a spec.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::train::NetworkArgs;
use crate::energy::{self, profile::DEFAULT_PROFILE, Profile};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::spec::Network;

#[derive(Debug, Clone, Args)]
pub struct EnergyArgs {
    /// Trained-model file (.qnn) or network spec (.toml or .json)
    #[arg(value_name = "MODEL_OR_SPEC")]
    pub input: PathBuf,
    /// Hardware profile: a preset (moons-dram, moons-sram, horowitz45-pj) or a TOML file
    #[arg(long, value_name = "NAME|FILE", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    #[command(flatten)]
    pub network: NetworkArgs,
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
    let network = load_network(&args.input, &args.network)?;
    let profile = Profile::resolve(&args.profile)?;
    let report = energy::estimate(&energy::work_of(&network), &profile);
    let text = match args.format {
        ReportFormat::Table => report.to_table(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Csv => report.to_csv(),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::Output {
            file: "(standard output)".into(),
            message: e.to_string(),
        })
}

/// The network of a trained-model file (by its `.qnn` extension), else of a spec with the
/// network flags applied. A model's network is fixed, so the flags are an error there.
fn load_network(path: &Path, flags: &NetworkArgs) -> Result<Network> {
    if path.extension().is_some_and(|ext| ext == "qnn") {
        if let Some(flag) = given_network_flag(flags) {
            return Err(Error::usage(flag, "applies to a spec, not a trained model"));
        }
        return Ok(Model::load(path)?.net.network);
    }
    flags.network(path)
}

/// The first network flag given on the command line, if any.
fn given_network_flag(flags: &NetworkArgs) -> Option<&'static str> {
    [
        ("--bits", flags.bits.is_some()),
        ("--wbits", flags.wbits.is_some()),
        ("--abits", flags.abits.is_some()),
        ("--nl", flags.nl.is_some()),
        ("--nf", flags.nf.is_some()),
        ("--hidden", flags.hidden.is_some()),
    ]
    .into_iter()
    .find(|(_, given)| *given)
    .map(|(flag, _)| flag)
}
