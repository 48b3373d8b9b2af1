//! The audit log: one JSON line per operation (what, when, who, where, outcome), each line
//! carrying the SHA-256 of the one before it, so that an edited, removed or inserted line
//! breaks the chain at a line `lifeboat audit verify` names.
//!
//! The file is `.lifeboat/audit.jsonl` beside the plan, or `$LIFEBOAT_AUDIT_LOG`. Appends take
//! an exclusive lock on the file, so the daemon and a CLI run can write at once. Callers pass
//! only what is safe to keep: command and asset names, outcomes, and error messages, which
//! Lifeboat never lets hold a secret. `save_audit` copies the log into the repository as a
//! snapshot of the reserved asset `_audit`, so it outlives the host; truncating the file's
//! tail cannot be seen from the chain alone, but the copy in the repository still holds it.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{EngineError, engine::Engine};

/// Environment variable naming the audit log.
pub const AUDIT_ENV: &str = "LIFEBOAT_AUDIT_LOG";
/// Snapshots of the audit log use this asset name, which no plan asset can have.
pub const AUDIT_ASSET: &str = "_audit";
/// The log's artifact inside such a snapshot.
const AUDIT_ARTIFACT: &str = "audit.jsonl";
/// Copies of the log kept in the repository: each holds the whole log, so older ones are
/// forgotten once a newer one is written.
const AUDIT_COPIES: usize = 3;
/// The `prev` of the first line.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the log, in the order its fields are hashed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Body {
    seq: u64,
    time: String,
    user: String,
    host: String,
    what: String,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    detail: Option<String>,
    prev: String,
}

/// A line as written: the body and its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub time: String,
    pub user: String,
    pub host: String,
    /// The operation, e.g. `backup db web`, `daemon reload`.
    pub what: String,
    /// `ok`, `partial`, `failed`, `refused`, `cancelled`, or an exit code.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// The hash of the line before (zeros for the first).
    pub prev: String,
    /// SHA-256 of `prev` and this line's other fields.
    pub hash: String,
}

impl AuditEntry {
    fn body(&self) -> Body {
        Body {
            seq: self.seq,
            time: self.time.clone(),
            user: self.user.clone(),
            host: self.host.clone(),
            what: self.what.clone(),
            outcome: self.outcome.clone(),
            detail: self.detail.clone(),
            prev: self.prev.clone(),
        }
    }
}

fn hash_of(body: &Body) -> String {
    let json = serde_json::to_vec(body).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub path: PathBuf,
    /// Lines whose chain holds, from the first.
    pub valid: u64,
    /// The first line that breaks the chain, 1-based, and why.
    pub broken: Option<BrokenLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokenLine {
    pub line: u64,
    pub reason: String,
}

/// Appends one entry to the log at `path`. The lock serialises writers across processes.
///
/// # Errors
/// The file cannot be opened, locked, read or written.
pub fn append(
    path: &Path,
    what: &str,
    outcome: &str,
    detail: Option<&str>,
) -> Result<AuditEntry, EngineError> {
    append_as(path, &crate::host::user_name(), what, outcome, detail)
}

/// As [`append`], for an operation `user` asked for (a dashboard user, not the process's).
///
/// # Errors
/// As [`append`].
pub fn append_as(
    path: &Path,
    user: &str,
    what: &str,
    outcome: &str,
    detail: Option<&str>,
) -> Result<AuditEntry, EngineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("create", dir, e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| EngineError::io("open audit log", path, e))?;
    file.lock()
        .map_err(|e| EngineError::io("lock audit log", path, e))?;
    let last = last_entry(&mut file).map_err(|e| EngineError::io("read audit log", path, e))?;
    let (seq, prev) = match last {
        Some(e) => (e.seq + 1, e.hash),
        None => (1, GENESIS.to_owned()),
    };
    let body = Body {
        seq,
        time: Timestamp::now().to_string(),
        user: user.to_owned(),
        host: crate::host::host_name(),
        what: what.to_owned(),
        outcome: outcome.to_owned(),
        detail: detail.map(|d| d.chars().take(2000).collect()),
        prev,
    };
    let entry = AuditEntry {
        hash: hash_of(&body),
        seq: body.seq,
        time: body.time,
        user: body.user,
        host: body.host,
        what: body.what,
        outcome: body.outcome,
        detail: body.detail,
        prev: body.prev,
    };
    let mut line = serde_json::to_vec(&entry).unwrap_or_default();
    line.push(b'\n');
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| EngineError::io("write audit log", path, e))?;
    Ok(entry)
}

