//! The network spec: what a user writes (TOML or JSON), how command-line overrides change it,
//! and its expansion into a validated list of layers with inferred shapes and precisions.

mod dataset;
pub mod examples;
mod precision;

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::input::escape_controls;
use crate::limits::{self, at_most, MAX_WINDOW};

pub use crate::kernels::Shape;
pub use dataset::DatasetKind;
pub use precision::{Precision, MAX_BITS, MIN_BITS};

/// A spec error: the file, the field within it (or the flag), and what is wrong, printed on
/// one line. The variant says what kind of failure it is, for callers that branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The file cannot be read.
    #[error("{}: (file): {}", escape_controls(.file), escape_controls(.message))]
    Read { file: String, message: String },
    /// TOML or JSON that does not parse, an unknown field, or a value of the wrong type.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Syntax {
        file: String,
        field: String,
        message: String,
    },
    /// A bit width out of its range, a precision that is neither a width nor "float", or an
    /// add of two precisions.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Precision {
        file: String,
        field: String,
        message: String,
    },
    /// A value that does not make sense: a zero size, a bad or repeated name, layers and a
    /// template both or neither.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Value {
        file: String,
        field: String,
        message: String,
    },
    /// A size beyond the limits of docs/limits.md.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Limit {
        file: String,
        field: String,
        message: String,
    },
    /// A command-line override that does not apply to this spec.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.flag), escape_controls(.message))]
    Flag {
        file: String,
        flag: String,
        message: String,
    },
    /// An add whose `from` is not an earlier layer (unknown, later, or the add itself).
    #[error("{}: {}: '{}' is not the name of an earlier layer", escape_controls(.file), escape_controls(.field), escape_controls(.name))]
    UnknownLayer {
        file: String,
        field: String,
        name: String,
    },
    /// Shapes that do not fit: a window larger than its input, a dense layer on an unflattened
    /// input, an add of two shapes, an input or an output that does not match the dataset.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Shape {
        file: String,
        field: String,
        message: String,
    },
    /// Layers in an order the hardware cannot run: an add or average pool not between act
    /// layers, a network without a conv2d or dense layer.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Order {
        file: String,
        field: String,
        message: String,
    },
    /// A network that needs more memory to train than this machine has.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
    Memory {
        file: String,
        field: String,
        message: String,
    },
}

/// The kinds of [`SpecError`] that carry a field and a message.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Syntax,
    Precision,
    Value,
    Limit,
    Shape,
    Order,
}

impl SpecError {
    fn new(kind: Kind, file: &str, field: String, message: String) -> SpecError {
        let file = file.to_string();
        match kind {
            Kind::Syntax => SpecError::Syntax {
                file,
                field,
                message,
            },
            Kind::Precision => SpecError::Precision {
                file,
                field,
                message,
            },
            Kind::Value => SpecError::Value {
                file,
                field,
                message,
            },
            Kind::Limit => SpecError::Limit {
                file,
                field,
                message,
            },
            Kind::Shape => SpecError::Shape {
                file,
                field,
                message,
            },
            Kind::Order => SpecError::Order {
                file,
                field,
                message,
            },
        }
    }

    /// The spec file the error is about.
    pub fn file(&self) -> &str {
        match self {
            SpecError::Read { file, .. }
            | SpecError::Syntax { file, .. }
            | SpecError::Precision { file, .. }
            | SpecError::Value { file, .. }
            | SpecError::Limit { file, .. }
            | SpecError::Flag { file, .. }
            | SpecError::UnknownLayer { file, .. }
            | SpecError::Shape { file, .. }
            | SpecError::Order { file, .. }
            | SpecError::Memory { file, .. } => file,
        }
    }

    /// What is wrong, as printed after the field.
    pub fn message(&self) -> std::borrow::Cow<'_, str> {
        match self {
            SpecError::UnknownLayer { name, .. } => format!(
                "'{}' is not the name of an earlier layer",
                escape_controls(name)
            )
            .into(),
            SpecError::Read { message, .. }
            | SpecError::Syntax { message, .. }
            | SpecError::Precision { message, .. }
            | SpecError::Value { message, .. }
            | SpecError::Limit { message, .. }
            | SpecError::Flag { message, .. }
            | SpecError::Shape { message, .. }
            | SpecError::Order { message, .. }
            | SpecError::Memory { message, .. } => message.into(),
        }
    }

    /// The field (or flag) the error is about, as printed.
    pub fn field(&self) -> &str {
        match self {
            SpecError::Read { .. } => "(file)",
            SpecError::Flag { flag, .. } => flag,
            SpecError::Syntax { field, .. }
            | SpecError::Precision { field, .. }
            | SpecError::Value { field, .. }
            | SpecError::Limit { field, .. }
            | SpecError::UnknownLayer { field, .. }
            | SpecError::Shape { field, .. }
            | SpecError::Order { field, .. }
            | SpecError::Memory { field, .. } => field,
        }
    }
}

