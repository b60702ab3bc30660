//! Datasets for training and evaluation: Fashion-MNIST and MNIST (IDX files) and CIFAR-10 (binary batches).

pub mod cifar10;
pub mod idx;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Default folder of Debian's package `dataset-fashion-mnist`.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

pub use crate::spec::DatasetKind;

impl DatasetKind {
    /// Folder where a system package installs the dataset, if there is one.
    pub fn default_dir(self) -> Option<&'static Path> {
        match self {
            DatasetKind::FashionMnist => Some(Path::new(FASHION_MNIST_DIR)),
            DatasetKind::Mnist | DatasetKind::Cifar10 => None,
        }
    }

    /// What to tell a user whose data folder is missing.
    fn folder_hint(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => {
                "install Fashion-MNIST with 'apt-get install dataset-fashion-mnist' \
                 or point --data at a folder holding the IDX files"
            }
            DatasetKind::Mnist => "point --data at a folder holding the MNIST IDX files",
            DatasetKind::Cifar10 => {
                "point --data at a folder holding the CIFAR-10 binary batches \
                 (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)"
            }
        }
    }
}

/// Which part of a dataset to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Images as 8-bit pixels in HWC order (for CIFAR, convert its CHW records to HWC), labels 0..classes.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub classes: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    /// An empty dataset with the shape and classes of `kind`.
    fn empty(kind: DatasetKind) -> Dataset {
        let (height, width, channels) = kind.shape();
        Dataset {
            height,
            width,
            channels,
            classes: kind.classes(),
            images: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn pixels_per_image(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Pixels of image `i` in HWC order. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.pixels_per_image();
        &self.images[i * size..(i + 1) * size]
    }

    /// Keeps the first `n` images (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.pixels_per_image());
    }
}

/// Loads one split. `dir` None -> kind.default_dir(); if that is None too -> DataError::NoFolder.
///
/// Fashion-MNIST and MNIST read `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each gzipped (`.gz`, preferred) or raw.
/// CIFAR-10 reads `data_batch_1.bin` .. `data_batch_5.bin` (train; those that exist, at least the
/// first) or `test_batch.bin` (test), in `dir` or in its subfolder `cifar-10-batches-bin`.
/// `limit` Some(n) keeps the first n images; the files are validated in full regardless.
pub fn load(
    kind: DatasetKind,
    dir: Option<&Path>,
    split: Split,
    limit: Option<usize>,
) -> Result<Dataset, DataError> {
    let dir = match dir {
        Some(dir) => dir,
        None => kind.default_dir().ok_or(DataError::NoFolder { kind })?,
    };
    check_folder(kind, dir)?;
    let mut dataset = match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => idx::load_split(kind, dir, split)?,
        DatasetKind::Cifar10 => cifar10::load_split(dir, split)?,
    };
    if let Some(n) = limit {
        dataset.truncate(n);
    }
    Ok(dataset)
}

/// Deterministic permutation of 0..n for a seed and an epoch.
///
/// Seed and epoch fill separate words of the ChaCha8 key, so every (seed, epoch) pair gets its
/// own stream; ChaCha8 and rand's Fisher-Yates shuffle are portable, so the result is the same on
/// every machine.
pub fn shuffled_indices(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(epoch as u64).to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(&mut rng);
    indices
}

