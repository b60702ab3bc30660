//! Design-space exploration: sweep precision, width and depth, and find the minimum-energy
//! network at each accuracy target (Moons et al., 2017).

pub mod pareto;
pub mod plot;
pub mod point;
pub mod report;
pub mod slurm;
pub mod sweep;
