//! Writing outputs: a file is either complete or absent, never half-written, and qnnc writes
//! only where an output belongs: a regular file (or nothing yet) for a file output, a build
//! folder for `compile`. Standard output is written through [`write_stdout`], which returns
//! errors (a closed pipe, a full disk) instead of panicking.

use std::io::{self, Write};
use std::path::Path;

use crate::input::{non_regular_kind, plain};

/// Writes `bytes` to a temporary file beside `path`, then renames it into place. An existing
/// `path` that is not a regular file (a device, a FIFO, a folder, or a link to one) is refused
/// and left as it is.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    check_file_target(path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(plain)?;
    file.write_all(bytes).map_err(plain)?;
    // Temporary files are private; the output is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(plain)?;
    }
    file.as_file().sync_all().map_err(plain)?;
    // Checked again just before the rename, which would replace whatever is there.
    check_file_target(path)?;
    file.persist(path).map_err(|e| plain(e.error))?;
    Ok(())
}

/// Checks that a file output may be written at `path`: nothing is there yet, or a regular
/// file (a symbolic link to one is replaced by the new file). Its folder must exist.
pub fn check_file_target(path: &Path) -> io::Result<()> {
    if ends_in_dot(path) {
        return Err(refused("names a folder, not a file"));
    }
    match std::fs::metadata(path) {
        Ok(metadata) => match non_regular_kind(metadata.file_type()) {
            None => Ok(()),
            Some(kind) => Err(refused(&format!(
                "is {kind}, not a regular file; qnnc replaces only regular files"
            ))),
        },
        // A dangling link would be replaced; that is a regular file's place.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            if dir.is_dir() {
                Ok(())
            } else {
                Err(refused(&format!("folder {} does not exist", dir.display())))
            }
        }
        Err(e) => Err(plain(e)),
    }
}

/// The file that marks a folder as a qnnc build.
pub const BUILD_MARKER: &str = "manifest.json";

/// Checks that a build may be written into `dir`: absent, an empty folder, or an earlier build
/// (a folder with a regular `manifest.json`). Symbolic links, files, devices and folders of
/// other things are refused.
pub fn check_build_target(dir: &Path) -> io::Result<()> {
    if ends_in_dot(dir) {
        return Err(refused(
            "ends in . or ..; name the build folder itself (e.g. -o build)",
        ));
    }
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(plain(e)),
        Ok(metadata) if metadata.file_type().is_symlink() => {
            Err(refused("is a symbolic link; name the build folder itself"))
        }
        Ok(metadata) if !metadata.is_dir() => {
            let kind = non_regular_kind(metadata.file_type()).unwrap_or("a file");
            Err(refused(&format!("is {kind}, not a build folder")))
        }
        Ok(_) => {
            let marker = std::fs::symlink_metadata(dir.join(BUILD_MARKER));
            let is_build = marker.is_ok_and(|m| m.file_type().is_file());
            let is_empty = std::fs::read_dir(dir)
                .map(|mut entries| entries.next().is_none())
                .unwrap_or(false);
            if is_build || is_empty {
                Ok(())
            } else {
                Err(refused(
                    "exists and is not a qnnc build folder (no manifest.json); choose another -o",
                ))
            }
        }
    }
}

/// Checks that output files may be written into the folder `dir`: absent or a folder (not a
/// link to something else, not a device).
pub fn check_folder_target(dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(plain(e)),
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(metadata) => {
            let kind = non_regular_kind(metadata.file_type()).unwrap_or("a file");
            Err(refused(&format!("is {kind}, not a folder")))
        }
    }
}

/// Whether the last part of `path` is `.` or `..`, which name a folder relative to another
/// and cannot be renamed into.
fn ends_in_dot(path: &Path) -> bool {
    let text = path.as_os_str().as_encoded_bytes();
    let end = text.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let last = text[..end]
        .rsplit(|&b| b == b'/')
        .next()
        .unwrap_or_default();
    last == b"." || last == b".."
}

fn refused(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.to_string())
}

/// Writes `text` on standard output. A reader that went away (a closed pipe) is
/// [`crate::Error::StdoutClosed`], which exits quietly; any other failure is an error naming
/// standard output.
pub fn print(text: impl AsRef<str>) -> crate::Result<()> {
    write_stdout(text.as_ref().as_bytes()).map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            crate::Error::StdoutClosed
        } else {
            crate::Error::Output {
                file: "standard output".into(),
                message: plain(e).to_string(),
            }
        }
    })
}

/// Writes `bytes` to standard output and flushes, returning any error: a closed pipe is
/// [`io::ErrorKind::BrokenPipe`] (Rust ignores SIGPIPE), a full disk its own error.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_not_file_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(error.to_string().contains("character device"), "{error}");
        assert!(write_atomic(dir.path(), b"x").is_err());
        assert!(write_atomic(&dir.path().join("."), b"x").is_err());
        assert!(write_atomic(&dir.path().join("absent/file"), b"x").is_err());
        let file = dir.path().join("file");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
    }

    #[test]
    fn builds_go_into_builds_empty_folders_or_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_build_target(&dir.path().join("new")).is_ok());
        assert!(check_build_target(dir.path()).is_ok());
        std::fs::write(dir.path().join("notes"), "mine").unwrap();
        assert!(check_build_target(dir.path()).is_err());
        assert!(check_build_target(&dir.path().join("notes")).is_err());
        assert!(check_build_target(Path::new("/dev/null")).is_err());
        assert!(check_build_target(&dir.path().join(".")).is_err());
        std::fs::write(dir.path().join(BUILD_MARKER), "{}").unwrap();
        assert!(check_build_target(dir.path()).is_ok());
        assert!(check_build_target(Path::new("build/..")).is_err());
    }
}
