//! Reading input files with bounds: a file qnnc reads must be a regular file no larger than
//! the limit for its kind, so that a device, a FIFO or a huge file cannot hang the command or
//! exhaust memory. Files inside a build folder must moreover not be symbolic links, so that a
//! folder cannot make qnnc read outside itself.

use std::io::{self, Read};
use std::path::{Component, Path};

/// The most bytes qnnc reads from one file of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    /// What files the limit applies to, for the message.
    pub kind: &'static str,
}

/// Trained-model files (`.qnn`), IR files and QONNX files: 1 GiB, far above any network whose
/// weights fit the largest memory `compile` builds.
pub const MODEL_FILE: Limit = Limit {
    bytes: 1 << 30,
    kind: "model, IR and QONNX files",
};

/// Specs, hardware profiles and sweep files: text a person writes, 16 MiB.
pub const CONFIG_FILE: Limit = Limit {
    bytes: 16 << 20,
    kind: "specs, profiles and sweep files",
};

/// Data set files (IDX, gzipped or raw, and CIFAR-10 batches): 1 GiB, ten times the largest
/// file of the data sets qnnc reads.
pub const DATA_FILE: Limit = Limit {
    bytes: 1 << 30,
    kind: "data set files",
};

/// Files of a build folder (manifest, IR, memory images, Verilog) and the results `explore`
/// stores: 1 GiB.
pub const BUILD_FILE: Limit = Limit {
    bytes: 1 << 30,
    kind: "files of a build or results folder",
};

/// Reads a whole file that must be a regular file (a symbolic link to one is fine) within
/// `limit`.
pub fn read(path: &Path, limit: Limit) -> io::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path).map_err(plain)?;
    check_regular(&metadata)?;
    read_bounded(path, metadata.len(), limit)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, limit: Limit) -> io::Result<String> {
    String::from_utf8(read(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// A spec, profile or sweep file as text ([`read_text`] within [`CONFIG_FILE`]).
pub fn read_config(path: &Path) -> io::Result<String> {
    read_text(path, CONFIG_FILE)
}

/// A data set file ([`read`] within [`DATA_FILE`]).
pub fn read_data(path: &Path) -> io::Result<Vec<u8>> {
    read(path, DATA_FILE)
}

/// Reads `relative` inside the folder `dir`: a plain relative path (no `..`, not absolute)
/// through no symbolic link, naming a regular file within `limit`.
pub fn read_inside(dir: &Path, relative: &str, limit: Limit) -> io::Result<Vec<u8>> {
    check_relative(relative)?;
    let mut path = dir.to_path_buf();
    let mut metadata = None;
    for part in Path::new(relative).components() {
        path.push(part);
        let m = std::fs::symlink_metadata(&path).map_err(plain)?;
        if m.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a symbolic link; a build folder holds its own files",
            ));
        }
        metadata = Some(m);
    }
    let metadata = metadata.ok_or_else(|| io::Error::other("names no file"))?;
    check_regular(&metadata)?;
    read_bounded(&path, metadata.len(), limit)
}

/// [`read_inside`] as UTF-8 text.
pub fn read_text_inside(dir: &Path, relative: &str, limit: Limit) -> io::Result<String> {
    String::from_utf8(read_inside(dir, relative, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// Refuses a path that could leave its folder: absolute, empty, or with `..` or `.` parts.
pub fn check_relative(relative: &str) -> io::Result<()> {
    let path = Path::new(relative);
    let plain_parts = path.components().all(|c| matches!(c, Component::Normal(_)));
    if relative.is_empty() || !plain_parts || relative.contains('\\') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a plain relative path inside the folder",
        ));
    }
    Ok(())
}

/// What kind of file system entry this is, in words, or None for a regular file.
pub fn non_regular_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return Some("a character device");
        }
        if file_type.is_block_device() {
            return Some("a block device");
        }
        if file_type.is_fifo() {
            return Some("a FIFO");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
    }
    if file_type.is_dir() {
        Some("a folder")
    } else if file_type.is_file() {
        None
    } else {
        Some("not a regular file")
    }
}

fn check_regular(metadata: &std::fs::Metadata) -> io::Result<()> {
    match non_regular_kind(metadata.file_type()) {
        None => Ok(()),
        Some(kind) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {kind}, not a regular file"),
        )),
    }
}

/// Reads at most `limit` bytes; a file that grows past it while being read is refused too.
fn read_bounded(path: &Path, length: u64, limit: Limit) -> io::Result<Vec<u8>> {
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "is larger than {}, the limit for {}",
                human_bytes(limit.bytes),
                limit.kind
            ),
        )
    };
    if length > limit.bytes {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(plain)?;
    let mut bytes = Vec::with_capacity(length as usize);
    file.take(limit.bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(plain)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// 1 GiB, 16 MiB or a count of bytes.
fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}

/// An I/O error's message without the "(os error N)" suffix, which adds nothing for a user.
pub fn plain(error: io::Error) -> io::Error {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => io::Error::new(error.kind(), text[..at].to_string()),
        None => error,
    }
}

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
    use super::*;

    #[test]
    fn devices_folders_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let message = |r: io::Result<Vec<u8>>| r.unwrap_err().to_string();
        assert_eq!(
            message(read(Path::new("/dev/zero"), MODEL_FILE)),
            "is a character device, not a regular file"
        );
        assert_eq!(
            message(read(dir.path(), MODEL_FILE)),
            "is a folder, not a regular file"
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 100]).unwrap();
        let small = Limit {
            bytes: 99,
            kind: "tests",
        };
        assert_eq!(
            message(read(&big, small)),
            "is larger than 99 bytes, the limit for tests"
        );
        assert_eq!(read(&big, MODEL_FILE).unwrap().len(), 100);
        assert_eq!(
            message(read(&dir.path().join("absent"), MODEL_FILE)),
            "No such file or directory"
        );
    }

    #[test]
    fn files_inside_a_folder_are_its_own() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rtl")).unwrap();
        std::fs::write(dir.path().join("rtl/a.v"), "module a; endmodule\n").unwrap();
        assert!(read_inside(dir.path(), "rtl/a.v", BUILD_FILE).is_ok());
        for escape in ["../a.v", "/etc/passwd", "rtl/../rtl/a.v", "./rtl/a.v", ""] {
            assert!(
                read_inside(dir.path(), escape, BUILD_FILE).is_err(),
                "{escape}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/dev/zero", dir.path().join("rtl/z.v")).unwrap();
            std::os::unix::fs::symlink(dir.path().join("rtl"), dir.path().join("link")).unwrap();
            let error = read_inside(dir.path(), "rtl/z.v", BUILD_FILE).unwrap_err();
            assert!(error.to_string().contains("symbolic link"), "{error}");
            assert!(read_inside(dir.path(), "link/a.v", BUILD_FILE).is_err());
        }
    }

    #[test]
    fn control_characters_are_escaped_once_and_others_kept() {
        let text = "a\nb\r\u{1b}[31m é \\n";
        let once = escape_controls(text);
        assert_eq!(once, "a\\nb\\r\\u{1b}[31m é \\n");
        assert_eq!(escape_controls(&once), once);
        assert!(!once.contains('\n'));
    }
}
