//! One writer per flow: an advisory lock on a file beside the state database.
//!
//! Every command that writes a flow's ledger, cursor or target (`run`, `retry`,
//! `state --reset-cursor`, and later `serve`) holds the flow's [`FlowLock`] from before it
//! opens the state until it ends. The lock is the operating system's (`flock` on Unix, a
//! file lock on Windows), so it goes away with the process however that ends: a lock left by
//! a killed run is simply free, and the next command takes it over. The file itself is never
//! deleted (another process may be waiting on it); it holds who has the lock (host, pid,
//! command, since when) as one JSON line, so that a refusal and `engine state` can name the
//! holder. A holder that ends normally empties the file before it lets go, so a file that
//! still names someone when its lock is free was left by a process that died.
//!
//! Advisory locks are only as good as the filesystem: a state folder on NFS or SMB may not
//! share them between hosts, which is why the holder's host is recorded and shown.
//!
//! This module touches its lock file and, to name who keeps the database busy, `/proc`; it
//! knows nothing about flows but their names.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{Error, ErrorKind, Result};
use crate::time::wall_clock;

/// How often a waiting command tries the lock again.
const POLL: Duration = Duration::from_millis(100);

/// How long a command that does not wait keeps trying before it refuses: long enough to step
/// over `engine state` looking at the lock for an instant, short enough to refuse at once for
/// a person.
const GRACE: Duration = Duration::from_millis(500);

/// Characters of a flow name kept as they are in its lock file's name; the rest is
/// percent-encoded, so every name maps to one file and no name leaves the folder.
const FILE_NAME_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Who holds (or last held) a flow's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The command line, e.g. `engine run mappings/refund.yaml`.
    pub command: String,
    pub since: DateTime<Utc>,
}

impl Holder {
    /// This process, from `now` on.
    pub fn this_process(now: DateTime<Utc>) -> Holder {
        let command = std::env::args_os()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Holder {
            host: host_name(),
            pid: std::process::id(),
            command,
            since: now,
        }
    }

    /// `pid 4242 on host \`box\` since 2024-05-01 10:00:00 (Asia/Shanghai), running \`engine run …\``.
    pub fn describe(&self) -> String {
        format!(
            "pid {} on host `{}` since {} (Asia/Shanghai), running `{}`",
            self.pid,
            self.host,
            wall_clock(self.since),
            self.command
        )
    }

    /// The holder as JSON, as the lock file and `engine state --json` show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "host": self.host,
            "pid": self.pid,
            "command": self.command,
            "since": self.since.to_rfc3339(),
        })
    }

    /// The holder as the lock file keeps it: one JSON object on one line.
    fn to_line(&self) -> String {
        self.to_json().to_string()
    }

    fn parse(text: &str) -> Option<Holder> {
        let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
        Some(Holder {
            host: value.get("host")?.as_str()?.to_string(),
            pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
            command: value.get("command")?.as_str()?.to_string(),
            since: DateTime::parse_from_rfc3339(value.get("since")?.as_str()?)
                .ok()?
                .with_timezone(&Utc),
        })
    }
}

/// What a lock file says when looked at without taking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Nobody holds it, but the last holder died with it (its record is still there).
    Left(Holder),
    /// Someone holds it (`None`: the holder has not written its name yet).
    Held(Option<Holder>),
}

/// How long to wait for a lock that someone else holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Refuse (after a short grace).
    No,
    /// Wait up to this long, then refuse.
    UpTo(Duration),
    /// Wait until it is free.
    Forever,
}

/// A flow's lock, held until dropped.
#[derive(Debug)]
pub struct FlowLock {
    file: File,
    path: PathBuf,
    /// The holder that died with the lock, when this one took it over.
    pub taken_over: Option<Holder>,
}

/// The lock file of `flow` in the state folder `dir`: `<dir>/<flow>.lock`.
pub fn lock_path(dir: &Path, flow: &str) -> PathBuf {
    dir.join(format!(
        "{}.lock",
        utf8_percent_encode(flow, FILE_NAME_SAFE)
    ))
}

impl FlowLock {
    /// Take the lock at `path` (creating the file and its folder), waiting as `wait` says;
    /// `on_wait` is told once who holds it when this has to wait.
    pub fn acquire(
        path: &Path,
        flow: &str,
        holder: &Holder,
        wait: Wait,
        mut on_wait: impl FnMut(Option<&Holder>),
    ) -> Result<FlowLock> {
        let file = open_for_locking(path)?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return FlowLock::took(file, path, holder),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(err)) => return Err(Error::io("lock", path, err)),
            }
            let waited = started.elapsed();
            let limit = match wait {
                Wait::No => Some(GRACE),
                Wait::UpTo(limit) => Some(limit.max(GRACE)),
                Wait::Forever => None,
            };
            let current = read_holder(path);
            if limit.is_some_and(|limit| waited >= limit) {
                return Err(refusal(path, flow, current.as_ref(), wait));
            }
            if !told && waited >= GRACE {
                on_wait(current.as_ref());
                told = true;
            }
            std::thread::sleep(POLL);
        }
    }

    fn took(mut file: File, path: &Path, holder: &Holder) -> Result<FlowLock> {
        let mut previous = String::new();
        file.read_to_string(&mut previous)
            .map_err(|err| Error::io("read", path, err))?;
        let taken_over = Holder::parse(&previous);
        let line = holder.to_line();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{line}\n").as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|err| Error::io("write", path, err))?;
        Ok(FlowLock {
            file,
            path: path.to_path_buf(),
            taken_over,
        })
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Look at the lock at `path` without keeping it (a shared lock taken for an instant).
    pub fn probe(path: &Path) -> Result<LockState> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
            Err(err) => return Err(Error::io("open", path, err)),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let holder = read_holder(path);
                let _ = file.unlock();
                Ok(holder.map_or(LockState::Free, LockState::Left))
            }
            Err(TryLockError::WouldBlock) => Ok(LockState::Held(read_holder(path))),
            Err(TryLockError::Error(err)) => Err(Error::io("lock", path, err)),
        }
    }
}

