//! Finding, creating and vetting the state database file.
//!
//! Only a missing file makes a new ledger, and a new ledger appears whole: it is built and
//! migrated in a private temporary file in the same folder, then linked into place under its
//! name, so a crash can leave a stray temporary file but never an empty `state.db` that a
//! later run would take for a new ledger and resend everything. An existing file is opened
//! only if it is an engine ledger (an SQLite database with this engine's tables); anything
//! else — an empty file, another program's database, random bytes — is refused with its path
//! and what to do. Files and folders this creates are private to the user (0700 folders, 0600
//! files; SQLite gives its `-wal` and `-shm` side files the database's mode).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::lock;
use super::schema;
use crate::error::{Error, ErrorKind, Result};

/// The tables every engine ledger has had since schema version 1.
const LEDGER_TABLES: [&str; 3] = ["cursors", "ledger", "runs"];

/// Create `dir` and any missing parents, private to the user. An existing folder is left as
/// it is: it may be one the user chose and shares on purpose.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|err| Error::io("create", dir, err))
}

/// Make sure a ledger exists at `path`: returns how many migrations creating it applied (0
/// when the file was already there, or another process created it at the same moment).
pub(crate) fn ensure_exists(path: &Path) -> Result<usize> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    match std::fs::symlink_metadata(path) {
        Ok(_) => return Ok(0),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::io("read", path, err)),
    }
    let wal = side_file(path, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|meta| meta.len() > 0) {
        // SQLite would replay this log into the new file: the ledger it belongs to is gone.
        return Err(Error::new(
            ErrorKind::State,
            format!(
                "the state database `{}` is missing but its write-ahead log `{}` is there",
                path.display(),
                wal.display()
            ),
        )
        .with_hint(
            "put the ledger back from where it was moved or from a backup; if the flow should \
             really start over, move the log away too (every record since the flow's start is \
             then sent again: check the target first)",
        ));
    }
    // Unique per process and per call: two flows of one process may create it at once.
    static CREATIONS: AtomicU64 = AtomicU64::new(0);
    let temporary = dir.join(format!(
        ".{}.{}-{}.new",
        path.file_name()
            .map_or("state.db".into(), |n| n.to_string_lossy()),
        std::process::id(),
        CREATIONS.fetch_add(1, Ordering::Relaxed)
    ));
    let result = build_and_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    result
}

fn build_and_link(temporary: &Path, path: &Path) -> Result<usize> {
    let _ = std::fs::remove_file(temporary);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(temporary)
        .map_err(|err| Error::io("create", temporary, err))?;
    let name = temporary.display().to_string();
    let connection = Connection::open(temporary).map_err(|source| {
        Error::new(
            ErrorKind::State,
            format!("cannot create the state database `{name}`"),
        )
        .with_source(source)
    })?;
    let (store, applied) = super::Store::from_connection(connection, &name)?;
    // Closing the last connection checkpoints the log into the file and removes it.
    drop(store);
    std::fs::File::open(temporary)
        .and_then(|file| file.sync_all())
        .map_err(|err| Error::io("write", temporary, err))?;
    // A hard link never replaces: if another process created the ledger meanwhile (two flows
    // sharing a folder, first run at the same minute), its file stays and this one is dropped.
    match std::fs::hard_link(temporary, path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(0),
        // A filesystem without hard links: renaming is atomic too, only not exclusive.
        Err(_) if !path.exists() => {
            std::fs::rename(temporary, path).map_err(|err| Error::io("create", path, err))?
        }
        Err(_) => return Ok(0),
    }
    if let Some(dir) = path.parent() {
        // The new name survives a power cut once the folder is synced (best effort).
        let _ = std::fs::File::open(dir).and_then(|dir| dir.sync_all());
    }
    Ok(applied)
}

/// Open an existing file at `path` (never creating one) and check it is an engine ledger
/// before anything is written to it.
pub(crate) fn open_existing(path: &Path) -> Result<Connection> {
    let name = path.display().to_string();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)
        .map_err(|source| database_error(&name, "open", source))?;
    connection
        .busy_timeout(super::BUSY_TIMEOUT)
        .map_err(|source| database_error(&name, "open", source))?;
    vet(&connection, path)?;
    Ok(connection)
}

/// Refuse a file that is not an engine ledger this engine can use.
fn vet(connection: &Connection, path: &Path) -> Result<()> {
    let name = path.display().to_string();
    let read = |source: rusqlite::Error| match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => not_a_ledger(path, "it is not an SQLite database"),
        _ => database_error(&name, "read", source),
    };
    let version = schema::version(connection).map_err(read)?;
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(read)?;
    if version > schema::LATEST {
        return Err(schema::newer_than_this_engine(&name, version));
    }
    let missing: Vec<&str> = LEDGER_TABLES
        .into_iter()
        .filter(|table| !tables.iter().any(|t| t == table))
        .collect();
    if missing.is_empty() && version >= 1 {
        return Ok(());
    }
    let size = std::fs::metadata(path).map_or(0, |meta| meta.len());
    let why = if size == 0 && tables.is_empty() {
        "it is empty (0 bytes)".to_string()
    } else if tables.is_empty() {
        "it is an empty SQLite database".to_string()
    } else {
        format!(
            "it is an SQLite database without the ledger's tables (it has {})",
            tables
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(not_a_ledger(path, &why))
}

fn not_a_ledger(path: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::State,
        format!(
            "the state database `{}` is not an engine ledger: {why}",
            path.display()
        ),
    )
    .with_hint(
        "the engine never starts a new ledger over an existing file, since a new ledger sends \
         every record again: put the right file back (from a backup), or point `--state-dir` at \
         the folder that holds it; only if this flow never wrote anything, or the target is \
         known to hold none of its records, move the file away and run again",
    )
}

