//! The trained-model file: versioned, self-describing JSON holding the spec (with the precisions
//! it was trained at), every parameter and batch-norm statistic bit-exactly, and how it was
//! trained. Loading checks the format, the version, the spec and every shape.

use crate::error::escape_controls;
use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::spec::{Network, Spec};
use crate::train::{EpochStats, Net, Tensor, TrainOptions};

/// Names the file format in its first field, so that other JSON is recognised as such.
pub const FORMAT: &str = "qnnc-model";
/// Bumped whenever the meaning or layout of a field changes.
pub const VERSION: u32 = 1;

/// An error reading or writing a model file: the file, the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
pub struct ModelError {
    pub file: String,
    pub field: String,
    pub message: String,
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
        crate::output::write_atomic(path, &self.to_bytes()).map_err(|e| ModelError {
            file: path.display().to_string(),
            field: "(file)".into(),
            message: e.to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let file = path.display().to_string();
        let bytes = crate::input::read(path, crate::input::MODEL_FILE).map_err(|e| ModelError {
            file: file.clone(),
            field: "(file)".into(),
            message: e.to_string(),
        })?;
        Model::from_bytes(&bytes, &file)
    }

    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Model, ModelError> {
        let error = |field: &str, message: String| ModelError {
            file: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let header: Header = serde_json::from_slice(bytes).map_err(|e| {
            error(
                "(file)",
                format!("not a qnnc model file (expected JSON with format \"{FORMAT}\"): {e}"),
            )
        })?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(error(
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
            Some(other) => {
                return Err(error(
                    "version",
                    format!(
                    "file has format version {other} but this qnnc ({}) reads version {VERSION}",
                    env!("CARGO_PKG_VERSION")
                ),
                ))
            }
            None => return Err(error("version", "missing".into())),
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let stored: ModelFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            error(&field, e.into_inner().to_string())
        })?;
        let network: Network = stored
            .spec
            .build(origin)
            .map_err(|e| error(&format!("spec.{}", e.field), e.message))?;
        // Parameters are allocated for the network the spec describes: refuse one that could
        // not fit before allocating anything.
        let memory = crate::train::memory::machine_memory_bytes();
        if network.training_bytes(1).is_none_or(|bytes| bytes > memory) {
            return Err(error(
                "spec",
                format!(
                    "the network needs more memory than this machine has ({:.1} GiB)",
                    memory as f64 / (1u64 << 30) as f64
                ),
            ));
        }
        let mut tensors = BTreeMap::new();
        for (name, t) in &stored.parameters {
            let field = format!("parameters.{name}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&t.f32_le_base64)
                .map_err(|e| error(&field, format!("corrupt base64: {e}")))?;
            if bytes.len() % 4 != 0 {
                return Err(error(&field, "byte count is not a multiple of 4".into()));
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
            .map_err(|message| error("parameters", message))?;
        Ok(Model {
            net,
            training: stored.training,
        })
    }
}

#[cfg(test)]
mod tests;
