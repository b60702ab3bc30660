//! CIFAR-10 binary batches (`data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`).

use std::path::{Path, PathBuf};

use super::{check_labels, DataError, Dataset, DatasetKind, Split};

/// Pixels in one colour plane of a 32x32 image.
const PLANE: usize = 32 * 32;

/// Bytes in one record: a label, then the red, green and blue planes, each row-major.
pub const RECORD_LEN: usize = 1 + 3 * PLANE;

/// Folder name inside the official archive; batches are also looked for there.
const SUBFOLDER: &str = "cifar-10-batches-bin";

/// Reads one batch file, converting its CHW records to HWC images.
pub fn read_batch(path: &Path) -> Result<Dataset, DataError> {
    let bytes = crate::input::read_data(path).map_err(|error| DataError::io(path, error))?;
    if bytes.is_empty() || bytes.len() % RECORD_LEN != 0 {
        return Err(DataError::CifarLength {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
        });
    }
    let count = bytes.len() / RECORD_LEN;
    let mut dataset = Dataset::empty(DatasetKind::Cifar10);
    dataset.labels.reserve_exact(count);
    dataset.images.reserve_exact(count * 3 * PLANE);
    for record in bytes.chunks_exact(RECORD_LEN) {
        dataset.labels.push(record[0]);
        let (red, green_blue) = record[1..].split_at(PLANE);
        let (green, blue) = green_blue.split_at(PLANE);
        for ((&r, &g), &b) in red.iter().zip(green).zip(blue) {
            dataset.images.extend_from_slice(&[r, g, b]);
        }
    }
    check_labels(path, &dataset.labels, dataset.classes)?;
    Ok(dataset)
}

/// Loads the train batches (those of 1..=5 that exist; the first must) or the test batch.
pub(super) fn load_split(dir: &Path, split: Split) -> Result<Dataset, DataError> {
    let first = match split {
        Split::Train => "data_batch_1.bin",
        Split::Test => "test_batch.bin",
    };
    let folder = [dir.to_path_buf(), dir.join(SUBFOLDER)]
        .into_iter()
        .find(|folder| folder.join(first).is_file())
        .ok_or_else(|| DataError::MissingFile {
            dir: dir.to_path_buf(),
            name: format!("{first} (nor {SUBFOLDER}/{first})"),
        })?;
    let paths: Vec<PathBuf> = match split {
        Split::Train => (1..=5)
            .map(|i| folder.join(format!("data_batch_{i}.bin")))
            .filter(|path| path.is_file())
            .collect(),
        Split::Test => vec![folder.join(first)],
    };

    let mut dataset = Dataset::empty(DatasetKind::Cifar10);
    for path in &paths {
        let batch = read_batch(path)?;
        dataset.images.extend_from_slice(&batch.images);
        dataset.labels.extend_from_slice(&batch.labels);
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::*;
    use std::fs;

    /// A batch of `labels.len()` records whose pixel at (channel, y, x) of record n is
    /// `pixel(n, channel, y, x)`.
    fn batch_bytes(labels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (n, &label) in labels.iter().enumerate() {
            bytes.push(label);
            for channel in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        bytes.push(pixel(n, channel, y, x));
                    }
                }
            }
        }
        bytes
    }

    fn pixel(n: usize, channel: usize, y: usize, x: usize) -> u8 {
        ((n * 31 + channel * 101 + y * 7 + x) % 256) as u8
    }

    fn load_cifar(dir: &Path, split: Split) -> Result<Dataset, DataError> {
        load(DatasetKind::Cifar10, Some(dir), split, None)
    }

    #[test]
    fn round_trip_converts_chw_to_hwc() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("test_batch.bin"), batch_bytes(&[3, 8])).unwrap();
        let dataset = load_cifar(tmp.path(), Split::Test).unwrap();
        assert_eq!(
            (dataset.height, dataset.width, dataset.channels),
            (32, 32, 3)
        );
        assert_eq!(dataset.len(), 2);
        assert_eq!(dataset.labels, [3, 8]);
        assert_eq!(dataset.images.len(), 2 * 3072);
        let (n, y, x) = (1, 5, 17);
        let image = dataset.image(n);
        for channel in 0..3 {
            assert_eq!(image[(y * 32 + x) * 3 + channel], pixel(n, channel, y, x));
        }
        // Exhaustively, for good measure.
        for n in 0..2 {
            for y in 0..32 {
                for x in 0..32 {
                    for channel in 0..3 {
                        let hwc = dataset.image(n)[(y * 32 + x) * 3 + channel];
                        assert_eq!(hwc, pixel(n, channel, y, x));
                    }
                }
            }
        }
    }

    #[test]
    fn train_concatenates_existing_batches_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join(SUBFOLDER);
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("data_batch_1.bin"), batch_bytes(&[1])).unwrap();
        fs::write(sub.join("data_batch_3.bin"), batch_bytes(&[3, 4])).unwrap();
        let dataset = load(
            DatasetKind::Cifar10,
            Some(tmp.path()),
            Split::Train,
            Some(2),
        )
        .unwrap();
        assert_eq!(dataset.labels, [1, 3]);
        let full = load_cifar(tmp.path(), Split::Train).unwrap();
        assert_eq!(full.labels, [1, 3, 4]);
    }

    #[test]
    fn missing_first_batch() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("data_batch_2.bin"), batch_bytes(&[1])).unwrap();
        let err = load_cifar(tmp.path(), Split::Train).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: no data_batch_1.bin (nor cifar-10-batches-bin/data_batch_1.bin) \
                 in this folder",
                tmp.path().display()
            )
        );
    }

    #[test]
    fn bad_length() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("test_batch.bin");
        for len in [0, 100, RECORD_LEN + 1] {
            fs::write(&path, vec![0; len]).unwrap();
            let err = load_cifar(tmp.path(), Split::Test).unwrap_err();
            assert!(matches!(err, DataError::CifarLength { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.starts_with(&format!("{}: length {len} bytes", path.display())));
            assert!(message.contains("3073-byte"), "{message}");
        }
    }

    #[test]
    fn label_out_of_range() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("test_batch.bin");
        fs::write(&path, batch_bytes(&[0, 9, 10])).unwrap();
        let err = load_cifar(tmp.path(), Split::Test).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: label 10 at index 2 is out of range for 10 classes",
                path.display()
            )
        );
    }
}
