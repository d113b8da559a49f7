//! Reading configuration files within bounds.
//!
//! Flows, connectors, API schemas and value maps are small files a person edits; whatever a
//! path names, reading it must end quickly and in bounded memory. A path that is not a regular
//! file (`/dev/zero`, a pipe, a socket) is refused without opening it, and a file larger than
//! its kind's limit is refused before it is read (and, should it grow meanwhile, at the limit).

use std::io::Read as _;
use std::path::Path;

use crate::error::{Error, Location};

/// The largest flow, connector or API schema file (YAML or JSON) that is read: 4 MiB, a
/// hundred times the bundled files.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// The largest value-map CSV file that is read: 64 MiB, about a million rows.
pub const MAX_VALUE_MAP_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes of `file`, a `what` (e.g. "YAML file"), refused when it is not a regular file
/// or is larger than `max` bytes. Errors are located at the file.
pub fn read_bounded(file: &Path, what: &str, max: u64) -> Result<Vec<u8>, Error> {
    let located = |error: Error| error.with_location(Location::file_only(file));
    let metadata = std::fs::metadata(file).map_err(|err| located(Error::io("read", file, err)))?;
    if metadata.is_dir() {
        return Err(located(Error::config(format!(
            "`{}` is a folder, not a {what}",
            file.display()
        ))));
    }
    if !metadata.is_file() {
        return Err(located(
            Error::config(format!(
                "`{}` is not a regular file (a device, a pipe or a socket), not a {what}",
                file.display()
            ))
            .with_hint(format!("name a {what} on disk")),
        ));
    }
    let too_large = || {
        located(
            Error::config(format!(
                "`{}` is too large for a {what}: it may have at most {} MiB",
                file.display(),
                max / (1024 * 1024)
            ))
            .with_hint("check that the path names the right file"),
        )
    };
    if metadata.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    std::fs::File::open(file)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|err| located(Error::io("read", file, err)))?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Where (1-based line, column in characters) the first byte that is not UTF-8 is in `bytes`.
pub fn position_of_invalid_utf8(bytes: &[u8], error: std::str::Utf8Error) -> (usize, usize) {
    let valid = &bytes[..error.valid_up_to()];
    let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// The text of `file` for showing source lines, if it is a regular file within `max` bytes
/// (bytes that are not UTF-8 shown as `�`).
pub fn read_text_for_display(file: &Path, max: u64) -> Option<String> {
    let bytes = read_bounded(file, "file", max).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_large_files_are_refused_without_reading_them() {
        let err = read_bounded(Path::new("/dev/zero"), "YAML file", 10).unwrap_err();
        assert!(err.message().contains("not a regular file"), "{err:?}");
        let err = read_bounded(Path::new("/"), "YAML file", 10).unwrap_err();
        assert!(err.message().contains("is a folder"), "{err:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.yaml");
        std::fs::write(&file, vec![b'a'; 11]).unwrap();
        let err = read_bounded(&file, "YAML file", 10).unwrap_err();
        assert!(err.message().contains("too large"), "{err:?}");
        assert_eq!(read_bounded(&file, "YAML file", 11).unwrap().len(), 11);
    }
}
