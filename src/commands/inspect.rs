//! `qnnc inspect`: the IR of a network as text, Graphviz DOT or JSON, after any pass.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::train::NetworkArgs;
use super::Source;
use crate::error::{Error, Result};
use crate::ir::{dump, passes};
use crate::schedule::{self, ArrayConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Trained-model file (.qnn), QONNX file (.onnx), IR file (.json from --format json) or spec (.toml, .json)
    pub model: Option<PathBuf>,
    /// Show the IR after this pass (default: after all of them); `none` shows it as built
    #[arg(long, value_name = "PASS")]
    pub after: Option<String>,
    /// List the passes in pipeline order and exit
    #[arg(long)]
    pub passes: bool,
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
    /// Also show the schedule on a PE array of --pe x --simd (text, or a "schedule" field
    /// beside the IR in JSON; not with --format dot)
    #[arg(long)]
    pub schedule: bool,
    /// Output channels computed in parallel, for --schedule
    #[arg(long, default_value_t = 8, requires = "schedule")]
    pub pe: usize,
    /// Multiply lanes of each PE, for --schedule
    #[arg(long, default_value_t = 16, requires = "schedule")]
    pub simd: usize,
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(flatten)]
    pub scale: super::InputScaleArgs,
}

pub fn run(args: &InspectArgs) -> Result<()> {
    if args.passes {
        for pass in passes::pipeline() {
            outln!("{:<20} {}", pass.name(), pass.description())?;
        }
        return Ok(());
    }
    let Some(path) = &args.model else {
        return Err(Error::usage(
            "MODEL",
            "give a model, IR file or spec (or --passes)",
        ));
    };
    if args.schedule && args.format == GraphFormat::Dot {
        // A dot file is a drawing of the graph; a table in it would be a comment no viewer
        // shows. The schedule is in the text and JSON formats.
        return Err(Error::usage(
            "--schedule",
            "applies to --format text or json, not dot",
        ));
    }
    let origin = path.display().to_string();
    let source = Source::open_scaled(path, &args.network, &args.scale)?;
    let mut graph = source.graph(&origin)?;
    crate::ir::verify::verify(&graph, &origin)?;
    if !source.needs_passes() && args.after.is_some() {
        return Err(Error::usage(
            "--after",
            "a lowered IR file is shown as stored; --after applies to models, QONNX files and specs",
        ));
    }
    if args.after.as_deref() != Some("none") && source.needs_passes() {
        passes::run(&mut graph, &origin, args.after.as_deref())?;
    }
    // The schedule first: a bad --pe or --simd is reported before anything is printed.
    let schedule = if args.schedule {
        let config = ArrayConfig {
            pe: args.pe,
            simd: args.simd,
        };
        Some(schedule::schedule(&graph, config, &origin)?)
    } else {
        None
    };
    match (args.format, schedule) {
        (GraphFormat::Json, Some(schedule)) => {
            // One JSON document: the IR file as --format json writes it, and the schedule.
            #[derive(serde::Serialize)]
            struct WithSchedule<G> {
                ir: G,
                schedule: schedule::Schedule,
            }
            super::print_json(&WithSchedule {
                ir: dump::to_serializable(&graph),
                schedule,
            })
        }
        (GraphFormat::Json, None) => out!("{}", dump::to_json(&graph)),
        (GraphFormat::Dot, _) => out!("{}", dump::to_dot(&graph)),
        (GraphFormat::Text, schedule) => {
            out!("{}", dump::to_text(&graph))?;
            match schedule {
                Some(schedule) => out!("{schedule}"),
                None => Ok(()),
            }
        }
    }
}