/// The network as written by a user: either an explicit layer list or a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    #[serde(default = "default_dataset")]
    pub dataset: DatasetKind,
    pub input: Shape,
    pub classes: usize,
    #[serde(default)]
    pub precision: PrecisionSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
}

fn default_dataset() -> DatasetKind {
    DatasetKind::FashionMnist
}

/// Default precisions; layers may override them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionSpec {
    pub weights: Precision,
    pub activations: Precision,
}

impl Default for PrecisionSpec {
    fn default() -> Self {
        PrecisionSpec {
            weights: Precision::Bits(8),
            activations: Precision::Bits(8),
        }
    }
}

/// One layer as written in a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LayerSpec {
    Conv2d(Conv2dSpec),
    Dense(DenseSpec),
    #[serde(rename = "batchnorm")]
    BatchNorm(NamedSpec),
    /// Activation quantizer: quantized ReLU (two or more bits), sign (one bit) or ReLU (float).
    Act(ActSpec),
    #[serde(rename = "maxpool")]
    MaxPool(MaxPoolSpec),
    /// Average pooling; without a size, global (the window is the whole input).
    #[serde(rename = "avgpool")]
    AvgPool(AvgPoolSpec),
    /// A skip connection: the previous layer's output plus the output of the layer `from`.
    Add(AddSpec),
    Flatten(NamedSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub filters: usize,
    pub kernel: usize,
    #[serde(default = "one")]
    pub stride: usize,
    #[serde(default)]
    pub padding: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wbits: Option<Precision>,
    #[serde(default)]
    pub bias: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub units: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wbits: Option<Precision>,
    #[serde(default)]
    pub bias: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<Precision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPoolSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub size: usize,
    /// Defaults to `size` (non-overlapping windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvgPoolSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `None`: global average pooling over the whole (square) input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Defaults to `size` (non-overlapping windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name of an earlier layer whose output is added.
    pub from: String,
}

fn one() -> usize {
    1
}

/// Network families that a sweep scales by width and depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Template {
    /// The block template of Moons et al. (2017): blocks A, B, C..., each `nl` 3x3 same-padded
    /// convolutions of `nf` filters (conv, batch norm, activation) and a 2x2 max-pool; then
    /// optional hidden dense layers and a dense classifier with batch norm.
    Blocks {
        blocks: Vec<Block>,
        #[serde(default)]
        hidden: Vec<usize>,
    },
    /// A multi-layer perceptron: hidden dense layers (dense, batch norm, activation) and a dense
    /// classifier with batch norm.
    Mlp { hidden: Vec<usize> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub nl: usize,
    pub nf: usize,
}

/// Changes a user makes on the command line. A list of one value applies to every block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub bits: Option<Precision>,
    pub wbits: Option<Precision>,
    pub abits: Option<Precision>,
    pub nl: Option<Vec<usize>>,
    pub nf: Option<Vec<usize>>,
    pub hidden: Option<Vec<usize>>,
}

/// A layer after expansion, with its name, resolved precision and inferred shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerPlan {
    pub name: String,
    pub op: Op,
    pub input: Shape,
    pub output: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Op {
    Conv2d {
        filters: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        weights: Precision,
        bias: bool,
    },
    Dense {
        units: usize,
        weights: Precision,
        bias: bool,
    },
    #[serde(rename = "batchnorm")]
    BatchNorm,
    Act {
        bits: Precision,
    },
    #[serde(rename = "maxpool")]
    MaxPool {
        size: usize,
        stride: usize,
    },
    /// Average of each channel over non-overlapping-or-strided windows of `size` x `size`.
    #[serde(rename = "avgpool")]
    AvgPool {
        size: usize,
        stride: usize,
    },
    /// The previous layer's output plus the output of layer `from` (an index into the
    /// network's layers, always earlier), of the same shape and precision.
    Add {
        from: usize,
    },
    Flatten,
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::Dense { .. } => "dense",
            Op::BatchNorm => "batchnorm",
            Op::Act { .. } => "act",
            Op::MaxPool { .. } => "maxpool",
            Op::AvgPool { .. } => "avgpool",
            Op::Add { .. } => "add",
            Op::Flatten => "flatten",
        }
    }

    /// The earlier layer (an index into the network's layers) the layer reads beside the
    /// previous one: an add's skip connection.
    pub fn skip_from(&self) -> Option<usize> {
        match *self {
            Op::Add { from } => Some(from),
            _ => None,
        }
    }

    /// Weight precision of a layer that multiplies by weights.
    pub fn weight_precision(&self) -> Option<Precision> {
        match self {
            Op::Conv2d { weights, .. } | Op::Dense { weights, .. } => Some(*weights),
            _ => None,
        }
    }
}

