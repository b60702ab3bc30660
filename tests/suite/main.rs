//! The integration tests, in one test binary: one link of the library instead of one a file,
//! and the test harness runs the slow tests of every module side by side. Each module is one
//! area (`cargo test --release --test suite -- rtl::` runs the RTL tests).

#[path = "../common/mod.rs"]
mod common;

mod activity;
mod calibrate;
mod cli;
mod energy;
mod errors;
mod explore;
mod explore_slurm;
mod fpga;
mod fuzz;
mod golden;
mod hostile_files;
mod hostile_limits;
mod ir;
mod measured_energy;
mod output_formats;
mod qonnx;
mod residual;
mod rtl;
mod rtl_blocks;
mod training;
