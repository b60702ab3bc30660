//! `qnnc train`: trains a network from a spec and writes the trained-model file.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::{check_output_path, load_split, progress_bar, DataArgs, Format};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::limits;
use crate::model::{Model, TrainingRecord};
use crate::spec::{Network, Overrides, Precision, Spec};
use crate::train::memory::machine_memory_bytes;
use crate::train::{self, EpochStats, Evaluation, Net, TrainOptions};

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Network spec (.toml or .json)
    pub spec: PathBuf,
    /// Where to write the trained-model file
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Passes over the training set
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Images per training batch
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Peak learning rate of Adam (cosine decay to zero)
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f32,
    /// Seed of initialisation and shuffling
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub data: DataArgs,
    /// Use only the first N training images
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Flags that change the network a spec describes.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkArgs {
    /// Precision of weights and activations: 1..=16 bits or "float"
    #[arg(long, value_name = "Q")]
    pub bits: Option<Precision>,
    /// Precision of the weights (overrides --bits)
    #[arg(long, value_name = "Q")]
    pub wbits: Option<Precision>,
    /// Precision of the activations (overrides --bits)
    #[arg(long, value_name = "Q")]
    pub abits: Option<Precision>,
    /// Conv layers per block of a block template: one value for all blocks or one per block
    #[arg(long, value_name = "N,..", value_delimiter = ',')]
    pub nl: Option<Vec<usize>>,
    /// Filters per block of a block template: one value for all blocks or one per block
    #[arg(long, value_name = "N,..", value_delimiter = ',')]
    pub nf: Option<Vec<usize>>,
    /// Hidden dense layer widths of a template, e.g. 512,512
    #[arg(long, value_name = "N,..", value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
}

impl NetworkArgs {
    /// The first of these flags given on the command line, if any.
    pub fn given_flag(&self) -> Option<&'static str> {
        [
            ("--bits", self.bits.is_some()),
            ("--wbits", self.wbits.is_some()),
            ("--abits", self.abits.is_some()),
            ("--nl", self.nl.is_some()),
            ("--nf", self.nf.is_some()),
            ("--hidden", self.hidden.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(flag, _)| flag)
    }

    /// Reads the spec, applies these flags and validates the network.
    pub fn network(&self, spec_path: &std::path::Path) -> Result<Network> {
        let origin = spec_path.display().to_string();
        let mut spec = Spec::from_file(spec_path)?;
        spec.apply(
            &Overrides {
                bits: self.bits,
                wbits: self.wbits,
                abits: self.abits,
                nl: self.nl.clone(),
                nf: self.nf.clone(),
                hidden: self.hidden.clone(),
            },
            &origin,
        )?;
        Ok(spec.build(&origin)?)
    }
}