/// Why a dataset could not be loaded. Every message is one line naming the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("no data folder given for {kind} and it has no default folder; {}", .kind.folder_hint())]
    NoFolder { kind: DatasetKind },

    #[error("{}: data folder not found; {hint}", .path.display())]
    FolderNotFound { path: PathBuf, hint: &'static str },

    #[error("{}: not a folder; {hint}", .path.display())]
    NotAFolder { path: PathBuf, hint: &'static str },

    #[error("{}: no {name} in this folder", .dir.display())]
    MissingFile { dir: PathBuf, name: String },

    #[error("{}: {error}", .path.display())]
    Io { path: PathBuf, error: io::Error },

    #[error("{}: corrupt gzip stream: {error}", .path.display())]
    CorruptGzip { path: PathBuf, error: io::Error },

    #[error(
        "{}: magic number {found:#010x} {reason} (expected {expected:#010x} for {content})",
        .path.display()
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        reason: String,
        expected: u32,
        content: &'static str,
    },

    #[error("{}: truncated: {promise} but {actual} bytes follow", .path.display())]
    Truncated {
        path: PathBuf,
        promise: String,
        actual: u64,
    },

    #[error("{}: trailing bytes: {promise} but {actual} bytes follow", .path.display())]
    TrailingBytes {
        path: PathBuf,
        promise: String,
        actual: u64,
    },

    #[error(
        "{}: images are {rows}x{cols} but {kind} images are {expected_rows}x{expected_cols}",
        .path.display()
    )]
    ShapeMismatch {
        path: PathBuf,
        rows: usize,
        cols: usize,
        kind: DatasetKind,
        expected_rows: usize,
        expected_cols: usize,
    },

    #[error(
        "{}: label count {labels} does not match image count {images} in {}",
        .labels_path.display(),
        .images_path.display()
    )]
    CountMismatch {
        labels_path: PathBuf,
        labels: usize,
        images: usize,
        images_path: PathBuf,
    },

    #[error(
        "{}: label {label} at index {index} is out of range for {classes} classes",
        .path.display()
    )]
    LabelOutOfRange {
        path: PathBuf,
        label: u8,
        index: usize,
        classes: usize,
    },

    #[error(
        "{}: length {len} bytes is not a positive multiple of the {record}-byte CIFAR-10 record \
         (1 label byte + 3072 pixel bytes)",
        .path.display(),
        record = cifar10::RECORD_LEN
    )]
    CifarLength { path: PathBuf, len: u64 },
}

