//! The energy model of the generic platform (DESIGN.md, "Energy model of the generic platform"):
//! the energy of one inference, layer by layer, on a platform with p parallel MAC units, a local
//! memory beside them and a main memory. An analysis: it reads a network and returns a report.
//!
//! Per MAC layer (conv2d or dense, with the batch norm, activation, max-pool and flatten layers
//! that follow it fused in), with N_c MACs, N_s weights, A_s outputs computed (before a max-pool)
//! and A_out outputs stored (after it):
//!
//! ```text
//! E_MAC   = e_mac16 * (Qw * Qa_in / 256)^(beta/2)
//! E_C     = E_MAC * (N_c + 3*A_s)                                 compute, batch norm, act, pool
//! E_W     = E_M(Qw) * N_s + E_L(Qw) * N_c / sqrt(p)               weights: main memory once, then local
//! E_A     = 2 * E_M(Qa_out) * A_out + E_L(Qa_in) * N_c / sqrt(p)  outputs written and read back once
//! E_M(Q)  = e_main16 * Q/16        E_L(Q) = e_local16 * Q/16
//! E_layer = E_C + E_W + E_A
//! ```
//!
//! Which activation precision goes where: the multiplier multiplies a weight by an *input*
//! activation, so E_MAC uses (Qw, Qa_in); the activations written to main memory are the layer's
//! outputs, at Qa_out; the local-memory reads are of input activations, at Qa_in. With one Q for
//! weights and activations everywhere this is exactly the formula of Moons et al. (2017).
//! Float precisions count as 32 bits, the first layer reads 8-bit pixels, and the last layer's
//! outputs (logits) count as 16 bits.
//!
//! - [`work`]: what each layer does (MACs, weights, activations, bits), from the network;
//! - [`profile`]: the constants of a platform, presets and TOML files;
//! - [`model`]: the formula above, turning work and a profile into a report;
//! - [`report`]: the report and its table, JSON and CSV renderings.

use crate::error::escape_controls;

pub mod model;
pub mod profile;
pub mod report;
pub mod work;

pub use model::estimate;
pub use profile::Profile;
pub use report::{EnergyReport, EnergyTotals, LayerEnergy};
pub use work::{work_of, work_of_graph, LayerWork};

/// An energy-model error, such as a bad hardware profile or calibration: the file, the field,
/// and what is wrong, printed on one line. The variant says what kind of failure it is, for
/// callers that branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnergyError {
    /// The file cannot be read.
    #[error("{}: (file): {}", escape_controls(.file), escape_controls(.message))]
    Read { file: String, message: String },
    /// A `--profile` that is neither a preset nor an existing file.
    #[error("{}: profile: neither a preset nor a file (presets: {})", escape_controls(.name), .presets.join(", "))]
    UnknownProfile {
        name: String,
        presets: Vec<&'static str>,
    },
    /// TOML or JSON that does not parse, an unknown field, or a value of the wrong type.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Syntax {
        file: String,
        field: String,
        message: String,
    },
    /// A profile constant that is not given.
    #[error("{}: {}: missing (every field of a profile is required)", escape_controls(.file), escape_controls(.field))]
    Missing { file: String, field: String },
    /// A profile constant out of its range (energies and beta positive and finite, p >= 1).
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Profile {
        file: String,
        field: String,
        message: String,
    },
    /// Not a calibration file, or one of another version.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Format {
        file: String,
        field: String,
        message: String,
    },
    /// A calibration whose points or fit cannot be used.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Calibration {
        file: String,
        field: String,
        message: String,
    },
}

impl EnergyError {
    /// The field the error is about, as printed.
    pub fn field(&self) -> &str {
        match self {
            EnergyError::Read { .. } => "(file)",
            EnergyError::UnknownProfile { .. } => "profile",
            EnergyError::Syntax { field, .. }
            | EnergyError::Missing { field, .. }
            | EnergyError::Profile { field, .. }
            | EnergyError::Format { field, .. }
            | EnergyError::Calibration { field, .. } => field,
        }
    }
}
