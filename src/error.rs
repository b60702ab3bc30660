//! The error of a command: one line naming the file and the field, and exit code 1.

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

/// `text` with every control character (newline, carriage return, escape...) written as an
/// escape sequence, so that a name or path from a file cannot break an error message over
/// several lines or send terminal codes. Other characters, backslashes included, stay as they
/// are, so escaping twice changes nothing.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped_once_and_others_kept() {
        let text = "a\nb\r\u{1b}[31m é \\n";
        let once = escape_controls(text);
        assert_eq!(once, "a\\nb\\r\\u{1b}[31m é \\n");
        assert_eq!(escape_controls(&once), once);
        assert!(!once.contains('\n'));
    }
}
