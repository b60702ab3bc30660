//! `qnnc eval`: test accuracy of a trained-model file.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{load_split, DataArgs, Format};
use crate::data::Split;
use crate::error::Result;
use crate::golden::Golden;
use crate::ir;
use crate::model::Model;
use crate::train::{self, Evaluation};

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Trained-model file (.qnn)
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
    loss: f32,
    trained_accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    integer_accuracy: Option<f64>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let mut model = Model::load(&args.model)?;
    let spec = &model.net.network.spec;
    let limit = args.data.test_limit.or(Some(model.training.test_images));
    let test = load_split(spec.dataset, args.data.data.as_deref(), Split::Test, limit)?;
    let batch = model.training.options.batch;
    let result: Evaluation = train::evaluate(&mut model.net, &test, batch);
    let integer_accuracy = if args.integer {
        let origin = args.model.display().to_string();
        let mut graph = ir::build::from_model(&model.net, &origin)?;
        ir::passes::run(&mut graph, &origin, None)?;
        Some(Golden::new(&graph, &origin)?.accuracy(&test))
    } else {
        None
    };
    let spec = &model.net.network.spec;
    let report = EvalReport {
        model: args.model.display().to_string(),
        network: spec.name.clone(),
        dataset: spec.dataset.name().into(),
        weights: spec.precision.weights.to_string(),
        activations: spec.precision.activations.to_string(),
        accuracy: result.accuracy,
        correct: result.correct,
        total: result.total,
        loss: result.loss,
        trained_accuracy: model.training.test_accuracy,
        integer_accuracy,
    };
    match args.format {
        Format::Json => super::print_json(&report),
        Format::Table => {
            println!(
                "{} ({}, weights {} bits, activations {} bits): test accuracy {:.2}% ({}/{})",
                report.model,
                report.network,
                report.weights,
                report.activations,
                report.accuracy,
                report.correct,
                report.total
            );
            if let Some(integer) = report.integer_accuracy {
                println!(
                    "integer golden model: test accuracy {integer:.2}% ({:+.2} points from float QAT)",
                    integer - report.accuracy
                );
            }
        }
    }
    Ok(())
}
