//! Run folders: ids, listing, the one-writer lock, and atomic file replacement.

use super::events::{io_err, read_first, StoreError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A new run id: UTC time plus a short random suffix, e.g. `20261125-084012-3fa9`.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    let suffix: u16 = rand::random();
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{suffix:04x}")
}

/// UTC calendar date and time of a unix timestamp (Howard Hinnant's days-from-civil inverse).
pub fn civil_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, (rem / 3600) as u32, ((rem % 3600) / 60) as u32, (rem % 60) as u32)
}

/// Replaces `path` atomically: a temp file in the same folder, fsynced, then renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = super::events::no_follow(OpenOptions::new().write(true).create(true).truncate(true)).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path)(e)
    })
}

/// Replaces `path` with `bytes` so a reader sees the old or the new file, never half of one (a
/// temp file renamed over it), without making it durable: for files that say what is happening now.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let done = super::events::no_follow(OpenOptions::new().write(true).create(true).truncate(true))
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Held while a process writes to a run folder; a second writer is refused, not allowed to corrupt it.
/// The lock file says who holds it (`LockHolder`, one JSON line), so a workbench opened on the
/// run can say what it is attached to.
pub struct RunLock {
    file: File,
}

impl Drop for RunLock {
    /// Unlocked here, not only by closing the file: a process forked by another thread (spawning
    /// a command) holds a copy of the descriptor until it execs, and the lock with it.
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Who holds a run's lock: the process running it, where, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    #[serde(default)]
    pub host: String,
    /// Unix seconds when it took the lock (0: not known).
    #[serde(default)]
    pub since: u64,
}

impl LockHolder {
    fn me() -> LockHolder {
        let since =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        LockHolder { pid: std::process::id(), host: host_name(), since }
    }

    /// What the lock file says; an older lock file holds only the pid.
    fn parse(text: &str) -> Option<LockHolder> {
        let text = text.trim();
        serde_json::from_str(text)
            .ok()
            .or_else(|| Some(LockHolder { pid: text.parse().ok()?, host: String::new(), since: 0 }))
    }

    /// "pid 4242 on build-1 since 2026-12-07 09:12 UTC" (what is known of it).
    pub fn describe(&self) -> String {
        let mut s = format!("pid {}", self.pid);
        if !self.host.is_empty() {
            s.push_str(&format!(" on {}", crate::text::sanitize(&self.host)));
        }
        if self.since > 0 {
            let (y, mo, d, h, mi, _) = civil_from_unix(self.since);
            s.push_str(&format!(" since {y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC"));
        }
        s
    }
}

/// This machine's name (empty when it cannot be read).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl RunLock {
    pub fn acquire(run_dir: &Path) -> Result<Self, StoreError> {
        refuse_symlinks(run_dir)?;
        let path = run_dir.join("lock");
        let mut file = super::events::no_follow(OpenOptions::new().create(true).truncate(false).read(true).write(true))
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {
                let _ = file.set_len(0);
                let me = serde_json::to_string(&LockHolder::me()).unwrap_or_default();
                let _ = writeln!(file, "{me}");
                Ok(Self { file })
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
                path: run_dir.display().to_string(),
                run: run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                lock: path.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// Whether a process holds the run's lock now (a live engine is running it), asked without
    /// creating the lock file or taking the lock.
    pub fn is_held(run_dir: &Path) -> bool {
        Self::holder(run_dir).is_some()
    }

    /// Who holds the run's lock now, if a live process does. A lock file left by a process that is
    /// gone (killed, power lost) is not held: the run is resumable.
    pub fn holder(run_dir: &Path) -> Option<LockHolder> {
        let mut f = File::open(run_dir.join("lock")).ok()?;
        match f.try_lock_shared() {
            Ok(()) => {
                let _ = f.unlock();
                None
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut f, &mut text);
                // Read between the holder's truncate and write: held, by someone not yet named.
                Some(LockHolder::parse(&text).unwrap_or(LockHolder { pid: 0, host: String::new(), since: 0 }))
            }
            Err(std::fs::TryLockError::Error(_)) => None,
        }
    }
}