/// "cannot {action} in the state database `{name}`" (or, for an action on the whole file,
/// "cannot {action} the state database"), saying who keeps it busy when another process
/// holds its lock.
pub(crate) fn database_error(name: &str, action: &str, source: rusqlite::Error) -> Error {
    let what = match action {
        "open" | "configure" | "migrate" | "read" => {
            format!("{action} the state database `{name}`")
        }
        _ => format!("{action} in the state database `{name}`"),
    };
    let busy = matches!(
        source.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    if !busy {
        return Error::new(ErrorKind::State, format!("cannot {what}")).with_source(source);
    }
    let holders = lock::processes_with_open(Path::new(name));
    let who = if holders.is_empty() {
        String::new()
    } else {
        format!(" (it is open in {})", holders.join(", "))
    };
    Error::new(
        ErrorKind::State,
        format!(
            "cannot {what}: it is locked by another process{who}, which kept it busy for {} s",
            super::BUSY_TIMEOUT.as_secs()
        ),
    )
    .with_hint(
        "another engine command (see `engine state`) or a tool such as `sqlite3` is writing to \
         it: let it finish or close it, then run again",
    )
    .with_source(source)
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Store;

    /// Open `path` as a store and return the refusal's message.
    #[track_caller]
    fn refusal(path: &Path) -> String {
        let err = Store::open(path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State, "{err}");
        assert!(err.hint().is_some(), "{err}");
        err.message().to_string()
    }

    #[test]
    fn an_existing_file_that_is_not_a_ledger_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.db");
        let connection = Connection::open(&other).unwrap();
        connection
            .execute_batch("CREATE TABLE customers (name TEXT)")
            .unwrap();
        drop(connection);
        let other_bytes = std::fs::read(&other).unwrap();
        let cases: [(&str, &[u8], &str); 3] = [
            ("empty.db", b"", "it is empty (0 bytes)"),
            ("garbage.db", &[0x42; 4096], "it is not an SQLite database"),
            (
                "other.db",
                &other_bytes,
                "it is an SQLite database without the ledger's tables (it has `customers`)",
            ),
        ];
        for (name, bytes, why) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(
                refusal(&path),
                format!(
                    "the state database `{}` is not an engine ledger: {why}",
                    path.display()
                )
            );
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} is untouched");
        }
    }

    #[test]
    fn a_write_ahead_log_without_its_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(side_file(&path, "-wal"), [1u8; 100]).unwrap();
        assert!(refusal(&path).contains("is missing but its write-ahead log"));
        assert!(!path.exists());
    }

    #[test]
    fn a_new_ledger_appears_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        // A temporary file left by a creation that crashed does not matter.
        std::fs::write(dir.path().join(".state.db.1.new"), b"").unwrap();
        let (store, applied) = Store::open_counting_migrations(&path).unwrap();
        assert_eq!(applied, schema::LATEST as usize);
        drop(store);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".state.db.1.new", "state.db"]);
        let (_, applied) = Store::open_counting_migrations(&path).unwrap();
        assert_eq!(applied, 0);
    }

    #[test]
    fn processes_creating_one_ledger_at_once_all_write_into_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (path, barrier) = (path.clone(), std::sync::Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = Store::open(&path).unwrap();
                    let now = chrono::Utc::now();
                    store.advance_cursor(&format!("flow{i}"), now, now).unwrap();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let store = Store::open(&path).unwrap();
        for i in 0..8 {
            assert!(
                store.cursor(&format!("flow{i}")).unwrap().is_some(),
                "flow{i}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_ledger_its_side_files_and_its_new_folders_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join(".engine").join("state.db");
        let store = Store::open(&path).unwrap();
        store
            .advance_cursor("flow", chrono::Utc::now(), chrono::Utc::now())
            .unwrap();
        assert_eq!(mode(&path), 0o600);
        // Open: the write-ahead log and its index exist beside the file.
        assert_eq!(mode(&side_file(&path, "-wal")), 0o600);
        assert_eq!(mode(&side_file(&path, "-shm")), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a").join(".engine")), 0o700);
    }

    #[test]
    fn a_busy_database_is_reported_as_locked_not_as_a_failed_action() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let mut holder = Connection::open(&path).unwrap();
        let _write = holder
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let mut other = Connection::open(&path).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        let busy = other
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap_err();
        let name = path.display().to_string();
        let err = database_error(&name, "migrate", busy);
        assert_eq!(
            err.message(),
            format!(
                "cannot migrate the state database `{name}`: it is locked by another process, \
                 which kept it busy for 5 s"
            )
        );
        // An up-to-date ledger opens for reading while another process writes.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.cursor("flow").unwrap(), None);
    }
}
