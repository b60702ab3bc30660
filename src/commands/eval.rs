//! `qnnc eval`: test accuracy of a trained-model file, a QONNX file or an IR file.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use std::collections::BTreeSet;

use super::train::NetworkArgs;
use super::{load_split, DataArgs, Format, Source};
use crate::data::{Dataset, Split};
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
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub scale: super::InputScaleArgs,
    /// Also run the integer golden model (the reference the RTL must equal) and report its accuracy
    #[arg(long)]
    pub integer: bool,
    /// Write the integer golden model's label, class and logit codes for every test image to
    /// FILE (JSON; a logit's value is its code times `logit_scale`), to compare with another
    /// tool image by image. Implies --integer
    #[arg(long, value_name = "FILE")]
    pub logits: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Serialize)]
struct EvalReport {
    /// The file evaluated, as given.
    model: String,
    /// The network's name.
    network: String,
    dataset: String,
    wbits: Bits,
    abits: Bits,
    /// Percent.
    accuracy: f64,
    correct: usize,
    test_images: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f32>,
    /// The accuracy `qnnc train` measured, on `trained_test_images`.
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_test_images: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    integer_accuracy: Option<f64>,
}

/// Bit widths of the layers: a number when every layer has the same, else the distinct ones in
/// increasing order. A float precision counts as 32 bits, as in the energy report.
struct Bits(Vec<u32>);

impl Serialize for Bits {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_u32(*one),
            many => many.serialize(serializer),
        }
    }
}

impl std::fmt::Display for Bits {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let text: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&text.join(","))
    }
}

impl Bits {
    fn of(precision: crate::spec::Precision) -> Bits {
        Bits(vec![precision
            .bits()
            .unwrap_or(crate::energy::work::FLOAT_BITS)])
    }
}

/// The file of `--logits`.
#[derive(Serialize)]
struct LogitsFile<'a> {
    model: String,
    /// The value of one logit code.
    logit_scale: f64,
    images: Vec<ImageLogits<'a>>,
}

#[derive(Serialize)]
struct ImageLogits<'a> {
    label: u8,
    class: usize,
    logits: &'a [i64],
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let origin = args.model.display().to_string();
    if let Some(path) = &args.logits {
        super::check_output_path(path)?;
    }
    let report =
        match Source::open_scaled(&args.model, &NetworkArgs::default(), &args.scale)? {
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
                "{} ({}, weights {} bits, activations {} bits): test accuracy {:.2}% ({}/{} test images)",
                report.model,
                report.network,
                report.wbits,
                report.abits,
                report.accuracy,
                report.correct,
                report.test_images
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
    // The whole test set unless --test-limit says otherwise, as for every other source: the
    // limit the model was trained with is reported beside, not reused.
    let test = load_split(
        spec.dataset,
        args.data.data.as_deref(),
        Split::Test,
        args.data.test_limit,
    )?;
    let batch = model.training.options.batch;
    let result: Evaluation = train::evaluate(&mut model.net, &test, batch);
    let integer_accuracy = if args.integer || args.logits.is_some() {
        let origin = args.model.display().to_string();
        let mut graph = model.net.to_graph(&origin)?;
        ir::passes::run(&mut graph, &origin, None)?;
        Some(run_integer(args, &graph, &test)?.0)
    } else {
        None
    };
    let spec = &model.net.network.spec;
    Ok(EvalReport {
        model: args.model.display().to_string(),
        network: spec.name.clone(),
        dataset: spec.dataset.name().into(),
        wbits: Bits::of(spec.precision.weights),
        abits: Bits::of(spec.precision.activations),
        accuracy: result.accuracy,
        correct: result.correct,
        test_images: result.total,
        loss: Some(result.loss),
        trained_accuracy: Some(model.training.test_accuracy),
        trained_test_images: Some(model.training.test_images),
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
        run_integer(args, &lowered, &test)
    };
    let (accuracy, correct, integer_accuracy) = if source.needs_passes() {
        let (accuracy, correct) =
            FloatModel::new(&graph, &origin)?.accuracy(&test.images, &test.labels);
        let integer_accuracy = if args.integer || args.logits.is_some() {
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
        wbits: weights,
        abits: activations,
        accuracy,
        correct,
        test_images: test.len(),
        loss: None,
        trained_accuracy: None,
        trained_test_images: None,
        integer_accuracy,
    })
}

/// The integer golden model of the lowered graph on `test`: its accuracy in percent and the
/// number of images it classifies correctly. Writes the file of `--logits` when asked.
fn run_integer(args: &EvalArgs, lowered: &ir::Graph, test: &Dataset) -> Result<(f64, usize)> {
    let origin = args.model.display().to_string();
    let golden = Golden::new(lowered, &origin)?;
    let predictions = golden.run(&test.images);
    let correct = Golden::correct(&predictions, &test.labels);
    if let Some(path) = &args.logits {
        let output = lowered.topological_order().last().copied();
        let logit_scale = output
            .and_then(|node| lowered.output_type(node))
            .map_or(1.0, |t| t.scale);
        let file = LogitsFile {
            model: origin,
            logit_scale,
            images: predictions
                .iter()
                .zip(&test.labels)
                .map(|(p, &label)| ImageLogits {
                    label,
                    class: p.class,
                    logits: &p.logits,
                })
                .collect(),
        };
        let text = serde_json::to_string(&file).map_err(|e| Error::Output {
            file: path.display().to_string(),
            message: e.to_string(),
        })? + "\n";
        crate::output::write_atomic(path, text.as_bytes()).map_err(|e| Error::Output {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    Ok((100.0 * correct as f64 / test.len().max(1) as f64, correct))
}

/// The bit widths of a graph's weights and activations.
fn precisions(graph: &ir::Graph) -> (Bits, Bits) {
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
    (
        Bits(weights.into_iter().collect()),
        Bits(activations.into_iter().collect()),
    )
}
