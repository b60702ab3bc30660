//! IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{check_labels, DataError, Dataset, DatasetKind, Split};

/// First bytes of every gzip stream; compression is detected by content, never by file name.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// IDX element type code for unsigned bytes, the only type these datasets use.
const UNSIGNED_BYTE: u8 = 0x08;

/// What an IDX file is expected to hold.
#[derive(Debug, Clone, Copy)]
enum Content {
    /// One dimension: count.
    Labels,
    /// Three dimensions: count, rows, cols.
    Images,
}

impl Content {
    fn dims(self) -> u8 {
        match self {
            Content::Labels => 1,
            Content::Images => 3,
        }
    }

    /// 0x00000801 for labels, 0x00000803 for images.
    fn magic(self) -> u32 {
        u32::from_be_bytes([0, 0, UNSIGNED_BYTE, self.dims()])
    }

    fn header_len(self) -> usize {
        4 + 4 * usize::from(self.dims())
    }

    fn noun(self) -> &'static str {
        match self {
            Content::Labels => "labels",
            Content::Images => "images",
        }
    }
}

/// The contents of an IDX image file: `count` images of `rows` x `cols` pixels, row-major.
#[derive(Debug, Clone)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (magic 0x00000803), raw or gzipped.
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    let (dims, pixels) = read_idx(path, Content::Images)?;
    // The payload is in memory, so its dimensions fit in usize.
    Ok(IdxImages {
        count: dims[0] as usize,
        rows: dims[1] as usize,
        cols: dims[2] as usize,
        pixels,
    })
}

/// Reads an IDX label file (magic 0x00000801), raw or gzipped.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    read_idx(path, Content::Labels).map(|(_, labels)| labels)
}

/// Loads and validates the image and label files of one split of an MNIST-like dataset.
pub(super) fn load_split(
    kind: DatasetKind,
    dir: &Path,
    split: Split,
) -> Result<Dataset, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    // Find both files before decoding either, so a missing one is reported at once.
    let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;

    let images = read_images(&images_path)?;
    let mut dataset = Dataset::empty(kind);
    if (images.rows, images.cols) != (dataset.height, dataset.width) {
        return Err(DataError::ShapeMismatch {
            path: images_path,
            rows: images.rows,
            cols: images.cols,
            kind,
            expected_rows: dataset.height,
            expected_cols: dataset.width,
        });
    }
    let labels = read_labels(&labels_path)?;
    if labels.len() != images.count {
        return Err(DataError::CountMismatch {
            labels_path,
            labels: labels.len(),
            images: images.count,
            images_path,
        });
    }
    check_labels(&labels_path, &labels, dataset.classes)?;
    dataset.images = images.pixels;
    dataset.labels = labels;
    Ok(dataset)
}

/// Returns `dir/name.gz` if it exists, else `dir/name`.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let gzipped = dir.join(format!("{name}.gz"));
    if gzipped.is_file() {
        return Ok(gzipped);
    }
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        name: format!("{name}(.gz)"),
    })
}

/// Reads an IDX file of unsigned bytes and returns its dimensions and payload.
fn read_idx(path: &Path, content: Content) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    let bytes = crate::input::read_data(path).map_err(|error| DataError::io(path, error))?;
    if bytes.starts_with(&GZIP_MAGIC) {
        let decoder = MultiGzDecoder::new(bytes.as_slice());
        parse_idx(path, content, decoder, true, bytes.len())
    } else {
        parse_idx(path, content, bytes.as_slice(), false, bytes.len())
    }
}

/// Parses an IDX stream. `size_hint` bounds the initial allocation, so a header claiming a huge
/// payload costs nothing until that many bytes actually arrive.
fn parse_idx(
    path: &Path,
    content: Content,
    mut reader: impl Read,
    gzip: bool,
    size_hint: usize,
) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    let read_error = |error: io::Error| {
        // The gzip decoder reports bad compressed data as these kinds; anything else is real I/O.
        let corrupt = matches!(
            error.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
        );
        if gzip && corrupt {
            DataError::CorruptGzip {
                path: path.to_path_buf(),
                error,
            }
        } else {
            DataError::io(path, error)
        }
    };

    let header_len = content.header_len();
    let mut header = Vec::with_capacity(header_len);
    reader
        .by_ref()
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(read_error)?;
    if let Some(magic) = header.first_chunk::<4>() {
        check_magic(path, content, u32::from_be_bytes(*magic))?;
    }
    if header.len() < header_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            promise: format!(
                "an IDX header of {} needs {header_len} bytes",
                content.noun()
            ),
            actual: header.len() as u64,
        });
    }

    let dims: Vec<u32> = header[4..]
        .chunks_exact(4)
        .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
        .collect();
    // At most three u32 factors, so the product cannot overflow u128.
    let expected: u128 = dims.iter().map(|&dim| u128::from(dim)).product();
    let promise = match content {
        Content::Labels => format!("header promises {} labels ({expected} bytes)", dims[0]),
        Content::Images => format!(
            "header promises {} images of {}x{} ({expected} bytes)",
            dims[0], dims[1], dims[2]
        ),
    };

    // Read one byte past the promised payload to notice trailing data without reading it all.
    let read_limit = u64::try_from(expected)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let capacity = usize::try_from(expected).map_or(size_hint, |bytes| bytes.min(size_hint));
    let mut payload = Vec::with_capacity(capacity);
    reader
        .by_ref()
        .take(read_limit)
        .read_to_end(&mut payload)
        .map_err(read_error)?;
    let received = payload.len() as u64;
    if u128::from(received) < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            promise,
            actual: received,
        });
    }
    if u128::from(received) > expected {
        let rest = io::copy(&mut reader, &mut io::sink()).map_err(read_error)?;
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            promise,
            actual: received.saturating_add(rest),
        });
    }
    Ok((dims, payload))
}