/// The last complete line of `file`, parsed; `None` for an empty file. Reads only the tail.
fn last_entry(file: &mut File) -> std::io::Result<Option<AuditEntry>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let mut back = 8192u64;
    loop {
        let start = len.saturating_sub(back);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        let text = String::from_utf8_lossy(&tail);
        let trimmed = text.trim_end_matches('\n');
        if let Some(i) = trimmed.rfind('\n').or((start == 0).then_some(0)) {
            let line = trimmed[i..].trim_start_matches('\n');
            return serde_json::from_str(line).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "its last line is not an audit entry ({e}); run `lifeboat audit verify`"
                    ),
                )
            });
        }
        back *= 4;
    }
}

/// The newest `limit` entries of the log at `path`, newest first; none when there is no log.
///
/// # Errors
/// The file cannot be read.
pub fn recent(path: &Path, limit: usize) -> Result<Vec<AuditEntry>, EngineError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io("open audit log", path, e)),
    };
    let mut out = std::collections::VecDeque::with_capacity(limit);
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| EngineError::io("read audit log", path, e))?;
        if let Ok(entry) = serde_json::from_str::<AuditEntry>(&line) {
            if out.len() == limit {
                out.pop_front();
            }
            out.push_back(entry);
        }
    }
    Ok(out.into_iter().rev().collect())
}

/// Checks the chain of the log at `path`, line by line.
///
/// # Errors
/// The file cannot be read.
pub fn verify(path: &Path) -> Result<AuditCheck, EngineError> {
    let file = File::open(path).map_err(|e| EngineError::io("open audit log", path, e))?;
    let mut check = AuditCheck {
        path: path.to_path_buf(),
        valid: 0,
        broken: None,
    };
    let mut prev = GENESIS.to_owned();
    let mut seq = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.map_err(|e| EngineError::io("read audit log", path, e))?;
        let broken = |reason: String| Some(BrokenLine { line: n, reason });
        let entry: AuditEntry = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                check.broken = broken(format!("not an audit entry: {e}"));
                break;
            }
        };
        if entry.prev != prev {
            check.broken = broken(
                "its prev does not match the hash of the line before: a line was removed, inserted or reordered"
                    .to_owned(),
            );
            break;
        }
        if entry.seq != seq + 1 {
            check.broken = broken(format!("sequence {} follows {seq}", entry.seq));
            break;
        }
        if hash_of(&entry.body()) != entry.hash {
            check.broken =
                broken("its content does not match its hash: the line was edited".to_owned());
            break;
        }
        prev = entry.hash;
        seq = entry.seq;
        check.valid = n;
    }
    Ok(check)
}

/// One copy into the repository at a time per process.
static SAVING: Mutex<()> = Mutex::new(());

impl Engine {
    /// Where the audit log lives: `$LIFEBOAT_AUDIT_LOG`, or `.lifeboat/audit.jsonl` beside the plan.
    #[must_use]
    pub fn audit_path(&self) -> PathBuf {
        std::env::var_os(AUDIT_ENV).map_or_else(
            || self.plan().base_dir.join(".lifeboat").join("audit.jsonl"),
            PathBuf::from,
        )
    }

    /// Records an operation in the audit log. Never fails the operation: a log that cannot be
    /// written is reported as a warning.
    pub fn audit(&self, what: &str, outcome: &str, detail: Option<&str>) {
        if let Err(e) = append(&self.audit_path(), what, outcome, detail) {
            tracing::warn!("audit log: {e}");
        }
    }

