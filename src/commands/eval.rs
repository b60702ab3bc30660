//! `qnnc eval`: test accuracy of a trained-model file, a QONNX file or an IR file.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use std::collections::BTreeSet;

use super::train::NetworkArgs;
use super::{load_split, DataArgs, Format, Source};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::golden::Golden;
use crate::ir;
use crate::ir::float_model::FloatModel;
use crate::model::Model;
use crate::train::{self, Evaluation};

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Trained-model file (.qnn), QONNX file (.onnx) or IR file
    pub model: PathBuf,
    /// Default for --test-limit: the number of test images the model was evaluated on when trained
    #[command(flatten)]
    pub data: DataArgs,
    /// Also run the integer golden model (the reference the RTL must equal) and report its accuracy
    #[arg(long)]
    pub integer: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Serialize)]
struct EvalReport {
    model: String,
    network: String,
    dataset: String,
    weights: String,
    activations: String,
    accuracy: f64,
    correct: usize,
    total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    integer_accuracy: Option<f64>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let origin = args.model.display().to_string();
    let report =
        match Source::open(&args.model, &NetworkArgs::default())? {
            Source::Model(model) => eval_model(args, *model)?,
            Source::Spec(_) => return Err(Error::usage(
                &origin,
                "eval needs trained weights: give a trained-model file, a QONNX file or an IR file",
            )),
            source => eval_graph(args, &source)?,
        };
    match args.format {
        Format::Json => super::print_json(&report)?,
        Format::Table => {
            outln!(
                "{} ({}, weights {} bits, activations {} bits): test accuracy {:.2}% ({}/{})",
                report.model,
                report.network,
                report.weights,
                report.activations,
                report.accuracy,
                report.correct,
                report.total
            )?;
            if let Some(integer) = report.integer_accuracy {
                outln!(
                    "integer golden model: test accuracy {integer:.2}% ({:+.2} points from float)",
                    integer - report.accuracy
                )?;
            }
        }
    }
    Ok(())
}

fn eval_model(args: &EvalArgs, mut model: Model) -> Result<EvalReport> {
    let spec = &model.net.network.spec;
    let limit = args.data.test_limit.or(Some(model.training.test_images));
    let test = load_split(spec.dataset, args.data.data.as_deref(), Split::Test, limit)?;
    let batch = model.training.options.batch;
    let result: Evaluation = train::evaluate(&mut model.net, &test, batch);
    let integer_accuracy = if args.integer {
        let origin = args.model.display().to_string();
        let mut graph = model.net.to_graph(&origin)?;
        ir::passes::run(&mut graph, &origin, None)?;
        Some(
            Golden::new(&graph, &origin)?
                .accuracy(&test.images, &test.labels)
                .0,
        )
    } else {
        None
    };
    let spec = &model.net.network.spec;
    Ok(EvalReport {
        model: args.model.display().to_string(),
        network: spec.name.clone(),
        dataset: spec.dataset.name().into(),
        weights: spec.precision.weights.to_string(),
        activations: spec.precision.activations.to_string(),
        accuracy: result.accuracy,
        correct: result.correct,
        total: result.total,
        loss: Some(result.loss),
        trained_accuracy: Some(model.training.test_accuracy),
        integer_accuracy,
    })
}

/// An imported QONNX network or an IR file: the float model of the graph before lowering
/// (when the file has one), and the integer golden model.
fn eval_graph(args: &EvalArgs, source: &Source) -> Result<EvalReport> {
    let origin = args.model.display().to_string();
    let graph = source.graph(&origin)?;
    let dataset = source.dataset();
    let test = load_split(
        dataset,
        args.data.data.as_deref(),
        Split::Test,
        args.data.test_limit,
    )?;
    let pixels = graph
        .output_type(graph.topological_order()[0])
        .map_or(0, |t| t.shape.len());
    if test.pixels_per_image() != pixels {
        return Err(Error::usage(
            &origin,
            format!(
                "the network reads {pixels} pixels an image but {} images have {}",
                dataset.name(),
                test.pixels_per_image()
            ),
        ));
    }
    let (weights, activations) = precisions(&graph);
    let integer = || -> Result<(f64, usize)> {
        let mut lowered = graph.clone();
        if source.needs_passes() {
            ir::passes::run(&mut lowered, &origin, None)?;
        }
        Ok(Golden::new(&lowered, &origin)?.accuracy(&test.images, &test.labels))
    };
    let (accuracy, correct, integer_accuracy) = if source.needs_passes() {
        let (accuracy, correct) =
            FloatModel::new(&graph, &origin)?.accuracy(&test.images, &test.labels);
        let integer_accuracy = if args.integer {
            Some(integer()?.0)
        } else {
            None
        };
        (accuracy, correct, integer_accuracy)
    } else {
        // A lowered graph has no float semantics left: its accuracy is the integer one.
        let (accuracy, correct) = integer()?;
        (accuracy, correct, None)
    };
    Ok(EvalReport {
        model: origin,
        network: graph.name.clone(),
        dataset: dataset.name().into(),
        weights,
        activations,
        accuracy,
        correct,
        total: test.len(),
        loss: None,
        trained_accuracy: None,
        integer_accuracy,
    })
}

/// The bit widths of a graph's weights and activations, as "4" or "1,8" when layers differ.
fn precisions(graph: &ir::Graph) -> (String, String) {
    let mut weights = BTreeSet::new();
    let mut activations = BTreeSet::new();
    for node in graph.topological_order() {
        match &graph.graph[node].op {
            ir::Op::Mac {
                weight_precision, ..
            } => {
                weights.insert(weight_precision.storage_bits());
            }
            ir::Op::Quantize { bits, .. } => {
                activations.insert(*bits);
            }
            ir::Op::MultiThreshold(_) | ir::Op::Requantize(_) => {
                if let Some(t) = graph.output_type(node) {
                    activations.insert(t.precision.storage_bits());
                }
            }
            _ => {}
        }
    }
    let join = |set: BTreeSet<u32>| {
        set.iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    (join(weights), join(activations))
}
