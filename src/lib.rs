//! qnnc: a compiler for quantized neural networks. It trains a network at any fixed-point
//! precision from 1 to 16 bits, stores it in a versioned model file, and (in later stages)
//! lowers it to an integer IR, estimates its energy and emits verified RTL.

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
