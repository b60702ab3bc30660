//! `qnnc bench`: throughput figures of the stages, on this machine.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use serde::Serialize;

use super::{load_split, Format};
use crate::data::{DatasetKind, Split};
use crate::error::Result;
use crate::spec::examples::{example_network, EXAMPLE_CNN, EXAMPLE_MLP};
use crate::spec::Precision;
use crate::train::memory::{peak_resident_bytes, reset_peak_resident};
use crate::train::{self, Net, TrainOptions};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchWhat {
    /// Training throughput (img/s) and peak resident memory of the example MLP and CNN
    Train(BenchTrainArgs),
    /// Inference throughput (img/s) of the integer golden model for the example MLP and CNN
    Golden(BenchGoldenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BenchGoldenArgs {
    /// Use the first N test images per network [default: all]
    #[arg(long = "test-limit", visible_alias = "images", value_name = "N")]
    pub images: Option<usize>,
    /// Timed repetitions; the best is reported
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Folder holding the data set's files (default: the Debian package's folder)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Serialize)]
pub struct GoldenBenchRow {
    pub net: String,
    pub bits: u32,
    pub images: usize,
    pub golden_img_per_s: f64,
}

#[derive(Debug, Clone, Args)]
pub struct BenchTrainArgs {
    /// Training images timed per network (after one untimed warm-up pass over 10 batches)
    #[arg(long, default_value_t = 6000)]
    pub images: usize,
    /// Images per batch
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Folder holding the data set's files (default: the Debian package's folder)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Serialize)]
pub struct TrainBenchRow {
    pub net: String,
    /// Bits of weights and activations; null for float.
    pub bits: Option<u32>,
    pub batch: usize,
    pub images: usize,
    pub train_img_per_s: f64,
    pub peak_rss_mib: Option<f64>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.what {
        BenchWhat::Train(train_args) => run_train(train_args),
        BenchWhat::Golden(golden_args) => run_golden(golden_args),
    }
}

fn run_train(args: &BenchTrainArgs) -> Result<()> {
    if args.batch == 0 || args.images == 0 {
        return Err(crate::Error::usage(
            "--images/--batch",
            "must be at least 1",
        ));
    }
    let warmup = 10 * args.batch;
    let data = load_split(
        DatasetKind::FashionMnist,
        args.data.as_deref(),
        Split::Train,
        Some(args.images + warmup),
    )?;
    if data.len() <= warmup {
        return Err(crate::Error::usage(
            "--images/--batch",
            format!(
                "the warm-up alone takes {warmup} images (10 batches) but the training set has {}",
                data.len()
            ),
        ));
    }
    let mut rows = Vec::new();
    for example in [EXAMPLE_MLP, EXAMPLE_CNN] {
        for bits in [
            Precision::Bits(1),
            Precision::Bits(2),
            Precision::Bits(4),
            Precision::Bits(8),
            Precision::Float,
        ] {
            let network = example_network(example, bits);
            let has_peak = reset_peak_resident();
            let mut net = Net::new(&network, 1);
            let mut warm = data.clone();
            warm.truncate(warmup);
            let mut timed = data.clone();
            timed.images.drain(..warmup * data.pixels_per_image());
            timed.labels.drain(..warmup);
            let options = TrainOptions {
                epochs: 1,
                batch: args.batch,
                ..TrainOptions::default()
            };
            train::train(&mut net, &warm, &options, &ProgressBar::hidden());
            let start = Instant::now();
            train::train(&mut net, &timed, &options, &ProgressBar::hidden());
            let seconds = start.elapsed().as_secs_f64();
            let row = TrainBenchRow {
                net: example.0.into(),
                bits: bits.bits(),
                batch: args.batch,
                images: timed.len(),
                train_img_per_s: timed.len() as f64 / seconds,
                peak_rss_mib: peak_resident_bytes()
                    .filter(|_| has_peak)
                    .map(|b| b as f64 / (1u64 << 20) as f64),
            };
            if args.format == Format::Table {
                if rows.is_empty() {
                    outln!("net  bits   batch  images  train img/s  peak RSS MiB")?;
                }
                outln!(
                    "{:<4} {:<6} {:>5}  {:>6}  {:>11.0}  {:>12}",
                    row.net,
                    bits.to_string(),
                    row.batch,
                    row.images,
                    row.train_img_per_s,
                    row.peak_rss_mib
                        .map(|m| format!("{m:.0}"))
                        .unwrap_or_else(|| "n/a".into())
                )?;
            }
            rows.push(row);
        }
    }
    if args.format == Format::Json {
        super::print_json(&rows)?;
    }
    Ok(())
}

fn run_golden(args: &BenchGoldenArgs) -> Result<()> {
    if args.images == Some(0) || args.repeat == 0 {
        return Err(crate::Error::usage(
            "--test-limit/--repeat",
            "must be at least 1",
        ));
    }
    let data = load_split(
        DatasetKind::FashionMnist,
        args.data.as_deref(),
        Split::Test,
        args.images,
    )?;
    let mut rows = Vec::new();
    for example in [EXAMPLE_MLP, EXAMPLE_CNN] {
        for bits in [1, 2, 4, 8] {
            // Throughput does not depend on the values of the weights: an initialised network
            // lowers to the same operations as a trained one.
            let network = example_network(example, Precision::Bits(bits));
            let net = Net::new(&network, 1);
            let origin = format!("examples/fmnist_{}.toml", example.0);
            let mut graph = net.to_graph(&origin)?;
            crate::ir::passes::run(&mut graph, &origin, None)?;
            let golden = crate::golden::Golden::new(&graph, &origin)?;
            let mut best = f64::INFINITY;
            for _ in 0..args.repeat {
                let start = Instant::now();
                std::hint::black_box(golden.run(&data.images));
                best = best.min(start.elapsed().as_secs_f64());
            }
            let row = GoldenBenchRow {
                net: example.0.into(),
                bits: bits.into(),
                images: data.len(),
                golden_img_per_s: data.len() as f64 / best,
            };
            if args.format == Format::Table {
                if rows.is_empty() {
                    outln!("net  bits  images  golden img/s")?;
                }
                outln!(
                    "{:<4} {:<4}  {:>6}  {:>12.0}",
                    row.net,
                    row.bits,
                    row.images,
                    row.golden_img_per_s
                )?;
            }
            rows.push(row);
        }
    }
    if args.format == Format::Json {
        super::print_json(&rows)?;
    }
    Ok(())
}