#[derive(Serialize)]
struct TrainReport<'a> {
    model: String,
    network: &'a str,
    /// Bits of a weight and of an activation (float counts as 32, as in the energy report).
    wbits: u32,
    abits: u32,
    parameters: u64,
    macs: u64,
    epochs: &'a [EpochStats],
    train_img_per_s: f64,
    train_seconds: f64,
    train_images: usize,
    test_images: usize,
    accuracy: f64,
    test: Evaluation,
    /// The peak resident memory estimated before training (what the memory check compares).
    memory_estimate_bytes: u64,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let network = args.network.network(&args.spec)?;
    for (flag, value, max) in [
        ("--batch", Some(args.batch), limits::MAX_BATCH),
        ("--epochs", Some(args.epochs), limits::MAX_EPOCHS),
        ("--train-limit", args.train_limit, limits::MAX_IMAGES),
        ("--test-limit", args.data.test_limit, limits::MAX_IMAGES),
    ] {
        if let Some(value) = value {
            limits::at_most(value, max).map_err(|message| Error::usage(flag, message))?;
        }
    }
    if args.batch == 0 {
        return Err(Error::usage("--batch", "must be at least 1"));
    }
    if args.epochs == 0 {
        return Err(Error::usage("--epochs", "must be at least 1"));
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(Error::usage("--lr", "must be a positive number"));
    }
    let memory_estimate_bytes = check_memory(&network, args)?;
    check_output_path(&args.output)?;
    let kind = network.spec.dataset;
    let dir = args.data.data.as_deref();
    let train_data = load_split(kind, dir, Split::Train, args.train_limit)?;
    let test_data = load_split(kind, dir, Split::Test, args.data.test_limit)?;

    let options = TrainOptions {
        epochs: args.epochs,
        batch: args.batch,
        learning_rate: args.lr,
        seed: args.seed,
    };
    let mut net = Net::new(&network, args.seed);
    let parameters = network.layers.iter().map(|l| l.weights()).sum();
    let macs = network.layers.iter().map(|l| l.macs()).sum();
    let weights = network.spec.precision.weights.to_string();
    let activations = network.spec.precision.activations.to_string();
    let progress = progress_bar(0);
    // The table's rows are printed as their epochs end; with JSON on standard output they go
    // above the bar (on a terminal only).
    match args.format {
        Format::Table => {
            outln!(
                "{}: {parameters} weights, {macs} MACs per image, weights {weights} bits, activations {activations} bits",
                network.spec.name
            )?;
            outln!("{EPOCH_HEADER}")?;
        }
        Format::Json => progress.println(EPOCH_HEADER),
    }
    let start = Instant::now();
    let mut testing_seconds = 0.0;
    let mut last_test = None;
    let trained =
        train::train_reporting(&mut net, &train_data, &options, &progress, |net, stats| {
            progress.set_message(format!(
                "epoch {}/{}: testing on {} images",
                stats.epoch,
                options.epochs,
                test_data.len()
            ));
            let testing = Instant::now();
            let test = train::evaluate(net, &test_data, args.batch);
            testing_seconds += testing.elapsed().as_secs_f64();
            stats.test_accuracy = Some(test.accuracy);
            last_test = Some(test);
            match args.format {
                Format::Table => progress.suspend(|| outln!("{}", epoch_row(stats))),
                Format::Json => {
                    progress.println(epoch_row(stats));
                    Ok(())
                }
            }
        });
    let seconds = start.elapsed().as_secs_f64() - testing_seconds;
    progress.finish_and_clear();
    let history = trained?;
    let test = last_test.expect("at least one epoch ran");
    // Writing the model file copies every parameter: without the training state it stays
    // below the training peak that `check_memory` estimated.
    net.release_training_state();

    let mut model = Model {
        net,
        training: TrainingRecord {
            dataset: kind.name().into(),
            train_images: train_data.len(),
            test_images: test_data.len(),
            options,
            history: history.clone(),
            test_accuracy: test.accuracy,
        },
    };
    model.save(&args.output)?;

    let report = TrainReport {
        model: args.output.display().to_string(),
        network: &network.spec.name,
        wbits: bits_of(network.spec.precision.weights),
        abits: bits_of(network.spec.precision.activations),
        parameters,
        macs,
        epochs: &history,
        train_img_per_s: (train_data.len() * args.epochs) as f64 / seconds,
        train_seconds: seconds,
        train_images: train_data.len(),
        test_images: test_data.len(),
        accuracy: test.accuracy,
        test,
        memory_estimate_bytes,
    };
    match args.format {
        Format::Json => super::print_json(&report)?,
        Format::Table => {
            outln!(
                "trained on {} images in {:.1} s ({:.0} img/s)",
                train_data.len(),
                seconds,
                report.train_img_per_s
            )?;
            outln!(
                "test accuracy: {:.2}% ({}/{} test images)",
                test.accuracy,
                test.correct,
                test.total
            )?;
            outln!(
                "estimated peak memory: {:.1} MiB",
                memory_estimate_bytes as f64 / (1u64 << 20) as f64
            )?;
            outln!("wrote {}", report.model)?;
        }
    }
    Ok(())
}

/// The head of the table of epochs.
const EPOCH_HEADER: &str = "epoch  loss     train acc  test acc  img/s";

/// One epoch's row of the table (the test accuracy after it, when measured).
fn epoch_row(e: &EpochStats) -> String {
    let test = e
        .test_accuracy
        .map_or_else(|| "-".to_string(), |a| format!("{a:.2}%"));
    format!(
        "{:>5}  {:<7.4}  {:>8.2}%  {:>8}  {:>6.0}",
        e.epoch, e.loss, e.train_accuracy, test, e.img_per_s
    )
}

fn bits_of(precision: Precision) -> u32 {
    precision.bits().unwrap_or(crate::energy::work::FLOAT_BITS)
}

/// The estimated peak memory of the training, if this machine has that much.
fn check_memory(network: &Network, args: &TrainArgs) -> Result<u64> {
    let available = machine_memory_bytes();
    let needed = train::memory::peak_bytes(network, args.batch, args.data.data.as_deref());
    match needed {
        Some(bytes) if bytes <= available => Ok(bytes),
        _ => Err(Error::Spec(crate::spec::SpecError::Memory {
            file: args.spec.display().to_string(),
            field: "layers".into(),
            message: format!(
                "training with batch {} needs {} but this machine has {:.1} GiB",
                args.batch,
                needed
                    .map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
                    .unwrap_or_else(|| "more memory than can be counted".into()),
                available as f64 / (1u64 << 30) as f64
            ),
        })),
    }
}