impl LayerPlan {
    /// Multiply-accumulates of one inference (at most [`limits::MAX_NETWORK_MACS`] in a
    /// validated network).
    pub fn macs(&self) -> u64 {
        self.checked_macs().unwrap_or(u64::MAX)
    }

    /// Trainable weights, not counting batch-norm parameters or biases (at most
    /// [`limits::MAX_NETWORK_WEIGHTS`] in a validated network).
    pub fn weights(&self) -> u64 {
        self.checked_weights().unwrap_or(u64::MAX)
    }

    /// Weights feeding one output value: kernel x kernel x input channels, or the input.
    fn fan_in(&self) -> Option<u64> {
        match self.op {
            Op::Conv2d { kernel, .. } => (kernel as u64)
                .checked_mul(kernel as u64)?
                .checked_mul(self.input.channels as u64),
            Op::Dense { .. } => self.input.checked_len().map(|len| len as u64),
            _ => Some(0),
        }
    }

    fn checked_macs(&self) -> Option<u64> {
        (self.output.checked_len()? as u64).checked_mul(self.fan_in()?)
    }

    fn checked_weights(&self) -> Option<u64> {
        (self.output.channels as u64).checked_mul(self.fan_in()?)
    }
}

/// A validated network: the spec it came from and its expanded layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub spec: Spec,
    pub layers: Vec<LayerPlan>,
}

impl Network {
    pub fn input(&self) -> Shape {
        self.spec.input
    }

    pub fn classes(&self) -> usize {
        self.spec.classes
    }

    /// Bytes that the network's parameters and activations take while it trains with a batch
    /// of `batch` images, at the peak (the end of a forward pass and the first backward steps).
    /// `None` if the count overflows. `train::memory::peak_bytes` adds the program and the
    /// data; docs/limits.md compares the sum with measured peaks.
    ///
    /// - Each weight: value, gradient, two Adam moments and its quantized value (f32), and one
    ///   byte of straight-through mask.
    /// - Each output channel of a MAC or batch norm: about a dozen f32 of bias, batch-norm
    ///   parameters, moments and statistics.
    /// - Each image of the batch: what the layers keep for the backward pass (im2col rows of
    ///   convolutions and dense layers, normalised batch-norm inputs, activation masks, pool
    ///   winners, skip tensors and their gradients) plus the input and three tensors of the
    ///   largest layer in flight.
    pub fn training_bytes(&self, batch: usize) -> Option<u64> {
        const WEIGHT_BYTES: u64 = 5 * 4 + 1;
        const CHANNEL_BYTES: u64 = 12 * 4;
        let mut weights: u64 = 0;
        let mut channels: u64 = 0;
        let mut kept_per_image: u64 = 4 * self.input().checked_len()? as u64;
        let mut largest: u64 = kept_per_image;
        for layer in &self.layers {
            let output = layer.output.checked_len()? as u64;
            let input = layer.input.checked_len()? as u64;
            largest = largest.max(output).max(input);
            let kept = match layer.op {
                Op::Conv2d { .. } | Op::Dense { .. } => {
                    weights = weights.checked_add(layer.checked_weights()?)?;
                    channels = channels.checked_add(layer.output.channels as u64)?;
                    let rows =
                        (layer.output.height as u64).checked_mul(layer.output.width as u64)?;
                    rows.checked_mul(layer.fan_in()?)?.checked_mul(4)?
                }
                Op::BatchNorm => {
                    channels = channels.checked_add(layer.output.channels as u64)?;
                    output.checked_mul(4)?
                }
                Op::Act { .. } => output,
                Op::MaxPool { .. } => output.checked_mul(4)?,
                // The backward pass needs nothing of an average pool's input.
                Op::AvgPool { .. } => 0,
                // The skip tensor, kept from its layer until the add in the forward pass, and
                // its gradient, kept from the add back to that layer in the backward pass.
                Op::Add { .. } => output.checked_mul(8)?,
                Op::Flatten => 0,
            };
            kept_per_image = kept_per_image.checked_add(kept)?;
        }
        let per_image = kept_per_image.checked_add(largest.checked_mul(3 * 4)?)?;
        weights
            .checked_mul(WEIGHT_BYTES)?
            .checked_add(channels.checked_mul(CHANNEL_BYTES)?)?
            .checked_add(per_image.checked_mul(batch as u64)?)
    }
}

