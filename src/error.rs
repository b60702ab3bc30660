//! The error of a command: one line naming the file and the field, and exit code 1.

pub use crate::input::escape_controls;

use crate::codegen::CodegenError;
use crate::data::DataError;
use crate::energy::EnergyError;
use crate::golden::GoldenError;
use crate::implement::ImplementError;
use crate::ir::IrError;
use crate::model::ModelError;
use crate::qonnx::QonnxError;
use crate::schedule::ScheduleError;
use crate::sim::SimError;
use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Energy(#[from] EnergyError),
    #[error(transparent)]
    Ir(#[from] IrError),
    #[error(transparent)]
    Golden(#[from] GoldenError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    #[error(transparent)]
    Qonnx(#[from] QonnxError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Implement(#[from] ImplementError),
    /// A command-line value that does not make sense: the flag and what is wrong.
    #[error("{}: {}", escape_controls(.flag), escape_controls(.message))]
    Usage { flag: String, message: String },
    /// An output that could not be written.
    #[error("{}: {}", escape_controls(.file), escape_controls(.message))]
    Output { file: String, message: String },
    /// Standard output was closed by its reader (`| head`): the command stops and exits
    /// quietly, as other command-line tools do.
    #[error("standard output closed")]
    StdoutClosed,
}

impl Error {
    pub fn usage(flag: &str, message: impl Into<String>) -> Self {
        Error::Usage {
            flag: flag.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