impl Drop for FlowLock {
    fn drop(&mut self) {
        // An empty file says "released normally"; closing the file releases the lock.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn open_for_locking(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        super::open::create_private_dir(dir)?;
    }
    let mut options = OpenOptions::new();
    // Never truncate here: the holder's record is in the file until it lets go.
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|err| Error::io("open", path, err))
}

fn read_holder(path: &Path) -> Option<Holder> {
    Holder::parse(&std::fs::read_to_string(path).ok()?)
}

fn refusal(path: &Path, flow: &str, holder: Option<&Holder>, wait: Wait) -> Error {
    let who = holder.map_or_else(
        || "another process that has not said who it is yet".to_string(),
        Holder::describe,
    );
    let message = match wait {
        Wait::UpTo(limit) => format!(
            "flow `{flow}` is still locked by {who} after waiting {}",
            crate::time::format_span(chrono::Duration::from_std(limit).unwrap_or_default())
        ),
        Wait::No | Wait::Forever => format!("flow `{flow}` is locked by {who}"),
    };
    Error::new(ErrorKind::Locked, message).with_hint(format!(
        "one command at a time writes a flow: let it finish, or add `--wait` (or `--wait 10m`) \
         to wait for it; the lock is `{}` (never delete it: a killed holder's lock is freed by \
         the system and taken over)",
        path.display()
    ))
}

/// This machine's name, for the lock's record.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Other processes of this host that have `path` open, as `pid 123 (\`sqlite3 state.db\`)`,
/// read from `/proc` (empty where there is none, or for processes of other users).
pub fn processes_with_open(path: &Path) -> Vec<String> {
    let Ok(target) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut found = Vec::new();
    for process in processes.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let opened = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link == target));
        if opened {
            let command = std::fs::read(process.path().join("cmdline"))
                .map(|raw| {
                    raw.split(|byte| *byte == 0)
                        .filter(|arg| !arg.is_empty())
                        .map(|arg| String::from_utf8_lossy(arg).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            found.push(format!("pid {pid} (`{command}`)"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32) -> Holder {
        Holder {
            host: "box".into(),
            pid,
            command: "engine run mappings/refund.yaml".into(),
            since: DateTime::parse_from_rfc3339("2024-05-01T02:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn a_flow_name_maps_to_one_file_inside_the_folder() {
        for (flow, file) in [
            ("refund", "refund.lock"),
            ("refund-sync_2", "refund-sync_2.lock"),
            ("../etc/passwd", "%2E%2E%2Fetc%2Fpasswd.lock"),
            ("退货", "%E9%80%80%E8%B4%A7.lock"),
            ("a b", "a%20b.lock"),
        ] {
            assert_eq!(
                lock_path(Path::new("/s"), flow),
                Path::new("/s").join(file),
                "{flow}"
            );
        }
    }

    #[test]
    fn a_holder_is_described_with_host_pid_time_and_command() {
        assert_eq!(
            holder(4242).describe(),
            "pid 4242 on host `box` since 2024-05-01 10:00:00 (Asia/Shanghai), running \
             `engine run mappings/refund.yaml`"
        );
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_named_and_takes_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), "refund");
        assert_eq!(FlowLock::probe(&path).unwrap(), LockState::Free);
        let first = FlowLock::acquire(&path, "refund", &holder(1), Wait::No, |_| {}).unwrap();
        assert_eq!(first.taken_over, None);
        assert_eq!(
            FlowLock::probe(&path).unwrap(),
            LockState::Held(Some(holder(1)))
        );
        let refused = FlowLock::acquire(&path, "refund", &holder(2), Wait::No, |_| {}).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Locked);
        assert!(
            refused.message().contains("pid 1 on host `box`"),
            "{refused}"
        );
        drop(first);
        assert_eq!(FlowLock::probe(&path).unwrap(), LockState::Free);
        let second = FlowLock::acquire(&path, "refund", &holder(2), Wait::No, |_| {}).unwrap();
        assert_eq!(second.taken_over, None, "released normally, not taken over");
    }

    #[test]
    fn a_record_left_by_a_dead_holder_is_shown_and_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), "refund");
        // What a killed holder leaves: its record, and no lock (the system freed it).
        std::fs::write(&path, holder(7).to_line()).unwrap();
        assert_eq!(FlowLock::probe(&path).unwrap(), LockState::Left(holder(7)));
        let lock = FlowLock::acquire(&path, "refund", &holder(8), Wait::No, |_| {}).unwrap();
        assert_eq!(lock.taken_over, Some(holder(7)));
        assert_eq!(
            FlowLock::probe(&path).unwrap(),
            LockState::Held(Some(holder(8)))
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_lock_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(&dir.path().join("new"), "refund");
        let _lock = FlowLock::acquire(&path, "refund", &holder(1), Wait::No, |_| {}).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
    }
}