impl Spec {
    /// Reads a spec from a `.toml` or `.json` file (by extension; anything else is read as TOML).
    pub fn from_file(path: &Path) -> Result<Spec, SpecError> {
        let file = path.display().to_string();
        let text = crate::input::read_config(path).map_err(|e| SpecError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let is_json = path.extension().is_some_and(|ext| ext == "json");
        Spec::parse(&text, is_json, &file)
    }

    /// Parses spec text; `origin` names the file in errors.
    pub fn parse(text: &str, is_json: bool, origin: &str) -> Result<Spec, SpecError> {
        let error = |field: String, message: String| {
            let field = if field.is_empty() || field == "." {
                "(top level)".into()
            } else {
                field
            };
            // serde passes on only the text of the precision parser's error.
            let kind = if precision::is_precision_message(&message) {
                Kind::Precision
            } else {
                Kind::Syntax
            };
            SpecError::new(kind, origin, field, message)
        };
        if is_json {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                error(field, one_line(&inner.to_string()))
            })
        } else {
            let de = toml::Deserializer::parse(text)
                .map_err(|e| error(String::new(), toml_message(&e, text)))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                error(field, one_line(inner.message()))
            })
        }
    }

    /// Applies command-line overrides to the defaults and the template parameters.
    pub fn apply(&mut self, overrides: &Overrides, origin: &str) -> Result<(), SpecError> {
        let error = |flag: &str, message: String| SpecError::Flag {
            file: origin.to_string(),
            flag: flag.to_string(),
            message,
        };
        // Flags are checked as flags; the spec's own values are checked when it is built.
        for (flag, values, max) in [
            ("--nl", &overrides.nl, limits::MAX_LAYERS),
            ("--nf", &overrides.nf, limits::MAX_WIDTH),
            ("--hidden", &overrides.hidden, limits::MAX_WIDTH),
        ] {
            let values = values.as_deref().unwrap_or_default();
            if values.len() > limits::MAX_LAYERS {
                return Err(error(
                    flag,
                    format!(
                        "{} values are more than the limit of {} layers (see docs/limits.md)",
                        values.len(),
                        limits::MAX_LAYERS
                    ),
                ));
            }
            for &value in values {
                at_most(value, max).map_err(|message| error(flag, message))?;
            }
        }
        if let Some(bits) = overrides.bits {
            self.precision.weights = bits;
            self.precision.activations = bits;
        }
        if let Some(bits) = overrides.wbits {
            self.precision.weights = bits;
        }
        if let Some(bits) = overrides.abits {
            self.precision.activations = bits;
        }
        let per_block = |values: &Vec<usize>, count: usize, flag: &str| {
            if values.len() == 1 || values.len() == count {
                Ok((0..count)
                    .map(|i| values[if values.len() == 1 { 0 } else { i }])
                    .collect::<Vec<_>>())
            } else {
                Err(error(
                    flag,
                    format!(
                        "{} values given for a template of {count} blocks (give 1 or {count})",
                        values.len()
                    ),
                ))
            }
        };
        match &mut self.template {
            Some(Template::Blocks { blocks, hidden }) => {
                if let Some(nl) = &overrides.nl {
                    let values = per_block(nl, blocks.len(), "--nl")?;
                    for (block, nl) in blocks.iter_mut().zip(values) {
                        block.nl = nl;
                    }
                }
                if let Some(nf) = &overrides.nf {
                    let values = per_block(nf, blocks.len(), "--nf")?;
                    for (block, nf) in blocks.iter_mut().zip(values) {
                        block.nf = nf;
                    }
                }
                if let Some(new_hidden) = &overrides.hidden {
                    hidden.clone_from(new_hidden);
                }
            }
            Some(Template::Mlp { hidden }) => {
                if overrides.nl.is_some() || overrides.nf.is_some() {
                    return Err(error(
                        "--nl/--nf",
                        "apply to the block template only; this spec uses the mlp template (use --hidden)"
                            .into(),
                    ));
                }
                if let Some(new_hidden) = &overrides.hidden {
                    hidden.clone_from(new_hidden);
                }
            }
            None => {
                if overrides.nl.is_some() || overrides.nf.is_some() || overrides.hidden.is_some() {
                    return Err(error(
                        "--nl/--nf/--hidden",
                        "apply to template specs only; this spec lists its layers".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Expands the template, names the layers, infers every shape and checks the whole network.
    pub fn build(&self, origin: &str) -> Result<Network, SpecError> {
        let error = |kind: Kind, field: String, message: String| {
            SpecError::new(kind, origin, field, message)
        };
        if self.name.is_empty() || !is_identifier(&self.name) {
            return Err(error(
                Kind::Value,
                "name".into(),
                format!(
                    "'{}' is not a valid name (letters, digits and '_', not starting with a digit)",
                    self.name
                ),
            ));
        }
        for (field, size) in [
            ("input.height", self.input.height),
            ("input.width", self.input.width),
            ("input.channels", self.input.channels),
            ("classes", self.classes),
        ] {
            if size == 0 {
                return Err(error(
                    Kind::Value,
                    field.into(),
                    "must be at least 1".into(),
                ));
            }
        }
        if self.classes < 2 {
            return Err(error(
                Kind::Value,
                "classes".into(),
                "must be at least 2".into(),
            ));
        }
        let (dh, dw, dc) = self.dataset.shape();
        if (self.input.height, self.input.width, self.input.channels) != (dh, dw, dc) {
            return Err(error(
                Kind::Shape,
                "input".into(),
                format!(
                    "{} does not match the {} images ({dh}x{dw}x{dc})",
                    self.input,
                    self.dataset.name()
                ),
            ));
        }
        if self.classes != self.dataset.classes() {
            return Err(error(
                Kind::Value,
                "classes".into(),
                format!(
                    "{} does not match the {} classes of {}",
                    self.classes,
                    self.dataset.classes(),
                    self.dataset.name()
                ),
            ));
        }
        if self.layers.len() > limits::MAX_LAYERS {
            return Err(error(
                Kind::Limit,
                "layers".into(),
                format!(
                    "{} layers are more than the limit of {} (see docs/limits.md)",
                    self.layers.len(),
                    limits::MAX_LAYERS
                ),
            ));
        }
        let layers = match (&self.template, self.layers.is_empty()) {
            (Some(_), false) => {
                return Err(error(
                    Kind::Value,
                    "layers".into(),
                    "give either layers or a template, not both".into(),
                ))
            }
            (None, true) => {
                return Err(error(
                    Kind::Value,
                    "layers".into(),
                    "the network has no layers (give layers or a template)".into(),
                ))
            }
            (Some(template), true) => self.expand(template, origin)?,
            (None, false) => self
                .layers
                .iter()
                .enumerate()
                .map(|(i, layer)| (format!("layers[{i}]"), layer.clone()))
                .collect(),
        };

        let mut counters = std::collections::BTreeMap::<&str, usize>::new();
        let mut names = BTreeSet::new();
        let (mut total_weights, mut total_macs) = (0u64, 0u64);
        let mut shape = self.input;
        let mut plans = Vec::with_capacity(layers.len());
        for (field, layer) in &layers {
            let (name, op) = self.resolve(layer, shape, &plans, origin, field)?;
            let kind = op.kind();
            let name = match name {
                Some(name) => {
                    if !is_identifier(&name) {
                        return Err(error(Kind::Value,
                            format!("{field}.name"),
                            format!("'{name}' is not a valid layer name (letters, digits and '_', not starting with a digit, at most 64)"),
                        ));
                    }
                    name
                }
                None => {
                    let count = counters.entry(kind).or_insert(0);
                    *count += 1;
                    format!("{}{}", short_name(kind), count)
                }
            };
            if !names.insert(name.clone()) {
                return Err(error(
                    Kind::Value,
                    format!("{field}.name"),
                    format!("layer name '{name}' is used twice"),
                ));
            }
            let output = infer_shape(&op, shape)
                .map_err(|(kind, message)| error(kind, format!("{field} ({name})"), message))?;
            let plan = LayerPlan {
                name,
                op,
                input: shape,
                output,
            };
            total_weights = plan
                .checked_weights()
                .and_then(|w| w.checked_add(total_weights))
                .filter(|&w| w <= limits::MAX_NETWORK_WEIGHTS)
                .ok_or_else(|| {
                    error(
                        Kind::Limit,
                        format!("{field} ({})", plan.name),
                        format!(
                            "the network has more than {} weights, the limit (see docs/limits.md)",
                            limits::MAX_NETWORK_WEIGHTS
                        ),
                    )
                })?;
            total_macs = plan
                .checked_macs()
                .and_then(|m| m.checked_add(total_macs))
                .filter(|&m| m <= limits::MAX_NETWORK_MACS)
                .ok_or_else(|| {
                    error(Kind::Limit,
                        format!("{field} ({})", plan.name),
                        format!(
                            "the network needs more than {} MACs an image, the limit (see docs/limits.md)",
                            limits::MAX_NETWORK_MACS
                        ),
                    )
                })?;
            plans.push(plan);
            shape = output;
        }
        check_skips_and_averages(&plans, &layers, origin)?;
        if shape != Shape::flat(self.classes) {
            return Err(error(
                Kind::Shape,
                "layers".into(),
                format!(
                    "the network ends in {shape} but must end in 1x1x{} (one logit per class)",
                    self.classes
                ),
            ));
        }
        if !plans
            .iter()
            .any(|l| matches!(l.op, Op::Conv2d { .. } | Op::Dense { .. }))
        {
            return Err(error(
                Kind::Order,
                "layers".into(),
                "the network has no conv2d or dense layer".into(),
            ));
        }
        Ok(Network {
            spec: self.clone(),
            layers: plans,
        })
    }

    /// The op a layer spec stands for, given the shape it reads and the layers before it; an
    /// error names a field within the layer's `field`.
    fn resolve(
        &self,
        layer: &LayerSpec,
        input: Shape,
        before: &[LayerPlan],
        origin: &str,
        field: &str,
    ) -> Result<(Option<String>, Op), SpecError> {
        let weights = |w: &Option<Precision>| w.unwrap_or(self.precision.weights);
        Ok(match layer {
            LayerSpec::Conv2d(c) => (
                c.name.clone(),
                Op::Conv2d {
                    filters: c.filters,
                    kernel: c.kernel,
                    stride: c.stride,
                    padding: c.padding,
                    weights: weights(&c.wbits),
                    bias: c.bias,
                },
            ),
            LayerSpec::Dense(d) => (
                d.name.clone(),
                Op::Dense {
                    units: d.units,
                    weights: weights(&d.wbits),
                    bias: d.bias,
                },
            ),
            LayerSpec::BatchNorm(n) => (n.name.clone(), Op::BatchNorm),
            LayerSpec::Act(a) => (
                a.name.clone(),
                Op::Act {
                    bits: a.bits.unwrap_or(self.precision.activations),
                },
            ),
            LayerSpec::MaxPool(p) => (
                p.name.clone(),
                Op::MaxPool {
                    size: p.size,
                    stride: p.stride.unwrap_or(p.size),
                },
            ),
            LayerSpec::AvgPool(p) => {
                let size = match p.size {
                    Some(size) => size,
                    None if input.height == input.width => input.height,
                    None => {
                        return Err(SpecError::Shape {
                            file: origin.to_string(),
                            field: format!("{field}.size"),
                            message: format!(
                                "global average pooling needs a square input, not {input}"
                            ),
                        })
                    }
                };
                (
                    p.name.clone(),
                    Op::AvgPool {
                        size,
                        stride: p.stride.unwrap_or(size),
                    },
                )
            }
            LayerSpec::Add(a) => {
                let from = before
                    .iter()
                    .position(|l| l.name == a.from)
                    .ok_or_else(|| SpecError::UnknownLayer {
                        file: origin.to_string(),
                        field: format!("{field}.from"),
                        name: a.from.clone(),
                    })?;
                (a.name.clone(), Op::Add { from })
            }
            LayerSpec::Flatten(n) => (n.name.clone(), Op::Flatten),
        })
    }

    fn expand(
        &self,
        template: &Template,
        origin: &str,
    ) -> Result<Vec<(String, LayerSpec)>, SpecError> {
        let error = |kind: Kind, field: String, message: &str| {
            SpecError::new(kind, origin, field, message.to_string())
        };
        let mut layers = Vec::new();
        let mut push = |field: String, layer: LayerSpec| layers.push((field, layer));
        let dense_block =
            |push: &mut dyn FnMut(String, LayerSpec), field: String, units: usize, act: bool| {
                push(
                    field.clone(),
                    LayerSpec::Dense(DenseSpec {
                        name: None,
                        units,
                        wbits: None,
                        bias: false,
                    }),
                );
                push(field.clone(), LayerSpec::BatchNorm(NamedSpec::default()));
                if act {
                    push(field, LayerSpec::Act(ActSpec::default()));
                }
            };
        let too_large = |field: String, value: usize, max: usize| {
            at_most(value, max).map_err(|message| error(Kind::Limit, field, &message))
        };
        // Count the layers before making any: a huge nl or hidden list is refused unbuilt.
        let layer_count = match template {
            Template::Blocks { blocks, hidden } => {
                let mut count = 2 + 3 * hidden.len().min(limits::MAX_LAYERS);
                for (b, block) in blocks.iter().enumerate() {
                    let field = format!("template.blocks[{b}]");
                    too_large(format!("{field}.nl"), block.nl, limits::MAX_LAYERS)?;
                    too_large(format!("{field}.nf"), block.nf, limits::MAX_WIDTH)?;
                    count = count.saturating_add(3 * block.nl + 1);
                }
                count
            }
            Template::Mlp { hidden } => 3 + 3 * hidden.len().min(limits::MAX_LAYERS),
        };
        let hidden = match template {
            Template::Blocks { hidden, .. } | Template::Mlp { hidden } => hidden,
        };
        for (h, &units) in hidden.iter().enumerate() {
            too_large(format!("template.hidden[{h}]"), units, limits::MAX_WIDTH)?;
        }
        if layer_count > limits::MAX_LAYERS {
            return Err(error(
                Kind::Limit,
                "template".into(),
                &format!(
                    "expands to more than {} layers, the limit (see docs/limits.md)",
                    limits::MAX_LAYERS
                ),
            ));
        }
        let hidden = match template {
            Template::Blocks { blocks, hidden } => {
                if blocks.is_empty() {
                    return Err(error(
                        Kind::Value,
                        "template.blocks".into(),
                        "needs at least one block",
                    ));
                }
                for (b, block) in blocks.iter().enumerate() {
                    let field = format!("template.blocks[{b}]");
                    if block.nl == 0 {
                        return Err(error(
                            Kind::Value,
                            format!("{field}.nl"),
                            "must be at least 1",
                        ));
                    }
                    if block.nf == 0 {
                        return Err(error(
                            Kind::Value,
                            format!("{field}.nf"),
                            "must be at least 1",
                        ));
                    }
                    for _ in 0..block.nl {
                        push(
                            field.clone(),
                            LayerSpec::Conv2d(Conv2dSpec {
                                name: None,
                                filters: block.nf,
                                kernel: 3,
                                stride: 1,
                                padding: 1,
                                wbits: None,
                                bias: false,
                            }),
                        );
                        push(field.clone(), LayerSpec::BatchNorm(NamedSpec::default()));
                        push(field.clone(), LayerSpec::Act(ActSpec::default()));
                    }
                    push(
                        field.clone(),
                        LayerSpec::MaxPool(MaxPoolSpec {
                            name: None,
                            size: 2,
                            stride: None,
                        }),
                    );
                }
                push("template".into(), LayerSpec::Flatten(NamedSpec::default()));
                hidden
            }
            Template::Mlp { hidden } => {
                push("template".into(), LayerSpec::Flatten(NamedSpec::default()));
                hidden
            }
        };
        for (h, &units) in hidden.iter().enumerate() {
            if units == 0 {
                return Err(error(
                    Kind::Value,
                    format!("template.hidden[{h}]"),
                    "must be at least 1",
                ));
            }
            dense_block(&mut push, format!("template.hidden[{h}]"), units, true);
        }
        dense_block(&mut push, "template".into(), self.classes, false);
        Ok(layers)
    }
}

/// Infers the output shape of one layer, or says why the input does not fit; the shape is
/// within the limits.
/// What adds and average pools need of their neighbours: both inputs of an add are activation
/// codes of one shape and precision (so one scale), and an act follows every add and average
/// pool to requantize its sums.
fn check_skips_and_averages(
    plans: &[LayerPlan],
    fields: &[(String, LayerSpec)],
    origin: &str,
) -> Result<(), SpecError> {
    let act_bits = |i: usize| match plans[i].op {
        Op::Act { bits } => Some(bits),
        _ => None,
    };
    for (i, plan) in plans.iter().enumerate() {
        let error = |kind: Kind, message: String| {
            SpecError::new(
                kind,
                origin,
                format!("{} ({})", fields[i].0, plan.name),
                message,
            )
        };
        let kind = plan.op.kind();
        match plan.op {
            Op::Add { from } => {
                let source = &plans[from];
                if source.output != plan.input {
                    return Err(error(
                        Kind::Shape,
                        format!(
                            "adds {} ({}) to {}, which has another shape",
                            source.name, source.output, plan.input
                        ),
                    ));
                }
                let main = i.checked_sub(1).and_then(act_bits);
                match (main, act_bits(from)) {
                    (Some(a), Some(b)) if a == b => {}
                    (Some(a), Some(b)) => {
                        return Err(error(Kind::Precision, format!(
                            "adds activations of {b} to activations of {a}: both inputs need one precision"
                        )))
                    }
                    _ => {
                        return Err(error(Kind::Order, format!(
                            "both inputs must be outputs of act layers ({} and {})",
                            i.checked_sub(1).map_or("the image", |p| plans[p].name.as_str()),
                            source.name
                        )))
                    }
                }
            }
            Op::AvgPool { .. } => {
                let reads_codes = i
                    .checked_sub(1)
                    .is_some_and(|p| matches!(plans[p].op, Op::Act { .. } | Op::MaxPool { .. }));
                if !reads_codes {
                    return Err(error(
                        Kind::Order,
                        "must read the output of an act (or max-pool) layer".into(),
                    ));
                }
            }
            _ => continue,
        }
        if plans.get(i + 1).and_then(|_| act_bits(i + 1)).is_none() {
            return Err(error(
                Kind::Order,
                format!("{kind} must be followed by an act layer, which requantizes its sums"),
            ));
        }
    }
    Ok(())
}

fn infer_shape(op: &Op, input: Shape) -> Result<Shape, (Kind, String)> {
    let output = infer_shape_unchecked(op, input)?;
    if let Op::Conv2d { filters: width, .. } | Op::Dense { units: width, .. } = *op {
        at_most(width, limits::MAX_WIDTH).map_err(|m| (Kind::Limit, format!("width {m}")))?;
    }
    match output.checked_len() {
        Some(len) if len <= limits::MAX_TENSOR_LEN => Ok(output),
        _ => Err((
            Kind::Limit,
            format!(
                "its output {output} has more than {} values, the limit (see docs/limits.md)",
                limits::MAX_TENSOR_LEN
            ),
        )),
    }
}

fn infer_shape_unchecked(op: &Op, input: Shape) -> Result<Shape, (Kind, String)> {
    let at_least_one = |what: &str, value: usize| {
        if value == 0 {
            Err((Kind::Value, format!("{what} must be at least 1")))
        } else {
            Ok(())
        }
    };
    let window = |what: &str, size: usize, stride: usize, padding: usize| {
        let padded_h = input.height + 2 * padding;
        let padded_w = input.width + 2 * padding;
        if size > padded_h || size > padded_w {
            return Err((
                Kind::Shape,
                format!(
                    "{what} {size}x{size} does not fit the input {input} with padding {padding}"
                ),
            ));
        }
        Ok((
            (padded_h - size) / stride + 1,
            (padded_w - size) / stride + 1,
        ))
    };
    match *op {
        Op::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            ..
        } => {
            at_least_one("filters", filters)?;
            at_least_one("kernel", kernel)?;
            at_least_one("stride", stride)?;
            if kernel > MAX_WINDOW || stride > MAX_WINDOW {
                return Err((
                    Kind::Limit,
                    format!("kernel {kernel} and stride {stride} must be at most {MAX_WINDOW}"),
                ));
            }
            if padding >= kernel {
                return Err((
                    Kind::Value,
                    format!("padding {padding} must be smaller than the kernel {kernel}"),
                ));
            }
            let (height, width) = window("kernel", kernel, stride, padding)?;
            Ok(Shape {
                height,
                width,
                channels: filters,
            })
        }
        Op::Dense { units, .. } => {
            at_least_one("units", units)?;
            if !input.is_flat() {
                return Err((
                    Kind::Shape,
                    format!(
                        "dense needs a flat input (1x1xC) but gets {input}; insert a flatten layer"
                    ),
                ));
            }
            Ok(Shape::flat(units))
        }
        Op::MaxPool { size, stride } => {
            at_least_one("size", size)?;
            at_least_one("stride", stride)?;
            if size > MAX_WINDOW || stride > MAX_WINDOW {
                return Err((
                    Kind::Limit,
                    format!("pool size {size} and stride {stride} must be at most {MAX_WINDOW}"),
                ));
            }
            let (height, width) = window("pool window", size, stride, 0)?;
            Ok(Shape {
                height,
                width,
                channels: input.channels,
            })
        }
        Op::AvgPool { size, stride } => {
            at_least_one("size", size)?;
            at_least_one("stride", stride)?;
            if size > MAX_WINDOW || stride > MAX_WINDOW {
                return Err((
                    Kind::Limit,
                    format!("pool size {size} and stride {stride} must be at most {MAX_WINDOW}"),
                ));
            }
            let (height, width) = window("pool window", size, stride, 0)?;
            Ok(Shape {
                height,
                width,
                channels: input.channels,
            })
        }
        Op::Flatten => Ok(Shape::flat(input.len())),
        Op::BatchNorm | Op::Act { .. } | Op::Add { .. } => Ok(input),
    }
}

fn short_name(kind: &str) -> &'static str {
    match kind {
        "conv2d" => "conv",
        "dense" => "fc",
        "batchnorm" => "bn",
        "act" => "act",
        "maxpool" => "pool",
        "avgpool" => "avgpool",
        "add" => "add",
        _ => "flatten",
    }
}

/// A name that is safe as an identifier in every generated language: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let place = error
        .span()
        .map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: ")
        })
        .unwrap_or_default();
    format!("{place}{}", one_line(error.message()))
}

#[cfg(test)]
mod tests;
