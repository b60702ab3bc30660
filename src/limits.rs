//! Upper bounds on every size a user gives, in a spec, a sweep, a model or IR file, or a flag.
//!
//! Each bound is far beyond any network qnnc is meant for, and small enough that every size
//! computed from it fits in 64 bits and every allocation it allows is bounded. They are checked
//! where the number is read (spec expansion, IR loading and verification, command-line flags)
//! before anything is allocated from it. docs/limits.md lists them for users.

/// Layers of one network after its template is expanded (every conv, batch norm, activation,
/// pool, flatten and dense counts). Deep networks of the literature have a few hundred; the
/// IR, the golden model and the RTL descriptor table all grow linearly with it.
pub const MAX_LAYERS: usize = 4096;

/// Output channels of one layer: filters, dense units, hidden widths, `nf`. Over a million is
/// beyond any quantized network, and keeps per-channel tables (batch norm, thresholds) small.
pub const MAX_WIDTH: usize = 1 << 20;

/// Side of a convolution kernel or pool window, and any stride or padding. Images are at
/// most 32x32, so larger windows cannot fit a padded input anyway.
pub const MAX_WINDOW: usize = 1024;

/// Values of one layer's output for one image (height x width x channels). A batch of 100
/// such tensors in f32 is 6.7 GB; larger layers need more memory than training can give.
pub const MAX_TENSOR_LEN: usize = 1 << 24;

/// Weights of a whole network: 4.3 billion, 16 GiB of f32 before any gradient.
pub const MAX_NETWORK_WEIGHTS: u64 = 1 << 32;

/// Multiply-accumulates of one inference of a whole network: about 10^12, a thousand times
/// a large ImageNet network. Energies stay far from overflowing an f64 below it.
pub const MAX_NETWORK_MACS: u64 = 1 << 40;

/// Passes over the training set. The record of every epoch is stored in the model file.
pub const MAX_EPOCHS: usize = 10_000;

/// Images in one training batch; more than the data sets hold.
pub const MAX_BATCH: usize = 1 << 16;

/// Images a `--train-limit` or `--test-limit` may ask for: more than any data set qnnc reads.
pub const MAX_IMAGES: usize = 1 << 24;

/// Output channels computed in parallel by the PE array (`--pe`).
pub const MAX_PE: usize = 1024;

/// Multiply lanes of each PE (`--simd`).
pub const MAX_SIMD: usize = 1024;

/// PE x SIMD: lanes of the whole array. A weight word is PE x SIMD x WBITS bits wide, so this
/// keeps one word at most 1 Mbit; real FPGA arrays have a few thousand lanes.
pub const MAX_LANES: usize = 1 << 16;

/// Largest energy constant of a hardware profile (in its own units). Profiles in picojoules
/// use values of 0.1 to a few thousand; this bound keeps every energy of a network within
/// the limits above finite.
pub const MAX_PROFILE_ENERGY: f64 = 1e15;

/// Largest exponent `beta` of a profile's MAC energy (about 1 to 2 in practice).
pub const MAX_PROFILE_BETA: f64 = 16.0;

/// Checks that `value` is at most `max`; the message says what the limit is.
pub fn at_most(value: usize, max: usize) -> Result<(), String> {
    if value > max {
        Err(format!(
            "{value} is larger than the limit of {max} (see docs/limits.md)"
        ))
    } else {
        Ok(())
    }
}