fn check_magic(path: &Path, content: Content, magic: u32) -> Result<(), DataError> {
    if magic == content.magic() {
        return Ok(());
    }
    let [zero_high, zero_low, element_type, dims] = magic.to_be_bytes();
    let reason = if zero_high != 0 || zero_low != 0 || element_type != UNSIGNED_BYTE {
        "is not an IDX file of unsigned bytes".to_string()
    } else {
        format!("is an IDX file of {dims} dimension(s)")
    };
    Err(DataError::BadMagic {
        path: path.to_path_buf(),
        found: magic,
        reason,
        expected: content.magic(),
        content: content.noun(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::super::load;
    use super::*;
    use std::fs;

    /// Writes `data` to `path`, gzip-compressed if asked.
    fn write_file(path: &Path, data: &[u8], gzip: bool) {
        if gzip {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(data).unwrap();
            fs::write(path, encoder.finish().unwrap()).unwrap();
        } else {
            fs::write(path, data).unwrap();
        }
    }

    /// The bytes of an IDX file of unsigned bytes with the given dimensions and payload.
    pub(crate) fn idx_bytes(dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, UNSIGNED_BYTE, dims.len() as u8];
        for dim in dims {
            bytes.extend_from_slice(&dim.to_be_bytes());
        }
        bytes.extend_from_slice(payload);
        bytes
    }

    /// Writes `{prefix}-images-idx3-ubyte` and `{prefix}-labels-idx1-ubyte` (with `.gz` if
    /// gzipped) into `dir`; returns the two paths.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_idx_split(
        dir: &Path,
        prefix: &str,
        count: u32,
        rows: u32,
        cols: u32,
        pixels: &[u8],
        labels: &[u8],
        gzip: bool,
    ) -> (PathBuf, PathBuf) {
        let suffix = if gzip { ".gz" } else { "" };
        let images_path = dir.join(format!("{prefix}-images-idx3-ubyte{suffix}"));
        let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}"));
        write_file(&images_path, &idx_bytes(&[count, rows, cols], pixels), gzip);
        write_file(
            &labels_path,
            &idx_bytes(&[labels.len() as u32], labels),
            gzip,
        );
        (images_path, labels_path)
    }

    fn sample_pixels(count: usize) -> Vec<u8> {
        (0..count * 784).map(|i| (i * 7 % 256) as u8).collect()
    }

    fn load_mnist(dir: &Path, split: Split) -> Result<Dataset, DataError> {
        load(DatasetKind::Mnist, Some(dir), split, None)
    }

    #[test]
    fn round_trip_raw_and_gzipped() {
        for gzip in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let pixels = sample_pixels(3);
            let labels = [9, 0, 4];
            write_idx_split(tmp.path(), "train", 3, 28, 28, &pixels, &labels, gzip);
            let dataset = load_mnist(tmp.path(), Split::Train).unwrap();
            assert_eq!(
                (dataset.height, dataset.width, dataset.channels),
                (28, 28, 1)
            );
            assert_eq!(dataset.classes, 10);
            assert_eq!(dataset.labels, labels);
            assert_eq!(dataset.images, pixels);
            assert_eq!(dataset.image(2), &pixels[2 * 784..]);

            // The test split uses other file names.
            let err = load_mnist(tmp.path(), Split::Test).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: no t10k-images-idx3-ubyte(.gz) in this folder",
                    tmp.path().display()
                )
            );
        }
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let tmp = tempfile::tempdir().unwrap();
        let pixels = sample_pixels(2);
        // Gzipped data without ".gz" and raw data with ".gz" both load.
        let (images, labels) =
            write_idx_split(tmp.path(), "t10k", 2, 28, 28, &pixels, &[1, 2], true);
        fs::rename(&images, tmp.path().join("t10k-images-idx3-ubyte")).unwrap();
        fs::write(&labels, idx_bytes(&[2], &[3, 4])).unwrap();
        let dataset = load_mnist(tmp.path(), Split::Test).unwrap();
        assert_eq!(dataset.images, pixels);
        assert_eq!(dataset.labels, [3, 4]);
    }

    #[test]
    fn gzipped_file_is_preferred_over_raw() {
        let tmp = tempfile::tempdir().unwrap();
        write_idx_split(tmp.path(), "t10k", 1, 28, 28, &[1; 784], &[1], false);
        write_idx_split(tmp.path(), "t10k", 1, 28, 28, &[2; 784], &[2], true);
        let dataset = load_mnist(tmp.path(), Split::Test).unwrap();
        assert_eq!(dataset.labels, [2]);
        assert_eq!(dataset.images, [2; 784]);
    }

    #[test]
    fn truncated_payload() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t10k-images-idx3-ubyte");
        fs::write(&path, idx_bytes(&[10_000, 28, 28], &[0; 1000])).unwrap();
        let err = read_images(&path).unwrap_err();
        assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: truncated: header promises 10000 images of 28x28 (7840000 bytes) \
                 but 1000 bytes follow",
                path.display()
            )
        );
    }

    #[test]
    fn truncated_header() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("labels");
        for bytes in [&[][..], &[0, 0, 8][..], &[0, 0, 8, 1, 0, 0][..]] {
            fs::write(&path, bytes).unwrap();
            let err = read_labels(&path).unwrap_err();
            assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
            assert!(err.to_string().contains("needs 8 bytes"), "{err}");
        }
    }

    #[test]
    fn huge_header_claim_is_an_error_not_an_allocation() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("images.gz");
        write_file(&path, &idx_bytes(&[1 << 31, 28, 28], &[0; 100]), true);
        let err = read_images(&path).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { actual: 100, .. }),
            "{err:?}"
        );
        fs::write(&path, idx_bytes(&[u32::MAX; 3], &[])).unwrap();
        let err = read_images(&path).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { actual: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_bytes() {
        for gzip in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("labels");
            write_file(&path, &idx_bytes(&[3], &[1, 2, 3, 4, 5]), gzip);
            let err = read_labels(&path).unwrap_err();
            assert!(matches!(err, DataError::TrailingBytes { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: trailing bytes: header promises 3 labels (3 bytes) but 5 bytes follow",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn wrong_magic() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("train-images-idx3-ubyte.gz");
        let mut bytes = idx_bytes(&[1, 28, 28], &[0; 784]);
        bytes[2..4].copy_from_slice(&[0x09, 0x99]);
        write_file(&path, &bytes, true);
        let err = read_images(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: magic number 0x00000999 is not an IDX file of unsigned bytes \
                 (expected 0x00000803 for images)",
                path.display()
            )
        );

        // A label file where images are expected.
        fs::write(&path, idx_bytes(&[1], &[0])).unwrap();
        let err = read_images(&path).unwrap_err();
        assert!(
            err.to_string().contains(
                "magic number 0x00000801 is an IDX file of 1 dimension(s) \
                 (expected 0x00000803 for images)"
            ),
            "{err}"
        );
    }

    #[test]
    fn wrong_image_size() {
        let tmp = tempfile::tempdir().unwrap();
        write_idx_split(tmp.path(), "t10k", 1, 32, 32, &[0; 1024], &[0], false);
        let err = load_mnist(tmp.path(), Split::Test).unwrap_err();
        assert!(matches!(err, DataError::ShapeMismatch { .. }), "{err:?}");
        assert!(
            err.to_string()
                .ends_with("images are 32x32 but mnist images are 28x28"),
            "{err}"
        );
    }

    #[test]
    fn label_count_mismatch() {
        let tmp = tempfile::tempdir().unwrap();
        let (images, labels) = write_idx_split(
            tmp.path(),
            "t10k",
            2,
            28,
            28,
            &sample_pixels(2),
            &[1, 2, 3],
            false,
        );
        let err = load_mnist(tmp.path(), Split::Test).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: label count 3 does not match image count 2 in {}",
                labels.display(),
                images.display()
            )
        );
    }

    #[test]
    fn label_out_of_range() {
        let tmp = tempfile::tempdir().unwrap();
        let labels = [0, 1, 2, 3, 4, 12];
        let (_, labels_path) = write_idx_split(
            tmp.path(),
            "t10k",
            6,
            28,
            28,
            &sample_pixels(6),
            &labels,
            true,
        );
        let err = load_mnist(tmp.path(), Split::Test).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: label 12 at index 5 is out of range for 10 classes",
                labels_path.display()
            )
        );
    }

    #[test]
    fn corrupt_gzip() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("labels.gz");
        fs::write(&path, [0x1f, 0x8b, 0xde, 0xad, 0xbe, 0xef]).unwrap();
        let err = read_labels(&path).unwrap_err();
        assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: corrupt gzip stream: ", path.display())),
            "{err}"
        );

        // A gzip stream cut short.
        write_file(&path, &idx_bytes(&[1000], &[1; 1000]), true);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_labels(&path).unwrap_err();
        assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("absent");
        let err = read_labels(&path).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err:?}");
        assert!(err
            .to_string()
            .starts_with(&format!("{}: ", path.display())));
    }
}