/// Refuses a run folder that is a symlink or holds one (directly or in `best/`): gepa-tui writes
/// its log, lock, results and best texts there, and reads its events from there.
pub fn refuse_symlinks(run_dir: &Path) -> Result<(), StoreError> {
    let is_link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    let refuse = |p: &Path| Err(StoreError::Symlink { path: p.display().to_string() });
    if is_link(run_dir) {
        return refuse(run_dir);
    }
    for dir in [run_dir.to_path_buf(), run_dir.join("best")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                return refuse(&entry.path());
            }
        }
    }
    Ok(())
}

/// One line of `gepa-tui runs`.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub id: String,
    pub dir: PathBuf,
    pub finished: bool,
    /// The live process running it, when one holds its lock.
    pub running: Option<LockHolder>,
    /// The `result.json` contents when finished.
    pub result: Option<serde_json::Value>,
}

/// Runs in `runs_dir`, newest first (by the start time in their first event).
pub fn list_runs(runs_dir: &Path) -> Vec<RunSummary> {
    let Ok(rd) = std::fs::read_dir(runs_dir) else {
        return Vec::new();
    };
    let mut runs: Vec<(u64, RunSummary)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let dir = e.path();
            // A run holding a symlink is listed but not read through it; opening it says why.
            let (started, result) = if refuse_symlinks(&dir).is_err() {
                (0, None)
            } else {
                let events = dir.join("events.jsonl");
                if !events.is_file() {
                    return None;
                }
                // When it started, to the millisecond: ids made in the same second do not sort by time.
                let started = read_first(&events)?.get("t").and_then(|t| t.as_u64()).unwrap_or(0);
                let result: Option<serde_json::Value> =
                    std::fs::read(dir.join("result.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
                (started, result)
            };
            let id = e.file_name().to_string_lossy().into_owned();
            let running = RunLock::holder(&dir);
            Some((started, RunSummary { id, finished: result.is_some(), running, result, dir }))
        })
        .collect();
    runs.sort_by(|(ta, a), (tb, b)| (tb, &b.id).cmp(&(ta, &a.id)));
    runs.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_is_right() {
        // 2026-11-25 08:40:12 UTC
        assert_eq!(civil_from_unix(1_795_596_012), (2026, 11, 25, 8, 40, 12));
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
    }

    #[test]
    fn runs_are_listed_newest_first_even_within_one_second() {
        let tmp = tempfile::tempdir().unwrap();
        // Same second, random suffixes that sort the other way round.
        for (id, t) in [("20261201-082639-bd64", 1_000), ("20261201-082639-bb73", 1_500), ("20261130-235959-ffff", 10)]
        {
            let dir = tmp.path().join(id);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("events.jsonl"), format!("{{\"seq\":0,\"t\":{t},\"event\":\"run_started\"}}\n"))
                .unwrap();
        }
        let ids: Vec<String> = list_runs(tmp.path()).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["20261201-082639-bb73", "20261201-082639-bd64", "20261130-235959-ffff"]);
    }

    #[test]
    fn second_lock_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let _a = RunLock::acquire(d.path()).unwrap();
        assert!(matches!(RunLock::acquire(d.path()), Err(StoreError::Locked { .. })));
    }

    #[test]
    fn the_lock_says_who_holds_it_and_a_released_one_names_nobody() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(RunLock::holder(d.path()), None);
        let lock = RunLock::acquire(d.path()).unwrap();
        let h = RunLock::holder(d.path()).expect("held");
        assert_eq!(h.pid, std::process::id());
        assert_eq!(h.host, host_name());
        assert!(!h.host.is_empty());
        assert!(h.since > 1_700_000_000, "{h:?}");
        assert!(h.describe().starts_with(&format!("pid {} on ", h.pid)), "{}", h.describe());
        // A copy of its descriptor, as a child forked by another thread holds until it execs.
        let forked_copy = lock.file.try_clone().unwrap();
        drop(lock);
        // The file stays behind (as after kill -9): nobody holds it, the run is resumable.
        assert!(d.path().join("lock").is_file());
        assert_eq!(RunLock::holder(d.path()), None);
        drop(forked_copy);
        // An older lock file, pid only.
        assert_eq!(LockHolder::parse("4242\n"), Some(LockHolder { pid: 4242, host: String::new(), since: 0 }));
    }
}