    /// As [`Engine::audit`], for an operation `user` asked for through the dashboard.
    pub fn audit_as(&self, user: &str, what: &str, outcome: &str, detail: Option<&str>) {
        if let Err(e) = append_as(&self.audit_path(), user, what, outcome, detail) {
            tracing::warn!("audit log: {e}");
        }
    }

    /// Copies the audit log into the primary repository as a snapshot of `_audit`, and forgets
    /// all but the newest few such copies (each holds the whole log). Returns the new
    /// snapshot's id; `None` when there is no log yet.
    ///
    /// # Errors
    /// The log cannot be read or the repository written.
    pub fn save_audit(&self) -> Result<Option<String>, EngineError> {
        let _one = SAVING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.audit_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::io("read audit log", path, e)),
        };
        let repo = self.open_primary()?;
        let input = lifeboat_core::BackupInput {
            plan: self.plan().name.clone(),
            asset: AUDIT_ASSET.to_owned(),
            kind: lifeboat_core::AssetKind::Command,
            source: "lifeboat audit".to_owned(),
            reason: Some("audit-log".to_owned()),
            payload: lifeboat_core::Payload::Streams(vec![lifeboat_core::StreamArtifact {
                name: AUDIT_ARTIFACT.to_owned(),
                data: lifeboat_core::ArtifactData::Stream(Box::new(move || {
                    Ok(Box::new(std::io::Cursor::new(bytes)) as Box<dyn std::io::Read + Send>)
                })),
            }]),
            facts: lifeboat_core::SourceFacts::default(),
        };
        let lock = repo.lock(lifeboat_repo::LockKind::Shared, "audit log copy")?;
        let id = repo.backup(&lock, input, None)?.snapshot.id;
        drop(lock);
        let old: Vec<String> = {
            let mut copies: Vec<_> = repo
                .snapshots()?
                .into_iter()
                .filter(|s| s.asset.as_deref() == Some(AUDIT_ASSET))
                .collect();
            copies.sort_by_key(|s| s.time);
            let keep_from = copies.len().saturating_sub(AUDIT_COPIES);
            copies
                .into_iter()
                .take(keep_from)
                .map(|s| s.id)
                .filter(|i| *i != id)
                .collect()
        };
        // Older copies go only when the repository is free right now: never wait behind a
        // backup for this; the next copy tries again.
        if !old.is_empty() {
            let forgotten = repo
                .lock_waiting(
                    lifeboat_repo::LockKind::Exclusive,
                    "forget older audit log copies",
                    std::time::Duration::ZERO,
                )
                .and_then(|lock| repo.forget(&lock, &old));
            if let Err(e) = forgotten {
                tracing::info!("older audit log copies kept for now: {e}");
            }
        }
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_chain_holds_and_breaks_where_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        for i in 0..5 {
            append(&path, &format!("backup a{i}"), "ok", None).unwrap();
        }
        let check = verify(&path).unwrap();
        assert_eq!((check.valid, check.broken.is_none()), (5, true));

        // Edit line 3's outcome: line 3 is named.
        let mut l = lines(&path);
        l[2] = l[2].replace("\"ok\"", "\"failed\"");
        std::fs::write(&path, l.join("\n") + "\n").unwrap();
        let check = verify(&path).unwrap();
        let broken = check.broken.unwrap();
        assert_eq!((check.valid, broken.line), (2, 3));
        assert!(broken.reason.contains("edited"), "{}", broken.reason);

        // Remove line 2 of an intact chain: line 2 (the old third) no longer follows line 1.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        for i in 0..4 {
            append(&path, &format!("verify {i}"), "ok", Some("detail")).unwrap();
        }
        let mut l = lines(&path);
        l.remove(1);
        std::fs::write(&path, l.join("\n") + "\n").unwrap();
        let check = verify(&path).unwrap();
        assert_eq!(check.broken.unwrap().line, 2);
    }

    #[test]
    fn appends_continue_the_chain_of_a_long_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let long = "x".repeat(1500);
        for _ in 0..30 {
            append(&path, "backup", "failed", Some(&long)).unwrap();
        }
        let check = verify(&path).unwrap();
        assert_eq!(check.valid, 30);
        assert!(check.broken.is_none());
    }
}
