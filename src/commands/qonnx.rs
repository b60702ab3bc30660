//! `qnnc import` and `qnnc export`: QONNX files in and out.

use std::path::PathBuf;

use clap::Args;

use super::train::NetworkArgs;
use super::{check_output_path, Source};
use crate::error::{Error, Result};
use crate::ir::{dump, passes, Op};
use crate::qonnx;

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// QONNX file (.onnx), as Brevitas's export_qonnx writes it
    pub model: PathBuf,
    #[command(flatten)]
    pub scale: super::InputScaleArgs,
    /// Where to write the imported network (a qnnc IR file that every command reads)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Trained-model file (.qnn), imported network or QONNX file
    pub model: PathBuf,
    /// Where to write the QONNX file (.onnx)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn import(args: &ImportArgs) -> Result<()> {
    let origin = args.model.display().to_string();
    check_output_path(&args.output)?;
    if !qonnx::is_onnx_path(&args.model) {
        return Err(Error::usage(&origin, "import reads QONNX files (.onnx)"));
    }
    let options = qonnx::import::ImportOptions {
        input_scale: args.scale.input_scale,
    };
    let graph = qonnx::import::load_with(&args.model, options)?;
    // Refuse now what could not be lowered later.
    passes::run(&mut graph.clone(), &origin, None)?;
    crate::output::write_atomic(&args.output, dump::to_json(&graph).as_bytes()).map_err(|e| {
        Error::Output {
            file: args.output.display().to_string(),
            message: e.to_string(),
        }
    })?;
    let layers: Vec<&str> = graph
        .topological_order()
        .into_iter()
        .filter(|&n| matches!(graph.graph[n].op, Op::Mac { .. }))
        .map(|n| graph.graph[n].op.name())
        .collect();
    outln!(
        "imported {} ({} MAC layers: {}) into {}",
        graph.name,
        layers.len(),
        layers.join(", "),
        args.output.display()
    )?;
    Ok(())
}

pub fn export(args: &ExportArgs) -> Result<()> {
    let origin = args.model.display().to_string();
    check_output_path(&args.output)?;
    let source = Source::open(&args.model, &NetworkArgs::default())?;
    if matches!(source, Source::Spec(_)) {
        return Err(Error::usage(
            &origin,
            "export needs trained weights: give a trained-model file or an imported network",
        ));
    }
    let graph = source.graph(&origin)?;
    let bytes = qonnx::export::export(&graph, &origin)?;
    crate::output::write_atomic(&args.output, &bytes).map_err(|e| Error::Output {
        file: args.output.display().to_string(),
        message: e.to_string(),
    })?;
    outln!(
        "exported {} as QONNX into {} ({} bytes)",
        graph.name,
        args.output.display(),
        bytes.len()
    )?;
    Ok(())
}
