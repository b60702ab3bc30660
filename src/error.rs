//! The error of a command: one line naming the file and the field, and exit code 1.

use crate::data::DataError;
use crate::energy::EnergyError;
use crate::implement::ImplementError;
use crate::ir::IrError;
use crate::model::ModelError;
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
    Sim(#[from] SimError),
    #[error(transparent)]
    Implement(#[from] ImplementError),
    /// A command-line value that does not make sense: the flag and what is wrong.
    #[error("{flag}: {message}")]
    Usage { flag: String, message: String },
    /// An output that could not be written.
    #[error("{file}: {message}")]
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
