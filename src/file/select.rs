//! Which files a file connector's `path` names: one file, or every file a glob matches.
//!
//! A glob is matched with `globset` (already built for the tests' snapshots, like `walkdir`,
//! so no new crate): `*` and `?` stay within one folder, `**` crosses folders, `[abc]` and
//! `{a,b}` choose. The folders are walked from the pattern's longest plain prefix; files are
//! returned in name order, so a backfill from dumps `part-001`, `part-002`, … reads them in
//! that order. The temporary files of a file target's writes are never selected.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use globset::GlobBuilder;

use crate::error::{Error, ErrorKind, Result};
use crate::file::naming;
use crate::file::target::TEMPORARY_SUFFIX;
use crate::source::window::Window;

/// The files `pattern` names, in name order: the file itself when it is plain (if it exists).
pub fn files(pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    if !naming::has_glob(&text) {
        return Ok(if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let glob = GlobBuilder::new(&text)
        .literal_separator(true)
        .build()
        .map_err(|err| Error::config(format!("`{text}` is not a glob: {err}")))?
        .compile_matcher();
    let base = plain_prefix(pattern);
    let mut found = Vec::new();
    let root = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base.as_path()
    };
    if !root.is_dir() {
        return Ok(found);
    }
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|err| {
            Error::new(ErrorKind::Io, format!("cannot list the files of `{text}`")).with_source(err)
        })?;
        let path = if base.as_os_str().is_empty() {
            entry
                .path()
                .strip_prefix(".")
                .unwrap_or(entry.path())
                .to_path_buf()
        } else {
            entry.path().to_path_buf()
        };
        let temporary = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(TEMPORARY_SUFFIX));
        if entry.file_type().is_file() && !temporary && glob.is_match(&path) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The folders of `pattern` before its first component holding a glob character.
pub fn plain_prefix(pattern: &Path) -> PathBuf {
    let mut base = PathBuf::new();
    for component in pattern.components() {
        match component {
            Component::Normal(part) if naming::has_glob(&part.to_string_lossy()) => break,
            other => base.push(other),
        }
    }
    if base == pattern {
        base.pop();
    }
    base
}

/// Whether a file last modified at `modified` changed within `window`.
pub fn changed_within(modified: SystemTime, window: &Window) -> bool {
    let modified = DateTime::<Utc>::from(modified);
    window.start <= modified && modified < window.end
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_glob_is_walked_from_its_plain_folders() {
        let table: &[(&str, &str)] = &[
            ("dumps/*.jsonl", "dumps"),
            ("/srv/dumps/2026-*/part-?.csv", "/srv/dumps"),
            ("dumps/**/x.csv", "dumps"),
            ("*.csv", ""),
            ("dumps/a.csv", "dumps"),
        ];
        for (pattern, base) in table {
            assert_eq!(
                plain_prefix(Path::new(pattern)),
                PathBuf::from(base),
                "{pattern}"
            );
        }
    }

    #[test]
    fn a_glob_selects_matching_files_in_name_order_and_never_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "dumps/part-002.jsonl",
            "dumps/part-001.jsonl",
            "dumps/part-001.csv",
            "dumps/old/part-000.jsonl",
            "dumps/.part-003.jsonl.engine-tmp",
            "dumps/part-010.jsonl.bak",
        ] {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let names = |pattern: &str| -> Vec<String> {
            files(&root.join(pattern))
                .unwrap()
                .iter()
                .map(|p| p.strip_prefix(root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names("dumps/*.jsonl"),
            ["dumps/part-001.jsonl", "dumps/part-002.jsonl"]
        );
        assert_eq!(
            names("dumps/**/*.jsonl"),
            [
                "dumps/old/part-000.jsonl",
                "dumps/part-001.jsonl",
                "dumps/part-002.jsonl"
            ]
        );
        assert_eq!(names("dumps/part-00[2-9].*"), ["dumps/part-002.jsonl"]);
        assert_eq!(
            names("dumps/*"),
            [
                "dumps/part-001.csv",
                "dumps/part-001.jsonl",
                "dumps/part-002.jsonl",
                "dumps/part-010.jsonl.bak"
            ]
        );
        assert_eq!(names("dumps/part-001.csv"), ["dumps/part-001.csv"]);
        assert!(names("dumps/missing.csv").is_empty());
        assert!(names("nowhere/*.csv").is_empty());
    }

    #[test]
    fn a_file_changed_within_a_window_includes_its_start_and_excludes_its_end() {
        let at = |s| Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, s).unwrap();
        let window = Window {
            start: at(10),
            end: at(20),
        };
        for (second, within) in [(9, false), (10, true), (19, true), (20, false)] {
            assert_eq!(
                changed_within(at(second).into(), &window),
                within,
                "{second}"
            );
        }
    }
}