impl DataError {
    fn io(path: &Path, error: io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Distinguishes a missing folder (with advice on getting the data) from other I/O failures.
fn check_folder(kind: DatasetKind, dir: &Path) -> Result<(), DataError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DataError::NotAFolder {
            path: dir.to_path_buf(),
            hint: kind.folder_hint(),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(DataError::FolderNotFound {
            path: dir.to_path_buf(),
            hint: kind.folder_hint(),
        }),
        Err(error) => Err(DataError::io(dir, error)),
    }
}

/// Rejects the first label that is not below `classes`.
fn check_labels(path: &Path, labels: &[u8], classes: usize) -> Result<(), DataError> {
    match labels
        .iter()
        .position(|&label| usize::from(label) >= classes)
    {
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            label: labels[index],
            index,
            classes,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::idx::tests::write_idx_split;
    use super::*;

    #[test]
    fn kind_names_shapes_and_serde() {
        for kind in [
            DatasetKind::FashionMnist,
            DatasetKind::Mnist,
            DatasetKind::Cifar10,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let back: DatasetKind = serde_json::from_str(&json).unwrap();
            assert_eq!(back, kind);
            assert_eq!(kind.to_string(), kind.name());
            assert_eq!(kind.classes(), 10);
        }
        assert_eq!(DatasetKind::FashionMnist.name(), "fashion-mnist");
        assert_eq!(DatasetKind::Mnist.name(), "mnist");
        assert_eq!(DatasetKind::Cifar10.name(), "cifar10");
        assert_eq!(DatasetKind::Mnist.shape(), (28, 28, 1));
        assert_eq!(DatasetKind::Cifar10.shape(), (32, 32, 3));
        assert_eq!(
            DatasetKind::FashionMnist.default_dir(),
            Some(Path::new(FASHION_MNIST_DIR))
        );
        assert_eq!(DatasetKind::Mnist.default_dir(), None);
        assert_eq!(DatasetKind::Cifar10.default_dir(), None);
    }

    #[test]
    fn dataset_accessors_and_truncate() {
        let mut dataset = Dataset {
            height: 2,
            width: 1,
            channels: 1,
            classes: 10,
            images: vec![1, 2, 3, 4, 5, 6],
            labels: vec![7, 8, 9],
        };
        assert_eq!(dataset.len(), 3);
        assert!(!dataset.is_empty());
        assert_eq!(dataset.pixels_per_image(), 2);
        assert_eq!(dataset.image(1), &[3, 4]);
        dataset.truncate(usize::MAX);
        assert_eq!(dataset.len(), 3);
        dataset.truncate(2);
        assert_eq!(dataset.labels, [7, 8]);
        assert_eq!(dataset.images, [1, 2, 3, 4]);
        dataset.truncate(0);
        assert!(dataset.is_empty());
        assert!(dataset.images.is_empty());
    }

    #[test]
    fn missing_folder_suggests_the_debian_package() {
        let tmp = tempfile::tempdir().unwrap();
        let nope = tmp.path().join("nope");
        let err = load(DatasetKind::FashionMnist, Some(&nope), Split::Test, None).unwrap_err();
        assert!(matches!(err, DataError::FolderNotFound { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("{}: data folder not found", nope.display())));
        assert!(
            message.contains("apt-get install dataset-fashion-mnist"),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }

    #[test]
    fn file_instead_of_folder_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        let err = load(DatasetKind::Mnist, Some(&file), Split::Test, None).unwrap_err();
        assert!(matches!(err, DataError::NotAFolder { .. }), "{err:?}");
    }

    #[test]
    fn no_folder_given_and_no_default() {
        let err = load(DatasetKind::Mnist, None, Split::Train, None).unwrap_err();
        assert!(matches!(err, DataError::NoFolder { .. }), "{err:?}");
        assert!(err.to_string().contains("--data"));
    }

    #[test]
    fn limit_keeps_the_first_images() {
        let tmp = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..5 * 784).map(|i| (i % 251) as u8).collect();
        write_idx_split(
            tmp.path(),
            "train",
            5,
            28,
            28,
            &pixels,
            &[0, 1, 2, 3, 4],
            true,
        );
        let dataset = load(DatasetKind::Mnist, Some(tmp.path()), Split::Train, Some(2)).unwrap();
        assert_eq!(dataset.len(), 2);
        assert_eq!(dataset.labels, [0, 1]);
        assert_eq!(dataset.images, pixels[..2 * 784]);
        let all = load(DatasetKind::Mnist, Some(tmp.path()), Split::Train, Some(99)).unwrap();
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn limit_does_not_skip_validation() {
        let tmp = tempfile::tempdir().unwrap();
        write_idx_split(
            tmp.path(),
            "t10k",
            3,
            28,
            28,
            &[0; 3 * 784],
            &[0, 1, 10],
            false,
        );
        let err = load(DatasetKind::Mnist, Some(tmp.path()), Split::Test, Some(1)).unwrap_err();
        assert!(
            matches!(err, DataError::LabelOutOfRange { index: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn shuffled_indices_is_a_deterministic_permutation() {
        let n = 1000;
        let first = shuffled_indices(n, 42, 0);
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        assert_eq!(first, shuffled_indices(n, 42, 0));
        assert_ne!(first, shuffled_indices(n, 42, 1));
        assert_ne!(first, shuffled_indices(n, 43, 0));
        assert!(shuffled_indices(0, 1, 2).is_empty());
        assert_eq!(shuffled_indices(1, 1, 2), [0]);
    }

    /// Pins the exact order so a change in the generator or shuffle shows up as a failure rather
    /// than as silently different training runs.
    #[test]
    fn shuffled_indices_is_stable_across_versions() {
        assert_eq!(shuffled_indices(10, 7, 3), [9, 4, 5, 6, 2, 3, 1, 7, 0, 8]);
    }

    #[test]
    fn real_fashion_mnist_test_split() {
        let dir = Path::new(FASHION_MNIST_DIR);
        if !dir.is_dir() {
            eprintln!("skipped: {FASHION_MNIST_DIR} not installed");
            return;
        }
        let dataset = load(DatasetKind::FashionMnist, None, Split::Test, None).unwrap();
        assert_eq!(dataset.len(), 10_000);
        assert_eq!(
            (dataset.height, dataset.width, dataset.channels),
            (28, 28, 1)
        );
        assert_eq!(dataset.images.len(), 10_000 * 784);
        assert!(dataset.labels.iter().all(|&label| label < 10));
    }
}
