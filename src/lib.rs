//! qnnc: a compiler for quantized neural networks. It trains a network at any fixed-point
//! precision from 1 to 16 bits, stores it in a versioned model file, and (in later stages)
//! lowers it to an integer IR, estimates its energy and emits verified RTL.

/// Prints a line on standard output like `println!`, but returns the error (a closed pipe or
/// a full disk) as a `Result` for `?` instead of panicking.
macro_rules! outln {
    () => {
        $crate::output::print("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::print(format!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints text on standard output like `print!`, returning the error as `outln!` does.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::print(format!($($arg)*))
    };
}

pub mod calibrate;
pub mod codegen;
pub mod commands;
pub mod data;
pub mod energy;
pub mod error;
pub mod explore;
pub mod input;
pub mod kernels;
pub mod model;
pub mod output;
pub mod palette;
pub mod qonnx;
pub mod quant;
pub mod spec;
pub mod train;

pub use error::{Error, Result};
pub mod golden;
pub mod implement;
pub mod ir;
pub mod limits;
pub mod schedule;
pub mod sim;
