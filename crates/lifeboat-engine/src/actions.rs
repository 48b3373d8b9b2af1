//! The restore's vocabulary, shared by the engine and every kind: what is asked, the actions a
//! kind plans (`--dry-run` prints them), what was done, and what a safety copy kept.

use std::path::PathBuf;

use jiff::Timestamp;
use lifeboat_repo::RestoreSummary;
use serde::Serialize;

/// What `restore` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub asset: String,
    pub snapshot: Option<String>,
    /// The newest snapshot taken before this time (see `Engine::parse_time`).
    pub before: Option<String>,
    pub to: Option<PathBuf>,
    pub dry_run: bool,
    pub yes: bool,
    pub skip_safety_snapshot: bool,
    /// Only these tables (database assets, restored into another database).
    pub tables: Vec<String>,
    /// The repository to restore from (and to write the safety snapshot to); the primary
    /// unless given.
    pub repository: Option<String>,
    /// Where a cluster's recovery stops (`postgres-cluster` assets only).
    pub recovery: Option<RecoveryTarget>,
    /// Reuse what `to` already holds of the cluster, writing only what differs
    /// (`postgres-cluster` assets only).
    pub delta: bool,
}

/// `restore --latest | --time T | --lsn L | --xid X | --name N` of a cluster, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryTarget {
    /// Everything archived.
    Latest,
    /// A time, in the plan's zone unless it names an offset.
    Time(String),
    /// A WAL position, `X/Y`.
    Lsn(String),
    /// Up to and including a transaction.
    Xid(String),
    /// A restore point made with `pg_create_restore_point`.
    Name(String),
}

/// One step of a restore, as printed by `--dry-run` and done otherwise.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RestoreAction {
    SafetySnapshot {
        asset: String,
    },
    ReplacePath {
        path: PathBuf,
    },
    WriteTree {
        dest: PathBuf,
    },
    WriteArtifact {
        artifact: String,
        dest: PathBuf,
    },
    RunRestoreCommand {
        artifact: String,
    },
    /// Write every key of the snapshot into the server at `target` (`RESTORE ... REPLACE`).
    ReplayKeys {
        target: String,
    },
    /// Create an empty database to load the dump into.
    CreateDatabase {
        target: String,
    },
    /// Load a dump into a database.
    LoadDump {
        artifact: String,
        target: String,
    },
    /// Compare the restored database's rows per table with the manifest.
    CheckCounts {
        target: String,
    },
    /// Rename the current database to `kept` and the restored one to `target`.
    SwapDatabase {
        restored: String,
        target: String,
        kept: String,
    },
    /// Create a Docker volume to restore into.
    CreateVolume {
        volume: String,
    },
    /// Stop the containers that use a volume, for the time of its restore.
    StopContainers {
        containers: Vec<String>,
    },
    /// Fill a volume beside its content and swap the new content in.
    ReplaceVolume {
        volume: String,
    },
    /// Start again the containers stopped for the restore.
    StartContainers {
        containers: Vec<String>,
    },
    /// Extract a base backup into `dest`, replay the archived WAL up to `target`, start the
    /// cluster once to check it got there, and stop it.
    RecoverCluster {
        base: String,
        target: String,
        wal_files: usize,
        dest: PathBuf,
        /// Only what differs from what `dest` holds is written.
        delta: bool,
    },
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub asset: String,
    pub snapshot: String,
    pub snapshot_time: Timestamp,
    pub dry_run: bool,
    pub actions: Vec<RestoreAction>,
    pub safety_snapshot: Option<String>,
    pub files: Option<RestoreSummary>,
    pub bytes: u64,
    /// Where the previous content was kept beside the target (SQLite databases).
    pub kept: Option<PathBuf>,
    /// Keys written into the target (Redis).
    pub keys: Option<u64>,
    /// Rows per table found in the restored database (PostgreSQL, MySQL).
    pub tables: Option<std::collections::BTreeMap<String, u64>>,
    /// The name the previous database was kept under (PostgreSQL).
    pub kept_database: Option<String>,
    /// Set when the live target could not be read consistently before it was replaced: why,
    /// and where its raw bytes are.
    pub damaged: Option<DamagedTarget>,
    /// Where a cluster's recovery ended, in PostgreSQL's words.
    pub recovered_to: Option<String>,
    /// A delta restore: what was written, and what was found as the backup has it.
    pub delta: Option<DeltaSummary>,
}

/// What a delta restore wrote into a directory that held an older copy.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct DeltaSummary {
    pub written_bytes: u64,
    /// Bytes found as the backup has them and left alone.
    pub reused_bytes: u64,
    /// Files the backup does not hold, removed.
    pub removed_files: u64,
}

/// A live target that could not be read consistently before a restore replaced it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DamagedTarget {
    /// Why the consistent read failed, in the source's words.
    pub reason: String,
    /// The safety snapshot holding the target's raw bytes as plain files, when there were
    /// bytes to keep.
    pub raw_snapshot: Option<String>,
    /// Where else the old content stays: a database kept under another name, a file beside.
    pub kept: Option<String>,
}

impl DamagedTarget {
    /// One line for the log and the reports: what was wrong and where the old content is.
    #[must_use]
    pub fn line(&self) -> String {
        let mut kept = Vec::new();
        if let Some(id) = &self.raw_snapshot {
            kept.push(format!(
                "kept its raw bytes as safety snapshot {}",
                short(id)
            ));
        }
        if let Some(k) = &self.kept {
            kept.push(format!("the old content stays as {k}"));
        }
        if kept.is_empty() {
            kept.push("nothing of it could be kept".to_owned());
        }
        format!(
            "the live target is damaged ({}): {}",
            self.reason,
            kept.join("; ")
        )
    }
}

/// What the safety copy (`Engine::safety_copy`) kept of a live target.
#[derive(Debug)]
pub(crate) enum Safety {
    /// A consistent snapshot of the asset, as its regular backups are.
    Snapshot(String),
    /// The consistent read failed; what could be kept instead.
    Damaged(DamagedTarget),
}

impl Safety {
    /// The snapshot to restore to undo the restore, whichever kind it is.
    pub(crate) fn snapshot(&self) -> Option<&str> {
        match self {
            Self::Snapshot(id) => Some(id),
            Self::Damaged(d) => d.raw_snapshot.as_deref(),
        }
    }

    /// Puts the outcome into a restore's report.
    pub(crate) fn record(self, report: &mut RestoreReport) {
        report.safety_snapshot = self.snapshot().map(str::to_owned);
        if let Self::Damaged(d) = self {
            report.damaged = Some(d);
        }
    }
}

/// A snapshot id's first 8 hex digits, as restic and every report show it.
pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_place_the_old_content_is() {
        let d = DamagedTarget {
            reason: "database disk image is malformed".into(),
            raw_snapshot: Some("0123456789abcdef".into()),
            kept: Some("/srv/app.db.lifeboat-old-1".into()),
        };
        assert_eq!(
            d.line(),
            "the live target is damaged (database disk image is malformed): kept its raw bytes as safety snapshot 01234567; the old content stays as /srv/app.db.lifeboat-old-1"
        );
        let none = DamagedTarget {
            reason: "unreachable".into(),
            raw_snapshot: None,
            kept: None,
        };
        assert!(
            none.line().ends_with(": nothing of it could be kept"),
            "{}",
            none.line()
        );
    }
}
