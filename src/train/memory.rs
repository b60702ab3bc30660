//! The peak memory of `qnnc train`, estimated before anything is allocated, so that a network
//! too large for the machine is refused at once instead of being killed hours later, and the
//! memory the machine has.
//!
//! The estimate is the program itself plus the larger of two phases, each an upper bound of
//! what it holds:
//! - loading the training split: its images and the file being decoded;
//! - training: both splits (read whole even with `--train-limit`) and the network's training
//!   state ([`Network::training_bytes`]).
//!
//! After training, [`Net::release_training_state`] frees the gradients, optimizer moments and
//! cached activations, so that writing the model file stays below the training peak.
//! docs/limits.md compares the estimate with peaks measured for widths from 64 to 131,072.
//!
//! [`Net::release_training_state`]: super::Net::release_training_state

use std::path::Path;

use crate::data::DatasetKind;
use crate::spec::Network;

/// The program before any network or data (code, thread stacks, allocator arenas), measured
/// at 6 to 10 MiB resident on Linux x86-64, with margin.
pub const PROGRAM_BYTES: u64 = 12 << 20;

/// Images in the training and test splits of a data set, as qnnc reads them.
pub fn split_images(kind: DatasetKind) -> (u64, u64) {
    match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => (60_000, 10_000),
        DatasetKind::Cifar10 => (50_000, 10_000),
    }
}

/// Bytes of one image and its label in memory.
fn image_bytes(kind: DatasetKind) -> u64 {
    let (height, width, channels) = kind.shape();
    (height * width * channels) as u64 + 1
}

/// Bytes that loading the training split holds besides its images: the IDX file read whole
/// (compressed or not), or a CIFAR-10 batch file and its decoded copy. Measured from the files
/// in `dir` (the data set's default folder if `None`); the uncompressed size if there are none.
pub fn loading_bytes(kind: DatasetKind, dir: Option<&Path>) -> u64 {
    let size = |path: &Path| std::fs::metadata(path).ok().map(|m| m.len());
    let Some(dir) = dir.or(kind.default_dir()) else {
        return split_images(kind).0 * image_bytes(kind);
    };
    let found = match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => {
            ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"]
                .iter()
                .find_map(|name| size(&dir.join(name)))
        }
        DatasetKind::Cifar10 => [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
            .iter()
            .flat_map(|folder| (1..=5).map(move |i| folder.join(format!("data_batch_{i}.bin"))))
            .filter_map(|path| size(&path))
            .max()
            .map(|largest| 2 * largest),
    };
    found.unwrap_or(split_images(kind).0 * image_bytes(kind))
}

/// The peak resident memory of training `network` with batches of `batch` images on the data
/// in `data_dir`, or `None` if it is too large to count: the larger of loading the training
/// split and training with both splits in memory.
pub fn peak_bytes(network: &Network, batch: usize, data_dir: Option<&Path>) -> Option<u64> {
    let kind = network.spec.dataset;
    let (train, test) = split_images(kind);
    let loading = train * image_bytes(kind) + loading_bytes(kind, data_dir);
    let training = network
        .training_bytes(batch)?
        .checked_add((train + test) * image_bytes(kind))?;
    PROGRAM_BYTES.checked_add(loading.max(training))
}

/// Memory of this machine in bytes (Linux), or a conservative guess elsewhere; less when the
/// process's address space is limited (`ulimit -v`, as batch schedulers set it), since an
/// allocation past that limit aborts.
pub fn machine_memory_bytes() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(8 << 30);
    total.min(address_space_limit_bytes().unwrap_or(u64::MAX))
}

/// The soft limit on this process's address space (Linux), if there is one.
fn address_space_limit_bytes() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    // "Max address space   <soft>   <hard>   bytes": the soft limit, or "unlimited".
    line.trim_start_matches("Max address space")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Peak resident memory of this process in bytes since start or the last reset (Linux).
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// Resets the peak resident memory counter, so that the next reading covers what follows.
pub fn reset_peak_resident() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn mlp(hidden: usize) -> Network {
        let text = format!(
            "name = \"m\"\ninput = {{ height = 28, width = 28, channels = 1 }}\nclasses = 10\n\
             [template]\nkind = \"mlp\"\nhidden = [{hidden}]\n"
        );
        Spec::parse(&text, false, "m.toml")
            .and_then(|spec| spec.build("m.toml"))
            .unwrap()
    }

    #[test]
    fn the_estimate_covers_the_peaks_measured_in_the_readme() {
        // Peaks of `qnnc train examples/fmnist_mlp.toml --hidden W --bits 4 --epochs 1
        // --train-limit 200 --test-limit 100` (batch 100), in MiB, measured with
        // /usr/bin/time -v on Fashion-MNIST (gzipped files). The estimate must stay at or
        // above each, and within 25 %.
        // A stand-in of the gzipped training images, the size of Debian's.
        let data = tempfile::tempdir().unwrap();
        std::fs::File::create(data.path().join("train-images-idx3-ubyte.gz"))
            .and_then(|file| file.set_len(26_421_856))
            .unwrap();
        for (width, peak_mib) in [(64, 75.3), (1024, 78.5), (16384, 342.7), (131072, 2317.1)] {
            let estimate = peak_bytes(&mlp(width), 100, Some(data.path())).unwrap() as f64;
            let peak = peak_mib * (1u64 << 20) as f64;
            assert!(
                estimate >= peak && peak >= 0.75 * estimate,
                "width {width}: estimate {:.1} MiB, peak {peak_mib} MiB",
                estimate / (1u64 << 20) as f64
            );
        }
    }

    #[test]
    fn the_estimate_covers_the_peak_measured_for_the_resnet_example() {
        // Peak of `qnnc train examples/fmnist_resnet.toml --bits 4 --epochs 3 --lr 4e-3` on all
        // of Fashion-MNIST (gzipped files, batch 100), measured with /usr/bin/time: 177.3 MiB.
        // Its skip tensors and their gradients are part of the estimate.
        let data = tempfile::tempdir().unwrap();
        std::fs::File::create(data.path().join("train-images-idx3-ubyte.gz"))
            .and_then(|file| file.set_len(26_421_856))
            .unwrap();
        let file = "examples/fmnist_resnet.toml";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let network = Spec::from_file(&path).unwrap().build(file).unwrap();
        let estimate = peak_bytes(&network, 100, Some(data.path())).unwrap() as f64;
        let peak = 177.3 * (1u64 << 20) as f64;
        assert!(
            estimate >= peak && peak >= 0.75 * estimate,
            "estimate {:.1} MiB",
            estimate / (1u64 << 20) as f64
        );
    }

    #[test]
    fn the_training_state_dominates_wide_networks() {
        let network = mlp(131072);
        let weights: u64 = network.layers.iter().map(|l| l.weights()).sum();
        let estimate = peak_bytes(&network, 100, None).unwrap();
        // 21 bytes a weight (value, gradient, two moments, quantized copy, mask).
        assert!(
            estimate > 21 * weights && estimate < 25 * weights,
            "{estimate}"
        );
        assert_eq!(peak_bytes(&network, usize::MAX, None), None);
    }
}
