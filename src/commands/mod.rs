//! The subcommands of the `qnnc` binary: argument types (clap) and what each one does.

pub mod bench;
pub mod calibrate;
pub mod compile;
pub mod energy;
pub mod eval;
pub mod explore;
pub mod inspect;
pub mod qonnx;
pub mod sim;
pub mod train;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::{Args, ValueEnum};
use indicatif::{HumanDuration, ProgressBar, ProgressState, ProgressStyle};

use crate::data::{self, Dataset, DatasetKind, Split};
use crate::error::{Error, Result};

/// How a command prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Where the images come from.
#[derive(Debug, Clone, Default, Args)]
pub struct DataArgs {
    /// Folder holding the data set's files (default: the Debian package's folder)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Use only the first N test images [default: all]
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,
}

pub fn load_split(
    kind: DatasetKind,
    dir: Option<&Path>,
    split: Split,
    limit: Option<usize>,
) -> Result<Dataset> {
    let mut data = data::load(kind, dir, split, None)?;
    let (flag, set) = match split {
        Split::Train => ("--train-limit", "training"),
        Split::Test => ("--test-limit", "test"),
    };
    if let Some(limit) = limit {
        // A test set clamped is said so: the count the report gives is not the one asked for.
        // (A training set clamped shows in the report's count of training images.)
        if split == Split::Test && limit > data.len() {
            warn(format!(
                "{flag} {limit} is more than the {} {set} images; using {}",
                data.len(),
                data.len()
            ));
        }
        data.truncate(limit);
    }
    if data.is_empty() {
        return Err(Error::usage(flag, "selects no images"));
    }
    Ok(data)
}

/// Warnings of this run, printed when it succeeds: a failed run's one line stays alone.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records a warning for standard error (see [`take_warnings`]).
pub fn warn(text: String) {
    WARNINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(text);
}

/// The warnings recorded so far, for the binary to print once the command succeeded.
pub fn take_warnings() -> Vec<String> {
    std::mem::take(&mut *WARNINGS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Prints a report as indented JSON on standard output.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    crate::output::print(serde_json::to_string_pretty(value).expect("reports serialise") + "\n")
}

/// A bar counting `length` steps on standard error, with the elapsed time and the ETA;
/// invisible when standard error is not a terminal.
pub fn progress_bar(length: u64) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(counting_style());
    bar
}

/// The style of [`progress_bar`], also for a spinner that turns into a count. The ETA reads
/// "?" until the first step is done (indicatif's would read 0s).
pub fn counting_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} (eta {eta_once_known}) {msg}",
    )
    .expect("valid template")
    .with_key(
        "eta_once_known",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = if state.pos() == 0 {
                w.write_str("?")
            } else {
                write!(w, "{:#}", HumanDuration(state.eta()))
            };
        },
    )
    .progress_chars("=> ")
}

/// A spinner with the elapsed time on standard error, for work that cannot be counted (an
/// external tool running); it turns on its own, and is invisible when standard error is not a
/// terminal.
pub fn progress_spinner(message: impl Into<String>) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("valid template"),
    );
    spinner.set_message(message.into());
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}

/// Checks that a file can be created at `path` before any long work starts: its folder
/// exists and nothing but a regular file is there.
pub fn check_output_path(path: &Path) -> Result<()> {
    crate::output::check_file_target(path).map_err(|e| Error::Output {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Checks that a build can be written into `dir` before any work starts: absent, empty, or
/// an earlier build.
pub fn check_build_path(dir: &Path) -> Result<()> {
    crate::output::check_build_target(dir).map_err(|e| Error::Output {
        file: dir.display().to_string(),
        message: e.to_string(),
    })
}

/// Checks that output files can be written into the folder `dir` (absent or a folder).
pub fn check_folder_path(dir: &Path) -> Result<()> {
    crate::output::check_folder_target(dir).map_err(|e| Error::Output {
        file: dir.display().to_string(),
        message: e.to_string(),
    })
}

/// A network named on the command line: a trained-model file (`.qnn`), a QONNX file
/// (`.onnx`), an IR file (`qnnc import` writes them as `.qnn`, `qnnc inspect --format json` as
/// `.json`), or a spec (with the network flags applied).
pub enum Source {
    Model(Box<crate::model::Model>),
    /// A graph before any pass, with trained weights: imported from QONNX, or an IR file
    /// written before the passes ran. Commands lower it as they lower a model.
    Imported(crate::ir::Graph),
    /// An IR file after some passes, used as stored.
    Graph(crate::ir::Graph),
    Spec(crate::spec::Network),
}

/// Only the field that identifies a qnnc file.
#[derive(serde::Deserialize)]
struct FileFormat {
    #[serde(default)]
    format: Option<String>,
}

/// `--input-scale`: what one step of a pixel is worth in a QONNX graph that does not say so.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InputScaleArgs {
    /// Value of one pixel step for a QONNX file (.onnx) with no input quantizer: a number or a
    /// fraction such as 1/256 [default: 1/255]
    #[arg(long, value_name = "S", value_parser = parse_scale)]
    pub input_scale: Option<f64>,
}

/// A positive, finite scale written as a number (0.00390625) or a fraction (1/256).
fn parse_scale(text: &str) -> std::result::Result<f64, String> {
    let value = match text.split_once('/') {
        Some((numerator, denominator)) => {
            let parse = |t: &str| t.trim().parse::<f64>().map_err(|e| format!("{text}: {e}"));
            parse(numerator)? / parse(denominator)?
        }
        None => text
            .trim()
            .parse::<f64>()
            .map_err(|e| format!("{text}: {e}"))?,
    };
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!("{text} must be positive and finite"))
    }
}

