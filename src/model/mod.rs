//! The trained-model file: versioned, self-describing JSON holding the spec (with the precisions
//! it was trained at), every parameter and batch-norm statistic bit-exactly, and how it was
//! trained. Loading checks the format, the version, the spec and every shape.

use crate::error::escape_controls;
use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::spec::{Network, Spec, SpecError};
use crate::train::{EpochStats, Net, Tensor, TrainOptions};

/// Names the file format in its first field, so that other JSON is recognised as such.
pub const FORMAT: &str = "qnnc-model";
/// Bumped whenever the meaning or layout of a field changes.
pub const VERSION: u32 = 1;

/// An error reading or writing a model file: the file, the field, and what is wrong, printed
/// on one line. The variant says what kind of failure it is, for callers that branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The file cannot be read.
    #[error("{}: (file): {}", escape_controls(.file), escape_controls(.message))]
    Read { file: String, message: String },
    /// The file cannot be written.
    #[error("{}: (file): {}", escape_controls(.file), escape_controls(.message))]
    Write { file: String, message: String },
    /// Not a qnnc model file: not JSON, or another format.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Format {
        file: String,
        field: String,
        message: String,
    },
    /// A model file of another format version than this qnnc reads.
    #[error("{}: version: file has format version {found} but this qnnc ({}) reads version {expected}", escape_controls(.file), env!("CARGO_PKG_VERSION"))]
    Version {
        file: String,
        found: u32,
        expected: u32,
    },
    /// A field that is missing, unknown or of the wrong type.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Field {
        file: String,
        field: String,
        message: String,
    },
    /// The spec stored in the model does not build; its field is printed under `spec.`.
    #[error("{}: spec.{}: {}", escape_controls(.0.file()), escape_controls(.0.field()), escape_controls(&.0.message()))]
    Spec(#[from] SpecError),
    /// The network needs more memory than this machine has.
    #[error("{}: spec: {}", escape_controls(.file), escape_controls(.message))]
    Memory { file: String, message: String },
    /// Parameters that are corrupt, missing, extra, of the wrong shape or not finite.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Parameters {
        file: String,
        field: String,
        message: String,
    },
}

/// How a model was trained and how well it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingRecord {
    pub dataset: String,
    pub train_images: usize,
    pub test_images: usize,
    pub options: TrainOptions,
    pub history: Vec<EpochStats>,
    /// Float-QAT test accuracy in percent on the `test_images` first test images.
    pub test_accuracy: f64,
}

/// A trained network: its validated spec, parameters and training record.
#[derive(Debug, Clone)]
pub struct Model {
    pub net: Net,
    pub training: TrainingRecord,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    version: u32,
    spec: Spec,
    training: TrainingRecord,
    parameters: BTreeMap<String, StoredTensor>,
}

/// A tensor as stored: its shape and its little-endian f32 values in base64, which keeps every
/// bit (decimal text would need care to round-trip).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTensor {
    shape: Vec<usize>,
    f32_le_base64: String,
}

/// Only the fields that identify a file, read before anything else.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    version: Option<u32>,
}

impl Model {
    /// The file's bytes; the same model always gives the same bytes.
    pub fn to_bytes(&mut self) -> Vec<u8> {
        let parameters = self
            .net
            .tensors()
            .into_iter()
            .map(|(name, t)| {
                let bytes: Vec<u8> = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (
                    name,
                    StoredTensor {
                        shape: t.shape,
                        f32_le_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                    },
                )
            })
            .collect();
        let file = ModelFile {
            format: FORMAT.into(),
            version: VERSION,
            spec: self.net.network.spec.clone(),
            training: self.training.clone(),
            parameters,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("model serialises");
        bytes.push(b'\n');
        bytes
    }

    pub fn save(&mut self, path: &Path) -> Result<(), ModelError> {
        crate::output::write_atomic(path, &self.to_bytes()).map_err(|e| ModelError::Write {
            file: path.display().to_string(),
            message: e.to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let file = path.display().to_string();
        let bytes =
            crate::input::read(path, crate::input::MODEL_FILE).map_err(|e| ModelError::Read {
                file: file.clone(),
                message: e.to_string(),
            })?;
        Model::from_bytes(&bytes, &file)
    }

    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Model, ModelError> {
        let format_error = |field: &str, message: String| ModelError::Format {
            file: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let field_error = |field: &str, message: String| ModelError::Field {
            file: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let parameter_error = |field: &str, message: String| ModelError::Parameters {
            file: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let header: Header = serde_json::from_slice(bytes).map_err(|e| {
            format_error(
                "(file)",
                format!("not a qnnc model file (expected JSON with format \"{FORMAT}\"): {e}"),
            )
        })?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(format_error(
                "format",
                format!(
                    "{} is not a qnnc model file (expected \"{FORMAT}\")",
                    header
                        .format
                        .map(|f| format!("\"{f}\""))
                        .unwrap_or_else(|| "a missing format".into())
                ),
            ));
        }
        match header.version {
            Some(VERSION) => {}
            Some(found) => {
                return Err(ModelError::Version {
                    file: origin.to_string(),
                    found,
                    expected: VERSION,
                })
            }
            None => return Err(field_error("version", "missing".into())),
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let stored: ModelFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            field_error(&field, e.into_inner().to_string())
        })?;
        let network: Network = stored.spec.build(origin)?;
        // Parameters are allocated for the network the spec describes: refuse one that could
        // not fit before allocating anything.
        let memory = crate::train::memory::machine_memory_bytes();
        if network.training_bytes(1).is_none_or(|bytes| bytes > memory) {
            return Err(ModelError::Memory {
                file: origin.to_string(),
                message: format!(
                    "the network needs more memory than this machine has ({:.1} GiB)",
                    memory as f64 / (1u64 << 30) as f64
                ),
            });
        }
        let mut tensors = BTreeMap::new();
        for (name, t) in &stored.parameters {
            let field = format!("parameters.{name}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&t.f32_le_base64)
                .map_err(|e| parameter_error(&field, format!("corrupt base64: {e}")))?;
            if bytes.len() % 4 != 0 {
                return Err(parameter_error(
                    &field,
                    "byte count is not a multiple of 4".into(),
                ));
            }
            let values = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(
                name.clone(),
                Tensor {
                    shape: t.shape.clone(),
                    values,
                },
            );
        }
        let mut net = Net::new(&network, 0);
        net.load_tensors(&tensors)
            .map_err(|message| parameter_error("parameters", message))?;
        Ok(Model {
            net,
            training: stored.training,
        })
    }
}

#[cfg(test)]
mod tests;
