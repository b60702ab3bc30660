//! The `qnnc` command line: parses arguments, runs the command, and turns any error into one
//! line on standard error and exit code 1.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qnnc::commands::{
    bench, calibrate, compile, energy, eval, explore, inspect, qonnx, sim, train,
};

/// qnnc: train quantized neural networks at any precision from 1 to 16 bits and compile them.
#[derive(Debug, Parser)]
#[command(name = "qnnc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once a run: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Train a network from a spec and write the trained-model file
    Train(train::TrainArgs),
    /// Test accuracy of a trained-model file, QONNX file or IR file
    Eval(eval::EvalArgs),
    /// Show the integer IR of a network (text, dot or json), after any pass
    Inspect(inspect::InspectArgs),
    /// Emit RTL, memory images and a testbench for a PE array
    Compile(compile::CompileArgs),
    /// Simulate a build folder in Verilator and compare with the golden model
    Sim(sim::SimArgs),
    /// Sweep precision x width x depth and find the minimum-energy network at each accuracy
    Explore(explore::ExploreArgs),
    /// Throughput benchmarks
    Bench(bench::BenchArgs),
    /// Energy of one inference, layer by layer, on a hardware profile
    Energy(energy::EnergyArgs),
    /// Measure the cost of arithmetic by precision on qnnc's processing element (Yosys) and fit the energy model's beta
    Calibrate(calibrate::CalibrateArgs),
    /// Convert a QONNX file (Brevitas, FINN, hls4ml) into a qnnc network file
    Import(qonnx::ImportArgs),
    /// Write a trained or imported network as a QONNX file
    Export(qonnx::ExportArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version: their text is the output asked for.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // A usage error is one line too: its first paragraph (which may list the missing
            // flags on lines of their own) joined; `--help` shows the rest.
            let text = error.to_string();
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty())
                .collect();
            let line = if first.is_empty() {
                "invalid arguments".to_string()
            } else {
                first.join(" ")
            };
            let _ = writeln!(std::io::stderr(), "{line}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Energy(args) => energy::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Import(args) => qonnx::import(args),
        Command::Export(args) => qonnx::export(args),
    };
    match result {
        Ok(()) => {
            for warning in qnnc::commands::take_warnings() {
                let _ = writeln!(std::io::stderr(), "warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        // The reader of standard output went away (`| head`): what it wanted it has.
        Err(qnnc::Error::StdoutClosed) => ExitCode::SUCCESS,
        Err(error) => {
            // Standard error may be closed too; the exit code still tells.
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                qnnc::error::escape_controls(&error.to_string())
            );
            ExitCode::FAILURE
        }
    }
}