impl Source {
    pub fn open(path: &Path, flags: &train::NetworkArgs) -> Result<Source> {
        Source::open_scaled(path, flags, &InputScaleArgs::default())
    }

    /// [`Source::open`], with the pixel's scale of a QONNX file.
    pub fn open_scaled(
        path: &Path,
        flags: &train::NetworkArgs,
        scale: &InputScaleArgs,
    ) -> Result<Source> {
        let origin = path.display().to_string();
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let format = match extension {
            "onnx" => Some("onnx".to_string()),
            "qnn" | "json" => crate::input::read(path, crate::input::MODEL_FILE)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<FileFormat>(&bytes).ok())
                .and_then(|f| f.format),
            _ => None,
        };
        let is_ir = format.as_deref() == Some(crate::ir::dump::FORMAT);
        let is_model = extension == "qnn" && !is_ir;
        if let Some(flag) = flags
            .given_flag()
            .filter(|_| is_model || is_ir || extension == "onnx")
        {
            return Err(Error::usage(
                flag,
                format!("applies to a spec, not to {origin}"),
            ));
        }
        if scale.input_scale.is_some() && extension != "onnx" {
            return Err(Error::usage(
                "--input-scale",
                format!("applies to a QONNX file (.onnx), not to {origin}"),
            ));
        }
        if extension == "onnx" {
            let options = crate::qonnx::import::ImportOptions {
                input_scale: scale.input_scale,
            };
            Ok(Source::Imported(crate::qonnx::import::load_with(
                path, options,
            )?))
        } else if is_model {
            Ok(Source::Model(Box::new(crate::model::Model::load(path)?)))
        } else if is_ir {
            let text = crate::input::read_text(path, crate::input::MODEL_FILE).map_err(|e| {
                Error::Output {
                    file: origin.clone(),
                    message: e.to_string(),
                }
            })?;
            let graph = crate::ir::dump::from_json(&text, &origin)?;
            if graph.passes.is_empty() && graph.has_weights() {
                Ok(Source::Imported(graph))
            } else {
                Ok(Source::Graph(graph))
            }
        } else {
            Ok(Source::Spec(flags.network(path)?))
        }
    }

    /// The data set the network reads: a model's or spec's own; for graphs, CIFAR-10 for
    /// 32x32x3 inputs and Fashion-MNIST otherwise.
    pub fn dataset(&self) -> DatasetKind {
        let graph = match self {
            Source::Model(model) => return model.net.network.spec.dataset,
            Source::Spec(network) => return network.spec.dataset,
            Source::Imported(graph) | Source::Graph(graph) => graph,
        };
        let input = graph
            .input_node()
            .and_then(|node| graph.output_type(node))
            .map(|t| t.shape);
        match input {
            Some(s) if (s.height, s.width, s.channels) == DatasetKind::Cifar10.shape() => {
                DatasetKind::Cifar10
            }
            _ => DatasetKind::FashionMnist,
        }
    }

    /// The validated network of a model, spec or imported graph; lowered IR files carry none.
    pub fn network(self, origin: &str) -> Result<crate::spec::Network> {
        let dataset = self.dataset();
        match self {
            Source::Model(model) => Ok(model.net.network),
            Source::Spec(network) => Ok(network),
            Source::Imported(graph) => Ok(crate::ir::build::to_spec(&graph, dataset, origin)?
                .build(origin)?),
            Source::Graph(_) => Err(Error::usage(
                origin,
                "a lowered IR file carries no spec; give the trained model, the QONNX file or the spec",
            )),
        }
    }

    /// The graph before any pass (an IR file's graph as stored).
    pub fn graph(&self, origin: &str) -> Result<crate::ir::Graph> {
        Ok(match self {
            Source::Model(model) => model.net.to_graph(origin)?,
            Source::Imported(graph) | Source::Graph(graph) => graph.clone(),
            Source::Spec(network) => crate::ir::build::from_network(network, origin)?,
        })
    }

    /// Whether the commands run the passes on this source's graph (all but lowered IR files).
    pub fn needs_passes(&self) -> bool {
        !matches!(self, Source::Graph(_))
    }
}
